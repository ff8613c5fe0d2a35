/**
 * The first Ctrl-C during a replacement: the real CLI (`bin/waffle.js apply --yes --plain --json`,
 * its NDJSON event stream read to send SIGINT while the new version waits for its health) against the
 * real engine. Waits and calls in flight are cancelled, the operation rolls back as its plan says
 * (the new container goes; stop-first: the old one is started again), the lock is released and waffle
 * exits 130 naming what it rolled back. The old version keeps (or resumes) serving: a watcher polls
 * the engine during the whole run for moments the service had no running container.
 *
 * And with an engine that hangs (a test double), the clean-up after an abort is bounded in time.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import {
  cleanupProject,
  dockerClient,
  freePort,
  gitCommitAll,
  httpGet,
  makeRepo,
  planFromJson,
  snapshot,
  uniqueProject,
  waffle,
  WAFFLE_BIN,
  writeFiles,
} from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { startHangingEngine, type HangingEngine } from './doubles/hanging-engine.ts';
import { connectDocker } from '../runtime/docker/client.ts';
import { execute } from '../runtime/apply/executor.ts';
import { LABEL, names } from '../runtime/labels.ts';
import { replaceSteps } from '../runtime/plan/steps.ts';
import type { ApplyEvent, ContainerCreateBody, Operation } from '../runtime/model.ts';

let docker: Dockerode;
const projects: string[] = [];
const dirs: string[] = [];
const engines: HangingEngine[] = [];
const T = { timeout: 180_000 };

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
});

after(async () => {
  for (const p of projects) await cleanupProject(docker, p);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  await Promise.all(engines.map((e) => e.close()));
});

type Event = Record<string, unknown>;

/**
 * The service `web`: v1 becomes healthy at once; v2 (another image) has a healthcheck whose first probe
 * runs only after a minute, so its gate waits in `starting` until the interruption.
 */
function files(project: string, version: 1 | 2, port?: number): Record<string, string> {
  const health = version === 1 ? `{ http: '/index.html', interval: '300ms', timeout: '2s', retries: 5 }` : `{ command: 'true', interval: '60s' }`;
  return {
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
    'services/web.ts': `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${version === 1 ? TEST_IMAGES.appV1 : TEST_IMAGES.appV2}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
${port ? `  ports: ['127.0.0.1:${port}:8080'],\n` : ''}  healthcheck: ${health},
  stopGracePeriod: '1s',
});
`,
  };
}

/** A repository with v1 applied; returns it and its state directory (where the lock lives). */
async function deployedV1(prefix: string, port?: number): Promise<{ project: string; repo: string; env: Record<string, string> }> {
  const project = uniqueProject(prefix);
  projects.push(project);
  const repo = makeRepo(files(project, 1, port), { git: true });
  dirs.push(repo);
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-int-state-'));
  dirs.push(state);
  const env = { WAFFLE_STATE_DIR: state };
  const first = await waffle(['apply', '--yes', '--plain'], { cwd: repo, env });
  assert.equal(first.code, 0, first.stderr);
  writeFiles(repo, files(project, 2, port));
  gitCommitAll(repo, 'web v2');
  return { project, repo, env };
}

/**
 * Runs `waffle apply --yes --plain --json` and sends one SIGINT when `when` first holds for an event.
 * Resolves with the exit code, the events, stderr and how long the process took to exit after the SIGINT.
 */
function applyInterruptedAt(
  cwd: string,
  env: Record<string, string>,
  when: (e: Event, seen: Event[]) => boolean,
): Promise<{ code: number | null; events: Event[]; stderr: string; exitMs: number; interrupted: boolean; sentAt: number; exitAt: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WAFFLE_BIN, 'apply', '--yes', '--plain', '--json'], {
      cwd,
      env: { ...process.env, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const events: Event[] = [];
    let stderr = '';
    let sentAt = 0;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`waffle apply did not end within 120 s\nevents: ${JSON.stringify(events)}\nstderr: ${stderr}`));
    }, 120_000);
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const e = JSON.parse(line) as Event;
        events.push(e);
        if (!sentAt && when(e, events)) {
          sentAt = Date.now();
          child.kill('SIGINT');
        }
      }
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const exitAt = Date.now();
      resolve({ code, events, stderr, exitMs: sentAt ? exitAt - sentAt : -1, interrupted: sentAt > 0, sentAt, exitAt });
    });
  });
}

/** Health-waiting of the replacement: its gate reported the new container `starting`. */
const newOneWaitsForHealth = (e: Event, seen: Event[]) =>
  e.type === 'health-wait' && e.service === 'web' && e.status === 'starting' && seen.some((x) => x.type === 'step' && x.step === 'waiting-health' && x.op === 'replace:web');

/**
 * Polls the project's running containers of `service` until stopped; returns the stretches of time in
 * which a poll found none (a stretch ends at the next poll that finds one).
 */
function watchRunning(project: string, service: string): { stop: () => Promise<{ polls: number; gaps: Array<{ from: number; to: number }> }> } {
  let running = true;
  let polls = 0;
  const gaps: Array<{ from: number; to: number }> = [];
  let open: { from: number; to: number } | undefined;
  const loop = (async () => {
    while (running) {
      const list = await docker.listContainers({ filters: { label: [`${LABEL.project}=${project}`, `${LABEL.service}=${service}`], status: ['running'] } });
      polls++;
      const now = Date.now();
      if (list.length === 0) {
        if (!open) gaps.push((open = { from: now, to: now }));
        else open.to = now;
      } else if (open) {
        open.to = now;
        open = undefined;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { polls, gaps };
    },
  };
}

const stepAt = (events: Event[], step: string): number => {
  const e = events.find((x) => x.type === 'step' && x.step === step && x.op === 'replace:web');
  return typeof e?.at === 'number' ? e.at : NaN;
};

test('Ctrl-C while a start-first replacement waits for health: the candidate is removed, the old container keeps serving, the lock is released, exit 130', T, async () => {
  const { project, repo, env } = await deployedV1('intsf');
  const before = (await snapshot(docker, project)).containers;
  assert.equal(before.length, 1);
  const old = before[0]!;
  assert.equal(old.state, 'running');

  const watch = watchRunning(project, 'web');
  const r = await applyInterruptedAt(repo, env, newOneWaitsForHealth);
  const seen = await watch.stop();
  assert.ok(r.interrupted, `never reached the health gate:\n${r.stderr}`);
  assert.equal(r.code, 130, r.stderr);
  const ready = r.events.find((e) => e.type === 'plan-ready') as { plan: { operations: Array<{ kind: string; strategy?: string }> } } | undefined;
  assert.equal(ready?.plan.operations.find((o) => o.kind === 'replace-service')?.strategy, 'start-first');
  // Prompt: the health gate (a minute long) was cancelled, not waited out.
  assert.ok(r.exitMs < 10_000, `exited ${r.exitMs} ms after the SIGINT`);

  const failed = r.events.find((e) => e.type === 'op-failed' && e.op === 'replace:web') as { failure: { message: string } } | undefined;
  assert.ok(failed, JSON.stringify(r.events.slice(-6)));
  assert.match(failed.failure.message, /interrupted while waiting-health; rolled back: removed the new container \S+-next-\S*, \S+ kept running/);
  assert.ok(r.events.some((e) => e.type === 'step' && e.step === 'rolling-back' && e.op === 'replace:web'));
  assert.match(r.stderr, /stopping: no new operations start/);
  assert.match(r.stderr, /interrupted: stopped cleanly, the project lock was released/);
  assert.doesNotMatch(r.stderr, /Warning|Error/, 'no warning or stray error on the way out');
  assert.match(r.stderr, /web: interrupted while waiting-health; rolled back: removed the new container/);

  // The old container runs, untouched; no candidate remains; the lock is gone.
  const after = (await snapshot(docker, project)).containers;
  assert.deepEqual(after.map((c) => [c.id, c.name, c.state]), [[old.id, old.name, 'running']], JSON.stringify(after));
  assert.equal(fs.existsSync(path.join(env.WAFFLE_STATE_DIR!, project, 'apply.lock')), false, 'apply.lock left behind');
  // Start-first never lets the old container go before the switch: no poll found the service without one.
  assert.ok(seen.polls > 20, `polled ${seen.polls} times`);
  assert.deepEqual(seen.gaps, [], 'the service always had a running container');

  // The next apply is not locked out and finishes the replacement.
  const plan = await waffle(['plan', '--detailed-exitcode', '--json'], { cwd: repo, env });
  assert.equal(plan.code, 2, plan.stderr);
  assert.deepEqual(planFromJson(plan.stdout).operations.map((o) => o.id), ['replace:web']);
});

test('Ctrl-C while a stop-first replacement (fixed host port) waits for health: the old container is started again and answers on its port', T, async () => {
  const port = await freePort();
  const { project, repo, env } = await deployedV1('intsp', port);
  const old = (await snapshot(docker, project)).containers[0]!;
  assert.match((await httpGet(`http://127.0.0.1:${port}/`)).body, /waffle v1/);

  const watch = watchRunning(project, 'web');
  const r = await applyInterruptedAt(repo, env, newOneWaitsForHealth);
  const seen = await watch.stop();
  assert.ok(r.interrupted, `never reached the health gate:\n${r.stderr}`);
  assert.equal(r.code, 130, r.stderr);
  const ready = r.events.find((e) => e.type === 'plan-ready') as { plan: { operations: Array<{ kind: string; strategy?: string }> } } | undefined;
  assert.equal(ready?.plan.operations.find((o) => o.kind === 'replace-service')?.strategy, 'stop-first');
  assert.ok(r.exitMs < 10_000, `exited ${r.exitMs} ms after the SIGINT`);

  const failed = r.events.find((e) => e.type === 'op-failed' && e.op === 'replace:web') as { failure: { message: string } } | undefined;
  assert.ok(failed, JSON.stringify(r.events.slice(-6)));
  assert.match(failed.failure.message, new RegExp(`interrupted while waiting-health; rolled back: removed the new container \\S+, started ${old.name} again`));
  assert.match(r.stderr, new RegExp(`web: interrupted while waiting-health; rolled back: removed the new container \\S+, started ${old.name} again`));
  assert.match(r.stderr, /interrupted: stopped cleanly, the project lock was released/);
  assert.doesNotMatch(r.stderr, /Warning|Error/, 'no warning or stray error on the way out');

  // The same old container runs again and serves on its port; no candidate remains; the lock is gone.
  const after = (await snapshot(docker, project)).containers;
  assert.deepEqual(after.map((c) => [c.id, c.state]), [[old.id, 'running']], JSON.stringify(after));
  const served = await (async () => {
    const end = Date.now() + 10_000;
    for (;;) {
      try {
        return (await httpGet(`http://127.0.0.1:${port}/`)).body;
      } catch (err) {
        if (Date.now() > end) throw err;
        await new Promise((res) => setTimeout(res, 100));
      }
    }
  })();
  assert.match(served, /waffle v1/);
  assert.equal(fs.existsSync(path.join(env.WAFFLE_STATE_DIR!, project, 'apply.lock')), false, 'apply.lock left behind');

  // Without a running container only in the stop-first window (old stopped → new started: it ends by
  // the new one's health wait) and between removing the candidate and starting the old one again (it
  // ends before waffle exits). `to` is the first poll that found one again, so it gets a poll's slack.
  assert.ok(seen.polls > 20, `polled ${seen.polls} times`);
  const stoppedAt = stepAt(r.events, 'stopping-old');
  const startedAt = stepAt(r.events, 'waiting-health');
  const SLACK = 1000;
  const text = JSON.stringify({
    gaps: seen.gaps.map((g) => ({ from: g.from - stoppedAt, to: g.to - stoppedAt })),
    waitingHealth: startedAt - stoppedAt,
    sigint: r.sentAt - stoppedAt,
    exit: r.exitAt - stoppedAt,
  });
  assert.ok(seen.gaps.length <= 2, `gaps (ms after stopping-old): ${text}`);
  for (const g of seen.gaps) {
    const inStopWindow = g.from >= stoppedAt - SLACK && g.to <= startedAt + SLACK;
    const inRollback = g.from >= r.sentAt - SLACK && g.to <= r.exitAt + SLACK;
    assert.ok(inStopWindow || inRollback, `a gap outside the stop-first window and the rollback (ms after stopping-old): ${text}`);
  }
});

test('with an engine that hangs, the clean-up after an abort is bounded: the rollback gives up within its budget and says so', { timeout: 30_000 }, async () => {
  // Answers the ping, then nothing: the old container's stop hangs, and so would every rollback call.
  const e = await startHangingEngine({ mode: 'http', answerPing: true });
  engines.push(e);
  const run = new AbortController();
  const client = await connectDocker(e.host, { timeoutMs: 60_000, signal: run.signal });
  const project = uniqueProject('inth');
  const old = { id: 'a'.repeat(64), name: names.container(project, 'web'), state: 'running' };
  const body: ContainerCreateBody = {
    Image: TEST_IMAGES.appV2,
    Labels: { [LABEL.project]: project, [LABEL.service]: 'web' },
    HostConfig: { RestartPolicy: { Name: 'no', MaximumRetryCount: 0 }, Memory: 0, NanoCpus: 0, PortBindings: {}, Mounts: [], NetworkMode: 'none' },
  } as unknown as ContainerCreateBody;
  const planned = replaceSteps({ strategy: 'stop-first', old, tempName: names.tempContainer(project, 'web', 2), containerName: old.name, body, waitHealthy: true });
  const op: Operation = {
    id: 'replace:web',
    kind: 'replace-service',
    service: 'web',
    strategy: 'stop-first',
    strategyReason: 'fixed host port',
    oldContainerId: old.id,
    oldContainerName: old.name,
    containerName: old.name,
    tempName: names.tempContainer(project, 'web', 2),
    body: planned.body,
    waitHealthy: true,
    steps: planned.steps,
    rollback: planned.rollback,
    after: [],
    causes: [{ kind: 'image', detail: 'app:1 → app:2' }],
  };
  const events: ApplyEvent[] = [];
  const t0 = Date.now();
  setTimeout(() => run.abort(), 300);
  const r = await execute(client, { project, observedFingerprint: 'x', operations: [op], unchanged: [] }, (ev) => events.push(ev), {
    signal: run.signal,
    cleanupMs: 1500,
    cleanupCallMs: 500,
  });
  const ms = Date.now() - t0;
  assert.equal(r.ok, false);
  // 300 ms until the abort, half the budget (0.75 s) for the stop in flight, one rollback call (0.5 s): well under 5 s.
  assert.ok(ms < 5000, `execute took ${ms} ms after an abort with a hung engine`);
  const failed = events.find((ev) => ev.type === 'op-failed');
  assert.ok(failed?.type === 'op-failed', JSON.stringify(events));
  assert.match(failed.failure.message, /^service web: interrupted while stopping-old; rolling back failed: (service web: )?could not start container aaaaaaaaaaaa/);
  // The rollback did reach the engine after the abort (outside the run's signal): its start call.
  assert.ok(e.requests.some((q) => q.method === 'POST' && q.url.startsWith(`/containers/${old.id}/start`)), JSON.stringify(e.requests));
  // Every hung request was given up (the double sees the close a moment after the client destroys it).
  const end = Date.now() + 2000;
  while (!e.hung.every((h) => h.closedByClient) && Date.now() < end) await new Promise((res) => setTimeout(res, 20));
  assert.ok(e.hung.every((h) => h.closedByClient), `a hung request was left open: ${JSON.stringify(e.hung)}`);
});
