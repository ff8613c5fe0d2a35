import type { Problem } from './model.ts';

/** Thrown by load and graph: every problem found, each with file, service and fix. Changes nothing. */
export class ProblemsError extends Error {
  readonly problems: Problem[];
  constructor(problems: Problem[]) {
    super(formatProblems(problems));
    this.name = 'ProblemsError';
    this.problems = problems;
  }
}

const LINE_COL = /^\d+(:\d+)?$/;

/** `line:col` (or `line`) in the problem's file: its field's `loc`, or a `where` that is a position. */
export function problemPosition(p: Problem): string | undefined {
  return p.loc ?? (p.where && LINE_COL.test(p.where) ? p.where : undefined);
}

/**
 * `services/api.ts:7:5: service "api": ports[1]: host port 8080 is taken by "web"` and the fix on the
 * next line. The position is `loc` (of the field) or a `where` that is itself `line:col`.
 */
export function formatProblem(p: Problem): string {
  const at = problemPosition(p);
  const loc = at ? `${p.file}:${at}` : p.file;
  const field = p.where && !LINE_COL.test(p.where) ? `${p.where}: ` : '';
  const svc = p.service ? `service "${p.service}": ` : '';
  const fix = p.fix ? `\n    fix: ${p.fix}` : '';
  return `${loc}: ${svc}${field}${p.message}${fix}`;
}

export function formatProblems(problems: Problem[]): string {
  const n = problems.length;
  return `${n} problem${n === 1 ? '' : 's'} found:\n` + problems.map((p) => `  ${formatProblem(p)}`).join('\n');
}
