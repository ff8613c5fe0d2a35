/**
 * Notifications: GitHub commit statuses through @octokit against the GitHub API double (token and
 * GitHub App auth), chat webhooks against the chat recorder double (Discord and Slack), and the hub's
 * retries, ordering and dedupe (kept in a real history file across a reopen).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { History } from '../runtime/history/history.ts';
import { NotificationHub, PermanentNotifyError, type DeploymentReport, type Logger } from '../runtime/agent/notify/notifier.ts';
import { commitState, githubStatusNotifier, oneLine, STATUS_CONTEXT } from '../runtime/agent/notify/github.ts';
import { chatMessage, chatNotifier, DISCORD_MAX } from '../runtime/agent/notify/chat.ts';
import { GitHubDouble } from './doubles/github-double.ts';
import { ChatRecorder } from './doubles/chat-recorder.ts';

type T = { after: (fn: () => unknown) => void };

const REPO = 'waffle-org/infra';
const TOKEN = 'ghp_doubleTOKEN0123456789abcdefABCDEF0123';
const SHA_A = 'a'.repeat(40);
const SHA_B = '0123456789abcdef0123456789abcdef01234567';

async function github(t: T): Promise<GitHubDouble> {
  const gh = await new GitHubDouble().start();
  t.after(() => gh.close());
  gh.addRepo(REPO);
  gh.addToken(TOKEN, { login: 'deployer', repos: [REPO] });
  return gh;
}

async function chat(t: T, flavor: 'discord' | 'slack'): Promise<ChatRecorder> {
  const c = await new ChatRecorder(flavor).start();
  t.after(() => c.close());
  return c;
}

/** A logger that records every line (and asserts nothing logged holds a credential). */
function recordingLog(): Logger & { lines: Array<{ level: string; msg: string; fields?: object }> } {
  const lines: Array<{ level: string; msg: string; fields?: object }> = [];
  const at = (level: string) => (msg: string, fields?: object) => void lines.push({ level, msg, ...(fields ? { fields } : {}) });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

function report(over: Partial<DeploymentReport> = {}): DeploymentReport {
  return {
    id: '01JDEPLOY0000000000000000',
    commit: SHA_A,
    branch: 'main',
    repo: REPO,
    project: 'shop',
    state: 'applied',
    description: 'waffle: 2 replaced, 1 created',
    url: 'http://agent.example.test:8787/deployments/01JDEPLOY0000000000000000',
    durationMs: 4200,
    ...over,
  };
}

function tempHistory(t: T): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-notify-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'history.db');
}

const statusPosts = (gh: GitHubDouble) => gh.requests.filter((r) => r.method === 'POST' && r.path.includes('/statuses/'));

// ───────────────────────────── the double itself ─────────────────────────────

test("github double: answers GitHub's documented errors for auth and bad status input", async (t) => {
  const gh = await github(t);
  const post = (body: unknown, auth: string | null = `token ${TOKEN}`, sha = SHA_A, repo = REPO) =>
    fetch(`${gh.url}/repos/${repo}/statuses/${sha}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
      body: JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as { message: string; errors?: Array<{ field: string; code: string }> } }));

  assert.deepEqual(await post({ state: 'success' }, null), { status: 401, body: { message: 'Requires authentication', documentation_url: 'https://docs.github.com/rest' } });
  assert.equal((await post({ state: 'success' }, 'token nope')).status, 401);
  assert.equal((await post({ state: 'success' }, `token ${TOKEN}`, SHA_A, 'someone/else')).status, 404, 'a repository the token does not reach');
  const badState = await post({ state: 'done' });
  assert.equal(badState.status, 422);
  assert.equal(badState.body.message, 'Validation Failed');
  assert.equal(badState.body.errors![0]!.field, 'state');
  assert.equal((await post({})).body.errors![0]!.code, 'missing_field');
  assert.equal((await post({ state: 'success', description: 'x'.repeat(141) })).body.errors![0]!.field, 'description');
  assert.equal((await post({ state: 'success', target_url: 'javascript:alert(1)' })).body.errors![0]!.field, 'target_url');
  assert.match((await post({ state: 'success' }, `token ${TOKEN}`, 'main')).body.message, /No commit found for SHA: main/);
  const ok = await post({ state: 'success', description: 'x'.repeat(140) });
  assert.equal(ok.status, 201);
  assert.deepEqual(gh.statuses(REPO, SHA_A).map((s) => [s.state, s.context, s.creator.login]), [['success', 'default', 'deployer']]);

  const list = await fetch(`${gh.url}/repos/${REPO}/commits/${SHA_A}/statuses`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(list.status, 200);
  assert.equal(((await list.json()) as unknown[]).length, 1);
  assert.ok(gh.requests.every((r) => r.status > 0), 'every request is recorded with its answer');
});

test('github double: issue comments can be created, edited and listed', async (t) => {
  const gh = await github(t);
  const call = (method: string, p: string, body?: unknown) =>
    fetch(`${gh.url}${p}`, { method, headers: { authorization: `token ${TOKEN}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) }).then(async (r) => ({
      status: r.status,
      body: (await r.json()) as { id: number; body: string; html_url: string },
    }));
  const c = await call('POST', `/repos/${REPO}/issues/7/comments`, { body: 'preview at http://x' });
  assert.equal(c.status, 201);
  assert.match(c.body.html_url, /\/pull\/7#issuecomment-\d+$/);
  await call('POST', `/repos/${REPO}/issues/7/comments`, { body: 'second' });
  assert.equal((await call('POST', `/repos/${REPO}/issues/7/comments`, {})).status, 422);
  const edited = await call('PATCH', `/repos/${REPO}/issues/comments/${c.body.id}`, { body: 'preview updated' });
  assert.equal(edited.status, 200);
  assert.equal(edited.body.body, 'preview updated');
  const list = await fetch(`${gh.url}/repos/${REPO}/issues/7/comments`, { headers: { authorization: `token ${TOKEN}` } }).then((r) => r.json() as Promise<Array<{ body: string }>>);
  assert.deepEqual(list.map((x) => x.body), ['preview updated', 'second']);
  assert.equal((await call('PATCH', `/repos/${REPO}/issues/comments/999999`, { body: 'x' })).status, 404);
});

// ───────────────────────────── GitHub statuses ─────────────────────────────

test('github: pending then the result become commit statuses under waffle/deploy, with description and link (token auth)', async (t) => {
  const gh = await github(t);
  const n = githubStatusNotifier({ repo: REPO, auth: { token: TOKEN }, baseUrl: gh.url });
  await n.notify(report({ state: 'pending', description: 'waffle: deploying' }));
  await n.notify(report({ state: 'failed', description: `services/api.ts: service "api": ${'image not found '.repeat(20)}` }));
  const statuses = gh.statuses(REPO, SHA_A);
  assert.deepEqual(statuses.map((s) => s.state), ['pending', 'failure']);
  for (const s of statuses) {
    assert.equal(s.context, STATUS_CONTEXT);
    assert.equal(s.target_url, report().url);
    assert.ok([...s.description!].length <= 140);
  }
  assert.match(statuses[1]!.description!, /^services\/api\.ts: service "api": image not found .*…$/);
  const posts = statusPosts(gh);
  assert.equal(posts.length, 2);
  assert.equal(posts[0]!.headers.authorization, `token ${TOKEN}`);
  assert.deepEqual(Object.keys(posts[0]!.body as object).sort(), ['context', 'description', 'state', 'target_url']);

  assert.deepEqual(['pending', 'applied', 'no-op', 'failed', 'interrupted'].map((s) => commitState(s as DeploymentReport['state'])), ['pending', 'success', 'success', 'failure', 'error']);
  assert.equal(oneLine('a\n  b'), 'a b');
  assert.equal([...oneLine('é'.repeat(300))].length, 140);
});

test('github: a bad token is refused by GitHub and reported as a permanent error naming the commit, not the token', async (t) => {
  const gh = await github(t);
  const n = githubStatusNotifier({ repo: REPO, auth: { token: 'ghp_wrong' }, baseUrl: gh.url });
  await assert.rejects(n.notify(report()), (e: Error) => e instanceof PermanentNotifyError && (e as PermanentNotifyError).status === 401 && /Bad credentials/.test(e.message) && /waffle-org\/infra@aaaaaaa/.test(e.message) && !e.message.includes('ghp_wrong'));
  assert.equal(gh.statuses(REPO, SHA_A).length, 0);
});

for (const format of ['pkcs1', 'pkcs8'] as const) {
  test(`github: a GitHub App (${format} key) signs a JWT, gets an installation token once and posts statuses with it`, async (t) => {
    const gh = await github(t);
    const { publicKey, privateKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: format, format: 'pem' },
    });
    gh.addApp({ appId: 4242, publicKey, installations: { '777': [REPO] }, slug: 'waffle-deployer' });
    const n = githubStatusNotifier({ repo: REPO, auth: { appId: 4242, privateKey, installationId: 777 }, baseUrl: gh.url });
    await n.notify(report({ state: 'pending', description: 'deploying' }));
    await n.notify(report({ state: 'applied' }));

    const tokenCalls = gh.requests.filter((r) => r.path === '/app/installations/777/access_tokens');
    assert.equal(tokenCalls.length, 1, 'the installation token is reused');
    assert.equal(tokenCalls[0]!.status, 201);
    assert.match(String(tokenCalls[0]!.headers.authorization), /^bearer [\w-]+\.[\w-]+\.[\w-]+$/i);
    const [token] = gh.issuedInstallationTokens();
    assert.ok(token);
    for (const p of statusPosts(gh)) assert.equal(p.headers.authorization, `token ${token}`);
    assert.deepEqual(gh.statuses(REPO, SHA_A).map((s) => [s.state, s.creator.login]), [
      ['pending', 'waffle-deployer[bot]'],
      ['success', 'waffle-deployer[bot]'],
    ]);
  });
}

test("github: a JWT signed with another key, or an installation the app doesn't have, gets no token", async (t) => {
  const gh = await github(t);
  const right = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const wrong = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  gh.addApp({ appId: 5, publicKey: right.publicKey, installations: { '9': [REPO] } });
  const forged = githubStatusNotifier({ repo: REPO, auth: { appId: 5, privateKey: wrong.privateKey, installationId: 9 }, baseUrl: gh.url });
  await assert.rejects(forged.notify(report()), (e: Error) => e instanceof PermanentNotifyError && /401/.test(e.message));
  const other = githubStatusNotifier({ repo: REPO, auth: { appId: 5, privateKey: right.privateKey, installationId: 10 }, baseUrl: gh.url });
  await assert.rejects(other.notify(report()), (e: Error) => e instanceof PermanentNotifyError && /404/.test(e.message));
  assert.equal(gh.issuedInstallationTokens().length, 0);
  assert.equal(gh.statuses(REPO, SHA_A).length, 0);
});

test('github double: checks the JWT claims as GitHub does, and an installation token stops working when it expires', async (t) => {
  const gh = await github(t);
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  gh.addApp({ appId: 77, publicKey: keys.publicKey, installations: { '1': [REPO] } });
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const jwt = (claims: object, alg = 'RS256') => {
    const head = `${b64({ alg, typ: 'JWT' })}.${b64(claims)}`;
    return `${head}.${sign('RSA-SHA256', Buffer.from(head), keys.privateKey).toString('base64url')}`;
  };
  const now = Math.floor(Date.now() / 1000);
  const ask = (token: string) =>
    fetch(`${gh.url}/app/installations/1/access_tokens`, { method: 'POST', headers: { authorization: `Bearer ${token}` } }).then(async (r) => ({ status: r.status, body: (await r.json()) as { message?: string; token?: string; expires_at?: string } }));

  assert.match((await ask(jwt({ iss: 77, iat: now - 30, exp: now + 3600 }))).body.message!, /'exp'\) is too far in the future/);
  assert.match((await ask(jwt({ iss: 77, iat: now - 700, exp: now - 100 }))).body.message!, /'exp'\) must be a numeric value representing the future/);
  assert.match((await ask(jwt({ iss: 77, iat: now + 300, exp: now + 500 }))).body.message!, /'iat'\) must be an Integer representing a time in the past/);
  assert.equal((await ask(jwt({ iss: 78, iat: now - 30, exp: now + 500 }))).status, 401, 'an app the double does not know');
  assert.equal((await ask(jwt({ iss: 77, iat: now - 30, exp: now + 500 }, 'HS256'))).status, 401, 'only RS256');
  const good = await ask(jwt({ iss: 77, iat: now - 30, exp: now + 500 }));
  assert.equal(good.status, 201);
  assert.match(good.body.token!, /^ghs_\w{36}$/);
  assert.ok(Date.parse(good.body.expires_at!) > Date.now() + 59 * 60_000);
  // A JWT is not a credential for repository endpoints; the installation token is, until it expires.
  const status = (token: string) =>
    fetch(`${gh.url}/repos/${REPO}/statuses/${SHA_A}`, { method: 'POST', headers: { authorization: `token ${token}` }, body: JSON.stringify({ state: 'success' }) }).then((r) => r.status);
  assert.equal(await status(jwt({ iss: 77, iat: now - 30, exp: now + 500 })), 401);
  assert.equal(await status(good.body.token!), 201);
  const realNow = gh.now;
  gh.now = () => realNow() + 61 * 60_000;
  assert.equal(await status(good.body.token!), 401);
});

// ───────────────────────────── the hub ─────────────────────────────

test('hub: a failing GitHub is retried with backoff in the background until the status is posted', async (t) => {
  const gh = await github(t);
  gh.failNext(3, { match: (m, p) => m === 'POST' && p.includes('/statuses/') });
  const log = recordingLog();
  const hub = new NotificationHub([githubStatusNotifier({ repo: REPO, auth: { token: TOKEN }, baseUrl: gh.url })], { log, retries: 5, baseDelayMs: 5 });
  assert.equal(hub.send(report()), undefined, 'send returns at once');
  await hub.idle();
  assert.deepEqual(statusPosts(gh).map((r) => r.status), [500, 500, 500, 201]);
  assert.deepEqual(gh.statuses(REPO, SHA_A).map((s) => s.state), ['success']);
  assert.deepEqual(log.lines.map((l) => `${l.level} ${l.msg}`), [
    'warn notification failed; retrying',
    'warn notification failed; retrying',
    'warn notification failed; retrying',
    'info notification sent',
  ]);
  assert.ok(!JSON.stringify(log.lines).includes(TOKEN), 'no token in the logs');
});

test('hub: after the last retry it gives up with an error in the log, throws nothing, and a later identical report tries again', async (t) => {
  const gh = await github(t);
  gh.failNext(3, { status: 502 });
  const log = recordingLog();
  const hub = new NotificationHub([githubStatusNotifier({ repo: REPO, auth: { token: TOKEN }, baseUrl: gh.url })], { log, retries: 2, baseDelayMs: 1 });
  hub.send(report({ state: 'failed', description: 'boom' }));
  await hub.idle();
  assert.equal(statusPosts(gh).length, 3);
  assert.equal(gh.statuses(REPO, SHA_A).length, 0);
  const last = log.lines.at(-1)!;
  assert.equal(last.level, 'error');
  assert.match(last.msg, /failed after 3 attempts; giving up/);
  assert.deepEqual({ ...(last.fields as object), error: undefined }, { notifier: `github:${REPO}`, deployment: report().id, commit: SHA_A, state: 'failed', status: 502, error: undefined });

  hub.send(report({ state: 'failed', description: 'boom' }));
  await hub.idle();
  assert.deepEqual(gh.statuses(REPO, SHA_A).map((s) => s.description), ['boom']);
});

test('hub: a refusal (bad credentials) is not retried', async (t) => {
  const gh = await github(t);
  const log = recordingLog();
  const hub = new NotificationHub([githubStatusNotifier({ repo: REPO, auth: { token: 'ghp_revoked' }, baseUrl: gh.url })], { log, retries: 5, baseDelayMs: 1 });
  hub.send(report());
  await hub.idle();
  assert.equal(statusPosts(gh).length, 1);
  assert.deepEqual(log.lines.map((l) => `${l.level} ${l.msg}`), ['error notification failed and will not be retried']);
});

test('hub: the same result for a commit is sent once, also after the history is reopened; a different one is sent', async (t) => {
  const gh = await github(t);
  const file = tempHistory(t);
  const n = () => githubStatusNotifier({ repo: REPO, auth: { token: TOKEN }, baseUrl: gh.url });
  const failed = report({ state: 'failed', description: 'services/api.ts: service "api": image waffle/api:9 not found' });

  let history = History.open(file);
  let hub = new NotificationHub([n()], { log: recordingLog(), history, baseDelayMs: 1 });
  hub.send(report({ state: 'pending', description: 'deploying' }));
  hub.send(failed);
  await hub.idle();
  // The next polls find the same failure: a pending and the same result, neither sent again.
  hub.send(report({ state: 'pending', description: 'deploying' }));
  hub.send(failed);
  await hub.idle();
  assert.deepEqual(gh.statuses(REPO, SHA_A).map((s) => s.state), ['pending', 'failure']);
  history.close();

  history = History.open(file);
  t.after(() => history.close());
  hub = new NotificationHub([n()], { log: recordingLog(), history, baseDelayMs: 1 });
  hub.send(report({ state: 'pending', description: 'deploying' }));
  hub.send(failed);
  await hub.idle();
  assert.deepEqual(gh.statuses(REPO, SHA_A).map((s) => s.state), ['pending', 'failure'], 'nothing repeated after a restart');

  // A different failure of the same commit, then a success, are news.
  hub.send(report({ state: 'failed', description: 'services/api.ts: service "api": unhealthy' }));
  hub.send(report({ state: 'applied', description: 'waffle: 1 replaced' }));
  await hub.idle();
  assert.deepEqual(gh.statuses(REPO, SHA_A).map((s) => s.state).slice(2), ['failure', 'success']);
  // Another commit starts from scratch.
  hub.send(report({ commit: SHA_B, state: 'pending', description: 'deploying' }));
  hub.send(report({ commit: SHA_B, state: 'failed', description: 'services/api.ts: service "api": image waffle/api:9 not found' }));
  await hub.idle();
  assert.deepEqual(gh.statuses(REPO, SHA_B).map((s) => s.state), ['pending', 'failure']);
});

test("hub: a commit's reports reach GitHub in order, even while the pending one is being retried", async (t) => {
  const gh = await github(t);
  gh.failNext(2);
  const hub = new NotificationHub([githubStatusNotifier({ repo: REPO, auth: { token: TOKEN }, baseUrl: gh.url })], { log: recordingLog(), baseDelayMs: 1 });
  hub.send(report({ state: 'pending', description: 'deploying' }));
  hub.send(report({ state: 'applied' }));
  await hub.idle();
  const states = gh.statuses(REPO, SHA_A).map((s) => s.state);
  assert.equal(states.at(-1), 'success', `the result is the last status: ${states}`);
  assert.ok(states.length <= 2);
});

test('hub: a queued report that a newer one for the same commit replaces is not sent', async (t) => {
  const gh = await github(t);
  const hub = new NotificationHub([githubStatusNotifier({ repo: REPO, auth: { token: TOKEN }, baseUrl: gh.url })], { log: recordingLog(), baseDelayMs: 1 });
  hub.send(report({ state: 'pending', description: 'deploying' })); // sent at once
  hub.send(report({ state: 'failed', description: 'first try failed' })); // queued behind it...
  hub.send(report({ state: 'applied', description: 'waffle: 1 created' })); // ...and replaced by this one
  hub.send(report({ commit: SHA_B, state: 'pending', description: 'deploying' })); // another commit is kept
  await hub.idle();
  assert.deepEqual(gh.statuses(REPO, SHA_A).map((s) => `${s.state} ${s.description}`), ['pending deploying', 'success waffle: 1 created']);
  assert.deepEqual(gh.statuses(REPO, SHA_B).map((s) => s.state), ['pending']);
});

test('hub: close() ends waiting retries and idle() resolves', async (t) => {
  const gh = await github(t);
  gh.failNext(100);
  const log = recordingLog();
  const hub = new NotificationHub([githubStatusNotifier({ repo: REPO, auth: { token: TOKEN }, baseUrl: gh.url })], { log, retries: 10, baseDelayMs: 600_000 });
  hub.send(report());
  for (let i = 0; i < 6000 && statusPosts(gh).length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(statusPosts(gh).length, 1, 'the first attempt was made');
  hub.close();
  await hub.idle();
  assert.equal(statusPosts(gh).length, 1);
  hub.send(report({ commit: SHA_B }));
  await hub.idle();
  assert.equal(statusPosts(gh).length, 1, 'a closed hub sends nothing');
});

test('hub: two notifiers with one name are refused (their dedupe memory would mix)', () => {
  const a = { name: 'x', notify: async () => {} };
  assert.throws(() => new NotificationHub([a, { ...a }], { log: recordingLog() }), /two notifiers are named "x"/);
});

// ───────────────────────────── chat ─────────────────────────────

test('chat: Discord gets {content} with project, short sha, result, summary and link, and mentions disabled', async (t) => {
  const rec = await chat(t, 'discord');
  const hub = new NotificationHub([chatNotifier({ url: rec.url, format: 'discord' })], { log: recordingLog(), baseDelayMs: 1 });
  hub.send(report({ state: 'pending' }));
  hub.send(report({ state: 'applied' }));
  await hub.idle();
  assert.equal(rec.posts.length, 1, 'pending is not posted to chat');
  const body = rec.posts[0]!.body as { content: string; allowed_mentions: { parse: string[] } };
  assert.equal(rec.posts[0]!.status, 204);
  assert.equal(rec.posts[0]!.headers['content-type'], 'application/json');
  assert.deepEqual(body.allowed_mentions, { parse: [] });
  assert.equal(
    body.content,
    ['✅ **shop** deployed: `aaaaaaa` on `main` in 4.2s', 'waffle: 2 replaced, 1 created', 'http://agent.example.test:8787/deployments/01JDEPLOY0000000000000000'].join('\n'),
  );
});

test('chat: Slack gets {text} with escaping, the first problems and a <url|label> link', async (t) => {
  const rec = await chat(t, 'slack');
  const n = chatNotifier({ url: rec.url, format: 'slack' });
  const problems = Array.from({ length: 7 }, (_, i) => ({ file: `services/s${i}.ts`, service: `s${i}`, message: `port <${i}> & more` }));
  await n.notify(report({ state: 'failed', description: '7 problems found', problems, durationMs: undefined }));
  assert.equal(rec.delivered.length, 1);
  assert.equal(
    (rec.delivered[0]!.body as { text: string }).text,
    [
      '❌ *shop* failed: `aaaaaaa` on `main`',
      '7 problems found',
      ...[0, 1, 2, 3, 4].map((i) => `• services/s${i}.ts: service "s${i}": port &lt;${i}&gt; &amp; more`),
      '…and 2 more',
      '<http://agent.example.test:8787/deployments/01JDEPLOY0000000000000000|deployment 01JDEPLOY0000000000000000>',
    ].join('\n'),
  );
});

test('chat: a rate limit and a server error are retried; a refused payload is not; the webhook secret never shows', async (t) => {
  const rec = await chat(t, 'discord');
  rec.failNext(2, 429);
  const log = recordingLog();
  const hub = new NotificationHub([chatNotifier({ url: rec.url, format: 'discord' })], { log, baseDelayMs: 1 });
  hub.send(report({ state: 'interrupted', description: 'the agent stopped during the deploy' }));
  await hub.idle();
  assert.deepEqual(rec.posts.map((p) => p.status), [429, 429, 204]);
  assert.match((rec.delivered[0]!.body as { content: string }).content, /^⚠️ \*\*shop\*\* interrupted/);

  // Over Discord's limit the message is cut to fit, and accepted.
  const long = chatMessage(report({ description: 'x'.repeat(5000) }), 'discord');
  assert.equal([...long].length, DISCORD_MAX);

  // A payload the service refuses (Discord's shape posted to a Slack webhook: 400 no_text) is permanent.
  const slack = await chat(t, 'slack');
  const misconfigured = new NotificationHub([chatNotifier({ url: slack.url, format: 'discord' })], { log, baseDelayMs: 1 });
  misconfigured.send(report({ state: 'failed', description: 'x' }));
  await misconfigured.idle();
  assert.deepEqual(slack.posts.map((p) => p.status), [400], 'not retried');
  assert.match(log.lines.at(-1)!.msg, /will not be retried/);
  assert.match(JSON.stringify(log.lines.at(-1)!.fields), /discord webhook at 127\.0\.0\.1:\d+ answered 400: no_text/);
  // A server error is retryable, and its message names the host, never the secret path.
  slack.failNext(1, 500);
  await assert.rejects(chatNotifier({ url: slack.url, format: 'slack' }).notify(report()), (e: Error & { status?: number }) => e.status === 500 && !(e instanceof PermanentNotifyError) && !e.message.includes('doublesecret'));
  for (const l of log.lines) assert.ok(!/double-webhook-token|doublesecret/.test(JSON.stringify(l)), `no webhook secret in: ${l.msg}`);
});
