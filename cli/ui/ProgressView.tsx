/** @jsxImportSource . */
/**
 * Live apply progress: one row per running operation (spinner, current step, pull bar, health
 * countdown, elapsed time); finished rows settle into Ink's <Static> log above. Independent services
 * show as parallel rows. Renders ProgressState only; `now` drives spinners and countdowns.
 */
import kleur from 'kleur';
import type { Plan } from '../../runtime/model.ts';
import { planLines } from '../render/plan.ts';
import { finishedText, liveRows, finishedRows, stepText, type OpRow, type ProgressState } from '../render/progress.ts';
import { fit, formatDuration, truncate } from '../render/text.ts';
import { ink } from './deps.ts';
import { Lines } from './Lines.tsx';
import { Summary } from './Summary.tsx';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
export const spinnerFrame = (now: number) => FRAMES[Math.floor(now / 80) % FRAMES.length];

const LABEL_WIDTH = 16;

export function finishedLine(row: OpRow, width: number): string {
  const mark = row.status === 'done' ? kleur.green('✓') : row.status === 'failed' ? kleur.red('✗') : kleur.yellow('-');
  return `${mark} ${truncate(`${fit(row.label, LABEL_WIDTH)} ${finishedText(row)}`, width - 2)}`;
}

export function liveLine(row: OpRow, now: number, width: number): string {
  const elapsed = formatDuration(now - row.startedAt).padStart(7);
  const room = Math.max(10, width - 2 - LABEL_WIDTH - 1 - 1 - elapsed.length);
  const step = fit(stepText(row, now, room), room);
  return `${kleur.cyan(spinnerFrame(now))} ${fit(row.label, LABEL_WIDTH)} ${step} ${kleur.dim(elapsed)}`;
}

type StaticItem = { key: string; lines: string[] };

export interface ProgressViewProps {
  state: ProgressState;
  now: number;
  width: number;
  /** Shown first in the static log (once the user answered). */
  plan?: Plan;
  /** Ctrl-C presses so far. */
  interrupts?: number;
}

export function ProgressView({ state, now, width, plan, interrupts = 0 }: ProgressViewProps) {
  const { Box, Static, Text } = ink;
  const items: StaticItem[] = [];
  if (plan) items.push({ key: 'plan', lines: [...planLines(plan, { columns: width }), ''] });
  for (const row of finishedRows(state)) items.push({ key: row.op, lines: [finishedLine(row, width)] });
  const live = liveRows(state);
  const waiting = state.operations - state.started.length - finishedRows(state).filter((r) => r.status === 'skipped').length;
  return (
    <Box flexDirection="column">
      <Static items={items}>{(item) => <Lines key={item.key} lines={item.lines} />}</Static>
      {live.map((row) => (
        <Text key={row.op} wrap="truncate-end">
          {liveLine(row, now, width)}
        </Text>
      ))}
      {!state.done && waiting > 0 && (
        <Text wrap="truncate-end">{kleur.dim(truncate(`  ${waiting} more waiting · ${formatDuration(now - (state.startedAt || now))} elapsed`, width))}</Text>
      )}
      {interrupts === 1 && (
        <Text wrap="truncate-end">
          {kleur.yellow(truncate('⚠ stopping: no new operations, calls in flight aborted. Ctrl-C again exits now.', width))}
        </Text>
      )}
      {interrupts >= 2 && (
        <Text wrap="truncate-end">
          {kleur.red(truncate('⚠ exiting now. Check `waffle status`.', width))}
        </Text>
      )}
      {state.done && <Summary state={state} width={width} />}
    </Box>
  );
}
