/**
 * Small text helpers shared by the plain renderer and the Ink UI: fixed widths, truncation (never
 * wrapping), durations, bytes and a progress bar. No colour here; callers colour after fitting.
 */

/** Visible width of plain text (our symbols are all one column wide). */
export function width(text: string): number {
  return [...text].length;
}

/** Cuts `text` to at most `max` columns, ending with `…` when cut. */
export function truncate(text: string, max: number): string {
  if (max <= 0) return '';
  const chars = [...text];
  if (chars.length <= max) return text;
  return chars.slice(0, Math.max(0, max - 1)).join('') + '…';
}

/** Exactly `n` columns: truncated or padded with spaces. */
export function fit(text: string, n: number): string {
  const t = truncate(text, n);
  return t + ' '.repeat(Math.max(0, n - width(t)));
}

/** `850ms`, `3.2s`, `1m05s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** `512 B`, `3.4 kB`, `12.0 MB`, `1.2 GB` (powers of 1000, as Docker prints them). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** `[██████░░░░]` for a fraction 0..1, `cells` wide inside the brackets. */
export function bar(fraction: number, cells: number): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const full = Math.round(f * cells);
  return `[${'█'.repeat(full)}${'░'.repeat(cells - full)}]`;
}

/** Matches any ANSI escape sequence. */
const ANSI_RE = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[@-_]/g;

/**
 * Text that came from a container (log lines, health output, error messages) made safe to print on one
 * line: escape sequences removed (colours, cursor moves, window titles: a container must not drive the
 * operator's terminal, nor put escapes into plain output), tabs as spaces, other control characters
 * (line breaks, carriage returns, bells) dropped or, for line breaks, turned into ` ⏎ `.
 */
export function printable(text: string): string {
  return text
    .replace(ANSI_RE, '')
    .replace(/\r?\n/g, ' ⏎ ')
    .replace(/\t/g, '  ')
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, '');
}
