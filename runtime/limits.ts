/**
 * Limits of the host that both validation (graph, for values written in the configuration) and the
 * secrets session (for values known only when they are read) check, so neither imports the other.
 * Imports nothing.
 */

/**
 * Linux's limit on one string of a process's environment (MAX_ARG_STRLEN: 32 pages, 128 KiB), counting
 * `KEY=value` and the terminating NUL. Docker creates a container with a longer variable, but starting
 * its process fails (`exec …: argument list too long`), so the problem would only show at apply.
 */
export const MAX_ARG_STRLEN = 131072;

/** Bytes `KEY=value` takes in a process's environment, with the terminating NUL. */
export function envEntryBytes(key: string, value: string): number {
  return Buffer.byteLength(key, 'utf8') + 1 + Buffer.byteLength(value, 'utf8') + 1;
}

/** True when `KEY=value` fits in one environment string. */
export function envEntryFits(key: string, value: string): boolean {
  return envEntryBytes(key, value) <= MAX_ARG_STRLEN;
}
