/**
 * Image references as registries see them: `[registry/]path[:tag][@digest]` split into the registry
 * host, the repository path the registry knows (`library/nginx` on Docker Hub) and the tag. Pure.
 */

export const DOCKER_HUB = 'docker.io';

export interface ImageRef {
  /** Registry host (and port): `docker.io` when the reference names none. */
  registry: string;
  /** Repository path inside the registry: `acme/api`; Docker Hub's official images get `library/`. */
  repository: string;
  /** The reference without tag or digest, as written (`nginx`, `127.0.0.1:5000/acme/api`). */
  name: string;
  tag?: string;
  digest?: string;
}

/** Splits an image reference (assumed valid: the graph checked it). */
export function parseImageRef(ref: string): ImageRef {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const name = rest;
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  if (parts.length > 1 && (parts[0]!.includes('.') || parts[0]!.includes(':') || parts[0] === 'localhost')) {
    registry = parts.shift()!;
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  return { registry, repository: parts.join('/'), name, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** `registry/repository`, the key under which pushes of one repository are matched to services. */
export function repositoryKey(r: Pick<ImageRef, 'registry' | 'repository'>): string {
  return `${normalizeRegistry(r.registry)}/${r.repository}`;
}

/** Docker Hub's aliases become `docker.io`; hosts are case-insensitive. */
export function normalizeRegistry(host: string): string {
  const h = host.toLowerCase();
  return h === 'index.docker.io' || h === 'registry-1.docker.io' || h === 'registry.hub.docker.com' || h === 'hub.docker.com' ? DOCKER_HUB : h;
}

/** The same image name with another tag (digest dropped): `ghcr.io/acme/api:1.4.2` → `ghcr.io/acme/api:1.5.0`. */
export function withTag(ref: string, tag: string): string {
  return `${parseImageRef(ref).name}:${tag}`;
}

/** The tag a reference names: its tag, `latest` when it has neither tag nor digest, undefined for a bare digest. */
export function tagOf(ref: string): string | undefined {
  const r = parseImageRef(ref);
  return r.tag ?? (r.digest ? undefined : 'latest');
}
