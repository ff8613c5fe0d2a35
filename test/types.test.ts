/**
 * Type tests of the authoring API with the real TypeScript compiler: right definitions compile; each
 * wrong one is an error (an unused `@ts-expect-error` would itself be an error). And `waffle check`
 * reports a type error with file, line and column.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeRepo, PKG_ROOT, typeDiagnostics, waffle } from './helpers.ts';

const diagnostics = typeDiagnostics;

const fixtures = path.join(PKG_ROOT, 'test/fixtures/types');

test('right definitions type-check', async () => {
  assert.deepEqual(await diagnostics(path.join(fixtures, 'right.ts')), []);
});

test('every wrong definition is a type error', async () => {
  const file = path.join(fixtures, 'wrong.ts');
  const expected = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('@ts-expect-error')).length;
  assert.ok(expected >= 15, `${expected} wrong definitions`);
  // Unused @ts-expect-error directives (a wrong definition that compiles) are reported as TS2578.
  assert.deepEqual(await diagnostics(file), []);
});

test('secretString: references, text, numbers and service URLs compile; a misspelt key or anything else inside is a type error', async () => {
  assert.deepEqual(await diagnostics(path.join(fixtures, 'secret-string-right.ts')), []);
  const file = path.join(fixtures, 'secret-string-wrong.ts');
  const text = fs.readFileSync(file, 'utf8');
  assert.equal(text.split('\n').filter((l) => l.includes('@ts-expect-error')).length, 10);
  // Every wrong template is an error: an unused @ts-expect-error would be reported (TS2578).
  assert.deepEqual(await diagnostics(file), []);
  // The misspelt key is reported where it is written, naming it (the directive removed).
  const bare = text.replace('// @ts-expect-error misspelt key inside the template\n', '');
  const tmp = path.join(fixtures, '.secret-string-misspelt.tmp.ts');
  fs.writeFileSync(tmp, bare);
  try {
    const d = await diagnostics(tmp);
    assert.ok(d.some((m) => /^9:\d+ .*'usernme' does not exist/.test(m)), d.join('\n'));
  } finally {
    fs.rmSync(tmp, { force: true });
  }
});

test('waffle check reports a type error with file, line and column and exits 1', async () => {
  const repo = makeRepo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 'typecheck' });\n`,
    'services/api.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({\n  image: 'a:1',\n  restart: 'sometimes',\n});\n`,
  });
  try {
    const r = await waffle(['check'], { cwd: repo });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /services\/api\.ts:4:3/);
    assert.match(r.stderr, /sometimes/);
    const ok = await waffle(['check', '--no-types'], { cwd: repo });
    assert.notEqual(ok.code, 0, 'the validator also rejects the restart policy');
    assert.match(ok.stderr, /restart/);
  } finally {
    fs.rmSync(repo, { recursive: true, force: true });
  }
});

test('waffle init writes a repository that checks clean', async () => {
  const dir = makeRepo({});
  try {
    const r = await waffle(['init', '--project', 'fresh'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    for (const f of ['waffle.config.ts', 'services/web.ts', 'tsconfig.json', 'package.json', '.gitignore']) {
      assert.ok(fs.existsSync(path.join(dir, f)), `${f} written`);
    }
    assert.match(fs.readFileSync(path.join(dir, 'waffle.config.ts'), 'utf8'), /project: 'fresh'/);
    assert.match(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'), /"wafflemaker"/);
    const check = await waffle(['check'], { cwd: dir });
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stderr, /1 service/);
    const again = await waffle(['init'], { cwd: dir });
    assert.equal(again.code, 1, 'init refuses to overwrite');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('every field of a service, of the project config and of evaluation has JSDoc an editor shows', async () => {
  const ts = (await import('typescript')).default;
  const file = path.join(PKG_ROOT, 'define/index.ts');
  // Only this file's declarations are needed (no libraries, no imports): documentation is read, not checked.
  const program = ts.createProgram([file], { noLib: true, noResolve: true, noEmit: true, types: [] });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file)!;
  const docs = (name: string): Record<string, string> => {
    const decl = source.statements.find((s): s is import('typescript').InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === name);
    assert.ok(decl, `interface ${name} in define/index.ts`);
    const out: Record<string, string> = {};
    for (const p of checker.getTypeAtLocation(decl).getProperties()) out[p.name] = ts.displayPartsToString(p.getDocumentationComment(checker));
    return out;
  };
  for (const name of ['ServiceDefinition', 'ProjectConfig', 'EvaluationSettings']) {
    const undocumented = Object.entries(docs(name)).filter(([, d]) => d.trim().length < 10).map(([k]) => k);
    assert.deepEqual(undocumented, [], `${name} fields without JSDoc`);
  }
  assert.ok(Object.keys(docs('ServiceDefinition')).length >= 19, 'the properties are seen');
  assert.match(docs('ServiceDefinition').pull, /'missing'.*local image.*'always'.*re-pushed tag redeploys/s);
  assert.match(docs('ProjectConfig').pull, /Default image pull policy/);
  assert.match(docs('EvaluationSettings').env, /gets only these/);
  assert.match(docs('EvaluationSettings').memoryMb, /MiB/);
});
