/** Colour on or off for the stream the UI writes to, through kleur, honouring NO_COLOR and FORCE_COLOR. */
import kleur from 'kleur';

export function colorEnabledFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined || env.NODE_DISABLE_COLORS !== undefined || env.TERM === 'dumb') return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0';
  return !!stream.isTTY;
}

/** Sets kleur's switch for output on `stream` (stderr for the UI, stdout for a table printed as data). */
export function useColorFor(stream: { isTTY?: boolean }): void {
  kleur.enabled = colorEnabledFor(stream);
}
