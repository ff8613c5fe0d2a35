/**
 * `waffle status` against real containers: after a crash a project can hold a second container of a
 * service, a replacement's temporary container, or a container with our project label and no service.
 * Status shows every one of them, marked, with what the next apply does — and the next apply does it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { render } from 'ink-testing-library';
import { cleanupProject, dockerClient, freePort, makeRepo, snapshot, uniqueProject, waffle } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { setupUi } from './ui-helpers.ts';

const project = uniqueProject('status');
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-state-'));
const env = { WAFFLE_STATE_DIR: stateDir };
let docker: Dockerode;
let repo: string;

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  await setupUi();
  const port = await freePort();
  const svc = (extra = '') =>
    `import { defineService } from 'wafflemaker';\nexport default defineService({ image: '${TEST_IMAGES.busybox}', command: ['sleep', '600'], stopGracePeriod: '1s'${extra} });\n`;
  repo = makeRepo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
    'services/app.ts': svc(),
    'services/web.ts': svc(`, ports: ['127.0.0.1:${port}:8080']`),
  });
});

after(async () => {
  await cleanupProject(docker, project);
  fs.rmSync(repo, { recursive: true, force: true });
  fs.rmSync(stateDir, { recursive: true, force: true });
});

/** A container made by hand (as a crash would leave it), with the labels given. */
async function handMade(name: string, labels: Record<string, string>): Promise<void> {
  const c = await docker.createContainer({ name, Image: TEST_IMAGES.busybox, Cmd: ['sleep', '600'], Labels: labels, StopTimeout: 1 });
  await c.start();
}

interface JsonRow {
  service: string | null;
  container: string | null;
  state: string;
  marks: string[];
  note?: string;
}

test('status shows every container of the project: duplicates, temporary names and containers without a service, each with the fix', async () => {
  const applied = await waffle(['apply', '--yes', '--plain'], { cwd: repo, env });
  assert.equal(applied.code, 0, applied.stderr);
  const app = (await snapshot(docker, project)).containers.find((c) => c.name === `${project}-app`);
  assert.ok(app, 'apply created the app container');
  const appLabels = app.labels;

  await handMade(`${project}-app-copy`, appLabels);
  await handMade(`${project}-app-next-2`, { ...appLabels, 'dev.wafflemaker.generation': '2' });
  await handMade(`${project}-stray`, { 'dev.wafflemaker.project': project });

  // JSON: one row per container, marked, with the note.
  const js = await waffle(['status', '--json'], { cwd: repo, env });
  assert.equal(js.code, 0, js.stderr);
  const rows = (JSON.parse(js.stdout) as { services: JsonRow[] }).services;
  assert.deepEqual(
    rows.map((r) => [r.service, r.container, r.state, r.marks.join('+')]),
    [
      ['app', `${project}-app`, 'running', ''],
      ['app', `${project}-app-copy`, 'running', 'duplicate'],
      ['app', `${project}-app-next-2`, 'running', 'temporary+duplicate'],
      ['web', `${project}-web`, 'running', ''],
      [null, `${project}-stray`, 'running', 'no-service'],
    ],
  );
  assert.equal(rows[1].note, `${project}-app-copy: the next apply keeps one of the 3 containers of "app" and removes the others (another container of "app" besides ${project}-app)`);
  assert.equal(rows[4].note, `${project}-stray: removed by the next apply (our project label but no service label)`);

  // Plain table: every container, with markers and the notes.
  const plain = await waffle(['status', '--plain'], { cwd: repo, env });
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.stdout.split('\n').filter((l) => /^app\b/.test(l)).length, 3, plain.stdout);
  assert.match(plain.stdout, /^app \(temporary, duplicate\)\s+running/m);
  assert.match(plain.stdout, /^app \(duplicate\)\s+running/m);
  assert.match(plain.stdout, /^\(no service\)\s+running/m);
  assert.match(plain.stdout, /^web\s+running\s+\S+\s+\S+\s+\S+\s+\S+\s+127\.0\.0\.1:\d+->8080\/tcp$/m);
  assert.match(plain.stdout, /^3 containers out of the ordinary:$/m);
  for (const name of ['app-next-2', 'app-copy']) assert.match(plain.stdout, new RegExp(`^  ${project}-${name}: the next apply keeps one of the 3 containers of "app" and removes the others`, 'm'));
  assert.match(plain.stdout, new RegExp(`^  ${project}-stray: removed by the next apply`, 'm'));

  // The Ink table draws the same real rows.
  const { StatusTable } = await import('../cli/ui/StatusTable.tsx');
  const { statusRows } = await import('../cli/status.ts');
  const { observe } = await import('../runtime/docker/observe.ts');
  const graph = { project, services: { app: {}, web: {} } } as unknown as Parameters<typeof statusRows>[0];
  const frame = render(StatusTable({ project, rows: statusRows(graph, await observe(docker, project), Date.now()), width: 120 })).lastFrame()!;
  assert.match(frame, /^app \(temporary, duplicate\)\s+running/m);
  assert.match(frame, /^\(no service\)\s+running/m);
  assert.match(frame, new RegExp(`^  ${project}-stray: removed by the next apply \\(our project label but no service label\\)`, 'm'));

  // What the notes promise: the next apply keeps one container of app (the usual one: all three have its
  // configuration) and removes the stray.
  const again = await waffle(['apply', '--yes', '--plain'], { cwd: repo, env });
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(
    (await snapshot(docker, project)).containers.map((c) => c.name),
    [`${project}-app`, `${project}-web`],
  );
  const clean = await waffle(['status', '--plain'], { cwd: repo, env });
  assert.doesNotMatch(clean.stdout, /out of the ordinary/);
});
