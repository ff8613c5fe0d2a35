/**
 * Registry push notifications, parsed into one shape: the Docker distribution registry's envelope
 * (`application/vnd.docker.distribution.events.v1+json`: `{ events: [...] }`, a manifest push carrying
 * `target.repository`, `target.tag`, `target.digest`, and the host the client pushed to in
 * `request.host`) and Docker Hub's webhook (`push_data.tag`, `repository.repo_name`, no digest). Pure.
 */
import { DOCKER_HUB, normalizeRegistry } from './reference.ts';

export const DISTRIBUTION_EVENTS_TYPE = 'application/vnd.docker.distribution.events.v1+json';

/** A tag pushed to a repository. */
export interface PushEvent {
  /** Registry host as clients name it (`127.0.0.1:5000`, `docker.io`). */
  registry: string;
  /** Repository path in the registry (`acme/api`, `library/nginx`). */
  repository: string;
  tag: string;
  /** Manifest digest, when the notification carries it. */
  digest?: string;
  /** When it was pushed (ms since the epoch). */
  pushedAt: number;
  /** The notification's own event id, when it has one. */
  id?: string;
}

export type ParsedNotification =
  | { kind: 'distribution' | 'dockerhub'; pushes: PushEvent[]; /** Events that were not tag pushes (layers, pulls, deletes). */ skipped: number }
  | { kind: 'malformed'; reason: string };

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const MANIFEST_TYPES = /manifest|image\.index/;

/**
 * Parses a notification body. `defaultRegistry` names the registry when an event lacks `request.host`
 * (a distribution registry behind a proxy that drops it).
 */
export function parseNotification(body: Buffer | string, opts: { now: number; defaultRegistry?: string }): ParsedNotification {
  let json: unknown;
  try {
    json = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    return { kind: 'malformed', reason: 'the body is not JSON' };
  }
  if (!isObj(json)) return { kind: 'malformed', reason: 'the body is not a JSON object' };

  if (Array.isArray(json.events)) {
    const pushes: PushEvent[] = [];
    let skipped = 0;
    for (const e of json.events) {
      const target = isObj(e) && isObj(e.target) ? e.target : undefined;
      const tag = str(target?.tag);
      const repository = str(target?.repository);
      const mediaType = str(target?.mediaType) ?? '';
      // Layer pushes, pulls, deletes and pushes by digest only are not new tags.
      if (!isObj(e) || e.action !== 'push' || !tag || !repository || !TAG_RE.test(tag) || (mediaType && !MANIFEST_TYPES.test(mediaType))) {
        skipped++;
        continue;
      }
      const host = (isObj(e.request) ? str(e.request.host) : undefined) ?? opts.defaultRegistry;
      if (!host) {
        skipped++;
        continue;
      }
      const t = Date.parse(str(e.timestamp) ?? '');
      const digest = str(target?.digest);
      const id = str(e.id);
      pushes.push({
        registry: normalizeRegistry(host),
        repository,
        tag,
        ...(digest ? { digest } : {}),
        pushedAt: Number.isFinite(t) ? t : opts.now,
        ...(id ? { id } : {}),
      });
    }
    return { kind: 'distribution', pushes, skipped };
  }

  if (isObj(json.push_data) && isObj(json.repository)) {
    const tag = str(json.push_data.tag);
    const repoName = str(json.repository.repo_name);
    if (!tag || !TAG_RE.test(tag) || !repoName) return { kind: 'malformed', reason: 'a Docker Hub notification without push_data.tag or repository.repo_name' };
    const pushedAt = typeof json.push_data.pushed_at === 'number' ? json.push_data.pushed_at * 1000 : opts.now;
    return {
      kind: 'dockerhub',
      pushes: [{ registry: DOCKER_HUB, repository: repoName.includes('/') ? repoName : `library/${repoName}`, tag, pushedAt }],
      skipped: 0,
    };
  }
  return { kind: 'malformed', reason: 'neither a registry event envelope ({"events": [...]}) nor a Docker Hub push ({"push_data": ..., "repository": ...})' };
}
