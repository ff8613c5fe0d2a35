/**
 * `waffle init` makes a repository that runs this package: package.json (new, or the one that is there,
 * kept as it was) lists wafflemaker in devDependencies, so `npx waffle` there runs our binary rather than
 * an unrelated `waffle` from the registry; and `npx wafflemaker` runs it too (the quick start's command).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PKG_ROOT, waffle } from './helpers.ts';

const VERSION = JSON.parse(fs.readFileSync(path.join(PKG_ROOT, 'package.json'), 'utf8')).version as string;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-init-test-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
function dirFor(name: string): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
const readPkg = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));

test('in an empty directory: package.json with wafflemaker in devDependencies, and the rest of the repository', async () => {
  const dir = dirFor('empty');
  const r = await waffle(['init'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  for (const f of ['waffle.config.ts', 'services/web.ts', 'tsconfig.json', 'package.json', '.gitignore']) assert.ok(fs.existsSync(path.join(dir, f)), f);
  assert.equal(readPkg(dir).devDependencies.wafflemaker, `^${VERSION}`);
  assert.match(r.stderr, /next: npm install/);
});

test('an existing package.json keeps every field, order and indentation, and gets wafflemaker added once', async () => {
  const dir = dirFor('existing');
  const before = {
    name: 'shop',
    version: '2.0.0',
    scripts: { start: 'node server.js' },
    dependencies: { express: '^4.0.0' },
    devDependencies: { zod: '^3.0.0', eslint: '^9.0.0' },
  };
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(before, null, 4) + '\n');
  const r = await waffle(['init', '--json'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { written: ['waffle.config.ts', 'services/web.ts', 'tsconfig.json', '.gitignore'], updated: ['package.json'] });
  assert.match(r.stderr, /~ package\.json \(added wafflemaker to devDependencies\)/);
  const text = fs.readFileSync(path.join(dir, 'package.json'), 'utf8');
  assert.deepEqual(JSON.parse(text), { ...before, devDependencies: { eslint: '^9.0.0', wafflemaker: `^${VERSION}`, zod: '^3.0.0' } });
  assert.deepEqual(Object.keys(JSON.parse(text)), Object.keys(before), 'field order kept');
  assert.match(text, /^ {4}"name": "shop",$/m, 'four-space indentation kept');
  assert.ok(text.endsWith('}\n'));

  // A package.json that already depends on wafflemaker is left byte for byte.
  const dir2 = dirFor('has-it');
  const own = '{"name":"infra","dependencies":{"wafflemaker":"file:../wafflemaker"}}';
  fs.writeFileSync(path.join(dir2, 'package.json'), own);
  const r2 = await waffle(['init'], { cwd: dir2 });
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(fs.readFileSync(path.join(dir2, 'package.json'), 'utf8'), own);
  assert.doesNotMatch(r2.stderr, /~ package\.json/);

  // One that is not JSON stops init before anything is written.
  const dir3 = dirFor('broken');
  fs.writeFileSync(path.join(dir3, 'package.json'), '{ "name": ');
  const r3 = await waffle(['init'], { cwd: dir3 });
  assert.equal(r3.code, 1, r3.stderr);
  assert.match(r3.stderr, /package\.json is not valid JSON .*nothing was written/);
  assert.deepEqual(fs.readdirSync(dir3), ['package.json']);
});

test('installed in a project, both `npx wafflemaker` and `npx waffle` run this package', async () => {
  const dir = dirFor('npx');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'npx-infra', private: true }) + '\n');
  // A local install of this checkout (a link; no registry needed).
  execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--save-dev', PKG_ROOT], { cwd: dir, stdio: 'pipe', timeout: 120_000 });
  const npx = (args: string[]) => execFileSync('npx', ['--offline', ...args], { cwd: dir, encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(npx(['wafflemaker', '--version']).trim(), VERSION);
  assert.equal(npx(['waffle', '--version']).trim(), VERSION);
  npx(['wafflemaker', 'init', '--project', 'npxinfra']);
  assert.ok(fs.existsSync(path.join(dir, 'waffle.config.ts')));
  assert.equal(readPkg(dir).name, 'npx-infra', 'the project keeps its package.json');
  assert.ok(readPkg(dir).devDependencies.wafflemaker, 'and its dependency on this package');
});
