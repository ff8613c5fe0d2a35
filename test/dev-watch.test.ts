/**
 * `waffle dev` on the real engine, as a person uses it: the real CLI runs in a temporary repository
 * (plain lines, keys on stdin) while the test edits files like an editor would and watches Docker.
 * An edited service is replaced; a syntax error is shown at its line and the container keeps running;
 * the fix applies; a new service file and a newly imported local file are picked up without a restart;
 * `develop.watch` copies a file into the container (sync) and restarts it (restart); `q` and Ctrl-C end
 * the session and the services stay. The pure parts (which actions a change calls for, validation)
 * are checked on their own.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, execIn, makeRepo, uniqueProject, WAFFLE_BIN, writeFiles } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { developActions } from '../runtime/plan/develop.ts';
import { buildGraph } from '../runtime/graph/graph.ts';
import { ProblemsError } from '../runtime/problems.ts';
import type { LoadedRepo, ServiceGraph } from '../runtime/model.ts';

let docker: Dockerode;
const projects: string[] = [];
const repos: string[] = [];
const children: ChildProcessWithoutNullStreams[] = [];

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!, TEST_IMAGES);
});

/** A tmux server of our own (-L), so nothing else's sessions are touched. */
const SOCKET = `waffle-dev-${process.pid}-${Date.now().toString(36)}`;
const tmux = (...args: string[]): string => {
  const r = spawnSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

after(async () => {
  spawnSync('tmux', ['-L', SOCKET, 'kill-server'], { stdio: 'ignore' });
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const p of projects) await cleanupProject(docker, p);
  for (const r of repos) fs.rmSync(r, { recursive: true, force: true });
});

/** A running `waffle dev --plain`: its stderr as it grows, and a way to wait for a line. */
class Dev {
  readonly child: ChildProcessWithoutNullStreams;
  out = '';
  /** Where the next `waitFor` starts reading. */
  #from = 0;
  readonly exited: Promise<number>;

  constructor(cwd: string) {
    this.child = spawn(process.execPath, [WAFFLE_BIN, 'dev', '--plain', '--debounce', '150'], {
      cwd,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    children.push(this.child);
    this.child.stderr.on('data', (d) => (this.out += d));
    this.child.stdout.on('data', (d) => (this.out += d));
    this.exited = new Promise((r) => this.child.on('close', (code) => r(code ?? 1)));
  }

  /** Resolves with the text from the last match on, once `re` appears after it (fails after a generous bound). */
  async waitFor(re: RegExp, what: string, limitMs = 90_000): Promise<string> {
    const until = Date.now() + limitMs;
    for (;;) {
      const rest = this.out.slice(this.#from);
      const m = re.exec(rest);
      if (m) {
        const text = rest.slice(0, m.index + m[0].length);
        this.#from += m.index + m[0].length;
        return text;
      }
      if (this.child.exitCode !== null) assert.fail(`waffle dev exited (${this.child.exitCode}) before ${what}:\n${this.out}`);
      if (Date.now() > until) assert.fail(`no ${what} in waffle dev's output:\n${this.out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const SETTLED = /watching for changes \(q then Enter/;

async function container(project: string, service: string): Promise<Dockerode.ContainerInspectInfo> {
  return docker.getContainer(`${project}-${service}`).inspect();
}

const envOf = (info: Dockerode.ContainerInspectInfo) => info.Config.Env.filter((e) => e.startsWith('V='));

function webTs(v: string, extra = ''): string {
  return `import { defineService } from 'wafflemaker';
${extra}
export default defineService({
  image: '${TEST_IMAGES.busybox}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  stopGracePeriod: '1s',
  env: { V: ${v} },
  develop: {
    watch: [
      { path: './www', action: 'sync', target: '/www' },
      { path: './app.conf', action: 'restart' },
    ],
  },
});
`;
}

test('waffle dev: edits redeploy, a broken edit keeps the container, new files are picked up, sync and restart act, q leaves the services', async () => {
  const project = uniqueProject('dev');
  projects.push(project);
  const repo = makeRepo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
    'services/web.ts': webTs("'1'"),
    'www/index.html': 'first\n',
    'app.conf': 'a=1\n',
    'lib/version.ts': "export const version = 'lib-1';\n",
  });
  repos.push(repo);
  const dev = new Dev(repo);

  // The first apply creates the service.
  await dev.waitFor(/apply complete: 1 created/, 'the first apply');
  await dev.waitFor(SETTLED, 'the watching line');
  const first = await container(project, 'web');
  assert.equal(first.State.Running, true);
  assert.deepEqual(envOf(first), ['V=1']);

  // Editing the service file replaces its container, and the plan of the change is shown.
  fs.writeFileSync(path.join(repo, 'services/web.ts'), webTs("'2'"));
  let text = await dev.waitFor(SETTLED, 'the redeploy after an edit');
  assert.match(text, /changed: services\/web\.ts/);
  assert.match(text, /replace web[\s\S]*env\s+V changed/);
  assert.match(text, /apply complete: 0 created, 1 replaced/);
  const second = await container(project, 'web');
  assert.notEqual(second.Id, first.Id);
  assert.deepEqual(envOf(second), ['V=2']);

  // A syntax error: the problem at its file and line, nothing applied, the container keeps running.
  fs.writeFileSync(path.join(repo, 'services/web.ts'), webTs("'3'") + 'export const broken = ;\n');
  text = await dev.waitFor(SETTLED, 'the report of the broken edit');
  assert.match(text, /services\/web\.ts:\d+:\d+: /);
  assert.match(text, /not applied: the running services are left as they are/);
  assert.doesNotMatch(text, /apply complete/);
  const during = await container(project, 'web');
  assert.equal(during.Id, second.Id);
  assert.equal(during.State.Running, true);

  // Fixing it applies.
  fs.writeFileSync(path.join(repo, 'services/web.ts'), webTs("'3'"));
  text = await dev.waitFor(SETTLED, 'the redeploy after the fix');
  assert.match(text, /apply complete: 0 created, 1 replaced/);
  const third = await container(project, 'web');
  assert.deepEqual(envOf(third), ['V=3']);

  // A new service file is created without restarting waffle dev.
  writeFiles(repo, {
    'services/worker.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: '${TEST_IMAGES.busybox}', command: ['sleep', '3600'], stopGracePeriod: '1s' });\n`,
  });
  text = await dev.waitFor(SETTLED, 'the new service');
  assert.match(text, /changed: services\/worker\.ts/);
  assert.match(text, /apply complete: 1 created, 0 replaced/);
  assert.equal((await container(project, 'worker')).State.Running, true);

  // A newly imported local file is watched from then on: editing it redeploys the service that imports it.
  fs.writeFileSync(path.join(repo, 'services/web.ts'), webTs('version', "import { version } from '../lib/version';"));
  text = await dev.waitFor(SETTLED, 'the redeploy with the new import');
  assert.match(text, /apply complete: 0 created, 1 replaced/);
  assert.deepEqual(envOf(await container(project, 'web')), ['V=lib-1']);
  fs.writeFileSync(path.join(repo, 'lib/version.ts'), "export const version = 'lib-2';\n");
  text = await dev.waitFor(SETTLED, 'the redeploy after editing the imported file');
  assert.match(text, /changed: lib\/version\.ts/);
  const fourth = await container(project, 'web');
  assert.deepEqual(envOf(fourth), ['V=lib-2']);

  // develop.watch sync: the file is copied into the running container, which is not replaced.
  fs.writeFileSync(path.join(repo, 'www/index.html'), 'second\n');
  await dev.waitFor(/✓ web: synced \/www\/index\.html/, 'the sync');
  const cat = await execIn(docker, `${project}-web`, ['cat', '/www/index.html']);
  assert.equal(cat.output, 'second\n');
  assert.equal((await container(project, 'web')).Id, fourth.Id);

  // develop.watch restart: the same container, started again.
  fs.writeFileSync(path.join(repo, 'app.conf'), 'a=2\n');
  await dev.waitFor(/✓ web: restarted/, 'the restart');
  const restarted = await container(project, 'web');
  assert.equal(restarted.Id, fourth.Id);
  assert.notEqual(restarted.State.StartedAt, fourth.State.StartedAt);
  assert.equal(restarted.State.Running, true);

  // q ends the session cleanly; the services stay.
  dev.child.stdin.write('q\n');
  assert.equal(await dev.exited, 0, dev.out);
  assert.match(dev.out, /stopped watching; the services keep running/);
  assert.equal((await container(project, 'web')).State.Running, true);
  assert.equal((await container(project, 'worker')).State.Running, true);
});

test('waffle dev: a missing import is reported with its fix; creating the file resumes; Ctrl-C while idle exits 0 and leaves the services', async () => {
  const project = uniqueProject('devb');
  projects.push(project);
  const repo = makeRepo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
    'services/app.ts': `import { defineService } from 'wafflemaker';\nimport { cmd } from '../lib/cmd';\nexport default defineService({ image: '${TEST_IMAGES.busybox}', command: cmd, stopGracePeriod: '1s' });\n`,
  });
  repos.push(repo);
  const dev = new Dev(repo);
  let text = await dev.waitFor(SETTLED, 'the first (failed) load');
  assert.match(text, /services\/app\.ts:2:\d+: .*lib\/cmd/);
  assert.match(text, /not applied/);
  await assert.rejects(container(project, 'app'));

  writeFiles(repo, { 'lib/cmd.ts': "export const cmd = ['sleep', '3600'];\n" });
  text = await dev.waitFor(SETTLED, 'the apply once the import exists');
  assert.match(text, /apply complete: 1 created/);
  const app = await container(project, 'app');
  assert.deepEqual(app.Config.Cmd, ['sleep', '3600']);

  dev.child.kill('SIGINT');
  assert.equal(await dev.exited, 0, dev.out);
  assert.match(dev.out, /stopped watching; the services keep running/);
  assert.equal((await container(project, 'app')).State.Running, true);
});

test('waffle dev in a terminal: the live view shows each change\'s plan and result in 80 columns; q quits, the services stay', async () => {
  const project = uniqueProject('devt');
  projects.push(project);
  const repo = makeRepo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
    'services/web.ts': webTs("'1'"),
    'www/index.html': 'first\n',
    'app.conf': 'a=1\n',
  });
  repos.push(repo);
  const q = (x: string) => `'${x.replace(/'/g, `'\\''`)}'`;
  const scriptDir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-dev-tty-'));
  repos.push(scriptDir);
  fs.writeFileSync(
    path.join(scriptDir, 'run.sh'),
    [
      'trap true INT',
      `cd ${q(repo)}`,
      'unset CI NO_COLOR FORCE_COLOR',
      `export TERM=xterm-256color DOCKER_HOST=${q(process.env.DOCKER_HOST!)}`,
      `${q(process.execPath)} ${q(WAFFLE_BIN)} dev --debounce 150`,
      'echo WAFFLE-EXIT=$?',
      'sleep 120',
    ].join('\n') + '\n',
  );
  const name = `dev-${project}`;
  tmux('new-session', '-d', '-s', name, '-x', '80', '-y', '30', `sh ${q(path.join(scriptDir, 'run.sh'))}`);
  const screen = () => tmux('capture-pane', '-p', '-J', '-t', name, '-S', '-300').split('\n').map((l) => l.trimEnd()).join('\n');
  const waitScreen = async (re: RegExp, what: string) => {
    const until = Date.now() + 90_000;
    for (;;) {
      const text = screen();
      if (re.test(text)) return text;
      if (Date.now() > until) assert.fail(`no ${what} on the screen:\n${text}`);
      await new Promise((r) => setTimeout(r, 150));
    }
  };
  await waitScreen(/apply complete: 1 created[\s\S]*up to date · watching/, 'the first apply');
  fs.writeFileSync(path.join(repo, 'services/web.ts'), webTs("'2'"));
  await waitScreen(/changed: services\/web\.ts[\s\S]*-\/\+ replace web[\s\S]*apply complete: 0 created, 1 replaced[\s\S]*up to date · watching/, 'the redeploy');
  fs.writeFileSync(path.join(repo, 'services/web.ts'), webTs("'3'") + 'export const broken = ;\n');
  await waitScreen(/services\/web\.ts:\d+:\d+[\s\S]*not applied: fix the file and save/, 'the broken edit');
  tmux('send-keys', '-t', name, 'q');
  const final = await waitScreen(/WAFFLE-EXIT=\d+/, 'the exit');
  assert.match(final, /WAFFLE-EXIT=0/);
  assert.match(final, /stopped watching; the services keep running/);
  for (const line of final.split('\n')) assert.ok([...line].length <= 80, `line wider than 80 columns: ${JSON.stringify(line)}`);
  const web = await container(project, 'web');
  assert.equal(web.State.Running, true);
  assert.deepEqual(envOf(web), ['V=2']);
});

function graphOf(develop: unknown, root = '/repo'): ServiceGraph {
  const repo: LoadedRepo = {
    root,
    configFile: 'waffle.config.ts',
    config: { project: 'p' },
    services: [{ name: 'web', file: 'services/web.ts', data: { image: 'busybox:1', develop } }],
    inputs: [],
  };
  return buildGraph(repo);
}

test('develop.watch: a change maps to sync targets below the entry, ignored names and other paths call for nothing, restart once', () => {
  const graph = graphOf({
    watch: [
      { path: './www', action: 'sync', target: '/srv/www', ignore: ['node_modules'] },
      { path: 'conf/app.conf', action: 'restart' },
      { path: './bin', action: 'sync+restart', target: '/usr/local/bin' },
    ],
  });
  assert.equal(graph.services.web!.develop![0]!.path, '/repo/www');
  const exists = () => true;
  assert.deepEqual(developActions(graph, ['/repo/www/a/index.html', '/repo/www/node_modules/x.js', '/repo/other.txt'], exists), [
    { service: 'web', sync: [{ host: '/repo/www/a/index.html', container: '/srv/www/a/index.html' }], restart: false },
  ]);
  assert.deepEqual(developActions(graph, ['/repo/conf/app.conf', '/repo/conf/app.conf'], exists), [{ service: 'web', sync: [], restart: true }]);
  assert.deepEqual(developActions(graph, ['/repo/bin/tool'], exists), [
    { service: 'web', sync: [{ host: '/repo/bin/tool', container: '/usr/local/bin/tool' }], restart: true },
  ]);
  assert.deepEqual(developActions(graph, ['/repo/www-old/x'], exists), []);
  // develop is for waffle dev only: the graph without it plans the same container.
  assert.deepEqual({ ...graph.services.web, develop: undefined }, { ...graphOf(undefined).services.web, develop: undefined });
});

test('develop.watch: a sync without target, an unknown action and a misspelt key are problems with fixes', () => {
  const err = (() => {
    try {
      graphOf({ watch: [{ path: './www', action: 'sync' }, { path: 'x', action: 'rebuild' }, { path: 'y', action: 'restart', targte: '/y' }] });
    } catch (e) {
      return e as ProblemsError;
    }
    assert.fail('expected problems');
  })();
  assert.ok(err instanceof ProblemsError);
  const byWhere = Object.fromEntries(err.problems.map((p) => [p.where, p]));
  assert.match(byWhere['develop.watch[0].target']!.message, /needs a target/);
  assert.match(byWhere['develop.watch[1].action']!.message, /'sync', 'restart' or 'sync\+restart'/);
  assert.match(byWhere['develop.watch[2].targte']!.message, /did you mean `target`/);
});
