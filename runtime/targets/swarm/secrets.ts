/**
 * Secrets on Swarm.
 *
 * - Secret files (`files:`) become Swarm secrets, one per content: the planner names each version after
 *   a keyed hash (HMAC, the deployer's key) of its content, computed here before planning, so a rotated
 *   value gives a new name, a new secret, and a rolling update of the services that use it. Swarm
 *   mounts the secret at the file's path in every task, on any node, mode 0400.
 * - Secret variables (`env:`) are added to the spec's environment at apply, in a copy of the plan (as
 *   the engine target adds them to a container's): the plan, events and labels never hold a value; the
 *   managers keep the spec (so `docker service inspect` shows them to whoever controls the Swarm, as
 *   `docker inspect` does on one engine). Prefer `files:` on Swarm.
 * - Dynamic credentials (Vault database and aws engines) are issued per container on the engine target;
 *   tasks on Swarm are created by the managers, so they are refused here with the way out.
 */
import { createHmac } from 'node:crypto';
import { hmacKey } from '../../secrets/digest.ts';
import { isDynamic, secretValueOf, secretsUsedBy, type SecretsSession } from '../../secrets/session.ts';
import { ProblemsError } from '../../problems.ts';
import type { ApplyEvent, Operation, Plan, Problem, SecretValueSpec, ServiceGraph } from '../../model.ts';
import type { BoundPlan } from '../../apply/bind.ts';

type Env = Record<string, string | undefined>;

/** A create-swarm-secret operation with its content (base64), in the bound copy only. */
export type BoundSecretOp = Extract<Operation, { kind: 'create-swarm-secret' }> & { data: string };

/** Dynamic credentials cannot be issued per task on Swarm: a problem per service that uses them. */
export function dynamicSecretProblems(graph: ServiceGraph): Problem[] {
  const problems: Problem[] = [];
  for (const svc of Object.values(graph.services)) {
    for (const secret of secretsUsedBy(svc).keys()) {
      const decl = graph.secrets?.[secret];
      if (decl && isDynamic(decl)) {
        problems.push({
          file: svc.file,
          service: svc.name,
          message: `secret "${secret}" (Vault ${decl.engine} credentials) is issued per container, which the Swarm target cannot do: Swarm's managers create the tasks`,
          fix: `use a kv or embedded secret for this service, or deploy it with target: 'engine' in ${graph.configFile}`,
        });
      }
    }
  }
  return problems;
}

/**
 * Per service, per secret file: the keyed digest of the file's content. A file whose value cannot be
 * read (an offline plan leaves Vault unread) gets none; its version name then shows as unknown.
 */
export async function secretFileDigests(graph: ServiceGraph, session: SecretsSession | undefined, env: Env): Promise<Record<string, Record<string, string>>> {
  const problems = dynamicSecretProblems(graph);
  if (problems.length) throw new ProblemsError(problems);
  const out: Record<string, Record<string, string>> = {};
  if (!session) return out;
  let key: Buffer | undefined;
  for (const svc of Object.values(graph.services)) {
    if (!svc.secretFiles?.length) continue;
    let values;
    try {
      ({ values } = await session.valuesFor(svc.name));
    } catch {
      continue;
    }
    key ??= hmacKey(graph.project, env);
    for (const f of svc.secretFiles) {
      const content = secretValueOf(f, (k) => values.get(k.secret)?.get(k.key));
      if (content === undefined) continue;
      (out[svc.name] ??= {})[f.target] = createHmac('sha256', key).update(JSON.stringify(['swarm-secret-file', content])).digest('hex');
    }
  }
  return out;
}

const MIN_REDACT = 4;

function redactor(known: string[]): <T>(v: T) => T {
  const values = [...new Set(known)].filter((v) => v.length >= MIN_REDACT).sort((a, b) => b.length - a.length);
  const fix = (s: string) => values.reduce((out, v) => (out.includes(v) ? out.split(v).join('[secret]') : out), s);
  const walk = (x: unknown): unknown => {
    if (typeof x === 'string') return fix(x);
    if (Array.isArray(x)) return x.map(walk);
    if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, walk(v)]));
    return x;
  };
  return <T>(v: T) => (values.length ? (walk(v) as T) : v);
}

/** Puts values into a copy of the plan: secret contents into create-secret operations, secret variables into specs. */
export async function bindSwarmSecrets(graph: ServiceGraph, plan: Plan, session: SecretsSession | undefined): Promise<BoundPlan> {
  const ops = structuredClone(plan.operations);
  const known: string[] = session ? session.knownValues().map((k) => k.value) : [];
  if (session) {
    await session.persistGenerated();
    const cache = new Map<string, Map<string, Map<string, string>>>();
    const valuesOf = async (service: string) => {
      if (!cache.has(service)) cache.set(service, (await session.valuesFor(service)).values);
      return cache.get(service)!;
    };
    const valueOf = (values: Map<string, Map<string, string>>, r: SecretValueSpec) => secretValueOf(r, (k) => values.get(k.secret)?.get(k.key))!;
    for (const op of ops) {
      if (op.kind === 'create-swarm-secret') {
        const svc = graph.services[op.source.service]!;
        const f = svc.secretFiles!.find((x) => x.target === op.source.target)!;
        const content = valueOf(await valuesOf(svc.name), f);
        known.push(content);
        (op as BoundSecretOp).data = Buffer.from(content, 'utf8').toString('base64');
      } else if ((op.kind === 'create-swarm-service' || op.kind === 'update-swarm-service') && graph.services[op.service]?.secretEnv) {
        const svc = graph.services[op.service]!;
        const values = await valuesOf(svc.name);
        const env = op.spec.TaskTemplate.ContainerSpec.Env;
        for (const [name, r] of Object.entries(svc.secretEnv!)) {
          const v = valueOf(values, r);
          known.push(v);
          env.push(`${name}=${v}`);
        }
        env.sort((a, b) => (a.slice(0, a.indexOf('=')) < b.slice(0, b.indexOf('=')) ? -1 : 1));
      }
    }
  }
  const redact = redactor(known);
  return {
    plan: { ...plan, operations: ops },
    listen: (emit: (e: ApplyEvent) => void) => (e: ApplyEvent) => emit(redact(e)),
    finish: async () => undefined,
    redactError(err: unknown) {
      if (!(err instanceof Error)) return err;
      const clean = redact(err.message);
      if (clean === err.message) return err;
      const copy = new Error(clean);
      copy.name = err.name;
      return copy;
    },
  };
}
