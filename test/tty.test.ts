/**
 * The real CLI in a pseudo-terminal (tmux, 80×30) against the real engine: the Ink UI shows the plan and
 * the question, `y` applies, the final screen holds the summary and no line is wider than 80 columns.
 * Ctrl-C once stops cleanly (no new operation, Docker calls in flight aborted, exit 130); twice exits at once (130). Without a TTY the same
 * apply prints plain lines with no escape sequence at all, and refuses to prompt without --yes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, copyDemoRepo, dockerClient, freePort, snapshot, uniqueProject, WAFFLE_BIN, waffle } from './helpers.ts';
import { DEMO_IMAGES, ensureTestImages, TEST_IMAGES } from './engine.ts';

let docker: Dockerode;
const projects: string[] = [];
const dirs: string[] = [];
/** A tmux server of our own (-L), so nothing else's sessions are touched. */
const SOCKET = `waffle-tty-${process.pid}-${Date.now().toString(36)}`;

function tmux(...args: string[]): string {
  const r = spawnSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!, { ...TEST_IMAGES, ...DEMO_IMAGES });
});

after(async () => {
  spawnSync('tmux', ['-L', SOCKET, 'kill-server'], { stdio: 'ignore' });
  for (const p of projects) await cleanupProject(docker, p);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function demoRepo(): Promise<{ project: string; repo: string }> {
  const project = uniqueProject('tty');
  projects.push(project);
  const port = await freePort();
  const repo = copyDemoRepo(project, [['127.0.0.1:8088:8080', `127.0.0.1:${port}:8080`]]);
  dirs.push(repo);
  return { project, repo };
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Starts `waffle <args>` in a new 80×30 tmux session; the pane prints WAFFLE-EXIT=<code> when it ends. */
function startInTmux(name: string, repo: string, args: string[]): void {
  const script = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-tty-')), 'run.sh');
  dirs.push(path.dirname(script));
  fs.writeFileSync(
    script,
    [
      // The shell survives a Ctrl-C that reaches it (after waffle exited), so the pane stays readable.
      `trap true INT`,
      `cd ${q(repo)}`,
      `unset CI NO_COLOR FORCE_COLOR`,
      `export TERM=xterm-256color DOCKER_HOST=${q(process.env.DOCKER_HOST!)}`,
      `${q(process.execPath)} ${q(WAFFLE_BIN)} ${args.map(q).join(' ')}`,
      `echo WAFFLE-EXIT=$?`,
      `sleep 120`,
    ].join('\n') + '\n',
  );
  tmux('new-session', '-d', '-s', name, '-x', '80', '-y', '30', `sh ${q(script)}`);
}

/** The pane's text: wrapped lines joined (-J) so a line wider than 80 columns shows as one long line. */
function screen(name: string, history = false): string {
  return tmux('capture-pane', '-p', '-J', '-t', name, ...(history ? ['-S', '-200'] : []))
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
}

async function waitFor(name: string, re: RegExp, timeoutMs = 90_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const text = screen(name, true);
    if (re.test(text)) return text;
    if (Date.now() > end) throw new Error(`timed out waiting for ${re} in:\n${text}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

test('in a terminal: plan, prompt, y, live progress, summary; 80 columns without broken lines', async () => {
  const { project, repo } = await demoRepo();
  const name = `apply-${project}`;
  startInTmux(name, repo, ['apply']);
  const review = await waitFor(name, /Apply these changes\? \(y\/N\)/);
  assert.match(review, /Plan for tty\w+: 4 to create, 0 unchanged/);
  assert.match(review, /^\+\s+create\s+api/m);
  assert.deepEqual((await snapshot(docker, project)).containers, [], 'nothing changes before the answer');
  tmux('send-keys', '-t', name, 'd');
  await waitFor(name, /d: short diff/);
  tmux('send-keys', '-t', name, 'y', 'Enter');
  const final = await waitFor(name, /WAFFLE-EXIT=\d+/);
  assert.match(final, /WAFFLE-EXIT=0/, final);
  const visible = screen(name);
  assert.match(visible, /apply complete: 4 created, 0 replaced, 0 updated, 0 removed, 0 failed in \d/);
  for (const svc of ['api', 'cache', 'web', 'worker']) assert.match(final, new RegExp(`✓ ${svc}\\s+created in`));
  for (const line of final.split('\n')) assert.ok([...line].length <= 80, `line wider than 80 columns: ${JSON.stringify(line)}`);
  assert.doesNotMatch(final, /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/, 'no spinner left on the final screen');
  const snap = await snapshot(docker, project);
  assert.equal(snap.containers.filter((c) => c.state === 'running').length, 4);
});

test('in a terminal: Ctrl-C once stops cleanly: no new operation starts, exit code 130 with a message', async () => {
  const { project, repo } = await demoRepo();
  const name = `stop-${project}`;
  startInTmux(name, repo, ['apply', '--yes']);
  // api and cache start first (web and worker wait for api): interrupt while they wait for health.
  await waitFor(name, /waiting for health/);
  tmux('send-keys', '-t', name, 'C-c');
  const final = await waitFor(name, /WAFFLE-EXIT=\d+/);
  assert.match(final, /stopping: no new operations/);
  assert.match(final, /interrupted: stopped cleanly, the project lock was released/);
  assert.match(final, /WAFFLE-EXIT=130/);
  assert.match(final, /apply failed: .*skipped/);
  assert.match(final, /skipped: apply aborted before it started/);
  const snap = await snapshot(docker, project);
  const names = snap.containers.map((c) => c.name.slice(project.length + 1)).sort();
  assert.ok(!names.includes('web') && !names.includes('worker'), `web and worker never started: ${names}`);
  // The lock was released: the next apply can start at once and finishes the job.
  const again = await waffle(['apply', '--yes', '--plain'], { cwd: repo });
  assert.equal(again.code, 0, again.stderr);
});

test('in a terminal: Ctrl-C twice (both presses in one read) exits at once with a warning and exit code 130', async () => {
  const { repo, project } = await demoRepo();
  const name = `abort-${project}`;
  startInTmux(name, repo, ['apply', '--yes']);
  await waitFor(name, /waiting for health/);
  // One send-keys: both presses reach waffle together, so the second lands while the first is stopping.
  tmux('send-keys', '-t', name, 'C-c', 'C-c');
  const final = await waitFor(name, /WAFFLE-EXIT=\d+/);
  assert.match(final, /aborted: exited at once/);
  assert.match(final, /WAFFLE-EXIT=130/);
});

test('in a terminal with --plain: Ctrl-C at the prompt cancels, changes nothing, exit code 130', async () => {
  const { repo, project } = await demoRepo();
  const name = `prompt-${project}`;
  startInTmux(name, repo, ['apply', '--plain']);
  await waitFor(name, /Apply these changes\? \(y\/N\)/);
  tmux('send-keys', '-t', name, 'C-c');
  const final = await waitFor(name, /WAFFLE-EXIT=\d+/);
  assert.match(final, /cancelled: nothing was changed/);
  assert.doesNotMatch(final, /operation was aborted/);
  assert.match(final, /WAFFLE-EXIT=130/);
  const docker = await dockerClient();
  assert.deepEqual(await snapshot(docker, project), { containers: [], networks: [], volumes: [] });
});

test('without a TTY: the same apply prints plain lines and no escape sequences; prompting needs --yes', async () => {
  const { project, repo } = await demoRepo();
  // Colour is allowed by the environment: only the missing terminal turns it (and the Ink UI) off.
  const env = { NO_COLOR: undefined, FORCE_COLOR: undefined, CI: undefined, TERM: 'xterm-256color' } as unknown as Record<string, string>;
  const refused = await waffle(['apply'], { cwd: repo, env });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /Pass --yes/);
  assert.equal((await snapshot(docker, project)).containers.length, 0);

  const r = await waffle(['apply', '--yes'], { cwd: repo, env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '', 'no data on stdout without --json');
  assert.doesNotMatch(r.stderr, /\x1b/, 'no escape sequences');
  assert.doesNotMatch(r.stderr, /\r/, 'no carriage returns');
  const lines = r.stderr.trimEnd().split('\n');
  assert.match(lines[0], /^Plan for tty\w+: 4 to create, 0 unchanged$/);
  assert.ok(lines.includes(`applying 9 operations to project ${project}`), r.stderr);
  assert.ok(lines.some((l) => /^api: waiting-health$/.test(l)));
  assert.ok(lines.some((l) => /^✓ web: created in \d/.test(l)));
  assert.match(lines.at(-1)!, /^apply complete: 4 created, 0 replaced, 0 updated, 0 removed, 0 failed in \d/);
});
