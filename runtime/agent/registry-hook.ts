/**
 * `POST /hooks/registry`: registry push notifications. The Docker distribution registry sends its event
 * envelope with the headers its `notifications.endpoints[].headers` configure (`Authorization: Bearer
 * <secret>`); Docker Hub cannot set headers, so its webhook URL carries the secret (`?secret=<secret>`).
 * The secret is compared in constant time (over digests of equal length). Each delivery is recorded
 * with what was done with it; a matching push queues a deploy through the image updates.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseNotification } from '../images/notifications.ts';
import type { ImageUpdates } from './image-updates.ts';

export interface HookRequest {
  headers: Record<string, string | string[] | undefined>;
  /** The request URL (path and query). */
  url: string;
  body: Buffer;
}

export interface HookResponse {
  status: number;
  body: Record<string, unknown>;
}

export interface RegistryHookOptions {
  /** The shared secret; without it the hook answers 503. */
  secret?: string | Buffer;
  updates: ImageUpdates;
  /** Records a delivery (history) and counts it (metrics). */
  record?: (d: { id: string; source: 'registry'; event: string; outcome: string; deployment?: string; receivedAt: number }) => void;
  now?: () => number;
}

const digest = (s: string | Buffer) => createHash('sha256').update(s).digest();

/** The secret a request presents: `Authorization: Bearer|Token <s>`, `X-Waffle-Secret`, or the `secret` query parameter. */
export function presentedSecret(req: Pick<HookRequest, 'headers' | 'url'>): string | undefined {
  const h = (n: string) => {
    const v = req.headers[n];
    return Array.isArray(v) ? v[0] : v;
  };
  const m = /^(?:Bearer|Token)\s+(.+)$/i.exec(h('authorization') ?? '');
  if (m) return m[1]!.trim();
  const x = h('x-waffle-secret');
  if (x) return x.trim();
  const q = new URL(req.url, 'http://agent.invalid').searchParams.get('secret');
  return q ?? undefined;
}

/** Whether `presented` is the secret, in time independent of where they differ. */
export function secretMatches(presented: string | undefined, secret: string | Buffer): boolean {
  return presented !== undefined && timingSafeEqual(digest(presented), digest(secret));
}

export function registryHook(o: RegistryHookOptions): (req: HookRequest) => HookResponse {
  const now = o.now ?? Date.now;
  return (req) => {
    const receivedAt = now();
    const newId = () => `reg-${receivedAt.toString(36)}-${randomBytes(4).toString('hex')}`;
    const record = (outcome: string, extra: { id?: string; deployment?: string; event?: string } = {}) =>
      o.record?.({ id: extra.id ?? newId(), source: 'registry', event: extra.event ?? 'push', outcome, ...(extra.deployment ? { deployment: extra.deployment } : {}), receivedAt });
    if (!o.secret || (Buffer.isBuffer(o.secret) ? o.secret.length === 0 : o.secret === '')) {
      return { status: 503, body: { error: 'registry notifications are off: the agent has no registry secret' } };
    }
    if (!secretMatches(presentedSecret(req), o.secret)) {
      record('refused: bad secret');
      return { status: 401, body: { error: 'bad or missing secret' } };
    }
    const parsed = parseNotification(req.body, { now: receivedAt });
    if (parsed.kind === 'malformed') {
      record(`refused: ${parsed.reason}`);
      return { status: 400, body: { error: parsed.reason } };
    }
    // The registry numbers its events; an envelope is named after its first push.
    const id = parsed.pushes[0]?.id;
    // Pulls, layer pushes and deletes: the registry reports every one; not worth a history row each.
    if (parsed.pushes.length === 0) return { status: 202, body: { status: 'ignored', reason: `no tag push (${parsed.skipped} other event${parsed.skipped === 1 ? '' : 's'})` } };
    const r = o.updates.pushed(parsed.pushes, { kind: 'registry', ...(id ? { delivery: id } : {}) });
    const pushed = parsed.pushes.map((p) => `${p.registry}/${p.repository}:${p.tag}`).join(', ');
    if (r.outcome === 'ignored') {
      record(`ignored: ${pushed}: ${r.reason ?? 'no change'}`, { ...(id ? { id } : {}) });
      return { status: 202, body: { status: 'ignored', pushed, reason: r.reason, unchanged: r.unchanged } };
    }
    const changes = r.updates.map((u) => `${u.service} ${u.from} → ${u.to}${u.digest ? ` (${u.digest})` : ''}`).join(', ');
    record(`${r.outcome}: ${changes}`, { ...(id ? { id } : {}), ...(r.deployment ? { deployment: r.deployment } : {}) });
    return { status: 202, body: { status: r.outcome, deployment: r.deployment, updates: r.updates } };
  };
}
