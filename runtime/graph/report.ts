/**
 * How validators report problems, and the few helpers every validator shares. Each validator gets a
 * `Report` bound to one file (and service), so it only says where in the definition (`ports[1]`), what
 * is wrong and how to fix it.
 */
import type { Problem } from '../model.ts';
import { parseDuration } from './parse.ts';
import { suggest } from './suggest.ts';

/** Records one problem: the field path (or undefined for the whole definition), the message and the fix. */
export type Report = (where: string | undefined, message: string, fix?: string) => void;

/** True when the key is present with a value (`undefined` counts as absent, as in TypeScript). */
export const has = (o: Record<string, unknown>, k: string): boolean => o[k] !== undefined;

/** A whole number in 1..65535. */
export const isPort = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;

/** Keys people bring from docker-compose, mapped to ours (only for the top level of a service). */
export const ALIASES: Record<string, string> = {
  environment: 'env',
  depends_on: 'dependsOn',
  working_dir: 'workdir',
  links: 'connects',
  networks: 'connects',
  stop_grace_period: 'stopGracePeriod',
  deploy: 'resources',
  mem_limit: 'resources',
  container_name: 'name',
  volume: 'volumes',
  pull_policy: 'pull',
};

/**
 * Reports every key of `obj` not in `known`, suggesting the closest known key. `prefix` is the field
 * path of `obj` (`''` for the top level of a service, where docker-compose names are recognised too).
 */
export function unknownKeys(obj: Record<string, unknown>, known: string[], prefix: string, report: Report, context: string): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    const alias = prefix === '' ? ALIASES[key] : undefined;
    const guess = alias && known.includes(alias) ? alias : suggest(key, known);
    report(
      `${prefix}${key}`,
      `unknown key \`${key}\` in ${context}` + (guess ? `; did you mean \`${guess}\`?` : ''),
      guess ? `rename \`${key}\` to \`${guess}\`` : `remove it; known keys are ${known.map((k) => `\`${k}\``).join(', ')}`,
    );
  }
}

/** A duration field in nanoseconds, or undefined (reported) when it does not parse. */
export function durationField(v: unknown, where: string, report: Report): number | undefined {
  const d = parseDuration(v);
  if (d.ok) return d.value;
  report(where, d.message, d.fix);
  return undefined;
}

/** A Report that records into `problems` for one file (and one service, when given). */
export function reporterFor(problems: Problem[], file: string, service?: string): Report {
  return (where, message, fix) =>
    problems.push({ file, ...(service !== undefined ? { service } : {}), ...(where ? { where } : {}), message, ...(fix ? { fix } : {}) });
}
