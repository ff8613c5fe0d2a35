import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadRepo } from '../runtime/load/load.ts';
import { ProblemsError } from '../runtime/problems.ts';
import type { Problem } from '../runtime/model.ts';

const made: string[] = [];
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

const CONFIG = `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 'demo' });\n`;

/** A tiny repository in a temp dir: `files` maps relative paths to contents. */
function repo(files: Record<string, string>, withConfig = true): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'waffle-load-'));
  made.push(root);
  const all = withConfig ? { 'waffle.config.ts': CONFIG, ...files } : files;
  for (const [rel, text] of Object.entries(all)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  }
  return root;
}

/** Nothing of ours is left under .waffle/ (the temp dir and any bundle are gone). */
function assertNoLeftovers(root: string): void {
  const tmp = path.join(root, '.waffle', 'tmp');
  assert.ok(!existsSync(tmp) || readdirSync(tmp).length === 0, `leftovers in ${tmp}: ${existsSync(tmp) ? readdirSync(tmp) : ''}`);
  assert.ok(!existsSync(path.join(root, '.waffle')), '.waffle/ should be removed when we created it');
}

async function problemsOf(root: string, opts?: Parameters<typeof loadRepo>[1]): Promise<Problem[]> {
  try {
    await loadRepo(root, opts);
  } catch (err) {
    assert.ok(err instanceof ProblemsError, `expected ProblemsError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('loadRepo should have failed');
}

test('a good repository loads to exact plain data', async () => {
  const root = repo({
    'services/db.ts': `import { defineService } from 'wafflemaker';

export default defineService({
  name: 'database',
  image: 'waffle-test/busybox:latest',
  volumes: [{ name: 'data', target: '/data' }],
});
`,
    'services/api.ts': `import { defineService } from 'wafflemaker';
import db from './db.ts';

export default defineService({
  image: 'waffle-test/app:1',
  port: 8080,
  env: { DB_URL: db.url('/main', { scheme: 'postgres', port: 5432 }), WORKERS: 3, DEBUG: false, GONE: undefined },
  dependsOn: [{ service: db, condition: 'healthy' }],
  healthcheck: { http: '/health', interval: '2s' },
});
`,
    'services/web.ts': `import { defineService } from 'wafflemaker';
import api from './api';

export default defineService({
  image: 'waffle-test/app:2',
  dependsOn: [api],
  connects: [api],
  env: { API_URL: api.url('/v1') },
});
`,
    'services/api.test.ts': `throw new Error('test files are not services');`,
    'services/types.d.ts': `export type X = 1;`,
  });
  const loaded = await loadRepo(root);
  const db = { $ref: 'service', service: 'database', definedAt: 'services/db.ts:3:16' };
  const api = { $ref: 'service', service: 'api', definedAt: 'services/api.ts:4:16' };
  assert.deepEqual(loaded, {
    root,
    configFile: 'waffle.config.ts',
    config: { project: 'demo' },
    services: [
      {
        name: 'api',
        file: 'services/api.ts',
        definedAt: 'services/api.ts:4:16',
        data: {
          image: 'waffle-test/app:1',
          port: 8080,
          env: {
            DB_URL: { $ref: 'service-url', service: 'database', definedAt: 'services/db.ts:3:16', path: '/main', scheme: 'postgres', port: 5432 },
            WORKERS: 3,
            DEBUG: false,
          },
          dependsOn: [{ service: db, condition: 'healthy' }],
          healthcheck: { http: '/health', interval: '2s' },
        },
      },
      {
        name: 'database',
        file: 'services/db.ts',
        definedAt: 'services/db.ts:3:16',
        data: { name: 'database', image: 'waffle-test/busybox:latest', volumes: [{ name: 'data', target: '/data' }] },
      },
      {
        name: 'web',
        file: 'services/web.ts',
        definedAt: 'services/web.ts:4:16',
        data: {
          image: 'waffle-test/app:2',
          dependsOn: [api],
          connects: [api],
          env: { API_URL: { $ref: 'service-url', service: 'api', definedAt: 'services/api.ts:4:16', path: '/v1', scheme: 'http' } },
        },
      },
    ],
    inputs: ['services/api.ts', 'services/db.ts', 'services/web.ts', 'waffle.config.ts'],
  });
  // really plain: survives JSON unchanged
  assert.deepEqual(JSON.parse(JSON.stringify(loaded)), loaded);
  assertNoLeftovers(root);
});

test('service globs come from the config; an empty project is fine', async () => {
  const root = repo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 'p', services: ['apps/*/service.ts'] });\n`,
    'apps/one/service.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ name: 'one', image: 'a' });\n`,
    'services/ignored.ts': `throw new Error('not in the globs');`,
  });
  const loaded = await loadRepo(root);
  assert.deepEqual(
    loaded.services.map((s) => [s.name, s.file]),
    [['one', 'apps/one/service.ts']],
  );
  assert.deepEqual(loaded.config, { project: 'p', services: ['apps/*/service.ts'] });

  const empty = repo({});
  const e = await loadRepo(empty);
  assert.deepEqual(e.services, []);
  assert.deepEqual(e.inputs, ['waffle.config.ts']);
  assertNoLeftovers(root);
  assertNoLeftovers(empty);
});

test('missing config names the file and `waffle init`', async () => {
  const root = repo({ 'services/a.ts': 'export default 1;' }, false);
  const [p, ...rest] = await problemsOf(root);
  assert.equal(rest.length, 0);
  assert.equal(p!.file, 'waffle.config.ts');
  assert.match(p!.fix!, /waffle init/);
  assert.ok(!existsSync(path.join(root, '.waffle')));
});

test('config without a default object export', async () => {
  const root = repo({ 'waffle.config.ts': `export const project = 'x';\n` });
  const [p] = await problemsOf(root);
  assert.equal(p!.file, 'waffle.config.ts');
  assert.match(p!.message, /no default export/);
  assert.match(p!.fix!, /defineConfig/);
  const root2 = repo({ 'waffle.config.ts': `export default 'demo';\n` });
  const [p2] = await problemsOf(root2);
  assert.match(p2!.message, /default export is a string/);
  assertNoLeftovers(root);
  assertNoLeftovers(root2);
});

test('syntax error: file:line:col from esbuild', async () => {
  const root = repo({
    'services/ok.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: 'a' });\n`,
    'services/bad.ts': `import { defineService } from 'wafflemaker';\n\nexport default defineService({\n  image: 'a',,\n});\n`,
  });
  const problems = await problemsOf(root);
  assert.equal(problems.length, 1);
  const [p] = problems;
  assert.equal(p!.file, 'services/bad.ts');
  assert.equal(p!.service, 'bad');
  assert.equal(p!.where, '4:14');
  assert.match(p!.message, /found ","/);
  assertNoLeftovers(root);
});

test('top-level throw: the user file and line, via source maps', async () => {
  const root = repo({
    'services/a.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: 'a' });\n`,
    'services/boom.ts': `import { defineService } from 'wafflemaker';
type T = { x: number };
const t: T = { x: 1 };
if (t.x === 1) throw new Error('no config for you');
export default defineService({ image: 'a' });
`,
  });
  const [p, ...rest] = await problemsOf(root);
  assert.equal(rest.length, 0);
  assert.equal(p!.file, 'services/boom.ts');
  assert.equal(p!.service, 'boom');
  assert.equal(p!.where, '4:22');
  assert.match(p!.message, /no config for you/);
  assertNoLeftovers(root);
});

test('a throw in an imported helper names the helper file and the service being loaded', async () => {
  const root = repo({
    'lib/env.ts': `export function need(name: string): string {\n  throw new Error(\`missing \${name}\`);\n}\n`,
    'services/api.ts': `import { defineService } from 'wafflemaker';\nimport { need } from '../lib/env.ts';\nexport default defineService({ image: need('IMAGE') });\n`,
  });
  const [p] = await problemsOf(root);
  assert.equal(p!.file, 'lib/env.ts');
  assert.equal(p!.where, '2:9');
  assert.match(p!.message, /while loading services\/api\.ts/);
  assert.match(p!.message, /missing IMAGE/);
  assertNoLeftovers(root);
});

test('infinite loop: killed at the limit, names the file, waffle survives', async () => {
  const root = repo({
    'services/a.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: 'a' });\n`,
    'services/spin.ts': `import { defineService } from 'wafflemaker';\nwhile (true) {}\nexport default defineService({ image: 'a' });\n`,
    'services/z.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: 'z' });\n`,
  });
  const t0 = Date.now();
  const [p] = await problemsOf(root, { timeoutMs: 1500 });
  const ms = Date.now() - t0;
  assert.equal(p!.file, 'services/spin.ts');
  assert.equal(p!.service, 'spin');
  assert.match(p!.message, /1500 ms/);
  assert.match(p!.fix!, /loop/);
  assert.ok(ms >= 1500 && ms < 6000, `took ${ms} ms`);
  assertNoLeftovers(root);
});

test('an endless loop in the config is reported on the config', async () => {
  const root = repo({ 'waffle.config.ts': `for (;;) {}\nexport default {};\n` });
  const [p] = await problemsOf(root, { timeoutMs: 1500 });
  assert.equal(p!.file, 'waffle.config.ts');
  assert.match(p!.message, /did not finish/);
  assertNoLeftovers(root);
});

test('process.exit(3) in a service file: named, and this process lives on', async () => {
  const root = repo({
    'services/quit.ts': `import { defineService } from 'wafflemaker';\n\nprocess.exit(3);\nexport default defineService({ image: 'a' });\n`,
  });
  const [p] = await problemsOf(root);
  assert.equal(p!.file, 'services/quit.ts');
  assert.equal(p!.where, '3:9');
  assert.match(p!.message, /process\.exit\(3\) called while loading services\/quit\.ts/);
  assert.match(p!.fix!, /process\.exit/);
  assertNoLeftovers(root);
  // still here
  assert.equal(typeof process.pid, 'number');
  const again = await loadRepo(repo({}));
  assert.deepEqual(again.services, []);
});

test('non-serialisable values name the service and the field path', async () => {
  const root = repo({
    'services/api.ts': `import { defineService } from 'wafflemaker';
export default defineService({
  image: 'a',
  env: { X: (() => 'x') as never, OK: 'y' },
  labels: { when: new Date(0) as never },
  ports: [8080, NaN as never],
});
`,
  });
  const problems = await problemsOf(root);
  assert.deepEqual(
    problems.map((p) => [p.file, p.service, p.where]),
    [
      ['services/api.ts', 'api', 'env.X'],
      ['services/api.ts', 'api', 'labels.when'],
      ['services/api.ts', 'api', 'ports[1]'],
    ],
  );
  assert.match(problems[0]!.message, /function/);
  assert.match(problems[1]!.message, /Date/);
  assert.match(problems[2]!.message, /NaN/);
  assert.match(problems[0]!.fix!, /plain/);
  assertNoLeftovers(root);
});

test('circular data is reported with its path', async () => {
  const root = repo({
    'services/c.ts': `import { defineService } from 'wafflemaker';
const labels: Record<string, unknown> = { a: 'b' };
labels.self = labels;
export default defineService({ image: 'a', labels: labels as never });
`,
  });
  const [p] = await problemsOf(root);
  assert.equal(p!.where, 'labels.self');
  assert.match(p!.message, /circular/);
});

test('a default export that is not a service', async () => {
  const root = repo({
    'services/plain.ts': `export default { image: 'nginx' };\n`,
    'services/none.ts': `export const x = 1;\n`,
  });
  const problems = await problemsOf(root);
  assert.deepEqual(
    problems.map((p) => [p.file, p.service]),
    [
      ['services/none.ts', 'none'],
      ['services/plain.ts', 'plain'],
    ],
  );
  assert.match(problems[0]!.message, /no default export/);
  assert.match(problems[1]!.message, /not a service made by defineService/);
  assert.match(problems[1]!.fix!, /defineService/);
  assertNoLeftovers(root);
});

test('a service object that is not one of the project files has service: null', async () => {
  const root = repo({
    'lib/extra.ts': `import { defineService } from 'wafflemaker';\nexport const extra = defineService({ image: 'x' });\n`,
    'services/api.ts': `import { defineService } from 'wafflemaker';\nimport { extra } from '../lib/extra.ts';\nexport default defineService({ image: 'a', dependsOn: [extra] });\n`,
  });
  const loaded = await loadRepo(root);
  assert.deepEqual(loaded.services[0]!.data.dependsOn, [{ $ref: 'service', service: null, definedAt: 'lib/extra.ts:2:22' }]);
  assert.deepEqual(loaded.inputs, ['lib/extra.ts', 'services/api.ts', 'waffle.config.ts']);
});

test('a name that is not a string falls back to the file name and stays in data', async () => {
  const root = repo({
    'services/api.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ name: 42 as never, image: 'a' });\n`,
  });
  const loaded = await loadRepo(root);
  assert.equal(loaded.services[0]!.name, 'api');
  assert.equal(loaded.services[0]!.data.name, 42);
});

test('import of a missing module names the importing file and line', async () => {
  const root = repo({
    'services/a.ts': `import { defineService } from 'wafflemaker';\nimport { x } from './nope.ts';\nexport default defineService({ image: x });\n`,
    'services/b.ts': `import { defineService } from 'wafflemaker';\nimport pad from 'left-pad-not-installed';\nexport default defineService({ image: pad });\n`,
  });
  const problems = await problemsOf(root);
  assert.deepEqual(
    problems.map((p) => [p.file, p.service, p.where]),
    [
      ['services/a.ts', 'a', '2:19'],
      ['services/b.ts', 'b', '2:17'],
    ],
  );
  assert.match(problems[0]!.message, /Could not resolve "\.\/nope\.ts"/);
  assert.match(problems[1]!.message, /left-pad-not-installed/);
  assert.match(problems[1]!.fix!, /npm install/);
  assertNoLeftovers(root);
});

test('installed packages stay external and load from the repo node_modules', async () => {
  const root = repo({
    'node_modules/tiny-dep/package.json': JSON.stringify({ name: 'tiny-dep', type: 'module', exports: './index.js' }),
    'node_modules/tiny-dep/index.js': `export const image = 'from-dep:1';\n`,
    'services/a.ts': `import { defineService } from 'wafflemaker';\nimport { image } from 'tiny-dep';\nimport os from 'node:os';\nexport default defineService({ image, user: typeof os.hostname() });\n`,
  });
  // As root, evaluation runs as nobody: a repository only root can read (mkdtemp makes it 0700) keeps
  // its packages from it, and the problem says so. A checkout under the usual umask is readable.
  if (process.getuid?.() === 0) {
    const [p] = await problemsOf(root);
    assert.equal(p!.file, 'services/a.ts');
    assert.match(p!.message, /nobody/);
    assert.match(p!.message, /node_modules\/tiny-dep\/index\.js/);
    assert.match(p!.fix!, /chmod -R o\+rX node_modules/);
    chmodSync(root, 0o755);
  }
  const loaded = await loadRepo(root);
  assert.deepEqual(loaded.services[0]!.data, { image: 'from-dep:1', user: 'string' });
  assert.deepEqual(loaded.inputs, ['services/a.ts', 'waffle.config.ts']);
});

test('500 service files that import each other load with their references and call sites', async () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < 500; i++) {
    const n = String(i).padStart(3, '0');
    const dep = i > 0 ? `import prev from './s${String(i - 1).padStart(3, '0')}.ts';\n` : '';
    files[`services/s${n}.ts`] =
      `import { defineService } from 'wafflemaker';\n${dep}export default defineService({ image: 'app:${n}', port: 8000, ` +
      `env: { N: '${n}'${i > 0 ? ', PREV: prev.url()' : ''} }${i > 0 ? ', dependsOn: [prev]' : ''} });\n`;
  }
  const root = repo(files);
  // How long this takes is measured by bench/noop.ts against a peer, not here.
  const loaded = await loadRepo(root);
  assert.equal(loaded.services.length, 500);
  assert.deepEqual(loaded.services[499]!.data.dependsOn, [{ $ref: 'service', service: 's498', definedAt: 'services/s498.ts:3:16' }]);
  assert.equal(loaded.services[123]!.definedAt, 'services/s123.ts:3:16');
  assertNoLeftovers(root);
});

test('stale temp files are removed, fresh ones of other runs are kept', async () => {
  const root = repo({});
  const tmp = path.join(root, '.waffle', 'tmp');
  mkdirSync(tmp, { recursive: true });
  const { utimesSync } = await import('node:fs');
  const { spawnSync } = await import('node:child_process');
  writeFileSync(path.join(tmp, 'old.mjs'), '');
  const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
  utimesSync(path.join(tmp, 'old.mjs'), old, old);
  writeFileSync(path.join(tmp, 'fresh.mjs'), '');
  // Bundles of earlier loaders are named <time>-<pid>-<hex>-<tag>.mjs: a dead owner's go at once.
  const dead = spawnSync('true').pid;
  writeFileSync(path.join(tmp, `mbx1-${dead}-0a1b2c3d-config.mjs`), '');
  writeFileSync(path.join(tmp, `mbx1-${process.ppid}-0a1b2c3d-config.mjs`), '');
  await loadRepo(root);
  assert.deepEqual(readdirSync(tmp).sort(), ['fresh.mjs', `mbx1-${process.ppid}-0a1b2c3d-config.mjs`]);
});

test('a load installs no signal or exit handlers and leaves none behind', async () => {
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'exit'] as const;
  const before = events.map((e) => process.listenerCount(e));
  const root = repo({
    'services/slow.ts': `import { defineService } from 'wafflemaker';\nconst t = Date.now(); while (Date.now() - t < 300) {}\nexport default defineService({ image: 'a' });\n`,
  });
  const loading = loadRepo(root);
  await new Promise((r) => setTimeout(r, 150));
  assert.deepEqual(events.map((e) => process.listenerCount(e)), before, 'listeners during a load');
  await loading;
  assert.deepEqual(events.map((e) => process.listenerCount(e)), before, 'listeners after a load');
});

test('an aborted load stops at once: the reason is thrown and the evaluation process is gone', async () => {
  const { readFileSync: read, readlinkSync } = await import('node:fs');
  const root = repo({ 'services/spin.ts': `import { defineService } from 'wafflemaker';\nwhile (true) {}\nexport default defineService({ image: 'a' });\n` });
  const controller = new AbortController();
  const evalProcs = () =>
    readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .filter((d) => {
        try {
          // The evaluation process (and its wrappers) run in the repository.
          return readlinkSync(`/proc/${d}/cwd`) === root && !/^\d+ \(.*\) Z/.test(read(`/proc/${d}/stat`, 'utf8'));
        } catch {
          return false;
        }
      });
  const loading = loadRepo(root, { timeoutMs: 60000, signal: controller.signal });
  const t0 = Date.now();
  while (evalProcs().length === 0 && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 300)); // in the endless loop
  assert.ok(evalProcs().length > 0, 'the evaluation process was not found');
  const reason = new Error('stopped by the test');
  const aborted = Date.now();
  controller.abort(reason);
  await assert.rejects(loading, (e) => e === reason);
  assert.ok(Date.now() - aborted < 1000, `took ${Date.now() - aborted} ms`);
  for (let i = 0; i < 40 && evalProcs().length > 0; i++) await new Promise((r) => setTimeout(r, 25));
  assert.deepEqual(evalProcs(), [], 'evaluation processes left');
  // Already aborted: nothing starts.
  await assert.rejects(loadRepo(root, { signal: controller.signal }), (e) => e === reason);
});
