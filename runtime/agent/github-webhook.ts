/**
 * GitHub webhook deliveries: the signature check (HMAC-SHA256 of the raw body with the shared secret,
 * compared in constant time, before anything is parsed) and what a verified delivery asks for. Pure:
 * no I/O, no state; the server records and acts.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Whether `header` (`X-Hub-Signature-256: sha256=<hex>`) signs `body` with `secret`. */
export function verifySignature(secret: string | Buffer, body: Buffer, header: string | undefined): boolean {
  if (!header || !header.startsWith('sha256=')) return false;
  const given = Buffer.from(header.slice('sha256='.length), 'hex');
  const expected = createHmac('sha256', secret).update(body).digest();
  // A malformed hex string decodes short; equal lengths first (timingSafeEqual requires them).
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** `sha256=<hex>` for `body`: what GitHub sends (tests and the bench sign with it). */
export function sign(secret: string | Buffer, body: Buffer | string): string {
  return 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
}

export type Delivery =
  | { kind: 'ping' }
  | { kind: 'push'; commit: string; ref: string; repo: string }
  | { kind: 'ignored'; reason: string }
  | { kind: 'malformed'; reason: string };

export interface Want {
  /** `owner/name` whose deliveries are acted on (compared without case, as GitHub names are). */
  repo: string;
  branch: string;
}

/** A delivery's JSON object: the body, or the `payload` field of a form (the webhook's other content type). */
export function payloadOf(body: Buffer, contentType: string | undefined): { json: object } | { reason: string } {
  let text = body.toString('utf8');
  if ((contentType ?? '').startsWith('application/x-www-form-urlencoded')) {
    const payload = new URLSearchParams(text).get('payload');
    if (payload === null) return { reason: 'form body without a payload field' };
    text = payload;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { reason: 'body is not JSON' };
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) return { reason: 'body is not a JSON object' };
  return { json };
}

/**
 * What a verified delivery asks for. Only a push to exactly `refs/heads/<branch>` of exactly `repo`
 * deploys; a branch deletion, a tag, another branch or repository is ignored with the reason.
 * The body is JSON, or a form with a `payload` field (the webhook's other content type).
 */
export function classify(event: string | undefined, body: Buffer, contentType: string | undefined, want: Want): Delivery {
  if (event === 'ping') return { kind: 'ping' };
  if (!event) return { kind: 'malformed', reason: 'no X-GitHub-Event header' };
  const parsed = payloadOf(body, contentType);
  if ('reason' in parsed) return { kind: 'malformed', reason: parsed.reason };
  const json = parsed.json;
  if (event !== 'push') return { kind: 'ignored', reason: `event ${event}` };
  const p = json as { ref?: unknown; after?: unknown; deleted?: unknown; repository?: { full_name?: unknown } };
  const repo = typeof p.repository?.full_name === 'string' ? p.repository.full_name : undefined;
  if (typeof p.ref !== 'string' || !repo) return { kind: 'malformed', reason: 'push without ref or repository.full_name' };
  if (repo.toLowerCase() !== want.repo.toLowerCase()) return { kind: 'ignored', reason: `repository ${repo}` };
  if (p.ref !== `refs/heads/${want.branch}`) return { kind: 'ignored', reason: `branch ${p.ref}` };
  if (p.deleted === true) return { kind: 'ignored', reason: `branch ${p.ref} deleted` };
  if (typeof p.after !== 'string' || !/^[0-9a-f]{40}$/.test(p.after)) return { kind: 'malformed', reason: 'push without an `after` commit' };
  return { kind: 'push', commit: p.after, ref: p.ref, repo };
}

/** `owner/name` from a GitHub clone URL (https, ssh or scp-like), else undefined. */
export function githubRepoOf(url: string): string | undefined {
  const m = /^(?:https?:\/\/(?:[^@/]+@)?github\.com\/|ssh:\/\/git@github\.com\/|git@github\.com:)([A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+?)(?:\.git)?\/?$/.exec(url);
  return m?.[1];
}
