/**
 * One small interface per secret backend (Kamal-style: one adapter file each): `embedded.ts` (age-encrypted
 * files in the repository) and `vault.ts` (HashiCorp Vault: KV v2, database and AWS engines with leases).
 * Values only exist in memory during apply; they never enter the plan, labels, logs or history.
 */
import type { SecretDeclData } from '../../define/secrets.ts';

/** A declared secret as evaluated from `defineSecrets({...})` in waffle.config.ts (plain data, no values). */
export type SecretDecl = SecretDeclData;

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
