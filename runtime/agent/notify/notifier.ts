/**
 * Notifications of deployments: what a notifier is told (a DeploymentReport), and the hub that sends
 * every report to every notifier in the background.
 *
 * The hub never lets a notification fail or slow a deploy: `send` returns at once; each notifier has
 * its own queue, worked in order (a commit's pending status goes out before its result), and each
 * report is retried with exponential backoff (with jitter) on errors that may pass (network errors,
 * 5xx, 429). An error that will not pass (a 4xx such as bad credentials) is not retried. Failures are
 * logged, never thrown. A queued report that a newer one for the same commit replaces is dropped
 * (GitHub shows a commit's latest status; sending the older one first only delays it).
 *
 * Repeats are sent once. For each notifier the hub remembers, per commit, the last result it
 * delivered (state + description), in the history's key/value store so that a restart remembers too:
 * - a result identical to the last delivered one for that commit is skipped (the same failure found
 *   again on every poll is reported once, not every minute);
 * - `pending` is skipped when the commit already has a delivered result (a redeploy of the same
 *   commit would otherwise flip its status to pending and back for nothing);
 * - anything else is sent (a commit that failed and then deployed is reported as deployed).
 * A report the notifier gave up on is not remembered, so the next identical one tries again.
 */
import type { History } from '../../history/history.ts';

export interface DeploymentReport {
  id: string;
  commit: string;
  branch: string;
  /** 'owner/name' for GitHub. */
  repo?: string;
  /** The project name from the configuration, for messages. */
  project?: string;
  state: 'pending' | 'applied' | 'no-op' | 'failed' | 'interrupted';
  /** One line, e.g. 'waffle: 2 replaced, 1 created' or the first problem. */
  description: string;
  problems?: Array<{ file?: string; service?: string; message: string }>;
  /** Link to the deployment (the agent's public URL + /deployments/<id>). */
  url?: string;
  durationMs?: number;
}

export interface Notifier {
  readonly name: string;
  notify(r: DeploymentReport, signal?: AbortSignal): Promise<void>;
}

export interface Logger {
  info(msg: string, fields?: object): void;
  warn(msg: string, fields?: object): void;
  error(msg: string, fields?: object): void;
}

/**
 * An error a notifier throws when retrying cannot help (bad credentials, a rejected payload). Other
 * errors are retried. `status` is the HTTP status when there was one.
 */
export class PermanentNotifyError extends Error {
  readonly status?: number;
  constructor(message: string, status?: number) {
    super(message);
    this.name = 'PermanentNotifyError';
    if (status !== undefined) this.status = status;
  }
}

/** Whether an HTTP status is worth retrying: server errors, rate limits, timeouts. */
export const retryableStatus = (status: number): boolean => status >= 500 || status === 429 || status === 408;

export interface HubOptions {
  log: Logger;
  /** Where the dedupe memory survives restarts; without it, it lasts as long as the hub. */
  history?: History;
  /** Attempts after the first. Default 5. */
  retries?: number;
  /** First backoff in ms, doubled each retry (with jitter), at most `maxDelayMs`. Default 1000. */
  baseDelayMs?: number;
  /** Longest backoff in ms. Default 60000. */
  maxDelayMs?: number;
  /** Commits remembered per notifier for dedupe. Default 200. */
  rememberCommits?: number;
}

/** What a notifier last delivered for each commit: commit → `state\ndescription`, oldest first. */
type Memory = Array<[commit: string, key: string]>;

interface Job {
  report: DeploymentReport;
  key: string;
  /** Set when a newer report for the same commit was queued behind this one. */
  superseded: boolean;
}

interface Lane {
  notifier: Notifier;
  queue: Job[];
  running: boolean;
  /** Reports queued or being sent, by commit: the key of the newest (dedupe before delivery). */
  claimed: Map<string, string>;
  memory: Memory;
}

const keyOf = (r: DeploymentReport): string => `${r.state}\n${r.description}`;

export class NotificationHub {
  private readonly lanes: Lane[];
  private readonly log: Logger;
  private readonly history?: History;
  private readonly retries: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly remember: number;
  private readonly abort = new AbortController();
  private idleWaiters: Array<() => void> = [];

  constructor(notifiers: Notifier[], opts: HubOptions) {
    this.log = opts.log;
    if (opts.history) this.history = opts.history;
    this.retries = opts.retries ?? 5;
    this.baseDelayMs = opts.baseDelayMs ?? 1000;
    this.maxDelayMs = opts.maxDelayMs ?? 60_000;
    this.remember = opts.rememberCommits ?? 200;
    const names = new Set<string>();
    for (const n of notifiers) {
      if (names.has(n.name)) throw new Error(`two notifiers are named "${n.name}": give each its own name (the dedupe memory is kept by name)`);
      names.add(n.name);
    }
    this.lanes = notifiers.map((notifier) => ({
      notifier,
      queue: [],
      running: false,
      claimed: new Map(),
      memory: this.history?.getState<Memory>(this.stateKey(notifier.name)) ?? [],
    }));
  }

  /** Queues `r` for every notifier and returns at once; sending, retries and failures happen in the background. */
  send(r: DeploymentReport): void {
    if (this.abort.signal.aborted) return;
    const key = keyOf(r);
    for (const lane of this.lanes) {
      const delivered = lane.memory.find(([c]) => c === r.commit)?.[1];
      const claimed = lane.claimed.get(r.commit);
      const latest = claimed ?? delivered;
      if (latest === key) continue;
      if (r.state === 'pending' && (delivered !== undefined || (claimed !== undefined && !claimed.startsWith('pending\n')))) continue;
      for (const j of lane.queue) if (j.report.commit === r.commit) j.superseded = true;
      lane.queue = lane.queue.filter((j) => !j.superseded);
      lane.queue.push({ report: r, key, superseded: false });
      lane.claimed.set(r.commit, key);
      if (!lane.running) void this.run(lane);
    }
  }

  /** Resolves when every queue is empty and nothing is being sent (for SIGTERM and tests). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops: waiting retries end now, queued reports are dropped; `idle()` resolves once a send in flight ends. */
  close(): void {
    this.abort.abort();
    for (const lane of this.lanes) lane.queue = [];
  }

  private isIdle(): boolean {
    return this.lanes.every((l) => !l.running && l.queue.length === 0);
  }

  private stateKey(name: string): string {
    return `notify:${name}`;
  }

  private async run(lane: Lane): Promise<void> {
    lane.running = true;
    try {
      for (let job = lane.queue.shift(); job; job = lane.queue.shift()) {
        const ok = await this.deliver(lane.notifier, job);
        if (lane.claimed.get(job.report.commit) === job.key && !lane.queue.some((j) => j.report.commit === job!.report.commit)) lane.claimed.delete(job.report.commit);
        if (ok) this.rememberDelivered(lane, job);
      }
    } finally {
      lane.running = false;
      if (this.isIdle()) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  /** Sends one report with retries; true when it was delivered. Never throws. */
  private async deliver(notifier: Notifier, job: Job): Promise<boolean> {
    const r = job.report;
    const fields = { notifier: notifier.name, deployment: r.id, commit: r.commit, state: r.state };
    for (let attempt = 0; ; attempt++) {
      try {
        await notifier.notify(r, this.abort.signal);
        this.log.info('notification sent', { ...fields, attempts: attempt + 1 });
        return true;
      } catch (err) {
        const e = err as Error & { status?: number };
        const permanent = e instanceof PermanentNotifyError;
        const status = e.status !== undefined ? { status: e.status } : {};
        if (this.abort.signal.aborted) {
          this.log.warn('notification dropped: the agent is stopping', { ...fields, error: e.message, ...status });
          return false;
        }
        if (permanent || attempt >= this.retries) {
          this.log.error(permanent ? 'notification failed and will not be retried' : `notification failed after ${attempt + 1} attempts; giving up`, { ...fields, error: e.message, ...status });
          return false;
        }
        if (job.superseded) {
          this.log.warn('notification failed; not retried, a newer report for the commit replaces it', { ...fields, error: e.message, ...status });
          return false;
        }
        const delay = this.backoff(attempt);
        this.log.warn('notification failed; retrying', { ...fields, attempt: attempt + 1, retryInMs: delay, error: e.message, ...status });
        await this.sleep(delay);
        if (job.superseded) return false;
      }
    }
  }

  /** base × 2^attempt, capped, with "equal jitter" (half fixed, half random) so retries of many agents spread out. */
  private backoff(attempt: number): number {
    const full = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** attempt);
    return Math.round(full / 2 + Math.random() * (full / 2));
  }

  private sleep(ms: number): Promise<void> {
    const signal = this.abort.signal;
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  private rememberDelivered(lane: Lane, job: Job): void {
    // Only results are remembered: a delivered pending must not make the result that follows look like a repeat.
    const commit = job.report.commit;
    const rest = lane.memory.filter(([c]) => c !== commit);
    if (job.report.state === 'pending') {
      lane.memory = rest;
    } else {
      lane.memory = [...rest, [commit, job.key] as [string, string]].slice(-this.remember);
    }
    try {
      this.history?.setState(this.stateKey(lane.notifier.name), lane.memory);
    } catch (err) {
      this.log.warn('could not save what was notified (a repeat may be sent after a restart)', { notifier: lane.notifier.name, error: (err as Error).message });
    }
  }
}
