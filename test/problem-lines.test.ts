/**
 * Every problem points at a line: validation problems (found on evaluated data, which has no
 * positions) carry the `line:col` of the field they name, found with the TypeScript parser in the
 * file; when the field is not written out, the `defineService` call's.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildGraph } from '../runtime/graph/graph.ts';
import { loadRepo } from '../runtime/load/load.ts';
import { locateField, locateProblems } from '../runtime/locate.ts';
import type { Problem } from '../runtime/model.ts';
import { formatProblem, ProblemsError } from '../runtime/problems.ts';

const made: string[] = [];
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

function repo(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'waffle-lines-'));
  made.push(root);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  }
  return root;
}

/** Loads and validates `root`; the problems of the ProblemsError it must throw. */
async function problemsOf(root: string): Promise<{ problems: Problem[]; text: string }> {
  try {
    buildGraph(await loadRepo(root));
  } catch (e) {
    assert.ok(e instanceof ProblemsError, `expected ProblemsError, got ${String(e)}`);
    return { problems: e.problems, text: e.message };
  }
  assert.fail('expected problems');
}

/** The one problem whose message matches `re`. */
function one(problems: Problem[], re: RegExp): Problem {
  const hits = problems.filter((p) => re.test(p.message));
  assert.equal(hits.length, 1, `one problem matching ${re}:\n${problems.map(formatProblem).join('\n')}`);
  return hits[0]!;
}

/** `line:col` of the first occurrence of `needle` in `text` (1-based), to keep expectations readable. */
function at(text: string, needle: string, nth = 0): string {
  let i = -1;
  for (let k = 0; k <= nth; k++) i = text.indexOf(needle, i + 1);
  assert.ok(i >= 0, `${needle} not in the text`);
  const before = text.slice(0, i).split('\n');
  return `${before.length}:${before.at(-1)!.length + 1}`;
}

const pos = (p: { line: number; col: number } | undefined) => (p ? `${p.line}:${p.col}` : undefined);

describe('locateField: the TypeScript parser finds the field in the object passed to defineService', () => {
  const src = `import { defineService } from 'wafflemaker';
import db from './db';

const common = { restart: 'always', labels: { 'dev.example.team': 'x' } };
const health = { http: '/health', interval: '5 minutes' };
export default defineService({
  image: 'ghcr.io/acme/api:1.4.2',
  ports: [
    '127.0.0.1:8080:8080',
    '8080:80',
  ],
  env: { FOO: 'x', 'BAD-NAME': 'y' },
  healthcheck: health,
  dependsOn: [db, { service: db, condition: 'healthy' }],
  files: { '/run/secrets/x': 1 },
  ...common,
});
`;
  const locate = (field: string | undefined) => pos(locateField(src, 'services/api.ts', field, { callee: 'defineService' }));
  test('array elements, nested keys, keys with dashes and dots, quoted keys', () => {
    assert.equal(locate('ports[1]'), at(src, "'8080:80'"));
    assert.equal(locate('env.FOO'), at(src, 'FOO'));
    assert.equal(locate('env.BAD-NAME'), at(src, "'BAD-NAME'"));
    assert.equal(locate('dependsOn[1].condition'), at(src, 'condition'));
    assert.equal(locate('files["/run/secrets/x"]'), at(src, "'/run/secrets/x'"));
  });
  test('through a const of the same file and through a spread', () => {
    assert.equal(locate('healthcheck.interval'), at(src, 'interval'));
    assert.equal(locate('restart'), at(src, 'restart'));
    assert.equal(locate('labels.dev.example.team'), at(src, "'dev.example.team'"));
  });
  test('a path that leaves what is written stops at the deepest part found; a missing field points at the call', () => {
    assert.equal(locate('ports[7]'), at(src, 'ports'));
    assert.equal(locate('volumes[0]'), at(src, 'defineService', 1));
    assert.equal(locate(undefined), at(src, 'defineService', 1));
  });
  test('an aliased import, and the call the default export is among several', () => {
    const two = `import { defineService as service } from 'wafflemaker';
const helper = service({ image: 'a:1' });
const main = service({
  image: 'b:1',
  port: 70000,
});
export default main;
`;
    assert.equal(pos(locateField(two, 'services/x.ts', 'port', { callee: 'defineService' })), at(two, 'port: 70000'));
    // definedAt names the call when it is known
    assert.equal(pos(locateField(two, 'services/x.ts', 'image', { callee: 'defineService', callAt: { line: 2, col: 16 } })), at(two, "image: 'a:1'"));
  });
  test('defineConfig: a secret declared through defineSecrets in a const', () => {
    const cfg = `import { defineConfig, defineSecrets } from 'wafflemaker';
export const secrets = defineSecrets({
  db: { provider: 'embedded', keys: ['url', 'x'] },
});
export default defineConfig({
  project: 'demo',
  paralelism: 3,
  secrets,
});
`;
    const c = (f: string) => pos(locateField(cfg, 'waffle.config.ts', f, { callee: 'defineConfig' }));
    assert.equal(c('paralelism'), at(cfg, 'paralelism'));
    assert.equal(c('secrets.db.keys[1]'), at(cfg, "'x'"));
    assert.equal(c('vault'), at(cfg, 'defineConfig', 1));
  });
});

test('locateProblems: without the file, the defineService call (definedAt); a service re-exported from another file gets no line', () => {
  const problems: Problem[] = [
    { file: 'services/a.ts', service: 'a', where: 'image', message: 'bad', fix: 'f' },
    { file: 'services/b.ts', service: 'b', where: 'image', message: 'bad', fix: 'f' },
    { file: 'services/c.ts', service: 'c', where: '4:2', message: 'thrown', fix: 'f' },
  ];
  const definedAt = new Map([
    ['services/a.ts', 'services/a.ts:3:16'],
    ['services/b.ts', 'lib/shared.ts:9:9'],
  ]);
  locateProblems(problems, { root: '/nonexistent', configFile: 'waffle.config.ts', definedAt });
  assert.deepEqual(
    problems.map((p) => p.loc),
    ['3:16', undefined, undefined],
  );
  assert.equal(formatProblem(problems[0]!), 'services/a.ts:3:16: service "a": image: bad\n    fix: f');
  assert.equal(formatProblem(problems[2]!), 'services/c.ts:4:2: service "c": thrown\n    fix: f');
});

describe('a real repository: each problem is printed as file:line:col of its field', () => {
  const api = `import { defineService } from 'wafflemaker';
import db from './db';

export default defineService({
  image: 'waffle-test/app:1',
  ports: [
    '127.0.0.1:18080:80',
    '18080:8080',
  ],
  healthcheck: { command: 'true', interval: 'five seconds' as never },
  dependsOn: [{ service: db, condition: 'healthy' }],
  envv: { A: '1' },
} as never);
`;
  const db = `import { defineService } from 'wafflemaker';
export default defineService({ image: 'waffle-test/db:1' });
`;
  const web = `import { defineService } from 'wafflemaker';

export default defineService({
  image: 'waffle-test/web:1',
  ports: ['18080:80'],
});
`;
  const config = `import { defineConfig } from 'wafflemaker';
export default defineConfig({
  project: 'lines',
  paralelism: 2,
} as never);
`;
  test('unknown field, healthy without a healthcheck, port clash, bad value, config typo', async () => {
    const root = repo({ 'waffle.config.ts': config, 'services/api.ts': api, 'services/db.ts': db, 'services/web.ts': web });
    const { problems, text } = await problemsOf(root);
    const unknown = one(problems, /unknown key `envv`/);
    assert.equal(unknown.loc, at(api, 'envv'));
    assert.equal(unknown.where, 'envv', 'the field path stays in where');
    assert.equal(one(problems, /condition 'healthy' needs a healthcheck/).loc, at(api, 'condition'));
    assert.equal(one(problems, /"five seconds" is not a duration/).loc, at(api, 'interval'));
    assert.equal(one(problems, /unknown key `paralelism`/).loc, at(config, 'paralelism'));
    const clash = problems.filter((p) => /also bound by/.test(p.message));
    assert.ok(clash.length >= 1, text);
    for (const p of clash) assert.equal(p.loc, p.file === 'services/web.ts' ? at(web, "'18080:80'") : at(api, "'18080:8080'"), formatProblem(p));
    // The text people read: file:line:col, then the service and the field, message unchanged.
    assert.ok(text.includes(`services/api.ts:${at(api, 'envv')}: service "api": envv: unknown key \`envv\` in the service definition`), text);
    assert.ok(text.includes(`waffle.config.ts:${at(config, 'paralelism')}: paralelism: unknown key`), text);
  });

  test('a problem of the whole definition (no field) points at the defineService call', async () => {
    const root = repo({
      'waffle.config.ts': config.replace('  paralelism: 2,\n', ''),
      'services/api.ts': `import { defineService } from 'wafflemaker';\n\nexport default defineService({\n  port: 8080,\n} as never);\n`,
    });
    const { problems } = await problemsOf(root);
    const missing = one(problems, /image/);
    assert.equal(missing.loc, '3:16');
  });

  test('found while loading (a value that is not plain data): the line of the field too', async () => {
    const svc = `import { defineService } from 'wafflemaker';
export default defineService({
  image: 'a:1',
  env: {
    OK: 'x',
    BUILD: (() => 'x') as unknown as string,
  },
});
`;
    const root = repo({ 'waffle.config.ts': config.replace('  paralelism: 2,\n', ''), 'services/api.ts': svc });
    const { problems, text } = await problemsOf(root);
    assert.equal(one(problems, /not plain data/).loc, at(svc, 'BUILD'));
    assert.ok(text.includes(`services/api.ts:${at(svc, 'BUILD')}: service "api": env.BUILD: is a function`), text);
  });
});

// ───────────── specific fixes: a missing import, a top-level throw ─────────────

const CONFIG = `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 'fixes' });\n`;
const importing = (imports: string, env = "'x'") =>
  `import { defineService } from 'wafflemaker';\n${imports}\nexport default defineService({ image: 'a:1', env: { A: ${env} } });\n`;

describe('a missing import: the fix names the module and every file that imports it', () => {
  const files = {
    'waffle.config.ts': CONFIG,
    'services/api.ts': importing(`import db from './shared/db';\nimport pad from 'left-pad';`, 'String(db) + String(pad)'),
    'services/web.ts': importing(`import db from './shared/db';`, 'String(db)'),
    'services/worker.ts': importing(`import untyped from 'untyped-lib';`, 'String(untyped)'),
    'node_modules/untyped-lib/package.json': JSON.stringify({ name: 'untyped-lib', version: '1.0.0', main: 'index.js' }),
    'node_modules/untyped-lib/index.js': 'module.exports = 1;\n',
  };

  test('waffle check\'s type-check (TS2307, TS7016)', async () => {
    const { typecheck } = await import('../runtime/check/typecheck.ts');
    const problems = await typecheck(repo(files));
    const shown = problems.map(formatProblem).join('\n');
    const db = problems.filter((p) => /TS2307/.test(p.message) && /shared\/db/.test(p.message));
    assert.deepEqual(db.map((p) => p.file).sort(), ['services/api.ts', 'services/web.ts'], shown);
    for (const p of db) {
      assert.equal(p.fix, '`./shared/db` does not exist: create services/shared/db.ts or correct the import in services/api.ts, services/web.ts');
      assert.equal(p.where, '2:16');
    }
    assert.equal(one(problems, /TS2307.*left-pad/).fix, 'the package `left-pad` is not installed: install it (`npm install left-pad`), or correct the import in services/api.ts');
    assert.match(one(problems, /TS7016/).fix!, /`untyped-lib` has no type declarations: install them \(`npm install --save-dev @types\/untyped-lib`\)/);
    assert.ok(!problems.some((p) => /matches the types of wafflemaker/.test(p.fix ?? '') && /TS2307|TS7016/.test(p.message)), shown);
  });

  test('plan without the type-check: the bundler\'s "Could not resolve" gets the same fix', async () => {
    const root = repo(files);
    const { problems } = await problemsOf(root);
    const db = problems.filter((p) => /Could not resolve "\.\/shared\/db"/.test(p.message));
    assert.equal(db.length, 2, problems.map(formatProblem).join('\n'));
    for (const p of db) assert.equal(p.fix, '`./shared/db` does not exist: create services/shared/db.ts or correct the import in services/api.ts, services/web.ts');
    assert.equal(one(problems, /Could not resolve "left-pad"/).fix, 'the package `left-pad` is not installed: install it (`npm install left-pad`), or correct the import in services/api.ts');
  });
});

describe('a top-level throw: the fix says where it was thrown (source-mapped), what it said and what to do', () => {
  test('in the service file', async () => {
    const src = `import { defineService } from 'wafflemaker';\nconst port: number = 8080;\nthrow new Error('no config for ' + port);\nexport default defineService({ image: 'x:1' });\n`;
    const { problems } = await problemsOf(repo({ 'waffle.config.ts': CONFIG, 'services/api.ts': src }));
    const p = one(problems, /threw at the top level: no config for 8080/);
    assert.equal(p.where, '3:7');
    assert.match(p.fix!, /^services\/api\.ts:3:7 throws "no config for 8080" while the file is evaluated: change that code so it does not throw/);
  });

  test('in a helper the service imports: the helper\'s line, and which file imported it', async () => {
    const helper = `// a helper shared by services\n\nexport function required(name: string): string {\n  throw new Error(name + ' is required');\n}\n`;
    const src = `import { defineService } from 'wafflemaker';\nimport { required } from '../lib/required';\nexport default defineService({ image: required('IMAGE') });\n`;
    const { problems } = await problemsOf(repo({ 'waffle.config.ts': CONFIG, 'services/api.ts': src, 'lib/required.ts': helper }));
    const p = one(problems, /IMAGE is required/);
    assert.equal(p.file, 'lib/required.ts');
    assert.equal(p.where, '4:9');
    assert.match(p.fix!, /^lib\/required\.ts:4:9 \(imported by services\/api\.ts\) throws "IMAGE is required"/);
  });

  test('an environment variable evaluation does not see: list it in evaluation.env', async () => {
    const src = `import { defineService } from 'wafflemaker';\nconst stage = process.env.STAGE;\nif (!stage) throw new Error('STAGE is not set');\nexport default defineService({ image: 'x:' + stage });\n`;
    const { problems } = await problemsOf(repo({ 'waffle.config.ts': CONFIG, 'services/api.ts': src }));
    const p = one(problems, /STAGE is not set/);
    assert.match(p.fix!, /^services\/api\.ts:3:19 throws "STAGE is not set" while the configuration is evaluated, and it reads STAGE from the environment/);
    assert.match(p.fix!, /Add 'STAGE' to evaluation\.env and set it, or give it a default/);
  });
});

describe('the CLI: waffle check prints file:line:col and the specific fix; --json carries loc', () => {
  const api = `import { defineService } from 'wafflemaker';

export default defineService({
  image: 'waffle-test/app:1',
  ports: [
    '127.0.0.1:18081:80',
    '18081:8080',
  ],
});
`;
  test('a port clash within a service, at the line of ports[1]', async () => {
    const { makeRepo, waffle, parseNdjson } = await import('./helpers.ts');
    const root = makeRepo({ 'waffle.config.ts': CONFIG, 'services/api.ts': api }, { git: true });
    made.push(root);
    const r = await waffle(['check', '--no-types'], { cwd: root });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /services\/api\.ts:7:5: service "api": ports\[1\]: host port 18081/);
    const j = await waffle(['check', '--no-types', '--json'], { cwd: root });
    const failed = parseNdjson(j.stdout).find((e) => e.type === 'run-failed') as { problems: Problem[] } | undefined;
    assert.ok(failed, j.stdout);
    assert.deepEqual(
      failed.problems.map((p) => [p.file, p.where, p.loc]),
      [['services/api.ts', 'ports[1]', '7:5']],
    );
  });

  test('a missing import, type-checked: the module, the file to create and its importers', async () => {
    const { makeRepo, waffle } = await import('./helpers.ts');
    const root = makeRepo(
      {
        'waffle.config.ts': CONFIG,
        'services/api.ts': importing(`import db from './shared/db';`, 'String(db)'),
        'services/web.ts': importing(`import db from './shared/db';`, 'String(db)'),
      },
      { git: true },
    );
    made.push(root);
    const r = await waffle(['check'], { cwd: root });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /services\/api\.ts:2:16: service "api": type error TS2307: Cannot find module '\.\/shared\/db'/);
    assert.match(r.stderr, /fix: `\.\/shared\/db` does not exist: create services\/shared\/db\.ts or correct the import in services\/api\.ts, services\/web\.ts/);
  });
});

test('fix helpers: a directory import, a Node module, a scoped package, a thrown plain value', async () => {
  const { missingModuleFix, thrownFix, untypedPackageFix } = await import('../runtime/fixes.ts');
  const root = repo({ 'services/shared/README.md': 'a folder without index.ts\n' });
  assert.equal(missingModuleFix('./shared', ['services/api.ts'], root), '`./shared` does not exist: create services/shared/index.ts or correct the import in services/api.ts');
  assert.equal(missingModuleFix('./db.js', ['services/api.ts'], root), '`./db.js` does not exist: create services/db.ts or correct the import in services/api.ts');
  assert.match(missingModuleFix('node:fs', ['services/api.ts'], root), /`node:fs` is a Node module.*remove the import from services\/api\.ts/);
  assert.match(missingModuleFix('@acme/util/strings', ['services/a.ts'], root), /the package `@acme\/util` is not installed: install it \(`npm install @acme\/util`\)/);
  assert.match(untypedPackageFix('@acme/util', ['services/a.ts']), /npm install --save-dev @types\/acme__util/);
  const plain = thrownFix({ root, file: 'services/api.ts', message: 'boom', configFile: 'waffle.config.ts' });
  assert.match(plain, /^services\/api\.ts throws "boom" while the file is evaluated: .*\(throw an Error, not a plain value, to get its line\)/);
});
