/**
 * The agent's Prometheus metrics (prom-client), on a Registry of its own: two agents in one process
 * (tests) never share or clash, and nothing is registered globally.
 *
 * - waffle_deploys_total{result}: finished deploys by result (applied, no-op, failed, interrupted);
 * - waffle_deploy_duration_seconds: histogram of deploy durations;
 * - waffle_last_successful_deploy_timestamp_seconds: when the last deploy that left the host as the
 *   repository says (applied or no-op) finished, Unix seconds; 0 until there is one;
 * - waffle_deploy_queue_length: deploys waiting;
 * - waffle_webhook_deliveries_total{source, outcome}: deliveries by what was done with them (the
 *   outcome's first word: `ignored: branch refs/heads/x` counts as `ignored`, keeping the label's values few);
 * - waffle_repairs_total{kind}: repairs the agent made by itself;
 * - and Node's default process metrics (memory, CPU, event loop lag, GC) on the same registry.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DeployResult } from '../history/history.ts';

const RESULTS: DeployResult[] = ['applied', 'no-op', 'failed', 'interrupted'];

/** Seconds: from a no-op reconcile to a slow pull. */
export const DEPLOY_DURATION_BUCKETS = [0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600];

/** `ignored: branch refs/heads/x` → `ignored`. */
export function outcomeLabel(outcome: string): string {
  const word = outcome.split(':', 1)[0]!.trim();
  return word === '' ? 'unknown' : word;
}

export class AgentMetrics {
  readonly registry = new Registry();
  readonly contentType: string = this.registry.contentType;
  private readonly deploys: Counter<'result'>;
  private readonly duration: Histogram;
  private readonly lastSuccess: Gauge;
  private readonly queue: Gauge;
  private readonly deliveries: Counter<'source' | 'outcome'>;
  private readonly repairs: Counter<'kind'>;

  constructor(opts: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.deploys = new Counter({ name: 'waffle_deploys_total', help: 'Finished deploys by result.', labelNames: ['result'], registers });
    this.duration = new Histogram({ name: 'waffle_deploy_duration_seconds', help: 'Time from the start of a deploy to its end.', buckets: DEPLOY_DURATION_BUCKETS, registers });
    this.lastSuccess = new Gauge({
      name: 'waffle_last_successful_deploy_timestamp_seconds',
      help: 'Unix time at which the last deploy that left the host as the repository says (applied or no-op) finished.',
      registers,
    });
    this.queue = new Gauge({ name: 'waffle_deploy_queue_length', help: 'Deploys waiting to run.', registers });
    this.deliveries = new Counter({
      name: 'waffle_webhook_deliveries_total',
      help: 'Webhook deliveries by source and by what was done with them (deployed, coalesced, ignored, refused, duplicate).',
      labelNames: ['source', 'outcome'],
      registers,
    });
    this.repairs = new Counter({ name: 'waffle_repairs_total', help: 'Repairs the agent made by itself, by kind.', labelNames: ['kind'], registers });
    // Every result is present from the start (at 0), so a rate over it never starts from a missing series.
    for (const result of RESULTS) this.deploys.inc({ result }, 0);
    this.queue.set(0);
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** A deploy finished with `result` after `seconds`, at `at` (ms since the epoch, as Date.now()). */
  deployFinished(result: DeployResult, seconds: number, at: number): void {
    this.deploys.inc({ result });
    if (Number.isFinite(seconds) && seconds >= 0) this.duration.observe(seconds);
    if (result === 'applied' || result === 'no-op') this.lastSuccess.set(at / 1000);
  }

  queueLength(n: number): void {
    this.queue.set(n);
  }

  /** One delivery from `source` ('github', 'registry') with the outcome the history records. */
  delivery(source: string, outcome: string): void {
    this.deliveries.inc({ source, outcome: outcomeLabel(outcome) });
  }

  repair(kind: string): void {
    this.repairs.inc({ kind });
  }

  /** The exposition text for GET /metrics (serve it with `contentType`). */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
