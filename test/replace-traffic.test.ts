/**
 * Linked clients during a replace, with real traffic: a `client` service linked to `api` (busybox
 * httpd with a healthcheck) requests http://api:8080/ in a loop from inside its container, by service
 * name through Docker's DNS, while `waffle apply` (the real CLI) replaces api.
 * - a failed deploy (the new version never becomes healthy): no request fails, and none reaches the
 *   new version (it never gets the service alias);
 * - a successful deploy: no request fails, and traffic moves to the new version.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, execIn, gitCommitAll, makeRepo, snapshot, uniqueProject, waffle, writeFiles } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';

let docker: Dockerode;
const project = uniqueProject('rt');
let repo: string;

function files(image: string, healthPath: string): Record<string, string> {
  return {
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
    'services/api.ts': `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${image}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  healthcheck: { http: '${healthPath}', interval: '300ms', timeout: '3s', retries: 5 },
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

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  repo = makeRepo(files(TEST_IMAGES.appV1, '/index.html'), { git: true });
  const first = await waffle(['apply', '--yes', '--plain'], { cwd: repo });
  assert.equal(first.code, 0, first.stderr + first.stdout);
});

after(async () => {
  await cleanupProject(docker, project);
  if (repo) fs.rmSync(repo, { recursive: true, force: true });
});

interface Traffic {
  ok: number;
  fail: number;
  v1: number;
  v2: number;
}

/**
 * Starts a request loop inside the client container: one `wget` after another to http://api:8080/
 * (`timeout 3` bounds each: busybox's own -T does not work with a DNS name). `stop()` ends it and
 * returns the counts: answered, failed (error, timeout or empty), and which version answered.
 */
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
  // The loop has answers before the deploy starts.
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

async function clientId(): Promise<string> {
  const snap = await snapshot(docker, project);
  const c = snap.containers.find((x) => x.name === `${project}-client`);
  assert.ok(c && c.state === 'running', `client runs: ${JSON.stringify(snap.containers.map((x) => [x.name, x.state]))}`);
  return c.id;
}

async function apiContainers() {
  return (await snapshot(docker, project)).containers.filter((c) => c.labels['dev.wafflemaker.service'] === 'api');
}

test('a failed deploy of api: linked clients never reach the broken version and no request fails', async () => {
  const client = await clientId();
  const [oldApi] = await apiContainers();
  // v2 answers on / but its healthcheck asks for a page that does not exist: never healthy.
  writeFiles(repo, files(TEST_IMAGES.appV2, '/missing-health'));
  gitCommitAll(repo, 'api v2, broken healthcheck');
  const traffic = await trafficFrom(client, 'failed');
  const t0 = Date.now();
  const r = await waffle(['apply', '--yes', '--plain'], { cwd: repo });
  const ms = Date.now() - t0;
  await new Promise((res) => setTimeout(res, 500));
  const counts = await traffic.stop();
  console.log(`# failed deploy (${ms} ms apply): ${JSON.stringify(counts)}`);
  assert.equal(r.code, 1, r.stderr + r.stdout);
  assert.match(r.stderr + r.stdout, /did not become healthy/);
  assert.equal(counts.fail, 0, `failed requests: ${JSON.stringify(counts)}`);
  assert.equal(counts.v2, 0, `requests answered by the never-healthy version: ${JSON.stringify(counts)}`);
  assert.ok(counts.ok > 100, `enough requests were made: ${JSON.stringify(counts)}`);
  const left = await apiContainers();
  assert.deepEqual(left.map((c) => c.id), [oldApi!.id], 'the old api container is the only one');
});

test('a successful deploy of api: no request fails and traffic moves to the new version', async () => {
  const client = await clientId();
  const [oldApi] = await apiContainers();
  writeFiles(repo, files(TEST_IMAGES.appV2, '/index.html'));
  gitCommitAll(repo, 'api v2');
  const traffic = await trafficFrom(client, 'ok');
  const t0 = Date.now();
  const r = await waffle(['apply', '--yes', '--plain'], { cwd: repo });
  const ms = Date.now() - t0;
  await new Promise((res) => setTimeout(res, 500));
  const counts = await traffic.stop();
  console.log(`# successful deploy (${ms} ms apply): ${JSON.stringify(counts)}`);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal(counts.fail, 0, `failed requests: ${JSON.stringify(counts)}`);
  assert.ok(counts.ok > 100, `enough requests were made: ${JSON.stringify(counts)}`);
  assert.ok(counts.v1 > 0 && counts.v2 > 0, `both versions answered during the deploy: ${JSON.stringify(counts)}`);
  const left = await apiContainers();
  assert.equal(left.length, 2);
  // The old one is kept stopped for rollback; the new one has the service's name.
  const serving = left.find((c) => c.name === `${project}-api`)!;
  assert.notEqual(serving.id, oldApi!.id);
  assert.equal(serving.state, 'running');
  assert.deepEqual(left.filter((c) => c !== serving).map((c) => [c.id, c.name, c.state]), [[oldApi!.id, `${project}-api-kept-1`, 'exited']]);
  // Afterwards every answer comes from the new version.
  const after = await execIn(docker, client, ['sh', '-c', 'for i in 1 2 3 4 5; do timeout 3 wget -q -O- http://api:8080/; done']);
  assert.equal((after.output.match(/waffle v2/g) ?? []).length, 5, after.output);
});
