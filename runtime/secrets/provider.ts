/**
 * One small interface per secret backend (Kamal-style: one adapter file each): `embedded.ts` (age-encrypted
 * files in the repository) and `vault.ts` (HashiCorp Vault: KV v2, database and AWS engines with leases).
 * Values only exist in memory during apply; they never enter the plan, labels, logs or history.
 */

/** A declared secret as evaluated from `defineSecrets({...})` in waffle.config.ts (plain data, no values). */
export interface SecretDecl {
  /** The name it is declared under: `secrets.<name>.<key>`. */
  name: string;
  provider: 'embedded' | 'vault';
  /** Vault engine; embedded secrets have none. */
  engine?: 'kv' | 'database' | 'aws';
  /** Vault: the role of the database/aws engine. */
  role?: string;
  /** Vault: the engine's mount path (default `secret`, `database`, `aws`). */
  mount?: string;
  /** Vault KV: the secret's path under the mount. */
  path?: string;
  /** The keys this secret provides: what `secrets.<name>.<key>` may name. */
  keys: string[];
  /** Keys generated on first apply and stored, never regenerated unless asked. */
  generate?: Record<string, { format: 'alphanumeric' | 'base64' | 'hex'; length: number }>;
  /** Vault database engine: create the role when it is missing. */
  createRole?: Record<string, unknown>;
}

export interface ResolveContext {
  project: string;
  /** The service the values are for (dynamic engines issue one credential set per service). */
  service: string;
  /** Repository root. */
  root: string;
}

export interface LeaseInfo {
  leaseId: string;
  /** Seconds the lease is valid from `issuedAt`. */
  ttlSeconds: number;
  renewable: boolean;
  /** Epoch milliseconds. */
  issuedAt: number;
}

export interface ResolvedSecret {
  /** key → value. Only in memory. */
  values: Record<string, string>;
  /** Present for dynamic credentials (database, aws). */
  lease?: LeaseInfo;
}

export interface SecretProvider {
  readonly kind: 'embedded' | 'vault';
  /** Fails fast, before any change, when the backend cannot be reached; the message names the address. */
  check(): Promise<void>;
  /** Values of one declared secret for one service. Dynamic engines create a new lease on each call. */
  resolve(decl: SecretDecl, ctx: ResolveContext): Promise<ResolvedSecret>;
  /** Renews a lease; returns the new TTL. Throws when it can no longer be renewed. */
  renew?(leaseId: string, incrementSeconds: number): Promise<{ ttlSeconds: number; renewable: boolean }>;
  /** Revokes a lease (its credentials stop working). */
  revoke?(leaseId: string): Promise<void>;
}
