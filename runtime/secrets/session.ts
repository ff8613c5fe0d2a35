/**
 * The secrets of one plan/apply, in memory only.
 *
 * `SecretsSession.open(graph)` runs before reconcile: it checks every provider the services need
 * (Vault unreachable → fails here, before any change, naming the address), reads the static values
 * (embedded store, Vault KV), generates missing `generate` keys in memory, and computes each service's
 * keyed digest (digest.ts) for the config hash. Dynamic credentials are only issued later, by the bind
 * step, for the containers that are actually created (`valuesFor`).
 *
 * Values live in private fields: they are not enumerable, not in `JSON.stringify(session)` and not in
 * `util.inspect(session)`.
 */
import { inspect } from 'node:util';
import type { Problem, SecretKeySpec, SecretValueSpec, ServiceGraph, ServiceSpec } from '../model.ts';
import { envEntryBytes, envEntryFits, MAX_ARG_STRLEN } from '../limits.ts';
import { ProblemsError } from '../problems.ts';
import { digestOf, hmacKey, LEASE_KEY, type CredentialMarkers, type DigestEntry } from './digest.ts';
import { generateValue } from './generate.ts';
import { LeaseStore } from './leases.ts';
import type { LeaseInfo, SecretDecl, SecretProvider } from './provider.ts';
import { ProviderRegistry } from './registry.ts';
import { assertOutsideRepo, stateRoot } from './state.ts';

type Env = Record<string, string | undefined>;

export interface SessionOptions {
  env?: Env;
  /** The lease store's markers for dynamic credentials (default: `LeaseStore.open(project)`). */
  markers?: CredentialMarkers & Partial<Pick<LeaseStore, 'add'>>;
  /** Provider registry (tests inject doubles). */
  registry?: ProviderRegistry;
}

export const isDynamic = (d: SecretDecl) => d.provider === 'vault' && (d.engine === 'database' || d.engine === 'aws');

/** Secrets a service uses: secret name → keys. */
export function secretsUsedBy(svc: ServiceSpec): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const add = (secret: string, key: string) => {
    const s = out.get(secret) ?? new Set<string>();
    s.add(key);
    out.set(secret, s);
  };
  for (const r of Object.values(svc.secretEnv ?? {})) for (const k of secretKeysOf(r)) add(k.secret, k.key);
  for (const f of svc.secretFiles ?? []) for (const k of secretKeysOf(f)) add(k.secret, k.key);
  return out;
}

/** The secret keys a variable or file uses: its one key, or each reference of its template. */
export function secretKeysOf(v: SecretValueSpec): SecretKeySpec[] {
  return 'template' in v ? v.template.filter((p): p is SecretKeySpec => typeof p !== 'string') : [{ secret: v.secret, key: v.key }];
}

/** The value of a variable or file: its key's value, or the template's text and values joined. Undefined when a value is missing. */
export function secretValueOf(v: SecretValueSpec, valueOf: (k: SecretKeySpec) => string | undefined): string | undefined {
  if (!('template' in v)) return valueOf(v);
  let out = '';
  for (const p of v.template) {
    const part = typeof p === 'string' ? p : valueOf(p);
    if (part === undefined) return undefined;
    out += part;
  }
  return out;
}

export function usesSecrets(graph: ServiceGraph): boolean {
  return Object.values(graph.services).some((s) => s.secretEnv !== undefined || s.secretFiles !== undefined);
}

/** A lease issued for a container about to be created. */
export interface IssuedLease {
  service: string;
  secret: string;
  lease: LeaseInfo;
  provider: SecretProvider;
}

export class SecretsSession {
  readonly project: string;
  /** Per service that uses secrets: its keyed digest (hex). Never a value. */
  readonly digests: Record<string, string>;
  /**
   * Per service with dynamic credentials: keyed digest of its lease markers, a config part
   * of its own (`credentials`) so an expiring lease shows as that cause, not as a changed value.
   */
  readonly credentialsDigests: Record<string, string>;
  /**
   * Per service, per `secretString` variable: keyed digest of its parts' values (lease markers for
   * dynamic credentials), so the plan names the variable whose value changed. Never a value.
   */
  readonly envDigests: Record<string, Record<string, string>>;
  /** Keys generated at plan time, stored by the bind step at apply time (names only). */
  readonly generated: Array<{ secret: string; key: string }>;
  readonly registry: ProviderRegistry;
  readonly leaseStore: (CredentialMarkers & Partial<Pick<LeaseStore, 'add'>>) | undefined;
  readonly #graph: ServiceGraph;
  readonly #static: Map<string, Record<string, string>>;
  readonly #hmac: Buffer;
  /** Generated values not yet stored, by secret. */
  readonly #pending: Map<string, Record<string, string>>;

  private constructor(init: {
    graph: ServiceGraph;
    digests: Record<string, string>;
    credentialsDigests: Record<string, string>;
    envDigests: Record<string, Record<string, string>>;
    generated: Array<{ secret: string; key: string }>;
    registry: ProviderRegistry;
    leaseStore: SecretsSession['leaseStore'];
    values: Map<string, Record<string, string>>;
    hmac: Buffer;
    pending: Map<string, Record<string, string>>;
  }) {
    this.project = init.graph.project;
    this.digests = init.digests;
    this.credentialsDigests = init.credentialsDigests;
    this.envDigests = init.envDigests;
    this.generated = init.generated;
    this.registry = init.registry;
    this.leaseStore = init.leaseStore;
    this.#graph = init.graph;
    this.#static = init.values;
    this.#hmac = init.hmac;
    this.#pending = init.pending;
  }

  /** Opens the session for `graph`; undefined when no service uses a secret. */
  static async open(graph: ServiceGraph, opts: SessionOptions = {}): Promise<SecretsSession | undefined> {
    if (!usesSecrets(graph)) return undefined;
    const env = opts.env ?? process.env;
    const decls = graph.secrets ?? {};
    const registry = opts.registry ?? new ProviderRegistry(graph, env);

    // Which secrets (and keys) are needed at all.
    const needed = new Map<string, Set<string>>();
    for (const svc of Object.values(graph.services)) {
      for (const [secret, keys] of secretsUsedBy(svc)) {
        const s = needed.get(secret) ?? new Set<string>();
        for (const k of keys) s.add(k);
        needed.set(secret, s);
      }
    }
    for (const name of needed.keys()) {
      if (!decls[name]) throw new Error(`secret "${name}" is used but not declared in ${graph.configFile}`);
    }

    // Reach every backend first: nothing is read (or changed) when one is down.
    const kinds = [...new Set([...needed.keys()].map((n) => decls[n]!.provider))].sort();
    for (const kind of kinds) {
      const p = await registry.kind(kind);
      await p.check();
    }

    // Static values.
    const values = new Map<string, Record<string, string>>();
    const pending = new Map<string, Record<string, string>>();
    const generated: Array<{ secret: string; key: string }> = [];
    const problems: Problem[] = [];
    for (const [name, keys] of [...needed].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const decl = decls[name]!;
      if (isDynamic(decl)) continue;
      const provider = await registry.for(decl);
      if (provider.readStored) {
        const stored = await provider.readStored(decl);
        const { values: got, missing } = stored;
        const gen: Record<string, string> = {};
        for (const k of missing) {
          const g = decl.generate?.[k];
          if (g) {
            gen[k] = generateValue(g.format, g.length);
            generated.push({ secret: name, key: k });
          }
        }
        const stillMissing = missing.filter((k) => gen[k] === undefined && keys.has(k));
        if (stillMissing.length > 0) {
          problems.push({ file: stored.location, message: missingMessage(graph, name, stillMissing), fix: stored.howToSet(stillMissing) });
          continue;
        }
        if (Object.keys(gen).length > 0) pending.set(name, gen);
        values.set(name, { ...got, ...gen });
      } else {
        const r = await provider.resolve(decl, { project: graph.project, service: '*', root: graph.root });
        values.set(name, r.values);
      }
    }
    problems.push(...oversizedSecretEnv(graph, values));
    if (problems.length > 0) throw new ProblemsError(problems);

    // Digests.
    assertOutsideRepo(stateRoot(env), graph.root, 'the state directory (HMAC key, lease records)', 'set WAFFLE_STATE_DIR to a directory outside it');
    const hmac = hmacKey(graph.project, env);
    const hasDynamic = [...needed.keys()].some((n) => isDynamic(decls[n]!));
    const leaseStore = hasDynamic ? (opts.markers ?? LeaseStore.open(graph.project, { env })) : opts.markers;
    const digests: Record<string, string> = {};
    const credentialsDigests: Record<string, string> = {};
    const envDigests: Record<string, Record<string, string>> = {};
    /** A digest input for one key: its value, or for dynamic credentials the lease marker. */
    const entryOf = (svc: string, secret: string, key: string): DigestEntry => {
      if (isDynamic(decls[secret]!)) return { secret, key: LEASE_KEY, value: leaseStore!.credentialMarker(svc, secret) };
      const v = values.get(secret)?.[key];
      if (v === undefined) throw new Error(`secret "${secret}" has no value for "${key}" (used by service "${svc}")`);
      return { secret, key, value: v };
    };
    for (const svc of Object.values(graph.services)) {
      for (const [name, r] of Object.entries(svc.secretEnv ?? {})) {
        if (!('template' in r)) continue;
        const entries = new Map<string, DigestEntry>();
        for (const k of secretKeysOf(r)) {
          const e = entryOf(svc.name, k.secret, k.key);
          entries.set(JSON.stringify([e.secret, e.key]), e);
        }
        const d = digestOf(hmac, [...entries.values()]);
        if (d !== undefined) (envDigests[svc.name] ??= {})[name] = d;
      }
      const entries: DigestEntry[] = [];
      const leaseEntries: DigestEntry[] = [];
      for (const [secret, keys] of secretsUsedBy(svc)) {
        const decl = decls[secret]!;
        if (isDynamic(decl)) {
          leaseEntries.push({ secret, key: LEASE_KEY, value: leaseStore!.credentialMarker(svc.name, secret) });
          continue;
        }
        for (const key of keys) {
          const v = values.get(secret)?.[key];
          if (v === undefined) throw new Error(`secret "${secret}" has no value for "${key}" (used by service "${svc.name}")`);
          entries.push({ secret, key, value: v });
        }
      }
      const d = digestOf(hmac, entries);
      if (d !== undefined) digests[svc.name] = d;
      const cd = digestOf(hmac, leaseEntries);
      if (cd !== undefined) credentialsDigests[svc.name] = cd;
    }
    return new SecretsSession({ graph, digests, credentialsDigests, envDigests, generated, registry, leaseStore, values, hmac, pending });
  }

  /**
   * The values a new container of `service` gets: `secret` → `key` → value. Dynamic secrets are issued
   * now (a new lease each, recorded in the lease store before the container exists, with the key of the
   * container it is for, `target.containerKey`, or the existing container's id, `target.containerId`).
   */
  async valuesFor(
    service: string,
    target: { containerKey?: string; containerId?: string } = {},
  ): Promise<{ values: Map<string, Map<string, string>>; leases: IssuedLease[] }> {
    const svc = this.#graph.services[service];
    if (!svc) throw new Error(`no service "${service}"`);
    const decls = this.#graph.secrets ?? {};
    const values = new Map<string, Map<string, string>>();
    const leases: IssuedLease[] = [];
    for (const [secret, keys] of secretsUsedBy(svc)) {
      const decl = decls[secret]!;
      let got: Record<string, string>;
      if (isDynamic(decl)) {
        const provider = await this.registry.for(decl);
        const r = await provider.resolve(decl, { project: this.project, service, root: this.#graph.root });
        got = r.values;
        if (r.lease) {
          leases.push({ service, secret, lease: r.lease, provider });
          this.leaseStore?.add?.({
            service,
            secret,
            leaseId: r.lease.leaseId,
            engine: decl.engine,
            issuedAt: r.lease.issuedAt,
            ttlSeconds: r.lease.ttlSeconds,
            renewable: r.lease.renewable,
            digest: digestOf(this.#hmac, decl.keys.map((k) => ({ secret, key: k, value: r.values[k] ?? '' })))!,
            ...(target.containerKey !== undefined ? { containerKey: target.containerKey } : {}),
            ...(target.containerId !== undefined ? { containerId: target.containerId } : {}),
          });
        }
      } else got = this.#static.get(secret) ?? {};
      const m = new Map<string, string>();
      for (const k of keys) {
        const v = got[k];
        if (v === undefined) throw new Error(`secret "${secret}" has no value for "${k}" (service "${service}")`);
        m.set(k, v);
      }
      values.set(secret, m);
    }
    return { values, leases };
  }

  /** Every static value known to this session, with its name (for redaction of output). */
  knownValues(): Array<{ label: string; value: string }> {
    const out: Array<{ label: string; value: string }> = [];
    for (const [secret, vals] of this.#static) for (const [k, v] of Object.entries(vals)) out.push({ label: `secrets.${secret}.${k}`, value: v });
    return out;
  }

  /** Stores the values generated at plan time in the embedded store (before any Docker change). */
  async persistGenerated(): Promise<Array<{ secret: string; key: string }>> {
    const done: Array<{ secret: string; key: string }> = [];
    for (const [secret, gen] of this.#pending) {
      const decl = this.#graph.secrets?.[secret];
      if (!decl) continue;
      const provider = await this.registry.for(decl);
      // Values are pending only when the provider read them with readStored, so it can store them.
      if (!provider.storeGenerated) throw new Error(`the ${provider.kind} provider of secret "${secret}" cannot store generated values`);
      // The provider never overwrites a value someone stored meanwhile: it only fills what is still missing.
      await provider.storeGenerated(decl, gen);
      for (const k of Object.keys(gen)) done.push({ secret, key: k });
    }
    this.#pending.clear();
    return done;
  }

  /** What reconcile takes from the session: the keyed digests (never a value). */
  hashInputs(): { secretsDigests: Record<string, string>; credentialsDigests: Record<string, string>; secretEnvDigests: Record<string, Record<string, string>> } {
    return { secretsDigests: this.digests, credentialsDigests: this.credentialsDigests, secretEnvDigests: this.envDigests };
  }

  toJSON(): unknown {
    return { project: this.project, digests: this.digests, credentialsDigests: this.credentialsDigests, envDigests: this.envDigests, generated: this.generated };
  }

  [inspect.custom](): string {
    return `SecretsSession { project: ${this.project}, services: ${Object.keys(this.digests).join(', ')} }`;
  }
}

/**
 * Secret values too long for one environment variable (the kernel's MAX_ARG_STRLEN): the container
 * would be created but could not start, so this is found while planning, naming the variable and
 * the size, never the value.
 */
function oversizedSecretEnv(graph: ServiceGraph, values: Map<string, Record<string, string>>): Problem[] {
  const problems: Problem[] = [];
  for (const svc of Object.values(graph.services)) {
    for (const [name, ref] of Object.entries(svc.secretEnv ?? {})) {
      // Dynamic parts have no value before apply: a template is measured when all its parts are known.
      const v = secretValueOf(ref, (k) => values.get(k.secret)?.[k.key]);
      if (v === undefined || envEntryFits(name, v)) continue;
      if ('template' in ref) {
        problems.push({
          file: svc.file,
          service: svc.name,
          where: `env.${name}`,
          message:
            `the secretString in ${name} is ${envEntryBytes(name, v) - 1} bytes as ${name}=…; Linux allows one environment ` +
            `variable at most ${MAX_ARG_STRLEN - 1} bytes (128 KiB, MAX_ARG_STRLEN), so the container could not start`,
          fix: `mount it as a file instead: files: { '/run/secrets/${name.toLowerCase()}': secretString\`…\` }, and pass the path in ${name}`,
        });
        continue;
      }
      problems.push({
        file: svc.file,
        service: svc.name,
        where: `env.${name}`,
        message:
          `secrets.${ref.secret}.${ref.key} is ${envEntryBytes(name, v) - 1} bytes as ${name}=…; Linux allows one environment ` +
          `variable at most ${MAX_ARG_STRLEN - 1} bytes (128 KiB, MAX_ARG_STRLEN), so the container could not start`,
        fix: `mount it as a file instead: files: { '/run/secrets/${ref.secret}_${ref.key}': secrets.${ref.secret}.${ref.key} }, and pass the path in ${name}`,
      });
    }
  }
  return problems;
}

/**
 * `secret "portal" has no value for "a", "b": "web" (services/web.ts) uses "a"; "sync" (…) uses "a", "b"`:
 * every missing key, and per service only the missing keys it uses (services using none are not named).
 */
export function missingMessage(graph: ServiceGraph, secret: string, missing: string[]): string {
  const quote = (ks: string[]) => ks.map((k) => `"${k}"`).join(', ');
  const users = Object.values(graph.services)
    .map((s) => ({ s, keys: missing.filter((k) => secretsUsedBy(s).get(secret)?.has(k)) }))
    .filter((u) => u.keys.length > 0)
    .sort((a, b) => (a.s.name < b.s.name ? -1 : a.s.name > b.s.name ? 1 : 0));
  const head = `secret "${secret}" has no value for ${quote(missing)}`;
  if (users.length === 1) return `${head}, which ${missing.length > 1 ? 'are' : 'is'} used by "${users[0]!.s.name}" (${users[0]!.s.file})`;
  return `${head}: ${users.map((u) => `"${u.s.name}" (${u.s.file}) uses ${quote(u.keys)}`).join('; ')}`;
}
