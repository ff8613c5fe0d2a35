/**
 * Routing through a real Caddy (Debian's, started by the test on free ports, configured only through its
 * admin API by `waffle apply`): five services share one domain by path prefix and one has its own
 * domain; each answers through Caddy; an unknown path gets Caddy's 404; a Caddy restarted empty shows
 * in `waffle plan` and `waffle apply` puts every route back; a removed service's route goes; a route of
 * the user's own in the same Caddy is left alone; `waffle status` shows the domains; maintenance answers
 * 503 with the chosen page while the container keeps running, and the next apply keeps it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, gitCommitAll, makeRepo, snapshot, uniqueProject, waffle, writeFiles } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { caddyApi, requestThrough, startCaddy, until, type Caddy } from './caddy.ts';

let docker: Dockerode;
let caddy: Caddy;
const project = uniqueProject('ir');
let repo: string;
let stateDir: string;
const env = () => ({ WAFFLE_STATE_DIR: stateDir });

/** A busybox httpd that answers `<name> <path>` for `/` and for its own prefix. */
function service(name: string, route: string): string {
  const dirs = ['/w', ...(route.includes('path:') ? [`/w${/path: '([^']+)'/.exec(route)![1]}`] : [])];
  const pages = dirs.map((d) => `mkdir -p ${d} && echo "${name} ${d.slice(2) || '/'}" > ${d}/index.html`).join(' && ');
  return `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${TEST_IMAGES.appV1}',
  command: ['sh', '-c', '${pages} && exec httpd -f -p 8080 -h /w'],
  port: 8080,
  routes: [${route}],
  healthcheck: { http: '/', interval: '300ms', timeout: '2s', retries: 10 },
  stopGracePeriod: '1s',
});
`;
}

function files(opts: { withWeb?: boolean } = {}): Record<string, string> {
  const out: Record<string, string> = {
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';
export default defineConfig({
  project: '${project}',
  ingress: { caddy: { admin: '${caddy.admin}' }, tls: 'internal', drainSeconds: 0.5, maintenancePage: 'maintenance.html' },
});
`,
    'maintenance.html': '<h1>back soon: planned maintenance</h1>\n',
    'services/registration.ts': service('registration', `{ domain: 'api.test', path: '/registration', stripPrefix: true }`),
    'services/integrations.ts': service('integrations', `{ domain: 'api.test', path: '/integrations' }`),
    'services/operations.ts': service('operations', `{ domain: 'api.test', path: '/operations' }`),
    'services/workshops.ts': service('workshops', `{ domain: 'api.test', path: '/operations/workshops' }`),
    'services/tasks.ts': service('tasks', `{ domain: 'api.test', path: '/tasks' }`),
  };
  if (opts.withWeb ?? true) out['services/web.ts'] = service('web', `{ domain: 'www.test' }`);
  return out;
}

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  caddy = await startCaddy();
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-state-'));
  await addOwnSite();
  repo = makeRepo(files(), { git: true });
});

/** The user's own site in the same Caddy server, with its own certificate policy: waffle must leave both alone. */
async function addOwnSite(): Promise<void> {
  for (const [p, body] of [
    ['apps/tls', { automation: { policies: [{ '@id': 'users-own-tls', subjects: ['own.test'], issuers: [{ module: 'internal' }] }] } }],
    [
      'apps/http/servers/waffle',
      {
        listen: [`:${caddy.httpsPort}`],
        routes: [{ '@id': 'users-own-site', match: [{ host: ['own.test'] }], handle: [{ handler: 'static_response', body: 'my own site' }], terminal: true }],
      },
    ],
  ] as const) {
    const res = await caddyApi(caddy, 'PUT', `/config/${p}`, body);
    assert.equal(res.status, 200, res.text);
  }
}

after(async () => {
  await cleanupProject(docker, project);
  await caddy?.stop();
  if (repo) fs.rmSync(repo, { recursive: true, force: true });
  if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
});

async function expectRoutes(): Promise<void> {
  const cases: Array<[string, string, string]> = [
    ['api.test', '/registration/', 'registration /'], // prefix stripped: the service sees /
    ['api.test', '/integrations/', 'integrations /integrations'],
    ['api.test', '/operations/', 'operations /operations'],
    ['api.test', '/operations/workshops/', 'workshops /operations/workshops'], // the longest prefix wins
    ['api.test', '/tasks/', 'tasks /tasks'],
    ['www.test', '/', 'web /'],
  ];
  for (const [domain, p, body] of cases) {
    const r = await until(caddy, domain, p, (x) => x.status === 200);
    assert.equal(r.body.trim(), body, `${domain}${p}`);
  }
  // Unknown paths of a known domain: Caddy's 404, never another service.
  for (const p of ['/', '/nothing', '/registrationx', '/task']) {
    const r = await requestThrough(caddy, 'api.test', p);
    assert.equal(r.status, 404, `api.test${p}: ${r.status} ${r.body}`);
    assert.equal(r.body, 'Not Found\n');
  }
  const own = await requestThrough(caddy, 'own.test', '/');
  assert.deepEqual(own, { status: 200, body: 'my own site' }, "the user's own route still answers");
}

test('six routed services answer through Caddy, each by its domain and path; unknown paths get 404', async () => {
  const r = await waffle(['apply', '--yes', '--plain'], { cwd: repo, env: env() });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  await expectRoutes();
  // Being routed does not link services: the ingress network has no container-to-container traffic.
  const snap = await snapshot(docker, project);
  assert.ok(snap.networks.includes(`${project}_ingress`), JSON.stringify(snap.networks));
  const net = await docker.getNetwork(`${project}_ingress`).inspect();
  assert.equal(net.Options?.['com.docker.network.bridge.enable_icc'], 'false');
  assert.equal(Object.keys(net.Containers ?? {}).length, 6);
  // Nothing left to do: the routes in Caddy are what the plan wants.
  const plan = await waffle(['plan', '--plain', '--detailed-exitcode'], { cwd: repo, env: env() });
  assert.equal(plan.code, 0, plan.stderr + plan.stdout);
});

test('waffle status shows each service domains', async () => {
  const r = await waffle(['status', '--json'], { cwd: repo, env: env() });
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout).services as Array<{ service: string; domains?: string[] }>;
  const by = Object.fromEntries(rows.map((x) => [x.service, x.domains]));
  assert.deepEqual(by.workshops, ['api.test/operations/workshops']);
  assert.deepEqual(by.web, ['www.test']);
  const table = await waffle(['status'], { cwd: repo, env: env() });
  assert.match(table.stdout, /PORTS\/DOMAINS/);
  assert.match(table.stdout, /^tasks\s.*api\.test\/tasks\s*$/m);
});

test('a Caddy restarted empty shows in waffle plan, and apply restores every route', async () => {
  await caddy.restart();
  const cfg = await caddyApi(caddy, 'GET', '/config/apps/http/servers');
  assert.equal(cfg.json, null, 'Caddy came back without any server');
  const plan = await waffle(['plan', '--plain', '--detailed-exitcode'], { cwd: repo, env: env() });
  assert.equal(plan.code, 2, plan.stderr + plan.stdout);
  assert.match(plan.stderr + plan.stdout, /~ +proxy +caddy\n +not in Caddy: api\.test\/integrations \(integrations → [\d.]+:8080\)/);
  assert.match(plan.stderr + plan.stdout, /TLS policy missing/);
  const r = await waffle(['apply', '--yes', '--plain'], { cwd: repo, env: env() });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const srv = (await caddyApi(caddy, 'GET', '/config/apps/http/servers/waffle')).json as { listen: string[] };
  assert.deepEqual(srv.listen, [`:${caddy.httpsPort}`], "the server is created on Caddy's HTTPS port");
  for (const [domain, p, body] of [['api.test', '/integrations/', 'integrations /integrations'], ['www.test', '/', 'web /']]) {
    assert.equal((await until(caddy, domain!, p!, (x) => x.status === 200)).body.trim(), body);
  }
  // The user's own site back in a fresh Caddy (the restart lost it too), then put back by waffle's next apply
  // around it: it keeps answering, and so does every route of the project.
  await caddy.restart();
  await addOwnSite();
  const again = await waffle(['apply', '--yes', '--plain'], { cwd: repo, env: env() });
  assert.equal(again.code, 0, again.stderr + again.stdout);
  const routes = (await caddyApi(caddy, 'GET', '/config/apps/http/servers/waffle/routes')).json as Array<{ '@id'?: string }>;
  assert.deepEqual(routes.map((r) => r['@id']), [`waffle-${project}-routes`, 'users-own-site'], 'ours first, the user route kept');
  await expectRoutes();
});

test('a route edited by hand shows in the plan as a change and apply puts it back', async () => {
  const id = encodeURIComponent(`waffle-${project}-routes:tasks:0`);
  const res = await caddyApi(caddy, 'PATCH', `/id/${id}/handle/0/upstreams/0/dial`, '127.0.0.1:9');
  assert.equal(res.status, 200, res.text);
  assert.equal((await requestThrough(caddy, 'api.test', '/tasks/')).status, 502);
  const plan = await waffle(['plan', '--plain', '--detailed-exitcode'], { cwd: repo, env: env() });
  assert.equal(plan.code, 2, plan.stderr + plan.stdout);
  assert.match(plan.stderr + plan.stdout, /changed outside waffle: api\.test\/tasks is tasks → 127\.0\.0\.1:9, should be tasks → [\d.]+:8080/);
  const r = await waffle(['apply', '--yes', '--plain'], { cwd: repo, env: env() });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal((await requestThrough(caddy, 'api.test', '/tasks/')).body.trim(), 'tasks /tasks');
});

test('maintenance on answers 503 with the page while the container runs; apply keeps it; off routes again', async () => {
  const on = await waffle(['maintenance', 'on', 'web', '--plain'], { cwd: repo, env: env() });
  assert.equal(on.code, 0, on.stderr + on.stdout);
  const r = await requestThrough(caddy, 'www.test', '/anything');
  assert.equal(r.status, 503);
  assert.equal(r.body, '<h1>back soon: planned maintenance</h1>\n');
  const web = (await snapshot(docker, project)).containers.find((c) => c.name === `${project}-web`);
  assert.equal(web?.state, 'running', 'the container keeps running');
  // The next apply (with a change elsewhere) keeps the page.
  writeFiles(repo, { 'services/tasks.ts': service('tasks', `{ domain: 'api.test', path: '/tasks' }`).replace("stopGracePeriod: '1s'", "stopGracePeriod: '2s'") });
  gitCommitAll(repo, 'tasks: longer grace');
  const apply = await waffle(['apply', '--yes', '--plain'], { cwd: repo, env: env() });
  assert.equal(apply.code, 0, apply.stderr + apply.stdout);
  assert.equal((await requestThrough(caddy, 'www.test', '/')).status, 503, 'still in maintenance after apply');
  assert.equal((await requestThrough(caddy, 'api.test', '/tasks/')).body.trim(), 'tasks /tasks');
  const off = await waffle(['maintenance', 'off', 'web', '--plain'], { cwd: repo, env: env() });
  assert.equal(off.code, 0, off.stderr + off.stdout);
  assert.deepEqual(await requestThrough(caddy, 'www.test', '/'), { status: 200, body: 'web /\n' });
});

test('a removed service: its route leaves Caddy before its container goes, the others stay', async () => {
  fs.rmSync(path.join(repo, 'services/web.ts'));
  gitCommitAll(repo, 'remove web');
  const plan = await waffle(['plan', '--plain'], { cwd: repo, env: env() });
  assert.match(plan.stderr + plan.stdout, /no longer routed: www\.test\//);
  const r = await waffle(['apply', '--yes', '--plain'], { cwd: repo, env: env() });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const gone = await requestThrough(caddy, 'www.test', '/').catch((e: Error) => ({ status: 0, body: e.message }));
  assert.notEqual(gone.status, 200, `www.test no longer answers: ${JSON.stringify(gone)}`);
  assert.equal((await requestThrough(caddy, 'api.test', '/integrations/')).body.trim(), 'integrations /integrations');
  const again = await waffle(['plan', '--plain', '--detailed-exitcode'], { cwd: repo, env: env() });
  assert.equal(again.code, 0, again.stderr + again.stdout);
});

test("destroy removes the project's routes and TLS policy from Caddy, and leaves the user's own", async () => {
  const r = await waffle(['destroy', '--yes', '--plain'], { cwd: repo, env: env() });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal((await caddyApi(caddy, 'GET', `/id/waffle-${project}-routes`)).status, 404);
  assert.equal((await caddyApi(caddy, 'GET', `/id/waffle-${project}-tls`)).status, 404);
  assert.equal((await caddyApi(caddy, 'GET', '/id/users-own-site')).status, 200);
  assert.equal((await caddyApi(caddy, 'GET', '/id/users-own-tls')).status, 200);
  assert.deepEqual(await requestThrough(caddy, 'own.test', '/'), { status: 200, body: 'my own site' });
});
