/**
 * A new version whose healthcheck fails leaves the old container serving, and `apply` exits non-zero
 * with the health output. Both strategies: start-first (no fixed port) and stop-first (fixed host port).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, freePort, gitCommitAll, httpGet, makeRepo, snapshot, uniqueProject, waffle, writeFiles } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';

let docker: Dockerode;
const projects: string[] = [];
const dirs: string[] = [];

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
});

after(async () => {
  for (const p of projects) await cleanupProject(docker, p);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function repoFor(project: string, image: string, healthPath: string, ports: string) {
  return {
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
    'services/app.ts': `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${image}',
  command: ['httpd', '-f', '-v', '-p', '8080', '-h', '/www'],
  port: 8080,
  ${ports}
  healthcheck: { http: '${healthPath}', interval: '300ms', timeout: '1s', retries: 2 },
});
`,
  };
}

for (const fixedPort of [false, true]) {
  const label = fixedPort ? 'stop-first (fixed host port)' : 'start-first';
  test(`failed health gate keeps the old version serving: ${label}`, async () => {
    const project = uniqueProject('hf');
    projects.push(project);
    const port = await freePort();
    const ports = fixedPort ? `ports: ['127.0.0.1:${port}:8080'],` : '';
    const repo = makeRepo(repoFor(project, TEST_IMAGES.appV1, '/index.html', ports), { git: true });
    dirs.push(repo);
    const first = await waffle(['apply', '--yes'], { cwd: repo });
    assert.equal(first.code, 0, first.stderr);
    const before = await snapshot(docker, project);
    assert.equal(before.containers.length, 1);
    const oldId = before.containers[0].id;

    // v2 points its healthcheck at a page that does not exist: it never becomes healthy.
    writeFiles(repo, repoFor(project, TEST_IMAGES.appV2, '/missing-health', ports));
    gitCommitAll(repo, 'v2 with a broken healthcheck');
    const plan = await waffle(['plan'], { cwd: repo });
    assert.match(plan.stdout, fixedPort ? /stop-first/ : /start-first/);
    const r = await waffle(['apply', '--yes'], { cwd: repo });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /app/);
    assert.match(r.stderr, /health/i);
    assert.match(r.stderr, /404|Not Found|server returned error/i, 'the health output is shown');
    assert.match(r.stderr, /services\/app\.ts/, 'names where the service is defined');

    const afterSnap = await snapshot(docker, project);
    assert.equal(afterSnap.containers.length, 1, `containers: ${afterSnap.containers.map((c) => c.name)}`);
    const c = afterSnap.containers[0];
    assert.equal(c.id, oldId, 'the old container is still the one');
    assert.equal(c.name, `${project}-app`);
    assert.equal(c.state, 'running');
    assert.equal(c.image, TEST_IMAGES.appV1);
    if (fixedPort) {
      const page = await httpGet(`http://127.0.0.1:${port}/`);
      assert.equal(page.status, 200);
      assert.match(page.body, /waffle v1/);
    }
    // A later apply still wants the change (nothing was recorded as done).
    const again = await waffle(['plan', '--detailed-exitcode'], { cwd: repo });
    assert.equal(again.code, 2, again.stderr);
    fs.rmSync(path.join(repo, '.waffle'), { recursive: true, force: true });
  });
}
