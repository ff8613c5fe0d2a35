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

export function initRepo(dir: string, opts: { project?: string } = {}): string[] {
  const templates = templatesDir();
  const project = opts.project ?? projectNameFrom(dir);
  const files: Array<[string, string]> = [
    ['waffle.config.ts', 'waffle.config.ts'],
    ['services/web.ts', 'services/web.ts'],
    ['tsconfig.json', 'tsconfig.json'],
    ['package.json', 'package.json'],
    ['gitignore', '.gitignore'],
  ];
  const existing = files.filter(([, to]) => fs.existsSync(path.join(dir, to))).map(([, to]) => to);
  if (existing.includes('waffle.config.ts')) {
    throw new Error(`${path.join(dir, 'waffle.config.ts')} exists already: this repository is initialised (nothing was written)`);
  }
  const version = packageVersion(templates);
  const written: string[] = [];
  for (const [from, to] of files) {
    const target = path.join(dir, to);
    if (fs.existsSync(target)) continue;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const text = fs
      .readFileSync(path.join(templates, from), 'utf8')
      .replaceAll('__PROJECT__', project)
      .replaceAll('__VERSION__', version);
    fs.writeFileSync(target, text);
    written.push(to);
  }
  return written;
}
