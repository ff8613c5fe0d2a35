/**
 * One change at a time per project: while another waffle holds the project's lock, apply and destroy
 * refuse at once, say who holds it, and change nothing; a lock left by a dead holder expires.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { withProjectLock } from '../runtime/lock.ts';
import { cleanupProject, dockerClient, makeRepo, snapshot, uniqueProject, waffle } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';

const project = uniqueProject('lock');
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-state-'));
const env = { WAFFLE_STATE_DIR: stateDir };
let docker: Dockerode;
let repo: string;

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  repo = makeRepo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
    'services/app.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: '${TEST_IMAGES.busybox}', command: ['sleep', '600'], stopGracePeriod: '1s' });\n`,
  });
});

after(async () => {
  await cleanupProject(docker, project);
  fs.rmSync(repo, { recursive: true, force: true });
  fs.rmSync(stateDir, { recursive: true, force: true });
});

test('apply and destroy refuse while another waffle holds the lock, naming it; nothing changes', async () => {
  await withProjectLock(
    project,
    'apply',
    async () => {
      const r = await waffle(['apply', '--yes'], { cwd: repo, env });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`project "${project}" is being changed by another waffle \\(apply, pid ${process.pid}`));
      assert.match(r.stderr, /Nothing was changed/);
      assert.deepEqual(await snapshot(docker, project), { containers: [], networks: [], volumes: [] });
      const d = await waffle(['destroy', '--yes'], { cwd: repo, env });
      assert.equal(d.code, 1, d.stderr);
      assert.match(d.stderr, /being changed by another waffle/);
    },
    { env },
  );
  // Released: the same apply goes through.
  const r = await waffle(['apply', '--yes'], { cwd: repo, env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await snapshot(docker, project)).containers.length, 1);
});

test('a lock whose holder died is taken over once it is stale', async () => {
  const dir = path.join(stateDir, project);
  fs.mkdirSync(path.join(dir, 'apply.lock'), { recursive: true });
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(dir, 'apply.lock'), old, old);
  const r = await waffle(['destroy', '--yes'], { cwd: repo, env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await snapshot(docker, project)).containers.length, 0);
  assert.equal(fs.existsSync(path.join(dir, 'apply.lock')), false, 'released after use');
});
