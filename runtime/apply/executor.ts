/**
 * The executor runs a plan's operations and emits events. It makes no decisions: the plan says what,
 * in which order (`after`, a DAG) and how (strategy, health gate). Independent operations run in
 * parallel up to `parallelism`. A failed operation skips everything that (transitively) comes after
 * it; independent ones continue. Image pulls run first: if any fails, nothing else runs, so a missing
 * image leaves Docker untouched. When the signal aborts, no new operation starts and running ones
 * finish, so every service is old or new, never none.
 */
import type Dockerode from 'dockerode';
import { LABEL } from '../labels.ts';
import type { ApplyEvent, ContainerCreateBody, FailureDetail, Operation, Plan, Step } from '../model.ts';
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
import { createNetwork, createVolume, removeNetwork } from '../docker/network.ts';

export { waitHealthy, healthDeadlineMs };

export interface ExecuteOptions {
  /** Operations running at once (default 4). */
  parallelism?: number;
  /** Abort: start no new operation; running ones finish. */
  signal?: AbortSignal;
  /** Health gate timeout; default derived from each body's healthcheck. */
  healthTimeoutMs?: number;
}

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
}

type OpState = 'pending' | 'running' | 'done' | 'failed' | 'skipped';

export async function execute(docker: Dockerode, plan: Plan, emit: Emit, opts: ExecuteOptions = {}): Promise<{ ok: boolean }> {
  const started = Date.now();
  const parallelism = Math.max(1, opts.parallelism ?? 4);
  const ops = plan.operations;
  const state = new Map<string, OpState>(ops.map((o) => [o.id, 'pending']));
  const summary = { created: 0, replaced: 0, updated: 0, removed: 0, failed: 0, skipped: 0 };
  const ctx: OpContext = { docker, emit, opts };

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
      const containerId = await runOperation(ctx, op);
      state.set(op.id, 'done');
      count(summary, op);
      const done: ApplyEvent = { type: 'op-done', op: op.id, kind: op.kind, service: serviceOf(op), ms: Date.now() - t0, at: Date.now() };
      if (containerId) done.containerId = containerId;
      emit(done);
    } catch (err) {
      state.set(op.id, 'failed');
      summary.failed++;
      const failure: FailureDetail = err instanceof OpFailure ? err.detail : { message: (err as Error)?.message ?? String(err) };
      emit({ type: 'op-failed', op: op.id, kind: op.kind, service: serviceOf(op), failure, ms: Date.now() - t0, at: Date.now() });
    }
  };

  const pulls = ops.filter((o) => o.kind === 'pull-image');
  const rest = ops.filter((o) => o.kind !== 'pull-image');

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
  else if (op.kind === 'replace-service') summary.replaced++;
  else if (op.kind === 'update-service' || op.kind === 'start-service') summary.updated++;
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
    case 'create-service':
      return createService(ctx, op);
    case 'replace-service':
      return op.strategy === 'stop-first' ? replaceStopFirst(ctx, op) : replaceStartFirst(ctx, op);
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
        if (!health.ok) {
          throw new OpFailure(
            await failureEvidence(docker, op.containerId, `service ${op.service} did not become healthy: ${health.reason}`),
          );
        }
      }
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
async function startNew(
  ctx: OpContext,
  op: Extract<Operation, { kind: 'create-service' | 'replace-service' }>,
  name: string,
  keepId?: string,
): Promise<string> {
  const { docker } = ctx;
  const definedAt = op.body.Labels[LABEL.definedAt];
  step(ctx, op, 'creating', name);
  let container: Dockerode.Container;
  try {
    container = await createContainer(docker, name, op.body, { removeStale: op.kind === 'replace-service', keepId });
  } catch (err) {
    throw new OpFailure(withDefinedAt({ message: `service ${op.service}: ${(err as Error).message}` }, definedAt));
  }
  const id = container.id;
  try {
    step(ctx, op, 'starting', name);
    await startContainer(docker, id);
  } catch (err) {
    const message = `service ${op.service}: ${(err as Error).message}${startFix((err as Error).message)}`;
    const detail = await failureEvidence(docker, id, message, definedAt);
    await removeContainerQuiet(docker, id);
    throw new OpFailure(detail);
  }
  if (op.waitHealthy) {
    const health = await gate(ctx, op, op.service, id, op.body);
    if (!health.ok) {
      const detail = await failureEvidence(docker, id, `service ${op.service} did not become healthy: ${health.reason}`, definedAt);
      await removeContainerQuiet(docker, id);
      throw new OpFailure(detail);
    }
  }
  return id;
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
  return startNew(ctx, op, op.containerName);
}

/** Create-before-delete: the old container keeps serving until the new one is healthy. */
async function replaceStartFirst(ctx: OpContext, op: Extract<Operation, { kind: 'replace-service' }>): Promise<string> {
  const { docker } = ctx;
  let id: string;
  try {
    id = await startNew(ctx, op, op.tempName, op.oldContainerId);
  } catch (err) {
    step(ctx, op, 'rolling-back', `removed the new container; ${op.oldContainerName} keeps running`);
    throw err;
  }
  step(ctx, op, 'switching', `${op.oldContainerName} → ${op.tempName}`);
  step(ctx, op, 'stopping-old', op.oldContainerName);
  // The old container drains with its own stop grace period (its StopTimeout), not the new spec's.
  await stopContainer(docker, op.oldContainerId, undefined);
  step(ctx, op, 'removing-old', op.oldContainerName);
  await removeContainer(docker, op.oldContainerId, { force: true, v: false });
  step(ctx, op, 'renaming', `${op.tempName} → ${op.containerName}`);
  await renameContainer(docker, id, op.containerName);
  return id;
}

/** Stop-then-start (a fixed host port cannot overlap): on failure the old container starts again. */
async function replaceStopFirst(ctx: OpContext, op: Extract<Operation, { kind: 'replace-service' }>): Promise<string> {
  const { docker } = ctx;
  step(ctx, op, 'stopping-old', `${op.oldContainerName} (${op.strategyReason})`);
  await stopContainer(docker, op.oldContainerId, undefined);
  let id: string;
  try {
    id = await startNew(ctx, op, op.tempName, op.oldContainerId);
  } catch (err) {
    step(ctx, op, 'rolling-back', `starting ${op.oldContainerName} again`);
    try {
      await startContainer(docker, op.oldContainerId);
    } catch (restartErr) {
      if (err instanceof OpFailure) {
        err.detail.message += `; rolling back also failed: ${(restartErr as Error).message}`;
      }
    }
    throw err;
  }
  step(ctx, op, 'removing-old', op.oldContainerName);
  await removeContainer(docker, op.oldContainerId, { force: true, v: false });
  step(ctx, op, 'renaming', `${op.tempName} → ${op.containerName}`);
  await renameContainer(docker, id, op.containerName);
  return id;
}
