/**
 * One deploy at a time, and bursts collapse: while a deploy runs, every trigger that arrives joins ONE
 * waiting follow-up deploy, whose target becomes the newest trigger's. A burst of fifty pushes is the
 * running deploy plus one more, of the last commit. A failing deploy does not stop the next one.
 */
import type { Enqueued, Target, Trigger } from './trigger.ts';

export interface Job {
  id: string;
  /** Every trigger it carries, oldest first; the first one created it. */
  triggers: Trigger[];
  target: Target;
}

export interface QueueHooks {
  /** A new deployment id for a trigger that starts a job (the history row is created here). */
  create(t: Trigger): string;
  /** Runs one job; never expected to throw (a throw is reported through `onError`). */
  run(job: Job): Promise<void>;
  onError?(job: Job, e: unknown): void;
  /** The number of jobs waiting to run changed (metrics). */
  onWaiting?(n: number): void;
}

export class DeployQueue {
  #running: Job | undefined;
  #pending: Job | undefined;
  #closed = false;
  #idle: Promise<void> = Promise.resolve();
  #settle: (() => void) | undefined;
  readonly #hooks: QueueHooks;

  constructor(hooks: QueueHooks) {
    this.#hooks = hooks;
  }

  get running(): Job | undefined {
    return this.#running;
  }
  get pending(): Job | undefined {
    return this.#pending;
  }
  get length(): number {
    return (this.#running ? 1 : 0) + (this.#pending ? 1 : 0);
  }

  /** Queues `t`: a job of its own when none waits, else folded into the waiting one (newest target wins). */
  submit(t: Trigger): Enqueued {
    if (this.#closed) throw new Error('the agent is shutting down: no new deploy starts');
    if (this.#pending) {
      this.#pending.triggers.push(t);
      this.#pending.target = t.target;
      return { deployment: this.#pending.id, outcome: 'coalesced' };
    }
    const job: Job = { id: this.#hooks.create(t), triggers: [t], target: t.target };
    if (this.#running) this.#pending = job;
    else {
      this.#idle = new Promise((r) => (this.#settle = r));
      this.#start(job);
    }
    this.#hooks.onWaiting?.(this.#pending ? 1 : 0);
    return { deployment: job.id, outcome: 'deployed' };
  }

  #start(job: Job): void {
    this.#running = job;
    this.#hooks
      .run(job)
      .catch((e) => this.#hooks.onError?.(job, e))
      .finally(() => {
        this.#running = undefined;
        const next = this.#pending;
        this.#pending = undefined;
        if (next && !this.#closed) this.#start(next);
        else this.#settle?.();
        this.#hooks.onWaiting?.(this.#pending ? 1 : 0);
      });
  }

  /** Resolves when nothing runs and nothing waits. */
  idle(): Promise<void> {
    return this.#running ? this.#idle : Promise.resolve();
  }

  /**
   * Accepts no more triggers; the running deploy finishes, the waiting one is dropped and returned (its
   * history row is closed by the caller). Resolves once the running deploy is done.
   */
  async close(): Promise<Job | undefined> {
    this.#closed = true;
    const dropped = this.#pending;
    this.#pending = undefined;
    await this.idle();
    return dropped;
  }
}
