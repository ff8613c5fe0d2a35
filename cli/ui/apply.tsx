/** @jsxImportSource . */
/**
 * Runs `waffle apply` with the Ink UI on stderr: review and confirm, apply with live progress, summary.
 * Ctrl-C follows the CLI's one rule (cli/interrupt.ts): raw mode swallows SIGINT, so the key arrives
 * here and is handed to the same `press()` a real SIGINT calls. At the review, Ctrl-C is a "no".
 */
import type { Planned } from '../../runtime/engine.ts';
import type { ApplyEvent, RunEvent } from '../../runtime/model.ts';
import type { Interrupt } from '../interrupt.ts';
import { initialProgress, reduceProgress } from '../render/progress.ts';
import { ApplyApp, type ApplyUiState } from './ApplyApp.tsx';
import { ink, loadUiDeps } from './deps.ts';
import { createStore } from './store.ts';

export type ApplyFn = (planned: Planned, emit: (e: RunEvent) => void) => Promise<{ ok: boolean }>;

export interface ApplyUiOptions {
  /** Skip the question. */
  yes: boolean;
  apply: ApplyFn;
  interrupt: Interrupt;
  stdin?: NodeJS.ReadStream;
  stderr?: NodeJS.WriteStream;
}

const settle = () => new Promise((r) => setTimeout(r, 60));

const isApplyEvent = (e: RunEvent): e is RunEvent & ApplyEvent =>
  ['apply-start', 'op-start', 'step', 'pull-progress', 'health-wait', 'task-progress', 'op-done', 'op-failed', 'op-skipped', 'apply-done'].includes(e.type);

/** Returns the exit code: 0 applied (or cancelled), 1 something failed, 130 stopped by Ctrl-C. */
export async function runApplyUi(planned: Planned, opts: ApplyUiOptions): Promise<number> {
  await loadUiDeps();
  const stdin = opts.stdin ?? process.stdin;
  const stderr = opts.stderr ?? process.stderr;
  const interactive = !!stdin.isTTY;
  const store = createStore<ApplyUiState>({
    phase: opts.yes ? 'applying' : 'review',
    full: false,
    progress: initialProgress(),
    interrupts: 0,
  });
  let answer!: (yes: boolean) => void;
  const answered = new Promise<boolean>((r) => (answer = r));
  if (opts.yes) answer(true);

  const onKeyInterrupt = () => {
    if (store.get().phase === 'review') return answer(false);
    opts.interrupt.press();
  };
  const app = ink.render(
    <ApplyApp store={store} plan={planned.plan} onAnswer={(yes) => answer(yes)} onInterrupt={onKeyInterrupt} interactive={interactive} />,
    { stdout: stderr, stdin, exitOnCtrlC: false, patchConsole: false },
  );
  const offPress = opts.interrupt.onPress((n) => {
    if (store.get().phase === 'review') return answer(false);
    store.set({ interrupts: n });
  });
  const offExit = opts.interrupt.beforeExit(() => app.unmount());
  const unmute = opts.interrupt.mute();
  try {
    if (!(await answered)) {
      store.set({ phase: 'cancelled' });
      await settle();
      return opts.interrupt.presses > 0 ? 130 : 0;
    }
    store.set({ phase: 'applying' });
    const result = await opts.apply(planned, (e) => {
      if (isApplyEvent(e)) store.set((s) => ({ progress: reduceProgress(s.progress, e) }));
    });
    await settle();
    return opts.interrupt.presses > 0 ? 130 : result.ok ? 0 : 1;
  } finally {
    offPress();
    unmute();
    offExit();
    app.unmount();
    await app.waitUntilExit().catch(() => {});
  }
}
