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

/** `services/api.ts:3:9: service "api": ports[0]: host port 8080 is taken by "web". Fix: ...` */
export function formatProblem(p: Problem): string {
  const loc = p.where && /^\d+(:\d+)?$/.test(p.where) ? `${p.file}:${p.where}` : p.file;
  const field = p.where && !/^\d+(:\d+)?$/.test(p.where) ? `${p.where}: ` : '';
  const svc = p.service ? `service "${p.service}": ` : '';
  const fix = p.fix ? `\n    fix: ${p.fix}` : '';
  return `${loc}: ${svc}${field}${p.message}${fix}`;
}

export function formatProblems(problems: Problem[]): string {
  const n = problems.length;
  return `${n} problem${n === 1 ? '' : 's'} found:\n` + problems.map((p) => `  ${formatProblem(p)}`).join('\n');
}
