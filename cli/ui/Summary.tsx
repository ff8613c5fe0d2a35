/** @jsxImportSource . */
/**
 * The end of an apply: created / replaced / updated / removed / failed and the total time, then for each
 * failure its cause, last health output, last log lines and where the service is defined.
 */
import kleur from 'kleur';
import { failedRows, summaryText, type ProgressState } from '../render/progress.ts';
import { failureLines } from '../render/plain.ts';
import wrapAnsi from 'wrap-ansi';
import { printable, truncate } from '../render/text.ts';
import { Lines } from './Lines.tsx';

export function summaryLines(state: ProgressState, width: number): string[] {
  if (!state.done) return [];
  const lines: string[] = [''];
  const text = truncate(summaryText(state.done), width);
  const colon = text.indexOf(':');
  lines.push(kleur.bold((state.done.ok ? kleur.green : kleur.red)(text.slice(0, colon))) + text.slice(colon));
  for (const row of failedRows(state)) {
    const f = row.failure ?? { message: 'failed' };
    lines.push('');
    lines.push(`${kleur.red('✗')} ${kleur.bold(truncate(row.label, width - 2))}`);
    // The cause is the one line a reader needs whole (Swarm's task errors come last in it): it wraps,
    // indented under `cause:`, instead of being cut at the terminal's width.
    const cause = wrapAnsi(printable(f.message), Math.max(20, width - 11), { hard: true, trim: true }).split('\n');
    cause.forEach((l, i) => lines.push(truncate(`${i === 0 ? '    cause: ' : ' '.repeat(11)}${l}`, width)));
    for (const l of failureLines(f)) lines.push(kleur.dim(truncate(l, width)));
  }
  return lines;
}

export function Summary({ state, width }: { state: ProgressState; width: number }) {
  return <Lines lines={summaryLines(state, width)} />;
}
