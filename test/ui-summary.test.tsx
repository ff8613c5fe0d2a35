/** The failure summary (Ink) from the recorded stream of a real failing replace. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { render } from 'ink-testing-library';
import { Summary } from '../cli/ui/Summary.tsx';
import { foldEvents } from '../cli/render/progress.ts';
import { createPlainRenderer } from '../cli/render/plain.ts';
import { maxLineWidth, recorded, setupUi } from './ui-helpers.ts';

before(setupUi);

test('summary: counts, total time, and per failure the cause, health output, log lines and definition', () => {
  const events = recorded('demo-change-fail.ndjson');
  const done = events.at(-1)!;
  assert.equal(done.type, 'apply-done');
  const frame = render(<Summary state={foldEvents(events)} width={80} />).lastFrame()!;
  const secs = ((done as { ms: number }).ms / 1000).toFixed(1);
  assert.match(frame, new RegExp(`apply failed: 1 created, 1 replaced, 0 updated, 0 removed, 1 failed in ${secs.replace('.', '\\.')}s`));
  const lines = frame.split('\n');
  const head = lines.findIndex((l) => /^✗ api$/.test(l));
  assert.ok(head > 0, frame);
  const rest = lines.slice(head).join('\n');
  assert.match(rest, /cause: service api did not become healthy: the healthcheck failed/);
  assert.match(rest, /defined at services\/api\.ts:5:16/);
  assert.match(rest, /last health output:\n\s+wget: server returned error: HTTP\/1\.1 404 Not Found/);
  assert.match(rest, /last log lines:\n\s+\[::ffff:127\.0\.0\.1\]:\d+: response:404/);
  assert.doesNotMatch(frame, /✗ cache|✗ extra/, 'only failures are detailed');
  assert.ok(maxLineWidth(frame) <= 80);
});

test('summary: nothing before the apply is done; a clean apply has no failure section', () => {
  const events = recorded('demo-create.ndjson');
  assert.equal(render(<Summary state={foldEvents(events.slice(0, -1))} width={80} />).lastFrame()!.trim(), '');
  const frame = render(<Summary state={foldEvents(events)} width={80} />).lastFrame()!;
  assert.match(frame, /apply complete: 4 created/);
  assert.doesNotMatch(frame, /✗|cause:/);
});

test('summary: long evidence lines are truncated to the width; the cause wraps, whole, under itself', () => {
  const cause = `${'y'.repeat(120)} the task error at the end`;
  const events = recorded('demo-change-fail.ndjson').map((e) =>
    e.type === 'op-failed' ? { ...e, failure: { ...e.failure, logTail: ['x'.repeat(300)], message: cause } } : e,
  );
  const frame = render(<Summary state={foldEvents(events)} width={60} />).lastFrame()!;
  assert.ok(maxLineWidth(frame) <= 60, frame);
  assert.match(frame, /x+…/);
  const lines = frame.split('\n');
  const at = lines.findIndex((l) => l.startsWith('    cause: '));
  const wrapped = [lines[at]!.slice(11), ...lines.slice(at + 1).filter((l, i, all) => all.slice(0, i + 1).every((x) => /^ {11}\S/.test(x))).map((l) => l.slice(11))];
  assert.ok(wrapped.length > 2, frame);
  // Every character of the cause is on the screen, in order (wrapping only adds line breaks).
  assert.equal(wrapped.join('').replace(/\s/g, ''), cause.replace(/\s/g, ''), frame);
  assert.match(wrapped.at(-1)!, /the task error at the end$/);
});

test('plain renderer: the same recorded stream as lines, failure evidence and a recap, no escape sequences', () => {
  const lines: string[] = [];
  const emit = createPlainRenderer({ write: (l) => lines.push(l) });
  for (const e of recorded('demo-change-fail.ndjson')) emit(e);
  const text = lines.join('\n');
  assert.doesNotMatch(text, /\x1b/);
  assert.match(text, /^applying 3 operations to project rec\w+$/m);
  assert.match(text, /^✗ api: replace-service failed after 1\.8s: service api did not become healthy/m);
  assert.match(text, /^api: health unhealthy \(\d+s left\)$/m);
  assert.match(text, /^✓ cache: replaced in \d+\.\ds$/m);
  assert.match(text, /^apply failed: 1 created, 1 replaced, 0 updated, 0 removed, 1 failed in/m);
  assert.match(lines.at(-1)!, /^ {2}✗ api: service api did not become healthy.*\(services\/api\.ts:5:16\)$/);
});

test('summary and plain lines: escape sequences and control characters from a container never reach the terminal', () => {
  const hostile = {
    message: 'service api did not become healthy: \x1b[2J\x1b[Hcleared',
    healthOutput: ['line one\nline two\r\n\x07bell'],
    logTail: ['\x1b[31mred error\x1b[0m', '\x1b]0;pwned title\x07after title', 'tab\there\x1b[1A\x1b[K\rback'],
    definedAt: 'services/api.ts:5:16',
  };
  const events = recorded('demo-change-fail.ndjson').map((e) => (e.type === 'op-failed' ? { ...e, failure: hostile } : e));
  const lines: string[] = [];
  const emit = createPlainRenderer({ write: (l) => lines.push(l) });
  for (const e of events) emit(e);
  const text = lines.join('\n');
  assert.doesNotMatch(text, /[\x00-\x09\x0b-\x1f\x7f]/, 'no escape or control character in plain output');
  assert.match(text, /^ {6}red error$/m);
  assert.match(text, /^ {6}after title$/m);
  assert.match(text, /^ {6}line one ⏎ line two ⏎ bell$/m, 'a multi-line health output stays one line');
  assert.match(text, /failed after [\d.]+s: service api did not become healthy: cleared$/m);

  const frame = render(<Summary state={foldEvents(events)} width={80} />).lastFrame()!;
  assert.doesNotMatch(frame, /\x1b\]|\x1b\[(2J|H|1A|K)|\x07|\r/, frame);
  assert.match(frame, /red error/);
  assert.ok(maxLineWidth(frame) <= 80);
});
