/**
 * A test DOUBLE of HashiCorp Vault's documented HTTP API (no Vault server can be installed here).
 *
 * It is a real HTTP server (node:http on 127.0.0.1, random port) that answers the subset of the API
 * Wafflemaker uses, with Vault's shapes and rules:
 * - every call except `sys/health` and `auth/approle/login` needs `X-Vault-Token`; a missing, unknown,
 *   revoked or expired token gets `403 {"errors":["permission denied"]}`;
 * - the response envelope `{request_id, lease_id, renewable, lease_duration, data, wrap_info, warnings, auth}`;
 * - unknown mounts: `404 {"errors":["no handler for route \"...\". route entry not found."]}`;
 * - KV v2 at `<mount>/data/<path>` (`{data: {data, metadata}}` on read, `{data: {version, ...}}` on write),
 *   `<mount>/metadata/<path>`;
 * - database engine: `database/creds/<role>` (username/password under a lease), `database/roles/<role>`
 *   read/write (`default_ttl`, `max_ttl`); unknown role → `400 {"errors":["unknown role: x"]}`;
 * - AWS engine: `aws/creds/<role>` (`access_key`, `secret_key`, `security_token`), `aws/roles/<role>`;
 * - `sys/leases/renew` (and the legacy `sys/renew`): the increment is capped at the role's max TTL (with
 *   Vault's warning); a lease past its expiry is revoked and renewing it fails with `400 lease not found`;
 * - `sys/leases/revoke` (204, idempotent), `sys/leases/lookup`;
 * - `auth/token/lookup-self`, `auth/token/renew-self` (capped at the token's max TTL; root tokens have no TTL),
 *   `auth/approle/login` (role_id + secret_id → a client token with a TTL).
 *
 * Time is the double's own clock (`now()`), which tests move with `advance(seconds)` so that TTLs expire
 * without waiting. `stop()` / `start()` take it down and bring it back on the same port ("Vault down").
 * Issued credentials and their leases are kept so tests can assert renewal and revocation.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';

export interface DoubleRole {
  /** Seconds. */
  defaultTtl: number;
  /** Seconds. */
  maxTtl: number;
  /** Anything else written to the role (db_name, creation_statements, credential_type, ...). */
  extra: Record<string, unknown>;
}

export interface DoubleLease {
  leaseId: string;
  engine: 'database' | 'aws';
  mount: string;
  role: string;
  /** The credentials issued under this lease (the double knows them; tests compare them). */
  values: Record<string, string>;
  issuedAt: number;
  /** Epoch ms the lease currently ends. */
  expiresAt: number;
  /** Epoch ms beyond which it can never be extended (issue + role max TTL). */
  maxExpiresAt: number;
  renewals: number;
  revoked: boolean;
  /** Why it ended: `revoke` (asked for) or `expired`. */
  revokedBy?: 'revoke' | 'expired';
}

interface DoubleToken {
  id: string;
  accessor: string;
  policies: string[];
  /** Seconds; 0 = no TTL (root). */
  ttl: number;
  maxTtl: number;
  renewable: boolean;
  createdAt: number;
  expiresAt: number;
  maxExpiresAt: number;
  revoked: boolean;
  displayName: string;
}

export interface DoubleCall {
  method: string;
  /** Path after `/v1/`, without the query. */
  path: string;
  status: number;
  at: number;
}

export interface VaultDoubleOptions {
  /** Root token (no TTL). Default: random `hvs.` token. */
  rootToken?: string;
  /** Mount → type. Default `{ secret: 'kv-v2', database: 'database', aws: 'aws' }`. */
  mounts?: Record<string, 'kv-v2' | 'database' | 'aws'>;
}

type Json = Record<string, unknown>;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
  ) {
    super(errors.join('; ') || `status ${status}`);
  }
}

/** Go-style durations Vault accepts: a number of seconds, `"90"`, `"90s"`, `"5m"`, `"1h30m"`, `"24h"`. */
export function parseVaultDuration(v: unknown, fallback: number): number {
  if (v === undefined || v === null || v === '') return fallback;
  if (typeof v === 'number') return Math.floor(v);
  const s = String(v).trim();
  if (/^\d+$/.test(s)) return Number(s);
  let total = 0;
  let matched = '';
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) {
    matched += m[0];
    const n = Number(m[1]);
    total += m[2] === 'ms' ? n / 1000 : m[2] === 's' ? n : m[2] === 'm' ? n * 60 : m[2] === 'h' ? n * 3600 : n * 86400;
  }
  if (matched !== s) throw new HttpError(400, [`invalid duration ${JSON.stringify(s)}`]);
  return Math.floor(total);
}

function fmtDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s || (!h && !m) ? `${s}s` : ''}`;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function randomString(n: number, alphabet = ALNUM): string {
  const bytes = randomBytes(n);
  let out = '';
  for (let i = 0; i < n; i++) out += alphabet[bytes[i] % alphabet.length];
  return out;
}

export class VaultDouble {
  readonly rootToken: string;
  /** Every call, in order (tokens are never recorded). */
  readonly calls: DoubleCall[] = [];
  private server: http.Server | undefined;
  private port = 0;
  private clockOffsetMs = 0;
  private readonly mounts: Record<string, 'kv-v2' | 'database' | 'aws'>;
  private readonly tokens = new Map<string, DoubleToken>();
  private readonly leases = new Map<string, DoubleLease>();
  private readonly kv = new Map<string, Array<{ data: Record<string, unknown>; created: number }>>();
  private readonly roles = new Map<string, DoubleRole>();
  private readonly approles = new Map<string, { roleName: string; secretIds: Set<string>; tokenTtl: number; tokenMaxTtl: number; policies: string[] }>();

  private constructor(opts: VaultDoubleOptions) {
    this.rootToken = opts.rootToken ?? `hvs.${randomString(24)}`;
    this.mounts = opts.mounts ?? { secret: 'kv-v2', database: 'database', aws: 'aws' };
    this.tokens.set(this.rootToken, {
      id: this.rootToken,
      accessor: randomString(24),
      policies: ['root'],
      ttl: 0,
      maxTtl: 0,
      renewable: false,
      createdAt: this.now(),
      expiresAt: Infinity,
      maxExpiresAt: Infinity,
      revoked: false,
      displayName: 'root',
    });
  }

  /** Starts a double on 127.0.0.1 with a random port. */
  static async start(opts: VaultDoubleOptions = {}): Promise<VaultDouble> {
    const d = new VaultDouble(opts);
    await d.start();
    return d;
  }

  /** `http://127.0.0.1:<port>` (stays the same across stop/start). */
  get address(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.server !== undefined;
  }

  /** Brings the double (back) up, on the same port as before when it had one. */
  async start(): Promise<void> {
    if (this.server) return;
    const server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** "Vault down": closes the listener and every open connection; state is kept for `start()`. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ───────────── clock ─────────────

  /** The double's clock, epoch ms. */
  now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  /** Moves the double's clock forward; leases and tokens past their end expire (and are revoked). */
  advance(seconds: number): void {
    this.clockOffsetMs += seconds * 1000;
    this.expire();
  }

  // ───────────── setup helpers (what an operator would do with the vault CLI) ─────────────

  /** `vault kv put <mount>/<path> ...` */
  kvPut(mount: string, path: string, data: Record<string, unknown>): number {
    const key = `${mount}/${path}`;
    const versions = this.kv.get(key) ?? [];
    versions.push({ data: { ...data }, created: this.now() });
    this.kv.set(key, versions);
    return versions.length;
  }

  kvGet(mount: string, path: string): Record<string, unknown> | undefined {
    const versions = this.kv.get(`${mount}/${path}`);
    return versions?.[versions.length - 1]?.data;
  }

  /** `vault write database/roles/<name> default_ttl=.. max_ttl=..` (or `aws/roles/<name>`). */
  addRole(mount: string, name: string, ttl: { defaultTtl: number; maxTtl: number }, extra: Record<string, unknown> = {}): void {
    this.roles.set(`${mount}/${name}`, { defaultTtl: ttl.defaultTtl, maxTtl: ttl.maxTtl, extra });
  }

  role(mount: string, name: string): DoubleRole | undefined {
    return this.roles.get(`${mount}/${name}`);
  }

  /** A token with a TTL (what `vault token create -ttl=.. -explicit-max-ttl=..` gives). */
  createToken(opts: { ttl: number; maxTtl?: number; renewable?: boolean; policies?: string[] }): string {
    const id = `hvs.${randomString(24)}`;
    const now = this.now();
    const maxTtl = opts.maxTtl ?? 32 * 86400;
    this.tokens.set(id, {
      id,
      accessor: randomString(24),
      policies: opts.policies ?? ['default', 'waffle'],
      ttl: opts.ttl,
      maxTtl,
      renewable: opts.renewable ?? true,
      createdAt: now,
      expiresAt: now + opts.ttl * 1000,
      maxExpiresAt: now + maxTtl * 1000,
      revoked: false,
      displayName: 'token',
    });
    return id;
  }

  /** Enables an AppRole: returns its role_id and one secret_id. */
  addAppRole(roleName: string, opts: { tokenTtl?: number; tokenMaxTtl?: number; policies?: string[] } = {}): { roleId: string; secretId: string } {
    const roleId = randomUUID();
    const secretId = randomUUID();
    this.approles.set(roleId, {
      roleName,
      secretIds: new Set([secretId]),
      tokenTtl: opts.tokenTtl ?? 3600,
      tokenMaxTtl: opts.tokenMaxTtl ?? 86400,
      policies: opts.policies ?? ['default', 'waffle'],
    });
    return { roleId, secretId };
  }

  revokeToken(token: string): void {
    const t = this.tokens.get(token);
    if (t) t.revoked = true;
  }

  // ───────────── inspection ─────────────

  /** Every credential set ever issued, oldest first. */
  issued(filter: { engine?: 'database' | 'aws'; role?: string } = {}): DoubleLease[] {
    this.expire();
    return [...this.leases.values()].filter((l) => (!filter.engine || l.engine === filter.engine) && (!filter.role || l.role === filter.role));
  }

  lease(leaseId: string): DoubleLease | undefined {
    this.expire();
    return this.leases.get(leaseId);
  }

  /** Leases that are neither revoked nor expired. */
  activeLeases(): DoubleLease[] {
    return this.issued().filter((l) => !l.revoked);
  }

  /** Which lease a credential value belongs to (e.g. the username seen inside a container). */
  leaseByValue(value: string): DoubleLease | undefined {
    return this.issued().find((l) => Object.values(l.values).includes(value));
  }

  callsTo(pathPrefix: string, method?: string): DoubleCall[] {
    return this.calls.filter((c) => c.path.startsWith(pathPrefix) && (!method || c.method === method));
  }

  // ───────────── HTTP ─────────────

  private expire(): void {
    const now = this.now();
    for (const l of this.leases.values()) {
      if (!l.revoked && now >= l.expiresAt) {
        l.revoked = true;
        l.revokedBy = 'expired';
      }
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://double');
    let method = (req.method ?? 'GET').toUpperCase();
    if (method === 'GET' && url.searchParams.get('list') === 'true') method = 'LIST';
    const path = url.pathname.replace(/^\/v1\//, '').replace(/\/+$/, '');
    let status = 200;
    let body: unknown;
    try {
      if (!url.pathname.startsWith('/v1/')) throw new HttpError(404, []);
      const raw = await new Promise<string>((resolve, reject) => {
        let s = '';
        req.setEncoding('utf8');
        req.on('data', (c) => (s += c));
        req.on('end', () => resolve(s));
        req.on('error', reject);
      });
      let input: Json = {};
      if (raw.trim()) {
        try {
          input = JSON.parse(raw) as Json;
        } catch {
          throw new HttpError(400, ['failed to parse JSON input: invalid character']);
        }
      }
      this.expire();
      const out = this.route(method, path, input, req.headers, url);
      if (out === undefined) status = 204;
      else body = out;
    } catch (e) {
      if (e instanceof HttpError) {
        status = e.status;
        body = { errors: e.errors };
      } else {
        status = 500;
        body = { errors: [String((e as Error)?.message ?? e)] };
      }
    }
    this.calls.push({ method, path, status, at: this.now() });
    if (status === 204) {
      res.writeHead(204, { 'Cache-Control': 'no-store' });
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private envelope(fields: { data?: unknown; lease_id?: string; lease_duration?: number; renewable?: boolean; auth?: unknown; warnings?: string[] | null }): Json {
    return {
      request_id: randomUUID(),
      lease_id: fields.lease_id ?? '',
      renewable: fields.renewable ?? false,
      lease_duration: fields.lease_duration ?? 0,
      data: fields.data ?? null,
      wrap_info: null,
      warnings: fields.warnings ?? null,
      auth: fields.auth ?? null,
      mount_type: '',
    };
  }

  private authenticate(headers: http.IncomingHttpHeaders): DoubleToken {
    const raw = headers['x-vault-token'] ?? (typeof headers.authorization === 'string' ? headers.authorization.replace(/^Bearer\s+/i, '') : undefined);
    const id = Array.isArray(raw) ? raw[0] : raw;
    const t = id ? this.tokens.get(id) : undefined;
    if (!t || t.revoked || this.now() >= t.expiresAt) throw new HttpError(403, ['permission denied']);
    return t;
  }

  private noRoute(path: string): never {
    throw new HttpError(404, [`no handler for route ${JSON.stringify(path)}. route entry not found.`]);
  }

  private route(method: string, path: string, input: Json, headers: http.IncomingHttpHeaders, url: URL): Json | undefined {
    const write = method === 'POST' || method === 'PUT';
    // Unauthenticated endpoints.
    if (path === 'sys/health' && (method === 'GET' || method === 'HEAD')) {
      return {
        initialized: true,
        sealed: false,
        standby: false,
        performance_standby: false,
        replication_performance_mode: 'disabled',
        replication_dr_mode: 'disabled',
        server_time_utc: Math.floor(this.now() / 1000),
        version: '1.15.0+double',
        cluster_name: 'vault-double',
        cluster_id: '00000000-0000-0000-0000-000000000000',
      };
    }
    const login = /^auth\/([^/]+)\/login$/.exec(path);
    if (login && write) return this.approleLogin(input);

    const token = this.authenticate(headers);

    if (path === 'auth/token/lookup-self' && (method === 'GET' || write)) return this.lookupSelf(token);
    if (path === 'auth/token/renew-self' && write) return this.renewSelf(token, input);
    if ((path === 'sys/leases/renew' || path === 'sys/renew' || path.startsWith('sys/leases/renew/') || path.startsWith('sys/renew/')) && write) {
      const id = String(input.lease_id ?? path.replace(/^sys\/(leases\/)?renew\/?/, ''));
      return this.renewLease(id, input.increment);
    }
    if ((path === 'sys/leases/revoke' || path === 'sys/revoke' || path.startsWith('sys/leases/revoke/') || path.startsWith('sys/revoke/')) && write) {
      const id = String(input.lease_id ?? path.replace(/^sys\/(leases\/)?revoke\/?/, ''));
      const l = this.leases.get(id);
      if (l && !l.revoked) {
        l.revoked = true;
        l.revokedBy = 'revoke';
      }
      return undefined;
    }
    if (path === 'sys/leases/lookup' && write) {
      const l = this.leases.get(String(input.lease_id ?? ''));
      if (!l || l.revoked) throw new HttpError(400, ['invalid lease']);
      return this.envelope({
        data: {
          id: l.leaseId,
          issue_time: new Date(l.issuedAt).toISOString(),
          expire_time: new Date(l.expiresAt).toISOString(),
          last_renewal: l.renewals ? new Date(l.issuedAt).toISOString() : null,
          renewable: true,
          ttl: Math.max(0, Math.floor((l.expiresAt - this.now()) / 1000)),
        },
      });
    }

    const [mount, ...rest] = path.split('/');
    const type = this.mounts[mount];
    const sub = rest.join('/');
    if (!type) this.noRoute(path);
    if (type === 'kv-v2') return this.kvRoute(mount, method, sub, input, url, path);
    // database and aws engines
    const m = /^(creds|roles)\/([^/]+)$/.exec(sub);
    if (!m) this.noRoute(path);
    const [, kind, roleName] = m;
    const key = `${mount}/${roleName}`;
    if (kind === 'roles') {
      if (method === 'GET') {
        const r = this.roles.get(key);
        if (!r) throw new HttpError(404, []);
        return this.envelope({ data: { ...r.extra, default_ttl: r.defaultTtl, max_ttl: r.maxTtl } });
      }
      if (write) {
        const prev = this.roles.get(key);
        const { default_ttl, max_ttl, ttl, ...extra } = input;
        if (type === 'database' && !prev && !extra.db_name) throw new HttpError(400, ['empty database name attribute']);
        this.roles.set(key, {
          defaultTtl: parseVaultDuration(default_ttl ?? ttl, prev?.defaultTtl ?? 3600),
          maxTtl: parseVaultDuration(max_ttl, prev?.maxTtl ?? 86400),
          extra: { ...prev?.extra, ...extra },
        });
        return undefined;
      }
      if (method === 'DELETE') {
        this.roles.delete(key);
        return undefined;
      }
      this.noRoute(path);
    }
    // creds
    if (!(method === 'GET' || write)) this.noRoute(path);
    const role = this.roles.get(key);
    if (!role) throw new HttpError(400, [type === 'database' ? `unknown role: ${roleName}` : `Role "${roleName}" not found`]);
    const now = this.now();
    const leaseId = `${mount}/creds/${roleName}/${randomString(24)}`;
    const values: Record<string, string> =
      type === 'database'
        ? { username: `v-token-${roleName.slice(0, 8)}-${randomString(20)}`.slice(0, 63), password: `A1a-${randomString(20)}` }
        : { access_key: `AKIA${randomString(16, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567')}`, secret_key: randomString(40, `${ALNUM}/+`) };
    const ttl = Math.min(role.defaultTtl, role.maxTtl);
    this.leases.set(leaseId, {
      leaseId,
      engine: type,
      mount,
      role: roleName,
      values,
      issuedAt: now,
      expiresAt: now + ttl * 1000,
      maxExpiresAt: now + role.maxTtl * 1000,
      renewals: 0,
      revoked: false,
    });
    const data: Json = type === 'aws' ? { ...values, security_token: null } : { ...values };
    return this.envelope({ lease_id: leaseId, lease_duration: ttl, renewable: true, data });
  }

  private kvRoute(mount: string, method: string, sub: string, input: Json, url: URL, fullPath: string): Json | undefined {
    const dm = /^(data|metadata)\/(.+)$/.exec(sub);
    if (!dm) this.noRoute(fullPath);
    const [, kind, p] = dm;
    const key = `${mount}/${p}`;
    const versions = this.kv.get(key);
    const meta = (v: number) => ({
      created_time: new Date(versions![v - 1].created).toISOString(),
      custom_metadata: null,
      deletion_time: '',
      destroyed: false,
      version: v,
    });
    if (kind === 'data') {
      if (method === 'GET') {
        if (!versions?.length) throw new HttpError(404, []);
        const want = url.searchParams.get('version');
        const v = want && want !== '0' ? Number(want) : versions.length;
        if (!versions[v - 1]) throw new HttpError(404, []);
        return this.envelope({ data: { data: versions[v - 1].data, metadata: meta(v) } });
      }
      if (method === 'POST' || method === 'PUT') {
        if (!input.data || typeof input.data !== 'object') throw new HttpError(400, ['no data provided']);
        const cas = (input.options as Json | undefined)?.cas;
        if (cas !== undefined && Number(cas) !== (versions?.length ?? 0)) {
          throw new HttpError(400, [`check-and-set parameter did not match the current version`]);
        }
        const v = this.kvPut(mount, p, input.data as Record<string, unknown>);
        const created = this.kv.get(key)![v - 1].created;
        return this.envelope({ data: { created_time: new Date(created).toISOString(), custom_metadata: null, deletion_time: '', destroyed: false, version: v } });
      }
      if (method === 'DELETE') {
        this.kv.delete(key);
        return undefined;
      }
      this.noRoute(fullPath);
    }
    if (method === 'GET') {
      if (!versions?.length) throw new HttpError(404, []);
      const vs: Record<string, unknown> = {};
      versions.forEach((_, i) => (vs[String(i + 1)] = meta(i + 1)));
      return this.envelope({
        data: {
          cas_required: false,
          created_time: meta(1).created_time,
          current_version: versions.length,
          max_versions: 0,
          oldest_version: 0,
          updated_time: meta(versions.length).created_time,
          versions: vs,
        },
      });
    }
    if (method === 'LIST') {
      const prefix = `${mount}/${p}/`;
      const keys = [...this.kv.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length).replace(/\/.*$/, '/'));
      if (!keys.length) throw new HttpError(404, []);
      return this.envelope({ data: { keys: [...new Set(keys)].sort() } });
    }
    this.noRoute(fullPath);
  }

  private renewLease(leaseId: string, increment: unknown): Json {
    const l = this.leases.get(leaseId);
    // Vault revokes a lease when it expires; renewing it afterwards finds nothing.
    if (!l || l.revoked) throw new HttpError(400, ['lease not found']);
    const role = this.roles.get(`${l.mount}/${l.role}`);
    const now = this.now();
    const requested = parseVaultDuration(increment, role?.defaultTtl ?? 3600);
    const remainingMax = Math.max(0, Math.round((l.maxExpiresAt - now) / 1000));
    const warnings: string[] = [];
    let ttl = requested;
    if (requested > remainingMax) {
      ttl = remainingMax;
      warnings.push(`TTL of ${JSON.stringify(fmtDuration(requested))} exceeded the effective max_ttl of ${JSON.stringify(fmtDuration(remainingMax))}; TTL value is capped accordingly`);
    }
    l.expiresAt = now + ttl * 1000;
    l.renewals++;
    return this.envelope({ lease_id: leaseId, lease_duration: ttl, renewable: true, warnings: warnings.length ? warnings : null });
  }

  private tokenTtl(t: DoubleToken): number {
    return t.ttl === 0 ? 0 : Math.max(0, Math.floor((t.expiresAt - this.now()) / 1000));
  }

  private lookupSelf(t: DoubleToken): Json {
    return this.envelope({
      data: {
        accessor: t.accessor,
        creation_time: Math.floor(t.createdAt / 1000),
        creation_ttl: t.ttl,
        display_name: t.displayName,
        entity_id: '',
        expire_time: t.ttl === 0 ? null : new Date(t.expiresAt).toISOString(),
        explicit_max_ttl: t.ttl === 0 ? 0 : t.maxTtl,
        id: t.id,
        issue_time: new Date(t.createdAt).toISOString(),
        meta: null,
        num_uses: 0,
        orphan: true,
        path: t.displayName === 'root' ? 'auth/token/root' : 'auth/token/create',
        policies: t.policies,
        renewable: t.renewable,
        ttl: this.tokenTtl(t),
        type: 'service',
      },
    });
  }

  private renewSelf(t: DoubleToken, input: Json): Json {
    if (!t.renewable || t.ttl === 0) throw new HttpError(400, ['lease is not renewable']);
    const now = this.now();
    const requested = parseVaultDuration(input.increment, t.ttl);
    const remainingMax = Math.max(0, Math.floor((t.maxExpiresAt - now) / 1000));
    const ttl = Math.min(requested, remainingMax);
    t.expiresAt = now + ttl * 1000;
    return this.envelope({
      warnings: ttl < requested ? [`TTL of ${JSON.stringify(fmtDuration(requested))} exceeded the effective max_ttl of ${JSON.stringify(fmtDuration(remainingMax))}; TTL value is capped accordingly`] : null,
      auth: { client_token: t.id, accessor: t.accessor, policies: t.policies, token_policies: t.policies, metadata: null, lease_duration: ttl, renewable: t.renewable, entity_id: '', token_type: 'service', orphan: true },
    });
  }

  private approleLogin(input: Json): Json {
    const roleId = String(input.role_id ?? '');
    const secretId = String(input.secret_id ?? '');
    if (!roleId) throw new HttpError(400, ['missing role_id']);
    const role = this.approles.get(roleId);
    if (!role) throw new HttpError(400, ['invalid role ID']);
    if (!role.secretIds.has(secretId)) throw new HttpError(400, ['invalid secret id']);
    const id = this.createToken({ ttl: role.tokenTtl, maxTtl: role.tokenMaxTtl, renewable: true, policies: role.policies });
    const t = this.tokens.get(id)!;
    t.displayName = `approle`;
    return this.envelope({
      auth: {
        client_token: id,
        accessor: t.accessor,
        policies: t.policies,
        token_policies: t.policies,
        metadata: { role_name: role.roleName },
        lease_duration: role.tokenTtl,
        renewable: true,
        entity_id: randomUUID(),
        token_type: 'service',
        orphan: true,
      },
    });
  }
}
