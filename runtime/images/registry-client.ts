/**
 * A small client of the registry HTTP API v2 (the Docker distribution / OCI distribution API), for the
 * agent's tag poll: the tags of a repository (`GET /v2/<name>/tags/list`, following `Link` pages) and a
 * tag's manifest digest (`HEAD /v2/<name>/manifests/<tag>`, `Docker-Content-Digest`). Authentication as
 * registries ask for it in `WWW-Authenticate`: a bearer token from the realm (Docker Hub, GHCR, a
 * distribution registry with token auth), anonymous or with the credentials, or HTTP basic.
 * Credentials never appear in errors.
 */
import { DOCKER_HUB } from './reference.ts';

/** What a HEAD on a manifest accepts: index and manifest types of both Docker and OCI. */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
].join(', ');

export interface RegistryClientOptions {
  /** Host as in image references (`ghcr.io`, `127.0.0.1:5000`, `docker.io`). */
  host: string;
  credentials?: { username: string; password: string };
  /** Plain HTTP; default only for loopback hosts (as dockerd treats 127.0.0.0/8 as insecure). */
  insecure?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}

/** The parameters of a `WWW-Authenticate` challenge: `Bearer realm="…",service="…",scope="…"`. */
export function parseChallenge(header: string | null): { scheme: string; params: Record<string, string> } | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2]!.matchAll(/(\w+)="([^"]*)"|(\w+)=([^\s,]+)/g)) params[(p[1] ?? p[3])!.toLowerCase()] = (p[2] ?? p[4])!;
  return { scheme: m[1]!.toLowerCase(), params };
}

export class RegistryClient {
  readonly #o: RegistryClientOptions;
  readonly #base: string;
  readonly #fetch: typeof fetch;
  /** Authorization per repository scope, reused until refused. */
  readonly #auth = new Map<string, string>();

  constructor(opts: RegistryClientOptions) {
    this.#o = opts;
    const apiHost = opts.host === DOCKER_HUB ? 'registry-1.docker.io' : opts.host;
    const insecure = opts.insecure ?? /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(opts.host);
    this.#base = `${insecure ? 'http' : 'https'}://${apiHost}`;
    this.#fetch = opts.fetch ?? fetch;
  }

  #signal(): AbortSignal {
    const t = AbortSignal.timeout(this.#o.timeoutMs ?? 15_000);
    return this.#o.signal ? AbortSignal.any([t, this.#o.signal]) : t;
  }

  /** A request with the repository's authorization; on a 401, authenticates as the challenge asks and tries once more. */
  async #request(repository: string, url: string, init: { method: string; headers?: Record<string, string> }): Promise<Response> {
    const send = (auth?: string) =>
      this.#fetch(url, { method: init.method, headers: { ...init.headers, ...(auth ? { authorization: auth } : {}) }, signal: this.#signal(), redirect: 'follow' });
    let res = await send(this.#auth.get(repository));
    if (res.status !== 401) return res;
    const challenge = parseChallenge(res.headers.get('www-authenticate'));
    await res.body?.cancel();
    const auth = await this.#authenticate(repository, challenge);
    if (!auth) throw new RegistryError(`${this.#o.host} refused access to ${repository}: it asks for credentials${this.#o.credentials ? ' and refused the ones given' : ' (set them in updates.registries)'}`, 401);
    this.#auth.set(repository, auth);
    res = await send(auth);
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw new RegistryError(`${this.#o.host} refused access to ${repository} (HTTP ${res.status}); check the credentials in updates.registries`, res.status);
    }
    return res;
  }

  async #authenticate(repository: string, challenge: ReturnType<typeof parseChallenge>): Promise<string | undefined> {
    const creds = this.#o.credentials;
    const basic = creds ? 'Basic ' + Buffer.from(`${creds.username}:${creds.password}`).toString('base64') : undefined;
    if (!challenge || challenge.scheme === 'basic') return basic;
    if (challenge.scheme !== 'bearer' || !challenge.params.realm) return undefined;
    const realm = new URL(challenge.params.realm);
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
    realm.searchParams.set('scope', challenge.params.scope ?? `repository:${repository}:pull`);
    const res = await this.#fetch(realm, { headers: basic ? { authorization: basic } : {}, signal: this.#signal() });
    if (!res.ok) {
      await res.body?.cancel();
      throw new RegistryError(`the token service of ${this.#o.host} (${realm.origin}) answered HTTP ${res.status}${creds ? '; check the credentials in updates.registries' : ''}`, res.status);
    }
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    return token ? `Bearer ${token}` : undefined;
  }

  /** Every tag of `repository` (all pages). */
  async listTags(repository: string): Promise<string[]> {
    const tags: string[] = [];
    let url: string | undefined = `${this.#base}/v2/${repository}/tags/list?n=1000`;
    for (let page = 0; url && page < 100; page++) {
      const res = await this.#request(repository, url, { method: 'GET', headers: { accept: 'application/json' } });
      if (res.status === 404) {
        await res.body?.cancel();
        return [];
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw new RegistryError(`${this.#o.host}: listing the tags of ${repository} answered HTTP ${res.status}`, res.status);
      }
      const body = (await res.json()) as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(res.headers.get('link') ?? '');
      url = next ? new URL(next[1]!, this.#base).toString() : undefined;
    }
    return tags;
  }

  /** The manifest digest a tag points at now (`sha256:…`), or undefined when the tag does not exist. */
  async manifestDigest(repository: string, tag: string): Promise<string | undefined> {
    const res = await this.#request(repository, `${this.#base}/v2/${repository}/manifests/${encodeURIComponent(tag)}`, { method: 'HEAD', headers: { accept: MANIFEST_ACCEPT } });
    await res.body?.cancel();
    if (res.status === 404) return undefined;
    if (!res.ok) throw new RegistryError(`${this.#o.host}: the manifest of ${repository}:${tag} answered HTTP ${res.status}`, res.status);
    return res.headers.get('docker-content-digest') ?? undefined;
  }
}
