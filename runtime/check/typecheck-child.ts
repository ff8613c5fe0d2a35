/**
 * The type-check as a process of its own (see typecheck-process.ts): argv[2] is a JSON object
 * `{ root, configFile, maxProblems }`; stdout gets one JSON line `{ problems, omitted }`. The TypeScript
 * compiler and the program it builds live and die with this process, never in a long-running caller.
 */
import { typecheck } from './typecheck.ts';

const { root, configFile, maxProblems } = JSON.parse(process.argv[2] ?? '{}') as { root: string; configFile?: string; maxProblems: number };
const problems = await typecheck(root, configFile);
const kept = problems.slice(0, maxProblems);
process.stdout.write(JSON.stringify({ problems: kept, omitted: problems.length - kept.length }) + '\n');
