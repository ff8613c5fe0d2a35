/**
 * Dependency rules the design sets for the graph and the secrets (DESIGN.md, Layout): `runtime/model.ts`
 * imports nothing above it (only `define/` types); `runtime/graph` and `runtime/secrets` never import
 * each other; the session reaches secret providers only through their interface.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PKG_ROOT } from './helpers.ts';

/** Every module a file refers to: static and dynamic imports, re-exports and `import('…')` types. */
export function importsOf(file: string): string[] {
  // Comments are left out: JSDoc examples show imports of the user's files.
  const src = fs
    .readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  const re = /\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|\bimport\s+['"]([^'"]+)['"]/g;
  for (let m = re.exec(src); m; m = re.exec(src)) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

/** Repository-relative targets of the relative imports of `file` (packages are left out). */
function localImports(file: string): string[] {
  return importsOf(file)
    .filter((s) => s.startsWith('.'))
    .map((s) => path.relative(PKG_ROOT, path.resolve(path.dirname(file), s)).split(path.sep).join('/'));
}

function filesUnder(dir: string): string[] {
  const abs = path.join(PKG_ROOT, dir);
  return fs
    .readdirSync(abs, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.tsx?$/.test(f))
    .map((f) => path.join(abs, f));
}

const offenders = (dir: string, forbidden: string) =>
  filesUnder(dir).flatMap((f) => localImports(f).filter((t) => t === forbidden || t.startsWith(`${forbidden}/`)).map((t) => `${path.relative(PKG_ROOT, f)} → ${t}`));

test('importsOf sees every form of import (the rules below can fail)', () => {
  const tmp = path.join(os.tmpdir(), `waffle-imports-probe-${process.pid}.ts`);
  fs.writeFileSync(tmp, `/** import x from './in-a-comment.ts'; */\n// import y from './commented-out.ts';\nimport a from './a.ts';\nimport type { B } from "../b.ts";\nexport { c } from './c.ts';\nconst d = await import('./d.ts');\ntype E = import('./e.ts').E;\nimport './f.ts';\n`);
  try {
    assert.deepEqual(importsOf(tmp), ['./a.ts', '../b.ts', './c.ts', './d.ts', './e.ts', './f.ts']);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
});

test('runtime/graph imports nothing from runtime/secrets, and runtime/secrets nothing from runtime/graph', () => {
  assert.deepEqual(offenders('runtime/graph', 'runtime/secrets'), []);
  assert.deepEqual(offenders('runtime/secrets', 'runtime/graph'), []);
});

test('runtime/model.ts imports only define/ (it is the bottom of the runtime)', () => {
  const targets = localImports(path.join(PKG_ROOT, 'runtime/model.ts'));
  assert.deepEqual(targets.filter((t) => !t.startsWith('define/')), []);
  assert.deepEqual(importsOf(path.join(PKG_ROOT, 'runtime/model.ts')).filter((s) => !s.startsWith('.')), [], 'no packages either');
});

test('runtime/limits.ts, shared by graph and secrets, imports nothing', () => {
  assert.deepEqual(importsOf(path.join(PKG_ROOT, 'runtime/limits.ts')), []);
});

test('define/ imports nothing of ours outside define/', () => {
  const bad = filesUnder('define').flatMap((f) => localImports(f).filter((t) => !t.startsWith('define/')).map((t) => `${path.relative(PKG_ROOT, f)} → ${t}`));
  assert.deepEqual(bad, []);
});

test('the secrets session uses providers through their interface (no provider class imported, no instanceof)', () => {
  const file = path.join(PKG_ROOT, 'runtime/secrets/session.ts');
  const src = fs.readFileSync(file, 'utf8');
  assert.deepEqual(localImports(file).filter((t) => /runtime\/secrets\/(embedded|vault)\.ts$/.test(t)), []);
  assert.doesNotMatch(src, /instanceof\s+\w*Provider/);
});
