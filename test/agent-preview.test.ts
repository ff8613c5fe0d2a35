/**
 * Pull-request previews against the real engine and a real bare repository (GitHub's API is a double):
 * a pull request that changes one service's image gets a success status and one comment with that
 * replace; a new push edits the same comment; a broken pull request gets its problems with file and
 * line; a newer commit stops the preview of the older; nothing is ever applied (the project's
 * containers, networks and volumes are exactly as before).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { Engine } from '../runtime/engine.ts';
import { PreviewRunner, type PreviewRequest } from '../runtime/agent/preview/preview.ts';
import { PreviewWorkspace } from '../runtime/agent/preview/workspace.ts';
import { githubPreviewPublisher, memoryState } from '../runtime/agent/preview/github.ts';
import { PREVIEW_MARKER } from '../runtime/agent/preview/report.ts';
import { cleanupProject, dockerClient, gitCommitAll, makeRepo, snapshot, uniqueProject, writeFiles, type Snapshot } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { GitHubDouble } from './doubles/github-double.ts';

const REPO = 'acme/infra';
const TOKEN = 'ghp_previewdouble';
const OTHER = 'ghp_someoneelse';
const project = uniqueProject('pv');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-preview-'));
const stateDir = path.join(tmp, 'state');
let docker: Dockerode;
let work: string;
let bare: string;
let github: GitHubDouble;
let engine: Engine;
let runner: PreviewRunner;
let before0: Snapshot;
const logs: Array<{ level: string; msg: string; fields?: object }> = [];

const git = (cwd: string, ...args: string[]) => {
  const r = spawnSync('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

const service = (image: string, extra = '') =>
  `import { defineService } from 'wafflemaker';\nexport default defineService({\n  image: '${image}',\n  command: ['sleep', '600'],\n  stopGracePeriod: '1s',${extra}\n});\n`;

/** Commits the files on the pull request's branch and pushes it as GitHub does (`refs/pull/<n>/head`). */
function pushPull(number: number, branch: string, files: Record<string, string>, message: string): string {
  git(work, 'checkout', '-q', '-B', branch, 'main');
  writeFiles(work, files);
  gitCommitAll(work, message);
  const sha = git(work, 'rev-parse', 'HEAD');
  git(work, 'push', '-q', '--force', bare, `HEAD:refs/heads/${branch}`, `HEAD:refs/pull/${number}/head`);
  git(work, 'checkout', '-q', 'main');
  return sha;
}

const request = (number: number, sha: string, head: string): PreviewRequest => ({ repo: REPO, number, sha, head, fork: false });

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  work = makeRepo(
    {
      'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
      'services/web.ts': service(TEST_IMAGES.appV1),
      'services/api.ts': service(TEST_IMAGES.busybox, `\n  env: { LOG_LEVEL: 'info' },`),
    },
    { git: true },
  );
  bare = path.join(tmp, 'origin.git');
  git(tmp, 'clone', '-q', '--bare', work, bare);
  engine = new Engine({ env: { ...process.env }, stateDir });
  // What runs now: the main branch, applied.
  const applied = await engine.apply({ dir: work });
  assert.equal(applied.ok, true);
  before0 = await snapshot(docker, project);
  assert.equal(before0.containers.length, 2);
  github = await new GitHubDouble().start();
  github.addRepo(REPO);
  github.addToken(TOKEN, { login: 'waffle-bot' });
  github.addToken(OTHER, { login: 'octocat' });
  runner = new PreviewRunner({
    engine,
    workspace: new PreviewWorkspace({ dir: path.join(stateDir, 'previews'), remote: bare }),
    publisher: githubPreviewPublisher({ repo: REPO, auth: { token: TOKEN }, baseUrl: github.url, state: memoryState() }),
    log: {
      info: (msg, fields) => logs.push({ level: 'info', msg, ...(fields ? { fields } : {}) }),
      warn: (msg, fields) => logs.push({ level: 'warn', msg, ...(fields ? { fields } : {}) }),
      error: (msg, fields) => logs.push({ level: 'error', msg, ...(fields ? { fields } : {}) }),
    },
    publicUrl: 'http://agent.example:8787',
    publishDelayMs: 50,
  });
});

after(async () => {
  await runner?.close();
  await github?.close();
  if (docker) await cleanupProject(docker, project);
  fs.rmSync(work, { recursive: true, force: true });
  fs.rmSync(tmp, { recursive: true, force: true });
});

const statusesOf = (sha: string) => github.statuses(REPO, sha).filter((s) => s.context === 'waffle/plan');
const commentsOn = (n: number) => github.issueComments(REPO, n);
const edits = (id: number) => github.requests.filter((r) => r.method === 'PATCH' && r.path === `/repos/${REPO}/issues/comments/${id}` && r.status === 200).length;

async function unchanged(): Promise<void> {
  const now = await snapshot(docker, project);
  assert.deepEqual(
    now.containers.map((c) => [c.id, c.name, c.state, c.image]),
    before0.containers.map((c) => [c.id, c.name, c.state, c.image]),
  );
  assert.deepEqual(now.networks, before0.networks);
  assert.deepEqual(now.volumes, before0.volumes);
}

test('a pull request that changes one image: a success status and one comment with that replace; nothing applied', async () => {
  const sha = pushPull(1, 'new-web', { 'services/web.ts': service(TEST_IMAGES.appV2) }, 'web: app 2');
  runner.submit(request(1, sha, 'acme:new-web'));
  await runner.idle();
  assert.deepEqual(
    statusesOf(sha).map((s) => [s.state, s.description]),
    [
      ['pending', `waffle plan: planning ${sha.slice(0, 7)}…`],
      ['success', 'waffle plan: 1 to replace'],
    ],
  );
  assert.equal(statusesOf(sha)[1]!.target_url, 'http://agent.example:8787');
  const comments = commentsOn(1);
  assert.equal(comments.length, 1);
  const body = comments[0]!.body;
  assert.ok(body.startsWith(PREVIEW_MARKER));
  assert.match(body, /\*\*replace\*\* `web`/);
  assert.match(body, new RegExp(`image: \`${TEST_IMAGES.appV1} → ${TEST_IMAGES.appV2}\``));
  assert.match(body, /1 unchanged: `api`/);
  assert.match(body, new RegExp(sha));
  await unchanged();
  // The worktree of the preview is gone; the repository of the previews stays for the next one.
  assert.deepEqual(fs.readdirSync(path.join(stateDir, 'previews')), ['repo.git']);
});

test('a new push to the pull request edits the same comment', async () => {
  const first = commentsOn(1)[0]!;
  const sha = pushPull(1, 'new-web', { 'services/web.ts': service(TEST_IMAGES.appV2), 'services/api.ts': service(TEST_IMAGES.busybox, `\n  env: { LOG_LEVEL: 'debug' },`) }, 'api: debug');
  runner.submit(request(1, sha, 'acme:new-web'));
  await runner.idle();
  assert.equal(statusesOf(sha).at(-1)!.state, 'success');
  assert.equal(statusesOf(sha).at(-1)!.description, 'waffle plan: 2 to replace');
  const comments = commentsOn(1);
  assert.equal(comments.length, 1, 'still one comment');
  assert.equal(comments[0]!.id, first.id);
  assert.equal(edits(first.id), 1);
  assert.match(comments[0]!.body, /\*\*replace\*\* `api`/);
  assert.match(comments[0]!.body, /env: `LOG_LEVEL changed`/);
  assert.match(comments[0]!.body, new RegExp(sha));
  await unchanged();
});

test('a broken pull request: a failure status and the problems with file and line; nothing applied', async () => {
  const broken = `import { defineService } from 'wafflemaker';\nexport default defineService({\n  image: '${TEST_IMAGES.busybox}',\n  command: ['sleep', '600'],\n  restart: 'sometimes',\n});\n`;
  const sha = pushPull(2, 'broken', { 'services/api.ts': broken }, 'api: broken');
  runner.submit(request(2, sha, 'acme:broken'));
  await runner.idle();
  const final = statusesOf(sha).at(-1)!;
  assert.equal(final.state, 'failure');
  assert.match(final.description!, /^waffle plan: \d+ problems?: services\/api\.ts:5:\d+: /);
  const comments = commentsOn(2);
  assert.equal(comments.length, 1);
  const body = comments[0]!.body;
  assert.match(body, /does not type-check/);
  assert.match(body, new RegExp(`\\[\`services/api\\.ts:5:\\d+\`\\]\\(https://github\\.com/${REPO}/blob/${sha}/services/api\\.ts#L5\\)`));
  assert.match(body, /restart/);
  await unchanged();
});

test('a newer commit of the same pull request stops the preview of the older one', async () => {
  const older = pushPull(3, 'race', { 'services/web.ts': service(TEST_IMAGES.appV2) }, 'older');
  const newer = pushPull(3, 'race', { 'services/web.ts': service(TEST_IMAGES.busybox) }, 'newer');
  runner.submit(request(3, older, 'acme:race'));
  const r = runner.submit(request(3, newer, 'acme:race'));
  assert.equal(r.stopped, older);
  await runner.idle();
  assert.ok(!statusesOf(older).some((s) => s.state === 'success' || s.state === 'failure'), JSON.stringify(statusesOf(older)));
  assert.equal(statusesOf(newer).at(-1)!.state, 'success');
  assert.equal(statusesOf(newer).at(-1)!.description, 'waffle plan: 1 to replace');
  const comments = commentsOn(3);
  assert.equal(comments.length, 1);
  assert.match(comments[0]!.body, new RegExp(newer));
  assert.doesNotMatch(comments[0]!.body, new RegExp(older));
  assert.ok(logs.some((l) => l.msg === 'preview stopped' && (l.fields as { sha?: string }).sha === older));
  await unchanged();
});

test("someone else's comment with the marker is left alone", async () => {
  const res = await fetch(`${github.url}/repos/${REPO}/issues/4/comments`, { method: 'POST', headers: { authorization: `token ${OTHER}`, 'content-type': 'application/json' }, body: JSON.stringify({ body: `${PREVIEW_MARKER}\nlooks good` }) });
  assert.equal(res.status, 201);
  const theirs = (await res.json()) as { body: string };
  const sha = pushPull(4, 'other', { 'services/web.ts': service(TEST_IMAGES.appV2) }, 'other');
  // Our identity is known from the comments we wrote before.
  runner.submit(request(4, sha, 'acme:other'));
  await runner.idle();
  const comments = commentsOn(4);
  assert.equal(comments.length, 2);
  assert.equal(comments[0]!.body, theirs.body);
  assert.equal(comments[1]!.user.login, 'waffle-bot');
});

test('previews wait while deploys run or wait, and a deploy that starts pauses the running one, which runs again', async () => {
  let release!: () => void;
  let idle = new Promise<void>((r) => (release = r));
  const paused: string[] = [];
  const gated = new PreviewRunner({
    engine,
    workspace: new PreviewWorkspace({ dir: path.join(stateDir, 'previews-gated'), remote: bare }),
    publisher: githubPreviewPublisher({ repo: REPO, auth: { token: TOKEN }, baseUrl: github.url, state: memoryState() }),
    log: { info: (msg, f) => msg === 'preview paused for a deploy' && paused.push((f as { sha: string }).sha), warn: () => {}, error: () => {} },
    deploysIdle: () => idle,
  });
  try {
    const sha = pushPull(8, 'gated', { 'services/web.ts': service(TEST_IMAGES.appV2) }, 'gated');
    gated.submit(request(8, sha, 'acme:gated'));
    // A deploy is running: nothing of the preview happens, not even its pending status.
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(statusesOf(sha), []);
    assert.equal(gated.length, 1);
    // The deploy is done; the preview starts, and a new deploy starting pauses it at once.
    release();
    await new Promise<void>((r) => {
      const t = setInterval(() => {
        if (gated.queue.running) {
          clearInterval(t);
          r();
        }
      }, 5);
    });
    gated.preempt();
    await gated.idle();
    assert.deepEqual(paused, [sha]);
    assert.equal(statusesOf(sha).at(-1)!.state, 'success');
    assert.equal(statusesOf(sha).at(-1)!.description, 'waffle plan: 1 to replace');
    assert.equal(commentsOn(8).length, 1);
  } finally {
    idle = Promise.resolve();
    await gated.close();
  }
  await unchanged();
});
