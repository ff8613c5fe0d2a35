/** `waffle init`: copies templates/ into a repository, never overwriting a file that exists. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function templatesDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const rel of ['../templates', '../../templates']) {
    const p = path.resolve(here, rel);
    if (fs.existsSync(path.join(p, 'waffle.config.ts'))) return p;
  }
  throw new Error('templates/ not found next to the waffle installation');
}

function packageVersion(templates: string): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(templates, '..', 'package.json'), 'utf8')).version;
  } catch {
    return '0.1.0';
  }
}

/** Project names are DNS-safe: lowercase letters, digits and '-'. */
export function projectNameFrom(dir: string): string {
  const base = path
    .basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z]+/, '')
    .replace(/-+$/, '')
    .slice(0, 40);
  return base || 'app';
}

function readPackage(file: string): { text: string; pkg: Record<string, unknown> } {
  const text = fs.readFileSync(file, 'utf8');
  let pkg: unknown;
  try {
    pkg = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message}): nothing was written; fix it, then run waffle init again`);
  }
  if (!pkg || typeof pkg !== 'object' || Array.isArray(pkg)) throw new Error(`${file} does not hold a JSON object: nothing was written`);
  return { text, pkg: pkg as Record<string, unknown> };
}

/**
 * Adds `wafflemaker` to an existing package.json's devDependencies, so `npm install` and `npx waffle`
 * in the repository run this package (not an unrelated one named `waffle`). Keeps every other field,
 * the key order and the file's indentation; leaves a package.json that already depends on it alone.
 * Returns whether the file changed.
 */
export function addDependency(file: string, version: string): boolean {
  const { text, pkg } = readPackage(file);
  const has = (field: string) => {
    const deps = pkg[field];
    return !!deps && typeof deps === 'object' && Object.prototype.hasOwnProperty.call(deps, 'wafflemaker');
  };
  if (has('dependencies') || has('devDependencies') || has('optionalDependencies')) return false;
  const dev = pkg.devDependencies && typeof pkg.devDependencies === 'object' ? (pkg.devDependencies as Record<string, string>) : {};
  // npm keeps dependency lists sorted by name; so do we.
  pkg.devDependencies = Object.fromEntries(Object.entries({ ...dev, wafflemaker: `^${version}` }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const indent = /^[ \t]+(?=")/m.exec(text)?.[0] ?? '  ';
  fs.writeFileSync(file, JSON.stringify(pkg, null, indent) + (text.endsWith('\n') ? '\n' : ''));
  return true;
}

export interface InitResult {
  /** Files created, relative to the directory. */
  written: string[];
  /** Files that existed and were changed (package.json given the dependency). */
  updated: string[];
}

/**
 * `only`: write just these of the files (`tsconfig.json`, `package.json`, `.gitignore`: what
 * `waffle import` adds around the files it writes itself).
 */
export function initRepo(dir: string, opts: { project?: string; only?: string[] } = {}): InitResult {
  const templates = templatesDir();
  const project = opts.project ?? projectNameFrom(dir);
  const files: Array<[string, string]> = (
    [
      ['waffle.config.ts', 'waffle.config.ts'],
      ['services/web.ts', 'services/web.ts'],
      ['tsconfig.json', 'tsconfig.json'],
      ['package.json', 'package.json'],
      ['gitignore', '.gitignore'],
    ] as Array<[string, string]>
  ).filter(([, to]) => !opts.only || opts.only.includes(to));
  const existing = files.filter(([, to]) => fs.existsSync(path.join(dir, to))).map(([, to]) => to);
  if (existing.includes('waffle.config.ts')) {
    throw new Error(`${path.join(dir, 'waffle.config.ts')} exists already: this repository is initialised (nothing was written)`);
  }
  const version = packageVersion(templates);
  // An existing package.json that cannot take the dependency stops init before anything is written.
  const pkgFile = path.join(dir, 'package.json');
  if (fs.existsSync(pkgFile)) readPackage(pkgFile);
  const written: string[] = [];
  const updated: string[] = [];
  for (const [from, to] of files) {
    const target = path.join(dir, to);
    if (fs.existsSync(target)) {
      if (to === 'package.json' && addDependency(target, version)) updated.push(to);
      continue;
    }
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const text = fs
      .readFileSync(path.join(templates, from), 'utf8')
      .replaceAll('__PROJECT__', project)
      .replaceAll('__VERSION__', version);
    fs.writeFileSync(target, text);
    written.push(to);
  }
  return { written, updated };
}
