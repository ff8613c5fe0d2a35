/**
 * The restart budget of crashing services: at most `max` restarts per service in a sliding `windowMs`
 * (default 5 in 5 minutes). Past it the agent stops trying and marks the service failed, once, until a
 * deploy gives the service a new container. Counts live in the agent's state store (the history), so
 * an agent restart neither resets them nor reports the failure again.
 */
import type { StateStore } from './image-updates.ts';

export interface BudgetSettings {
  /** Restarts allowed in the window. Default 5. */
  max: number;
  /** The window, in milliseconds. Default 5 minutes. */
  windowMs: number;
}

export const DEFAULT_BUDGET: BudgetSettings = { max: 5, windowMs: 5 * 60_000 };

interface BudgetRecord {
  /** Times of the restarts in the window. */
  restarts: number[];
  /** Set when the budget ran out: the container given up on, and whether the failure was reported. */
  gaveUp?: { at: number; container: string; reported: boolean };
}

export type Spend =
  | { ok: true; used: number; max: number }
  /** Out of budget. `first`: this is the moment it ran out (report it); later calls say false. */
  | { ok: false; first: boolean; used: number; max: number };

const key = (project: string, service: string) => `drift:budget:${project}:${service}`;

export class RestartBudget {
  constructor(
    private readonly state: StateStore,
    readonly settings: BudgetSettings = DEFAULT_BUDGET,
    private readonly now: () => number = Date.now,
  ) {}

  #read(project: string, service: string): BudgetRecord {
    return this.state.getState<BudgetRecord>(key(project, service)) ?? { restarts: [] };
  }

  /** Restarts counted in the window now. */
  used(project: string, service: string): number {
    const t = this.now();
    return this.#read(project, service).restarts.filter((x) => x > t - this.settings.windowMs).length;
  }

  /** The give-up record, when the agent stopped restarting the service. */
  gaveUp(project: string, service: string): BudgetRecord['gaveUp'] {
    return this.#read(project, service).gaveUp;
  }

  /** Spends one restart of `container`, or says the budget is out (and marks it given up). */
  spend(project: string, service: string, container: string): Spend {
    const t = this.now();
    const rec = this.#read(project, service);
    rec.restarts = rec.restarts.filter((x) => x > t - this.settings.windowMs);
    const { max } = this.settings;
    if (rec.gaveUp) return { ok: false, first: false, used: rec.restarts.length, max };
    if (rec.restarts.length >= max) {
      rec.gaveUp = { at: t, container, reported: false };
      this.state.setState(key(project, service), rec);
      return { ok: false, first: true, used: rec.restarts.length, max };
    }
    rec.restarts.push(t);
    this.state.setState(key(project, service), rec);
    return { ok: true, used: rec.restarts.length, max };
  }

  /** Notes that the give-up was reported (not again, also after an agent restart). Returns false when it already was. */
  markReported(project: string, service: string): boolean {
    const rec = this.#read(project, service);
    if (!rec.gaveUp || rec.gaveUp.reported) return false;
    rec.gaveUp.reported = true;
    this.state.setState(key(project, service), rec);
    return true;
  }

  /** Starts afresh (a deploy gave the service a new container). */
  reset(project: string, service: string): void {
    this.state.setState(key(project, service), undefined);
  }
}
