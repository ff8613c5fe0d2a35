/**
 * Routes on the Swarm target, on a one-node swarm of the real engine, through a real Caddy running as
 * a container (built from Debian's caddy, see test/caddy.ts) with its admin API on a unix socket.
 *
 * A Caddy container that does not exist stops the plan with the fix. Then one project goes through a
 * routed service's life, driven by the real CLI: two routed services (one
 * with 2 replicas) share a domain by path and answer through the Caddy container, an unknown path is
 * Caddy's 404; routing does not let the routed services reach each other (from inside their tasks);
 * several start-first rolling updates under load with requests always in flight fail no request and
 * change nothing in Caddy; an update whose health check fails is rolled back by Swarm while the old
 * version keeps answering; a Caddy restarted empty shows in the plan and apply puts the routes back;
 * maintenance on and off; a service whose routes are removed leaves Caddy and Caddy leaves its network;
 * destroy leaves no service, network, secret or route of the project.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { ensureEngine, ensureTestImages, TEST_IMAGES } from './engine.ts';
import { dockerClient, execIn, gitCommitAll, makeRepo, uniqueProject, waffle, writeFiles } from './helpers.ts';
import { caddyApi, loadThrough, requestThrough, startCaddyContainer, until, type CaddyContainer } from './caddy.ts';
import { joinTestSwarm, removeSwarmProject, type TestSwarm } from './swarm-support.ts';

let docker: Dockerode;
let host: string;
let swarm: TestSwarm | undefined;
let caddy: CaddyContainer | undefined;
let repo: string | undefined;
const project = uniqueProject('swr');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-swarm-routes-'));
const env = () => ({ WAFFLE_STATE_DIR: path.join(home, 'state'), DOCKER_HOST: host });
const DOMAIN = 'shop.test';

interface Files {
  webImage?: string;
  webHealth?: string;
  apiRoutes?: boolean;
}

function files(o: Files = {}): Record<string, string> {
  const webImage = o.webImage ?? TEST_IMAGES.appV1;
  return {
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';
export default defineConfig({
  project: '${project}',
  target: 'swarm',
  parallelism: 4,
  ingress: { caddy: { admin: '${caddy!.admin}', container: '${caddy!.name}' }, tls: 'internal' },
});
`,
    'services/web.ts': `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${webImage}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  replicas: 2,
  routes: [{ domain: '${DOMAIN}', path: '/shop', stripPrefix: true }],
  healthcheck: { http: '${o.webHealth ?? '/index.html'}', interval: '200ms', timeout: '2s', retries: 3 },
  rollout: { monitor: '2s' },
  stopGracePeriod: '1s',
});
`,
    'services/api.ts': `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${TEST_IMAGES.busybox}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  ${o.apiRoutes === false ? '' : `routes: [{ domain: '${DOMAIN}', path: '/api', stripPrefix: true }],`}
  healthcheck: { http: '/index.html', interval: '200ms', timeout: '2s', retries: 3 },
  stopGracePeriod: '1s',
});
`,
    // Linked with api, not routed: shows that a link still reaches (the isolation checks below can fail).
    'services/worker.ts': `import { defineService } from 'wafflemaker';
import api from './api';
export default defineService({ image: '${TEST_IMAGES.busybox}', command: ['sleep', '3600'], connects: [api], stopGracePeriod: '1s' });
`,
  };
}

async function deploy(o: Files, message: string): Promise<{ code: number; out: string }> {
  writeFiles(repo!, files(o));
  gitCommitAll(repo!, message);
  const r = await waffle(['apply', '--yes', '--plain'], { cwd: repo!, env: env(), timeoutMs: 240_000 });
  return { code: r.code, out: r.stdout + r.stderr };
}

async function plan(): Promise<{ code: number; out: string }> {
  const r = await waffle(['plan', '--plain', '--detailed-exitcode'], { cwd: repo!, env: env() });
  return { code: r.code, out: r.stdout + r.stderr };
}

/** The networks the Caddy container is attached to. */
async function caddyNetworks(): Promise<string[]> {
  const info = (await docker.getContainer(caddy!.name).inspect()) as { NetworkSettings: { Networks: Record<string, unknown> } };
  return Object.keys(info.NetworkSettings.Networks).sort();
}

/** Running task containers of a service on this node. */
async function taskContainers(service: string): Promise<Array<{ Id: string; Image: string }>> {
  const list = await docker.listContainers({ filters: { label: [`com.docker.swarm.service.name=${project}_${service}`] } });
  return list.map((c) => ({ Id: c.Id, Image: c.Image }));
}

before(async () => {
  host = await ensureEngine();
  process.env.DOCKER_HOST = host;
  await ensureTestImages(host);
  docker = await dockerClient();
  swarm = await joinTestSwarm(docker, host);
  caddy = await startCaddyContainer(host, `${project}-caddy`);
  repo = makeRepo(files(), { git: true });
});

after(async () => {
  await removeSwarmProject(docker, project).catch(() => undefined);
  await caddy?.stop();
  // What removeSwarmProject could not remove while Caddy was still attached.
  for (const n of await docker.listNetworks({ filters: { label: [`dev.wafflemaker.project=${project}`] } })) await docker.getNetwork(n.Id).remove().catch(() => undefined);
  if (repo) fs.rmSync(repo, { recursive: true, force: true });
  fs.rmSync(home, { recursive: true, force: true });
  await swarm?.leave();
});

test('a Caddy container that does not exist: the plan fails naming the setting, the file and the fix; nothing is created', async () => {
  const absent = `${project}-no-caddy`;
  const other = makeRepo({ ...files(), 'waffle.config.ts': files()['waffle.config.ts']!.replace(`container: '${caddy!.name}'`, `container: '${absent}'`) }, { git: true });
  try {
    const r = await waffle(['apply', '--yes', '--plain'], { cwd: other, env: env() });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, new RegExp(`Caddy container "${absent}" \\(ingress\\.caddy\\.container in waffle\\.config\\.ts\\) does not exist`));
    assert.match(r.stdout + r.stderr, /Fix: start Caddy as a container on the manager/);
    assert.deepEqual(await docker.listServices({ filters: { label: [`dev.wafflemaker.project=${project}`] } }), []);
    assert.deepEqual(await docker.listNetworks({ filters: { label: [`dev.wafflemaker.project=${project}`] } }), []);
  } finally {
    fs.rmSync(other, { recursive: true, force: true });
  }
});

test('routed services on Swarm answer through the Caddy container: by domain and path, an unknown path is 404', async () => {
  const p = await plan();
  assert.equal(p.code, 2, p.out);
  assert.match(p.out, /proxy/);
  assert.match(p.out, /not attached to .*_ingress_web/);
  const r = await waffle(['apply', '--yes', '--plain'], { cwd: repo!, env: env(), timeoutMs: 240_000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal((await until(caddy!, DOMAIN, '/shop/', (x) => x.status === 200)).body, 'waffle v1\n');
  assert.equal((await until(caddy!, DOMAIN, '/api/', (x) => x.status === 200)).body, 'waffle busybox\n');
  const unknown = await requestThrough(caddy!, DOMAIN, '/elsewhere');
  assert.equal(unknown.status, 404);
  // Two tasks serve web; Caddy is attached to the two routed services' networks and no other of the project.
  assert.equal((await taskContainers('web')).length, 2);
  assert.deepEqual(
    (await caddyNetworks()).filter((n) => n.startsWith(project)),
    [`${project}_ingress_api`, `${project}_ingress_web`],
  );
  const net = await docker.getNetwork(`${project}_ingress_web`).inspect();
  assert.equal(net.Driver, 'overlay');
  assert.equal(net.Attachable, true);
  assert.equal(net.Labels?.['dev.wafflemaker.project'], project);
  // Caddy's route names the tasks' DNS name, not an address.
  const route = await caddyApi(caddy!, 'GET', `/id/waffle-${project}-routes`);
  assert.match(route.text, new RegExp(`"name":"tasks\\.${project}_web"`));
  // Nothing left to do.
  const again = await plan();
  assert.equal(again.code, 0, again.out);
});

test('routing does not let routed services reach each other; a link still does; no task reaches the admin API', async () => {
  const [web] = await taskContainers('web');
  const [api] = await taskContainers('api');
  const [worker] = await taskContainers('worker');
  assert.ok(web && api && worker, 'tasks of web, api and worker run on this node');
  const apiInfo = (await docker.getContainer(api.Id).inspect()) as { NetworkSettings: { Networks: Record<string, { IPAddress: string }> } };
  const apiIngressIp = apiInfo.NetworkSettings.Networks[`${project}_ingress_api`]?.IPAddress;
  assert.ok(apiIngressIp, 'api has an address on its ingress network');
  // (busybox-static's wget crashes with -T and a DNS name, so the shell's `timeout` bounds it)
  const get = (from: string, url: string) => execIn(docker, from, ['timeout', '5', 'wget', '-q', '-O', '-', url]);
  // From worker (linked with api): api by name answers, so the same request failing below means something.
  const linked = await get(worker.Id, 'http://api:8080/');
  assert.equal(linked.code, 0, linked.output);
  assert.equal(linked.output, 'waffle busybox\n');
  // From web: api's names do not resolve, and its address on its ingress network does not answer.
  for (const name of ['api', `tasks.${project}_api`]) {
    const r = await execIn(docker, web.Id, ['nslookup', name]);
    assert.doesNotMatch(r.output, /Address: 10\./, `${name} resolves for web: ${r.output}`);
  }
  const byAddress = await get(web.Id, `http://${apiIngressIp}:8080/`);
  assert.notEqual(byAddress.code, 0, `web reached api at ${apiIngressIp}: ${byAddress.output}`);
  // By address the way the worker reaches api (its address on their link network) answers.
  const apiLinkIp = apiInfo.NetworkSettings.Networks[`${project}_link_api_worker`]?.IPAddress;
  assert.ok(apiLinkIp, 'api has an address on its link network');
  const linkedByAddress = await get(worker.Id, `http://${apiLinkIp}:8080/`);
  assert.equal(linkedByAddress.code, 0, linkedByAddress.output);
  // Caddy's address on web's network: its HTTP port answers (that is how routing works), its admin port does not.
  const caddyInfo = (await docker.getContainer(caddy!.name).inspect()) as { NetworkSettings: { Networks: Record<string, { IPAddress: string }> } };
  const caddyIp = caddyInfo.NetworkSettings.Networks[`${project}_ingress_web`]!.IPAddress;
  const admin = await get(web.Id, `http://${caddyIp}:2019/config/`);
  assert.notEqual(admin.code, 0, `a task reached Caddy's admin API: ${admin.output}`);
});

/** Keeps `inFlight` GETs of web through Caddy going until stopped (see `loadThrough`). */
const load = (inFlight: number) => loadThrough(caddy!, DOMAIN, '/shop/', inFlight, 15_000);

/** Waits until no task container of web runs an image other than `image` (the old tasks are gone). */
async function onlyTasksOf(image: string): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const tasks = await taskContainers('web');
    if (tasks.length === 2 && tasks.every((t) => t.Image === image)) return Date.now();
    if (Date.now() > deadline) throw new Error(`web still runs ${JSON.stringify(tasks)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('consecutive start-first rolling updates under load: no request fails, answers move to the new version, Caddy is not changed', async () => {
  const traffic = load(4);
  const updates: Array<{ from: string; to: string; start: number; end: number; gone: number }> = [];
  const routeBefore = (await caddyApi(caddy!, 'GET', `/id/waffle-${project}-routes`)).text;
  try {
    for (let i = 0; i < 4; i++) {
      const to = i % 2 === 0 ? 'v2' : 'v1';
      const image = to === 'v2' ? TEST_IMAGES.appV2 : TEST_IMAGES.appV1;
      const start = Date.now();
      const r = await deploy({ webImage: image }, `web ${to}`);
      const end = Date.now();
      assert.equal(r.code, 0, `update ${i + 1}: ${r.out}`);
      assert.match(r.out, /replace\s+web/);
      assert.doesNotMatch(r.out, /~ +proxy|proxy configured/, 'a rolling update changes nothing in Caddy');
      // Once the old tasks are gone, and a few answers later, the next update starts.
      const gone = await onlyTasksOf(image);
      while (traffic.answers.filter((a) => a.start > gone).length < 8) await new Promise((res) => setTimeout(res, 20));
      updates.push({ from: to === 'v2' ? 'v1' : 'v2', to, start, end, gone });
    }
  } finally {
    var answers = await traffic.stop();
  }
  const failed = answers.filter((a) => !a.ok);
  console.log(`# ${answers.length} requests through the Caddy container during 4 rolling updates, ${failed.length} failed, ${answers.filter((a) => a.retried).length} sent again after a connection reset`);
  assert.equal(failed.length, 0, `failed requests: ${JSON.stringify(failed.slice(0, 5))}`);
  assert.ok(answers.length > 100, `enough requests were made: ${answers.length}`);
  for (const [i, u] of updates.entries()) {
    const prevGone = updates[i - 1]?.gone ?? 0;
    const next = updates[i + 1]?.start ?? Infinity;
    // Before the update: the old version only.
    const before = answers.filter((a) => a.start > prevGone && a.end < u.start);
    assert.deepEqual([...new Set(before.map((a) => a.version))], before.length ? [u.from] : [], `before update ${i + 1}`);
    // During it both versions answer (tasks are replaced one at a time); after the old tasks are gone, the new one only.
    const during = answers.filter((a) => a.start >= u.start && a.end <= u.end);
    assert.ok(during.some((a) => a.version === u.to), `the new version answered during update ${i + 1}`);
    const after = answers.filter((a) => a.start > u.gone && a.end < next);
    assert.ok(after.length > 0, `requests after update ${i + 1}`);
    assert.deepEqual([...new Set(after.map((a) => a.version))], [u.to], `after update ${i + 1} (${u.from} → ${u.to})`);
  }
  assert.equal((await caddyApi(caddy!, 'GET', `/id/waffle-${project}-routes`)).text, routeBefore, "Caddy's route is the same object");
});

test('an update whose health check fails is rolled back by Swarm and reported failed; the old version keeps answering', async () => {
  const current = (await requestThrough(caddy!, DOMAIN, '/shop/')).body.trim().split(' ')[1]!;
  const good = current === 'v1' ? TEST_IMAGES.appV1 : TEST_IMAGES.appV2;
  const broken = current === 'v1' ? TEST_IMAGES.appV2 : TEST_IMAGES.appV1;
  const traffic = load(4);
  const r = await deploy({ webImage: broken, webHealth: '/missing-health' }, 'web with a broken health check');
  await new Promise((res) => setTimeout(res, 500));
  const answers = await traffic.stop();
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /rolled the update back/);
  const failed = answers.filter((a) => !a.ok);
  assert.equal(failed.length, 0, `failed requests: ${JSON.stringify(failed.slice(0, 5))}`);
  assert.ok(answers.length > 20, `enough requests were made: ${answers.length}`);
  assert.deepEqual([...new Set(answers.map((a) => a.version))], [current], 'every answer came from the old version');
  // Back to the definition Swarm runs: nothing to do.
  writeFiles(repo!, files({ webImage: good }));
  gitCommitAll(repo!, 'web back to the running version');
  const p = await plan();
  assert.equal(p.code, 0, p.out);
});

test('a Caddy restarted empty shows in the plan and apply puts the routes back; maintenance on and off', async () => {
  await caddy!.restart();
  assert.equal((await requestThrough(caddy!, DOMAIN, '/shop/').catch((e: Error) => ({ status: 0, body: e.message }))).status === 200, false);
  const p = await plan();
  assert.equal(p.code, 2, p.out);
  assert.match(p.out, /not in Caddy/);
  // A restarted container keeps its networks: nothing to attach.
  assert.doesNotMatch(p.out, /not attached/);
  const r = await waffle(['apply', '--yes', '--plain'], { cwd: repo!, env: env() });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal((await until(caddy!, DOMAIN, '/shop/', (x) => x.status === 200)).body.startsWith('waffle v'), true);

  const on = await waffle(['maintenance', 'on', 'web', '--plain'], { cwd: repo!, env: env() });
  assert.equal(on.code, 0, on.stdout + on.stderr);
  const down = await until(caddy!, DOMAIN, '/shop/', (x) => x.status === 503);
  assert.match(down.body, /maintenance/i);
  assert.equal((await requestThrough(caddy!, DOMAIN, '/api/')).status, 200, 'the other service is not in maintenance');
  // Later plans keep it.
  assert.equal((await plan()).code, 0);
  const off = await waffle(['maintenance', 'off', 'web', '--plain'], { cwd: repo!, env: env() });
  assert.equal(off.code, 0, off.stdout + off.stderr);
  await until(caddy!, DOMAIN, '/shop/', (x) => x.status === 200);
});

test("removing a service's routes removes them from Caddy before the service leaves its network; Caddy is detached", async () => {
  const r = await deploy({ webImage: (await taskContainers('web'))[0]!.Image, apiRoutes: false }, 'api no longer routed');
  assert.equal(r.code, 0, r.out);
  assert.equal((await requestThrough(caddy!, DOMAIN, '/api/')).status, 404);
  assert.equal((await requestThrough(caddy!, DOMAIN, '/shop/')).status, 200);
  assert.deepEqual((await caddyNetworks()).filter((n) => n.startsWith(project)), [`${project}_ingress_web`]);
  assert.equal((await docker.listNetworks({ filters: { name: [`${project}_ingress_api`] } })).filter((n) => n.Name === `${project}_ingress_api`).length, 0, 'the ingress network of api is removed');
  const p = await plan();
  assert.equal(p.code, 0, p.out);
});

test('destroy leaves no service, network, secret or Caddy route of the project', async () => {
  const r = await waffle(['destroy', '--yes', '--plain'], { cwd: repo!, env: env(), timeoutMs: 240_000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const filters = { label: [`dev.wafflemaker.project=${project}`] };
  assert.deepEqual(await docker.listServices({ filters }), []);
  assert.deepEqual((await docker.listNetworks({ filters })).map((n) => n.Name), [], r.stdout + r.stderr);
  assert.deepEqual(await docker.listSecrets({ filters }), []);
  assert.equal((await caddyApi(caddy!, 'GET', `/id/waffle-${project}-routes`)).status, 404);
  assert.equal((await caddyApi(caddy!, 'GET', `/id/waffle-${project}-tls`)).status, 404);
  assert.deepEqual((await caddyNetworks()).filter((n) => n.startsWith(project)), []);
});
