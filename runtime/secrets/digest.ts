/**
 * The keyed hash that lets secret values take part in the config hash without ever appearing in it.
 *
 * Per service: HMAC-SHA256, keyed with the deployer's own key (`hmac.key` in the project's state
 * directory, outside the repository, created 0600 on first use), over the sorted (secret, key, value)
 * triples the service uses. Rotating a value changes exactly the digests of the services using it; the
 * label holds a hash of the digest, and without the key nobody can test guesses against it.
 *
 * Dynamic credentials (Vault database/aws) have no value at plan time: each new container gets a new
 * lease. For them the triple is (secret, `*lease`, marker), where the marker comes from the lease
 * store (`LeaseStore.credentialMarker`, leases.ts): stable while the service's credentials can be
 * renewed, new once they cannot, so an expiring lease redeploys the service and a replacement for any
 * other reason does not loop. That is the whole seam: any object with `credentialMarker(service, secret)`.
 * The session keeps these in a digest of their own (`credentialsDigests`, config part `credentials`), so
 * the plan says "credentials" rather than "a secret value changed".
 */
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { stateDir } from './state.ts';

/** What the lease store offers the digest (implemented by `LeaseStore` in leases.ts). */
export interface CredentialMarkers {
  credentialMarker(service: string, secret: string): string;
}

/** One input of a service's digest. `value` is a secret value or a lease marker; it never leaves this module. */
export interface DigestEntry {
  secret: string;
  key: string;
  value: string;
}

export const LEASE_KEY = '*lease';

/** The deployer's HMAC key for `project` (32 random bytes), created 0600 on first use. */
export function hmacKey(project: string, env: Record<string, string | undefined> = process.env): Buffer {
  const file = path.join(stateDir(project, env), 'hmac.key');
  const read = () => {
    const hex = fs.readFileSync(file, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${file} is not a waffle HMAC key (64 hex characters); move it away to create a new one (every service using secrets is then redeployed once)`);
    return Buffer.from(hex, 'hex');
  };
  try {
    return read();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  try {
    const fd = fs.openSync(file, 'wx', 0o600);
    try {
      fs.writeFileSync(fd, randomBytes(32).toString('hex') + '\n');
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // another waffle created it first
  }
  return read();
}

/** HMAC-SHA256 (hex) over the sorted entries. Order-insensitive; undefined when there are none. */
export function digestOf(hmac: Buffer, entries: DigestEntry[]): string | undefined {
  if (entries.length === 0) return undefined;
  const rows = entries
    .map((e) => [e.secret, e.key, e.value])
    .sort((a, b) => (a[0] !== b[0] ? (a[0]! < b[0]! ? -1 : 1) : a[1] !== b[1] ? (a[1]! < b[1]! ? -1 : 1) : 0));
  return createHmac('sha256', hmac).update(JSON.stringify(rows)).digest('hex');
}
