/**
 * Zero-downtime deploys through a real Caddy, under load: a bounded client keeps several requests in
 * flight through Caddy (each on a connection of its own) while `waffle apply` (the real CLI) deploys a
 * routed service 20 times in a row, alternating app:1 and app:2. No request fails, every deploy moves
 * the answers from the old version to the new one and never back; then a new version that never becomes
 * healthy: no request fails, every answer comes from the old version, and apply exits non-zero with the
 * health output.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, gitCommitAll, makeRepo, snapshot, uniqueProject, waffle, writeFiles } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { loadThrough, requestThrough, startCaddy, until, type Caddy } from './caddy.ts';

let docker: Dockerode;
let caddy: Caddy;
const project = uniqueProject('id');
let repo: string;
let stateDir: string;
const env = () => ({ WAFFLE_STATE_DIR: stateDir });
const DOMAIN = 'app.test';

function files(image: string, healthPath = '/index.html'): Record<string, string> {
  return {
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';
export default defineConfig({ project: '${project}', ingress: { caddy: { admin: '${caddy.admin}' }, tls: 'internal', drainSeconds: 0.5 } });
`,
    'services/app.ts': `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${image}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  routes: [{ domain: '${DOMAIN}' }],
  healthcheck: { http: '${healthPath}', interval: '200ms', timeout: '2s', retries: 5 },
  stopGracePeriod: '1s',
});
`,
  };
}

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  caddy = await startCaddy();
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-state-'));
  repo = makeRepo(files(TEST_IMAGES.appV1), { git: true });
  const first = await waffle(['apply', '--yes', '--plain'], { cwd: repo, env: env() });
  assert.equal(first.code, 0, first.stderr + first.stdout);
  await until(caddy, DOMAIN, '/', (r) => r.body === 'waffle v1\n');
});

after(async () => {
  await cleanupProject(docker, project);
  await caddy?.stop();
  if (repo) fs.rmSync(repo, { recursive: true, force: true });
  if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
});

/** Keeps `inFlight` requests going through Caddy until stopped (see `loadThrough`). */
const load = (inFlight: number) => loadThrough(caddy, DOMAIN, '/', inFlight, 10_000);

test('20 consecutive deploys of a routed service under load: no request fails, answers move old → new', async () => {
  const traffic = load(4);
  const deploys: Array<{ from: string; to: string; start: number; end: number }> = [];
  try {
    for (let i = 0; i < 20; i++) {
      const to = i % 2 === 0 ? 'v2' : 'v1';
      writeFiles(repo, files(to === 'v2' ? TEST_IMAGES.appV2 : TEST_IMAGES.appV1));
      gitCommitAll(repo, `app ${to}`);
      const start = Date.now();
      const r = await waffle(['apply', '--yes', '--plain'], { cwd: repo, env: env() });
      const end = Date.now();
      assert.equal(r.code, 0, `deploy ${i + 1}: ${r.stderr}${r.stdout}`);
      assert.match(r.stderr + r.stdout, /replace/);
      deploys.push({ from: to === 'v2' ? 'v1' : 'v2', to, start, end });
      // Right after apply returns, the proxy answers with the new version.
      assert.equal((await requestThrough(caddy, DOMAIN, '/')).body, `waffle ${to}\n`, `deploy ${i + 1}`);
      // The load has answers sent after this deploy before the next one starts.
      while (traffic.answers.filter((a) => a.start > end).length < 8) await new Promise((res) => setTimeout(res, 20));
    }
  } finally {
    var answers = await traffic.stop();
  }
  const failed = answers.filter((a) => !a.ok);
  console.log(`# ${answers.length} requests through Caddy during 20 deploys, ${failed.length} failed, ${answers.filter((a) => a.retried).length} sent again after a connection reset`);
  assert.equal(failed.length, 0, `failed requests: ${JSON.stringify(failed.slice(0, 5))}`);
  assert.ok(answers.length > 200, `enough requests were made: ${answers.length}`);
  for (const [i, d] of deploys.entries()) {
    const next = deploys[i + 1]?.start ?? Infinity;
    // A request sent after the deploy returned is answered by the new version, until the next deploy starts.
    const after = answers.filter((a) => a.start > d.end && a.end < next);
    assert.ok(after.length > 0, `requests after deploy ${i + 1}`);
    assert.deepEqual([...new Set(after.map((a) => a.version))], [d.to], `after deploy ${i + 1} (${d.from} → ${d.to})`);
    // Before it started, the old version answered.
    const prev = deploys[i - 1]?.end ?? 0;
    const before = answers.filter((a) => a.start > prev && a.end < d.start);
    assert.deepEqual([...new Set(before.map((a) => a.version))], before.length ? [d.from] : [], `before deploy ${i + 1}`);
    // During the deploy: the old version, then the new one, and never back.
    const during = answers.filter((a) => a.start >= d.start && a.end <= d.end).sort((a, b) => a.start - b.start);
    const firstNew = during.findIndex((a) => a.version === d.to);
    if (firstNew >= 0) {
      const backToOld = during.slice(firstNew).filter((a) => a.version === d.from && a.start > during[firstNew]!.end);
      assert.equal(backToOld.length, 0, `deploy ${i + 1}: a request sent after the new version answered got the old one`);
    }
  }
  // One container left: the last version, under the usual name.
  // One container serves: the last version, under the usual name (the others are stopped, kept for rollback).
  const left = (await snapshot(docker, project)).containers.filter((c) => c.state === 'running');
  assert.deepEqual(left.map((c) => c.name), [`${project}-app`]);
});

test('a new version that never becomes healthy: no request fails, all from the old version, apply exits non-zero with the health output', async () => {
  const current = (await requestThrough(caddy, DOMAIN, '/')).body.trim().split(' ')[1]!;
  const broken = current === 'v1' ? TEST_IMAGES.appV2 : TEST_IMAGES.appV1;
  const serving = async () => (await snapshot(docker, project)).containers.filter((c) => c.state === 'running');
  const [oldApp] = await serving();
  writeFiles(repo, files(broken, '/missing-health'));
  gitCommitAll(repo, 'app with a broken healthcheck');
  const traffic = load(4);
  const r = await waffle(['apply', '--yes', '--plain'], { cwd: repo, env: env() });
  await new Promise((res) => setTimeout(res, 300));
  const answers = await traffic.stop();
  assert.equal(r.code, 1, r.stderr + r.stdout);
  assert.match(r.stderr + r.stdout, /did not become healthy/);
  // The healthcheck's own output (wget's 404) is in what apply printed.
  assert.match(r.stderr + r.stdout, /404/);
  const failed = answers.filter((a) => !a.ok);
  assert.equal(failed.length, 0, `failed requests: ${JSON.stringify(failed.slice(0, 5))}`);
  assert.ok(answers.length > 20, `enough requests were made: ${answers.length}`);
  assert.deepEqual([...new Set(answers.map((a) => a.version))], [current], 'every answer came from the old version');
  assert.deepEqual((await serving()).map((c) => c.id), [oldApp!.id], 'the old container is the only one running');
  assert.ok(!(await snapshot(docker, project)).containers.some((c) => /-next-/.test(c.name)), 'the new container was removed');
  // The route never moved: the plan still wants to replace app, and Caddy holds nothing to put back.
  const plan = await waffle(['plan', '--plain'], { cwd: repo, env: env() });
  assert.doesNotMatch(plan.stderr + plan.stdout, /proxy/);
});

test('waffle rollback of a routed service goes through Caddy under load: no request fails, answers move back, the next apply leaves it pinned', async () => {
  // The broken definition of the previous test is still in the repository: the service stays on the old container.
  const now = (await requestThrough(caddy, DOMAIN, '/')).body.trim().split(' ')[1]!;
  const previous = now === 'v1' ? 'v2' : 'v1';
  const traffic = load(4);
  const r = await waffle(['rollback', 'app', '--yes', '--plain'], { cwd: repo, env: env() });
  const end = Date.now();
  while (traffic.answers.filter((a) => a.start > end).length < 8) await new Promise((res) => setTimeout(res, 20));
  const answers = await traffic.stop();
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stderr + r.stdout, /routing/);
  const failed = answers.filter((a) => !a.ok);
  assert.equal(failed.length, 0, `failed requests: ${JSON.stringify(failed.slice(0, 5))}`);
  assert.deepEqual([...new Set(answers.filter((a) => a.start > end).map((a) => a.version))], [previous], 'answers came from the rolled-back version after the rollback');
  assert.equal((await requestThrough(caddy, DOMAIN, '/')).body, `waffle ${previous}\n`);
  // The pinned service is left alone by the next plan, and Caddy holds what that plan wants.
  const plan = await waffle(['plan', '--plain', '--detailed-exitcode'], { cwd: repo, env: env() });
  assert.match(plan.stderr + plan.stdout, /pinned/);
  assert.doesNotMatch(plan.stderr + plan.stdout, /proxy/);
});
