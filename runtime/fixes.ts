/**
 * Specific fixes for problems in the user's code, where a generic "fix the code" would leave the
 * reader to work out what is wrong: an import of a module that does not exist (a file of the
 * repository or a package), and an exception thrown at the top level of a file while it is evaluated.
 * Used by the type-check (TS2307) and by the loader (esbuild's "Could not resolve", thrown errors).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';

const toPosix = (p: string): string => p.split(path.sep).join('/');

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
export function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** True for `./x`, `../x`, `/x`: a file of the repository rather than a package. */
export const isRelativeSpecifier = (s: string): boolean => s === '.' || s === '..' || s.startsWith('./') || s.startsWith('../') || s.startsWith('/');

/**
 * The file an import of `specifier` from `importer` (both relative to `root`) would need, relative to
 * the root: `./shared/db` from `services/api.ts` → `services/shared/db.ts` (an existing directory →
 * its `index.ts`; a `.js` written for a `.ts` file → the `.ts`).
 */
export function missingFileFor(specifier: string, importer: string, root: string): string {
  const abs = specifier.startsWith('/') ? specifier : path.resolve(root, path.dirname(importer), specifier);
  let target = abs;
  let isDir = false;
  try {
    isDir = statSync(abs).isDirectory();
  } catch {
    /* does not exist */
  }
  if (isDir) target = path.join(abs, 'index.ts');
  else if (/\.[cm]?js$/.test(abs)) target = abs.replace(/\.([cm]?)js$/, '.$1ts');
  else if (!/\.[cm]?tsx?$/.test(abs)) target = `${abs}.ts`;
  const rel = path.relative(root, target);
  return rel.startsWith('..') || path.isAbsolute(rel) ? target : toPosix(rel);
}

/**
 * What to do about an import that does not resolve. `importers` are the files (relative to the root)
 * that import `specifier` and resolve it to the same thing. A file of the repository: the file to
 * create, or the imports to correct. A package: the command that installs it. A Node builtin: that
 * definitions do not need it.
 */
export function missingModuleFix(specifier: string, importers: string[], root: string): string {
  const files = [...new Set(importers)].sort();
  const list = files.join(', ');
  if (isRelativeSpecifier(specifier)) {
    const want = missingFileFor(specifier, files[0]!, root);
    return `\`${specifier}\` does not exist: create ${want} or correct the import in ${list}`;
  }
  if (isBuiltin(specifier)) {
    return (
      `\`${specifier}\` is a Node module, which the type-check of a definition does not include: a definition only describes ` +
      `its service (evaluation refuses file, process and network work), so remove the import from ${list}`
    );
  }
  const pkg = packageName(specifier);
  return `the package \`${pkg}\` is not installed: install it (\`npm install ${pkg}\`), or correct the import in ${list}`;
}

/** An import of `specifier` in `file` (relative to the root). */
export interface ImportSite {
  specifier: string;
  file: string;
}

/** What an import resolves to: the file it needs (for a file of the repository) or the package. */
function importKey(site: ImportSite, root: string): string {
  return isRelativeSpecifier(site.specifier) ? `file:${missingFileFor(site.specifier, site.file, root)}` : `package:${packageName(site.specifier)}`;
}

/** The files among `sites` that import what `site` imports (the same file of the repository, or the same package). */
export function importersOf(site: ImportSite, sites: ImportSite[], root: string): string[] {
  const key = importKey(site, root);
  const files = sites.filter((s) => importKey(s, root) === key).map((s) => s.file);
  return [...new Set([site.file, ...files])].sort();
}

/** What to do about a package that is installed without types (TS7016). */
export function untypedPackageFix(specifier: string, importers: string[]): string {
  const pkg = packageName(specifier);
  const types = pkg.startsWith('@') ? `@types/${pkg.slice(1).replace('/', '__')}` : `@types/${pkg}`;
  return `\`${pkg}\` has no type declarations: install them (\`npm install --save-dev ${types}\`) if they exist, or declare the module in a .d.ts file (\`declare module '${pkg}';\`) (imported in ${[...new Set(importers)].sort().join(', ')})`;
}

/** Environment variables a source text reads: `process.env.NAME`, `process.env['NAME']`, `const { NAME } = process.env`. */
export function envReads(source: string): string[] {
  const names = new Set<string>();
  for (const m of source.matchAll(/process\.env(?:\.([A-Za-z_]\w*)|\[\s*['"`]([^'"`]+)['"`]\s*\])/g)) names.add((m[1] ?? m[2])!);
  for (const m of source.matchAll(/\{([^{}]*)\}\s*=\s*process\.env\b/g)) {
    for (const part of m[1]!.split(',')) {
      const name = /^\s*([A-Za-z_]\w*)/.exec(part)?.[1];
      if (name) names.add(name);
    }
  }
  return [...names];
}

export interface ThrownAt {
  root: string;
  /** The file being evaluated (relative to the root). */
  file: string;
  /** Where it was thrown, from the source-mapped stack: a file (relative) and `line:col`. */
  frame?: { file: string; where: string };
  /** The thrown error's message. */
  message: string;
  configFile: string;
}

/**
 * The fix for an exception thrown while a file was evaluated: where it was thrown (`file:line:col`,
 * source-mapped), what it said and what to do. When the throwing file reads an environment variable
 * the message names, the cause is almost always that evaluation does not see it: say how to let it.
 */
export function thrownFix(t: ThrownAt): string {
  const place = t.frame ? `${t.frame.file}:${t.frame.where}` : t.file;
  const via = t.frame && t.frame.file !== t.file ? ` (imported by ${t.file})` : '';
  const said = t.message ? ` throws "${t.message.length > 200 ? `${t.message.slice(0, 200)}…` : t.message}"` : ' throws';
  let source = '';
  try {
    const f = path.resolve(t.root, t.frame?.file ?? t.file);
    if (existsSync(f)) source = readFileSync(f, 'utf8');
  } catch {
    /* the fix is still useful without the source */
  }
  const variable = envReads(source).find((name) => new RegExp(`(^|[^A-Za-z0-9_])${name}([^A-Za-z0-9_]|$)`).test(t.message));
  if (variable) {
    return (
      `${place}${via}${said} while the configuration is evaluated, and it reads ${variable} from the environment: ` +
      `evaluation sees only the variables ${t.configFile} lists in \`evaluation: { env: [...] }\`, when they are set where waffle runs. ` +
      `Add '${variable}' to evaluation.env and set it, or give it a default (\`process.env.${variable} ?? '...'\`)`
    );
  }
  const evaluated =
    t.file === t.configFile
      ? 'the config file is evaluated on every plan and apply'
      : 'service files are evaluated on every plan and apply, so keep their top level to describing the service';
  return `${place}${via}${said} while the file is evaluated: change that code so it does not throw (check the condition it tests or the value it reads)${t.frame ? '' : ' (throw an Error, not a plain value, to get its line)'}; ${evaluated}`;
}
