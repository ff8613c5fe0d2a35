/** Helpers for the graph validator tests: a Report that records, and assertions on what it recorded. */
import assert from 'node:assert/strict';
import type { Report } from '../runtime/graph/report.ts';

export interface Recorded {
  where: string | undefined;
  message: string;
  fix?: string;
}

/** A Report that records every problem; `list` is what was reported, in order. */
export function recorder(): { report: Report; list: Recorded[] } {
  const list: Recorded[] = [];
  return { report: (where, message, fix) => void list.push({ where, message, ...(fix !== undefined ? { fix } : {}) }), list };
}

/** The single recorded problem whose message matches `re`; asserts it has a fix and returns it. */
export function only(list: Recorded[], re: RegExp): Recorded {
  const hits = list.filter((p) => re.test(p.message));
  assert.equal(hits.length, 1, `expected one problem matching ${re}, got:\n${list.map((p) => `${p.where}: ${p.message}`).join('\n')}`);
  assert.ok(hits[0].fix && hits[0].fix.length > 5, `problem has a fix: ${JSON.stringify(hits[0])}`);
  return hits[0];
}

/** Asserts nothing was reported (and shows what was, when something was). */
export function none(list: Recorded[]): void {
  assert.equal(list.length, 0, `expected no problems, got:\n${list.map((p) => `${p.where}: ${p.message}`).join('\n')}`);
}
