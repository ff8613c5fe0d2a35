/** @jsxImportSource . */
/**
 * `waffle apply` in a terminal: the plan and the question (y/N, `d` for the full diff), then live
 * progress and the summary. It only renders the store and reports keys; the runner (apply.tsx) drives
 * the engine.
 */
import kleur from 'kleur';
import type { Plan } from '../../runtime/model.ts';
import type { ProgressState } from '../render/progress.ts';
import { ink } from './deps.ts';
import { useColumns, useNow, useStore } from './hooks.ts';
import { PlanView } from './PlanView.tsx';
import { answerKey, applyPromptLine } from '../prompt.ts';
import { ProgressView } from './ProgressView.tsx';
import type { Store } from './store.ts';

export interface ApplyUiState {
  phase: 'review' | 'applying' | 'cancelled';
  /** The full diff is open (review). */
  full: boolean;
  progress: ProgressState;
  /** Ctrl-C presses during apply. */
  interrupts: number;
}

export interface ApplyAppProps {
  store: Store<ApplyUiState>;
  plan: Plan;
  onAnswer(yes: boolean): void;
  onInterrupt(): void;
  /** Read keys (needs a TTY on stdin). */
  interactive: boolean;
  /** Fixed width (tests); default: the terminal's columns. */
  width?: number;
  /** Fixed time (tests); default: the clock, ticking while applying. */
  now?: number;
}

export function ApplyApp({ store, plan, onAnswer, onInterrupt, interactive, width, now }: ApplyAppProps) {
  const { Box, Text } = ink;
  const s = useStore(store);
  const columns = useColumns();
  const w = width ?? columns;
  const clock = useNow(100, s.phase === 'applying' && now === undefined && !s.progress.done);
  ink.useInput(
    (input, key) => {
      // Ctrl-C: Ink reports one press as ctrl+c; presses that arrive in one chunk come as raw \u0003 bytes, each a press.
      const presses = key.ctrl && input === 'c' ? 1 : [...input].filter((ch) => ch === '\u0003').length;
      if (presses > 0) {
        for (let i = 0; i < presses; i++) onInterrupt();
        return;
      }
      if (s.phase !== 'review') return;
      // A terminal may deliver several keys in one chunk (`y` and Enter as "y\r"): the first one that means something counts.
      for (const ch of input + (key.return ? '\r' : '') + (key.escape ? '\u001b' : '')) {
        const a = answerKey(ch);
        if (a === 'yes') return onAnswer(true);
        if (a === 'no') return onAnswer(false);
        if (a === 'toggle') return store.set((st) => ({ full: !st.full }));
      }
    },
    { isActive: interactive },
  );
  if (s.phase === 'review' || s.phase === 'cancelled') {
    return (
      <Box flexDirection="column">
        <PlanView plan={plan} full={s.full} width={w} />
        <Text> </Text>
        {s.phase === 'review' ? (
          <Text wrap="truncate-end">{kleur.bold(applyPromptLine(s.full))}</Text>
        ) : (
          <Text wrap="truncate-end">cancelled: nothing was changed</Text>
        )}
      </Box>
    );
  }
  return <ProgressView state={s.progress} now={now ?? clock} width={w} plan={plan} interrupts={s.interrupts} />;
}
