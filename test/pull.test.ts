/**
 * Images missing from the engine are pulled from the real registry (Debian's docker-registry on
 * 127.0.0.1) before anything else happens, with progress events; the service then runs.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, makeRepo, parseNdjson, snapshot, uniqueProject, waffle } from './helpers.ts';
import { buildBusyboxImage, ensureTestImages } from './engine.ts';
import { pushImage, removeLocalImage, startRegistry, type Registry } from './registry.ts';

let docker: Dockerode;
let registry: Registry;
const project = uniqueProject('pull');
let repo: string;
let remote: string;

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  registry = await startRegistry();
  remote = `${registry.host}/waffle/${project}:1`;
  // An image with a layer of its own (a unique page and 4 MiB of random bytes), so the pull really downloads.
  const local = `waffle-test/pull-${project}:1`;
  await buildBusyboxImage(process.env.DOCKER_HOST!, local, project, { payloadBytes: 4 * 1024 * 1024 });
  pushImage(process.env.DOCKER_HOST!, local, remote);
  removeLocalImage(process.env.DOCKER_HOST!, remote);
  removeLocalImage(process.env.DOCKER_HOST!, local);
  repo = makeRepo(
    {
      'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
      'services/app.ts': `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${remote}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  healthcheck: { http: '/', interval: '500ms', retries: 10 },
});
`,
    },
    { git: true },
  );
});

after(async () => {
  await cleanupProject(docker, project);
  removeLocalImage(process.env.DOCKER_HOST!, remote);
  await registry?.stop();
  fs.rmSync(repo, { recursive: true, force: true });
});

test('a missing image is pulled from the registry first, with progress events', async () => {
  await assert.rejects(docker.getImage(remote).inspect(), 'the image is not in the engine before apply');
  const plan = await waffle(['plan'], { cwd: repo });
  assert.match(plan.stdout, /pull 1 image/);
  assert.ok(plan.stdout.includes(remote), plan.stdout);

  const r = await waffle(['apply', '--yes', '--json'], { cwd: repo });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const events = parseNdjson(r.stdout);
  const pullStart = events.findIndex((e) => e.type === 'op-start' && e.kind === 'pull-image');
  const pullDone = events.findIndex((e) => e.type === 'op-done' && e.kind === 'pull-image');
  const firstCreate = events.findIndex((e) => e.type === 'op-start' && e.kind === 'create-service');
  assert.ok(pullStart >= 0 && pullDone > pullStart, 'pull-image ran');
  assert.ok(firstCreate > pullDone, 'containers are created only after the pull');
  const progress = events.filter((e) => e.type === 'pull-progress');
  assert.ok(progress.length > 0, 'pull progress events');
  const last = progress.at(-1)!;
  assert.equal(last.image, remote);
  assert.ok((last.layers as number) >= 1, JSON.stringify(progress));
  assert.ok((last.total as number) >= 4_000_000, `bytes to download are known: ${last.total}`);
  assert.equal(last.current, last.total, 'all bytes downloaded at the end');
  assert.equal(last.layersDone, last.layers, 'every layer done at the end');

  const image = await docker.getImage(remote).inspect();
  assert.ok(image.Id);
  const snap = await snapshot(docker, project);
  assert.equal(snap.containers.length, 1);
  assert.equal(snap.containers[0].state, 'running');
  assert.equal(snap.containers[0].image, remote);

  const again = await waffle(['plan', '--detailed-exitcode'], { cwd: repo });
  assert.equal(again.code, 0, 'nothing left to pull or change');
});
