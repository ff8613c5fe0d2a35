/**
 * The one colour rule: colour follows the stream it is written to (a terminal), honouring NO_COLOR,
 * NODE_DISABLE_COLORS, TERM=dumb and FORCE_COLOR; always through kleur. The CLI sets it for stderr (the
 * UI) at start; a command whose data is text on stdout (status) sets it for stdout.
 */
import kleur from 'kleur';

export function colorEnabledFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv | Record<string, string | undefined> = process.env): boolean {
  if (env.NO_COLOR !== undefined || env.NODE_DISABLE_COLORS !== undefined || env.TERM === 'dumb') return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0';
  return !!stream.isTTY;
}

/** Sets kleur's switch for output on `stream` (stderr for the UI, stdout for a table printed as data). */
export function useColorFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv | Record<string, string | undefined> = process.env): void {
  kleur.enabled = colorEnabledFor(stream, env);
}
