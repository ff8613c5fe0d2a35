/**
 * `locateProblems` as a process of its own (see locate-process.ts): stdin is a JSON object
 * `{ problems, scope }` (`scope.definedAt` as entries); stdout gets the `loc` of each problem, in order
 * (null where none was found). The TypeScript parser lives and dies with this process.
 */
import { readFileSync } from 'node:fs';
import { locateProblems } from './locate.ts';
import type { Problem } from './model.ts';

const input = JSON.parse(readFileSync(0, 'utf8')) as {
  problems: Problem[];
  scope: { root: string; configFile: string; definedAt?: Array<[string, string | undefined]> };
};
const { root, configFile, definedAt } = input.scope;
const located = locateProblems(input.problems, { root, configFile, ...(definedAt ? { definedAt: new Map(definedAt) } : {}) });
process.stdout.write(JSON.stringify(located.map((p) => p.loc ?? null)) + '\n');
