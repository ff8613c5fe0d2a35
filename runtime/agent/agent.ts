/**
 * The headless agent: keeps the host equal to the branch. Triggers from any source go through one
 * coalescing queue; each deploy is a full reconcile of one commit (deploy.ts), recorded in the history,
 * reported to the notifiers and counted in the metrics. Transient failures (Vault or Docker
 * unreachable) are retried with backoff; dynamic credentials are renewed on a timer. Settings and
 * collaborators are passed in: nothing here reads the environment or handles signals.
 */
import type { Engine } from '../engine.ts';
import type { RunEvent, ServiceGraph } from '../model.ts';
import type { DeploymentRow, History } from '../history/history.ts';
import type { DeploymentReport, Logger, NotificationHub } from './notify/notifier.ts';
import type { AgentMetrics } from './metrics.ts';
import type { HostPolicy } from './policy.ts';
import type { Checkout } from './checkout.ts';
import { deployOnce, type DeployHook, type DeployOutcome } from './deploy.ts';
import { isKept } from '../labels.ts';
import { DeployQueue, type Job } from './queue.ts';
import type { Enqueued, Trigger, TriggerSource } from './trigger.ts';

export interface AgentOptions {
  engine: Engine;
  checkout: Checkout;
  history: History;
  hub: NotificationHub;
  metrics: AgentMetrics;
  log: Logger;
  policy: HostPolicy;
  /** `owner/name` on GitHub (commit statuses, deliveries). */
  repo?: string;
  /** Base URL people reach the agent at (links in notifications). */
  publicUrl?: string;
  /** More trigger sources (the poll, registry notifications, Docker events). */
  sources?: TriggerSource[];
  /** Take part in every deploy: change the graph before planning (image updates), hear the outcome (write-back, drift). */
  hooks?: DeployHook[];
  /** How often due Vault leases are renewed; default 60 s, 0 = never. */
  renewEveryMs?: number;
  /** Backoff of retries after a transient failure: first delay and cap. Defaults 5 s and 5 min. */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

export interface ServiceStatus {
  service: string;
  state: string;
  health: string;
  image?: string;
  commit?: string;
  container?: string;
  /** Swarm target: the replicas the service asks for and its tasks running now (the row shows the newest task). */
  replicas?: { desired: number; running: number };
  /** Swarm target: Swarm's state of the service's last update (`completed`, `rollback_completed`…), when one ran. */
  update?: string;
  lastDeploy?: { id: string; action: string; outcome: string; at?: number };
}

export interface AgentStatus {
  project?: string;
  branch: string;
  repo?: string;
  /** Commit of the last deploy that applied or found nothing to do. */
  deployedCommit?: string;
  lastDeploy?: Pick<DeploymentRow, 'id' | 'state' | 'commit' | 'trigger' | 'finishedAt' | 'error'>;
  queue: { running?: string; pending?: string };
  services: ServiceStatus[];
}

export class Agent {
  readonly queue: DeployQueue;
  readonly #o: AgentOptions;
  readonly #abort = new AbortController();
  #graph: ServiceGraph | undefined;
  /** The commit of the latest deploy attempt (resolved), and the one deployed successfully. */
  #attempted: string | undefined;
  #deployed: string | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryDelay = 0;
  #renewTimer: NodeJS.Timeout | undefined;
  #renewing = false;
  #stopped = false;
  /** What the hooks still do after a deploy (awaited on stop). */
  #hookWork = new Set<Promise<unknown>>();

  constructor(opts: AgentOptions) {
    this.#o = opts;
    this.queue = new DeployQueue({
      create: (t) => {
        const id = opts.history.createDeployment({ trigger: t.kind, ...(t.delivery ? { delivery: t.delivery } : {}), ...(t.commit ? { commit: t.commit } : {}) }).id;
        opts.log.info('deploy queued', { deployment: id, trigger: t.kind, ...(t.delivery ? { delivery: t.delivery } : {}), ...(t.commit ? { commit: t.commit } : {}), ...(t.reason ? { reason: t.reason } : {}) });
        return id;
      },
      run: (job) => this.#run(job),
      onError: (job, e) => opts.log.error('deploy crashed', { deployment: job.id, error: String((e as Error)?.message ?? e) }),
      onWaiting: (n) => opts.metrics.queueLength(n),
    });
  }

  get branch(): string {
    return this.#o.checkout.branch;
  }

  /** The graph of the last deploy that loaded (what the status and the page describe). */
  get graph(): ServiceGraph | undefined {
    return this.#graph;
  }

  /** The commit the agent is at or moving to: what a poll compares the remote head with. */
  get knownCommit(): string | undefined {
    return this.#attempted;
  }

  /** Closes what a killed agent left open, makes sure of the checkout, starts the sources, reconciles at once. */
  async start(): Promise<Enqueued> {
    const { history, log } = this.#o;
    for (const row of history.markInterrupted()) {
      log.warn('deploy interrupted by an earlier stop of the agent', { deployment: row.id, commit: row.commit });
      if (row.commit) this.#report(row.id, row.commit, 'interrupted', 'waffle: interrupted (the agent stopped); the next deploy reconciles');
    }
    const { cloned } = await this.#o.checkout.ensure();
    log.info(cloned ? 'cloned the repository' : 'reusing the checkout', { dir: this.#o.checkout.dir, branch: this.branch });
    const first = this.submit({ kind: 'startup', target: { head: true }, reason: 'agent started' });
    for (const s of this.#o.sources ?? []) await s.start((t) => this.submit(t));
    const every = this.#o.renewEveryMs ?? 60_000;
    if (every > 0) {
      this.#renewTimer = setInterval(() => void this.#renew(), every);
      this.#renewTimer.unref();
    }
    return first;
  }

  /** Queues a deploy (coalesced with the one waiting, if any). */
  submit(t: Trigger): Enqueued {
    const r = this.queue.submit(t);
    if (r.outcome === 'coalesced') {
      this.#o.log.info('trigger joined the waiting deploy', { deployment: r.deployment, trigger: t.kind, ...(t.delivery ? { delivery: t.delivery } : {}), ...(t.commit ? { commit: t.commit } : {}) });
    }
    return r;
  }

  async #run(job: Job): Promise<void> {
    const { history, metrics, log, engine, checkout, policy } = this.#o;
    clearTimeout(this.#retryTimer);
    const startedAt = Date.now();
    const trigger = job.triggers[job.triggers.length - 1]!;
    history.update(job.id, { state: 'running', startedAt, ...(job.triggers.length > 1 ? { trigger: `${job.triggers[0]!.kind}+${job.triggers.length - 1}` } : {}) });
    log.info('deploy started', { deployment: job.id, trigger: trigger.kind, target: 'commit' in job.target ? job.target.commit : 'head', triggers: job.triggers.length });
    const onEvent = (e: RunEvent) => {
      if (e.type === 'pull-progress' || e.type === 'health-wait') return; // progress ticks: not history
      try {
        history.appendEvent(job.id, e);
      } catch (err) {
        log.warn('history: could not record an event', { deployment: job.id, error: String(err) });
      }
    };
    let outcome: DeployOutcome;
    try {
      outcome = await deployOnce({
        engine,
        checkout,
        policy,
        target: job.target,
        onEvent,
        signal: this.#abort.signal,
        ...(this.#o.hooks ? { hooks: this.#o.hooks } : {}),
        onCommit: (commit) => {
          this.#attempted = commit;
          history.update(job.id, { commit });
          this.#report(job.id, commit, 'pending', 'waffle: deploying');
        },
      });
    } catch (e) {
      outcome = { result: 'failed', services: [], problems: [], transient: false, error: String((e as Error)?.message ?? e), stage: 'agent' };
    }
    const finishedAt = Date.now();
    const durationMs = finishedAt - startedAt;
    if (outcome.graph) this.#graph = outcome.graph;
    if (outcome.result === 'applied' || outcome.result === 'no-op') this.#deployed = outcome.commit;
    history.update(job.id, {
      state: outcome.result,
      services: outcome.services,
      finishedAt,
      durationMs,
      ...(outcome.commit ? { commit: outcome.commit } : {}),
      ...(outcome.run ? { run: outcome.run } : {}),
      ...(outcome.planSummary ? { planSummary: outcome.planSummary } : {}),
      ...(outcome.counts ? { counts: outcome.counts } : {}),
      ...(outcome.error ? { error: outcome.error } : {}),
    });
    metrics.deployFinished(outcome.result, durationMs / 1000, finishedAt);
    const fields = { deployment: job.id, commit: outcome.commit, result: outcome.result, durationMs, ...(outcome.planSummary ? { plan: outcome.planSummary } : {}) };
    if (outcome.result === 'failed') log.error('deploy failed', { ...fields, stage: outcome.stage, error: outcome.error });
    else log.info('deploy finished', fields);
    if (outcome.commit) this.#report(job.id, outcome.commit, outcome.result, describe(outcome), outcome, durationMs);
    this.#retryAfter(outcome, job);
    // Not awaited: a hook may wait for the queue to be idle (this deploy is still its running job).
    for (const h of this.#o.hooks ?? []) {
      if (!h.deployed) continue;
      const work = Promise.resolve()
        .then(() => h.deployed!(outcome))
        .catch((e) => log.warn('a deploy hook failed', { deployment: job.id, error: String((e as Error)?.message ?? e) }));
      this.#hookWork.add(work);
      void work.finally(() => this.#hookWork.delete(work));
    }
  }

  /** A transient failure is tried again later, each time waiting twice as long (up to the cap). */
  #retryAfter(outcome: DeployOutcome, job: Job): void {
    if (outcome.result !== 'failed' || !outcome.transient || this.#stopped) {
      this.#retryDelay = 0;
      return;
    }
    const base = this.#o.retryBaseMs ?? 5_000;
    this.#retryDelay = Math.min(this.#retryDelay ? this.#retryDelay * 2 : base, this.#o.retryMaxMs ?? 300_000);
    this.#o.log.warn('transient failure: the deploy will be retried', { deployment: job.id, stage: outcome.stage, inMs: this.#retryDelay });
    this.#retryTimer = setTimeout(() => {
      if (!this.#stopped && !this.queue.pending) this.submit({ kind: 'retry', target: job.target, reason: `retry after ${outcome.stage} failure` });
    }, this.#retryDelay);
    this.#retryTimer.unref();
  }

  #report(id: string, commit: string, state: DeploymentReport['state'], description: string, outcome?: DeployOutcome, durationMs?: number): void {
    const { publicUrl, repo } = this.#o;
    this.#o.hub.send({
      id,
      commit,
      branch: this.branch,
      state,
      description,
      ...(repo ? { repo } : {}),
      ...(publicUrl ? { url: `${publicUrl.replace(/\/+$/, '')}/deployments/${id}` } : {}),
      ...(outcome?.problems.length ? { problems: outcome.problems.map((p) => ({ file: p.file, ...(p.service ? { service: p.service } : {}), message: p.message })) } : {}),
      ...(durationMs !== undefined ? { durationMs } : {}),
    });
  }

  /** Renews due Vault leases of the deployed graph; an outage is logged and tried again at the next tick. */
  async #renew(): Promise<void> {
    const graph = this.#graph;
    if (!graph?.vault || this.#renewing || this.#stopped) return;
    this.#renewing = true;
    try {
      const { report } = await this.#o.engine.renewLeases({ graph });
      const failed = (report as { failed?: unknown[] } | undefined)?.failed ?? [];
      if (failed.length) this.#o.log.warn('lease renewal failed for some leases; retried at the next tick', { failed: failed.length });
    } catch (e) {
      this.#o.log.warn('lease renewal failed; retried at the next tick', { error: String((e as Error)?.message ?? e) });
    } finally {
      this.#renewing = false;
    }
  }

  /** Each service of the deployed graph as it runs now, with its last deploy. */
  async status(): Promise<AgentStatus> {
    const { history } = this.#o;
    const rows = history.list({ limit: 50 });
    const last = rows.find((r) => r.state !== 'queued' && r.state !== 'running');
    const out: AgentStatus = {
      branch: this.branch,
      ...(this.#o.repo ? { repo: this.#o.repo } : {}),
      ...(this.#deployed ? { deployedCommit: this.#deployed } : {}),
      ...(last ? { lastDeploy: pick(last) } : {}),
      queue: { ...(this.queue.running ? { running: this.queue.running.id } : {}), ...(this.queue.pending ? { pending: this.queue.pending.id } : {}) },
      services: [],
    };
    const graph = this.#graph;
    if (!graph) return out;
    out.project = graph.project;
    const { observed } = await this.#o.engine.status({ graph });
    for (const name of Object.keys(graph.services).sort()) {
      // The service's container, not one kept for rollback.
      const c = observed.containers.filter((x) => x.service === name && !isKept(x, graph.project)).sort((a, b) => b.generation - a.generation)[0];
      const row = rows.find((r) => r.services.some((s) => s.service === name));
      const s = row?.services.find((x) => x.service === name);
      const swarm = observed.swarm?.services.find((x) => x.service === name);
      const running = observed.swarm?.tasks.filter((t) => t.service === name && t.desiredState === 'running' && t.state === 'running').length ?? 0;
      out.services.push({
        service: name,
        state: c?.state ?? 'missing',
        health: c?.health ?? 'none',
        ...(c ? { image: c.image, commit: c.commit, container: c.name } : {}),
        ...(swarm ? { replicas: { desired: swarm.replicas, running }, ...(swarm.updateState ? { update: swarm.updateState } : {}) } : {}),
        ...(row && s ? { lastDeploy: { id: row.id, action: s.action, outcome: s.outcome, ...(row.finishedAt ? { at: row.finishedAt } : {}) } } : {}),
      });
    }
    return out;
  }

  /**
   * Stops: sources first (no new triggers), then the running deploy finishes (with `abort`, it is
   * interrupted and what it had in flight rolls back); a deploy still waiting is closed as interrupted.
   */
  async stop(opts: { abort?: boolean } = {}): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#renewTimer);
    await Promise.allSettled((this.#o.sources ?? []).map((s) => s.stop()));
    if (opts.abort) this.#abort.abort();
    const dropped = await this.queue.close();
    await Promise.allSettled([...this.#hookWork]);
    if (dropped) this.#o.history.update(dropped.id, { state: 'interrupted', finishedAt: Date.now(), error: 'the agent stopped before this deploy started; the next start reconciles' });
    await this.#o.hub.idle();
  }

  /** Interrupts the running deploy now (a second SIGTERM): in-flight operations roll back. */
  abort(): void {
    this.#abort.abort();
  }
}

function pick(r: DeploymentRow): AgentStatus['lastDeploy'] {
  return { id: r.id, state: r.state, trigger: r.trigger, ...(r.commit ? { commit: r.commit } : {}), ...(r.finishedAt ? { finishedAt: r.finishedAt } : {}), ...(r.error ? { error: r.error } : {}) };
}

/** One line for a commit status or a chat message. */
function describe(o: DeployOutcome): string {
  if (o.result === 'failed') return `waffle: failed${o.stage ? ` (${o.stage})` : ''}: ${o.error ?? 'see the deployment'}`.slice(0, 400);
  if (o.result === 'interrupted') return 'waffle: interrupted; the next deploy reconciles';
  if (o.result === 'no-op') return 'waffle: up to date (no changes)';
  return `waffle: applied (${o.planSummary ?? 'changes'})`;
}
