/**
 * One small interface per secret backend (Kamal-style: one adapter file each): `embedded.ts` (age-encrypted
 * files in the repository) and `vault.ts` (HashiCorp Vault: KV v2, database and AWS engines with leases).
 * Values only exist in memory during apply; they never enter the plan, labels, logs or history.
 */
import type { SecretDecl } from '../model.ts';

export type { SecretDecl };

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

/** What a store holds now for one static secret, read without creating anything. */
export interface StoredValues {
  /** Declared keys that have a value: key → value. Only in memory. */
  values: Record<string, string>;
  /** Declared keys that have no value yet. */
  missing: string[];
  /** Where the values live (repository-relative file or address), for the problem that names missing keys. */
  location: string;
  /** How a person gives these keys a value (never with the value on the command line). */
  howToSet(keys: string[]): string;
}

export interface SecretProvider {
  readonly kind: 'embedded' | 'vault';
  /** Fails fast, before any change, when the backend cannot be reached; the message names the address. */
  check(): Promise<void>;
  /** Values of one declared secret for one service. Dynamic engines create a new lease on each call. */
  resolve(decl: SecretDecl, ctx: ResolveContext): Promise<ResolvedSecret>;
  /**
   * Deferred generation, for a store a plan must not write to: `readStored` reads what is stored now
   * without creating anything, so the session generates missing `generate` keys in memory at plan time,
   * and `storeGenerated` stores them at apply time. A provider that generates on `resolve` itself
   * (Vault KV, with check-and-set) implements neither; the session then calls `resolve`.
   */
  readStored?(decl: SecretDecl): Promise<StoredValues>;
  /**
   * Stores generated values for keys that still have none, keeping every other stored key. Throws, and
   * stores nothing, when one of them got a value meanwhile (never overwrites a value someone set).
   */
  storeGenerated?(decl: SecretDecl, generated: Record<string, string>): Promise<void>;
  /** Renews a lease; returns the new TTL. Throws when it can no longer be renewed. */
  renew?(leaseId: string, incrementSeconds: number): Promise<{ ttlSeconds: number; renewable: boolean }>;
  /** Revokes a lease (its credentials stop working). */
  revoke?(leaseId: string): Promise<void>;
}
