/**
 * One deploy, start to end: the checkout moved to the commit, the repository evaluated in the sandbox
 * (the loader's confined child: none of the agent's credentials reach it), the host policy checked on
 * the graph, then a full reconcile of that graph against what runs (Engine.apply). Its engine events
 * become the record: plan summary, per-service outcome, an honest result and, on failure, the
 * problems with file and service.
 */
import type { Engine } from '../engine.ts';
import type { Operation, PlanOpCounts, Problem, RunEvent, ServiceGraph } from '../model.ts';
import type { DeployResult, ServiceOutcome } from '../history/history.ts';
import { checkHostPolicy, type HostPolicy } from './policy.ts';
import { CheckoutError, type Checkout } from './checkout.ts';
import type { Target } from './trigger.ts';

export interface DeployOutcome {
  result: DeployResult;
  /** Full commit id, once the checkout resolved it. */
  commit?: string;
  /** The engine run that applied (or tried to). */
  run?: string;
  planSummary?: string;
  counts?: Record<string, number>;
  services: ServiceOutcome[];
  /** One line: what went wrong (file, service, message), never a secret value. */
  error?: string;
  problems: Problem[];
  /** Where it failed: `source`, `policy`, or the engine's stage (`load`, `validate`, `secrets`, `docker`, `apply`…). */
  stage?: string;
  /** A failure worth retrying by itself later (Vault or Docker unreachable, a fetch that failed). */
  transient: boolean;
  /** The evaluated graph, when the commit loaded (status and lease renewal use the last one). */
  graph?: ServiceGraph;
}

/**
 * Takes part in every deploy: `desired` may change the loaded graph before it is checked and planned
 * (automatic image updates put their tags in); `deployed` hears the outcome (write-back, drift snapshots).
 */
export interface DeployHook {
  desired?(graph: ServiceGraph): ServiceGraph;
  deployed?(outcome: DeployOutcome): void | Promise<void>;
}

export interface DeployInput {
  engine: Engine;
  checkout: Checkout;
  policy: HostPolicy;
  target: Target;
  /** Every engine event of the deploy (load run, then apply run). */
  onEvent?: (e: RunEvent) => void;
  /** The commit is known (before evaluation starts): the caller records it and reports `pending`. */
  onCommit?: (commit: string) => void;
  /** Aborting stops the deploy; what an interrupted apply had in flight is rolled back by the engine. */
  signal?: AbortSignal;
  /** Each may change the loaded graph before it is checked and applied (in order). */
  hooks?: DeployHook[];
}

const TRANSIENT_STAGES = new Set(['secrets', 'docker', 'lock']);

const ACTIONS: Record<string, string> = {
  'create-service': 'create',
  'replace-service': 'replace',
  'update-service': 'update',
  'start-service': 'start',
  'remove-service': 'remove',
  'rename-service': 'rename',
  'create-swarm-service': 'create',
  'remove-swarm-service': 'remove',
};

/** What an operation does to its service, as the history names it; a Swarm update that rolls the tasks is a replace. */
function actionOf(op: Operation): string | undefined {
  if (op.kind === 'update-swarm-service') return op.rolls ? 'replace' : 'update';
  return ACTIONS[op.kind];
}

/** `2 to replace, 1 to create` or `no changes`. */
export function planSummary(c: PlanOpCounts): string {
  const parts: string[] = [];
  for (const [k, label] of [['create', 'create'], ['replace', 'replace'], ['update', 'update'], ['start', 'start'], ['remove', 'remove']] as const) {
    if (c[k]) parts.push(`${c[k]} to ${label}`);
  }
  return parts.length ? parts.join(', ') : 'no changes';
}

/** Problems as one line: `services/api.ts (api): message` for the first few. */
export function problemLine(problems: Problem[], fallback: string): string {
  if (!problems.length) return fallback;
  const shown = problems.slice(0, 3).map((p) => `${p.file}${p.where ? `:${p.where}` : ''}${p.service ? ` (${p.service})` : ''}: ${p.message}`);
  return shown.join('; ') + (problems.length > 3 ? `; and ${problems.length - 3} more` : '');
}

/** Listens to a run and keeps what the record needs. */
class Recorder {
  ops = new Map<string, { service: string; action: string }>();
  services = new Map<string, ServiceOutcome>();
  counts: PlanOpCounts | undefined;
  operations = 0;
  failed: { stage: string; message: string; problems: Problem[] } | undefined;
  firstOpFailure: string | undefined;
  run: string | undefined;

  hear = (e: RunEvent): void => {
    switch (e.type) {
      case 'run-start':
        if (e.kind === 'apply') this.run = e.run;
        break;
      case 'plan-ready':
        this.counts = e.counts;
        this.operations = e.operations;
        for (const op of e.plan.operations) {
          const action = actionOf(op);
          if ('service' in op && action) this.ops.set(op.id, { service: op.service, action });
        }
        break;
      case 'op-done':
      case 'op-failed':
      case 'op-skipped': {
        const op = this.ops.get(e.op);
        if (!op) break;
        const outcome = e.type === 'op-done' ? 'done' : e.type === 'op-failed' ? 'failed' : 'skipped';
        const message = e.type === 'op-failed' ? e.failure.message : e.type === 'op-skipped' ? e.reason : undefined;
        this.services.set(op.service, { service: op.service, action: op.action, outcome, ...(message ? { message } : {}) });
        if (e.type === 'op-failed' && !this.firstOpFailure) this.firstOpFailure = `${op.service}: ${e.failure.message}`;
        break;
      }
      case 'run-failed':
        this.failed ??= { stage: e.stage, message: e.message, problems: e.problems };
        break;
    }
  };
}

export async function deployOnce(input: DeployInput): Promise<DeployOutcome> {
  const { engine, checkout, policy, target, signal } = input;
  const rec = new Recorder();
  const listen = (e: RunEvent) => {
    rec.hear(e);
    input.onEvent?.(e);
  };
  const failed = (o: Partial<DeployOutcome> & { error: string; stage: string }): DeployOutcome => ({
    result: signal?.aborted ? 'interrupted' : 'failed',
    services: [...rec.services.values()],
    problems: [],
    transient: false,
    ...o,
  });

  let commit: string;
  try {
    commit = await checkout.sync(target);
  } catch (e) {
    const message = (e as Error).message;
    // A commit that is not on the branch stays refused; a fetch that failed may work next time.
    return failed({ error: message, stage: 'source', transient: e instanceof CheckoutError && /cannot fetch/.test(message) });
  }
  input.onCommit?.(commit);
  const dir = checkout.dir;

  let graph: ServiceGraph;
  try {
    graph = await engine.load({ dir }, { onEvent: listen, ...(signal ? { signal } : {}) });
  } catch (e) {
    const f = rec.failed;
    const problems = f?.problems ?? [];
    return failed({ commit, error: problemLine(problems, (e as Error).message), problems, stage: f?.stage ?? 'load', transient: TRANSIENT_STAGES.has(f?.stage ?? '') });
  }

  for (const h of input.hooks ?? []) if (h.desired) graph = h.desired(graph);

  const violations = checkHostPolicy(graph, policy, dir);
  if (violations.length) {
    return failed({ commit, graph, error: 'refused by the host policy: ' + problemLine(violations, 'host policy'), problems: violations, stage: 'policy' });
  }

  try {
    const { ok } = await engine.apply({ graph, commit: commit.slice(0, 12) }, { onEvent: listen, ...(signal ? { signal } : {}) });
    const base = {
      commit,
      graph,
      services: [...rec.services.values()],
      problems: [],
      transient: false,
      ...(rec.run ? { run: rec.run } : {}),
      ...(rec.counts ? { planSummary: planSummary(rec.counts), counts: { ...rec.counts } } : {}),
    };
    if (signal?.aborted) return { ...base, result: 'interrupted', error: 'the agent was stopped during the apply; what was in flight was rolled back' };
    if (!ok) return { ...base, result: 'failed', stage: 'apply', error: rec.firstOpFailure ?? 'an operation failed' };
    return { ...base, result: rec.operations === 0 ? 'no-op' : 'applied' };
  } catch (e) {
    const f = rec.failed;
    const problems = f?.problems ?? [];
    return {
      ...failed({ commit, graph, error: problemLine(problems, f?.message ?? (e as Error).message), problems, stage: f?.stage ?? 'apply', transient: TRANSIENT_STAGES.has(f?.stage ?? '') }),
      ...(rec.run ? { run: rec.run } : {}),
      ...(rec.counts ? { planSummary: planSummary(rec.counts), counts: { ...rec.counts } } : {}),
    };
  }
}
