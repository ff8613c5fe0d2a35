/**
 * The one Ctrl-C rule of the command line. The first press stops cleanly: no new operation starts, the
 * engine cancels waits and Docker calls in flight through the signal, each operation that was in flight
 * rolls back as its plan says (the old version keeps or resumes serving), the project lock is released
 * on the way out, and the command exits 130 with a message naming what was rolled back and what is left
 * for the next apply. A second press exits at once.
 *
 * A SIGINT and a Ctrl-C key read in raw mode (Ink, prompts) both call `press()`. Only the CLI installs
 * signal handlers; the engine just sees the AbortSignal.
 */
export interface Interrupt {
  /** Aborted at the first press. */
  readonly signal: AbortSignal;
  /** How many times Ctrl-C was pressed. */
  readonly presses: number;
  press(): void;
  /** Called on every press with the count; returns an unsubscribe function. */
  onPress(fn: (presses: number) => void): () => void;
  /** Runs before the second press exits (an Ink app unmounts, a terminal leaves raw mode). */
  beforeExit(fn: () => void): () => void;
  /** While muted, the first press prints nothing (an Ink view shows its own message); returns unmute. */
  mute(): () => void;
  /** Hears the run's events (every listener of the engine may pass them): keeps what the interruption did to each operation. */
  hear(e: { type: string; service?: string; op?: string; failure?: { message: string } }): void;
  /** The closing message after an interrupted run: INTERRUPTED, then one line per operation it stopped. */
  outcome(): string;
  /** Removes the process signal handlers. */
  dispose(): void;
}

export interface InterruptOptions {
  /** Writes one line for the user (stderr). */
  say(line: string): void;
  /** Leaves the process (process.exit). */
  exit(code: number): void;
  /** The process to listen on for SIGINT and SIGTERM; none in tests. */
  process?: Pick<NodeJS.Process, 'on' | 'off'>;
}

export const STOPPING =
  'stopping: no new operations start, waits and Docker calls in flight are cancelled and what was in flight rolls back (press Ctrl-C again to exit at once)';
export const ABORTED = 'aborted: exited at once; run `waffle status`, then `waffle apply` again';
export const INTERRUPTED = 'interrupted: stopped cleanly, the project lock was released; run `waffle status` to see where things stand';

export function createInterrupt(opts: InterruptOptions): Interrupt {
  const controller = new AbortController();
  let presses = 0;
  let muted = 0;
  const listeners = new Set<(n: number) => void>();
  const exits = new Set<() => void>();
  /** What each operation failed with after the first press (it was stopped by it): service or op → message. */
  const stopped = new Map<string, string>();
  const press = () => {
    presses++;
    for (const l of listeners) l(presses);
    if (presses === 1) {
      if (muted === 0) opts.say(STOPPING);
      controller.abort(new Error('interrupted (Ctrl-C)'));
      return;
    }
    for (const fn of exits) {
      try {
        fn();
      } catch {
        /* leaving anyway */
      }
    }
    opts.say(ABORTED);
    opts.exit(130);
  };
  const onSignal = () => press();
  opts.process?.on('SIGINT', onSignal);
  opts.process?.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    get presses() {
      return presses;
    },
    press,
    onPress(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    beforeExit(fn) {
      exits.add(fn);
      return () => exits.delete(fn);
    },
    hear(e) {
      if (presses === 0 || e.type !== 'op-failed' || !e.failure) return;
      const who = e.service ?? e.op ?? 'an operation';
      // One line each: a Docker error text can hold line breaks or control characters.
      const message = e.failure.message.replace(/[\u0000-\u001f\u007f]+/g, ' ');
      stopped.set(who, message.replace(new RegExp(`^service ${escapeRe(who)}:\\s*`), ''));
    },
    outcome() {
      return [INTERRUPTED, ...[...stopped].map(([who, what]) => `  ${who}: ${what}`)].join('\n');
    },
    mute() {
      muted++;
      let done = false;
      return () => {
        if (!done) muted--;
        done = true;
      };
    },
    dispose() {
      opts.process?.off('SIGINT', onSignal);
      opts.process?.off('SIGTERM', onSignal);
    },
  };
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
