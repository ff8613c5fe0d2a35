/**
 * End to end on the real engine with the real CLI: the demo repository is applied, checked (containers,
 * labels, networks, reachability over links), applied again with zero Docker mutations, changed in one
 * service (only that one is replaced), then destroyed (an unrelated container is left alone).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import {
  cleanupProject,
  copyDemoRepo,
  dockerClient,
  execIn,
  freePort,
  gitCommitAll,
  httpGet,
  parseNdjson,
  projectEvents,
  snapshot,
  uniqueProject,
  waffle,
} from './helpers.ts';
import { ensureTestImages, DEMO_IMAGES, TEST_IMAGES } from './engine.ts';

const project = uniqueProject('demo');
let docker: Dockerode;
let repo: string;
let port: number;
let unrelatedId: string;

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!, { ...TEST_IMAGES, ...DEMO_IMAGES });
  port = await freePort();
  repo = copyDemoRepo(project, [['127.0.0.1:8088:8080', `127.0.0.1:${port}:8080`]]);
  // An unrelated container that must survive everything, including destroy.
  const c = await docker.createContainer({
    Image: TEST_IMAGES.busybox,
    Cmd: ['sleep', '600'],
    name: `${project}-unrelated`,
    Labels: { 'dev.example.owner': project },
  });
  await c.start();
  unrelatedId = c.id;
});

after(async () => {
  await cleanupProject(docker, project);
  await docker.getContainer(unrelatedId).remove({ force: true }).catch(() => {});
  fs.rmSync(repo, { recursive: true, force: true });
});

const serviceNames = ['api', 'cache', 'web', 'worker'];

test('apply deploys the demo: containers, labels, networks, health', async () => {
  const r = await waffle(['apply', '--yes', '--json'], { cwd: repo });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const events = parseNdjson(r.stdout);
  const done = events.at(-1)!;
  assert.equal(done.type, 'apply-done');
  assert.equal(done.ok, true);
  assert.equal((done.summary as { created: number }).created, 4);

  const snap = await snapshot(docker, project);
  assert.deepEqual(snap.containers.map((c) => c.name), serviceNames.map((s) => `${project}-${s}`));
  for (const c of snap.containers) {
    assert.equal(c.state, 'running', `${c.name} is ${c.state}`);
    const svc = c.name.slice(project.length + 1);
    assert.equal(c.labels['dev.wafflemaker.project'], project);
    assert.equal(c.labels['dev.wafflemaker.service'], svc);
    assert.match(c.labels['dev.wafflemaker.config-hash'], /^[0-9a-f]{16,64}$/);
    assert.match(c.labels['dev.wafflemaker.commit'], /^[0-9a-f]{7,40}$/);
    assert.equal(c.labels['dev.wafflemaker.generation'], '1');
  }
  assert.deepEqual(snap.networks, [
    `${project}_default`,
    `${project}_link_api_cache`,
    `${project}_link_api_web`,
    `${project}_link_api_worker`,
  ]);
  assert.deepEqual(snap.volumes, [`${project}_cache-data`]);

  // web waited for api to be healthy; both report healthy now.
  const api = await docker.getContainer(`${project}-api`).inspect();
  assert.equal(api.State.Health?.Status, 'healthy');
  // Published port answers from the host.
  const page = await httpGet(`http://127.0.0.1:${port}/`);
  assert.equal(page.status, 200);
  assert.match(page.body, /waffle/);
});

test('only linked services reach each other, by service name', async () => {
  // web is linked to api (url() reference): it answers by name.
  const ok = await execIn(docker, `${project}-web`, ['timeout', '5', 'wget', '-q', '-O-', 'http://api:8080/']);
  assert.equal(ok.code, 0, ok.output);
  assert.match(ok.output, /waffle/);
  // api is linked to cache.
  const pong = await execIn(docker, `${project}-api`, ['sh', '-c', 'nc -w 3 cache 6379 </dev/null']);
  assert.equal(pong.code, 0, pong.output);
  assert.match(pong.output, /PONG/);
  // web is not linked to cache: cannot connect, by name or by the cache's address on the default network.
  const denied = await execIn(docker, `${project}-web`, ['sh', '-c', 'nc -w 2 cache 6379 </dev/null']);
  assert.notEqual(denied.code, 0, `web reached cache: ${denied.output}`);
  const cache = await docker.getContainer(`${project}-cache`).inspect();
  const ip = cache.NetworkSettings.Networks[`${project}_default`].IPAddress;
  assert.ok(ip, 'cache has an address on the default network');
  const deniedIp = await execIn(docker, `${project}-web`, ['sh', '-c', `nc -w 2 ${ip} 6379 </dev/null`]);
  assert.notEqual(deniedIp.code, 0, `web reached cache at ${ip}: ${deniedIp.output}`);
});

test('a second apply is a no-op: no Docker mutation at all', async () => {
  // Start on a fresh second so events of the previous apply fall outside the window.
  await new Promise((res) => setTimeout(res, 1000 - (Date.now() % 1000) + 5));
  const since = Math.floor(Date.now() / 1000);
  const before = await snapshot(docker, project);
  const plan = await waffle(['plan', '--detailed-exitcode'], { cwd: repo });
  assert.equal(plan.code, 0, plan.stderr);
  const r = await waffle(['apply', '--yes'], { cwd: repo });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /nothing to do/);
  const after = await snapshot(docker, project);
  assert.deepEqual(after, before);
  await new Promise((res) => setTimeout(res, 1100));
  const events = await projectEvents(docker, project, since, Math.floor(Date.now() / 1000));
  const mutations = events.filter((e) => !['exec_create', 'exec_start', 'exec_die'].includes(e.Action) && !e.Action.startsWith('health_status') && !e.Action.startsWith('exec_'));
  assert.deepEqual(mutations, [], `unexpected Docker events: ${JSON.stringify(mutations)}`);
});

test('changing one env value replaces exactly that service', async () => {
  const file = path.join(repo, 'services/worker.ts');
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('env: { API_URL', "env: { POLL_SECONDS: '7', API_URL"));
  gitCommitAll(repo, 'worker: poll every 7 s');
  const before = await snapshot(docker, project);
  const plan = await waffle(['plan', '--detailed-exitcode'], { cwd: repo });
  assert.equal(plan.code, 2, plan.stderr);
  assert.match(plan.stdout, /worker/);
  assert.match(plan.stdout, /POLL_SECONDS/);
  assert.doesNotMatch(plan.stdout + plan.stderr, /'7'|=7\b/, 'plan shows changed keys, not values');

  const r = await waffle(['apply', '--yes', '--json'], { cwd: repo });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const after = await snapshot(docker, project);
  const id = (snap: typeof before, s: string) => snap.containers.find((c) => c.name === `${project}-${s}`)?.id;
  for (const s of ['api', 'cache', 'web']) assert.equal(id(after, s), id(before, s), `${s} must not be replaced`);
  assert.notEqual(id(after, 'worker'), id(before, 'worker'));
  const worker = after.containers.find((c) => c.name === `${project}-worker`)!;
  assert.equal(worker.labels['dev.wafflemaker.generation'], '2');
  assert.equal(worker.state, 'running');
  const inspect = await docker.getContainer(worker.id).inspect();
  assert.ok(inspect.Config.Env.includes('POLL_SECONDS=7'));
  // The four services, and the replaced worker kept stopped for rollback.
  assert.deepEqual(
    after.containers.filter((c) => c.name.includes('-kept-')).map((c) => [c.name, c.state]),
    [[`${project}-worker-kept-1`, 'exited']],
  );
  assert.equal(after.containers.length, 5);
});

test('status shows each service with state, image and commit', async () => {
  const r = await waffle(['status', '--json'], { cwd: repo });
  assert.equal(r.code, 0, r.stderr);
  const status = JSON.parse(r.stdout) as { services: Array<{ service: string; state: string; image: string; commit: string; health: string }> };
  assert.deepEqual(status.services.map((s) => s.service), serviceNames);
  for (const s of status.services) {
    assert.equal(s.state, 'running');
    assert.match(s.image, /^waffle-demo\//);
    assert.match(s.commit, /^[0-9a-f]{7,}/);
  }
  assert.equal(status.services.find((s) => s.service === 'api')!.health, 'healthy');
});

test('logs prints a service output, and names the services when one is unknown', async () => {
  // The worker was just replaced: its first successful poll can take one poll interval (5 s).
  let r = await waffle(['logs', 'worker', '-n', '20'], { cwd: repo });
  for (let i = 0; i < 20 && r.code === 0 && !/polled/.test(r.stdout); i++) {
    await new Promise((res) => setTimeout(res, 500));
    r = await waffle(['logs', 'worker', '-n', '20'], { cwd: repo });
  }
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /polled http:\/\/api:8080\//);
  const unknown = await waffle(['logs', 'nope'], { cwd: repo });
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no service "nope".*api, cache, web, worker/);
});

test('destroy removes everything of the project and nothing else', async () => {
  const refused = await waffle(['destroy'], { cwd: repo });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /--yes/);
  assert.equal((await snapshot(docker, project)).containers.length, 5, 'refused destroy changed nothing');

  const r = await waffle(['destroy', '--yes', '--volumes'], { cwd: repo });
  assert.equal(r.code, 0, r.stderr);
  const snap = await snapshot(docker, project);
  assert.deepEqual(snap, { containers: [], networks: [], volumes: [] });
  const unrelated = await docker.getContainer(unrelatedId).inspect();
  assert.equal(unrelated.State.Running, true, 'an unrelated container was touched');
});
