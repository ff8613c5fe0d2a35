/**
 * What a service's container should be, as data: the `POST /containers/create` body and the config
 * hash that decides recreation (compose's `ServiceHash`). No I/O.
 *
 * The hash covers everything that can only change by recreating the container. Restart policy and
 * resource limits are NOT in it (they change in place with `container.update`), nor are the commit and
 * generation. Next to the hash we label short per-part hashes (`LABEL.configParts`) so the planner can
 * say WHAT changed without ever storing a value.
 */
import { formatInPlaceLabel, LABEL, names } from '../labels.ts';
import type { ContainerCreateBody, SecretValueSpec, ServiceGraph, ServiceSpec } from '../model.ts';
import { canonicalJson, sha256Hex } from './canonical.ts';
import { serviceNetworks } from './network.ts';

export interface HashExtra {
  /** Keyed hash (HMAC) of the secret values the service uses, computed elsewhere. Never a value. */
  secretsDigest?: string;
  /**
   * Keyed hash of the lease markers of the service's dynamic credentials (Vault database/aws,
   * see secrets/leases.ts): changes only when a lease can no longer be renewed. Absent (and then not
   * in the hash at all) for services without dynamic credentials.
   */
  credentialsDigest?: string;
  /**
   * Per `secretString` variable: keyed hash (HMAC) of the values of its parts (for dynamic credentials,
   * of their lease markers). It enters only that variable's short part hash (`env.<KEY>` in the parts
   * label), not the config hash (the `secrets` and `credentials` parts already carry the values), so the
   * plan can name the variable whose value changed. Never a value.
   */
  envDigests?: Record<string, string>;
}

/** Part names, in label order. `env.<KEY>` entries follow `env` in the label. */
export const CONFIG_PARTS = [
  'image',
  'command',
  'entrypoint',
  'env',
  'ports',
  'mounts',
  'healthcheck',
  'labels',
  'user',
  'workdir',
  'stopGrace',
  'networks',
  'secrets',
  'credentials',
] as const;
export type ConfigPart = (typeof CONFIG_PARTS)[number];

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function portKey(p: { container: number; protocol: string }): string {
  return `${p.container}/${p.protocol}`;
}

/** A template as hashed: its text and, for each reference, which secret and key (structure, so text cannot pass for a reference). */
function hashedTemplate(r: { template: Array<string | { secret: string; key: string }> }): unknown[] {
  return r.template.map((p) => (typeof p === 'string' ? p : { $secret: `${p.secret}.${p.key}` }));
}

/** A secret key or template as shown: `db.url`, or the template with `${db.url}` for each reference. */
export function secretValueLabel(r: SecretValueSpec): string {
  return 'template' in r ? r.template.map((p) => (typeof p === 'string' ? p : `\${${p.secret}.${p.key}}`)).join('') : `${r.secret}.${r.key}`;
}

/**
 * Environment as hashed: plain values, and for secret variables which secret and key, or for a
 * `secretString` its template (text from the repository and which keys). Never a value: a rotated value
 * changes the `secrets` (or `credentials`) part through the keyed digest instead.
 */
export function hashedEnv(svc: ServiceSpec): Record<string, unknown> {
  if (!svc.secretEnv) return svc.env;
  const out: Record<string, unknown> = { ...svc.env };
  for (const [k, r] of Object.entries(svc.secretEnv)) out[k] = 'template' in r ? { $secretString: hashedTemplate(r) } : { $secret: `${r.secret}.${r.key}` };
  return out;
}

/**
 * The `env.<KEY>` entry of the parts label: 8 hex of the variable as hashed; for a `secretString`,
 * 8 more of the keyed digest of its parts' values (see {@link changedSecretStrings}).
 */
function envPart(svc: ServiceSpec, env: Record<string, unknown>, key: string, extra: HashExtra): string {
  const r = svc.secretEnv?.[key];
  const base = short([key, env[key]]);
  return r && 'template' in r ? base + short(extra.envDigests?.[key] ?? null) : base;
}

/**
 * The `secretString` variables whose value changed between two parts labels (the digest half of their
 * `env.<KEY>` entries differs), by name: what the plan shows next to a `secrets` or `credentials`
 * cause. Never a value.
 */
export function changedSecretStrings(svc: ServiceSpec, old: Record<string, string>, now: Record<string, string>): string[] {
  return Object.entries(svc.secretEnv ?? {})
    .filter(([, r]) => 'template' in r)
    .map(([k]) => `env.${encodeURIComponent(k)}`)
    .filter((id) => old[id]?.length === 16 && now[id]?.length === 16 && old[id]!.slice(8) !== now[id]!.slice(8))
    .map((id) => decodeURIComponent(id.slice(4)))
    .sort();
}

/** The normalised, recreate-relevant spec, split into parts. Order-insensitive lists are sorted. */
export function configParts(graph: ServiceGraph, svc: ServiceSpec, extra: HashExtra = {}): Record<ConfigPart, unknown> {
  const secretMounts = (svc.secretFiles ?? []).map((f) =>
    'template' in f
      ? { type: 'secret-file', target: f.target, secretString: hashedTemplate(f), readOnly: true }
      : { type: 'secret-file', target: f.target, secret: `${f.secret}.${f.key}`, readOnly: true },
  );
  const ports = svc.ports
    .map((p) => ({ container: p.container, host: p.host, hostIp: p.hostIp, protocol: p.protocol }))
    .sort((a, b) => cmp(canonicalJson(a), canonicalJson(b)));
  const mounts = [...svc.mounts, ...secretMounts]
    .map((m) => ({ ...m }))
    .sort((a, b) => cmp(a.target, b.target) || cmp(canonicalJson(a), canonicalJson(b)));
  return {
    image: svc.image,
    command: svc.command ?? null,
    entrypoint: svc.entrypoint ?? null,
    env: hashedEnv(svc),
    ports: { port: svc.port ?? null, ports },
    mounts,
    healthcheck: svc.healthcheck
      ? {
          test: svc.healthcheck.test,
          interval: svc.healthcheck.intervalNs,
          timeout: svc.healthcheck.timeoutNs,
          retries: svc.healthcheck.retries,
          startPeriod: svc.healthcheck.startPeriodNs,
        }
      : null,
    labels: svc.labels,
    user: svc.user ?? null,
    workdir: svc.workdir ?? null,
    stopGrace: svc.stopGraceSeconds,
    networks: { networks: serviceNetworks(graph, svc), aliases: [svc.name] },
    secrets: extra.secretsDigest ?? null,
    // undefined → dropped by canonicalJson: hashes of services without dynamic credentials are unchanged.
    credentials: extra.credentialsDigest,
  };
}

/** sha256 (64 hex) of the canonical JSON of {@link configParts}. Stable across key order. */
export function configHash(graph: ServiceGraph, svc: ServiceSpec, extra: HashExtra = {}): string {
  return sha256Hex(canonicalJson(configParts(graph, svc, extra)));
}

/**
 * The hash of a service's definition as the repository states it, without secret values or leases: what
 * a rollback pin records, so that only a change to the definition itself (a new commit) releases the
 * pin, not a rotated secret or a re-pushed tag.
 */
export function definitionHash(graph: ServiceGraph, svc: ServiceSpec): string {
  return configHash(graph, svc);
}

const short = (v: unknown) => sha256Hex(canonicalJson(v)).slice(0, 8);

/**
 * Short (8 hex) hash of each part, plus `env.<KEY>` per variable, so a changed variable can be named.
 * Keys are URI-encoded so `,` and `=` cannot break the label.
 */
export function configPartHashes(graph: ServiceGraph, svc: ServiceSpec, extra: HashExtra = {}): Record<string, string> {
  const parts = configParts(graph, svc, extra);
  const out: Record<string, string> = {};
  const env = hashedEnv(svc);
  for (const name of CONFIG_PARTS) {
    if (parts[name] === undefined) continue; // `credentials` only when used
    out[name] = short(parts[name]);
    if (name === 'env') {
      for (const key of Object.keys(env).sort()) out[`env.${encodeURIComponent(key)}`] = envPart(svc, env, key, extra);
    }
  }
  return out;
}

export function formatPartsLabel(parts: Record<string, string>): string {
  return Object.entries(parts)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** Parses {@link formatPartsLabel}; `undefined` when the label is absent or unreadable. */
export function parsePartsLabel(label: string | undefined): Record<string, string> | undefined {
  if (!label) return undefined;
  const out: Record<string, string> = {};
  for (const item of label.split(',')) {
    const eq = item.indexOf('=');
    if (eq <= 0) return undefined;
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** The full create body for one service's container. Secret values are not part of it. */
export function containerBody(
  graph: ServiceGraph,
  svc: ServiceSpec,
  meta: { commit: string; generation: number; secretsDigest?: string; credentialsDigest?: string; envDigests?: Record<string, string> },
): ContainerCreateBody {
  const extra: HashExtra = {
    ...(meta.secretsDigest !== undefined ? { secretsDigest: meta.secretsDigest } : {}),
    ...(meta.credentialsDigest !== undefined ? { credentialsDigest: meta.credentialsDigest } : {}),
    ...(meta.envDigests !== undefined ? { envDigests: meta.envDigests } : {}),
  };
  const labels: Record<string, string> = { ...svc.labels };
  labels[LABEL.project] = graph.project;
  labels[LABEL.service] = svc.name;
  labels[LABEL.configHash] = configHash(graph, svc, extra);
  labels[LABEL.configParts] = formatPartsLabel(configPartHashes(graph, svc, extra));
  labels[LABEL.commit] = meta.commit;
  labels[LABEL.generation] = String(meta.generation);
  if (svc.definedAt) labels[LABEL.definedAt] = svc.definedAt;
  labels[LABEL.image] = svc.image;
  labels[LABEL.inPlace] = formatInPlaceLabel({ restart: svc.restart, resources: svc.resources });

  const exposed: Record<string, Record<string, never>> = {};
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  if (svc.port !== undefined) exposed[`${svc.port}/tcp`] = {};
  for (const p of svc.ports) {
    const key = portKey(p);
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: p.hostIp, HostPort: p.host !== undefined ? String(p.host) : '' });
  }

  const networks = serviceNetworks(graph, svc);
  const endpoints: Record<string, { Aliases: string[] }> = {};
  // The service name is an alias on link networks only. On the default network (no inter-container
  // traffic) an alias would make Docker's DNS answer with an address nobody can reach.
  const defaultNet = names.defaultNetwork(graph.project);
  for (const n of networks) endpoints[n] = { Aliases: n === defaultNet ? [] : [svc.name] };

  const body: ContainerCreateBody = {
    Image: svc.image,
    Env: Object.keys(svc.env)
      .sort()
      .map((k) => `${k}=${svc.env[k]}`),
    Labels: labels,
    ExposedPorts: sortKeys(exposed),
    StopTimeout: svc.stopGraceSeconds,
    HostConfig: {
      RestartPolicy: { Name: svc.restart.name, MaximumRetryCount: svc.restart.maximumRetryCount },
      Memory: svc.resources.memory,
      NanoCpus: svc.resources.nanoCpus,
      PortBindings: sortKeys(bindings),
      Mounts: svc.mounts.map((m) => ({ Type: m.type, Source: m.source, Target: m.target, ReadOnly: m.readOnly })),
      NetworkMode: networks[0]!,
    },
    NetworkingConfig: { EndpointsConfig: endpoints },
  };
  if (svc.command) body.Cmd = [...svc.command];
  if (svc.entrypoint) body.Entrypoint = [...svc.entrypoint];
  if (svc.user !== undefined) body.User = svc.user;
  if (svc.workdir !== undefined) body.WorkingDir = svc.workdir;
  if (svc.healthcheck) {
    body.Healthcheck = {
      Test: [...svc.healthcheck.test],
      Interval: svc.healthcheck.intervalNs,
      Timeout: svc.healthcheck.timeoutNs,
      Retries: svc.healthcheck.retries,
      StartPeriod: svc.healthcheck.startPeriodNs,
    };
  }
  return body;
}

function sortKeys<T>(obj: Record<string, T>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const k of Object.keys(obj).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))) out[k] = obj[k]!;
  return out;
}
