/**
 * The engine every interface drives (CLI, TUI, agent, tests): load → graph → observe → plan → apply,
 * and destroy, status and logs, with typed events out. No rendering here.
 *
 * One Engine serves many runs, concurrently, in one process: its settings and environment are given to
 * the constructor (nothing here reads `process.env` or installs a signal handler), it keeps no
 * module-level state, and a project changes one run at a time (an in-process queue per Engine, then the
 * lock in the state directory across processes). Every event of a run carries the run's id, a sequence
 * number from 1 and the project; they are stamped here, in one place, around every emitter.
 */
import { newSortableId } from './ids.ts';
import type Dockerode from 'dockerode';
import { loadRepo, type LoadOptions } from './load/load.ts';
import { confinement, type Confinement } from './load/sandbox.ts';
import { buildGraph } from './graph/graph.ts';
// The single engine's own features (rollback to a kept container, maintenance) plan and run directly.
import type { PinInput } from './plan/reconcile.ts';
import { observe } from './docker/observe.ts';
import { execute } from './apply/executor.ts';
import { generationsOf, planRollback, RollbackError, rollbackTarget, type Generations } from './plan/rollback.ts';
import { definitionHash } from './plan/container.ts';
import { PinStore, type PinRecord } from './pins.ts';
// `waffle rollback` on Swarm: Swarm's own rollback to the previous spec, planned purely there.
import { planSwarmRollback, serviceHistoryOf, swarmPinOf, swarmSpecsReport, type SwarmServiceHistory, type SwarmSpecsReport } from './targets/swarm/rollback.ts';
import { swarmDefinitionHash } from './targets/swarm/pin.ts';
import { DEFAULT_KEEP } from './plan/steps.ts';
import { connectDocker, dockerSettingsFromEnv, withCallLimits } from './docker/client.ts';
import { loadDockerode } from './docker/dockerode.ts';
// What observes, plans, executes and destroys: the single engine or a Swarm, by `graph.target`.
import { targetFor } from './targets/select.ts';
import { SecretsSession, secretsUsedBy } from './secrets/session.ts';
import { renewProjectLeases, revokeProjectLeases, type RenewReport } from './secrets/renewer.ts';
import { removeSecretFiles } from './secrets/files.ts';
import { streamLogs } from './docker/logs.ts';
import { currentCommit } from './source/git.ts';
import { LockManager, type LockNotice } from './lock.ts';
import { stateDir } from './secrets/state.ts';
import { CaddyAdmin, DEFAULT_MAINTENANCE_PAGE } from './ingress/caddy.ts';
import { maintenancePages, setMaintenance } from './ingress/maintenance.ts';
import { proxyTable } from './plan/proxy.ts';
import { LABEL, names } from './labels.ts';
import { ProblemsError } from './problems.ts';
import { locateProblems, type Locator } from './locate.ts';
import { locateProblemsInChild } from './locate-process.ts';
import type { PullPolicy } from '../define/index.ts';
import type { DevelopAction } from './plan/develop.ts';
import type {
  ApplyEvent,
  DestroyRunEvent,
  EngineEvent,
  FailureStage,
  ObservedState,
  Operation,
  Plan,
  PlanOpCounts,
  Problem,
  RunEvent,
  RunKind,
  SecretValueSpec,
  ServiceGraph,
  ServiceSpec,
} from './model.ts';

export type Env = Record<string, string | undefined>;
export type Listener = (e: RunEvent) => void;

export interface EngineOptions {
  /** The environment the engine and what it runs see (secrets' identities, Vault tokens, DOCKER_HOST…). */
  env: Env;
  /** Docker engine; overrides `env.DOCKER_HOST` and the config's `docker.host`. */
  dockerHost?: string;
  /** The deployer's state directory (HMAC key, leases, locks); overrides `env.WAFFLE_STATE_DIR`. */
  stateDir?: string;
  /** Time limit for evaluating the configuration; default `env.WAFFLE_LOAD_TIMEOUT_MS`, then the loader's. */
  loadTimeoutMs?: number;
  /** Names the operator allows in the configuration's `evaluation.env` although they look like credentials. */
  allowEnv?: string[];
  /** Hears every event of every run (history, metrics), after the run's own listener. */
  onEvent?: Listener;
  /**
   * Problems are placed at their field's line by a short-lived child process, so this process never
   * loads the TypeScript parser (a long-running agent); default: in this process.
   */
  locateInChild?: boolean;
}

/**
 * Where a plan starts: a repository directory (with its configuration file relative to it, default
 * `waffle.config.ts`), or a stored graph (the serialised ServiceGraph) to replay a deploy exactly.
 */
export type Source = { dir: string; configFile?: string } | { graph: ServiceGraph; commit?: string };

export interface RunOptions {
  onEvent?: Listener;
  /**
   * Stops the run: no new operation starts; waits and Docker calls in flight are cancelled; an apply's
   * operations in flight then roll back as their plan says (with Docker calls outside this signal,
   * under short time limits) before the call returns and the project lock is released.
   */
  signal?: AbortSignal;
}

export interface PlanOptions extends RunOptions {
  /** No Vault or registry contact: secrets that would be renewed or read are reported as not checked. */
  offline?: boolean;
  /** Overrides every service's pull policy (`always`: ask the registry for newer images first). */
  pull?: PullPolicy;
  /** What the plan is for (the run's kind): `apply` when the caller will apply it. */
  purpose?: 'plan' | 'apply';
}

export interface ApplyOptions extends PlanOptions {
  /** Refuse the plan when Docker changed since it was made. */
  checkStale?: boolean;
  /** Asked after planning, before anything changes (a prompt); false cancels the run. */
  confirm?: (planned: Planned) => Promise<boolean>;
}

export interface RollbackOptions extends RunOptions {
  /** The generation to switch to; default: the newest kept one older than the current one. Refused on Swarm (one previous spec). */
  to?: number;
  /** Asked after planning, before anything changes; false cancels the run. */
  confirm?: (planned: Planned) => Promise<boolean>;
}

/** A service's generations, for `waffle rollback --list`. */
export interface GenerationsReport extends Generations {
  service: string;
  /** The rollback pin of the service, when it has one. */
  pin?: PinRecord;
  /** How many earlier containers a replace keeps. */
  keep: number;
  /** On Swarm (no kept containers): the service's current and previous spec; absent when it is not deployed. */
  swarm?: SwarmSpecsReport;
}

export interface DestroyOptions extends RunOptions {
  volumes?: boolean;
  /** Asked once the project is known, before anything is removed; false cancels the run. */
  confirm?: (project: string) => Promise<boolean>;
}

/** A plan ready to apply (or to show): the data, and the run it belongs to. */
export interface Planned {
  readonly run: string;
  graph: ServiceGraph;
  observed: ObservedState;
  plan: Plan;
  commit: string;
  offline: boolean;
  /** Services whose secrets were not checked (offline). */
  notChecked: string[];
  /** @internal the run's context (listeners, sequence, Docker client, secrets). */
  readonly ctx: RunContext;
}

export interface DestroyReport {
  /** `services` and `secrets`: the Swarm target's. */
  removed: { containers: string[]; networks: string[]; volumes: string[]; services?: string[]; secrets?: string[] };
  errors: string[];
  revokedLeases: number;
  leaseErrors: string[];
}

/** Raised when Docker changed between plan and apply (Terraform's stale plan). */
export class StalePlanError extends Error {
  constructor(project: string) {
    super(`the plan for project "${project}" is stale: Docker changed since it was made. Run the command again to plan anew.`);
    this.name = 'StalePlanError';
  }
}

/** Raised when the run's signal stopped it before it changed anything. */
export class InterruptedError extends Error {
  constructor(what: string) {
    super(`interrupted: ${what}`);
    this.name = 'InterruptedError';
  }
}

/** Raised when a confirmation said no. */
export class CancelledError extends Error {
  constructor() {
    super('cancelled: nothing was changed');
    this.name = 'CancelledError';
  }
}

// ───────────────────────────── run context ─────────────────────────────

/** A ULID-like id: 10 characters of time (sortable), 16 of randomness. */
export function newRunId(now = Date.now()): string {
  return newSortableId(now);
}

/** One run: its id, its sequence counter, its listeners, and what it opened (Docker, secrets). */
class RunContext {
  readonly id = newRunId();
  seq = 0;
  project: string | null = null;
  readonly listeners: Listener[] = [];
  docker?: Dockerode;
  secrets?: SecretsSession;
  /** The stage a failure now belongs to. */
  stage: FailureStage = 'load';
  configFile = 'waffle.config.ts';
  /** The run got its turn (holds the project). */
  started = false;

  constructor(...listeners: Array<Listener | undefined>) {
    for (const l of listeners) if (l) this.listeners.push(l);
  }

  /** Stamps `e` with run, seq and project and hands it to every listener (a listener's error never stops the run). */
  emit = (e: EngineEvent): void => {
    const stamped = { run: this.id, seq: ++this.seq, project: this.project, ...e } as RunEvent;
    if ('project' in e && typeof e.project === 'string') stamped.project = e.project;
    for (const l of this.listeners) {
      try {
        l(stamped);
      } catch {
        /* a renderer must not break a deploy */
      }
    }
  };

  /** Emits run-failed for `err` at the current stage, and returns it to be thrown. */
  fail(err: unknown, stage: FailureStage = this.stage): Error {
    const error = err instanceof Error ? err : new Error(String(err));
    if ((error as { reported?: boolean }).reported) return error;
    this.emit({ type: 'run-failed', stage, message: error.message, problems: problemsOf(error, this.configFile), at: Date.now() });
    // Callers up the stack see it was reported and do not report it again.
    Object.defineProperty(error, 'reported', { value: true, enumerable: false, configurable: true });
    return error;
  }
}

/**
 * Problems found after the graph was built (a secret value missing or too long for `env.X`) get the
 * line of the field in its file, as validation problems do. Other errors pass through unchanged.
 */
function locatedIn(graph: ServiceGraph, error: unknown, locate: Locator): unknown {
  if (error instanceof ProblemsError) {
    const definedAt = new Map(Object.values(graph.services).map((s) => [s.file, s.definedAt] as const));
    locate(error.problems, { root: graph.root, configFile: graph.configFile, definedAt });
  }
  return error;
}

/** An error as problems: a ProblemsError's own, else one problem whose fix is the message's `Fix:` part. */
export function problemsOf(error: Error, file: string): Problem[] {
  if (error instanceof ProblemsError || (error.name === 'ProblemsError' && Array.isArray((error as ProblemsError).problems))) {
    return (error as ProblemsError).problems;
  }
  const m = /^([\s\S]*?)\s*\bFix:\s*([\s\S]*)$/i.exec(error.message);
  return m ? [{ file, message: m[1]!, fix: m[2]! }] : [{ file, message: error.message }];
}

function counts(plan: Plan): PlanOpCounts {
  const c: PlanOpCounts = { create: 0, replace: 0, update: 0, start: 0, remove: 0, unchanged: plan.unchanged.length, infra: 0 };
  for (const op of plan.operations) {
    if (op.kind === 'create-service' || op.kind === 'create-swarm-service') c.create++;
    else if (op.kind === 'replace-service' || op.kind === 'rollback-service' || op.kind === 'rollback-swarm-service' || (op.kind === 'update-swarm-service' && op.rolls)) c.replace++;
    else if (op.kind === 'update-service' || op.kind === 'update-swarm-service') c.update++;
    else if (op.kind === 'start-service') c.start++;
    else if (op.kind === 'remove-service' || op.kind === 'remove-swarm-service') c.remove++;
    else c.infra++;
  }
  return c;
}

// ───────────────────────────── the engine ─────────────────────────────

export class Engine {
  readonly env: Env;
  readonly #opts: EngineOptions;
  /** One change at a time per project: in this process in arrival order, across processes by the lock file. */
  readonly #locks = new LockManager();
  /** How this machine confines evaluation (user, namespaces): probed at the first load, then reused. */
  #confinement: Promise<Confinement> | undefined;
  /** Places problems at their field's line (see `locateInChild`). */
  readonly #locate: Locator;

  constructor(opts: EngineOptions) {
    this.#opts = opts;
    this.#locate = opts.locateInChild ? locateProblemsInChild : locateProblems;
    this.env = opts.stateDir ? { ...opts.env, WAFFLE_STATE_DIR: opts.stateDir } : { ...opts.env };
  }

  #context(run?: Listener): RunContext {
    return new RunContext(run, this.#opts.onEvent);
  }

  #loadTimeout(): number | undefined {
    if (this.#opts.loadTimeoutMs !== undefined) return this.#opts.loadTimeoutMs;
    const n = Number(this.env.WAFFLE_LOAD_TIMEOUT_MS);
    return Number.isFinite(n) && n > 0 ? n : undefined;
  }

  /** The Docker host for a project: the engine's setting, then DOCKER_HOST, then the config's, then the default socket. */
  dockerHostFor(graph?: Pick<ServiceGraph, 'dockerHost'>): string {
    return this.#opts.dockerHost || this.env.DOCKER_HOST || graph?.dockerHost || 'unix:///var/run/docker.sock';
  }

  /** Loads and validates the source into its graph, with load events on `ctx`. */
  async #graph(source: Source, ctx: RunContext, signal?: AbortSignal): Promise<ServiceGraph> {
    if ('graph' in source) {
      ctx.project = source.graph.project;
      ctx.configFile = source.graph.configFile;
      ctx.emit({ type: 'load-done', files: 0, services: Object.keys(source.graph.services).length, ms: 0, at: Date.now() });
      return source.graph;
    }
    const started = Date.now();
    ctx.stage = 'load';
    ctx.emit({ type: 'load-start', root: source.dir, at: started });
    if (source.configFile) ctx.configFile = source.configFile;
    // The loader takes its environment from us; the sandbox's limits on this machine become notices.
    const loadOpts: LoadOptions = {
      env: this.env,
      ...(source.configFile ? { configFile: source.configFile } : {}),
      ...(this.#opts.allowEnv ? { allowEnv: this.#opts.allowEnv } : {}),
      ...(signal ? { signal } : {}),
      onWarning: (message) => ctx.emit({ type: 'notice', message, at: Date.now() }),
      confinement: (this.#confinement ??= confinement(process.getuid?.())),
      locate: this.#locate,
    };
    const timeoutMs = this.#loadTimeout();
    if (timeoutMs !== undefined) loadOpts.timeoutMs = timeoutMs;
    let repo;
    try {
      repo = await loadRepo(source.dir, loadOpts);
    } catch (e) {
      throw ctx.fail(e, 'load');
    }
    ctx.configFile = repo.configFile;
    const project = typeof repo.config.project === 'string' ? repo.config.project : null;
    if (project) ctx.project = project;
    let graph: ServiceGraph;
    try {
      graph = buildGraph(repo, { locate: this.#locate });
    } catch (e) {
      throw ctx.fail(e, 'validate');
    }
    ctx.project = graph.project;
    const globs = repo.config.services;
    ctx.emit({
      type: 'load-done',
      files: repo.inputs.length,
      services: Object.keys(graph.services).length,
      inputs: repo.inputs,
      serviceGlobs: Array.isArray(globs) ? (globs as string[]) : ['services/*.ts'],
      ms: Date.now() - started,
      at: Date.now(),
    });
    this.#checkSignal(ctx, signal, 'nothing was changed');
    return graph;
  }

  #checkSignal(ctx: RunContext, signal: AbortSignal | undefined, what: string): void {
    if (signal?.aborted) throw ctx.fail(new InterruptedError(what), 'interrupted');
  }

  async #docker(graph: ServiceGraph, ctx: RunContext, signal?: AbortSignal): Promise<Dockerode> {
    if (ctx.docker) return ctx.docker;
    ctx.stage = 'docker';
    try {
      // The run's signal aborts its Docker calls in flight (Ctrl-C, an agent shutting down); the
      // executor's rollbacks run in a detached call scope, which this signal does not reach.
      const { host: _host, ...settings } = dockerSettingsFromEnv(this.env);
      ctx.docker = await connectDocker(this.dockerHostFor(graph), { ...settings, ...(signal ? { signal } : {}) });
    } catch (e) {
      throw ctx.fail(e, 'docker');
    }
    return ctx.docker;
  }

  async #observe(docker: Dockerode, graph: ServiceGraph, ctx: RunContext, opts: { pull?: PullPolicy; offline?: boolean; desired?: boolean }): Promise<ObservedState> {
    const started = Date.now();
    ctx.emit({ type: 'observe-start', at: started });
    ctx.stage = 'docker';
    let observed: ObservedState;
    try {
      observed = await targetFor(graph).observe(docker, graph, {
        // With the desired graph, observe inspects only what labels cannot answer and pulls what policy says.
        ...(opts.desired ? { desired: graph, stateDir: stateDir(graph.project, this.env) } : {}),
        // Offline never asks a registry.
        ...(opts.offline ? { pull: 'missing' as const } : opts.pull ? { pull: opts.pull } : {}),
      });
    } catch (e) {
      throw ctx.fail(e, 'docker');
    }
    ctx.emit({
      type: 'observe-done',
      containers: observed.containers.length,
      networks: observed.networks.length,
      volumes: observed.volumes.length,
      ms: Date.now() - started,
      at: Date.now(),
    });
    return observed;
  }

  /**
   * Reads the project's part of the proxy's configuration into `observed.proxy` (every plan checks it),
   * and returns the services in maintenance (service → page). Nothing for a project without a Caddy ingress.
   */
  async #observeProxy(graph: ServiceGraph, observed: ObservedState, ctx: RunContext, signal?: AbortSignal): Promise<Record<string, string>> {
    if (graph.ingress?.provider !== 'caddy') return {};
    ctx.stage = 'proxy';
    try {
      observed.proxy = await new CaddyAdmin(graph.ingress.admin, signal ? { signal } : {}).read(graph.project);
    } catch (e) {
      throw ctx.fail(e, 'proxy');
    }
    return maintenancePages(stateDir(graph.project, this.env));
  }

  /**
   * `waffle maintenance on|off <service>`: the proxy answers the service's routes with 503 and a page
   * (`page`, else the config's `ingress.maintenancePage`, else a built-in one), or routes them to the
   * container again. The containers keep running; the setting is kept in the state directory, so later
   * applies keep it. Changes only the proxy.
   */
  async maintenance(source: Source, service: string, on: boolean, opts: RunOptions & { page?: string } = {}): Promise<{ graph: ServiceGraph }> {
    const ctx = this.#context(opts.onEvent);
    this.#start(source, ctx, 'maintenance', false);
    try {
      const { graph, commit } = await this.#graphAndCommit(source, ctx, opts.signal);
      ctx.stage = 'validate';
      const svc = graph.services[service];
      if (!svc) throw new Error(`no service "${service}" in project ${graph.project}. Fix: use one of ${Object.keys(graph.services).join(', ') || '(none)'}`);
      if (!svc.routes?.length) throw new Error(`service "${service}" (${svc.file}) has no routes, so there is nothing to answer for it. Fix: add routes: [{ domain: '…' }] to ${svc.file}`);
      if (graph.ingress?.provider !== 'caddy') throw new Error(`maintenance pages need the Caddy ingress; this project uses ${graph.ingress?.provider}. Fix: set ingress.provider: 'caddy' in ${graph.configFile}`);
      let page = DEFAULT_MAINTENANCE_PAGE;
      if (on) {
        const file = opts.page ?? graph.ingress.maintenancePage;
        if (file !== undefined) {
          const { default: fs } = await import('node:fs');
          const { default: path } = await import('node:path');
          try {
            page = fs.readFileSync(path.resolve(graph.root, file), 'utf8');
          } catch (e) {
            throw new Error(`the maintenance page ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). Fix: give a file that exists, relative to ${graph.root}`);
          }
        }
      }
      const docker = await this.#docker(graph, ctx, opts.signal);
      return await this.#locked(graph.project, 'maintenance', ctx, async () => {
        const dir = stateDir(graph.project, this.env);
        const before = maintenancePages(dir);
        setMaintenance(dir, service, on ? page : null);
        try {
          const observed = await this.#observe(docker, graph, ctx, {});
          const maintenance = await this.#observeProxy(graph, observed, ctx, opts.signal);
          const plan = targetFor(graph).plan(graph, observed, { commit, maintenance });
          ctx.stage = 'proxy';
          await new CaddyAdmin(graph.ingress!.admin, opts.signal ? { signal: opts.signal } : {}).push(plan.proxy!);
        } catch (e) {
          // The proxy did not change: the setting goes back to what it was.
          setMaintenance(dir, service, before[service] ?? null);
          throw e;
        }
        ctx.emit({ type: 'notice', message: `maintenance ${on ? 'on' : 'off'} for ${service}: ${on ? 'the proxy answers 503 with the page' : 'the proxy routes to its container again'}`, at: Date.now() });
        return { graph };
      }, opts.signal);
    } catch (e) {
      throw this.#failOnce(ctx, e, ctx.stage === 'proxy' ? 'proxy' : 'validate');
    }
  }

  /** Desired × observed → operations, with planning events. Makes no change. */
  async plan(source: Source, opts: PlanOptions = {}): Promise<Planned> {
    const ctx = this.#context(opts.onEvent);
    return this.#plan(source, ctx, opts);
  }

  async #plan(source: Source, ctx: RunContext, opts: PlanOptions): Promise<Planned> {
    const started = Date.now();
    this.#start(source, ctx, opts.purpose ?? 'plan', !!opts.offline);
    const { graph, commit } = await this.#graphAndCommit(source, ctx, opts.signal);
    return this.#planGraph(graph, commit, ctx, opts, started);
  }

  /** The run's first event. */
  #start(source: Source, ctx: RunContext, kind: RunKind, offline: boolean): void {
    if ('graph' in source) {
      ctx.project = source.graph.project;
      ctx.configFile = source.graph.configFile;
    }
    const root = 'graph' in source ? source.graph.root : source.dir;
    ctx.emit({ type: 'run-start', kind, source: 'graph' in source ? 'graph' : 'dir', root, offline, at: Date.now() });
  }

  async #graphAndCommit(source: Source, ctx: RunContext, signal?: AbortSignal): Promise<{ graph: ServiceGraph; commit: string }> {
    // While the configuration evaluates in its child process: read the commit, and load the Docker
    // client's module (the plan needs it next; imported after the load started, so it does not delay it).
    const commitP = 'graph' in source ? Promise.resolve(source.commit ?? 'none') : currentCommit(source.dir);
    const graphP = this.#graph(source, ctx, signal);
    const warm = 'graph' in source ? undefined : loadDockerode().catch(() => undefined);
    const graph = await graphP.catch(async (e) => {
      await Promise.allSettled([commitP, warm]);
      throw e;
    });
    return { graph, commit: await commitP };
  }

  async #planGraph(graph: ServiceGraph, commit: string, ctx: RunContext, opts: PlanOptions, started = Date.now()): Promise<Planned> {
    const docker = await this.#docker(graph, ctx, opts.signal);
    this.#checkSignal(ctx, opts.signal, 'nothing was changed');

    // Secrets: renew due leases first (one that can no longer be renewed makes this plan replace its
    // service with fresh credentials); never fatal, the session's check below names an unreachable Vault.
    ctx.stage = 'secrets';
    const secretsStarted = Date.now();
    const notChecked = opts.offline ? servicesUsingRemoteSecrets(graph) : [];
    if (graph.vault && !opts.offline) await renewProjectLeases(graph, { env: this.env }).catch(() => undefined);
    let secrets: SecretsSession | undefined;
    try {
      // Offline: only the local (embedded) store is read; services that use Vault are left unchecked.
      secrets = await SecretsSession.open(opts.offline ? withoutServices(graph, notChecked) : graph, { env: this.env });
    } catch (e) {
      throw ctx.fail(locatedIn(graph, e, this.#locate), 'secrets');
    }
    if (secrets) ctx.secrets = secrets;
    const providers = [...new Set(Object.values(graph.services).flatMap((s) => [...secretsUsedBy(s).keys()].map((n) => graph.secrets?.[n]?.provider ?? 'unknown')))].sort();
    if (providers.length) ctx.emit({ type: 'secrets-checked', providers, notChecked, ms: Date.now() - secretsStarted, at: Date.now() });
    this.#checkSignal(ctx, opts.signal, 'nothing was changed');

    const observed = await this.#observe(docker, graph, ctx, { ...opts, desired: true });
    const pins = this.#pinInputs(graph, ctx);
    const maintenance = await this.#observeProxy(graph, observed, ctx, opts.signal);
    const target = targetFor(graph);
    const inputs = await target.planInputs(graph, secrets, commit, { env: this.env });
    let plan = target.plan(graph, observed, { ...inputs, ...(pins ? { pins } : {}), maintenance });
    if (notChecked.length) plan = dropUncheckedSecretChanges(plan, new Set(notChecked));
    const planned = { run: ctx.id, graph, observed, plan, commit, offline: !!opts.offline, notChecked } as Planned;
    // The run's context (Docker client, secrets session) travels with the plan but is not its data: not enumerable, never serialised.
    Object.defineProperty(planned, 'ctx', { value: ctx, enumerable: false });
    ctx.emit({
      type: 'plan-ready',
      operations: plan.operations.length,
      counts: counts(plan),
      notChecked,
      offline: !!opts.offline,
      commit,
      plan,
      ms: Date.now() - started,
      at: Date.now(),
    });
    return planned;
  }

  /**
   * Applies a plan made by `plan()` (continuing its run), or plans `source` and applies it in one run.
   * Waits its turn behind other runs of the project in this process, then holds the project's lock.
   * Returns ok=false when an operation failed (details arrive as events); throws (after a run-failed
   * event) when it could not start.
   */
  async apply(what: Planned | Source, opts: ApplyOptions = {}): Promise<{ ok: boolean; planned: Planned }> {
    if (isPlanned(what)) {
      const ctx = what.ctx;
      if (opts.onEvent) ctx.listeners.unshift(opts.onEvent);
      try {
        if (what.offline) {
          throw ctx.fail(new Error('an offline plan cannot be applied: its secrets were not checked. Fix: run apply without --offline'), 'secrets');
        }
        // Nothing to do: no lock, no Docker call; the stream still opens and closes like a real apply.
        if (what.plan.operations.length === 0) return this.#noop(what);
        await this.#confirm(ctx, opts.confirm && (() => opts.confirm!(what)));
        return await this.#locked(what.graph.project, 'apply', ctx, () => this.#applyPlanned(what, opts), opts.signal);
      } catch (e) {
        throw this.#failOnce(ctx, e, 'apply');
      } finally {
        if (opts.onEvent) ctx.listeners.splice(ctx.listeners.indexOf(opts.onEvent), 1);
      }
    }
    const ctx = this.#context(opts.onEvent);
    const source = what;
    try {
      this.#start(source, ctx, 'apply', !!opts.offline);
      if (opts.offline) throw ctx.fail(new Error('apply cannot run offline: it needs the secrets. Fix: run apply without --offline'), 'secrets');
      // The graph is the one asked for now; it is planned in our turn (holding the lock), against what runs then.
      const { graph, commit } = await this.#graphAndCommit(source, ctx, opts.signal);
      return await this.#locked(graph.project, 'apply', ctx, async () => {
        const planned = await this.#planGraph(graph, commit, ctx, { ...opts, purpose: 'apply' });
        await this.#confirm(ctx, opts.confirm && (() => opts.confirm!(planned)));
        if (planned.plan.operations.length === 0) return this.#noop(planned);
        return this.#applyPlanned(planned, { ...opts, checkStale: false });
      }, opts.signal);
    } catch (e) {
      throw this.#failOnce(ctx, e, 'apply');
    }
  }

  /** The project's rollback pins as the planner reads them; undefined when there is none. */
  #pinInputs(graph: ServiceGraph, ctx: RunContext): Record<string, PinInput> | undefined {
    let pins: Record<string, PinRecord>;
    try {
      pins = new PinStore(graph.project, this.env).read();
    } catch (e) {
      throw ctx.fail(e, 'rollback');
    }
    const out: Record<string, PinInput> = {};
    for (const [service, p] of Object.entries(pins)) out[service] = { generation: p.generation, definitionHash: p.definitionHash, ...(p.swarm ? { swarm: p.swarm } : {}) };
    return Object.keys(out).length > 0 ? out : undefined;
  }

  /** After an apply: forgets the pins its plan dropped (a changed definition, a vanished container), saying so. */
  #forgetDroppedPins(planned: Planned): void {
    const dropped = (planned.plan.pins ?? []).filter((p) => p.state === 'dropped');
    if (dropped.length === 0) return;
    try {
      new PinStore(planned.graph.project, this.env).drop(dropped.map((p) => p.service));
      for (const p of dropped) planned.ctx.emit({ type: 'notice', message: `${p.service}: ${p.detail}`, at: Date.now() });
    } catch (e) {
      planned.ctx.emit({ type: 'notice', message: `could not forget the dropped rollback pins: ${(e as Error).message}`, at: Date.now() });
    }
  }

  #noop(planned: Planned): { ok: boolean; planned: Planned } {
    const { ctx, graph } = planned;
    this.#forgetDroppedPins(planned);
    ctx.emit({ type: 'apply-start', project: graph.project, operations: 0, at: Date.now() });
    ctx.emit({ type: 'apply-done', ok: true, summary: { created: 0, replaced: 0, updated: 0, removed: 0, failed: 0, skipped: 0 }, ms: 0, at: Date.now() });
    return { ok: true, planned };
  }

  /**
   * Runs `fn` holding the project: after earlier runs of it in this process (a `queued` event while
   * waiting), then with the lock file against other processes (a `notice` when a dead holder's lock is taken over).
   */
  async #locked<T>(project: string, what: string, ctx: RunContext, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const asked = Date.now();
    let queued = false;
    const prevStage = ctx.stage;
    ctx.stage = 'lock';
    return this.#locks.withProjectLock(
      project,
      what,
      async () => {
        // Stopped while waiting (whatever the queue made of it): nothing of this run starts.
        if (signal?.aborted) throw new InterruptedError('stopped while waiting for an earlier change of this project; nothing was changed');
        ctx.started = true;
        if (queued) ctx.emit({ type: 'dequeued', waitedMs: Date.now() - asked, at: Date.now() });
        ctx.stage = prevStage;
        return fn();
      },
      {
        env: this.env,
        // Withdraws a run still waiting its turn when its signal aborts (Ctrl-C, an agent shutting down).
        ...(signal ? { signal } : {}),
        onNotice: (n: LockNotice) => {
          if (n.kind === 'lock-queued') {
            queued = true;
            ctx.emit({ type: 'queued', ahead: n.ahead, at: Date.now() });
          } else ctx.emit({ type: 'notice', message: n.message, at: Date.now() });
        },
      },
    ).catch((e) => {
      if (signal?.aborted && !ctx.started) throw new InterruptedError('stopped while waiting for an earlier change of this project; nothing was changed');
      throw e;
    });
  }

  /** Asks the caller's confirmation; a no (or a prompt that failed) cancels the run with a run-cancelled event. */
  async #confirm(ctx: RunContext, ask: (() => Promise<boolean>) | undefined): Promise<void> {
    if (!ask) return;
    let ok: boolean;
    try {
      ok = await ask();
    } catch (e) {
      ctx.emit({ type: 'run-cancelled', reason: (e as Error).message ?? 'the question failed', at: Date.now() });
      if (e instanceof Error) Object.defineProperty(e, 'reported', { value: true, configurable: true });
      throw e;
    }
    if (!ok) {
      ctx.emit({ type: 'run-cancelled', reason: 'not confirmed', at: Date.now() });
      throw new CancelledError();
    }
  }

  /** Emits run-failed unless the error already produced one. */
  #failOnce(ctx: RunContext, e: unknown, stage: FailureStage): Error {
    const error = e instanceof Error ? e : new Error(String(e));
    if (error instanceof CancelledError) return error;
    return ctx.fail(error, error instanceof InterruptedError ? 'interrupted' : error.name === 'ProjectLockedError' ? 'lock' : stage);
  }

  /** Binds secrets and executes; the caller holds the project. */
  async #applyPlanned(planned: Planned, opts: ApplyOptions): Promise<{ ok: boolean; planned: Planned }> {
    const { ctx, graph, plan } = planned;
    this.#checkSignal(ctx, opts.signal, 'nothing was changed');
    const docker = await this.#docker(graph, ctx, opts.signal);
    if (opts.checkStale) {
      ctx.stage = 'stale';
      const target = targetFor(graph);
      const now = await target.status(docker, graph);
      const again = target.plan(graph, now, await target.planInputs(graph, ctx.secrets, planned.commit, { env: this.env }));
      if (again.observedFingerprint !== plan.observedFingerprint) throw ctx.fail(new StalePlanError(graph.project), 'stale');
    }
    this.#checkSignal(ctx, opts.signal, 'nothing was changed');
    // Values go into a copy of the plan, only now (generated secrets are stored, dynamic ones issued).
    ctx.stage = 'secrets';
    let bound;
    try {
      bound = await targetFor(graph).bind(graph, plan, planned.observed, ctx.secrets, { env: this.env });
    } catch (e) {
      throw ctx.fail(locatedIn(graph, e, this.#locate), 'secrets');
    }
    ctx.stage = 'apply';
    try {
      // The apply's own signal also aborts the Docker calls it makes; execute returns only after the
      // operations it interrupted rolled back (bounded in time), so the lock is released after that.
      const proxy = plan.proxy ? { proxy: new CaddyAdmin(plan.proxy.admin) } : {};
      const run = () => targetFor(graph).execute(docker, bound.plan, bound.listen(ctx.emit), { parallelism: graph.parallelism, ...(opts.signal ? { signal: opts.signal } : {}), ...proxy });
      const result = opts.signal ? await withCallLimits({ signal: opts.signal }, run) : await run();
      this.#forgetDroppedPins(planned);
      return { ok: result.ok, planned };
    } catch (e) {
      // Docker's own error texts can quote a request body (environment included): never show a value.
      throw ctx.fail(bound.redactError(e), 'apply');
    } finally {
      // Clean-up never fails an apply: what it could not do now, the next apply does.
      await bound.finish(docker).catch(() => undefined);
    }
  }

  /**
   * Removes everything of the project (and nothing else): containers, networks, volumes if asked, then
   * the credentials that went with them (Vault leases revoked, secret files removed).
   */
  async destroy(source: Source, opts: DestroyOptions = {}): Promise<DestroyReport> {
    const ctx = this.#context(opts.onEvent);
    this.#start(source, ctx, 'destroy', false);
    try {
      const graph = await this.#graph(source, ctx, opts.signal);
      await this.#confirm(ctx, opts.confirm && (() => opts.confirm!(graph.project)));
      const docker = await this.#docker(graph, ctx, opts.signal);
      return await this.#locked(graph.project, 'destroy', ctx, async () => {
        this.#checkSignal(ctx, opts.signal, 'nothing was removed');
        const started = Date.now();
        ctx.stage = 'destroy';
        ctx.emit({ type: 'destroy-start', volumes: !!opts.volumes, at: started });
        // The project's routes leave the proxy too (a route to a removed container would answer 502); on
        // Swarm before the services go, as for a removed service, and Caddy is detached from their networks.
        const proxyErrors: string[] = [];
        const emptyProxy = async () => {
          if (graph.ingress?.provider !== 'caddy') return;
          const empty = { provider: 'caddy' as const, project: graph.project, admin: graph.ingress.admin, server: graph.ingress.server, tls: graph.ingress.tls, routes: [], upstreams: {}, maintenance: {} };
          await new CaddyAdmin(graph.ingress.admin).push(empty).catch((e: Error) => proxyErrors.push(`the proxy's routes of ${graph.project}: ${e.message}`));
        };
        const swarm = graph.target === 'swarm';
        if (swarm) await emptyProxy();
        const removed = await targetFor(graph).destroy(
          docker,
          graph.project,
          { volumes: !!opts.volumes, ...(swarm && graph.ingress?.container ? { proxyContainer: graph.ingress.container } : {}) },
          (e) => ctx.emit({ type: 'destroy-item', state: e.type, what: e.what, name: e.name, ...('message' in e ? { message: e.message } : {}), at: e.at } as DestroyRunEvent),
        );
        removeSecretFiles(graph.project, this.env);
        if (!swarm) await emptyProxy();
        removed.errors.push(...proxyErrors);
        // Kept containers went with the others: no pin can hold any more.
        new PinStore(graph.project, this.env).clear();
        const revoked = await revokeProjectLeases(graph, 'all', { env: this.env }).catch((e: Error) => ({ revoked: [], failed: [{ error: e.message }] }));
        const report: DestroyReport = {
          removed: {
            containers: removed.containers,
            networks: removed.networks,
            volumes: removed.volumes,
            ...(removed.services ? { services: removed.services, secrets: removed.secrets ?? [] } : {}),
          },
          errors: removed.errors,
          revokedLeases: revoked?.revoked.length ?? 0,
          leaseErrors: (revoked?.failed ?? []).map((f) => (f as { error: string }).error),
        };
        ctx.emit({ type: 'destroy-done', ok: report.errors.length === 0, ...report, ms: Date.now() - started, at: Date.now() });
        return report;
      }, opts.signal);
    } catch (e) {
      throw this.#failOnce(ctx, e, 'destroy');
    }
  }

  /**
   * `waffle dev`'s action on a running service: copies `action.sync` into its container, then restarts
   * it when `action.restart`. Holds the project like an apply, so it never races a redeploy.
   */
  async develop(graph: ServiceGraph, action: DevelopAction, opts: RunOptions = {}): Promise<void> {
    const ctx = this.#context(opts.onEvent);
    this.#start({ graph }, ctx, 'develop', false);
    try {
      const docker = await this.#docker(graph, ctx, opts.signal);
      await this.#locked(graph.project, 'develop', ctx, async () => {
        this.#checkSignal(ctx, opts.signal, 'nothing was changed');
        const started = Date.now();
        ctx.stage = 'docker';
        const svc = graph.services[action.service];
        if (!svc) throw new Error(`no service "${action.service}" in project ${graph.project}`);
        const { serviceContainer, syncIntoContainer, restartContainer } = await import('./docker/develop.ts');
        const container = await serviceContainer(docker, graph.project, svc.name);
        await syncIntoContainer(docker, container.id, action.sync);
        // A restart waits for the process's grace period: the call's time limit grows with it.
        if (action.restart) {
          await withCallLimits({ timeoutMs: 30_000 + svc.stopGraceSeconds * 1000 }, () => restartContainer(docker, container.id, svc.stopGraceSeconds));
        }
        ctx.emit({
          type: 'develop-done',
          service: svc.name,
          container: container.name,
          synced: action.sync.map((f) => f.container),
          restarted: action.restart,
          ms: Date.now() - started,
          at: Date.now(),
        });
      }, opts.signal);
    } catch (e) {
      throw this.#failOnce(ctx, e, 'docker');
    }
  }

  /**
   * `waffle rollback <service>`: switches the service back to a kept container (generation `to`, else the
   * newest one older than the current one) through the replace sequence (start, health gate, switch,
   * drain, keep the current one), without a pull, and pins the service to that generation: later
   * applies leave it alone until its definition changes or {@link releasePin}. When the target does not
   * become healthy, the current container keeps serving and no pin is recorded (ok=false, the health
   * output in the op-failed event).
   */
  async rollback(source: Source, service: string, opts: RollbackOptions = {}): Promise<{ ok: boolean; planned: Planned; pin?: PinRecord }> {
    const ctx = this.#context(opts.onEvent);
    this.#start(source, ctx, 'rollback', false);
    try {
      const started = Date.now();
      const { graph, commit } = await this.#graphAndCommit(source, ctx, opts.signal);
      const svc = this.#serviceOf(graph, service, ctx);
      const leased = leasedSecretsOf(graph, svc);
      if (graph.target === 'swarm') return await this.#rollbackSwarm(graph, commit, svc, leased, ctx, opts, started);
      if (leased.length > 0) {
        throw ctx.fail(
          new RollbackError(
            `${service} uses leased credentials (${leased.join(', ')}): they were revoked when its kept containers were stopped, so a kept container cannot serve again. ` +
              `Fix: deploy the earlier definition (git revert, then waffle apply), which issues fresh credentials`,
          ),
          'rollback',
        );
      }
      return await this.#locked(graph.project, 'rollback', ctx, async () => {
        const docker = await this.#docker(graph, ctx, opts.signal);
        // No desired graph: nothing is pulled, nothing inspected but what labels cannot answer.
        const observed = await this.#observe(docker, graph, ctx, { offline: true });
        ctx.stage = 'rollback';
        let target;
        try {
          target = rollbackTarget(observed, service, opts.to);
        } catch (e) {
          throw ctx.fail(e, 'rollback');
        }
        let info: Dockerode.ContainerInspectInfo;
        try {
          info = await docker.getContainer(target.id).inspect();
        } catch (e) {
          throw ctx.fail(e, 'docker');
        }
        const hostPorts = Object.entries(info.HostConfig?.PortBindings ?? {}).flatMap(([key, binds]) =>
          ((binds as Array<{ HostPort?: string }> | null) ?? [])
            .filter((b) => b.HostPort)
            .map((b) => ({ host: Number(b.HostPort), protocol: key.split('/')[1] ?? 'tcp' })),
        );
        const routed = graph.ingress?.provider === 'caddy' && !!svc.routes?.length;
        const plan = planRollback({
          graph,
          observed,
          service,
          target,
          targetNetworks: Object.keys(info.NetworkSettings?.Networks ?? {}),
          targetHostPorts: hostPorts,
          ...(routed ? { route: { network: names.ingressNetwork(graph.project) }, drainSeconds: graph.ingress!.drainSeconds } : {}),
        });
        // A routed service goes back through the proxy: the table the routing step pushes.
        if (routed) {
          const table = proxyTable(graph, observed, plan.operations, maintenancePages(stateDir(graph.project, this.env)));
          if (table) plan.proxy = table;
        }
        const planned = { run: ctx.id, graph, observed, plan, commit, offline: false, notChecked: [] } as unknown as Planned;
        Object.defineProperty(planned, 'ctx', { value: ctx, enumerable: false });
        ctx.emit({ type: 'plan-ready', operations: 1, counts: counts(plan), notChecked: [], offline: false, commit, plan, ms: Date.now() - started, at: Date.now() });
        await this.#confirm(ctx, opts.confirm && (() => opts.confirm!(planned)));
        this.#checkSignal(ctx, opts.signal, 'nothing was changed');

        // The pin is recorded before the switch, so an apply after a crash mid-rollback finishes it
        // instead of undoing it; it is taken back when the rollback fails before the switch.
        const pins = new PinStore(graph.project, this.env);
        const before = pins.get(service);
        const { current } = generationsOf(observed, service);
        const pin: PinRecord = {
          generation: target.generation,
          definitionHash: definitionHash(graph, svc),
          ...(current ? { from: current.generation } : {}),
          commit,
          at: new Date().toISOString(),
        };
        pins.set(service, pin);
        ctx.stage = 'apply';
        // A kept container holds the secret values of its time, which no session here knows to redact: the
        // log tail of a failed target is left out for a service that uses secrets (its health output stays).
        const usesSecrets = !!(svc.secretEnv || svc.secretFiles);
        const emit = (e: ApplyEvent) => {
          if (!usesSecrets || e.type !== 'op-failed' || !e.failure.logTail) return ctx.emit(e);
          const { logTail: _withheld, ...failure } = e.failure;
          ctx.emit({ ...e, failure });
        };
        let ok = false;
        try {
          const proxy = plan.proxy ? { proxy: new CaddyAdmin(plan.proxy.admin) } : {};
          const run = () => execute(docker, plan, emit, { parallelism: 1, ...(opts.signal ? { signal: opts.signal } : {}), ...proxy });
          ok = (opts.signal ? await withCallLimits({ signal: opts.signal }, run) : await run()).ok;
        } finally {
          if (!ok) {
            // Still served by the container it had (the rollback was undone): the earlier pin state is back.
            // Outside the run's signal: an interrupted rollback must still find out who serves.
            const now = await withCallLimits({ detached: true, timeoutMs: 4_000 }, () => observe(docker, graph.project)).catch(() => undefined);
            const serving = now ? generationsOf(now, service).current : undefined;
            if (!now || serving?.id !== target.id) {
              if (before) pins.set(service, before);
              else pins.drop([service]);
            }
          }
        }
        if (ok) {
          ctx.emit({
            type: 'notice',
            message: `${service} is pinned to generation ${target.generation}: applies leave it alone until its definition changes or \`waffle rollback --release ${service}\``,
            at: Date.now(),
          });
        }
        return { ok, planned, ...(ok ? { pin } : {}) };
      }, opts.signal);
    } catch (e) {
      throw this.#failOnce(ctx, e, 'rollback');
    }
  }

  /**
   * `waffle rollback <service>` on Swarm: Swarm's own rollback to the service's previous spec, followed
   * like an update (per-task progress), and a pin so later applies leave the service alone (see
   * targets/swarm/rollback.ts for what is refused before anything changes). The pin is recorded before
   * the request: Swarm finishes a rollback it accepted even when this process stops, and an apply must
   * not undo it then. It is taken back when Swarm did not take the rollback or paused it.
   */
  async #rollbackSwarm(
    graph: ServiceGraph,
    commit: string,
    svc: ServiceSpec,
    leased: string[],
    ctx: RunContext,
    opts: RollbackOptions,
    started: number,
  ): Promise<{ ok: boolean; planned: Planned; pin?: PinRecord }> {
    const service = svc.name;
    return this.#locked(graph.project, 'rollback', ctx, async () => {
      const docker = await this.#docker(graph, ctx, opts.signal);
      const observed = await this.#observe(docker, graph, ctx, { offline: true });
      const history = await this.#swarmHistory(docker, observed, service, ctx);
      ctx.stage = 'rollback';
      const pins = new PinStore(graph.project, this.env);
      const before = pins.get(service);
      let plan: Plan;
      try {
        plan = planSwarmRollback({ graph, observed, service, ...(history ? { history } : {}), ...(opts.to !== undefined ? { to: opts.to } : {}), ...(before ? { pin: before } : {}), leased });
      } catch (e) {
        throw ctx.fail(e, 'rollback');
      }
      const op = plan.operations[0] as Extract<Operation, { kind: 'rollback-swarm-service' }>;
      const planned = { run: ctx.id, graph, observed, plan, commit, offline: false, notChecked: [] } as unknown as Planned;
      Object.defineProperty(planned, 'ctx', { value: ctx, enumerable: false });
      ctx.emit({ type: 'plan-ready', operations: 1, counts: counts(plan), notChecked: [], offline: false, commit, plan, ms: Date.now() - started, at: Date.now() });
      await this.#confirm(ctx, opts.confirm && (() => opts.confirm!(planned)));
      this.#checkSignal(ctx, opts.signal, 'nothing was changed');

      const pin: PinRecord = { generation: op.version, definitionHash: swarmDefinitionHash(graph, svc), commit, at: new Date().toISOString(), swarm: swarmPinOf(op) };
      pins.set(service, pin);
      ctx.stage = 'apply';
      let ok = false;
      try {
        const run = () => targetFor(graph).execute(docker, plan, ctx.emit, { parallelism: 1, ...(opts.signal ? { signal: opts.signal } : {}) });
        ok = (opts.signal ? await withCallLimits({ signal: opts.signal }, run) : await run()).ok;
      } finally {
        if (!ok) {
          // Swarm still going back (an interrupted wait) or gone back: the pin stays. Otherwise the earlier pin state is back.
          // Outside the run's signal: an interrupted rollback must still find out what Swarm does.
          const now = (await withCallLimits({ detached: true, timeoutMs: 4_000 }, () => docker.getService(op.serviceId).inspect()).catch(() => undefined)) as
            | { UpdateStatus?: { State?: string }; Spec?: { Labels?: Record<string, string> } }
            | undefined;
          const state = now?.UpdateStatus?.State;
          const back = (state === 'rollback_started' || state === 'rollback_completed') && now?.Spec?.Labels?.[LABEL.configHash] === op.to.configHash;
          if (!back) {
            if (before) pins.set(service, before);
            else pins.drop([service]);
          }
        }
      }
      if (ok) {
        ctx.emit({
          type: 'notice',
          message: `${service} is pinned to its previous spec (${op.to.image}): applies leave it alone until its definition changes or \`waffle rollback --release ${service}\``,
          at: Date.now(),
        });
      }
      return { ok, planned, ...(ok ? { pin } : {}) };
    }, opts.signal);
  }

  /** A Swarm service's current and previous spec (one inspect), when the project runs it. */
  async #swarmHistory(docker: Dockerode, observed: ObservedState, service: string, ctx: RunContext): Promise<SwarmServiceHistory | undefined> {
    const existing = observed.swarm?.services.find((s) => s.service === service);
    if (!existing) return undefined;
    try {
      return serviceHistoryOf(await docker.getService(existing.id).inspect(), service);
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return undefined;
      throw ctx.fail(e, 'docker');
    }
  }

  /** `waffle rollback --list`: a service's current container, its kept ones (newest first) and its pin. */
  async generations(source: Source, service: string, opts: RunOptions = {}): Promise<GenerationsReport> {
    const ctx = this.#context(opts.onEvent);
    this.#start(source, ctx, 'status', true);
    try {
      const graph = await this.#graph(source, ctx, opts.signal);
      const docker = await this.#docker(graph, ctx, opts.signal);
      const observed = await this.#observe(docker, graph, ctx, { offline: true });
      if (!graph.services[service] && !observed.containers.some((c) => c.service === service)) this.#serviceOf(graph, service, ctx);
      const pin = new PinStore(graph.project, this.env).get(service);
      if (graph.target === 'swarm') {
        // No kept containers on Swarm: the service's current and previous spec, as Swarm keeps them.
        const history = await this.#swarmHistory(docker, observed, service, ctx);
        return { service, kept: [], ...(pin ? { pin } : {}), keep: 0, ...(history ? { swarm: swarmSpecsReport(history) } : {}) };
      }
      return { service, ...generationsOf(observed, service), ...(pin ? { pin } : {}), keep: graph.rollback?.keep ?? DEFAULT_KEEP };
    } catch (e) {
      throw this.#failOnce(ctx, e, 'rollback');
    }
  }

  /** `waffle rollback --release`: forgets the service's pin, so the next apply deploys the repository's version. */
  async releasePin(source: Source, service: string, opts: RunOptions = {}): Promise<{ project: string; released?: PinRecord }> {
    const ctx = this.#context(opts.onEvent);
    this.#start(source, ctx, 'rollback', true);
    try {
      const graph = await this.#graph(source, ctx, opts.signal);
      return await this.#locked(graph.project, 'rollback --release', ctx, async () => {
        const released = new PinStore(graph.project, this.env).drop([service])[service];
        return { project: graph.project, ...(released ? { released } : {}) };
      }, opts.signal);
    } catch (e) {
      throw this.#failOnce(ctx, e, 'rollback');
    }
  }

  /** The service `name` of the graph, else a validation failure listing the services. */
  #serviceOf(graph: ServiceGraph, name: string, ctx: RunContext) {
    const svc = graph.services[name];
    if (svc) return svc;
    throw ctx.fail(
      new Error(`no service "${name}" in project ${graph.project}; services: ${Object.keys(graph.services).join(', ') || '(none)'}. Fix: use one of the names above.`),
      'validate',
    );
  }

  /** Loads and validates only: the graph (load events and problems on `onEvent`). */
  async load(source: Source, opts: RunOptions & { kind?: RunKind } = {}): Promise<ServiceGraph> {
    const ctx = this.#context(opts.onEvent);
    this.#start(source, ctx, opts.kind ?? 'check', true);
    return this.#graph(source, ctx, opts.signal);
  }

  /**
   * `waffle check`: type-checks the repository with the TypeScript compiler (`types`), then loads and
   * validates it. Every problem fails the run (a run-failed event, then a ProblemsError); touches nothing.
   */
  async check(source: Source, opts: RunOptions & { types?: boolean } = {}): Promise<ServiceGraph> {
    const ctx = this.#context(opts.onEvent);
    this.#start(source, ctx, 'check', true);
    if (opts.types && 'dir' in source) {
      const { typecheck } = await import('./check/typecheck.ts');
      const problems = await typecheck(source.dir, source.configFile);
      if (problems.length) throw ctx.fail(new ProblemsError(problems), 'validate');
    }
    return this.#graph(source, ctx, opts.signal);
  }

  /**
   * `waffle check`'s look at secret values: which used keys have none, read-only, never a value in the
   * report; a backend that cannot be read here (no identity, Vault unreachable) is reported not checked.
   */
  async checkSecretValues(graph: ServiceGraph, opts: RunOptions = {}): Promise<import('./secrets/values-check.ts').SecretValuesReport> {
    const ctx = this.#context(opts.onEvent);
    ctx.project = graph.project;
    ctx.configFile = graph.configFile;
    const { checkSecretValues } = await import('./secrets/values-check.ts');
    const report = await checkSecretValues(graph, { env: this.env });
    // Keys without a value fail the check as they would fail a plan (a run-failed event, then the error).
    if (report.problems.length) throw ctx.fail(locatedIn(graph, new ProblemsError(report.problems), this.#locate), 'secrets');
    return report;
  }

  /** What runs for the project now (by its label). */
  async status(source: Source, opts: RunOptions = {}): Promise<{ graph: ServiceGraph; observed: ObservedState; observe: () => Promise<ObservedState> }> {
    const ctx = this.#context(opts.onEvent);
    this.#start(source, ctx, 'status', true);
    const graph = await this.#graph(source, ctx, opts.signal);
    const docker = await this.#docker(graph, ctx, opts.signal);
    const observed = await this.#observe(docker, graph, ctx, { offline: true });
    // Refreshes for `status --watch`, without new events.
    const again = () => targetFor(graph).status(docker, graph);
    return { graph, observed, observe: again };
  }

  /** A service's output, written to `out`; with `follow`, until the signal aborts. */
  async logs(
    source: Source,
    service: string,
    opts: RunOptions & { follow?: boolean; tail?: number | 'all'; out: NodeJS.WritableStream },
  ): Promise<void> {
    const ctx = this.#context(opts.onEvent);
    const graph = await this.#graph(source, ctx, opts.signal);
    if (!graph.services[service]) {
      throw ctx.fail(
        new Error(
          `no service "${service}" in project ${graph.project}; services: ${Object.keys(graph.services).join(', ') || '(none)'}. ` +
            `Fix: use one of the names above.`,
        ),
        'validate',
      );
    }
    const docker = await this.#docker(graph, ctx, opts.signal);
    await streamLogs(docker, graph.project, service, { follow: !!opts.follow, tail: opts.tail ?? 100, ...(opts.signal ? { signal: opts.signal } : {}) }, opts.out);
  }

  /** Renews the project's due Vault leases (`waffle secrets renew`; the agent's timer). */
  async renewLeases(source: Source, opts: RunOptions = {}): Promise<{ graph: ServiceGraph; report: RenewReport | undefined }> {
    const ctx = this.#context(opts.onEvent);
    const graph = await this.#graph(source, ctx, opts.signal);
    return { graph, report: await renewProjectLeases(graph, { env: this.env }) };
  }
}

function isPlanned(x: Planned | Source): x is Planned {
  return 'plan' in x && 'ctx' in x;
}

/** Services that use a secret from a backend other than the local embedded store (Vault). */
function servicesUsingRemoteSecrets(graph: ServiceGraph): string[] {
  const out: string[] = [];
  for (const [name, svc] of Object.entries(graph.services)) {
    for (const secret of secretsUsedBy(svc).keys()) {
      if ((graph.secrets?.[secret]?.provider ?? 'embedded') !== 'embedded') {
        out.push(name);
        break;
      }
    }
  }
  return out.sort();
}

/** The graph without the secret references of `names` (their secrets are not read). */
function withoutServices(graph: ServiceGraph, names: string[]): ServiceGraph {
  if (names.length === 0) return graph;
  const services = { ...graph.services };
  for (const n of names) {
    const { secretEnv: _e, secretFiles: _f, ...rest } = services[n]!;
    services[n] = rest;
  }
  return { ...graph, services };
}

/**
 * An offline plan cannot know whether the unchecked services' secrets changed: their `secrets` and
 * `credentials` causes are dropped (an operation with no other cause leaves the plan, its service counted
 * unchanged), so the plan shows only what is certain.
 */
function dropUncheckedSecretChanges(plan: Plan, unchecked: Set<string>): Plan {
  const dropped = new Set<string>();
  const unchanged = [...plan.unchanged];
  const ops: Operation[] = [];
  for (const op of plan.operations) {
    if (!('service' in op) || !unchecked.has(op.service) || op.kind === 'remove-service' || op.kind === 'create-service') {
      ops.push(op);
      continue;
    }
    const causes = op.causes.filter((c) => c.kind !== 'secrets' && c.kind !== 'credentials');
    if (causes.length === op.causes.length) ops.push(op);
    else if (causes.length > 0) ops.push({ ...op, causes });
    else {
      dropped.add(op.id);
      unchanged.push(op.service);
    }
  }
  return {
    ...plan,
    operations: ops.map((op) => (op.after.some((a) => dropped.has(a)) ? { ...op, after: op.after.filter((a) => !dropped.has(a)) } : op)),
    unchanged: unchanged.sort(),
  };
}

/** Secrets with leases (Vault database and AWS engines) a service's env or files use, by name. */
function leasedSecretsOf(graph: ServiceGraph, svc: ServiceSpec): string[] {
  const refs: Array<{ secret: string }> = [];
  const add = (v: SecretValueSpec) => {
    if ('template' in v) for (const part of v.template) typeof part === 'string' || refs.push(part);
    else refs.push(v);
  };
  for (const v of Object.values(svc.secretEnv ?? {})) add(v);
  for (const f of svc.secretFiles ?? []) add(f);
  const names = new Set(refs.map((r) => r.secret).filter((n) => ['database', 'aws'].includes(graph.secrets?.[n]?.engine ?? '')));
  return [...names].sort();
}
