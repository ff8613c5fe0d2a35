/**
 * HashiCorp Vault as a secret backend, through `node-vault`.
 *
 * - Auth: a token (from `VAULT_TOKEN` or the named environment variable), renewed with `auth/token/renew-self`
 *   once a fraction of its TTL has passed; or AppRole (`role_id` + `secret_id` from the environment), logging
 *   in again when the token can no longer be renewed.
 * - KV v2: read `<mount>/data/<path>`; keys declared with `generate` that are missing are generated once and
 *   written back (check-and-set, so two deployers never overwrite each other).
 * - Database engine: `database/creds/<role>` per service, under a lease; with `createRole`, the role is
 *   written first when `database/roles/<role>` does not exist.
 * - AWS engine: `aws/creds/<role>` per service: one credential pair per role per service.
 * - Leases: `renew` (`sys/leases/renew`) and `revoke` (`sys/leases/revoke`); the durable records live in
 *   `leases.ts`, the loop that drives them in `renewer.ts`.
 *
 * Values only exist in memory. `node-vault`'s debug logging (which prints request bodies) is switched off.
 */
import nodeVault from 'node-vault';
import type { LeaseInfo, ResolveContext, ResolvedSecret, SecretDecl, SecretProvider } from './provider.ts';
import { LeaseGoneError } from './leases.ts';
import { generateValue } from './generate.ts';

export interface VaultOptions {
  /** Vault's address, e.g. `https://vault.example.com:8200`. Default: `VAULT_ADDR`, then `http://127.0.0.1:8200`. */
  address?: string;
  auth?: VaultAuth;
  /** Fraction of a TTL after which tokens and leases are renewed (0 < f < 1). Default 0.5. */
  renewFraction?: number;
  /** Vault Enterprise namespace. */
  namespace?: string;
  /** Per-request time limit. Default 10 s. */
  timeoutMs?: number;
  /** Environment to read credentials from. Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Clock (epoch ms), for tests. */
  now?: () => number;
}

export type VaultAuth =
  | {
      method: 'token';
      /** Environment variable holding the token. Default `VAULT_TOKEN`. Tokens never go in the repository. */
      tokenEnv?: string;
    }
  | {
      method: 'approle';
      /** Mount of the AppRole auth method. Default `approle`. */
      mount?: string;
      /** The role_id itself (not secret), or omit and use `roleIdEnv`. */
      roleId?: string;
      /** Default `VAULT_ROLE_ID`. */
      roleIdEnv?: string;
      /** Default `VAULT_SECRET_ID`. */
      secretIdEnv?: string;
    };

/** Vault could not be reached (connection refused, timeout, DNS...). The message names the address. */
export class VaultUnreachableError extends Error {
  constructor(
    readonly address: string,
    cause: string,
  ) {
    super(`Vault at ${address} is unreachable (${cause}). Nothing was changed; check that Vault is running and that the address (vault.address in the configuration file: waffle.config.ts, or the one given with -c) is right, then try again.`);
    this.name = 'VaultUnreachableError';
  }
}

/** Vault answered with an error. `status` is the HTTP status; `errors` are Vault's own messages. */
export class VaultApiError extends Error {
  constructor(
    readonly address: string,
    readonly status: number,
    readonly errors: string[],
    what: string,
  ) {
    super(`Vault at ${address}: ${what} failed (${status}${errors.length ? `: ${errors.join('; ')}` : ''})`);
    this.name = 'VaultApiError';
  }
}

export { LeaseGoneError };

interface NodeVaultError extends Error {
  code?: string;
  response?: { statusCode: number; body?: { errors?: string[] } };
}

type Json = Record<string, unknown>;


export class VaultProvider implements SecretProvider {
  readonly kind = 'vault' as const;
  readonly address: string;
  readonly renewFraction: number;
  private readonly client: ReturnType<typeof nodeVault>;
  private readonly auth: VaultAuth;
  private readonly env: Record<string, string | undefined>;
  private readonly now: () => number;
  /** Token state: when it was obtained/renewed and its TTL then (0 = no expiry). */
  private token: { at: number; ttl: number; renewable: boolean } | undefined;
  private authenticating: Promise<void> | undefined;
  /** One resolution per (service, secret) per provider instance: a pair (key + secret) must come from one lease. */
  private readonly memo = new Map<string, Promise<ResolvedSecret>>();

  constructor(opts: VaultOptions = {}) {
    this.env = opts.env ?? process.env;
    this.address = (opts.address ?? this.env.VAULT_ADDR ?? 'http://127.0.0.1:8200').replace(/\/+$/, '');
    this.auth = opts.auth ?? (this.env.VAULT_TOKEN || !this.env.VAULT_ROLE_ID ? { method: 'token' } : { method: 'approle' });
    this.renewFraction = opts.renewFraction ?? 0.5;
    if (!(this.renewFraction > 0 && this.renewFraction < 1)) throw new Error(`vault.renewFraction must be between 0 and 1 (exclusive), got ${this.renewFraction}`);
    this.now = opts.now ?? Date.now;
    this.client = nodeVault({
      endpoint: this.address,
      namespace: opts.namespace,
      token: this.auth.method === 'token' ? this.env[this.auth.tokenEnv ?? 'VAULT_TOKEN'] : undefined,
      // node-vault's debug output prints request bodies (KV writes carry values): never.
      debug: () => undefined,
      requestOptions: { timeout: opts.timeoutMs ?? 10_000 },
    });
  }

  // ───────────── plumbing ─────────────

  private fail(e: unknown, what: string): never {
    const err = e as NodeVaultError;
    if (err instanceof VaultUnreachableError || err instanceof VaultApiError || err instanceof LeaseGoneError) throw err;
    if (err?.response && typeof err.response.statusCode === 'number') {
      throw new VaultApiError(this.address, err.response.statusCode, err.response.body?.errors ?? [], what);
    }
    throw new VaultUnreachableError(this.address, err?.code ?? err?.message ?? String(e));
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      this.fail(e, what);
    }
  }

  /** Logs in (AppRole) or looks the token up, then renews it once `renewFraction` of its TTL has passed. */
  async ensureAuth(): Promise<void> {
    if (this.authenticating) return this.authenticating;
    this.authenticating = this.doEnsureAuth().finally(() => (this.authenticating = undefined));
    return this.authenticating;
  }

  private async doEnsureAuth(): Promise<void> {
    const now = this.now();
    if (this.token) {
      const { at, ttl, renewable } = this.token;
      if (ttl === 0 || now < at + ttl * 1000 * this.renewFraction) return;
      if (renewable) {
        try {
          const r = (await this.client.tokenRenewSelf({ increment: ttl })) as { auth?: { lease_duration?: number; renewable?: boolean } };
          const newTtl = Number(r.auth?.lease_duration ?? 0);
          // A renewal capped well below the asked TTL means the token is near its max TTL: AppRole logs in again.
          if (!(this.auth.method === 'approle' && newTtl < ttl * this.renewFraction)) {
            this.token = { at: this.now(), ttl: newTtl, renewable: r.auth?.renewable !== false };
            return;
          }
        } catch (e) {
          if (this.auth.method !== 'approle') this.fail(e, 'renewing the token (auth/token/renew-self)');
        }
      } else if (this.auth.method === 'token') {
        return; // not renewable: use it until Vault says otherwise
      }
      this.token = undefined;
    }
    if (this.auth.method === 'approle') {
      const roleId = this.auth.roleId ?? this.env[this.auth.roleIdEnv ?? 'VAULT_ROLE_ID'];
      const secretEnv = this.auth.secretIdEnv ?? 'VAULT_SECRET_ID';
      const secretId = this.env[secretEnv];
      if (!roleId) throw new Error(`Vault at ${this.address}: AppRole login needs a role_id: set ${this.auth.roleIdEnv ?? 'VAULT_ROLE_ID'} (or vault.auth.roleId in the configuration file)`);
      if (!secretId) throw new Error(`Vault at ${this.address}: AppRole login needs a secret_id: set the ${secretEnv} environment variable`);
      const r = await this.call('AppRole login', () =>
        this.client.approleLogin({ role_id: roleId, secret_id: secretId, ...(this.auth.method === 'approle' && this.auth.mount ? { mount_point: this.auth.mount } : {}) }),
      );
      const auth = (r as { auth?: { client_token?: string; lease_duration?: number; renewable?: boolean } }).auth;
      if (!auth?.client_token) throw new VaultApiError(this.address, 200, ['no client_token in the AppRole login answer'], 'AppRole login');
      this.client.token = auth.client_token;
      this.token = { at: this.now(), ttl: Number(auth.lease_duration ?? 0), renewable: auth.renewable !== false };
      return;
    }
    if (!this.client.token) {
      const name = this.auth.tokenEnv ?? 'VAULT_TOKEN';
      throw new Error(`Vault at ${this.address}: no token. Set the ${name} environment variable (tokens never go in the repository), or use AppRole.`);
    }
    const r = await this.call('looking up the token (auth/token/lookup-self)', () => this.client.tokenLookupSelf());
    const data = (r as { data?: { ttl?: number; renewable?: boolean } }).data;
    this.token = { at: this.now(), ttl: Number(data?.ttl ?? 0), renewable: data?.renewable === true };
  }

  /** Renews the token now (what the agent does on a timer). Returns the new TTL in seconds. */
  async renewToken(): Promise<number> {
    await this.ensureAuth();
    const r = await this.call('renewing the token (auth/token/renew-self)', () => this.client.tokenRenewSelf({}));
    const auth = (r as { auth?: { lease_duration?: number; renewable?: boolean } }).auth;
    this.token = { at: this.now(), ttl: Number(auth?.lease_duration ?? 0), renewable: auth?.renewable !== false };
    return this.token.ttl;
  }

  private async read(path: string, what: string): Promise<Json | undefined> {
    await this.ensureAuth();
    try {
      return (await this.client.read(path)) as Json;
    } catch (e) {
      const err = e as NodeVaultError;
      if (err?.response?.statusCode === 404) return undefined;
      this.fail(e, what);
    }
  }

  private async write(path: string, data: Json, what: string): Promise<Json | undefined> {
    await this.ensureAuth();
    return (await this.call(what, () => this.client.write(path, data))) as Json | undefined;
  }

  // ───────────── SecretProvider ─────────────

  /** Fails before any change when Vault cannot be reached, is sealed, or rejects our credentials. */
  async check(): Promise<void> {
    const health = (await this.call('health check (sys/health)', () => this.client.health())) as Json | undefined;
    if (health && health.sealed === true) throw new Error(`Vault at ${this.address} is sealed. Unseal it, then try again. Nothing was changed.`);
    if (health && health.initialized === false) throw new Error(`Vault at ${this.address} is not initialised. Nothing was changed.`);
    await this.ensureAuth();
    if (this.auth.method === 'token') await this.call('looking up the token (auth/token/lookup-self)', () => this.client.tokenLookupSelf());
  }

  resolve(decl: SecretDecl, ctx: ResolveContext): Promise<ResolvedSecret> {
    const key = `${ctx.project}\0${ctx.service}\0${decl.name}`;
    let p = this.memo.get(key);
    if (!p) {
      p = this.doResolve(decl, ctx);
      this.memo.set(key, p);
      p.catch(() => this.memo.delete(key));
    }
    return p;
  }

  /** Forgets resolutions made by this instance: the next `resolve` asks Vault again (new leases). */
  reset(): void {
    this.memo.clear();
  }

  private async doResolve(decl: SecretDecl, ctx: ResolveContext): Promise<ResolvedSecret> {
    const engine = decl.engine ?? 'kv';
    if (engine === 'kv') return { values: await this.resolveKv(decl) };
    if (engine === 'database') return this.resolveDynamic(decl, ctx, 'database');
    if (engine === 'aws') return this.resolveDynamic(decl, ctx, 'aws');
    throw new Error(`secret "${decl.name}": unknown Vault engine ${JSON.stringify(engine)} (use kv, database or aws)`);
  }

  private kvLocation(decl: SecretDecl): { mount: string; path: string } {
    const mount = (decl.mount ?? 'secret').replace(/^\/+|\/+$/g, '');
    const path = (decl.path ?? decl.name).replace(/^\/+|\/+$/g, '');
    return { mount, path };
  }

  /** KV v2 read: `{ data: { data, metadata } }`. Generates and writes missing `generate` keys (check-and-set). */
  async resolveKv(decl: SecretDecl): Promise<Record<string, string>> {
    const { mount, path } = this.kvLocation(decl);
    const where = `${mount}/data/${path}`;
    for (let attempt = 0; ; attempt++) {
      const r = await this.read(where, `reading ${where}`);
      const inner = (r?.data ?? undefined) as { data?: Json | null; metadata?: { version?: number } } | undefined;
      const current: Record<string, unknown> = inner?.data ?? {};
      const version = r ? Number(inner?.metadata?.version ?? 0) : 0;
      const missing = decl.keys.filter((k) => current[k] === undefined || current[k] === null);
      const generate = missing.filter((k) => decl.generate?.[k]);
      const absent = missing.filter((k) => !decl.generate?.[k]);
      if (absent.length) {
        const cmd = `vault kv put -mount=${mount} ${path} ${absent.map((k) => `${k}=...`).join(' ')}`;
        throw new Error(
          r
            ? `secret "${decl.name}": Vault at ${this.address} has no key${absent.length > 1 ? 's' : ''} ${absent.join(', ')} at ${where}. Fix: ${cmd}`
            : `secret "${decl.name}": Vault at ${this.address} has no secret at ${where}. Fix: ${cmd}`,
        );
      }
      if (!generate.length) return stringValues(current, decl.keys);
      const next = { ...current };
      for (const k of generate) next[k] = generateValue(decl.generate![k].format, decl.generate![k].length);
      try {
        await this.writeKv(mount, path, next, version);
        return stringValues(next, decl.keys);
      } catch (e) {
        // Someone else wrote first (check-and-set mismatch): read their values instead.
        if (e instanceof VaultApiError && e.status === 400 && attempt < 3) continue;
        throw e;
      }
    }
  }

  /** KV v2 write (`POST <mount>/data/<path>`); with `cas`, only when the current version is `cas`. Returns the new version. */
  async writeKv(mount: string, path: string, data: Record<string, unknown>, cas?: number): Promise<number> {
    const where = `${mount}/data/${path}`;
    const r = await this.write(where, { data, ...(cas !== undefined ? { options: { cas } } : {}) }, `writing ${where}`);
    return Number((r?.data as { version?: number } | undefined)?.version ?? 0);
  }

  private async resolveDynamic(decl: SecretDecl, ctx: ResolveContext, engine: 'database' | 'aws'): Promise<ResolvedSecret> {
    const mount = (decl.mount ?? engine).replace(/^\/+|\/+$/g, '');
    const role = decl.role ?? decl.name;
    if (engine === 'database' && decl.createRole) await this.ensureDatabaseRole(mount, role, decl.createRole);
    const where = `${mount}/creds/${role}`;
    await this.ensureAuth();
    const r = (await this.call(`issuing credentials at ${where} for service "${ctx.service}"`, () => this.client.read(where))) as {
      lease_id?: string;
      lease_duration?: number;
      renewable?: boolean;
      data?: Json;
    };
    const data = r.data ?? {};
    const values: Record<string, string> = {};
    for (const [k, v] of Object.entries(data)) if (typeof v === 'string') values[k] = v;
    if (engine === 'aws') {
      // Vault's names, and the AWS SDK's names the authoring API uses (define/secrets.ts).
      if (values.access_key !== undefined) values.accessKeyId = values.access_key;
      if (values.secret_key !== undefined) values.secretAccessKey = values.secret_key;
      if (values.security_token !== undefined) values.sessionToken = values.security_token;
    }
    const absent = decl.keys.filter((k) => values[k] === undefined);
    if (absent.length) {
      // Do not leave unused credentials behind.
      if (r.lease_id) await this.revoke(r.lease_id).catch(() => undefined);
      throw new Error(`secret "${decl.name}": the credentials from ${where} have no ${absent.join(', ')} (they have: ${Object.keys(values).join(', ') || 'nothing'})`);
    }
    const lease: LeaseInfo | undefined = r.lease_id
      ? { leaseId: r.lease_id, ttlSeconds: Number(r.lease_duration ?? 0), renewable: r.renewable === true, issuedAt: this.now() }
      : undefined;
    const picked: Record<string, string> = {};
    for (const k of decl.keys) picked[k] = values[k];
    return { values: picked, lease };
  }

  /** `GET <mount>/roles/<role>`; when it does not exist, `POST` it with `createRole`. */
  async ensureDatabaseRole(mount: string, role: string, body: Record<string, unknown>): Promise<boolean> {
    const where = `${mount}/roles/${role}`;
    const existing = await this.read(where, `reading ${where}`);
    if (existing) return false;
    await this.write(where, body, `creating the role ${where}`);
    return true;
  }

  async renew(leaseId: string, incrementSeconds: number): Promise<{ ttlSeconds: number; renewable: boolean }> {
    await this.ensureAuth();
    try {
      const r = (await this.client.renew({ lease_id: leaseId, increment: Math.max(1, Math.round(incrementSeconds)) })) as {
        lease_duration?: number;
        renewable?: boolean;
      };
      return { ttlSeconds: Number(r.lease_duration ?? 0), renewable: r.renewable !== false };
    } catch (e) {
      const err = e as NodeVaultError;
      const status = err?.response?.statusCode;
      const errors = err?.response?.body?.errors ?? [];
      if (status === 400 && errors.some((m) => /lease (not found|is not renewable|expired)|invalid lease/i.test(m))) {
        throw new LeaseGoneError(leaseId, errors.join('; '));
      }
      this.fail(e, `renewing lease ${leaseId}`);
    }
  }

  async revoke(leaseId: string): Promise<void> {
    await this.ensureAuth();
    await this.call(`revoking lease ${leaseId}`, () => this.client.revoke({ lease_id: leaseId }));
  }
}

function stringValues(data: Record<string, unknown>, keys: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) {
    const v = data[k];
    out[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  return out;
}

/** The factory the registry calls. */
export function createVaultProvider(opts: VaultOptions = {}): VaultProvider {
  return new VaultProvider(opts);
}
