/**
 * Validation of a service's public `routes` and of the project's `ingress` settings, and of what spans
 * services: one domain and path prefix belongs to one service.
 */
import type { IngressSpec, Problem, RouteSpec } from '../../model.ts';
import { isObject, show } from '../parse.ts';
import { has, isPort, unknownKeys, type Report } from '../report.ts';

export const ROUTE_KEYS = ['domain', 'path', 'port', 'stripPrefix'];
export const INGRESS_KEYS = ['provider', 'caddy', 'traefik', 'tls', 'drainSeconds', 'maintenancePage'];
const CADDY_KEYS = ['admin', 'server', 'container'];
const TRAEFIK_KEYS = ['entrypoints', 'certResolver'];

export const DEFAULT_CADDY_ADMIN = 'http://127.0.0.1:2019';
export const DEFAULT_CADDY_SERVER = 'waffle';
export const DEFAULT_DRAIN_SECONDS = 2;

const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const PATH_RE = /^\/(?:[A-Za-z0-9._~!$&'()+,;=:@%-]+(?:\/[A-Za-z0-9._~!$&'()+,;=:@%-]+)*)?$/;

/** Why `domain` is not a host name the proxy can route (undefined when it is one). */
export function domainProblem(domain: string): string | undefined {
  if (domain.length === 0) return 'is empty';
  if (/^[a-z]+:\/\//i.test(domain)) return 'has a scheme';
  if (/[/:]/.test(domain)) return 'has a path or a port';
  if (domain !== domain.toLowerCase()) return 'has uppercase letters';
  if (domain.length > 253) return 'is longer than 253 characters';
  if (domain.endsWith('.')) return 'ends with a dot';
  const labels = domain.split('.');
  const bad = labels.find((l) => !LABEL_RE.test(l));
  if (bad !== undefined) return bad === '' ? 'has an empty label (two dots)' : `has an invalid label ${show(bad)} (letters, digits and -, not at either end, at most 63)`;
  if (/^\d+$/.test(labels[labels.length - 1]!)) return 'is an IP address, not a domain';
  return undefined;
}

/** A route as validated, with the entry it came from (`routes[1]`), for conflict messages. */
export interface PlacedRoute {
  where: string;
  route: RouteSpec;
}

/**
 * `routes` → normalised routes (path defaulted to `/`, trailing slash dropped, port defaulted to the
 * service's `port`). Invalid entries are reported and left out.
 */
export function checkRoutes(value: unknown, ctx: { port: number | undefined; portWritten: boolean }, report: Report): PlacedRoute[] {
  const out: PlacedRoute[] = [];
  if (value === undefined) return out;
  if (!Array.isArray(value)) {
    report('routes', `routes must be a list, got ${show(value)}`, "for example routes: [{ domain: 'api.example.com' }]");
    return out;
  }
  value.forEach((r, i) => {
    const w = `routes[${i}]`;
    if (!isObject(r)) return report(w, `a route must be an object, got ${show(r)}`, "for example { domain: 'api.example.com', path: '/v1' }");
    unknownKeys(r, ROUTE_KEYS, `${w}.`, report, 'a route');
    let ok = true;
    const domain = r.domain;
    if (typeof domain !== 'string') {
      report(`${w}.domain`, domain === undefined ? 'the route has no domain' : `domain ${show(domain)} must be a string`, "for example domain: 'api.example.com'");
      ok = false;
    } else {
      const why = domainProblem(domain);
      if (why) {
        const guess = domain.toLowerCase().replace(/^[a-z]+:\/\//, '').replace(/[/:].*$/, '').replace(/\.$/, '');
        report(`${w}.domain`, `domain ${show(domain)} is not a valid domain: it ${why}`, `write the host name only, for example '${domainProblem(guess) ? 'api.example.com' : guess}'`);
        ok = false;
      }
    }
    let path = '/';
    if (has(r, 'path')) {
      const p = r.path;
      if (typeof p !== 'string' || !p.startsWith('/')) {
        report(`${w}.path`, `path ${show(p)} must start with /`, "for example path: '/registration'");
        ok = false;
      } else {
        const trimmed = p.length > 1 ? p.replace(/\/+$/, '') : p;
        if (!PATH_RE.test(trimmed || '/')) {
          report(`${w}.path`, `path ${show(p)} is not a plain path prefix`, "use letters, digits and /, no wildcards, query or fragment, for example '/api/v1'");
          ok = false;
        } else path = trimmed || '/';
      }
    }
    let port = ctx.port;
    if (has(r, 'port')) {
      if (!isPort(r.port)) {
        report(`${w}.port`, `port ${show(r.port)} must be a whole number in 1..65535`, 'for example port: 8080');
        ok = false;
      } else port = r.port;
    } else if (port === undefined && !ctx.portWritten) {
      report(w, 'the route has no port to send requests to: the service sets no `port`', 'add port: 8080 (the port the service listens on) to the service, or port to the route');
      ok = false;
    }
    let stripPrefix = false;
    if (has(r, 'stripPrefix')) {
      if (typeof r.stripPrefix !== 'boolean') {
        report(`${w}.stripPrefix`, `stripPrefix ${show(r.stripPrefix)} must be true or false`, 'stripPrefix: true');
        ok = false;
      } else stripPrefix = r.stripPrefix;
    }
    if (ok && typeof domain === 'string' && port !== undefined) out.push({ where: w, route: { domain, path, port, stripPrefix } });
  });
  return out;
}

/** A route claimed by a service, as collected across the project. */
export interface ClaimedRoute extends PlacedRoute {
  service: string;
  file: string;
}

/** The same domain and path claimed twice (by two services, or twice by one): one problem on each later claim. */
export function routeConflicts(claims: ClaimedRoute[]): Problem[] {
  const problems: Problem[] = [];
  const first = new Map<string, ClaimedRoute>();
  for (const c of claims) {
    const key = `${c.route.domain}${c.route.path}`;
    const a = first.get(key);
    if (!a) {
      first.set(key, c);
      continue;
    }
    const what = `${c.route.domain}${c.route.path === '/' ? '' : c.route.path}`;
    problems.push({
      file: c.file,
      service: c.service,
      where: c.where,
      message:
        a.service === c.service
          ? `route ${what} is claimed twice by service "${c.service}" (${c.file}): ${a.where} and ${c.where}`
          : `route ${what} is also claimed by service "${a.service}" (${a.file}, ${a.where}); one domain and path go to one service`,
      fix: `give one of them another path (e.g. path: '/${c.service}') or another domain`,
    });
  }
  return problems;
}

/**
 * `ingress` → settings with defaults, or undefined when the project has no ingress (no settings and
 * no routed service).
 */
export function checkIngress(value: unknown, anyRoutes: boolean, report: Report, target: 'engine' | 'swarm' = 'engine', configFile = 'waffle.config.ts'): IngressSpec | undefined {
  if (value === undefined && !anyRoutes) return undefined;
  const spec: IngressSpec = {
    provider: 'caddy',
    admin: DEFAULT_CADDY_ADMIN,
    server: DEFAULT_CADDY_SERVER,
    tls: 'internal',
    drainSeconds: DEFAULT_DRAIN_SECONDS,
    traefik: { entrypoints: ['websecure'] },
  };
  if (value === undefined) {
    swarmIngress(spec, anyRoutes, report, target, configFile);
    return spec;
  }
  if (!isObject(value)) {
    report('ingress', `ingress must be an object, got ${show(value)}`, "for example ingress: { tls: 'internal' }");
    return spec;
  }
  unknownKeys(value, INGRESS_KEYS, 'ingress.', report, 'ingress');
  if (has(value, 'provider')) {
    if (value.provider !== 'caddy' && value.provider !== 'traefik') report('ingress.provider', `provider ${show(value.provider)} must be 'caddy' or 'traefik'`, "provider: 'caddy' (the default)");
    else spec.provider = value.provider;
  }
  if (has(value, 'caddy')) {
    const c = value.caddy;
    if (!isObject(c)) report('ingress.caddy', `ingress.caddy must be an object, got ${show(c)}`, "for example caddy: { admin: 'http://127.0.0.1:2019' }");
    else {
      unknownKeys(c, CADDY_KEYS, 'ingress.caddy.', report, 'ingress.caddy');
      if (has(c, 'admin')) {
        if (typeof c.admin !== 'string' || !(/^https?:\/\/[^/\s]+\/?$/.test(c.admin) || /^unix:\/\/\/\S+$/.test(c.admin))) {
          report(
            'ingress.caddy.admin',
            `admin ${show(c.admin)} must be an http:// address or a unix:/// socket path of Caddy's admin API`,
            "for example admin: 'http://127.0.0.1:2019' or admin: 'unix:///run/waffle-caddy/admin.sock'",
          );
        } else spec.admin = c.admin.startsWith('unix:') ? c.admin : c.admin.replace(/\/$/, '');
      }
      if (has(c, 'container')) {
        if (typeof c.container !== 'string' || !CONTAINER_RE.test(c.container)) {
          report('ingress.caddy.container', `container ${show(c.container)} must be a container name`, "for example container: 'caddy'");
        } else if (target !== 'swarm') {
          report(
            'ingress.caddy.container',
            "ingress.caddy.container is for target: 'swarm' (Caddy in a container attached to the services' overlay networks); on one engine Caddy reaches the containers through the ingress bridge",
            `remove container from ingress.caddy in ${configFile}, or set target: 'swarm'`,
          );
        } else spec.container = c.container;
      }
      if (has(c, 'server')) {
        if (typeof c.server !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(c.server)) report('ingress.caddy.server', `server ${show(c.server)} must be a name of letters, digits, _ and -`, "for example server: 'srv0'");
        else spec.server = c.server;
      }
    }
  }
  if (has(value, 'traefik')) {
    const t = value.traefik;
    if (!isObject(t)) report('ingress.traefik', `ingress.traefik must be an object, got ${show(t)}`, "for example traefik: { entrypoints: ['websecure'] }");
    else {
      unknownKeys(t, TRAEFIK_KEYS, 'ingress.traefik.', report, 'ingress.traefik');
      if (has(t, 'entrypoints')) {
        const e = t.entrypoints;
        if (!Array.isArray(e) || e.length === 0 || e.some((x) => typeof x !== 'string' || !/^[A-Za-z0-9_-]+$/.test(x))) {
          report('ingress.traefik.entrypoints', 'entrypoints must be a non-empty list of entry point names', "for example entrypoints: ['websecure']");
        } else spec.traefik.entrypoints = e as string[];
      }
      if (has(t, 'certResolver')) {
        if (typeof t.certResolver !== 'string' || !/^[A-Za-z0-9_-]+$/.test(t.certResolver)) report('ingress.traefik.certResolver', `certResolver ${show(t.certResolver)} must be a resolver name`, "for example certResolver: 'letsencrypt'");
        else spec.traefik.certResolver = t.certResolver;
      }
    }
  }
  if (has(value, 'tls')) {
    const t = value.tls;
    const fix = "tls: 'internal', or tls: { acme: { email: 'ops@example.com' } }";
    if (t === 'internal') spec.tls = 'internal';
    else if (isObject(t) && isObject(t.acme)) {
      unknownKeys(t, ['acme'], 'ingress.tls.', report, 'ingress.tls');
      unknownKeys(t.acme, ['email', 'staging'], 'ingress.tls.acme.', report, 'ingress.tls.acme');
      const email = t.acme.email;
      const staging = t.acme.staging ?? false;
      if (typeof email !== 'string' || !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) report('ingress.tls.acme.email', `email ${show(email)} is not an email address`, fix);
      else if (typeof staging !== 'boolean') report('ingress.tls.acme.staging', `staging ${show(staging)} must be true or false`, 'staging: true');
      else spec.tls = { acme: { email, staging } };
    } else report('ingress.tls', `tls ${show(t)} must be 'internal' or { acme: { email } }`, fix);
  }
  if (has(value, 'drainSeconds')) {
    const d = value.drainSeconds;
    if (typeof d !== 'number' || !Number.isFinite(d) || d < 0 || d > 3600) report('ingress.drainSeconds', `drainSeconds ${show(d)} must be a number of seconds from 0 to 3600`, 'for example drainSeconds: 5');
    else spec.drainSeconds = d;
  }
  if (has(value, 'maintenancePage')) {
    const p = value.maintenancePage;
    if (typeof p !== 'string' || p.length === 0 || p.startsWith('/') || p.split(/[\\/]/).includes('..')) {
      report('ingress.maintenancePage', `maintenancePage ${show(p)} must be a file inside the repository, relative to its root`, "for example maintenancePage: 'maintenance.html'");
    } else spec.maintenancePage = p;
  }
  swarmIngress(spec, anyRoutes, report, target, configFile);
  return spec;
}

/** Docker's container names. */
const CONTAINER_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * On Swarm, routes need the Caddy container's name: the tasks are on overlay networks that only a
 * container attached to them reaches. Traefik labels are written on the engine's containers only.
 */
function swarmIngress(spec: IngressSpec, anyRoutes: boolean, report: Report, target: 'engine' | 'swarm', configFile: string): void {
  if (target !== 'swarm' || !anyRoutes) return;
  if (spec.provider === 'traefik') {
    report('ingress.provider', "routes through Traefik are not supported on target: 'swarm' (waffle writes Traefik's labels on the single engine's containers)", `use the Caddy ingress on Swarm: remove provider: 'traefik' from ingress in ${configFile}`);
    return;
  }
  if (spec.container === undefined) {
    report(
      'ingress.caddy.container',
      "routes on target: 'swarm' need the name of the Caddy container: the tasks run on overlay networks that a Caddy on the host cannot reach",
      `start Caddy as a container on the manager (see "From one host to a Swarm" in the README) and set ingress: { caddy: { admin: 'unix:///run/waffle-caddy/admin.sock', container: 'caddy' } } in ${configFile}`,
    );
  }
}
