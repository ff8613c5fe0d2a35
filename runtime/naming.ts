/**
 * How a service is named when its definition sets no `name`: after its file (`naming: 'file'`, the
 * default) or after its path below the services folder (`naming: 'path'`). Pure; used by the loader
 * (in the parent, which sends the names to the evaluation child) and by the graph's messages.
 */

const EXTENSION = /\.(?:ts|mts|cts|tsx|js|mjs|cjs|jsx)$/;

/** `services/api.ts` → `api`: the file's name without its extension, wherever the file is. */
export function serviceNameFromFile(file: string): string {
  const base = file.split('/').pop() ?? file;
  return base.replace(EXTENSION, '');
}

/** The folder a glob starts from: its segments before the first with a wildcard (`services/**\/*.ts` → `services`). */
export function globBase(glob: string): string {
  const segments = glob.replace(/^\.\//, '').split('/');
  const base: string[] = [];
  for (const seg of segments.slice(0, -1)) {
    if (/[*?[\]{}()!+@]/.test(seg)) break;
    base.push(seg);
  }
  return base.join('/');
}

/** `services/portal/sync.ts` → `portal-sync`: the path below the deepest glob folder that holds the file, `/` becoming `-`. */
export function serviceNameFromPath(file: string, globs: readonly string[]): string {
  const base = globs
    .map(globBase)
    .filter((b) => b === '' || file.startsWith(`${b}/`))
    .sort((a, b) => b.length - a.length)[0];
  const rel = base ? file.slice(base.length + 1) : file;
  return rel.replace(EXTENSION, '').split('/').join('-');
}

/**
 * The name of the service in `file` (relative to the root, forward slashes) when its definition sets
 * no `name`. `naming: 'path'` names it by its path below the folder the `services` glob starts from
 * (`services/portal/sync.ts` → `portal-sync`); anything else by the file alone (`sync`): an invalid
 * `naming` is the graph's to report.
 */
export function defaultServiceName(file: string, naming: unknown, globs: readonly string[]): string {
  return naming === 'path' ? serviceNameFromPath(file, globs) : serviceNameFromFile(file);
}
