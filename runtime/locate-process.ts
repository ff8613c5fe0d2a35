/**
 * `locateProblems` (a field's line in its file, from the TypeScript parser) in a short-lived child
 * process: a long-running caller (the agent) keeps no TypeScript compiler in memory (about 35 MiB)
 * after one commit with a problem. Same answer as in this process; when the child cannot give one in
 * time, the positions are worked out here after all (never throws, like `locateProblems`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LINE_COL, locateProblems, type LocateScope } from './locate.ts';
import type { Problem } from './model.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const runningFromSource = fileURLToPath(import.meta.url).endsWith('.ts');

/** Built: `locate-child.js` beside this chunk; from source: the .ts under tsx (by its own path). */
function childCommand(): string[] | undefined {
  if (!runningFromSource) {
    const built = [path.join(here, 'locate-child.js'), path.resolve(here, '../cli/locate-child.js'), path.resolve(here, 'cli/locate-child.js')].find((f) => existsSync(f));
    if (built) return [built];
  }
  const entry = [path.join(here, 'locate-child.ts'), path.resolve(here, '../../runtime/locate-child.ts')].find((f) => existsSync(f));
  if (!entry) return undefined;
  return ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href, entry];
}

/** Problems `locateProblems` would try to place (the others it leaves as they are). */
const unplaced = (p: Problem) => p.loc === undefined && !(p.where !== undefined && LINE_COL.test(p.where));

/** `locateProblems` in a child process; mutates and returns `problems`, as it does. */
export function locateProblemsInChild(problems: Problem[], scope: LocateScope, opts: { timeoutMs?: number } = {}): Problem[] {
  if (!problems.some(unplaced)) return problems;
  const command = childCommand();
  if (!command) return locateProblems(problems, scope);
  const input = JSON.stringify({
    problems,
    scope: { root: scope.root, configFile: scope.configFile, ...(scope.definedAt ? { definedAt: [...scope.definedAt] } : {}) },
  });
  // An empty environment; output bounded; killed after the time limit.
  const r = spawnSync(process.execPath, ['--max-old-space-size=256', ...command], {
    input,
    cwd: scope.root,
    env: {},
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 20_000,
    maxBuffer: 1024 * 1024,
    killSignal: 'SIGKILL',
  });
  let locs: unknown;
  try {
    locs = r.status === 0 ? JSON.parse(r.stdout) : undefined;
  } catch {
    locs = undefined;
  }
  if (!Array.isArray(locs) || locs.length !== problems.length) return locateProblems(problems, scope);
  problems.forEach((p, i) => {
    const loc = locs[i];
    if (typeof loc === 'string') p.loc = loc;
  });
  return problems;
}
