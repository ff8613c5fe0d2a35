/**
 * The git poll: catches pushes whose webhook never arrived. Every interval it asks the remote for the
 * branch head (`git ls-remote`, no fetch) and queues a deploy when it differs from the commit the agent
 * is at or moving to. A remote that cannot be reached is logged, and asked again at the next tick.
 */
import type { Checkout } from './checkout.ts';
import type { Logger } from './notify/notifier.ts';
import type { Enqueued, Trigger, TriggerSource } from './trigger.ts';

export class PollSource implements TriggerSource {
  readonly name = 'poll';
  #timer: NodeJS.Timeout | undefined;
  #busy: Promise<void> | undefined;
  #failing = false;

  constructor(
    private readonly opts: { intervalMs: number; checkout: Checkout; known: () => string | undefined; busy: () => boolean; log: Logger },
  ) {}

  start(submit: (t: Trigger) => Enqueued): void {
    if (this.opts.intervalMs <= 0) return;
    this.#timer = setInterval(() => {
      if (!this.#busy) this.#busy = this.#tick(submit).finally(() => (this.#busy = undefined));
    }, this.opts.intervalMs);
    this.#timer.unref();
  }

  async #tick(submit: (t: Trigger) => Enqueued): Promise<void> {
    // A deploy running or waiting fetches the head anyway; the next tick looks again.
    if (this.opts.busy()) return;
    let head: string | undefined;
    try {
      head = await this.opts.checkout.remoteHead();
      if (this.#failing) this.opts.log.info('poll: the remote answers again');
      this.#failing = false;
    } catch (e) {
      // Said once per outage, not every tick.
      if (!this.#failing) this.opts.log.warn('poll: cannot reach the remote; asking again at the next tick', { error: String((e as Error)?.message ?? e).split('\n')[0] });
      this.#failing = true;
      return;
    }
    if (!head || head === this.opts.known()) return;
    submit({ kind: 'poll', target: { head: true }, commit: head, reason: `branch ${this.opts.checkout.branch} is at ${head.slice(0, 12)}` });
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#busy;
  }
}
