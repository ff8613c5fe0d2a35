/** @jsxImportSource . */
/**
 * `waffle dev` in a terminal: a log of what happened (each change's files, its plan, finished operations,
 * problems, develop actions) that scrolls up, and below it the operations running now and a status line.
 * It renders the store and reports keys (`q`, Ctrl-C); the runner (dev.tsx) drives the session.
 */
import kleur from 'kleur';
import type { ProgressState } from '../render/progress.ts';
import { liveRows } from '../render/progress.ts';
import { truncate } from '../render/text.ts';
import { ink } from './deps.ts';
import { useColumns, useNow, useStore } from './hooks.ts';
import { Lines } from './Lines.tsx';
import { liveLine } from './ProgressView.tsx';
import type { Store } from './store.ts';

export interface DevUiState {
  /** Lines already settled, each entry once (keys are unique for the session). */
  log: Array<{ key: string; lines: string[] }>;
  /** The apply in flight, if any. */
  progress?: ProgressState;
  status: 'starting' | 'working' | 'watching' | 'broken' | 'stopping';
  watched: number;
}

export interface DevAppProps {
  store: Store<DevUiState>;
  onQuit(): void;
  onInterrupt(): void;
  interactive: boolean;
  width?: number;
}

export function DevApp({ store, onQuit, onInterrupt, interactive, width }: DevAppProps) {
  const { Box, Static, Text } = ink;
  const s = useStore(store);
  const columns = useColumns();
  const w = width ?? columns;
  const now = useNow(100, s.status === 'working');
  ink.useInput(
    (input, key) => {
      const presses = key.ctrl && input === 'c' ? 1 : [...input].filter((ch) => ch === '\u0003').length;
      for (let i = 0; i < presses; i++) onInterrupt();
      if (presses === 0 && input.toLowerCase().includes('q')) onQuit();
    },
    { isActive: interactive },
  );
  const status =
    s.status === 'working'
      ? kleur.cyan('applying…')
      : s.status === 'broken'
        ? kleur.red('not applied: fix the file and save; the services keep running as they are')
        : s.status === 'stopping'
          ? kleur.yellow('stopping…')
          : s.status === 'starting'
            ? 'starting…'
            : kleur.green('up to date');
  return (
    <Box flexDirection="column">
      <Static items={s.log}>{(item) => <Lines key={item.key} lines={item.lines} />}</Static>
      {s.progress && !s.progress.done
        ? liveRows(s.progress).map((row) => (
            <Text key={row.op} wrap="truncate-end">
              {liveLine(row, now, w)}
            </Text>
          ))
        : null}
      <Text wrap="truncate-end">{truncate(`${status} ${kleur.dim(`· watching ${s.watched} paths · q quits (the services keep running)`)}`, w)}</Text>
    </Box>
  );
}
