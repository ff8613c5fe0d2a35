/**
 * Keeps dynamic credentials alive and cleans them up, from the durable records in leases.ts:
 * - `renewDue(now)`: renews every lease once `renewFraction` of its TTL has passed. A lease that can no
 *   longer be renewed (not renewable, renewal capped by the max TTL, or Vault no longer knows it) is
 *   marked expiring: its service's credential epoch goes up, so the next plan replaces the service with
 *   fresh credentials (cause `credentials`). Vault being unreachable is reported, not fatal: try later.
 * - `revokeOrphans(observedContainerIds)`: revokes leases whose container no longer exists (after an apply,
 *   after `destroy`), and leases that were issued but never reached a container.
 * The agent calls `renewDue` on a timer; `waffle secrets renew` calls it once.
 */
import type { ServiceGraph } from '../model.ts';
import type { SecretProvider } from './provider.ts';
import { LeaseGoneError, LeaseStore, type LeaseRecord } from './leases.ts';
import { ProviderRegistry } from './registry.ts';

type Env = Record<string, string | undefined>;
type GraphVault = Pick<ServiceGraph, 'project' | 'root' | 'vault' | 'configFile'>;

export interface RenewerOptions {
  store: LeaseStore;
  /** The provider that issued the leases (Vault). */
  provider: Pick<SecretProvider, 'renew' | 'revoke'>;
  /** Fraction of a lease's TTL after which it is renewed (0 < f < 1). Default 0.5. */
  renewFraction?: number;
}

export interface RenewReport {
  /** Leases renewed, with their new TTL. */
  renewed: Array<{ service: string; secret: string; leaseId: string; ttlSeconds: number }>;
  /** Leases that can no longer be renewed: their services get fresh credentials on the next apply. */
  expiring: Array<{ service: string; secret: string; leaseId: string; reason: string }>;
  /** Renewals that failed for another reason (Vault unreachable...): retried on the next call. */
  failed: Array<{ service: string; secret: string; leaseId: string; error: string }>;
}

/** An observed container: its id, and the service and generation that name its credentials (`containerKey`). */
export interface ObservedRef {
  id: string;
  service?: string;
  generation?: number | string;
}

export interface RevokeReport {
  revoked: Array<{ service: string; secret: string; leaseId: string }>;
  failed: Array<{ service: string; secret: string; leaseId: string; error: string }>;
}

export class Renewer {
  readonly store: LeaseStore;
  readonly renewFraction: number;
  private readonly provider: Pick<SecretProvider, 'renew' | 'revoke'>;

  constructor(opts: RenewerOptions) {
    this.store = opts.store;
    this.provider = opts.provider;
    this.renewFraction = opts.renewFraction ?? 0.5;
    if (!(this.renewFraction > 0 && this.renewFraction < 1)) throw new Error(`renewFraction must be between 0 and 1 (exclusive), got ${this.renewFraction}`);
  }

  /** When the lease is due for renewal (epoch ms). */
  dueAt(l: LeaseRecord): number {
    return l.renewedAt + l.ttlSeconds * 1000 * this.renewFraction;
  }

  /** Renews every active lease that is due at `now` (epoch ms). */
  async renewDue(now: number = Date.now()): Promise<RenewReport> {
    const report: RenewReport = { renewed: [], expiring: [], failed: [] };
    const expire = (l: LeaseRecord, reason: string) => {
      this.store.markExpiring(l.leaseId, reason);
      report.expiring.push({ service: l.service, secret: l.secret, leaseId: l.leaseId, reason });
    };
    for (const l of this.store.list({ state: 'active' })) {
      if (now < this.dueAt(l)) continue;
      if (!l.renewable || !this.provider.renew) {
        expire(l, 'the lease is not renewable');
        continue;
      }
      const increment = l.initialTtlSeconds || l.ttlSeconds;
      try {
        const r = await this.provider.renew(l.leaseId, increment);
        const capped = r.ttlSeconds < increment;
        this.store.update(l.leaseId, {
          ttlSeconds: r.ttlSeconds,
          renewedAt: now,
          renewable: r.renewable,
          renewals: l.renewals + 1,
          ...(capped ? { maxExpiresAt: now + r.ttlSeconds * 1000 } : {}),
        });
        report.renewed.push({ service: l.service, secret: l.secret, leaseId: l.leaseId, ttlSeconds: r.ttlSeconds });
        if (capped || r.ttlSeconds <= 0) expire(l, `the lease reached its max TTL: it ends in ${r.ttlSeconds}s`);
        else if (!r.renewable) expire(l, 'Vault says the lease is no longer renewable');
      } catch (e) {
        if (e instanceof LeaseGoneError) expire(l, 'the lease expired or was revoked in Vault');
        else report.failed.push({ service: l.service, secret: l.secret, leaseId: l.leaseId, error: (e as Error).message });
      }
    }
    return report;
  }

  /**
   * Revokes leases whose container is not among the observed ones (and leases never attached to a
   * container whose container does not exist either). Records are dropped once revoked; a failed revocation stays recorded and is retried.
   */
  async revokeOrphans(observed: Iterable<string | ObservedRef>): Promise<RevokeReport> {
    const containers = [...observed].map((c) => (typeof c === 'string' ? { id: c } : c));
    const alive = new Set(containers.map((c) => c.id));
    const leases = this.store.list();
    // An unattached lease whose container exists (waffle died after creating it, before recording its id)
    // is in use: attach it. Of several issued for the same container and secret, the newest went into it.
    const byKey = new Map<string, string>();
    for (const c of containers) if (c.service !== undefined && c.generation !== undefined) byKey.set(`${c.service}-${c.generation}`, c.id);
    const adopted = new Map<string, string>();
    const taken = new Set(leases.filter((l) => l.containerId && alive.has(l.containerId)).map((l) => `${l.containerId}\0${l.secret}`));
    const loose = leases.filter((l) => !l.containerId && l.containerKey !== undefined && byKey.has(l.containerKey)).sort((a, b) => b.issuedAt - a.issuedAt);
    for (const l of loose) {
      const id = byKey.get(l.containerKey!)!;
      const slot = `${id}\0${l.secret}`;
      if (taken.has(slot)) continue;
      taken.add(slot);
      adopted.set(l.leaseId, id);
    }
    for (const [leaseId, id] of adopted) this.store.attach([leaseId], id);
    const orphans = leases.filter((l) => !adopted.has(l.leaseId) && (!l.containerId || !alive.has(l.containerId)));
    return this.revoke(orphans);
  }

  /** Revokes every lease of the project (`destroy`). */
  async revokeAll(): Promise<RevokeReport> {
    return this.revoke(this.store.list());
  }

  private async revoke(leases: LeaseRecord[]): Promise<RevokeReport> {
    const report: RevokeReport = { revoked: [], failed: [] };
    const done: string[] = [];
    for (const l of leases) {
      try {
        if (this.provider.revoke) await this.provider.revoke(l.leaseId);
        done.push(l.leaseId);
        report.revoked.push({ service: l.service, secret: l.secret, leaseId: l.leaseId });
      } catch (e) {
        report.failed.push({ service: l.service, secret: l.secret, leaseId: l.leaseId, error: (e as Error).message });
      }
    }
    this.store.remove(done);
    return report;
  }
}

/** The project's renewer, or undefined when it has no lease records or no Vault configured. */
async function projectRenewer(graph: GraphVault, opts: { env?: Env; registry?: ProviderRegistry }): Promise<Renewer | undefined> {
  const env = opts.env ?? process.env;
  if (!graph.vault || !LeaseStore.exists(graph.project, env)) return undefined;
  const store = LeaseStore.open(graph.project, { env });
  const provider = await (opts.registry ?? new ProviderRegistry(graph, env)).kind('vault');
  return new Renewer({ store, provider, renewFraction: graph.vault.renewFraction });
}

/**
 * Renews the project's due leases (what `waffle secrets renew` and the agent's timer do, and what
 * `prepare` does before planning, so an unrenewable lease becomes a `credentials` replacement).
 * Undefined when the project has no leases.
 */
export async function renewProjectLeases(graph: GraphVault, opts: { env?: Env; now?: number; registry?: ProviderRegistry } = {}): Promise<RenewReport | undefined> {
  const r = await projectRenewer(graph, opts);
  return r?.renewDue(opts.now ?? Date.now());
}

/**
 * Revokes the project's leases whose container is not in `containerIds` (after an apply), or all of
 * them (`'all'`, after `destroy`). Undefined when the project has no leases.
 */
export async function revokeProjectLeases(graph: GraphVault, containerIds: Array<string | ObservedRef> | 'all', opts: { env?: Env; registry?: ProviderRegistry } = {}): Promise<RevokeReport | undefined> {
  const r = await projectRenewer(graph, opts);
  if (!r) return undefined;
  return containerIds === 'all' ? r.revokeAll() : r.revokeOrphans(containerIds);
}
