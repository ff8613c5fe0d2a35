/**
 * Global options are accepted by every command, before or after its name: `--plain` on each command
 * (init, check, plan, apply, status, logs, secrets, destroy) runs it with plain output; `-C` after the
 * command points at the repository; an unknown option is still refused. And the one Ctrl-C rule: the
 * first press aborts the signal with a message, the second exits 130 at once; the closing message names
 * what the interruption did to each operation it stopped.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { createInterrupt, STOPPING, ABORTED, INTERRUPTED } from '../cli/interrupt.ts';
import { cleanupProject, dockerClient, makeRepo, snapshot, uniqueProject, waffle } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';

const project = uniqueProject('opt');
let docker: Dockerode;
let repo: string;
const dirs: string[] = [];

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  repo = makeRepo(
    {
      'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
      'services/api.ts': `import { defineService } from 'wafflemaker';
export default defineService({ image: '${TEST_IMAGES.appV1}', command: ['sh', '-c', 'echo hello from api; exec httpd -f -p 8080 -h /www'], port: 8080 });
`,
    },
    { git: true },
  );
  dirs.push(repo);
});

after(async () => {
  await cleanupProject(docker, project);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const ESC = /\x1b/;

test('--plain is accepted by every command, after the command name', async () => {
  const fresh = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-init-'));
  dirs.push(fresh);
  const runs: Array<[string[], number, RegExp | undefined]> = [
    [['init', '--plain', '--project', 'x'], 0, /waffle\.config\.ts/],
    [['check', '--no-types', '--plain'], 0, /ok: project/],
    [['plan', '--plain'], 0, undefined],
    [['apply', '--yes', '--plain'], 0, /apply complete: 1 created/],
    [['status', '--plain'], 0, undefined],
    [['logs', 'api', '--plain', '-n', '5'], 0, undefined],
    [['secrets', 'list', '--plain'], 0, /no secrets/],
    [['destroy', '--yes', '--plain'], 0, /destroyed/],
  ];
  for (const [args, code, stderr] of runs) {
    const r = await waffle(args, { cwd: args[0] === 'init' ? fresh : repo });
    assert.equal(r.code, code, `waffle ${args.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /unknown option/, `waffle ${args.join(' ')}`);
    assert.doesNotMatch(r.stderr + r.stdout, ESC, `waffle ${args.join(' ')}: no escape sequences`);
    if (stderr) assert.match(r.stderr, stderr, `waffle ${args.join(' ')}`);
    if (args[0] === 'plan') assert.match(r.stdout, /Plan for/, 'the plan is the result: stdout');
    if (args[0] === 'status') assert.match(r.stdout, /api\s+running/);
    if (args[0] === 'logs') assert.match(r.stdout, /hello from api/);
  }
  assert.ok(fs.existsSync(path.join(fresh, 'waffle.config.ts')));
  assert.deepEqual((await snapshot(docker, project)).containers, [], 'destroy --yes --plain removed the container');
});

test('global options work before or after the command: -C, --json, --docker-host', async () => {
  const elsewhere = os.tmpdir();
  const after = await waffle(['plan', '-C', repo, '--json'], { cwd: elsewhere });
  assert.equal(after.code, 0, after.stderr);
  const before = await waffle(['-C', repo, '--json', 'plan'], { cwd: elsewhere });
  assert.equal(before.code, 0, before.stderr);
  for (const r of [after, before]) {
    const last = JSON.parse(r.stdout.trimEnd().split('\n').at(-1)!);
    assert.equal(last.type, 'plan-ready');
    assert.equal(last.project, project);
  }
  // --docker-host after the command is used (an engine that does not exist: the run fails naming it).
  const bad = await waffle(['plan', '--docker-host', 'unix:///nonexistent/docker.sock', '--json'], { cwd: repo });
  assert.equal(bad.code, 1);
  const failed = JSON.parse(bad.stdout.trimEnd().split('\n').at(-1)!);
  assert.equal(failed.type, 'run-failed');
  assert.equal(failed.stage, 'docker');
  assert.match(failed.message, /\/nonexistent\/docker\.sock/);
  assert.ok(failed.problems[0].fix, 'the fix is its own field');
});

test('an unknown option is still refused, naming it', async () => {
  const r = await waffle(['destroy', '--yes', '--bogus'], { cwd: repo });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown option '--bogus'/);
});

test('Ctrl-C rule: the first press aborts the signal and says so; the second exits 130 at once', () => {
  const said: string[] = [];
  const exits: number[] = [];
  const handlers = new Map<string, () => void>();
  const fakeProcess = {
    on: (ev: string, fn: () => void) => void handlers.set(ev, fn),
    off: (ev: string) => void handlers.delete(ev),
  } as unknown as Pick<NodeJS.Process, 'on' | 'off'>;
  const i = createInterrupt({ say: (l) => said.push(l), exit: (c) => exits.push(c), process: fakeProcess });
  let unmounted = 0;
  i.beforeExit(() => unmounted++);
  assert.equal(i.signal.aborted, false);
  handlers.get('SIGINT')!();
  assert.equal(i.signal.aborted, true);
  assert.equal(i.presses, 1);
  assert.deepEqual(said, [STOPPING]);
  assert.deepEqual(exits, []);
  // The closing message names what the interruption did to each operation it stopped (op-failed after the press).
  i.hear({ type: 'op-failed', service: 'web', failure: { message: 'service web: interrupted while waiting-health; rolled back: removed the new container p-web-next-2, p-web kept running' } });
  i.hear({ type: 'op-done', service: 'api' });
  assert.equal(
    i.outcome(),
    `${INTERRUPTED}\n  web: interrupted while waiting-health; rolled back: removed the new container p-web-next-2, p-web kept running`,
  );
  i.press(); // a Ctrl-C key read in raw mode counts the same
  assert.deepEqual(exits, [130]);
  assert.equal(unmounted, 1);
  assert.deepEqual(said, [STOPPING, ABORTED]);
  i.dispose();
  assert.equal(handlers.size, 0, 'handlers removed');
  // Muted (an Ink view shows its own line), the first press prints nothing.
  const quiet: string[] = [];
  const j = createInterrupt({ say: (l) => quiet.push(l), exit: () => undefined });
  // A failure before any press is not the interruption's doing.
  j.hear({ type: 'op-failed', service: 'web', failure: { message: 'service web: did not become healthy' } });
  j.mute();
  j.press();
  assert.equal(j.signal.aborted, true);
  assert.deepEqual(quiet, []);
  assert.equal(j.outcome(), INTERRUPTED);
});

test('plan --from-graph replays a stored graph (check --json) exactly like the repository it came from', async () => {
  const stored = await waffle(['check', '--no-types', '--json'], { cwd: repo });
  assert.equal(stored.code, 0, stored.stderr);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-graph-')), 'graph.json');
  dirs.push(path.dirname(file));
  fs.writeFileSync(file, stored.stdout);
  const fromDir = await waffle(['plan', '--json'], { cwd: repo });
  const fromGraph = await waffle(['plan', '--json', '--from-graph', file], { cwd: os.tmpdir() });
  assert.equal(fromGraph.code, 0, fromGraph.stderr);
  const lines = fromGraph.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines[0].source, 'graph');
  assert.ok(!lines.some((e) => e.type === 'load-start'), 'nothing loaded');
  const planOf = (out: string) => out.trimEnd().split('\n').map((l) => JSON.parse(l)).find((e) => e.type === 'plan-ready').plan;
  assert.deepEqual(planOf(fromGraph.stdout).operations.map((o: { id: string }) => o.id), planOf(fromDir.stdout).operations.map((o: { id: string }) => o.id));
});

test('apply --json without --yes and without a terminal: the stream ends in run-cancelled, exit 1 naming --yes, nothing changed', async () => {
  const r = await waffle(['apply', '--json'], { cwd: repo });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Pass --yes/);
  const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.at(-1).type, 'run-cancelled');
  assert.ok(lines.some((e) => e.type === 'plan-ready'));
  assert.ok(!lines.some((e) => e.type === 'apply-start'));
  assert.deepEqual((await snapshot(docker, project)).containers, []);
});
