/**
 * What asks the agent to deploy. Every source (a GitHub push, the git poll, the management API, the
 * start-up reconcile, and later a registry push or a drift repair seen in Docker's events) turns what
 * it saw into a Trigger and hands it to the same queue, which coalesces and runs them one at a time.
 */

/** Which commit a deploy is for: the branch head at the time it runs, or one given commit (on the branch). */
export type Target = { head: true } | { commit: string };

export interface Trigger {
  /** `push` | `poll` | `manual` | `startup` | `retry`; later `registry` | `repair`. Recorded in history. */
  kind: string;
  target: Target;
  /** The delivery it came from (X-GitHub-Delivery, a registry notification id). */
  delivery?: string;
  /** The commit the trigger named (a push's `after`), for the record; the deploy itself uses `target`. */
  commit?: string;
  /** One line for the log: why this trigger came. */
  reason?: string;
}

/** What the queue did with a trigger. */
export interface Enqueued {
  /** The deployment that will carry it out. */
  deployment: string;
  /** `deployed`: a deployment of its own; `coalesced`: folded into the one already waiting. */
  outcome: 'deployed' | 'coalesced';
}

/** Feeds triggers into the agent's queue (poll timer, registry notifications, Docker events…). */
export interface TriggerSource {
  readonly name: string;
  start(submit: (t: Trigger) => Enqueued): void | Promise<void>;
  /** Stops producing triggers; resolves when the source has let go of its timers and connections. */
  stop(): void | Promise<void>;
}
