/**
 * An engine that stops answering must not hang waffle. Against a hanging-engine double (a unix socket
 * that accepts and never answers, or answers the ping and then leaves requests hanging):
 * - each Docker call fails within its time limit, naming the call and the engine, and its request is
 *   destroyed (the double sees the connection closed), so nothing keeps the process alive;
 * - a stop waits its grace period plus the ordinary limit; a pull's streamed answer has its own limit;
 * - an abort signal (the client's, or a scope's) interrupts calls in flight at once;
 * - the real CLI: `waffle plan` exits non-zero naming the engine; `waffle apply --yes --plain` exits
 *   non-zero naming the hung call and releases the project lock (a second apply gets past it).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectDocker, dockerSettingsFromEnv, withCallLimits } from '../runtime/docker/client.ts';
import { stopContainer } from '../runtime/docker/container.ts';
import { pullImage } from '../runtime/docker/image.ts';
import { startHangingEngine, type HangingEngine } from './doubles/hanging-engine.ts';
import { makeRepo, uniqueProject, waffle } from './helpers.ts';

const engines: HangingEngine[] = [];
/** Without limits these calls never end: the runner's limit fails such a test instead of hanging the file. */
const T = { timeout: 20_000 };
const CLI_T = { timeout: 240_000 };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-hang-'));

after(async () => {
  await Promise.all(engines.map((e) => e.close()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function engine(opts: Parameters<typeof startHangingEngine>[0]): Promise<HangingEngine> {
  const e = await startHangingEngine(opts);
  engines.push(e);
  return e;
}

/** Waits until `cond` holds (the double sees a close a moment after the client destroys its request). */
async function eventually(cond: () => boolean, what: string, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function timed<T>(p: Promise<T>): Promise<{ ms: number; result?: T; error?: Error }> {
  const t0 = Date.now();
  try {
    const result = await p;
    return { ms: Date.now() - t0, result };
  } catch (error) {
    return { ms: Date.now() - t0, error: error as Error };
  }
}

test('silent engine: connecting fails within the ping limit, naming the engine, and closes the connection', T, async () => {
  const e = await engine({ mode: 'silent' });
  const r = await timed(connectDocker(e.host, { timeoutMs: 400 }));
  assert.ok(r.error, 'connectDocker resolved against an engine that never answers');
  assert.ok(r.ms < 5000, `took ${r.ms} ms for a 400 ms limit`);
  assert.match(r.error.message, new RegExp(`Docker is not answering at ${e.host.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
  assert.match(r.error.message, /no answer to GET \/_ping within 400 ms/);
  assert.match(r.error.message, /Fix: /);
  await eventually(() => e.openConnections() === 0 && e.hung.every((h) => h.closedByClient), 'the ping request was destroyed');
});

test('engine that answers the ping then hangs: an ordinary call fails naming the call and the engine', T, async () => {
  const e = await engine({ mode: 'http', answerPing: true });
  const docker = await connectDocker(e.host, { timeoutMs: 500 });
  const r = await timed(docker.listContainers({ all: true }));
  assert.ok(r.error, 'a call to a hanging engine resolved');
  assert.ok(r.ms >= 450 && r.ms < 5500, `took ${r.ms} ms for a 500 ms limit`);
  assert.equal(r.error.name, 'DockerCallError');
  assert.match(r.error.message, /did not answer GET \/containers\/json within 500 ms/);
  assert.ok(r.error.message.includes(e.host), `the message names the engine: ${r.error.message}`);
  assert.doesNotMatch(r.error.message, /all=/, 'the message names the call without its query');
  await eventually(() => e.openConnections() === 0, 'the hung request was destroyed');
});

test('a stop waits its grace period plus the ordinary limit, then fails naming POST /containers/{id}/stop', T, async () => {
  const e = await engine({ mode: 'http', answerPing: true });
  const docker = await connectDocker(e.host, { timeoutMs: 300 });
  const id = 'a'.repeat(64);
  const r = await timed(stopContainer(docker, id, 2));
  assert.ok(r.error);
  // 2 s grace + 0.3 s margin: not cut at the ordinary limit, not left hanging either.
  assert.ok(r.ms >= 2200 && r.ms < 8000, `stop with a 2 s grace gave up after ${r.ms} ms`);
  assert.match(r.error.message, /could not stop container aaaaaaaaaaaa: Docker at .* did not answer POST \/containers\/aaaaaaaaaaaa\/stop within 2\.3 s/);
  await eventually(() => e.openConnections() === 0, 'the stop request was destroyed');
});

test("a pull whose progress stream stalls fails at the client's pull limit", T, async () => {
  const e = await engine({ mode: 'http', answerPing: true, headersThenHang: (m, u) => m === 'POST' && u.startsWith('/images/create') });
  const docker = await connectDocker(e.host, { timeoutMs: 5000, pullTimeoutMs: 600 });
  const r = await timed(pullImage(docker, 'example.invalid/app:1'));
  assert.ok(r.error);
  assert.ok(r.ms >= 550 && r.ms < 5500, `took ${r.ms} ms for a 600 ms pull limit`);
  assert.match(r.error.message, /image example\.invalid\/app:1 could not be pulled: Docker at .* did not finish its streamed answer to POST \/images\/create within 600 ms/);
  await eventually(() => e.openConnections() === 0, 'the pull stream was destroyed');
});

test('abort signals interrupt calls in flight at once: the client-wide one and a scope', T, async () => {
  const e = await engine({ mode: 'http', answerPing: true });
  const client = new AbortController();
  const docker = await connectDocker(e.host, { timeoutMs: 60_000, signal: client.signal });

  const scope = new AbortController();
  const scoped = timed(withCallLimits({ signal: scope.signal }, () => docker.listNetworks()));
  const other = timed(docker.listVolumes());
  setTimeout(() => scope.abort(), 200);
  const s = await scoped;
  assert.ok(s.error && s.ms < 5000, `the scope's call ended after ${s.ms} ms`);
  assert.match(s.error.message, /GET \/networks to Docker at .* was interrupted/);

  setTimeout(() => client.abort(), 100);
  const o = await other;
  assert.ok(o.error && o.ms < 5000, `the client's call ended after ${o.ms} ms (its own limit is 60 s)`);
  assert.match(o.error.message, /GET \/volumes to Docker at .* was interrupted/);
  // Once aborted, the client refuses new calls without dialling.
  const before = e.requests.length;
  await assert.rejects(docker.listImages(), /GET \/images\/json to Docker at .* was interrupted/);
  assert.equal(e.requests.length, before);
  await eventually(() => e.openConnections() === 0, 'the aborted requests were destroyed');
});

test('settings come from the caller: an env is mapped explicitly, and the process environment never mixes in', T, async () => {
  assert.deepEqual(dockerSettingsFromEnv({ DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: '1', WAFFLE_DOCKER_TIMEOUT_MS: '1500', WAFFLE_DOCKER_PULL_TIMEOUT_MS: '60000' }), {
    host: 'tcp://h:2376',
    tlsVerify: true,
    timeoutMs: 1500,
    pullTimeoutMs: 60000,
  });
  assert.deepEqual(dockerSettingsFromEnv({}), {});
  assert.throws(() => dockerSettingsFromEnv({ WAFFLE_DOCKER_TIMEOUT_MS: 'soon' }), /WAFFLE_DOCKER_TIMEOUT_MS="soon" is not a time limit\. Fix: /);
  // docker-modem reads DOCKER_HOST itself; the host given to connectDocker must win over it.
  const e = await engine({ mode: 'silent' });
  const saved = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = 'tcp://127.0.0.1:9';
  try {
    await assert.rejects(connectDocker(e.host, { timeoutMs: 300 }), /no answer to GET \/_ping within 300 ms/);
  } finally {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  }
  assert.equal(e.hung.length, 1, 'the ping went to the given host');
});

// ---- the real CLI ----------------------------------------------------------------------------------

const CLI_LIMIT_MS = 1000;
/** Generous: loading the configuration (esbuild + a child process) dominates on a busy machine. */
const CLI_BOUND_MS = 45_000;

function repo(project: string): string {
  return makeRepo(
    {
      'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
      'services/web.ts': `import { defineService } from 'wafflemaker';
export default defineService({ image: 'waffle-test/busybox:latest', command: 'sleep 3600', stopGracePeriod: '1s' });
`,
    },
    { git: true },
  );
}

const cliEnv = (host: string, stateDir: string) => ({
  DOCKER_HOST: host,
  WAFFLE_DOCKER_TIMEOUT_MS: String(CLI_LIMIT_MS),
  WAFFLE_STATE_DIR: stateDir,
});

test('waffle plan against an engine that never answers exits non-zero, naming the engine', CLI_T, async () => {
  const e = await engine({ mode: 'silent' });
  const project = uniqueProject('hang');
  const dir = repo(project);
  const t0 = Date.now();
  // Without time limits the command never exits: the helper's own limit (2 × the bound) fails the test.
  const r = await waffle(['plan'], { cwd: dir, env: cliEnv(e.host, path.join(tmp, 'state-plan')), timeoutMs: 2 * CLI_BOUND_MS });
  const ms = Date.now() - t0;
  assert.notEqual(r.code, 0, r.stderr);
  assert.ok(ms < CLI_BOUND_MS, `waffle plan took ${ms} ms`);
  assert.ok(r.stderr.includes(`Docker is not answering at ${e.host}`), r.stderr);
  assert.match(r.stderr, /no answer to GET \/_ping within 1 s/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('waffle apply against an engine that hangs after the ping exits non-zero naming the hung call, and releases the lock', CLI_T, async () => {
  // An empty engine for every read, so apply plans changes, takes the lock and starts changing things:
  // then every change hangs.
  const e = await engine({ mode: 'http', answerPing: true, emptyLists: true });
  const project = uniqueProject('hang');
  const dir = repo(project);
  const stateDir = path.join(tmp, 'state-apply');
  const env = cliEnv(e.host, stateDir);

  const t0 = Date.now();
  const r = await waffle(['apply', '--yes', '--plain'], { cwd: dir, env, timeoutMs: 2 * CLI_BOUND_MS });
  const ms = Date.now() - t0;
  assert.notEqual(r.code, 0, r.stderr);
  assert.ok(ms < CLI_BOUND_MS, `waffle apply took ${ms} ms`);
  // It got as far as changing something (under the lock), and that change is the call it names.
  const change = e.hung.find((h) => h.method === 'POST');
  assert.ok(change, `no change reached the engine; requests: ${JSON.stringify(e.requests)}`);
  const call = `POST ${change.url.split('?')[0]}`;
  assert.ok(r.stderr.includes(`did not answer ${call} within 1 s`), `stderr does not name ${call}:\n${r.stderr}`);
  assert.ok(r.stderr.includes(e.host), `stderr does not name the engine:\n${r.stderr}`);
  assert.ok(e.hung.every((h) => h.closedByClient), 'a hung request was left open');

  // The lock was released by the normal path (not left for a take-over): no lock directory remains.
  assert.equal(fs.existsSync(path.join(stateDir, project, 'apply.lock')), false, 'apply.lock left behind');
  const again = await waffle(['apply', '--yes', '--plain'], { cwd: dir, env, timeoutMs: 2 * CLI_BOUND_MS });
  assert.notEqual(again.code, 0);
  assert.doesNotMatch(again.stderr, /being changed by another waffle|taken over|stale/i, again.stderr);
  assert.match(again.stderr, /did not answer POST \//, again.stderr);
  fs.rmSync(dir, { recursive: true, force: true });
});
