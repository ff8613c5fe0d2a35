/**
 * Every question the command line asks, in one place: a yes/no confirmation and a hidden value, both read
 * in raw mode from the terminal (so Ctrl-C at a prompt is a key: the question is cancelled, nothing
 * changes, exit 130), and the key rule the Ink review uses. Without a terminal (or with CI set) a
 * confirmation fails at once and names the flag to pass.
 */
import kleur from 'kleur';
import { Exit } from './context.ts';

export interface PromptIo {
  stdin: NodeJS.ReadStream;
  stderr: NodeJS.WritableStream;
  env: Record<string, string | undefined>;
}

/** A terminal to ask in: stdin is a TTY and CI is not set. */
export function canPrompt(io: PromptIo): boolean {
  return !!io.stdin.isTTY && !io.env.CI;
}

/** What a key means at a yes/no question (Ink review and plain prompt alike). */
export function answerKey(ch: string): 'yes' | 'no' | 'toggle' | undefined {
  const c = ch.toLowerCase();
  if (c === 'y') return 'yes';
  if (c === 'n' || c === 'q' || c === '\r' || c === '\n' || c === '\u001b') return 'no';
  if (c === 'd') return 'toggle';
  return undefined;
}

/** The question under the plan. */
export function applyPromptLine(full: boolean): string {
  return `Apply these changes? (y/N)  ${full ? 'd: short diff' : 'd: full diff'}`;
}

export const CANCELLED = 'cancelled: nothing was changed';

/** Reads one line in raw mode; `echo: false` hides it. Ctrl-C rejects with Exit(130). */
function readLine(io: PromptIo, question: string, echo: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = io.stdin;
    io.stderr.write(question);
    let value = '';
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const done = (fn: () => void) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      io.stderr.write('\n');
      fn();
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done(() => resolve(value));
        if (ch === '\u0003') return done(() => reject(new Exit(130, CANCELLED)));
        if (ch === '\u007f' || ch === '\b') {
          if (value && echo) io.stderr.write('\b \b');
          value = value.slice(0, -1);
        } else if (ch >= ' ') {
          value += ch;
          if (echo) io.stderr.write(ch);
        }
      }
    };
    stdin.on('data', onData);
  });
}

/** `question? (y/N)`: true only for y or yes. Without a terminal: fails naming `flag`. */
export async function confirm(io: PromptIo, question: string, flag: string): Promise<boolean> {
  if (!canPrompt(io)) {
    throw new Exit(1, kleur.red(`waffle: refusing to ${question.toLowerCase()} without confirmation: no terminal to ask in. Pass ${flag}.`));
  }
  const answer = (await readLine(io, `${question}? (y/N) `, true)).trim().toLowerCase();
  return answer === 'y' || answer === 'yes';
}

/** A value typed without echo (a secret). */
export function hidden(io: PromptIo, question: string): Promise<string> {
  return readLine(io, question, false);
}
