/**
 * Routes and ingress settings that cannot work are refused before anything changes: two services
 * claiming the same domain and path, a route on a service without a port, an invalid domain, bad
 * ingress settings; each problem names the file, the service and the fix. The proxy table and its drift
 * (pure) and the Traefik labels, against the label shape of Traefik's documentation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { checkIngress, checkRoutes, domainProblem, routeConflicts } from '../runtime/graph/validate/routes.ts';
import { traefikLabels } from '../runtime/ingress/traefik.ts';
import { describeRoutes, renderRoutes, renderTls } from '../runtime/ingress/caddy.ts';
import { proxyCauses } from '../runtime/plan/proxy.ts';
import type { ProxyTable } from '../runtime/model.ts';
import { makeRepo, parseNdjson, uniqueProject, waffle } from './helpers.ts';
import { none, only, recorder } from './graph-helpers.ts';

test('checkRoutes: defaults, normalised paths, and each invalid field reported where it is', () => {
  const r = recorder();
  const got = checkRoutes(
    [{ domain: 'api.example.com' }, { domain: 'api.example.com', path: '/v1/', port: 9000, stripPrefix: true }],
    { port: 8080, portWritten: true },
    r.report,
  );
  none(r.list);
  assert.deepEqual(got.map((g) => g.route), [
    { domain: 'api.example.com', path: '/', port: 8080, stripPrefix: false },
    { domain: 'api.example.com', path: '/v1', port: 9000, stripPrefix: true },
  ]);
  const bad = recorder();
  const out = checkRoutes(
    [
      { domain: 'https://api.example.com/x' },
      { domain: 'API.example.com' },
      { domain: 'api..example.com' },
      { domain: 'api.example.com', path: 'v1' },
      { domain: 'api.example.com', path: '/v1/*' },
      { domain: 'api.example.com', port: 70000 },
      { domain: 'api.example.com', stripPrefix: 'yes' },
      { domian: 'api.example.com' },
    ],
    { port: 8080, portWritten: true },
    bad.report,
  );
  assert.deepEqual(out, []);
  assert.equal(only(bad.list, /"https:\/\/api\.example\.com\/x" is not a valid domain: it has a scheme/).where, 'routes[0].domain');
  assert.match(only(bad.list, /has a scheme/).fix!, /'api\.example\.com'/);
  assert.equal(only(bad.list, /uppercase/).where, 'routes[1].domain');
  assert.equal(only(bad.list, /empty label/).where, 'routes[2].domain');
  assert.equal(only(bad.list, /must start with \//).where, 'routes[3].path');
  assert.equal(only(bad.list, /not a plain path prefix/).where, 'routes[4].path');
  assert.equal(only(bad.list, /port 70000/).where, 'routes[5].port');
  assert.equal(only(bad.list, /stripPrefix "yes"/).where, 'routes[6].stripPrefix');
  assert.equal(only(bad.list, /unknown key `domian`/).where, 'routes[7].domian');
  assert.equal(only(bad.list, /has no domain/).where, 'routes[7].domain');
});

test('checkRoutes: a route on a service without a port is refused with the fix', () => {
  const r = recorder();
  assert.deepEqual(checkRoutes([{ domain: 'a.example.com' }], { port: undefined, portWritten: false }, r.report), []);
  const p = only(r.list, /no port to send requests to/);
  assert.equal(p.where, 'routes[0]');
  assert.match(p.fix!, /add port: 8080/);
  // A port on the route itself is enough.
  const ok = recorder();
  assert.equal(checkRoutes([{ domain: 'a.example.com', port: 3000 }], { port: undefined, portWritten: false }, ok.report)[0]!.route.port, 3000);
  none(ok.list);
});

test('domainProblem: host names only', () => {
  for (const good of ['example.com', 'a-b.example.co', 'localhost', 'x1.test']) assert.equal(domainProblem(good), undefined, good);
  for (const bad of ['', 'example.com.', '-a.example.com', 'a_b.example.com', '10.0.0.1', 'example.com:443', `${'a'.repeat(64)}.com`]) {
    assert.ok(domainProblem(bad), bad);
  }
});

test('routeConflicts: one domain and path go to one service; different paths of one domain are fine', () => {
  const claim = (service: string, where: string, domain: string, path: string) => ({
    service,
    file: `services/${service}.ts`,
    where,
    route: { domain, path, port: 8080, stripPrefix: false },
  });
  const problems = routeConflicts([
    claim('api', 'routes[0]', 'api.example.com', '/'),
    claim('web', 'routes[0]', 'api.example.com', '/web'),
    claim('admin', 'routes[1]', 'api.example.com', '/'),
    claim('web', 'routes[1]', 'api.example.com', '/web'),
  ]);
  assert.equal(problems.length, 2);
  assert.deepEqual(problems[0], {
    file: 'services/admin.ts',
    service: 'admin',
    where: 'routes[1]',
    message: 'route api.example.com is also claimed by service "api" (services/api.ts, routes[0]); one domain and path go to one service',
    fix: "give one of them another path (e.g. path: '/admin') or another domain",
  });
  assert.match(problems[1]!.message, /claimed twice by service "web"/);
});

test('checkIngress: defaults when only routes exist; every bad setting named', () => {
  const r = recorder();
  assert.equal(checkIngress(undefined, false, r.report), undefined);
  assert.deepEqual(checkIngress(undefined, true, r.report), {
    provider: 'caddy',
    admin: 'http://127.0.0.1:2019',
    server: 'waffle',
    tls: 'internal',
    drainSeconds: 2,
    traefik: { entrypoints: ['websecure'] },
  });
  assert.deepEqual(checkIngress({ tls: { acme: { email: 'ops@example.com', staging: true } } }, true, r.report)?.tls, { acme: { email: 'ops@example.com', staging: true } });
  none(r.list);
  const bad = recorder();
  checkIngress({ provider: 'nginx', caddy: { admin: 'localhost:2019' }, tls: { acme: { email: 'nope' } }, drainSeconds: -1, maintenancePage: '../x.html', extra: 1 }, true, bad.report);
  assert.equal(only(bad.list, /provider "nginx"/).where, 'ingress.provider');
  assert.equal(only(bad.list, /admin "localhost:2019"/).where, 'ingress.caddy.admin');
  assert.equal(only(bad.list, /email "nope"/).where, 'ingress.tls.acme.email');
  assert.equal(only(bad.list, /drainSeconds -1/).where, 'ingress.drainSeconds');
  assert.equal(only(bad.list, /maintenancePage "\.\.\/x\.html"/).where, 'ingress.maintenancePage');
  assert.equal(only(bad.list, /unknown key `extra`/).where, 'ingress.extra');
});

test('waffle plan refuses conflicting, portless and invalid routes: file, service and fix for each; nothing is contacted', async () => {
  const project = uniqueProject('iv');
  const svc = (body: string) => `import { defineService } from 'wafflemaker';\nexport default defineService({ image: 'waffle-test/app:1', ${body} });\n`;
  const repo = makeRepo({
    // An admin address nothing listens on: validation fails before the proxy is asked anything.
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}', ingress: { caddy: { admin: 'http://127.0.0.1:9' } } });\n`,
    'services/api.ts': svc(`port: 8080, routes: [{ domain: 'api.example.com', path: '/v1' }]`),
    'services/v1.ts': svc(`port: 8080, routes: [{ domain: 'api.example.com', path: '/v1/' }]`),
    'services/worker.ts': svc(`routes: [{ domain: 'worker.example.com' }]`),
    'services/web.ts': svc(`port: 80, routes: [{ domain: 'Web.Example.com' }]`),
  });
  try {
    const r = await waffle(['plan', '--json', '--offline'], { cwd: repo, env: { DOCKER_HOST: 'unix:///nonexistent.sock' } });
    assert.equal(r.code, 1, r.stderr + r.stdout);
    const failed = parseNdjson(r.stdout).find((e) => e.type === 'run-failed') as { stage: string; problems: Array<{ file: string; service: string; message: string; fix: string; loc?: string }> };
    assert.equal(failed.stage, 'validate');
    const by = (re: RegExp) => failed.problems.find((p) => re.test(p.message));
    const conflict = by(/route api\.example\.com\/v1 is also claimed by service "api"/);
    assert.deepEqual([conflict?.file, conflict?.service], ['services/v1.ts', 'v1']);
    assert.match(conflict!.fix, /another path/);
    const portless = by(/no port to send requests to/);
    assert.deepEqual([portless?.file, portless?.service], ['services/worker.ts', 'worker']);
    assert.match(portless!.fix, /port: 8080/);
    const invalid = by(/domain "Web\.Example\.com" is not a valid domain/);
    assert.deepEqual([invalid?.file, invalid?.service], ['services/web.ts', 'web']);
    assert.match(invalid!.fix, /'web\.example\.com'/);
    assert.ok(invalid!.loc, 'the problem points at its line');
  } finally {
    fs.rmSync(repo, { recursive: true, force: true });
  }
});

const table = (over: Partial<ProxyTable> = {}): ProxyTable => ({
  provider: 'caddy',
  project: 'p',
  admin: 'http://127.0.0.1:2019',
  server: 'waffle',
  tls: 'internal',
  routes: [
    { domain: 'api.test', path: '/registration', service: 'reg', port: 8080, stripPrefix: true },
    { domain: 'api.test', path: '/', service: 'api', port: 8080, stripPrefix: false },
    { domain: 'www.test', path: '/', service: 'web', port: 80, stripPrefix: false },
  ],
  upstreams: { reg: '10.0.0.2', api: '10.0.0.3', web: null },
  maintenance: {},
  ...over,
});

test('renderRoutes: one route per project, longest prefix first, a 404 at the end of each domain, nothing for an unrouted service', () => {
  const r = renderRoutes(table()) as { '@id': string; match: Array<{ host: string[] }>; handle: Array<{ routes: Array<{ handle: Array<{ routes: Array<Record<string, unknown>> }> }> }> };
  assert.equal(r['@id'], 'waffle-p-routes');
  assert.deepEqual(r.match, [{ host: ['api.test'] }], 'www.test has no container that passed its healthcheck yet');
  const inner = r.handle[0]!.routes[0]!.handle[0]!.routes;
  assert.deepEqual(inner.map((x) => x['@id'] ?? 'not found'), ['waffle-p-routes:reg:0', 'waffle-p-routes:api:0', 'not found']);
  assert.deepEqual(inner[0]!.match, [{ path: ['/registration', '/registration/*'] }]);
  assert.deepEqual(inner[0]!.handle, [
    { handler: 'rewrite', strip_path_prefix: '/registration' },
    { handler: 'reverse_proxy', upstreams: [{ dial: '10.0.0.2:8080' }] },
  ]);
  assert.deepEqual(inner[2]!.handle, [{ handler: 'static_response', status_code: 404, body: 'Not Found\n' }]);
  assert.deepEqual(renderTls(table()), { '@id': 'waffle-p-tls', subjects: ['api.test'], issuers: [{ module: 'internal' }] });
  assert.deepEqual(renderTls(table({ tls: { acme: { email: 'a@b.co', staging: true } } }))!.issuers, [
    { module: 'acme', email: 'a@b.co', ca: 'https://acme-staging-v02.api.letsencrypt.org/directory' },
  ]);
  assert.equal(renderRoutes(table({ upstreams: { reg: null, api: null, web: null } })), null);
  // Maintenance answers even without an address.
  const m = renderRoutes(table({ maintenance: { web: '<p>soon</p>' } })) as { match: Array<{ host: string[] }> };
  assert.deepEqual(m.match, [{ host: ['api.test', 'www.test'] }]);
});

test('proxyCauses: in sync, missing, edited by hand, a removed route, the TLS policy', () => {
  const t = table();
  const inSync = { current: renderRoutes(t), currentTls: renderTls(t) };
  assert.deepEqual(proxyCauses(t, inSync), []);
  assert.deepEqual(
    proxyCauses(t, { current: null, currentTls: null }).map((c) => c.kind),
    ['proxy-missing', 'proxy-tls'],
  );
  assert.match(proxyCauses(t, { current: null, currentTls: null })[0]!.detail, /^not in Caddy: api\.test\/ \(api → 10\.0\.0\.3:8080\), api\.test\/registration \(reg → 10\.0\.0\.2:8080 \(prefix stripped\)\)$/);
  const edited = structuredClone(inSync) as { current: { handle: Array<{ routes: Array<{ handle: Array<{ routes: Array<{ handle: Array<{ upstreams?: Array<{ dial: string }> }> }> }> }> }> }; currentTls: unknown };
  edited.current.handle[0]!.routes[0]!.handle[0]!.routes[1]!.handle[0]!.upstreams![0]!.dial = '127.0.0.1:9';
  assert.deepEqual(proxyCauses(t, edited), [{ kind: 'proxy-changed', detail: 'changed outside waffle: api.test/ is api → 127.0.0.1:9, should be api → 10.0.0.3:8080' }]);
  const fewer = table({ routes: t.routes.filter((r) => r.service !== 'reg') });
  assert.deepEqual(proxyCauses(fewer, { current: inSync.current, currentTls: renderTls(fewer) }), [{ kind: 'proxy-removed', detail: 'no longer routed: api.test/registration' }]);
  assert.deepEqual([...describeRoutes(inSync.current, 'p')], [
    ['api.test/registration', 'reg → 10.0.0.2:8080 (prefix stripped)'],
    ['api.test/', 'api → 10.0.0.3:8080'],
  ]);
});

test('traefikLabels: routers with Host and PathPrefix rules, a service port, a stripprefix middleware, entry points and TLS (Traefik docs shape)', () => {
  const labels = traefikLabels(
    'acme',
    'api',
    [
      { domain: 'api.example.com', path: '/', port: 8080, stripPrefix: false },
      { domain: 'api.example.com', path: '/registration', port: 9000, stripPrefix: true },
    ],
    { traefik: { entrypoints: ['websecure'], certResolver: 'letsencrypt' } },
  );
  assert.deepEqual(labels, {
    'traefik.docker.network': 'acme_ingress',
    'traefik.enable': 'true',
    'traefik.http.middlewares.acme-api-1-strip.stripprefix.prefixes': '/registration',
    'traefik.http.routers.acme-api-0.entrypoints': 'websecure',
    'traefik.http.routers.acme-api-0.rule': 'Host(`api.example.com`)',
    'traefik.http.routers.acme-api-0.service': 'acme-api-0',
    'traefik.http.routers.acme-api-0.tls': 'true',
    'traefik.http.routers.acme-api-0.tls.certresolver': 'letsencrypt',
    'traefik.http.routers.acme-api-1.entrypoints': 'websecure',
    'traefik.http.routers.acme-api-1.middlewares': 'acme-api-1-strip@docker',
    'traefik.http.routers.acme-api-1.rule': 'Host(`api.example.com`) && PathPrefix(`/registration`)',
    'traefik.http.routers.acme-api-1.service': 'acme-api-1',
    'traefik.http.routers.acme-api-1.tls': 'true',
    'traefik.http.routers.acme-api-1.tls.certresolver': 'letsencrypt',
    'traefik.http.services.acme-api-0.loadbalancer.server.port': '8080',
    'traefik.http.services.acme-api-1.loadbalancer.server.port': '9000',
  });
  // The shape Traefik's Docker provider reads: `traefik.http.<routers|services|middlewares>.<name>.<option>`.
  for (const key of Object.keys(labels)) {
    assert.match(key, /^traefik\.(enable|docker\.network|http\.(routers\.[a-z0-9-]+\.(rule|entrypoints|service|middlewares|tls|tls\.certresolver)|services\.[a-z0-9-]+\.loadbalancer\.server\.port|middlewares\.[a-z0-9-]+\.stripprefix\.prefixes))$/, key);
  }
});

test('provider traefik: the labels are on the planned container, no Caddy is asked, and no proxy operation is planned', async () => {
  const { buildGraph } = await import('../runtime/graph/graph.ts');
  const { reconcile } = await import('../runtime/plan/reconcile.ts');
  const graph = buildGraph({
    root: '/tmp/x',
    configFile: 'waffle.config.ts',
    config: { project: 'tk', ingress: { provider: 'traefik', traefik: { entrypoints: ['web'] } } },
    services: [{ name: 'web', file: 'services/web.ts', data: { image: 'nginx:1', port: 80, routes: [{ domain: 'www.example.com' }], labels: { team: 'x' } } }],
    inputs: [],
  });
  const plan = reconcile(graph, { project: 'tk', containers: [], networks: [], volumes: [], images: ['nginx:1'] }, { commit: 'c' });
  assert.equal(plan.proxy, undefined);
  assert.ok(!plan.operations.some((o) => o.kind === 'configure-proxy'));
  const create = plan.operations.find((o) => o.kind === 'create-service');
  assert.ok(create && create.kind === 'create-service');
  assert.equal(create.route, undefined, 'Traefik routes by itself: no routing step');
  assert.equal(create.body.Labels['traefik.http.routers.tk-web-0.rule'], 'Host(`www.example.com`)');
  assert.equal(create.body.Labels['traefik.http.routers.tk-web-0.entrypoints'], 'web');
  assert.equal(create.body.Labels.team, 'x');
  assert.deepEqual(Object.keys(create.body.NetworkingConfig.EndpointsConfig).sort(), ['tk_default', 'tk_ingress']);
});

test('waffle plan with a Caddy that does not answer: fails at the proxy stage with the fix, changes nothing', async () => {
  const project = uniqueProject('iu');
  const repo = makeRepo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}', ingress: { caddy: { admin: 'http://127.0.0.1:9' } } });\n`,
    'services/web.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: 'waffle-test/app:1', port: 8080, routes: [{ domain: 'www.example.com' }] });\n`,
  });
  try {
    const r = await waffle(['plan', '--json'], { cwd: repo });
    assert.equal(r.code, 1, r.stderr + r.stdout);
    const failed = parseNdjson(r.stdout).find((e) => e.type === 'run-failed') as { stage: string; problems: Array<{ message: string; fix?: string }> };
    assert.equal(failed.stage, 'proxy');
    assert.match(failed.problems[0]!.message, /Caddy's admin API at http:\/\/127\.0\.0\.1:9 cannot be reached \(ECONNREFUSED\)/);
    assert.match(failed.problems[0]!.fix ?? '', /start Caddy .* or set ingress\.caddy\.admin/);
  } finally {
    fs.rmSync(repo, { recursive: true, force: true });
  }
});
