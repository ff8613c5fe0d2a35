/**
 * Pull-request previews through the real `waffle agent`: signed `pull_request` deliveries on the same
 * webhook, a real bare repository holding `refs/pull/<n>/head` as GitHub does, the real engine, and
 * GitHub's API as a double. A pull request changing one image gets a status and a comment with that
 * replace; a new push edits the same comment; a broken one gets its problems with file and line; a
 * fork is not previewed by default; nothing is deployed or changed in Docker by any of it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, snapshot, uniqueProject, type Snapshot } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { config, deliver, git, GITHUB_REPO, makeRemote, startAgent, tempRoot, waitFor, webService, type Remote, type RunningAgent } from './agent-support.ts';
import { GitHubDouble } from './doubles/github-double.ts';

const project = uniqueProject('agp');
const GH_TOKEN = 'ghp_agentpreviews';
let docker: Dockerode;
let root: string;
let remote: Remote;
let agent: RunningAgent;
let github: GitHubDouble;
let before0: Snapshot;

const worker = (level: string) =>
  `import { defineService } from 'wafflemaker';\nexport default defineService({ image: '${TEST_IMAGES.busybox}', command: ['sleep', '600'], env: { LOG_LEVEL: '${level}' }, stopGracePeriod: '1s' });\n`;

/** Commits on the pull request's branch and pushes it, plus `refs/pull/<n>/head` as GitHub keeps it. */
function pushPull(number: number, branch: string, files: Record<string, string>): string {
  // A later push continues the branch (a fast-forward, as a push to a pull request is).
  const exists = git(remote.work, 'branch', '--list', branch) !== '';
  git(remote.work, 'checkout', '-q', ...(exists ? [branch] : ['-b', branch, 'main']));
  const sha = remote.commit(files, `pull ${number}`, branch);
  git(remote.work, 'push', '-q', '--force', 'origin', `HEAD:refs/pull/${number}/head`);
  git(remote.work, 'checkout', '-q', 'main');
  return sha;
}

function prPayload(number: number, sha: string, action: string, opts: { fork?: string } = {}): string {
  const head = opts.fork ?? GITHUB_REPO;
  return JSON.stringify({
    action,
    number,
    pull_request: {
      number,
      state: action === 'closed' ? 'closed' : 'open',
      head: { sha, ref: `pull-${number}`, label: `${head.split('/')[0]}:pull-${number}`, repo: { full_name: head } },
      base: { ref: 'main', sha: '0'.repeat(40), repo: { full_name: GITHUB_REPO } },
    },
    repository: { full_name: GITHUB_REPO, name: GITHUB_REPO.split('/')[1] },
    sender: { login: 'octocat' },
  });
}

const planStatuses = (sha: string) => github.statuses(GITHUB_REPO, sha).filter((s) => s.context === 'waffle/plan');
const finalStatus = (sha: string) => waitFor(`the preview of ${sha.slice(0, 7)}`, () => planStatuses(sha).find((s) => s.state !== 'pending'), 90_000);

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  root = tempRoot('waffle-agent-preview-');
  github = await new GitHubDouble().start();
  github.addRepo(GITHUB_REPO);
  github.addToken(GH_TOKEN, { login: 'waffle-bot' });
  const tokenFile = path.join(root, 'gh-token');
  fs.writeFileSync(tokenFile, GH_TOKEN + '\n', { mode: 0o600 });
  remote = makeRemote(root, { 'waffle.config.ts': config(project), 'services/web.ts': webService(1), 'services/worker.ts': worker('info') });
  agent = await startAgent({
    root,
    repo: remote.bare,
    stateDir: path.join(root, 'state'),
    args: ['--github-token-file', tokenFile, '--github-api-url', github.url, '--public-url', 'https://deploy.example.test'],
  });
  // The start-up reconcile deploys main: that is what runs now, what previews compare with.
  await waitFor('the start-up deploy', async () => {
    const r = await agent.api<{ deployments: Array<{ state: string }> }>('GET', '/deployments');
    return r.json.deployments[0]?.state === 'applied';
  }, 120_000);
  before0 = await snapshot(docker, project);
  assert.equal(before0.containers.length, 2);
});

after(async () => {
  await agent?.stop().catch(() => undefined);
  await github?.close();
  if (docker) await cleanupProject(docker, project);
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

async function nothingChanged(): Promise<void> {
  const now = await snapshot(docker, project);
  assert.deepEqual(now.containers.map((c) => [c.id, c.state, c.image]), before0.containers.map((c) => [c.id, c.state, c.image]));
  assert.deepEqual([now.networks, now.volumes], [before0.networks, before0.volumes]);
  const r = await agent.api<{ deployments: unknown[] }>('GET', '/deployments');
  assert.equal(r.json.deployments.length, 1, 'only the start-up deploy: a preview never deploys');
}

let commentId: number;

test('a pull request that changes one image: a status and a comment with that replace', async () => {
  const sha = pushPull(5, 'pull-5', { 'services/web.ts': webService(2) });
  const r = await deliver(agent.url, { event: 'pull_request', body: prPayload(5, sha, 'opened') });
  assert.equal(r.status, 202);
  assert.deepEqual(r.json, { status: 'previewing', pull: 5, commit: sha });
  const st = await finalStatus(sha);
  assert.equal(st.state, 'success');
  assert.equal(st.description, 'waffle plan: 1 to replace');
  assert.equal(st.target_url, 'https://deploy.example.test');
  assert.equal(st.creator.login, 'waffle-bot');
  const comments = github.issueComments(GITHUB_REPO, 5);
  assert.equal(comments.length, 1);
  assert.match(comments[0]!.body, /^<!-- waffle-plan -->\n/);
  assert.match(comments[0]!.body, /\*\*replace\*\* `web`/);
  assert.match(comments[0]!.body, new RegExp(`image: \`${TEST_IMAGES.appV1} → ${TEST_IMAGES.appV2}\``));
  assert.match(comments[0]!.body, /1 unchanged: `worker`/);
  commentId = comments[0]!.id;
  await nothingChanged();
});

test('a new push to the pull request edits the same comment', async () => {
  const sha = pushPull(5, 'pull-5', { 'services/web.ts': webService(2), 'services/worker.ts': worker('debug') });
  const r = await deliver(agent.url, { event: 'pull_request', body: prPayload(5, sha, 'synchronize') });
  assert.equal(r.status, 202);
  const st = await finalStatus(sha);
  assert.equal(st.description, 'waffle plan: 2 to replace');
  const comments = github.issueComments(GITHUB_REPO, 5);
  assert.equal(comments.length, 1);
  assert.equal(comments[0]!.id, commentId);
  assert.match(comments[0]!.body, new RegExp(sha));
  assert.match(comments[0]!.body, /\*\*replace\*\* `worker`/);
  assert.ok(github.requests.some((q) => q.method === 'PATCH' && q.path === `/repos/${GITHUB_REPO}/issues/comments/${commentId}` && q.status === 200));
  await nothingChanged();
});

test('a broken pull request gets its problems with file and line', async () => {
  const broken = webService(2).replace("port: 8080,", "port: 'eighty',");
  assert.notEqual(broken, webService(2));
  const sha = pushPull(6, 'pull-6', { 'services/web.ts': broken });
  await deliver(agent.url, { event: 'pull_request', body: prPayload(6, sha, 'opened') });
  const st = await finalStatus(sha);
  assert.equal(st.state, 'failure');
  assert.match(st.description ?? '', /^waffle plan: \d+ problems?: services\/web\.ts:5:\d+: /);
  const [comment] = github.issueComments(GITHUB_REPO, 6);
  assert.ok(comment);
  assert.match(comment.body, new RegExp(`\\[\`services/web\\.ts:5:\\d+\`\\]\\(https://github\\.com/${GITHUB_REPO}/blob/${sha}/services/web\\.ts#L5\\)`));
  await nothingChanged();
});

test('a pull request from a fork is not previewed unless the agent allows it; the delivery says why', async () => {
  const sha = pushPull(7, 'pull-7', { 'services/web.ts': webService(2) });
  const r = await deliver(agent.url, { event: 'pull_request', id: 'fork-delivery-1', body: prPayload(7, sha, 'opened', { fork: 'mallory/infra' }) });
  assert.equal(r.status, 202);
  assert.equal(r.json.status, 'ignored');
  const d = await agent.api<{ deliveries: Array<{ id: string; event: string; outcome: string }> }>('GET', '/deliveries');
  const row = d.json.deliveries.find((x) => x.id === 'fork-delivery-1');
  assert.match(row?.outcome ?? '', /^ignored: pull request #7 from the fork mallory\/infra: previews of forks are off$/);
  assert.deepEqual(planStatuses(sha), []);
  assert.deepEqual(github.issueComments(GITHUB_REPO, 7), []);
  await nothingChanged();
});
