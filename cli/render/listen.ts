/**
 * The listener a command hands the engine, by output mode: NDJSON of every event on stdout (`--json`),
 * plain lines on stderr, or nothing (the Ink UI subscribes on its own). Renderers only listen.
 */
import type { RunEvent } from '../../runtime/model.ts';
import type { Cli } from '../context.ts';

export async function listenerFor(cli: Pick<Cli, 'mode' | 'out' | 'err'>): Promise<(e: RunEvent) => void> {
  if (cli.mode === 'json') {
    const { createJsonRenderer } = await import('./json.ts');
    return createJsonRenderer(cli.out);
  }
  if (cli.mode === 'plain') {
    const { createPlainRenderer } = await import('./plain.ts');
    return createPlainRenderer({ write: cli.err });
  }
  return () => undefined;
}
