/**
 * `waffle agent` end to end with a real bare repository (commits pushed with git), the real engine and
 * a double of GitHub's commit-status API: the start-up reconcile, a signed push that deploys and is
 * reported, every kind of delivery that must deploy nothing (bad signature, wrong branch, a branch
 * merely ending with the name, wrong repository, malformed JSON, an oversized body, a repeated
 * delivery), a commit that breaks evaluation followed by one that deploys (reported to GitHub and to a
 * Slack-format chat webhook, both doubles), a burst of 50 pushes collapsing into at most 2 deploys,
 * and the CLI clients against the running agent.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, httpGet, snapshot, uniqueProject, waffle } from './helpers.ts';
import { ensureTestImages } from './engine.ts';
import { config, deliver, GITHUB_REPO, GITHUB_TOKEN, makeRemote, pushPayload, secretFiles, startAgent, tempRoot, TOKEN, live, waitFor, webService, type Remote, type RunningAgent } from './agent-support.ts';
import { GitHubDouble } from './doubles/github-double.ts';
import { ChatRecorder } from './doubles/chat-recorder.ts';

let docker: Dockerode;
const project = uniqueProject('agw');
let root: string;
let remote: Remote;
let agent: RunningAgent;
let github: GitHubDouble;
let chat: ChatRecorder;
let deployed: string;

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  root = tempRoot('waffle-agent-');
  github = await new GitHubDouble().start();
  chat = await new ChatRecorder('slack').start();
  remote = makeRemote(root, { 'waffle.config.ts': config(project), 'services/web.ts': webService(1) });
  const stateDir = path.join(root, 'state');
  const { githubTokenFile } = secretFiles(root);
  github.addRepo(GITHUB_REPO);
  github.addToken(GITHUB_TOKEN, { repos: [GITHUB_REPO] });
  const chatFile = path.join(root, 'chat-url');
  fs.writeFileSync(chatFile, chat.url + '\n', { mode: 0o600 });
  agent = await startAgent({
    root,
    repo: remote.bare,
    stateDir,
    args: ['--github-token-file', githubTokenFile, '--github-api-url', github.url, '--public-url', 'https://deploy.example.test',
      '--chat-webhook-url-file', chatFile, '--chat-format', 'slack'],
  });
});

after(async () => {
  await agent?.stop().catch(() => undefined);
  await github?.close();
  await chat?.close();
  if (docker) await cleanupProject(docker, project);
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

type Row = { id: string; state: string; commit?: string; trigger: string; error?: string; services: Array<{ service: string; action: string; outcome: string }>; planSummary?: string };

async function deployments(): Promise<Row[]> {
  const r = await agent.api<{ deployments: Row[] }>('GET', '/deployments?limit=200');
  assert.equal(r.status, 200);
  return r.json.deployments;
}

async function finished(id: string): Promise<Row> {
  return waitFor(`deployment ${id} to finish`, async () => {
    const r = await agent.api<Row>('GET', `/deployments/${id}`);
    return r.json.state !== 'queued' && r.json.state !== 'running' ? r.json : undefined;
  });
}

async function webContainer() {
  const snap = await snapshot(docker, project);
  return live(snap.containers);
}

test('start-up reconcile deploys the branch head and reports it', async () => {
  const initial = (await import('./agent-support.ts')).git(remote.work, 'rev-parse', 'HEAD');
  const head = remote.commit({}, 'noop'); // pushed while the agent starts: it deploys whichever is the head when it fetches
  const first = await waitFor('the start-up deploy', async () => (await deployments()).find((d) => d.trigger === 'startup' && d.state !== 'queued' && d.state !== 'running'));
  assert.equal(first.state, 'applied', first.error);
  // The head at fetch time: the initial commit or the one pushed just now.
  assert.ok(first.commit === head || first.commit === initial, first.commit);
  const containers = await webContainer();
  assert.equal(containers.length, 1);
  assert.equal(containers[0]!.image, 'waffle-test/app:1');
  deployed = first.commit!;
  // The head commit, once the agent knows it (a manual deploy of the head brings it there).
  const r = await agent.api<{ deployment: string }>('POST', '/deployments', {});
  assert.equal(r.status, 202);
  const d = await finished(r.json.deployment);
  assert.equal(d.commit, head);
  assert.ok(d.state === 'no-op' || d.state === 'applied', d.state);
  deployed = head;
});

test('a signed push deploys the new commit; pending then success is reported to GitHub with a link', async () => {
  const commit = remote.commit({ 'services/web.ts': webService(2) }, 'v2');
  const r = await deliver(agent.url, { body: pushPayload(commit) });
  assert.equal(r.status, 202, JSON.stringify(r.json));
  assert.equal(r.json.status, 'deployed');
  const d = await finished(r.json.deployment);
  assert.equal(d.state, 'applied', d.error);
  assert.equal(d.commit, commit);
  assert.equal(d.trigger, 'push');
  assert.deepEqual(d.services, [{ service: 'web', action: 'replace', outcome: 'done' }]);
  assert.equal(d.planSummary, '1 to replace');
  const containers = await webContainer();
  assert.equal(containers.length, 1);
  assert.equal(containers[0]!.image, 'waffle-test/app:2');
  assert.equal(containers[0]!.labels['dev.wafflemaker.commit'], commit.slice(0, 12));
  const states = await waitFor('success status', () => {
    const mine = github.statuses(GITHUB_REPO, commit);
    return mine.some((s) => s.state === 'success') ? mine : undefined;
  });
  assert.equal(states[0]!.state, 'pending');
  assert.equal(states.at(-1)!.context, 'waffle/deploy');
  assert.equal(states.at(-1)!.target_url, `https://deploy.example.test/deployments/${d.id}`);
  // The deployment's events came from the engine runs of this deploy.
  const full = await agent.api<{ events: Array<{ type: string; run: string }> }>('GET', `/deployments/${d.id}`);
  const types = full.json.events.map((e) => e.type);
  for (const t of ['load-done', 'plan-ready', 'apply-done']) assert.ok(types.includes(t), `${t} in ${types.join(',')}`);
  deployed = commit;
});

test('deliveries that must deploy nothing each get their status, and /deliveries says why', async () => {
  const before = (await deployments()).length;
  const containersBefore = (await webContainer()).map((c) => c.id);
  const commit = remote.commit({ 'README.md': 'x' }, 'readme');
  const ids: Record<string, string> = {};
  const send = async (name: string, d: Parameters<typeof deliver>[1]) => {
    ids[name] = d.id ?? randomBytes(6).toString('hex');
    return deliver(agent.url, { ...d, id: ids[name] });
  };
  assert.equal((await send('bad', { body: pushPayload(commit), signature: 'sha256=' + 'ab'.repeat(32) })).status, 401);
  assert.equal((await send('unsigned', { body: pushPayload(commit), signature: null })).status, 401);
  assert.equal((await send('branch', { body: pushPayload(commit, { ref: 'refs/heads/dev' }) })).status, 202);
  assert.equal((await send('suffix', { body: pushPayload(commit, { ref: 'refs/heads/feature-main' }) })).status, 202);
  assert.equal((await send('tag', { body: pushPayload(commit, { ref: 'refs/tags/main' }) })).status, 202);
  assert.equal((await send('repo', { body: pushPayload(commit, { repo: 'acme/other' }) })).status, 202);
  assert.equal((await send('malformed', { body: '{"ref": "refs/heads/main", ' })).status, 400);
  assert.equal((await send('issue', { event: 'issues', body: '{"action":"opened"}' })).status, 202);
  const ping = await send('ping', { event: 'ping', body: '{"zen":"Keep it logically awesome."}' });
  assert.equal(ping.status, 200);
  // 25 MB + 1: refused from its length, and the connection does not wait for the whole body.
  const big = await send('big', { body: Buffer.alloc(25 * 1024 * 1024 + 1, 0x20) });
  assert.equal(big.status, 413);

  const after = await deployments();
  assert.equal(after.length, before, 'no deployment was created');
  assert.deepEqual((await webContainer()).map((c) => c.id), containersBefore);

  const { json } = await agent.api<{ deliveries: Array<{ id: string; outcome: string }> }>('GET', '/deliveries?limit=100');
  const outcome = (name: string) => json.deliveries.find((d) => d.id === ids[name] || d.outcome.includes(`delivery ${ids[name]}`))?.outcome;
  assert.match(outcome('bad')!, /^refused: bad signature/);
  assert.match(outcome('unsigned')!, /^refused: bad signature/);
  assert.equal(outcome('branch'), 'ignored: branch refs/heads/dev');
  assert.equal(outcome('suffix'), 'ignored: branch refs/heads/feature-main');
  assert.equal(outcome('tag'), 'ignored: branch refs/tags/main');
  assert.equal(outcome('repo'), 'ignored: repository acme/other');
  assert.match(outcome('malformed')!, /^refused: body is not JSON/);
  assert.equal(outcome('issue'), 'ignored: event issues');
  assert.equal(outcome('ping'), 'ignored: ping');
  assert.match(outcome('big')!, /^refused: body over 25 MB/);
  // Management endpoints want the token.
  assert.equal((await agent.api('GET', '/deliveries', undefined, null)).status, 401);
  assert.equal((await agent.api('GET', '/status', undefined, 'wrong')).status, 401);
  assert.equal((await agent.api('POST', '/deployments', {}, 'wrong')).status, 401);
});

test('a repeated delivery is acknowledged once and deployed once', async () => {
  const commit = remote.commit({ 'README.md': 'y' }, 'readme 2');
  const id = randomBytes(6).toString('hex');
  const first = await deliver(agent.url, { id, body: pushPayload(commit) });
  assert.equal(first.status, 202);
  const again = await deliver(agent.url, { id, body: pushPayload(commit) });
  assert.equal(again.status, 200);
  assert.equal(again.json.status, 'duplicate');
  const d = await finished(first.json.deployment);
  assert.equal(d.commit, commit);
  assert.equal(d.state, 'no-op', 'a README change deploys nothing new');
  const rows = (await deployments()).filter((r) => r.commit === commit);
  assert.equal(rows.length, 1);
  deployed = commit;
});

test('a commit that breaks evaluation is reported failed with file and service; the next good commit deploys', async () => {
  const running = (await webContainer()).map((c) => c.id);
  const bad = remote.commit({ 'services/web.ts': `import { defineService } from 'wafflemaker';\nthrow new Error('broken on purpose');\nexport default defineService({ image: 'x' });\n` }, 'broken');
  const r = await deliver(agent.url, { body: pushPayload(bad) });
  const d = await finished(r.json.deployment);
  assert.equal(d.state, 'failed');
  assert.equal(d.commit, bad);
  assert.match(d.error!, /services\/web\.ts/);
  assert.match(d.error!, /broken on purpose/);
  assert.deepEqual((await webContainer()).map((c) => c.id), running, 'nothing changed');
  const failure = await waitFor('failure status', () => github.statuses(GITHUB_REPO, bad).find((s) => s.state === 'failure'));
  assert.match(failure.description!, /broken on purpose|failed/);
  const post = await waitFor('a chat message about the failure', () => chat.delivered.find((p) => JSON.stringify(p.body).includes(bad.slice(0, 7)) && /fail/i.test(JSON.stringify(p.body))));
  assert.ok((post.body as { text?: string }).text, 'Slack format: {text}');

  const good = remote.commit({ 'services/web.ts': webService(1) }, 'back to v1');
  const r2 = await deliver(agent.url, { body: pushPayload(good) });
  const d2 = await finished(r2.json.deployment);
  assert.equal(d2.state, 'applied', d2.error);
  const containers = await webContainer();
  assert.equal(containers.length, 1);
  assert.equal(containers[0]!.image, 'waffle-test/app:1');
  deployed = good;
});

test('50 signed pushes in quick succession: at most 2 deploys, ending on the last commit', async () => {
  const before = new Set((await deployments()).map((d) => d.id));
  const commits: string[] = [];
  for (let i = 0; i < 50; i++) commits.push(remote.commit({ 'services/web.ts': webService(i % 2 === 0 ? 2 : 1, `\n  env: { N: '${i}' },`) }, `burst ${i}`));
  const answers = [];
  for (const c of commits) answers.push(await deliver(agent.url, { body: pushPayload(c) }));
  for (const a of answers) assert.equal(a.status, 202);
  const ids = new Set(answers.map((a) => a.json.deployment as string));
  assert.ok(ids.size <= 2, `${ids.size} deployments for 50 pushes`);
  assert.ok(answers.filter((a) => a.json.status === 'coalesced').length >= 48);
  const rows = await Promise.all([...ids].map(finished));
  const fresh = (await deployments()).filter((d) => !before.has(d.id));
  assert.ok(fresh.length <= 2, `${fresh.length} deploys`);
  const last = rows.sort((a, b) => (a.id < b.id ? -1 : 1)).at(-1)!;
  assert.equal(last.commit, commits.at(-1));
  const containers = await webContainer();
  assert.equal(containers.length, 1);
  assert.equal(containers[0]!.labels['dev.wafflemaker.commit'], commits.at(-1)!.slice(0, 12));
  assert.equal(containers[0]!.image, 'waffle-test/app:1');
  deployed = commits.at(-1)!;
});

test('CLI clients: waffle agent deploy, waffle history, waffle status --agent', async () => {
  const env = { WAFFLE_AGENT_TOKEN: TOKEN };
  const dep = await waffle(['agent', 'deploy', '--agent', agent.url, '--json'], { cwd: root, env });
  assert.equal(dep.code, 0, dep.stderr);
  const row = JSON.parse(dep.stdout);
  assert.equal(row.commit, deployed);
  assert.equal(row.state, 'no-op');

  const notOnBranch = remote.commit({ 'README.md': 'side' }, 'side branch', 'side');
  const refused = await waffle(['agent', 'deploy', '--agent', agent.url, '--commit', notOnBranch], { cwd: root, env });
  assert.equal(refused.code, 1);
  assert.match(refused.stdout + refused.stderr, /is not on branch main/);

  const hist = await waffle(['history', '--agent', agent.url, '--limit', '50'], { cwd: root, env });
  assert.equal(hist.code, 0, hist.stderr);
  assert.match(hist.stdout, /RESULT/);
  assert.match(hist.stdout, /failed\s+\S+\s+manual\s+commit \w+ is not on branch main/);
  assert.match(hist.stdout, /applied/);

  const st = await waffle(['status', '--agent', agent.url, '--json'], { cwd: root, env });
  assert.equal(st.code, 0, st.stderr);
  const doc = JSON.parse(st.stdout);
  assert.equal(doc.project, project);
  assert.equal(doc.deployedCommit, deployed);
  assert.equal(doc.services[0].service, 'web');
  assert.equal(doc.services[0].image, 'waffle-test/app:1');
  assert.equal(doc.services[0].health, 'healthy');
  assert.equal(doc.services[0].commit, deployed.slice(0, 12));
  const plain = await waffle(['status', '--agent', agent.url], { cwd: root, env });
  assert.match(plain.stdout, /web\s+running\s+healthy\s+waffle-test\/app:1/);

  const noToken = await waffle(['history', '--agent', agent.url], { cwd: root, env: { WAFFLE_AGENT_TOKEN: '' } });
  assert.equal(noToken.code, 1);
  assert.match(noToken.stderr, /--token-file/);

  // The app answers the deployed version; metrics count what happened.
  const port = (await docker.getContainer((await webContainer())[0]!.id).inspect()).NetworkSettings.Networks;
  assert.ok(port);
  const metrics = await httpGet(agent.url + '/metrics');
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /waffle_deploys_total\{result="applied"\} \d+/);
  assert.match(metrics.body, /waffle_webhook_deliveries_total\{[^}]*outcome="refused"[^}]*\} \d+/);
});

test('SIGTERM: the agent exits cleanly', async () => {
  const code = await agent.stop();
  assert.equal(code, 0, agent.log().slice(-2000));
  assert.ok(agent.lines().some((l) => l.msg === 'stopped'));
});
