/**
 * The executor runs a plan's operations and emits events. It makes no decisions: the plan says what,
 * in which order (`after`, a DAG) and how (strategy, health gate). Independent operations run in
 * parallel up to `parallelism`. A failed operation skips everything that (transitively) comes after
 * it; independent ones continue. Image pulls run first: if any fails, nothing else runs, so a missing
 * image leaves Docker untouched.
 *
 * When the signal aborts (Ctrl-C, an agent shutting down), no new operation or step starts, waits
 * (health gates, drains, pulls) and Docker calls in flight are cancelled, and every operation that was
 * in flight undoes what it did as its plan says (a replace: remove the new container, then its
 * `rollback`, e.g. start the old container again; a create: remove the new container), so every
 * service is old or new, never none. That clean-up runs outside the run's signal (a detached call
 * scope) with short time limits of its own and one budget for all of it, so a hung engine cannot hold
 * the process. A replace already past its switch (the new container serves) is left as it is for the
 * next apply, which finishes it with a rename-service.
 */
import type Dockerode from 'dockerode';
import { LABEL } from '../labels.ts';
import type { ApplyEvent, ContainerCreateBody, FailureDetail, Operation, Plan, ProxyTable, ServiceStep, Step, StepTarget } from '../model.ts';
import { dockerErrorMessage, dockerStatus, withCallLimits } from '../docker/client.ts';
import {
  createContainer,
  failureEvidence,
  removeContainer,
  removeContainerQuiet,
  renameContainer,
  startContainer,
  stopContainer,
  updateContainer,
} from '../docker/container.ts';
import { healthDeadlineMs, waitHealthy } from '../docker/health.ts';
import { pullImage } from '../docker/image.ts';
import { createNetwork, createVolume, dropAliases, ensureAliases, removeNetwork } from '../docker/network.ts';

export { waitHealthy, healthDeadlineMs };

export interface ExecuteOptions {
  /** Operations running at once (default 4). */
  parallelism?: number;
  /** Abort: no new operation starts; operations in flight are cancelled and roll back (see the file's comment). */
  signal?: AbortSignal;
  /** Health gate timeout; default derived from each body's healthcheck. */
  healthTimeoutMs?: number;
  /**
   * After the signal aborted, how long all clean-up together may take, ms (default 15 000): a stop of
   * an old container in flight may use the first half, the rollbacks have the rest.
   */
  cleanupMs?: number;
  /** Time limit of one clean-up Docker call, ms (default 4000). */
  cleanupCallMs?: number;
  /** The reverse proxy of a plan with a `proxy` table: what `configure-proxy` and `routing` push the table to. */
  proxy?: ProxyDriver;
}

/** A reverse proxy's adapter, as the executor uses it: make the proxy's configuration of the project what `table` says. */
export interface ProxyDriver {
  push(table: ProxyTable): Promise<void>;
}

/**
 * The run's copy of the plan's proxy table: `routing` steps set a service's address in it, and every
 * change pushes the whole table, one push at a time (parallel operations never interleave).
 */
class ProxyRun {
  #chain: Promise<void> = Promise.resolve();
  constructor(
    private readonly driver: ProxyDriver,
    private readonly table: ProxyTable,
  ) {}

  #push(change: () => void): Promise<void> {
    const next = this.#chain.then(async () => {
      change();
      await this.driver.push(this.table);
    });
    this.#chain = next.catch(() => undefined);
    return next;
  }

  sync(): Promise<void> {
    return this.#push(() => undefined);
  }

  point(service: string, address: string): Promise<void> {
    return this.#push(() => {
      this.table.upstreams[service] = address;
    });
  }
}

const CLEANUP_MS = 15_000;
const CLEANUP_CALL_MS = 4_000;

type Emit = (e: ApplyEvent) => void;

/** An operation failure that carries its evidence. */
class OpFailure extends Error {
  constructor(readonly detail: FailureDetail) {
    super(detail.message);
  }
}

interface OpContext {
  docker: Dockerode;
  emit: Emit;
  opts: ExecuteOptions;
  /** Aborts clean-up calls once the clean-up budget after an abort has run out; never before the run's signal. */
  cleanupSignal: AbortSignal;
  /** Aborts a stop in flight halfway through the clean-up budget, leaving the rest to the rollback. */
  stopSignal: AbortSignal;
  /** The plan's proxy table and its driver, when the plan has one. */
  proxy?: ProxyRun;
}

const aborted = (ctx: OpContext): boolean => !!ctx.opts.signal?.aborted;

/**
 * Runs clean-up Docker calls outside the run's signal (a rollback must still reach the engine after
 * Ctrl-C), each call limited to `cleanupCallMs`, all of them stopped when the clean-up budget runs out.
 */
function cleanup<T>(ctx: OpContext, fn: () => Promise<T>): Promise<T> {
  return withCallLimits({ detached: true, timeoutMs: ctx.opts.cleanupCallMs ?? CLEANUP_CALL_MS, signal: ctx.cleanupSignal }, fn);
}

/** A signal that aborts `ms` after `signal` aborts (the clean-up budget); `dispose` when done. */
function budgetAfter(signal: AbortSignal | undefined, ms: number): { signal: AbortSignal; dispose(): void } {
  const ctl = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const start = () => {
    timer = setTimeout(() => ctl.abort(new Error(`clean-up ran out of its ${ms} ms`)), ms);
    timer.unref?.();
  };
  if (signal?.aborted) start();
  else signal?.addEventListener('abort', start, { once: true });
  return {
    signal: ctl.signal,
    dispose() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', start);
    },
  };
}

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

type OpState = 'pending' | 'running' | 'done' | 'failed' | 'skipped';

export async function execute(docker: Dockerode, plan: Plan, emit: Emit, opts: ExecuteOptions = {}): Promise<{ ok: boolean }> {
  const started = Date.now();
  const parallelism = Math.max(1, opts.parallelism ?? 4);
  const ops = plan.operations;
  const state = new Map<string, OpState>(ops.map((o) => [o.id, 'pending']));
  const summary = { created: 0, replaced: 0, updated: 0, removed: 0, failed: 0, skipped: 0 };
  const budget = budgetAfter(opts.signal, opts.cleanupMs ?? CLEANUP_MS);
  const stopBudget = budgetAfter(opts.signal, (opts.cleanupMs ?? CLEANUP_MS) / 2);
  const ctx: OpContext = { docker, emit, opts, cleanupSignal: budget.signal, stopSignal: stopBudget.signal };
  if (plan.proxy && opts.proxy) ctx.proxy = new ProxyRun(opts.proxy, structuredClone(plan.proxy));

  emit({ type: 'apply-start', project: plan.project, operations: ops.length, at: Date.now() });

  const skip = (op: Operation, reason: string) => {
    state.set(op.id, 'skipped');
    summary.skipped++;
    emit({ type: 'op-skipped', op: op.id, kind: op.kind, service: serviceOf(op), reason, at: Date.now() });
  };

  const runOne = async (op: Operation) => {
    state.set(op.id, 'running');
    const t0 = Date.now();
    emit({ type: 'op-start', op: op.id, kind: op.kind, service: serviceOf(op), at: t0 });
    try {
      // The run's signal also cancels this operation's Docker calls in flight (whatever client made them).
      const containerId = opts.signal ? await withCallLimits({ signal: opts.signal }, () => runOperation(ctx, op)) : await runOperation(ctx, op);
      state.set(op.id, 'done');
      count(summary, op);
      const done: ApplyEvent = { type: 'op-done', op: op.id, kind: op.kind, service: serviceOf(op), ms: Date.now() - t0, at: Date.now() };
      if (containerId) done.containerId = containerId;
      emit(done);
    } catch (err) {
      state.set(op.id, 'failed');
      summary.failed++;
      const message = (err as Error)?.message ?? String(err);
      const failure: FailureDetail =
        err instanceof OpFailure ? err.detail : { message: aborted(ctx) && !/^interrupted\b/.test(message) ? `interrupted: ${message}` : message };
      emit({ type: 'op-failed', op: op.id, kind: op.kind, service: serviceOf(op), failure, ms: Date.now() - t0, at: Date.now() });
    }
  };

  const pulls = ops.filter((o) => o.kind === 'pull-image');
  const rest = ops.filter((o) => o.kind !== 'pull-image');

  try {
    await runDag(pulls, state, parallelism, runOne, skip, opts.signal);
    const failedPulls = pulls.filter((o) => state.get(o.id) !== 'done');
    if (failedPulls.length > 0) {
      const images = failedPulls.map((o) => (o.kind === 'pull-image' ? o.image : o.id)).join(', ');
      const reason = opts.signal?.aborted
        ? 'apply aborted before it started'
        : `image ${images} could not be pulled; nothing was changed`;
      for (const op of rest) skip(op, reason);
    } else {
      await runDag(rest, state, parallelism, runOne, skip, opts.signal);
    }
  } finally {
    budget.dispose();
    stopBudget.dispose();
  }

  const ok = summary.failed === 0 && summary.skipped === 0;
  emit({ type: 'apply-done', ok, summary, ms: Date.now() - started, at: Date.now() });
  return { ok };
}

/** Runs `ops` respecting `after` among all plan ops (ids outside the plan are ignored). */
async function runDag(
  ops: Operation[],
  state: Map<string, OpState>,
  parallelism: number,
  runOne: (op: Operation) => Promise<void>,
  skip: (op: Operation, reason: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  if (ops.length === 0) return;
  let running = 0;
  await new Promise<void>((resolve) => {
    const pump = () => {
      // Skip what can no longer run, to a fixpoint (skips cascade through `after`).
      let changed = true;
      while (changed) {
        changed = false;
        for (const op of ops) {
          if (state.get(op.id) !== 'pending') continue;
          if (signal?.aborted) {
            skip(op, 'apply aborted before it started');
            changed = true;
            continue;
          }
          const bad = op.after.find((dep) => {
            const s = state.get(dep);
            return s === 'failed' || s === 'skipped';
          });
          if (bad) {
            skip(op, `${bad} ${state.get(bad) === 'failed' ? 'failed' : 'was skipped'}`);
            changed = true;
          }
        }
      }
      for (const op of ops) {
        if (running >= parallelism) break;
        if (state.get(op.id) !== 'pending') continue;
        const ready = op.after.every((dep) => !state.has(dep) || state.get(dep) === 'done');
        if (!ready) continue;
        running++;
        state.set(op.id, 'running');
        void runOne(op).finally(() => {
          running--;
          pump();
        });
      }
      const pending = ops.filter((o) => state.get(o.id) === 'pending');
      if (running === 0 && pending.length > 0) {
        // Nothing runs and nothing can start: a cycle in `after` (a planner bug).
        for (const op of pending) skip(op, `dependency cycle among ${pending.map((p) => p.id).join(', ')}`);
      }
      if (running === 0 && ops.every((o) => state.get(o.id) !== 'pending' && state.get(o.id) !== 'running')) resolve();
    };
    pump();
  });
}

function serviceOf(op: Operation): string | undefined {
  return 'service' in op ? op.service : undefined;
}

function count(summary: { created: number; replaced: number; updated: number; removed: number }, op: Operation): void {
  if (op.kind === 'create-service') summary.created++;
  else if (op.kind === 'replace-service' || op.kind === 'rollback-service') summary.replaced++;
  else if (op.kind === 'update-service' || op.kind === 'start-service' || op.kind === 'rename-service') summary.updated++;
  else if (op.kind === 'remove-service') summary.removed++;
}

function step(ctx: OpContext, op: Operation, s: Step, detail?: string): void {
  const e: ApplyEvent = { type: 'step', op: op.id, service: serviceOf(op), step: s, at: Date.now() };
  if (detail) e.detail = detail;
  ctx.emit(e);
}

/** Runs one operation. Returns the resulting container id, if any. Throws on failure. */
async function runOperation(ctx: OpContext, op: Operation): Promise<string | undefined> {
  const { docker } = ctx;
  switch (op.kind) {
    case 'pull-image':
      step(ctx, op, 'pulling', op.image);
      await pullImage(docker, op.image, (p) =>
        ctx.emit({ type: 'pull-progress', op: op.id, image: op.image, ...p, at: Date.now() }),
      );
      return undefined;
    case 'create-network': {
      step(ctx, op, 'creating', op.network);
      await createNetwork(docker, op.body);
      return undefined;
    }
    case 'remove-network':
      step(ctx, op, 'removing', op.network);
      await removeNetwork(docker, op.network);
      return undefined;
    case 'create-volume':
      step(ctx, op, 'creating', op.volume);
      await createVolume(docker, op.volume, op.labels);
      return undefined;
    case 'configure-proxy':
      step(ctx, op, 'routing', op.causes.map((c) => c.detail).join('; '));
      await proxyOf(ctx, op).sync();
      return undefined;
    case 'create-service':
      return createService(ctx, op);
    case 'replace-service':
      return replaceService(ctx, op);
    case 'rename-service':
      return renameService(ctx, op);
    case 'rollback-service':
      return rollbackService(ctx, op);
    case 'update-service':
      step(ctx, op, 'updating', describeUpdate(op.update));
      await updateContainer(docker, op.containerId, op.update);
      return op.containerId;
    case 'start-service': {
      step(ctx, op, 'starting');
      await startContainer(docker, op.containerId);
      if (op.waitHealthy) {
        const info = await docker.getContainer(op.containerId).inspect();
        const body = { Healthcheck: info.Config?.Healthcheck as ContainerCreateBody['Healthcheck'] };
        const health = await gate(ctx, op, op.service, op.containerId, body);
        if (!health.ok && aborted(ctx)) {
          throw new OpFailure({ message: `service ${op.service}: interrupted while waiting-health; its container was started and stays (the next apply checks it)` });
        }
        if (!health.ok) {
          throw new OpFailure(
            await failureEvidence(docker, op.containerId, `service ${op.service} did not become healthy: ${health.reason}`),
          );
        }
      }
      if (op.route) await routeTo(ctx, op, op.containerId, op.route.network);
      return op.containerId;
    }
    case 'remove-service':
      step(ctx, op, 'stopping', `${op.containerName} (up to ${op.stopTimeout} s)`);
      await stopContainer(docker, op.containerId, op.stopTimeout);
      step(ctx, op, 'removing', op.containerName);
      await removeContainer(docker, op.containerId, { v: false });
      return undefined;
  }
}

function describeUpdate(u: Extract<Operation, { kind: 'update-service' }>['update']): string {
  const parts: string[] = [];
  if (u.RestartPolicy) parts.push(`restart ${u.RestartPolicy.Name}`);
  if (u.Memory !== undefined) parts.push(`memory ${u.Memory}`);
  if (u.NanoCpus !== undefined) parts.push(`cpus ${u.NanoCpus / 1e9}`);
  return parts.join(', ');
}

/** Health gate with health-wait events. */
async function gate(
  ctx: OpContext,
  op: Operation,
  service: string,
  id: string,
  body: Pick<ContainerCreateBody, 'Healthcheck'>,
) {
  step(ctx, op, 'waiting-health');
  return waitHealthy(ctx.docker, id, {
    timeoutMs: ctx.opts.healthTimeoutMs ?? healthDeadlineMs(body),
    onStatus: (status, deadline) => ctx.emit({ type: 'health-wait', op: op.id, service, status, deadline, at: Date.now() }),
  });
}

/**
 * Creates and starts a container, then health-gates it if asked. On failure the new container is
 * removed and an OpFailure with health output and log tail is thrown.
 */
async function startNew(ctx: OpContext, op: Extract<Operation, { kind: 'create-service' }>, name: string): Promise<string> {
  const { docker } = ctx;
  const definedAt = op.body.Labels[LABEL.definedAt];
  // Interrupted: the new container goes (the service had none before), outside the run's signal.
  const interrupted = async (at: Step, id: string | undefined): Promise<never> => {
    const removed = await removeNew(ctx, id, name, op.body);
    step(ctx, op, 'rolling-back', removed);
    throw new OpFailure({ message: `service ${op.service}: interrupted while ${at}; rolled back: ${removed}` });
  };
  step(ctx, op, 'creating', name);
  let container: Dockerode.Container;
  try {
    container = await createContainer(docker, name, op.body);
  } catch (err) {
    if (aborted(ctx)) return interrupted('creating', undefined);
    throw new OpFailure(withDefinedAt({ message: `service ${op.service}: ${(err as Error).message}` }, definedAt));
  }
  const id = container.id;
  if (aborted(ctx)) return interrupted('creating', id);
  try {
    step(ctx, op, 'starting', name);
    await startContainer(docker, id);
  } catch (err) {
    if (aborted(ctx)) return interrupted('starting', id);
    const message = `service ${op.service}: ${(err as Error).message}${startFix((err as Error).message)}`;
    const detail = await failureEvidence(docker, id, message, definedAt);
    await cleanup(ctx, () => removeContainerQuiet(docker, id));
    throw new OpFailure(detail);
  }
  if (op.waitHealthy) {
    if (aborted(ctx)) return interrupted('starting', id);
    const health = await gate(ctx, op, op.service, id, op.body);
    if (!health.ok) {
      if (aborted(ctx)) return interrupted('waiting-health', id);
      const detail = await failureEvidence(docker, id, `service ${op.service} did not become healthy: ${health.reason}`, definedAt);
      await cleanup(ctx, () => removeContainerQuiet(docker, id));
      throw new OpFailure(detail);
    }
  }
  return id;
}

/**
 * Removes the container an operation made, outside the run's signal: by id, or, when the create call
 * was cut off (Docker may have made it anyway), by its name if it carries the operation's project and
 * service labels and is not `keepId`. Returns what was done, for the message; never throws.
 */
async function removeNew(ctx: OpContext, id: string | undefined, name: string, body: ContainerCreateBody, keepId?: string): Promise<string> {
  const { docker } = ctx;
  try {
    return await cleanup(ctx, async () => {
      let target = id;
      if (!target) {
        let info: Dockerode.ContainerInspectInfo;
        try {
          info = await docker.getContainer(name).inspect();
        } catch (err) {
          if (dockerStatus(err) === 404) return 'no new container was made';
          throw err;
        }
        const labels = info.Config?.Labels ?? {};
        const ours = labels[LABEL.project] === body.Labels[LABEL.project] && labels[LABEL.service] === body.Labels[LABEL.service];
        if (!ours || info.Id === keepId) return 'no new container was made';
        target = info.Id;
      }
      await removeContainer(docker, target, { force: true, v: false });
      return `removed the new container ${name}`;
    });
  } catch (err) {
    return `could not remove the new container ${name} (${dockerErrorMessage(err)}); the next apply removes it`;
  }
}

/** The fix for a start failure Docker explains only in its own terms: a host port already in use. */
function startFix(message: string): string {
  const m = /Bind for (?:\[[^\]]*\]|[^\s]*):(\d+) failed: port is already allocated|listen \w+ (?:\[[^\]]*\]|[^\s]*):(\d+): bind: address already in use/.exec(message);
  if (!m) return '';
  const port = m[1] ?? m[2];
  return (
    `. Fix: host port ${port} is taken by another container or program (\`docker ps --filter publish=${port}\` finds a container); ` +
    'stop it, or publish another host port in `ports`'
  );
}

function withDefinedAt(d: FailureDetail, definedAt?: string): FailureDetail {
  if (definedAt) d.definedAt = definedAt;
  return d;
}

async function createService(ctx: OpContext, op: Extract<Operation, { kind: 'create-service' }>): Promise<string> {
  const id = await startNew(ctx, op, op.containerName);
  // The health gate passed: only now does the proxy route to it (its routes were absent until here).
  if (op.route) await routeTo(ctx, op, id, op.route.network);
  return id;
}

function proxyOf(ctx: OpContext, op: Operation): ProxyRun {
  if (!ctx.proxy) throw new Error(`${op.id}: the plan routes through a proxy, but no proxy was given to apply it`);
  return ctx.proxy;
}

/** Points the service's routes at the container's address on the ingress `network` (one push of the proxy's table). */
async function routeTo(ctx: OpContext, op: Operation & { service: string }, containerId: string, network: string, name?: string): Promise<void> {
  const info = await ctx.docker.getContainer(containerId).inspect();
  const address = info.NetworkSettings?.Networks?.[network]?.IPAddress;
  if (!address) throw new OpFailure({ message: `service ${op.service}: its container has no address on ${network}, so the proxy cannot reach it` });
  step(ctx, op, 'routing', `${op.service} → ${name ?? info.Name.replace(/^\//, '')} (${address})`);
  try {
    await proxyOf(ctx, op).point(op.service, address);
  } catch (err) {
    throw new OpFailure({ message: `service ${op.service}: the proxy could not be pointed at the new container: ${(err as Error).message}` });
  }
}

/** The steps up to (not including) this index can be rolled back: the old container has not been let go yet. */
function pointOfNoReturn(steps: ServiceStep[]): number {
  const created = steps.findIndex((s) => s.step === 'creating');
  const i = steps.findIndex(
    (s, idx) =>
      s.step === 'unaliasing-old' ||
      s.step === 'draining' ||
      s.step === 'removing-old' ||
      s.step === 'retaining-old' ||
      s.step === 'renaming' ||
      (s.step === 'stopping-old' && created >= 0 && idx > created),
  );
  return i < 0 ? steps.length : i;
}

/**
 * Runs a replace-like operation's steps in order. A step that fails (or is interrupted) past the point
 * of no return is left for the next apply (`afterSwitch` says so); before it, the plan's rollback runs
 * outside the run's signal, and `undo` turns what happened into the operation's failure.
 */
async function runStepsOrUndo(
  ctx: OpContext,
  op: Extract<Operation, { kind: 'replace-service' | 'rollback-service' }>,
  run: StepRun,
  how: {
    afterSwitch: (where: string) => string;
    /** Before the rollback steps run: what is undone first, and the `rolling-back` detail. */
    beforeUndo: (s: ServiceStep, interrupted: boolean) => Promise<{ undone: string[]; detail: string }>;
    /** The failure message of an interrupted operation, from what was undone and what failed to be. */
    interruptedMessage: (where: string, undone: string[], undoFailed: string) => string;
    /** What a rollback step that worked adds to `undone`. */
    undoneBy?: (r: ServiceStep) => string | undefined;
    /** Prefix of the `rolling back failed` text (`also ` when something was undone). */
    failedPrefix?: (undone: string[]) => string;
  },
): Promise<void> {
  const limit = pointOfNoReturn(op.steps);
  for (let i = 0; i < op.steps.length; i++) {
    const s = op.steps[i]!;
    // Interrupted between steps: the next one does not start (`err` stays undefined).
    let err: unknown;
    if (!aborted(ctx)) {
      try {
        await runStep(ctx, op, s, run);
        continue;
      } catch (e) {
        err = e;
      }
    }
    const interrupted = aborted(ctx);
    const where = err === undefined ? `before ${s.step}` : `while ${s.step}`;
    if (i >= limit) {
      if (!interrupted) throw err;
      throw new OpFailure({ message: how.afterSwitch(where) });
    }
    const { undone, detail } = await how.beforeUndo(s, interrupted);
    step(ctx, op, 'rolling-back', detail);
    const failedUndo: string[] = [];
    for (const r of op.rollback) {
      try {
        await cleanup(ctx, () => runStep(ctx, op, r, run));
        const done = how.undoneBy?.(r);
        if (done) undone.push(done);
      } catch (undoErr) {
        failedUndo.push((undoErr as Error).message);
      }
    }
    const undoFailed = failedUndo.length ? `; rolling back ${how.failedPrefix?.(undone) ?? ''}failed: ${failedUndo.join('; ')}` : '';
    if (interrupted) throw new OpFailure({ message: how.interruptedMessage(where, undone, undoFailed) });
    if (err instanceof OpFailure) err.detail.message += undoFailed;
    throw err;
  }
}

/**
 * A replace: runs the plan's steps in order. A step that fails (or is interrupted) before the old
 * container is let go removes the new container (its evidence taken first) and runs the plan's
 * rollback, outside the run's signal; later failures and interruptions leave both containers for the
 * next apply, which finishes the job with a rename-service.
 */
async function replaceService(ctx: OpContext, op: Extract<Operation, { kind: 'replace-service' }>): Promise<string> {
  const run: StepRun = { newId: undefined };
  await runStepsOrUndo(ctx, op, run, {
    afterSwitch: (where) =>
      `service ${op.service}: interrupted ${where}, after the switch: the new container ${op.tempName} serves, so nothing was rolled back; ` +
      `left for the next apply, which finishes the replacement (renames it to ${op.containerName})`,
    beforeUndo: async (s, interrupted) => {
      const undone: string[] = [];
      // A create cut off by the interruption may still have made the container: removeNew finds it by name.
      if (run.newId || (interrupted && s.step === 'creating')) undone.push(await removeNew(ctx, run.newId, op.tempName, op.body, op.oldContainerId));
      const planned = op.rollback.map((r) => (r.step === 'starting' && r.target !== 'new' ? `starting ${r.target.name} again` : r.step)).join(', ');
      const detail = [...undone, planned || `${op.oldContainerName} keeps running`].join('; ');
      if (op.rollback.length === 0) undone.push(`${op.oldContainerName} kept running`);
      return { undone, detail };
    },
    undoneBy: (r) => (r.step === 'starting' && r.target !== 'new' ? `started ${r.target.name} again` : undefined),
    failedPrefix: (undone) => (undone.length ? 'also ' : ''),
    interruptedMessage: (where, undone, undoFailed) => `service ${op.service}: interrupted ${where}${undone.length ? `; rolled back: ${undone.join(', ')}` : ''}${undoFailed}`,
  });
  return run.newId ?? op.oldContainerId;
}

/**
 * A rollback: the replace sequence with a kept container as the new one (restore its restart policy,
 * start it, wait for health, switch, let the current one go and keep it). A step that fails (or is
 * interrupted) before the current container is let go runs the plan's rollback outside the run's signal
 * (the target is stopped and kept again; stop-first: the current one starts again), so the current one
 * keeps serving; later failures leave both for the next apply, which finishes the switch.
 */
async function rollbackService(ctx: OpContext, op: Extract<Operation, { kind: 'rollback-service' }>): Promise<string> {
  const run: StepRun = { newId: undefined };
  await runStepsOrUndo(ctx, op, run, {
    afterSwitch: (where) =>
      `service ${op.service}: interrupted ${where}, after the switch: ${op.targetName} serves, so nothing was rolled back; left for the next apply, which finishes the rollback`,
    beforeUndo: async () => ({ undone: [], detail: `${op.targetName} is stopped and kept again${op.currentName ? `; ${op.currentName} keeps serving` : ''}` }),
    interruptedMessage: (where, _undone, undoFailed) => `service ${op.service}: interrupted ${where}; ${op.targetName} was stopped again${undoFailed}`,
  });
  return op.targetId;
}

/** Finishes an interrupted replace: the kept container already has the desired configuration. */
async function renameService(ctx: OpContext, op: Extract<Operation, { kind: 'rename-service' }>): Promise<string> {
  const run: StepRun = { newId: undefined };
  for (const s of op.steps) await runStep(ctx, op, s, run);
  return op.containerId;
}

interface StepRun {
  /** The container this operation created, once created. */
  newId: string | undefined;
}

/** Runs one planned step: one Docker call (an alias move is a disconnect and a connect) or one wait. */
async function runStep(
  ctx: OpContext,
  op: Extract<Operation, { kind: 'replace-service' | 'rename-service' | 'rollback-service' }>,
  s: ServiceStep,
  run: StepRun,
): Promise<void> {
  const { docker } = ctx;
  const definedAt = op.kind === 'replace-service' ? op.body.Labels[LABEL.definedAt] : undefined;
  const idOf = (t: StepTarget): string => {
    if (t !== 'new') return t.id;
    if (!run.newId) throw new Error(`service ${op.service}: a step needs the new container before it was created`);
    return run.newId;
  };
  const nameOf = (t: StepTarget): string =>
    t !== 'new' ? t.name : op.kind === 'replace-service' ? op.tempName : op.kind === 'rollback-service' ? op.targetName : op.currentName;
  switch (s.step) {
    case 'creating': {
      if (op.kind !== 'replace-service') throw new Error(`service ${op.service}: only a replace creates a container`);
      step(ctx, op, 'creating', s.name);
      try {
        const c = await createContainer(docker, s.name, op.body, { removeStale: true, keepId: op.oldContainerId });
        run.newId = c.id;
      } catch (err) {
        throw new OpFailure(withDefinedAt({ message: `service ${op.service}: ${(err as Error).message}` }, definedAt));
      }
      return;
    }
    case 'starting': {
      step(ctx, op, 'starting', nameOf(s.target));
      const id = idOf(s.target);
      try {
        await startContainer(docker, id);
      } catch (err) {
        const message = `service ${op.service}: ${(err as Error).message}${startFix((err as Error).message)}`;
        throw new OpFailure(s.target === 'new' || op.kind === 'rollback-service' ? await failureEvidence(docker, id, message, definedAt) : { message });
      }
      return;
    }
    case 'waiting-health': {
      const id = idOf(s.target);
      let hc: Pick<ContainerCreateBody, 'Healthcheck'>;
      if (s.target === 'new' && op.kind === 'replace-service') hc = op.body;
      else {
        const info = await docker.getContainer(id).inspect();
        hc = { Healthcheck: info.Config?.Healthcheck as ContainerCreateBody['Healthcheck'] };
      }
      const health = await gate(ctx, op, op.service, id, hc);
      if (!health.ok && aborted(ctx)) throw new Error(`service ${op.service}: the health gate was cancelled`);
      if (!health.ok) {
        throw new OpFailure(await failureEvidence(docker, id, `service ${op.service} did not become healthy: ${health.reason}`, definedAt));
      }
      return;
    }
    case 'switching':
      await withStep(ctx, op, 'switching', `${s.aliases.join(', ')} → ${nameOf(s.target)} on ${s.network}`, () =>
        ensureAliases(docker, idOf(s.target), s.network, s.aliases),
      );
      return;
    case 'unaliasing-old':
      await withStep(ctx, op, 'unaliasing-old', `${s.target.name} leaves ${s.aliases.join(', ')} on ${s.network}`, () =>
        dropAliases(docker, s.target.id, s.network, s.aliases),
      );
      return;
    case 'routing':
      await routeTo(ctx, op, idOf(s.target), s.network, nameOf(s.target));
      return;
    case 'draining':
      step(ctx, op, 'draining', `${s.seconds} s`);
      await sleep(s.seconds * 1000, ctx.opts.signal);
      return;
    case 'stopping-old': {
      const why = op.kind === 'replace-service' && op.strategy === 'stop-first' ? ` (${op.strategyReason})` : '';
      step(ctx, op, 'stopping-old', `${s.target.name}${why}`);
      // The old container drains with its own stop grace period (its StopTimeout), not the new spec's.
      // A stop Docker has received goes on in the engine even if our call is cancelled, so it is not
      // cancelled by the run's signal (only halfway through the clean-up budget): a rollback then starts
      // the old container after it stopped, not while it is stopping (Docker would answer "already started").
      await withCallLimits({ detached: true, signal: ctx.stopSignal }, () => stopContainer(docker, s.target.id, undefined));
      return;
    }
    case 'removing-old':
      step(ctx, op, 'removing-old', s.target.name);
      await removeContainer(docker, s.target.id, { force: true, v: false });
      return;
    case 'renaming':
      step(ctx, op, 'renaming', `${s.from} → ${s.to}`);
      await renameContainer(docker, idOf(s.target), s.to);
      return;
    case 'retaining-old':
      // Stopped, it must stay stopped: a restarted engine would start it again under `always`.
      step(ctx, op, 'retaining-old', s.to === s.target.name ? s.target.name : `${s.target.name} → ${s.to}`);
      await updateContainer(docker, s.target.id, { RestartPolicy: { Name: 'no', MaximumRetryCount: 0 } });
      if (s.to !== s.target.name) await renameContainer(docker, s.target.id, s.to);
      return;
    case 'restoring':
      step(ctx, op, 'restoring', `${s.target.name}: restart policy ${s.restart.name}`);
      await updateContainer(docker, s.target.id, { RestartPolicy: { Name: s.restart.name, MaximumRetryCount: s.restart.maximumRetryCount } });
      return;
  }
}

/** Emits a step event, then runs its one Docker action. */
async function withStep<T>(ctx: OpContext, op: Operation, s: Step, detail: string, fn: () => Promise<T>): Promise<T> {
  step(ctx, op, s, detail);
  return fn();
}
