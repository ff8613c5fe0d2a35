/** NDJSON on the data stream: one ApplyEvent per line, exactly as the engine emitted it. */
import type { ApplyEvent } from '../../runtime/model.ts';

export function createJsonRenderer(write: (chunk: string) => void): (e: ApplyEvent) => void {
  return (e) => write(JSON.stringify(e) + '\n');
}

/** What `apply --json` prints when there is nothing to do: the same closing event as a real apply. */
export function noopApplyDone(at = Date.now()): ApplyEvent {
  return { type: 'apply-done', ok: true, summary: { created: 0, replaced: 0, updated: 0, removed: 0, failed: 0, skipped: 0 }, ms: 0, at };
}
