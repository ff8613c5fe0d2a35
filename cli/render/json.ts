/** NDJSON on the data stream: one engine event per line, exactly as the engine emitted it (run, seq and project included). */
import type { RunEvent } from '../../runtime/model.ts';

export function createJsonRenderer(write: (chunk: string) => void): (e: RunEvent) => void {
  return (e) => write(JSON.stringify(e) + '\n');
}
