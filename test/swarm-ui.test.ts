/**
 * The terminal UI on Swarm: the real CLI in a pseudo-terminal (tmux, 80×30) against a one-node swarm of
 * the real engine (see swarm-support.ts). While Swarm runs a rolling update the live row of the service
 * shows its tasks as Swarm reports them (the new task starting, then running; the previous one going to
 * shutdown); when Swarm rolls an update back, the final screen reports the update failed with the task
 * error, and the command exits 1. The screens are read while the apply runs, so what is asserted is what
 * a person watching sees, not only the last frame.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { ensureEngine, ensureTestImages, TEST_IMAGES } from './engine.ts';
import { dockerClient, gitCommitAll, makeRepo, uniqueProject, WAFFLE_BIN, waffle, writeFiles } from './helpers.ts';
import { joinTestSwarm, removeSwarmProject, type TestSwarm } from './swarm-support.ts';

let docker: Dockerode;
let host: string;
let swarm: TestSwarm | undefined;
const projects: string[] = [];
const dirs: string[] = [];
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-swarm-ui-'));
const cliEnv = { WAFFLE_STATE_DIR: path.join(home, 'state'), WAFFLE_AGE_IDENTITY_FILE: path.join(home, 'id', 'age.key'), WAFFLE_AGE_IDENTITY: '' };
/** A tmux server of our own (-L), so nothing else's sessions are touched. */
const SOCKET = `waffle-swarm-ui-${process.pid}-${Date.now().toString(36)}`;

function tmux(...args: string[]): string {
  const r = spawnSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  host = await ensureEngine();
  process.env.DOCKER_HOST = host;
  await ensureTestImages(host);
  docker = await dockerClient();
  swarm = await joinTestSwarm(docker, host);
});

after(async () => {
  spawnSync('tmux', ['-L', SOCKET, 'kill-server'], { stdio: 'ignore' });
  for (const p of projects) await removeSwarmProject(docker, p);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  fs.rmSync(home, { recursive: true, force: true });
  await swarm?.leave();
});

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Starts `waffle <args>` in a new 80×30 tmux session; the pane prints WAFFLE-EXIT=<code> when it ends. */
function startInTmux(name: string, repo: string, args: string[]): void {
  const script = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-swarm-ui-')), 'run.sh');
  dirs.push(path.dirname(script));
  const env = Object.entries({ ...cliEnv, DOCKER_HOST: host })
    .map(([k, v]) => `${k}=${q(v)}`)
    .join(' ');
  fs.writeFileSync(
    script,
    [
      `cd ${q(repo)}`,
      `unset CI NO_COLOR FORCE_COLOR`,
      `export TERM=xterm-256color ${env}`,
      `${q(process.execPath)} ${q(WAFFLE_BIN)} ${args.map(q).join(' ')}`,
      `echo WAFFLE-EXIT=$?`,
      `sleep 120`,
    ].join('\n') + '\n',
  );
  tmux('new-session', '-d', '-s', name, '-x', '80', '-y', '30', `sh ${q(script)}`);
}

/** The visible pane (what is on the screen now), wrapped lines joined. */
function screen(name: string): string {
  return tmux('capture-pane', '-p', '-J', '-t', name)
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
}

/**
 * Polls the screen until `done` matches, and returns every distinct screen seen on the way (a rolling
 * update's rows change in place, so only the frames taken while it runs show them).
 */
async function watch(name: string, done: RegExp, timeoutMs = 240_000): Promise<{ frames: string[]; final: string }> {
  const frames: string[] = [];
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = screen(name);
    if (frames.at(-1) !== s) frames.push(s);
    if (done.test(s)) return { frames, final: s };
    if (Date.now() > end) throw new Error(`timed out waiting for ${done} in:\n${s}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const web = (image: string, health = '/') => `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${image}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  replicas: 2,
  healthcheck: { http: '${health}', interval: '500ms', timeout: '2s', retries: 2, startPeriod: '1s' },
  stopGracePeriod: '1s',
  rollout: { monitor: '3s' },
});
`;

test('on Swarm the terminal UI shows the tasks of a rolling update live, and an update Swarm rolls back as failed with the task error', { timeout: 900_000 }, async () => {
  const project = uniqueProject('swui');
  projects.push(project);
  const repo = makeRepo(
    {
      'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}', target: 'swarm' });\n`,
      'services/web.ts': web(TEST_IMAGES.appV1),
    },
    { git: true },
  );
  dirs.push(repo);
  const first = await waffle(['apply', '--yes', '--plain'], { cwd: repo, env: { ...cliEnv, DOCKER_HOST: host } });
  assert.equal(first.code, 0, first.stderr);

  // ── a rolling update, watched in the terminal ──
  writeFiles(repo, { 'services/web.ts': web(TEST_IMAGES.appV2) });
  gitCommitAll(repo, 'v2');
  const upd = `upd-${project}`;
  startInTmux(upd, repo, ['apply', '--yes']);
  const rolled = await watch(upd, /WAFFLE-EXIT=\d+/);
  assert.match(rolled.final, /WAFFLE-EXIT=0/, rolled.final);
  const live = rolled.frames.join('\n');
  // While it ran, the service's row counted the new tasks running out of the 2 replicas and showed the
  // tasks as Swarm moved them: a previous one going to shutdown only once a new one ran (start-first).
  const rows = [...new Set(live.split('\n').filter((l) => /^\S? ?web\s+updating/.test(l.trim())).map((l) => l.replace(/\s+\d+(\.\d)?m?s$/, '').trim()))];
  assert.ok(rows.some((r) => /updating 0\/2 new · /.test(r)), `a frame before any new task ran:\n${rows.join('\n')}`);
  assert.ok(rows.some((r) => /updating [12]\/2 new · task \d \(previous\) \w+ → shut/.test(r)), `a frame with a previous task shutting down:\n${rows.join('\n')}`);
  assert.ok(!rows.some((r) => /updating 0\/2 new · task \d \(previous\) \w+ → shut/.test(r)), `no previous task stopped before a new one ran:\n${rows.join('\n')}`);
  assert.match(rolled.final, /✓ web\s+updated in/);
  assert.match(rolled.final, /apply complete: 0 created, 1 replaced, .* 0 failed/);
  for (const frame of rolled.frames) for (const line of frame.split('\n')) assert.ok([...line].length <= 80, `line wider than 80 columns: ${JSON.stringify(line)}`);
  const svc = (await docker.getService(`${project}_web`).inspect()) as { Spec: { TaskTemplate: { ContainerSpec: { Image: string } } } };
  assert.equal(svc.Spec.TaskTemplate.ContainerSpec.Image, TEST_IMAGES.appV2);

  // ── an update whose health check fails: Swarm rolls it back; the UI says failed, with the task error ──
  writeFiles(repo, { 'services/web.ts': web(TEST_IMAGES.appV1, '/missing') });
  gitCommitAll(repo, 'broken health');
  const bad = `bad-${project}`;
  startInTmux(bad, repo, ['apply', '--yes']);
  const failed = await watch(bad, /WAFFLE-EXIT=\d+/);
  assert.match(failed.final, /WAFFLE-EXIT=1/, failed.final);
  assert.match(failed.final, /✗ web/, failed.final);
  assert.match(failed.final, /Swarm rolled the update back/, failed.final);
  assert.match(failed.final, /unhealthy container/, failed.final);
  assert.match(failed.final, /apply failed: .*1 failed/, failed.final);
  assert.match(failed.frames.join('\n'), /\[rollback_\w+\]/, 'the rollback showed while it ran');
  // The old version still serves: the service spec is back on v2 (the last good one).
  const after = (await docker.getService(`${project}_web`).inspect()) as { Spec: { TaskTemplate: { ContainerSpec: { Image: string; Healthcheck?: { Test?: string[] } } } } };
  assert.equal(after.Spec.TaskTemplate.ContainerSpec.Image, TEST_IMAGES.appV2);
});
