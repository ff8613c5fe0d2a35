/**
 * Which configuration file a command uses: `-c, --config <file>` (relative to the repository root),
 * else `waffle.config.ts`. A file named with `-c` that does not exist fails here, naming it, before
 * anything loads; without `-c`, a repository that has only per-environment files (`waffle.prod.ts`…)
 * is told to pick one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Exit } from './context.ts';

export const DEFAULT_CONFIG = 'waffle.config.ts';

/** The config file relative to `root` (forward slashes), or undefined for the default. Throws Exit(1) with the reason. */
export function configFileFor(root: string, option: string | undefined): string | undefined {
  if (option === undefined) {
    if (!fs.existsSync(path.join(root, DEFAULT_CONFIG))) {
      const others = environmentConfigs(root);
      if (others.length > 0) {
        throw new Exit(1, `waffle: no ${DEFAULT_CONFIG} in ${root}; choose a configuration with -c: ${others.map((f) => `-c ${f}`).join(', ')}`);
      }
    }
    return undefined;
  }
  if (option === '') throw new Exit(1, 'waffle: --config takes a file name, for example -c waffle.prod.ts');
  const abs = path.resolve(root, option);
  const rel = path.relative(root, abs);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new Exit(1, `waffle: --config ${option}: the configuration must be a file inside the repository ${root}`);
  }
  if (!fs.existsSync(abs) || !fs.statSync(abs).isFile()) {
    const others = [...(fs.existsSync(path.join(root, DEFAULT_CONFIG)) ? [DEFAULT_CONFIG] : []), ...environmentConfigs(root)];
    throw new Exit(
      1,
      `waffle: --config ${option}: no such file ${abs}` + (others.length ? ` (configurations here: ${others.join(', ')})` : ''),
    );
  }
  return rel.split(path.sep).join('/');
}

/** `waffle.<name>.ts` files at the root other than waffle.config.ts: one configuration per environment. */
function environmentConfigs(root: string): string[] {
  try {
    return fs
      .readdirSync(root)
      .filter((f) => /^waffle\.[\w-]+\.ts$/.test(f) && f !== DEFAULT_CONFIG && !f.endsWith('.d.ts') && !f.endsWith('.test.ts'))
      .sort();
  } catch {
    return [];
  }
}
