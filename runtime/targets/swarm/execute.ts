/**
 * The Swarm executor: runs a (bound) Swarm plan's operations in dependency order, several at once, and
 * reports them as events. It makes no decisions: Swarm runs each rolling update itself (in the order,
 * pace and failure action of the service's `rollout`), and this file follows it:
 *
 * - after a create, an update or a scale it reads the service (its `UpdateStatus`) and its tasks once a
 *   second, and emits a `task-progress` event whenever a task changes state;
 * - an update is done when Swarm says `completed`. When Swarm says `rollback_completed`,
 *   `rollback_paused` or `paused`, the operation FAILS with Swarm's message and the errors of the tasks
 *   that failed (`unhealthy container`, `task: non-zero exit (1)`): the service runs its previous
 *   definition, which is not what was asked;
 * - a create or a scale is done when the service's running tasks number its replicas; tasks that keep
 *   failing, or a deadline, fail it;
 * - a rollback asked for (`waffle rollback`: `rollback=previous`, Swarm goes back to the previous spec
 *   itself) is done when Swarm says `rollback_completed`; `rollback_paused` (its tasks failed) or another
 *   change of the service in the meantime fails it.
 *
 * `configure-proxy` attaches the Caddy container to the networks the operation lists, pushes the plan's
 * proxy table (one change of Caddy's configuration), then detaches Caddy from the networks it lists.
 *
 * Swarm updates are sent with the spec version the plan was made against (`?version=`): Swarm refuses
 * one when somebody changed the service since.
 */
import type Dockerode from 'dockerode';
import { dockerErrorMessage, withCallLimits } from '../../docker/client.ts';
import { LABEL } from '../../labels.ts';
import type { ApplyEvent, FailureDetail, Operation, Plan, ProxyTable, SwarmServiceSpec } from '../../model.ts';
import type { ProxyDriver } from '../../apply/executor.ts';
import type { ExecuteSettings } from '../target.ts';
import { networkGone, taskOf, type TaskInfo } from './observe.ts';
import type { BoundSecretOp } from './secrets.ts';

type Emit = (e: ApplyEvent) => void;

/** How often a service and its tasks are read while Swarm works. */
const POLL_MS = 1000;
/** Failed tasks of a new service (or a scale) after which it is reported failed rather than waited for. */
const MAX_TASK_FAILURES = 3;

class OpFailure extends Error {
  constructor(readonly detail: FailureDetail) {
    super(detail.message);
  }
}

const serviceOf = (op: Operation): string | undefined => ('service' in op ? op.service : undefined);

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(new Error('interrupted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new Error('interrupted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** How long a create or scale may take before it fails: the health gate of every batch, at least two minutes. */
function deadlineMs(spec: SwarmServiceSpec): number {
  const hc = spec.TaskTemplate.ContainerSpec.Healthcheck;
  const health = hc ? (hc.StartPeriod + hc.Interval * (hc.Retries + 1) + hc.Timeout) / 1e6 : 0;
  const batches = Math.ceil(spec.Mode.Replicated.Replicas / Math.max(1, spec.UpdateConfig.Parallelism));
  return Math.max(120_000, batches * (health + spec.UpdateConfig.Delay / 1e6 + spec.UpdateConfig.Monitor / 1e6 + 30_000));
}

interface Ctx {
  docker: Dockerode;
  emit: Emit;
  signal?: AbortSignal;
  /** Swarm secret name → ID (observed ones, then those created by this apply). */
  secretIds: Map<string, string>;
  /** The plan's proxy table and the proxy's adapter, when the plan routes. */
  proxy?: { driver: ProxyDriver; table: ProxyTable };
}

export async function executeSwarm(docker: Dockerode, plan: Plan, emit: Emit, opts: ExecuteSettings = {}): Promise<{ ok: boolean }> {
  const started = Date.now();
  const ops = plan.operations;
  const parallelism = Math.max(1, opts.parallelism ?? 4);
  const summary = { created: 0, replaced: 0, updated: 0, removed: 0, failed: 0, skipped: 0 };
  const state = new Map<string, 'pending' | 'running' | 'done' | 'failed' | 'skipped'>(ops.map((o) => [o.id, 'pending']));
  const ctx: Ctx = {
    docker,
    emit,
    ...(opts.signal ? { signal: opts.signal } : {}),
    secretIds: new Map(),
    ...(plan.proxy && opts.proxy ? { proxy: { driver: opts.proxy, table: plan.proxy } } : {}),
  };
  emit({ type: 'apply-start', project: plan.project, operations: ops.length, at: Date.now() });

  // Secrets already in the Swarm that services of this plan name: one list call, for their IDs.
  const named = ops.some((o) => (o.kind === 'create-swarm-service' || o.kind === 'update-swarm-service') && o.spec.TaskTemplate.ContainerSpec.Secrets.length > 0);
  if (named) {
    const list = (await docker.listSecrets({ filters: { label: [`${LABEL.project}=${plan.project}`] } })) as unknown as Array<{ ID: string; Spec?: { Name?: string } }>;
    for (const s of list) if (s.Spec?.Name) ctx.secretIds.set(s.Spec.Name, s.ID);
  }

  const runOne = async (op: Operation) => {
    state.set(op.id, 'running');
    const t0 = Date.now();
    emit({ type: 'op-start', op: op.id, kind: op.kind, service: serviceOf(op), at: t0 });
    try {
      const run = () => runOperation(ctx, op);
      if (opts.signal) await withCallLimits({ signal: opts.signal }, run);
      else await run();
      state.set(op.id, 'done');
      if (op.kind === 'create-swarm-service') summary.created++;
      else if (op.kind === 'update-swarm-service') op.rolls ? summary.replaced++ : summary.updated++;
      else if (op.kind === 'rollback-swarm-service') summary.replaced++;
      else if (op.kind === 'remove-swarm-service') summary.removed++;
      emit({ type: 'op-done', op: op.id, kind: op.kind, service: serviceOf(op), ms: Date.now() - t0, at: Date.now() });
    } catch (err) {
      state.set(op.id, 'failed');
      summary.failed++;
      const failure: FailureDetail = err instanceof OpFailure ? err.detail : { message: dockerErrorMessage(err) };
      emit({ type: 'op-failed', op: op.id, kind: op.kind, service: serviceOf(op), failure, ms: Date.now() - t0, at: Date.now() });
    }
  };

  // Dependency order: an operation starts once everything in its `after` is done; one whose
  // prerequisite failed or was skipped is skipped (nothing is sent to Swarm for it).
  const inPlan = new Set(ops.map((o) => o.id));
  await new Promise<void>((resolve) => {
    let running = 0;
    const pump = () => {
      let changed = true;
      while (changed) {
        changed = false;
        for (const op of ops) {
          if (state.get(op.id) !== 'pending') continue;
          const blocked = op.after.find((a) => inPlan.has(a) && (state.get(a) === 'failed' || state.get(a) === 'skipped'));
          if (blocked || opts.signal?.aborted) {
            state.set(op.id, 'skipped');
            summary.skipped++;
            emit({ type: 'op-skipped', op: op.id, kind: op.kind, service: serviceOf(op), reason: blocked ? `${blocked} did not finish` : 'apply interrupted', at: Date.now() });
            changed = true;
          }
        }
      }
      for (const op of ops) {
        if (running >= parallelism) break;
        if (state.get(op.id) !== 'pending') continue;
        if (!op.after.every((a) => !inPlan.has(a) || state.get(a) === 'done')) continue;
        running++;
        void runOne(op).finally(() => {
          running--;
          pump();
        });
      }
      if (running === 0 && ![...state.values()].some((s) => s === 'pending' || s === 'running')) resolve();
    };
    pump();
  });

  const ok = summary.failed === 0 && summary.skipped === 0;
  emit({ type: 'apply-done', ok, summary, ms: Date.now() - started, at: Date.now() });
  return { ok };
}

/** The spec as sent: secret IDs filled in from their names. */
function withSecretIds(ctx: Ctx, spec: SwarmServiceSpec): SwarmServiceSpec {
  const secrets = spec.TaskTemplate.ContainerSpec.Secrets.map((s) => {
    const id = ctx.secretIds.get(s.SecretName);
    if (!id) throw new Error(`Swarm secret ${s.SecretName} does not exist. Fix: run the apply again (it creates missing secret versions first)`);
    return { ...s, SecretID: id };
  });
  return { ...spec, TaskTemplate: { ...spec.TaskTemplate, ContainerSpec: { ...spec.TaskTemplate.ContainerSpec, Secrets: secrets } } };
}

/** Retries `fn` while Docker answers that the object is still in use (tasks shutting down), up to `ms`. */
async function whileInUse(fn: () => Promise<unknown>, ms: number, signal?: AbortSignal): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      await fn();
      return;
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 404) return;
      const msg = dockerErrorMessage(err);
      if (Date.now() > until || !/in use|active endpoints|has active/i.test(msg)) throw err;
      await sleep(500, signal);
    }
  }
}

async function runOperation(ctx: Ctx, op: Operation): Promise<void> {
  const { docker } = ctx;
  switch (op.kind) {
    case 'create-network':
      await docker.createNetwork({
        Name: op.body.Name,
        Driver: op.body.Driver,
        Labels: op.body.Labels,
        Options: op.body.Options,
        Internal: op.body.Internal,
        ...(op.body.Attachable ? { Attachable: true } : {}),
        CheckDuplicate: true,
      });
      return;
    case 'configure-proxy': {
      if (!ctx.proxy) throw new Error(`${op.id}: the plan routes through a proxy, but no proxy was given to apply it`);
      const container = op.container ?? '';
      for (const n of op.attach ?? []) {
        await docker
          .getNetwork(n)
          .connect({ Container: container })
          .catch((err: unknown) => {
            // Attached by somebody else since the plan was made: what was asked holds.
            if (!/already exists|already attached/i.test(dockerErrorMessage(err))) throw new Error(`attaching Caddy (container ${container}) to ${n}: ${dockerErrorMessage(err)}`);
          });
      }
      await ctx.proxy.driver.push(ctx.proxy.table);
      for (const n of op.detach ?? []) {
        await docker
          .getNetwork(n)
          .disconnect({ Container: container, Force: false })
          .catch((err: unknown) => {
            if (!/not connected|is not attached|no such/i.test(dockerErrorMessage(err))) throw new Error(`detaching Caddy (container ${container}) from ${n}: ${dockerErrorMessage(err)}`);
          });
      }
      return;
    }
    case 'remove-network':
      // An overlay network is in use until the tasks of the services that left it are gone.
      await whileInUse(() => docker.getNetwork(op.network).remove(), 60_000, ctx.signal);
      // Done once it is gone (an ingress network Caddy was attached to goes a moment later).
      await networkGone(docker, { name: op.network });
      return;
    case 'create-swarm-secret': {
      const data = (op as BoundSecretOp).data;
      if (data === undefined) throw new Error(`no value was bound for Swarm secret ${op.secret}`);
      // The body carries the value; `_query` keeps it out of the request line.
      const r = (await docker.createSecret({ _query: {}, _body: { Name: op.secret, Labels: op.labels, Data: data } } as never)) as { id?: string; ID?: string };
      const id = r.id ?? (r as { ID?: string }).ID;
      if (id) ctx.secretIds.set(op.secret, id);
      return;
    }
    case 'remove-swarm-secret':
      await whileInUse(() => docker.getSecret(op.secretId).remove(), 60_000, ctx.signal);
      return;
    case 'create-swarm-service': {
      const since = Date.now();
      const r = (await docker.createService(withSecretIds(ctx, op.spec) as never)) as { id?: string; ID?: string };
      const id = r.id ?? r.ID!;
      await follow(ctx, op, id, since, 'converge', watchOf(op.spec, 'converge'));
      return;
    }
    case 'update-swarm-service': {
      const since = Date.now();
      await docker.getService(op.serviceId).update({ _query: { version: op.version }, _body: withSecretIds(ctx, op.spec) } as never);
      await follow(ctx, op, op.serviceId, since, op.rolls ? 'update' : 'converge', watchOf(op.spec, op.rolls ? 'update' : 'converge'));
      return;
    }
    case 'rollback-swarm-service': {
      const since = Date.now();
      const service = docker.getService(op.serviceId);
      // Swarm takes the previous spec and ignores the body, but still validates it: the current spec goes back.
      const { Spec } = (await service.inspect()) as { Spec: unknown };
      await service.update({ _query: { version: op.version, rollback: 'previous' }, _body: Spec } as never);
      await follow(ctx, op, op.serviceId, since, 'rollback', { replicas: op.replicas, deadlineMs: op.deadlineMs, ...(op.definedAt ? { definedAt: op.definedAt } : {}) });
      return;
    }
    case 'remove-swarm-service': {
      await docker.getService(op.serviceId).remove();
      // Done when this node runs none of its containers any more (networks and secrets can go then).
      const until = Date.now() + 60_000;
      for (;;) {
        const left = await docker.listContainers({ all: true, filters: { label: [`com.docker.swarm.service.id=${op.serviceId}`] } });
        if (left.length === 0 || Date.now() > until) return;
        await sleep(POLL_MS, ctx.signal);
      }
    }
    default:
      throw new Error(`operation ${op.kind} is not one the Swarm target runs`);
  }
}

interface UpdateStatus {
  State?: string;
  Message?: string;
}

/** What following a service waits for: its replicas, for how long at most, and where it is defined (for a failure). */
interface Watch {
  replicas: number;
  deadlineMs: number;
  definedAt?: string;
}

function watchOf(spec: SwarmServiceSpec, mode: 'update' | 'converge'): Watch {
  const definedAt = spec.Labels[LABEL.definedAt];
  return { replicas: spec.Mode.Replicated.Replicas, deadlineMs: mode === 'update' ? deadlineMs(spec) * 2 : deadlineMs(spec), ...(definedAt ? { definedAt } : {}) };
}

/**
 * Follows Swarm's work on one service until it is done (see the file's comment), emitting task-progress.
 * `update`: wait for the update status; `rollback`: wait for the rollback's status; `converge`: wait
 * until the running tasks number the replicas.
 */
async function follow(ctx: Ctx, op: Operation & { service: string }, serviceId: string, since: number, mode: 'update' | 'rollback' | 'converge', watch: Watch): Promise<void> {
  const replicas = watch.replicas;
  const deadline = Date.now() + watch.deadlineMs;
  const seen = new Map<string, string>();
  const definedAt = watch.definedAt;
  // Tasks started before this operation (a clock a little off on the manager is forgiven).
  const current = (t: { createdAt: number }) => t.createdAt >= since - 2000;
  for (;;) {
    const [info, list] = await Promise.all([
      ctx.docker.getService(serviceId).inspect() as Promise<{ UpdateStatus?: UpdateStatus }>,
      ctx.docker.listTasks({ filters: { service: [serviceId] } }) as Promise<TaskInfo[]>,
    ]);
    const update = info.UpdateStatus?.State;
    // Within one reading, this operation's tasks come first: a new task found running and its
    // predecessor found stopping read in the order Swarm did them (start-first).
    const tasks = list
      .map((t) => taskOf(t, op.service))
      .sort((a, b) => Number(current(b)) - Number(current(a)) || (a.slot ?? 0) - (b.slot ?? 0) || a.createdAt - b.createdAt);
    for (const t of tasks) {
      // Tasks that ended before this operation are history: not news.
      if (t.createdAt < since - 2000 && t.desiredState !== 'running' && !seen.has(t.id)) continue;
      // News is a task's own change; Swarm's update state rides along with it.
      const key = `${t.state}/${t.desiredState}/${t.error ?? ''}`;
      if (seen.get(t.id) === key) continue;
      seen.set(t.id, key);
      ctx.emit({
        type: 'task-progress',
        op: op.id,
        service: op.service,
        task: t.id,
        ...(t.slot !== undefined ? { slot: t.slot } : {}),
        ...(t.node ? { node: t.node } : {}),
        state: t.state,
        desiredState: t.desiredState,
        current: current(t),
        ...(t.error ? { error: t.error } : {}),
        ...(update ? { update } : {}),
        replicas,
        at: Date.now(),
      });
    }
    const failedTasks = tasks.filter((t) => current(t) && (t.state === 'failed' || t.state === 'rejected'));
    const errors = () => [...new Set(failedTasks.map((t) => `task ${t.slot ?? t.id.slice(0, 12)}: ${t.error ?? t.state}`))];
    // What went wrong, then the tasks' errors (the part a reader acts on, early enough to survive a
    // short summary such as a commit status), then what it means and Swarm's own words.
    const fail = (message: string, after?: string): never => {
      const errs = errors();
      const text = [message, ...errs, ...(after ? [after] : [])].join('; ');
      throw new OpFailure({ message: text, ...(definedAt ? { definedAt } : {}) });
    };
    if (mode === 'update') {
      if (update === 'completed') return;
      if (update === 'rollback_completed' || update === 'rollback_paused') {
        fail('Swarm rolled the update back', `the service runs its previous definition (${update}${info.UpdateStatus?.Message ? `: ${info.UpdateStatus.Message}` : ''})`);
      }
      if (update === 'paused') fail(`Swarm paused the update${info.UpdateStatus?.Message ? `: ${info.UpdateStatus.Message}` : ''}`);
      // No update status at all: Swarm saw nothing to replace in the tasks; the running count decides.
      if (update === undefined && Date.now() - since > 10_000 && runningCount(tasks, current) === replicas) return;
    } else if (mode === 'rollback') {
      // Swarm marks a rollback asked for `rollback_started` when it accepts it; any other state is a change made since.
      if (update === 'rollback_completed') return;
      if (update === 'rollback_paused') fail(`Swarm paused the rollback${info.UpdateStatus?.Message ? `: ${info.UpdateStatus.Message}` : ''}; its tasks may run either spec`);
      if (update !== 'rollback_started') fail(`the service changed while it rolled back (update status: ${update ?? 'none'})`);
    } else {
      const running = tasks.filter((t) => t.state === 'running').length;
      if (running === replicas && tasks.every((t) => t.desiredState !== 'running' || t.state === 'running')) return;
      if (failedTasks.length >= MAX_TASK_FAILURES) fail(`${failedTasks.length} tasks failed to start`);
    }
    if (Date.now() > deadline) fail(`Swarm did not finish in ${Math.round((deadline - since) / 1000)} s (update status: ${update ?? 'none'})`);
    await sleep(POLL_MS, ctx.signal);
  }
}

function runningCount(tasks: Array<{ state: string; createdAt: number }>, current: (t: { createdAt: number }) => boolean): number {
  return tasks.filter((t) => t.state === 'running' && current(t)).length;
}
