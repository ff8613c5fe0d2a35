/**
 * The Caddy adapter: the project's routes as Caddy JSON (pure), and Caddy's admin API (the only way
 * waffle changes Caddy: never a Caddyfile, never `/load`, which would replace the user's config).
 *
 * What a project owns in Caddy's configuration, both found by `@id`:
 * - one route `waffle-<project>-routes` in the server `ingress.caddy.server` (default `waffle`, created
 *   when missing), matching the project's domains, terminal: inside it one subroute per domain, whose
 *   routes go longest path prefix first, each to `reverse_proxy` with the routed container's address on
 *   the ingress network (or a 503 maintenance page), and a final 404 so an unknown path of a known domain
 *   never reaches another service;
 * - one TLS automation policy `waffle-<project>-tls` for the project's domains (internal issuer or ACME).
 * Every change is one request that replaces one of these objects (`PATCH /id/<id>`): Caddy applies a
 * new configuration atomically (a failed one leaves the running one), and the user's own routes and
 * policies are never rewritten.
 */
import http from 'node:http';
import https from 'node:https';
import type { ObservedProxy, ProxyRoute, ProxyTable } from '../model.ts';

export const routesId = (project: string) => `waffle-${project}-routes`;
export const tlsId = (project: string) => `waffle-${project}-tls`;

/** How often Caddy looks a Swarm service's tasks up again. */
export const TASKS_REFRESH = '1s';
/** How long a request whose connection to a task fails is tried again on the service's tasks, and how often. */
export const TASKS_TRY_DURATION = '5s';
export const TASKS_TRY_INTERVAL = '250ms';

const STAGING_CA = 'https://acme-staging-v02.api.letsencrypt.org/directory';

/** The page Caddy answers with while a service is in maintenance and no page was chosen. */
export const DEFAULT_MAINTENANCE_PAGE =
  '<!doctype html><html><head><meta charset="utf-8"><title>Maintenance</title></head>' +
  '<body><h1>Down for maintenance</h1><p>This service is being worked on and will be back shortly.</p></body></html>\n';

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** JSON with object keys sorted (Caddy returns objects with its own key order). */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => cmp(a, b))) : x,
  );
}

/** Domains of the routes that are rendered (a service with neither an address nor a maintenance page is left out). */
function liveRoutes(table: ProxyTable): ProxyRoute[] {
  return table.routes.filter((r) => table.maintenance[r.service] !== undefined || !!table.upstreams[r.service] || !!table.tasks?.[r.service]);
}

function pathRoute(table: ProxyTable, r: ProxyRoute, n: number): Record<string, unknown> {
  const handle: Array<Record<string, unknown>> = [];
  const page = table.maintenance[r.service];
  if (page !== undefined) {
    handle.push({
      handler: 'static_response',
      status_code: 503,
      headers: { 'Content-Type': ['text/html; charset=utf-8'], 'Retry-After': ['120'] },
      body: page,
    });
  } else {
    if (r.stripPrefix && r.path !== '/') handle.push({ handler: 'rewrite', strip_path_prefix: r.path });
    const tasks = table.tasks?.[r.service];
    handle.push(
      tasks
        ? {
            handler: 'reverse_proxy',
            // Swarm: the addresses of the service's tasks, looked up again every second (a task enters
            // Swarm's DNS once healthy and leaves it before it is stopped), and a request whose
            // connection cannot be made (a task that just went) is tried again on another task.
            dynamic_upstreams: { source: 'a', name: tasks, port: String(r.port), refresh: TASKS_REFRESH },
            load_balancing: { try_duration: TASKS_TRY_DURATION, try_interval: TASKS_TRY_INTERVAL },
          }
        : { handler: 'reverse_proxy', upstreams: [{ dial: `${table.upstreams[r.service]}:${r.port}` }] },
    );
  }
  return {
    // Names the service, so a plan can say which service a route in Caddy belongs to.
    // `<routes id>:<service>:<n>`, n counting the service's routes in table order (an id must not hold a `/`,
    // which would end it in an `/id/...` address).
    '@id': `${routesId(table.project)}:${r.service}:${n}`,
    ...(r.path === '/' ? {} : { match: [{ path: [r.path, `${r.path}/*`] }] }),
    handle,
    terminal: true,
  };
}

/** The project's route object for Caddy, or null when no route is live. Pure. */
export function renderRoutes(table: ProxyTable): Record<string, unknown> | null {
  const live = liveRoutes(table);
  if (live.length === 0) return null;
  const domains = [...new Set(live.map((r) => r.domain))].sort(cmp);
  return {
    '@id': routesId(table.project),
    match: [{ host: domains }],
    handle: [
      {
        handler: 'subroute',
        routes: domains.map((d) => ({
          match: [{ host: [d] }],
          handle: [
            {
              handler: 'subroute',
              routes: [
                // Longest prefix first; `/` (the whole domain) last of the services.
                ...live
                  .filter((r) => r.domain === d)
                  .sort((a, b) => b.path.length - a.path.length || cmp(a.path, b.path))
                  .map((r) => pathRoute(table, r, table.routes.filter((x) => x.service === r.service).indexOf(r))),
                { handle: [{ handler: 'static_response', status_code: 404, body: 'Not Found\n' }], terminal: true },
              ],
            },
          ],
          terminal: true,
        })),
      },
    ],
    terminal: true,
  };
}

/** The project's TLS automation policy, or null when no route is live. Pure. */
export function renderTls(table: ProxyTable): Record<string, unknown> | null {
  const domains = [...new Set(liveRoutes(table).map((r) => r.domain))].sort(cmp);
  if (domains.length === 0) return null;
  const issuer =
    table.tls === 'internal'
      ? { module: 'internal' }
      : { module: 'acme', email: table.tls.acme.email, ...(table.tls.acme.staging ? { ca: STAGING_CA } : {}) };
  return { '@id': tlsId(table.project), subjects: domains, issuers: [issuer] };
}

/**
 * What a route object says, per `domain path`: the service and where it sends requests. Works on what
 * Caddy returns (anything: a hand-edited or foreign object gives what can be read of it). Pure.
 */
export function describeRoutes(routes: unknown, project: string): Map<string, string> {
  const out = new Map<string, string>();
  const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
  for (const domainRoute of arr(obj(arr(obj(routes).handle)[0]).routes)) {
    const d = obj(domainRoute);
    const domain = String(arr(obj(arr(d.match)[0]).host)[0] ?? '?');
    for (const pr of arr(obj(arr(d.handle)[0]).routes)) {
      const p = obj(pr);
      const id = typeof p['@id'] === 'string' ? (p['@id'] as string) : '';
      if (!id.startsWith(`${routesId(project)}:`)) continue;
      const paths = arr(obj(arr(p.match)[0]).path);
      const path = typeof paths[0] === 'string' ? (paths[0] as string) : '/';
      const service = id.split(':')[1] || '?';
      const handlers = arr(p.handle).map(obj);
      const proxy = handlers.find((h) => h.handler === 'reverse_proxy');
      const dynamic = proxy ? obj(proxy.dynamic_upstreams) : {};
      const what = proxy
        ? dynamic.source === 'a'
          ? `→ tasks of ${String(dynamic.name ?? '?')}:${String(dynamic.port ?? '?')}`
          : `→ ${arr(proxy.upstreams).map((u) => String(obj(u).dial ?? '?')).join(', ') || 'no upstream'}`
        : handlers.some((h) => h.handler === 'static_response' && h.status_code === 503)
          ? 'maintenance page (503)'
          : 'something else';
      out.set(`${domain}${path}`, `${service} ${what}${handlers.some((h) => h.handler === 'rewrite') ? ' (prefix stripped)' : ''}`);
    }
  }
  return out;
}

// ───────────────────────────── the admin API ─────────────────────────────

/** An admin API answer that is not a success. */
export class CaddyError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'CaddyError';
  }
}

export interface CaddyOptions {
  /** Time limit of one admin API request, ms. Default 10 000. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Caddy's admin API at `admin` (`http://127.0.0.1:2019`). */
export class CaddyAdmin {
  constructor(
    readonly admin: string,
    private readonly opts: CaddyOptions = {},
  ) {}

  /**
   * One admin API request on a connection of its own: Caddy restarts its admin endpoint with every new
   * configuration and closes idle connections, so a kept-alive connection may be dead by the next request.
   */
  #request(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    // `unix:///run/caddy/admin.sock`: the admin API on a unix socket (Caddy in a container, reachable by no network).
    const socketPath = this.admin.startsWith('unix://') ? this.admin.slice('unix://'.length) : undefined;
    const url = new URL(socketPath ? `http://localhost${path}` : `${this.admin}${path}`);
    const data = body !== undefined ? JSON.stringify(body) : undefined;
    return new Promise((resolve, reject) => {
      const unreachable = (cause: string) =>
        new CaddyError(
          `Caddy's admin API at ${this.admin} cannot be reached (${cause}). Fix: start Caddy (\`systemctl start caddy\`, or \`caddy run\`), or set ingress.caddy.admin in waffle.config.ts to its admin address`,
          0,
        );
      const options: http.RequestOptions = {
        method,
        agent: false,
        headers: {
          'Content-Type': 'application/json',
          // Caddy's admin API refuses requests whose Origin is not its own (DNS rebinding protection);
          // on a unix socket it accepts only an empty Host (no host name names a socket).
          ...(socketPath ? { Host: '' } : { Origin: this.admin }),
          ...(data !== undefined ? { 'Content-Length': Buffer.byteLength(data) } : {}),
        },
        timeout: this.opts.timeoutMs ?? 10_000,
        ...(this.opts.signal ? { signal: this.opts.signal } : {}),
      };
      const onResponse = (res: http.IncomingMessage) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('error', (e) => reject(unreachable(e.message)));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            let message = text.trim();
            try {
              message = String((JSON.parse(text) as { error?: string }).error ?? message);
            } catch {
              /* plain text */
            }
            return reject(new CaddyError(`Caddy ${method} ${path}: ${status} ${message}`, status));
          }
          try {
            resolve({ status, json: text.trim() ? JSON.parse(text) : null });
          } catch (e) {
            reject(new CaddyError(`Caddy ${method} ${path}: the answer is not JSON (${(e as Error).message})`, status));
          }
        });
      };
      const req = socketPath
        ? http.request({ ...options, socketPath, path: `${url.pathname}${url.search}`, setHost: false }, onResponse)
        : (url.protocol === 'https:' ? https : http).request(url, options, onResponse);
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (e: NodeJS.ErrnoException) => reject(unreachable(e.code ?? e.message)));
      req.end(data);
    });
  }

  /** The object with `@id` `id`, or null when Caddy has none. */
  async getId(id: string): Promise<unknown> {
    try {
      return (await this.#request('GET', `/id/${encodeURIComponent(id)}`)).json;
    } catch (err) {
      if (err instanceof CaddyError && (err.status === 404 || /unknown object ID/i.test(err.message))) return null;
      throw err;
    }
  }

  /** The config at `path` (`apps/http/servers`), or null when absent. */
  async getConfig(path: string): Promise<unknown> {
    try {
      return (await this.#request('GET', `/config/${path}`)).json;
    } catch (err) {
      if (err instanceof CaddyError && (err.status === 404 || /invalid traversal path|unknown object/i.test(err.message))) return null;
      throw err;
    }
  }

  /** What Caddy holds for the project now. */
  async read(project: string): Promise<ObservedProxy> {
    const [current, currentTls] = await Promise.all([this.getId(routesId(project)), this.getId(tlsId(project))]);
    return { current, currentTls };
  }

  /** Replaces the object `id` with `value` (PATCH), or removes it (`value` null); `insert` adds it when Caddy has none. */
  async #put(id: string, value: Record<string, unknown> | null, insert: () => Promise<void>): Promise<void> {
    const path = `/id/${encodeURIComponent(id)}`;
    const current = await this.getId(id);
    if (value === null) {
      if (current !== null) await this.#request('DELETE', path);
      return;
    }
    // Every change reloads Caddy's whole configuration: an object that is already as wanted is left alone.
    if (current !== null && canonical(current) === canonical(value)) return;
    if (current !== null) await this.#request('PATCH', path, value);
    else await insert();
  }

  /** Makes Caddy's configuration of the project what `table` says: its routes and its TLS policy. */
  async push(table: ProxyTable): Promise<void> {
    const routes = renderRoutes(table);
    const tls = renderTls(table);
    // Certificates first: the routes then serve with the project's policy from their first request.
    await this.#put(tlsId(table.project), tls, async () => {
      const policies = await this.getConfig('apps/tls/automation/policies');
      if (Array.isArray(policies)) await this.#request('PUT', '/config/apps/tls/automation/policies/0', tls);
      else await this.#ensure(['apps', 'tls', 'automation', 'policies'], [tls]);
    });
    await this.#put(routesId(table.project), routes, async () => {
      const server = ['apps', 'http', 'servers', table.server];
      const existing = await this.getConfig(server.join('/'));
      if (existing && typeof existing === 'object') {
        // Our route goes first: it matches only the project's domains, so the server's other routes are unaffected.
        if (Array.isArray((existing as { routes?: unknown }).routes)) await this.#request('PUT', `/config/${server.join('/')}/routes/0`, routes);
        else await this.#request('POST', `/config/${server.join('/')}/routes`, [routes]);
        return;
      }
      const httpsPort = await this.getConfig('apps/http/https_port');
      await this.#ensure(server, { listen: [`:${typeof httpsPort === 'number' ? httpsPort : 443}`], routes: [routes] });
    });
  }

  /** Sets `value` at `path`, creating the missing objects above it (one request, at the first missing level). */
  async #ensure(path: string[], value: unknown): Promise<void> {
    let depth = 0;
    for (; depth < path.length - 1; depth++) {
      const here = await this.getConfig(path.slice(0, depth + 1).join('/'));
      if (here === null || typeof here !== 'object') break;
    }
    let nested: unknown = value;
    for (let i = path.length - 1; i > depth; i--) nested = { [path[i]!]: nested };
    const at = path.slice(0, depth + 1).join('/');
    if (depth === 0 && (await this.getConfig('')) === null) {
      await this.#request('POST', '/config/', { [path[0]!]: nested });
      return;
    }
    await this.#request('POST', `/config/${at}`, nested);
  }
}
