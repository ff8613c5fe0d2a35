/**
 * Data on stdout, everything else on stderr: `waffle plan`'s text is its result, so `waffle plan > plan.txt`
 * and `| less` get it (progress and problems stay on stderr; `--json` is unchanged); `waffle status`
 * piped keeps whole lines (a long image name is not cut at any width). Both against the real engine.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, makeRepo, parseNdjson, uniqueProject, waffle } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';

const project = uniqueProject('output');
// Longer than any terminal's width that the table used to assume (120 columns).
const LONG_IMAGE = `waffle-test/${'very-long-repository-name-'.repeat(6)}busybox:with-a-long-tag-${Date.now()}`;
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-state-'));
const env = { WAFFLE_STATE_DIR: stateDir };
let docker: Dockerode;
let repo: string;

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  const [repoName, tag] = [LONG_IMAGE.slice(0, LONG_IMAGE.lastIndexOf(':')), LONG_IMAGE.slice(LONG_IMAGE.lastIndexOf(':') + 1)];
  await docker.getImage(TEST_IMAGES.busybox).tag({ repo: repoName, tag });
  repo = makeRepo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
    'services/app.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: '${LONG_IMAGE}', command: ['sleep', '600'], stopGracePeriod: '1s' });\n`,
  });
});

after(async () => {
  await cleanupProject(docker, project);
  await docker.getImage(LONG_IMAGE).remove().catch(() => undefined);
  fs.rmSync(repo, { recursive: true, force: true });
  fs.rmSync(stateDir, { recursive: true, force: true });
});

test('waffle plan prints the plan on stdout, whole; progress and messages stay on stderr; --json unchanged', async () => {
  const r = await waffle(['plan', '--detailed-exitcode'], { cwd: repo, env });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stdout, new RegExp(`Plan for ${project}`));
  assert.match(r.stdout, /create\s+app/);
  assert.ok(r.stdout.includes(LONG_IMAGE), `the image name is not cut without a terminal:\n${r.stdout}`);
  assert.doesNotMatch(r.stderr, /Plan for|create\s+app/, 'the plan is not on stderr');
  assert.doesNotMatch(r.stdout, /\x1b\[/, 'no colour in a pipe');

  const plain = await waffle(['plan', '--plain'], { cwd: repo, env });
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /create\s+app/);
  assert.doesNotMatch(plain.stderr, /create\s+app/);

  const json = await waffle(['plan', '--json'], { cwd: repo, env });
  assert.equal(json.code, 0, json.stderr);
  const events = parseNdjson(json.stdout);
  assert.ok(events.length > 0 && events.every((e) => typeof e.type === 'string' && typeof e.run === 'string'), 'stdout is NDJSON events only');
  assert.ok(events.some((e) => e.type === 'plan-ready'));
  assert.doesNotMatch(json.stdout, /Plan for/);

  // A plan that fails prints nothing on stdout: the problems go to stderr.
  const broken = makeRepo({ 'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 42 });\n` });
  try {
    const bad = await waffle(['plan'], { cwd: broken, env });
    assert.equal(bad.code, 1);
    assert.equal(bad.stdout, '');
    assert.match(bad.stderr, /project/);
  } finally {
    fs.rmSync(broken, { recursive: true, force: true });
  }
});

test('waffle status piped does not truncate: the whole image name and every column', async () => {
  const applied = await waffle(['apply', '--yes', '--plain'], { cwd: repo, env });
  assert.equal(applied.code, 0, applied.stderr);
  const r = await waffle(['status'], { cwd: repo, env });
  assert.equal(r.code, 0, r.stderr);
  const row = r.stdout.split('\n').find((l) => l.startsWith('app '));
  assert.ok(row, r.stdout);
  assert.ok(row.includes(LONG_IMAGE), `whole image name in:\n${row}`);
  assert.ok(row.length > 120, 'wider than the old 120-column limit');
  assert.doesNotMatch(r.stdout, /…/, 'nothing cut');
  assert.match(row, /\brunning\b/);
});
