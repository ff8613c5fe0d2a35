/** @jsxImportSource . */
/**
 * Runs `waffle apply` with the Ink UI on stderr: review and confirm, apply with live progress, summary.
 * Ctrl-C: the first press stops starting new operations (running ones finish, so every service is old or
 * new); the second aborts at once with a warning and exit code 130. Raw mode swallows SIGINT, so Ctrl-C
 * arrives as a key; a real SIGINT (e.g. `kill -INT`) is handled the same way.
 */
import kleur from 'kleur';
import type { ApplyEvent } from '../../runtime/model.ts';
import type { Prepared } from '../../runtime/pipeline.ts';
import { initialProgress, reduceProgress } from '../render/progress.ts';
import { ApplyApp, type ApplyUiState } from './ApplyApp.tsx';
import { ink, loadUiDeps } from './deps.ts';
import { createStore } from './store.ts';

export type ApplyFn = (
  prepared: Prepared,
  emit: (e: ApplyEvent) => void,
  opts: { signal?: AbortSignal; checkStale?: boolean },
) => Promise<{ ok: boolean }>;

export interface ApplyUiOptions {
  /** Skip the question. */
  yes: boolean;
  checkStale: boolean;
  apply: ApplyFn;
  stdin?: NodeJS.ReadStream;
  stderr?: NodeJS.WriteStream;
}

const settle = () => new Promise((r) => setTimeout(r, 60));

/** Returns the exit code: 0 applied (or cancelled), 1 something failed; 130 exits the process. */
export async function runApplyUi(prepared: Prepared, opts: ApplyUiOptions): Promise<number> {
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
  const controller = new AbortController();

  const onInterrupt = () => {
    if (store.get().phase === 'review') return answer(false);
    const presses = store.get().interrupts + 1;
    store.set({ interrupts: presses });
    if (presses === 1) controller.abort();
    else if (presses === 2) {
      setTimeout(() => {
        app.unmount();
        stderr.write(kleur.red('aborted: operations in flight were interrupted; run `waffle status`, then `waffle apply` again') + '\n');
        process.exit(130);
      }, 50);
    }
  };

  const app = ink.render(
    <ApplyApp store={store} plan={prepared.plan} onAnswer={(yes) => answer(yes)} onInterrupt={onInterrupt} interactive={interactive} />,
    { stdout: stderr, stdin, exitOnCtrlC: false, patchConsole: false },
  );
  process.on('SIGINT', onInterrupt);
  try {
    if (!(await answered)) {
      store.set({ phase: 'cancelled' });
      await settle();
      return 0;
    }
    store.set({ phase: 'applying' });
    const result = await opts.apply(prepared, (e) => store.set((s) => ({ progress: reduceProgress(s.progress, e) })), {
      signal: controller.signal,
      checkStale: opts.checkStale,
    });
    await settle();
    return result.ok ? 0 : 1;
  } finally {
    process.off('SIGINT', onInterrupt);
    app.unmount();
    await app.waitUntilExit().catch(() => {});
  }
}
