/**
 * bind: the step between plan and execute that puts secret values where containers get them. It
 * returns a COPY of the plan for the executor, with secret variables appended to `Env` and secret
 * files written on the host's tmpfs and appended to `HostConfig.Mounts` (read-only binds). The plan
 * that is printed, returned as JSON or stored is never touched: values exist only in this copy, in
 * memory, for the duration of the apply.
 *
 * Before any Docker change it also stores generated secrets (created in memory at plan time) and
 * issues dynamic credentials (one lease per new container). After execute, `finish` attaches leases to
 * the containers that got them, revokes the leases of containers that are gone (or never came to be),
 * and removes secret files of containers that no longer exist.
 */
import type Dockerode from 'dockerode';
import { isKept, LABEL } from '../labels.ts';
import type { ApplyEvent, ContainerCreateBody, ObservedState, Operation, Plan, SecretValueSpec, ServiceGraph } from '../model.ts';
import { observe } from '../docker/observe.ts';
import { containerKey, fileOwner, gcSecretFiles, projectFilesDir, secretFilesPresent, writeSecretFiles } from '../secrets/files.ts';
import { secretValueOf, type IssuedLease, type SecretsSession } from '../secrets/session.ts';
import { LeaseStore } from '../secrets/leases.ts';
import { Renewer } from '../secrets/renewer.ts';
import { ProviderRegistry } from '../secrets/registry.ts';
import fs from 'node:fs';

type Env = Record<string, string | undefined>;

export interface BoundPlan {
  /** The plan to execute (a copy holding values: never print, store or return it). */
  readonly plan: Plan;
  /** Wraps an event listener: attaches leases as containers appear, and redacts any secret value from events. */
  listen(emit: (e: ApplyEvent) => void): (e: ApplyEvent) => void;
  /** After execute: lease bookkeeping and secret file clean-up. */
  finish(docker: Dockerode): Promise<void>;
  /** An error thrown while executing, with any secret value in its message replaced by its name. */
  redactError(err: unknown): unknown;
}

const MIN_REDACT = 4;
/** Lines of a multi-line value shorter than this (`-----`, `}`) are too common to redact on their own. */
const MIN_LINE_REDACT = 8;

/** Replaces every occurrence of a known value in the strings of `v` by its name. */
function redact<T>(v: T, known: Array<{ label: string; value: string }>): T {
  if (known.length === 0) return v;
  const fix = (s: string) => {
    let out = s;
    for (const k of known) if (out.includes(k.value)) out = out.split(k.value).join(`[${k.label}]`);
    return out;
  };
  const walk = (x: unknown): unknown => {
    if (typeof x === 'string') return fix(x);
    if (Array.isArray(x)) return x.map(walk);
    if (x && typeof x === 'object') {
      const o: Record<string, unknown> = {};
      for (const [k, val] of Object.entries(x)) o[k] = walk(val);
      return o;
    }
    return x;
  };
  return walk(v) as T;
}

/** Binds secrets into a copy of `plan`. Throws (before any change) when a value cannot be had. */
export async function bindSecrets(
  graph: ServiceGraph,
  plan: Plan,
  observed: ObservedState,
  session: SecretsSession | undefined,
  opts: { env?: Env } = {},
): Promise<BoundPlan> {
  const env = opts.env ?? process.env;
  const ops: Operation[] = structuredClone(plan.operations);
  const leasesByOp = new Map<string, IssuedLease[]>();
  /** start-service ops that issued fresh credentials → the container they belong to. */
  const startedContainers = new Map<string, string>();
  const known: Array<{ label: string; value: string }> = session ? session.knownValues() : [];

  if (session) {
    await session.persistGenerated();
    for (const op of ops) {
      if (op.kind !== 'create-service' && op.kind !== 'replace-service' && op.kind !== 'start-service') continue;
      const svc = graph.services[op.service];
      if (!svc || (!svc.secretEnv && !svc.secretFiles)) continue;
      if (op.kind === 'start-service') {
        // An existing container keeps its values; only files lost with the tmpfs (a reboot) are written again.
        const files = svc.secretFiles ?? [];
        const c = observed.containers.find((x) => x.id === op.containerId);
        if (files.length === 0 || !c) continue;
        const key = containerKey(svc.name, c.generation);
        if (secretFilesPresent(graph.project, key, files.length, env)) continue;
        const { values, leases } = await session.valuesFor(svc.name, { containerKey: key, containerId: c.id });
        for (const l of leases) for (const [k, v] of values.get(l.secret) ?? []) known.push({ label: `secrets.${l.secret}.${k}`, value: v });
        // Fresh dynamic credentials went into the files: their leases belong to this container.
        if (leases.length > 0) {
          leasesByOp.set(op.id, leases);
          startedContainers.set(op.id, op.containerId);
        }
        const fileValue = (f: (typeof files)[number]) => secretValueOf(f, (r) => values.get(r.secret)?.get(r.key))!;
        for (const f of files) if ('template' in f) known.push({ label: `secretString ${svc.name} ${f.target}`, value: fileValue(f) });
        writeSecretFiles(graph.project, key, files.map((f) => ({ target: f.target, value: fileValue(f) })), fileOwner(svc.user), env);
        continue;
      }
      const body: ContainerCreateBody = op.body;
      const generation = body.Labels[LABEL.generation] ?? '1';
      // The lease records name the container they are for, so a crash before `finish` does not get them revoked.
      const { values, leases } = await session.valuesFor(svc.name, { containerKey: containerKey(svc.name, generation) });
      for (const l of leases) for (const [k, v] of values.get(l.secret) ?? []) known.push({ label: `secrets.${l.secret}.${k}`, value: v });
      if (leases.length > 0) leasesByOp.set(op.id, leases);
      // A secretString is its text and its parts' values joined; the whole string is redacted as well as each part.
      const valueOf = (r: SecretValueSpec) => secretValueOf(r, (k) => values.get(k.secret)?.get(k.key))!;
      for (const [name, r] of Object.entries(svc.secretEnv ?? {})) if ('template' in r) known.push({ label: `secretString ${svc.name} env.${name}`, value: valueOf(r) });
      for (const f of svc.secretFiles ?? []) if ('template' in f) known.push({ label: `secretString ${svc.name} ${f.target}`, value: valueOf(f) });
      if (svc.secretEnv) {
        const entries = [...body.Env, ...Object.entries(svc.secretEnv).map(([name, r]) => `${name}=${valueOf(r)}`)];
        body.Env = entries.sort((a, b) => {
          const ka = a.slice(0, a.indexOf('='));
          const kb = b.slice(0, b.indexOf('='));
          return ka < kb ? -1 : ka > kb ? 1 : 0;
        });
      }
      if (svc.secretFiles) {
        const written = writeSecretFiles(
          graph.project,
          containerKey(svc.name, generation),
          svc.secretFiles.map((f) => ({ target: f.target, value: valueOf(f) })),
          fileOwner(svc.user),
          env,
        );
        for (const w of written) body.HostConfig.Mounts.push({ Type: 'bind', Source: w.source, Target: w.target, ReadOnly: true });
      }
    }
  }
  // A multi-line value (a PEM key in a file) reaches the events line by line (log tails, health output):
  // each of its lines is redacted too, not only the whole value.
  const lines = known.flatMap((k) =>
    /[\r\n]/.test(k.value)
      ? k.value
          .split(/\r?\n|\r/)
          .map((l) => l.trim())
          .filter((l) => l.length >= MIN_LINE_REDACT)
          .map((l) => ({ label: k.label, value: l }))
      : [],
  );
  const redactable = [...known, ...lines].filter((k) => k.value.length >= MIN_REDACT).sort((a, b) => b.value.length - a.value.length);
  const attach = new Map<string, string>();

  return {
    plan: { ...plan, operations: ops },
    listen(emit) {
      return (e) => {
        if (e.type === 'op-done' && leasesByOp.has(e.op)) {
          const id = e.containerId ?? startedContainers.get(e.op);
          if (id) attach.set(e.op, id);
        }
        emit(redact(e, redactable));
      };
    },
    redactError(err) {
      if (!(err instanceof Error) || redactable.length === 0) return err;
      const clean = redact(err.message, redactable);
      if (clean === err.message) return err;
      const copy = new Error(clean);
      copy.name = err.name;
      return copy;
    },
    async finish(docker) {
      const hasLeases = leasesByOp.size > 0;
      let store: LeaseStore | undefined;
      if (hasLeases || (graph.vault && fs.existsSync(leaseFileOf(graph.project, env)))) store = LeaseStore.open(graph.project, { env });
      for (const [opId, containerId] of attach) {
        store?.attach(
          (leasesByOp.get(opId) ?? []).map((l) => l.lease.leaseId),
          containerId,
        );
      }
      const needObserve = store !== undefined || filesDirExists(graph.project, env);
      if (!needObserve) return;
      const now = await observe(docker, graph.project);
      gcSecretFiles(graph.project, new Set(now.containers.map((c) => containerKey(c.service, c.generation))), env);
      if (store && graph.vault) {
        try {
          const vault = await (session?.registry ?? new ProviderRegistry(graph, env)).kind('vault');
          // A container kept stopped for rollback holds no live credentials: its leases are revoked like
          // those of a removed container (a rollback of a service with leased credentials is refused).
          const live = now.containers.filter((c) => !isKept(c, graph.project));
          await new Renewer({ store, provider: vault, renewFraction: graph.vault.renewFraction }).revokeOrphans(live.map((c) => ({ id: c.id, service: c.service, generation: c.generation })));
        } catch {
          // Vault unreachable after the apply: the records stay, and the next apply (or the agent) revokes them.
        }
      }
    },
  };
}

function filesDirExists(project: string, env: Env): boolean {
  try {
    return fs.existsSync(projectFilesDir(project, env));
  } catch {
    return false;
  }
}

function leaseFileOf(project: string, env: Env): string {
  // LeaseStore keeps `leases.json` in the project's state directory.
  return new LeaseStore(project, { env }).file;
}
