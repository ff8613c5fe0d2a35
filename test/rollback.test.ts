/**
 * Rollback that sticks, against the real engine and the real CLI: a replace keeps the earlier container
 * stopped under `<project>-api-kept-<generation>`; `waffle rollback` switches back to it under load from a
 * linked client (zero failed requests) without pulling (the recording socket proxy sees no
 * `/images/create`); the rolled-back service is pinned (the next apply leaves it alone and the plan says
 * so) until `--release` or a change of its definition; `--to` picks a generation; retention keeps exactly
 * N; a kept container that is no longer healthy fails the rollback and the current one keeps serving;
 * destroy removes the kept containers.
 *
 * The tests run in order on one project (each step builds on the previous one), like a team's week.
 * `api` answers with its image's version (busybox httpd); its healthcheck also fails when
 * `/state/broken-<VERSION>` exists on its volume, so one kept generation can be made unhealthy.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, execIn, gitCommitAll, makeRepo, parseNdjson, planFromJson, snapshot, uniqueProject, waffle, writeFiles } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { startSocketProxy, type SocketProxy } from './doubles/socket-proxy.ts';

let docker: Dockerode;
let proxy: SocketProxy;
const project = uniqueProject('rb');
let repo: string;
let state: string;

function files(o: { image: string; version: string; keep?: number }): Record<string, string> {
  return {
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';
export default defineConfig({ project: '${project}'${o.keep !== undefined ? `, rollback: { keep: ${o.keep} }` : ''} });
`,
    'services/api.ts': `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${o.image}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  env: { VERSION: '${o.version}' },
  volumes: [{ name: 'state', target: '/state' }],
  healthcheck: { command: 'test ! -f /state/broken-$VERSION && wget -q -O /dev/null http://127.0.0.1:8080/index.html', interval: '300ms', timeout: '3s', retries: 3 },
  restart: 'always',
  stopGracePeriod: '1s',
});
`,
    'services/client.ts': `import { defineService } from 'wafflemaker';
import api from './api';
export default defineService({
  image: '${TEST_IMAGES.busybox}',
  command: 'sleep 100000',
  connects: [api],
  stopGracePeriod: '1s',
});
`,
  };
}

const run = (args: string[], env: Record<string, string> = {}) => waffle(args, { cwd: repo, env: { WAFFLE_STATE_DIR: state, ...env } });

async function deploy(o: { image: string; version: string; keep?: number }, message: string): Promise<void> {
  writeFiles(repo, files(o));
  gitCommitAll(repo, message);
  const r = await run(['apply', '--yes', '--plain']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
}

interface ApiContainer {
  id: string;
  name: string;
  state: string;
  generation: number;
  image: string;
}

async function apiContainers(): Promise<ApiContainer[]> {
  return (await snapshot(docker, project)).containers
    .filter((c) => c.labels['dev.wafflemaker.service'] === 'api')
    .map((c) => ({ id: c.id, name: c.name, state: c.state, generation: Number(c.labels['dev.wafflemaker.generation']), image: c.labels['dev.wafflemaker.image']! }))
    .sort((a, b) => a.generation - b.generation);
}

async function current(): Promise<ApiContainer> {
  const c = (await apiContainers()).find((x) => x.name === `${project}-api`);
  assert.ok(c, 'api has a container under its name');
  return c;
}

/** The kept generations, by name: exactly `<project>-api-kept-<generation>`, all stopped. */
async function keptGenerations(): Promise<number[]> {
  const kept = (await apiContainers()).filter((c) => c.name !== `${project}-api`);
  for (const c of kept) {
    assert.equal(c.name, `${project}-api-kept-${c.generation}`, `a kept container is named after its generation: ${c.name}`);
    assert.notEqual(c.state, 'running', `${c.name} is kept stopped`);
  }
  return kept.map((c) => c.generation);
}

async function clientId(): Promise<string> {
  const c = (await snapshot(docker, project)).containers.find((x) => x.name === `${project}-client`);
  assert.ok(c && c.state === 'running', 'client runs');
  return c.id;
}

/** What linked clients get for http://api:8080/ now: the version text of each of `n` answers. */
async function answers(n = 4): Promise<string[]> {
  const r = await execIn(docker, await clientId(), ['sh', '-c', `for i in $(seq ${n}); do timeout 3 wget -q -O- http://api:8080/ || echo FAILED; done`]);
  return (r.output.match(/waffle v\d|FAILED/g) ?? []).map(String);
}

interface Traffic {
  ok: number;
  fail: number;
  v1: number;
  v2: number;
}

/** A request loop inside the client container (as in replace-traffic.test.ts); `stop()` returns the counts. */
async function trafficFrom(client: string, tag: string): Promise<{ stop: () => Promise<Traffic> }> {
  const script = [
    'ok=0; fail=0; v1=0; v2=0',
    `while [ ! -f /tmp/stop-${tag} ]; do`,
    '  r=$(timeout 3 wget -q -O- http://api:8080/ 2>/dev/null)',
    '  case "$r" in',
    '    *"waffle v1"*) ok=$((ok+1)); v1=$((v1+1));;',
    '    *"waffle v2"*) ok=$((ok+1)); v2=$((v2+1));;',
    '    *) fail=$((fail+1));;',
    '  esac',
    'done',
    'echo "traffic ok=$ok fail=$fail v1=$v1 v2=$v2"',
  ].join('\n');
  const loop = execIn(docker, client, ['sh', '-c', script]);
  await new Promise((r) => setTimeout(r, 1000));
  return {
    async stop() {
      await execIn(docker, client, ['touch', `/tmp/stop-${tag}`]);
      const { output } = await loop;
      const m = /traffic ok=(\d+) fail=(\d+) v1=(\d+) v2=(\d+)/.exec(output);
      assert.ok(m, `the loop reported its counts: ${output}`);
      return { ok: Number(m[1]), fail: Number(m[2]), v1: Number(m[3]), v2: Number(m[4]) };
    },
  };
}

const pinFile = () => path.join(state, project, 'pins.json');
const pins = (): Record<string, { generation: number }> => (fs.existsSync(pinFile()) ? JSON.parse(fs.readFileSync(pinFile(), 'utf8')).pins : {});

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  state = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-rollback-state-'));
  proxy = await startSocketProxy(process.env.DOCKER_HOST);
  repo = makeRepo(files({ image: TEST_IMAGES.appV1, version: 'a' }), { git: true });
  const first = await run(['apply', '--yes', '--plain']);
  assert.equal(first.code, 0, first.stderr + first.stdout);
});

after(async () => {
  await cleanupProject(docker, project);
  await proxy?.close();
  if (repo) fs.rmSync(repo, { recursive: true, force: true });
  if (state) fs.rmSync(state, { recursive: true, force: true });
});

test('a replace keeps the old container stopped, renamed after its generation, without the service alias or a restart policy', async () => {
  await deploy({ image: TEST_IMAGES.appV2, version: 'b' }, 'api v2');
  assert.deepEqual(await answers(), ['waffle v2', 'waffle v2', 'waffle v2', 'waffle v2']);
  assert.equal((await current()).generation, 2);
  assert.deepEqual(await keptGenerations(), [1]);
  const kept = await docker.getContainer(`${project}-api-kept-1`).inspect();
  assert.equal(kept.HostConfig.RestartPolicy?.Name, 'no', 'a restarted engine does not start a kept container');
  const link = Object.entries(kept.NetworkSettings.Networks).find(([n]) => n.includes('_link_'));
  assert.ok(link, 'the kept container stays on its link network (to serve again)');
  assert.ok(!(link[1].Aliases ?? []).includes('api'), `the kept container has no service alias: ${JSON.stringify(link[1].Aliases)}`);
  // Not mistaken for the service's container: nothing to do, and status lists one api row.
  const plan = await run(['plan', '--detailed-exitcode', '--plain']);
  assert.equal(plan.code, 0, plan.stdout + plan.stderr);
  const status = await run(['status', '--json']);
  assert.equal(status.code, 0, status.stderr);
  assert.ok(!status.stdout.includes(`${project}-api-kept-1`), status.stdout);
  const list = await run(['rollback', '--list', 'api', '--json']);
  assert.equal(list.code, 0, list.stderr);
  const doc = JSON.parse(list.stdout);
  assert.deepEqual(
    doc.generations.map((g: { generation: number; role: string; image: string }) => [g.generation, g.role, g.image]),
    [
      [2, 'current', TEST_IMAGES.appV2],
      [1, 'kept', TEST_IMAGES.appV1],
    ],
  );
});

test('waffle rollback switches back to v1 under load with zero failed requests, pulls nothing, and pins it', async () => {
  const before = await current();
  const client = await clientId();
  proxy.reset();
  const traffic = await trafficFrom(client, 'rollback');
  const r = await run(['rollback', 'api', '--yes', '--plain'], { DOCKER_HOST: proxy.host });
  await new Promise((res) => setTimeout(res, 500));
  const counts = await traffic.stop();
  console.log(`# rollback under load: ${JSON.stringify(counts)}`);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal(counts.fail, 0, `failed requests: ${JSON.stringify(counts)}`);
  assert.ok(counts.ok > 50, `enough requests were made: ${JSON.stringify(counts)}`);
  assert.ok(counts.v2 > 0 && counts.v1 > 0, `traffic moved from v2 to v1 during the rollback: ${JSON.stringify(counts)}`);
  assert.deepEqual(await answers(), ['waffle v1', 'waffle v1', 'waffle v1', 'waffle v1']);

  // The proxy saw the rollback's calls (a start), and no image pull among them.
  assert.ok(proxy.requests.some((q) => q.method === 'POST' && /\/containers\/[^/]+\/start$/.test(q.url)), 'the proxy recorded the rollback');
  assert.deepEqual(proxy.requests.filter((q) => q.url.includes('/images/create')), [], 'no image was pulled');
  assert.ok(!proxy.requests.some((q) => /\/containers\/create/.test(q.url)), 'no container was created');

  const now = await current();
  assert.equal(now.generation, 1);
  assert.equal(now.image, TEST_IMAGES.appV1);
  assert.deepEqual(await keptGenerations(), [2], 'the v2 container is kept in its turn');
  assert.equal((await apiContainers()).find((c) => c.generation === 2)!.id, before.id);
  assert.equal(pins().api?.generation, 1, 'the rollback is recorded as a pin');
  assert.match(r.stderr, /pinned to generation 1/);
});

test('the next apply leaves the pinned service alone, and the plan says so', async () => {
  const before = await current();
  const plan = await run(['plan', '--plain']);
  assert.equal(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, /pinned\s+api\s+pinned by rollback to generation 1 \(waffle rollback --release api\)/);
  assert.doesNotMatch(plan.stdout, /replace/);
  const json = await run(['plan', '--json']);
  assert.deepEqual(planFromJson(json.stdout).pins, [
    { service: 'api', generation: 1, state: 'held', detail: 'pinned by rollback to generation 1 (waffle rollback --release api)' },
  ]);
  const apply = await run(['apply', '--yes', '--plain']);
  assert.equal(apply.code, 0, apply.stderr + apply.stdout);
  assert.equal((await current()).id, before.id, 'the pinned container still serves');
  assert.deepEqual(await answers(2), ['waffle v1', 'waffle v1']);
});

test('--release: the next apply returns to the repository version', async () => {
  const rel = await run(['rollback', 'api', '--release', '--plain']);
  assert.equal(rel.code, 0, rel.stderr);
  assert.match(rel.stderr, /released api from generation 1/);
  assert.deepEqual(pins(), {});
  const apply = await run(['apply', '--yes', '--plain']);
  assert.equal(apply.code, 0, apply.stderr + apply.stdout);
  const now = await current();
  assert.equal(now.generation, 3);
  assert.equal(now.image, TEST_IMAGES.appV2);
  assert.deepEqual(await answers(2), ['waffle v2', 'waffle v2']);
  assert.deepEqual(await keptGenerations(), [1, 2]);
});

test('--to picks a generation; a change of the definition drops the pin and the plan says so', async () => {
  const r = await run(['rollback', 'api', '--to', '1', '--yes', '--json']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const events = parseNdjson(r.stdout);
  assert.ok(events.some((e) => e.type === 'op-done' && e.kind === 'rollback-service'), 'op-done of the rollback');
  assert.ok(events.every((e) => e.type !== 'pull-progress'));
  assert.equal((await current()).generation, 1);
  assert.equal(pins().api?.generation, 1);
  const unknown = await run(['rollback', 'api', '--to', '9', '--yes', '--plain']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /generation 9 of api is not kept \(kept: 3, 2\)\. Fix: choose a kept generation; see them with `waffle rollback --list api`/);
  // Bad input changes nothing and says what to do.
  const nope = await run(['rollback', 'nope', '--yes', '--plain']);
  assert.equal(nope.code, 1);
  assert.match(nope.stderr, /no service "nope" in project \S+; services: api, client\. Fix: use one of the names above/);
  const word = await run(['rollback', 'api', '--to', 'latest', '--yes']);
  assert.equal(word.code, 1);
  assert.match(word.stderr, /--to takes a generation number/);
  assert.equal((await current()).generation, 1, 'nothing changed');

  // A new commit that changes api's definition: the pin goes, the plan says why.
  writeFiles(repo, files({ image: TEST_IMAGES.appV2, version: 'c' }));
  gitCommitAll(repo, 'api: VERSION c');
  const plan = await run(['plan', '--plain']);
  assert.match(plan.stdout, /replace api/);
  assert.match(plan.stdout, /pin to generation 1 dropped: the definition changed since the rollback/);
  const apply = await run(['apply', '--yes', '--plain']);
  assert.equal(apply.code, 0, apply.stderr + apply.stdout);
  assert.deepEqual(pins(), {});
  assert.equal((await current()).generation, 4);
  assert.deepEqual(await answers(2), ['waffle v2', 'waffle v2']);
});

test('retention keeps exactly N kept containers, the newest generations', async () => {
  assert.deepEqual(await keptGenerations(), [1, 2, 3]);
  await deploy({ image: TEST_IMAGES.appV1, version: 'd' }, 'api: VERSION d');
  assert.deepEqual(await keptGenerations(), [2, 3, 4], 'the default keeps 3: generation 1 went');
  // Fewer to keep: the plan prunes the oldest without touching the service.
  const serving = await current();
  writeFiles(repo, files({ image: TEST_IMAGES.appV1, version: 'd', keep: 2 }));
  gitCommitAll(repo, 'keep 2');
  const plan = await run(['plan', '--plain']);
  assert.match(plan.stdout, /remove\s+api\s+\(kept generation 2: beyond the 2 kept for rollback\)/);
  const apply = await run(['apply', '--yes', '--plain']);
  assert.equal(apply.code, 0, apply.stderr + apply.stdout);
  assert.deepEqual(await keptGenerations(), [3, 4]);
  assert.equal((await current()).id, serving.id);
});

test('a kept container that is no longer healthy: the rollback fails with its health output and the current one keeps serving', async () => {
  const serving = await current();
  // Generation 4 (VERSION c) fails its healthcheck from now on.
  await execIn(docker, serving.id, ['touch', '/state/broken-c']);
  const r = await run(['rollback', 'api', '--yes', '--plain']);
  assert.equal(r.code, 1, r.stderr + r.stdout);
  assert.match(r.stderr, /did not become healthy/);
  assert.match(r.stderr, /last health output/);
  assert.match(r.stderr, /the current container keeps serving/);
  const now = await current();
  assert.equal(now.id, serving.id);
  assert.equal(now.state, 'running');
  assert.deepEqual(await answers(2), ['waffle v1', 'waffle v1']);
  assert.deepEqual(await keptGenerations(), [3, 4], 'the target is stopped and kept again');
  assert.deepEqual(pins(), {}, 'a failed rollback pins nothing');
});

test('destroy removes the kept containers and forgets the pins', async () => {
  const r = await run(['rollback', 'api', '--to', '3', '--yes', '--plain']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal(pins().api?.generation, 3);
  const d = await run(['destroy', '--yes', '--plain', '--volumes']);
  assert.equal(d.code, 0, d.stderr + d.stdout);
  assert.deepEqual(await apiContainers(), []);
  assert.equal(fs.existsSync(pinFile()), false);
});
