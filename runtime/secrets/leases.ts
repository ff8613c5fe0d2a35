/**
 * Durable records of the leases behind dynamic credentials (Vault's database and AWS engines), so that a
 * restarted `waffle` (or the agent) still renews them, revokes them when their container is gone, and
 * knows when a service needs fresh credentials.
 *
 * One JSON file per project, `leases.json` in the deployer's state directory (see state.ts), written
 * atomically (temporary file + rename) after every change, and re-read before every change so that two
 * `waffle` processes do not lose each other's records. A record holds the HMAC digest of the values it
 * carried, never the values.
 *
 * Credential epochs: each (service, secret) has an epoch, starting at 0. The config hash of a service
 * takes `credentialMarker()` (the epoch), not the digest of a particular lease's values, so a container
 * replaced for another reason (new image) may get a new lease without looping. When a lease can no
 * longer be renewed it is marked `expiring` and the epoch goes up: the next plan sees a new marker, a new
 * config hash, and replaces the service with fresh credentials (cause `credentials`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { stateDir, stateRoot, writeFileAtomic } from './state.ts';

export interface LeaseRecord {
  project: string;
  service: string;
  /** The declared secret's name (`secrets.<name>`). */
  secret: string;
  leaseId: string;
  provider: 'vault';
  /** Vault engine (`database`, `aws`). */
  engine?: string;
  /** Epoch ms the credentials were issued. */
  issuedAt: number;
  /** The TTL Vault gave when the credentials were issued (seconds): what a renewal asks for again. */
  initialTtlSeconds: number;
  /** The current TTL (seconds), counted from `renewedAt`. */
  ttlSeconds: number;
  /** Epoch ms of the issue or the last renewal. */
  renewedAt: number;
  renewable: boolean;
  /** Epoch ms after which Vault will not extend it (learnt when a renewal comes back capped). */
  maxExpiresAt?: number;
  /** HMAC digest of the values (never the values). */
  digest: string;
  /** The container the values were injected into, once it exists. */
  containerId?: string;
  /**
   * The container the credentials were issued for, `<service>-<generation>` (files.ts `containerKey`),
   * known before it exists. A waffle that dies between creating the container and recording its id
   * leaves the lease unattached: the next clean-up finds the container by this key instead of revoking
   * credentials that a running container uses.
   */
  containerKey?: string;
  /** `expiring`: it can no longer be renewed; the service gets fresh credentials on the next apply. */
  state: 'active' | 'expiring';
  expiringReason?: string;
  /** The credential epoch of (service, secret) this lease belongs to. */
  epoch: number;
  renewals: number;
}

interface LeaseFile {
  version: 1;
  project: string;
  leases: LeaseRecord[];
  /** `service/secret` → current credential epoch. */
  epochs: Record<string, number>;
}

/**
 * A lease the backend no longer knows (expired and revoked, or revoked): it can never be renewed.
 * Defined here, not in vault.ts, so the renewer does not load node-vault for projects without Vault.
 */
export class LeaseGoneError extends Error {
  constructor(
    readonly leaseId: string,
    detail: string,
  ) {
    super(`lease ${leaseId} can no longer be renewed (${detail})`);
    this.name = 'LeaseGoneError';
  }
}

const epochKey = (service: string, secret: string) => `${service}/${secret}`;

export class LeaseStore {
  readonly file: string;

  constructor(
    readonly project: string,
    opts: { dir?: string; env?: Record<string, string | undefined> } = {},
  ) {
    const dir = opts.dir ?? stateDir(project, opts.env);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = path.join(dir, 'leases.json');
  }

  /** Whether `project` has a lease file at all (without creating the state directory). */
  static exists(project: string, env: Record<string, string | undefined> = process.env): boolean {
    return fs.existsSync(path.join(stateRoot(env), project, 'leases.json'));
  }

  /** Opens the lease records of `project` in its state directory. */
  static open(project: string, opts: { dir?: string; env?: Record<string, string | undefined> } = {}): LeaseStore {
    return new LeaseStore(project, opts);
  }

  private read(): LeaseFile {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, project: this.project, leases: [], epochs: {} };
      throw e;
    }
    try {
      const data = JSON.parse(text) as LeaseFile;
      return { version: 1, project: this.project, leases: Array.isArray(data.leases) ? data.leases : [], epochs: data.epochs ?? {} };
    } catch (e) {
      throw new Error(`lease records at ${this.file} are not valid JSON (${(e as Error).message}); move the file away to start afresh (leases it named expire on their own)`);
    }
  }

  private mutate<T>(fn: (f: LeaseFile) => T): T {
    const f = this.read();
    const out = fn(f);
    writeFileAtomic(this.file, `${JSON.stringify(f, null, 2)}\n`);
    return out;
  }

  /** Every record, optionally of one service. */
  list(filter: { service?: string; secret?: string; state?: LeaseRecord['state'] } = {}): LeaseRecord[] {
    return this.read().leases.filter(
      (l) => (!filter.service || l.service === filter.service) && (!filter.secret || l.secret === filter.secret) && (!filter.state || l.state === filter.state),
    );
  }

  get(leaseId: string): LeaseRecord | undefined {
    return this.read().leases.find((l) => l.leaseId === leaseId);
  }

  /** Records newly issued credentials (before the container exists; `attach` adds it). */
  add(rec: Omit<LeaseRecord, 'project' | 'epoch' | 'state' | 'renewals' | 'renewedAt' | 'initialTtlSeconds' | 'provider'> & Partial<Pick<LeaseRecord, 'provider' | 'renewedAt' | 'initialTtlSeconds'>>): LeaseRecord {
    return this.mutate((f) => {
      const full: LeaseRecord = {
        project: this.project,
        provider: 'vault',
        renewedAt: rec.issuedAt,
        initialTtlSeconds: rec.ttlSeconds,
        ...rec,
        state: 'active',
        epoch: f.epochs[epochKey(rec.service, rec.secret)] ?? 0,
        renewals: 0,
      };
      f.leases = f.leases.filter((l) => l.leaseId !== full.leaseId);
      f.leases.push(full);
      return full;
    });
  }

  /** Names the container the credentials of these leases were injected into. */
  attach(leaseIds: string[], containerId: string): void {
    if (!leaseIds.length) return;
    this.mutate((f) => {
      for (const l of f.leases) if (leaseIds.includes(l.leaseId)) l.containerId = containerId;
    });
  }

  update(leaseId: string, patch: Partial<Pick<LeaseRecord, 'ttlSeconds' | 'renewedAt' | 'renewable' | 'maxExpiresAt' | 'renewals' | 'containerId'>>): LeaseRecord | undefined {
    return this.mutate((f) => {
      const l = f.leases.find((x) => x.leaseId === leaseId);
      if (l) Object.assign(l, patch);
      return l;
    });
  }

  /**
   * Marks a lease as no longer renewable. When it belongs to the current credential epoch of its
   * (service, secret), the epoch goes up: the service's config hash changes and the next apply replaces it.
   */
  markExpiring(leaseId: string, reason: string): LeaseRecord | undefined {
    return this.mutate((f) => {
      const l = f.leases.find((x) => x.leaseId === leaseId);
      if (!l || l.state === 'expiring') return l;
      l.state = 'expiring';
      l.expiringReason = reason;
      const k = epochKey(l.service, l.secret);
      if ((f.epochs[k] ?? 0) === l.epoch) f.epochs[k] = l.epoch + 1;
      return l;
    });
  }

  remove(leaseIds: string[]): void {
    if (!leaseIds.length) return;
    this.mutate((f) => {
      f.leases = f.leases.filter((l) => !leaseIds.includes(l.leaseId));
    });
  }

  /** The current credential epoch of (service, secret). */
  epoch(service: string, secret: string): number {
    return this.read().epochs[epochKey(service, secret)] ?? 0;
  }

  /**
   * What enters the config hash for a dynamic secret of a service (to be HMACed with the deployer's key):
   * stable while its credentials can be renewed, new once they cannot.
   */
  credentialMarker(service: string, secret: string): string {
    return `lease-epoch:${this.epoch(service, secret)}`;
  }
}
