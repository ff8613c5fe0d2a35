/**
 * The progress view (Ink), driven by event streams recorded from real applies of the demo repository
 * (test/fixtures/events/*.ndjson, see the README there): live rows in parallel with spinner, step,
 * health countdown and elapsed time; finished rows in the static log; the summary at the end.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { render } from 'ink-testing-library';
import type { ApplyEvent } from '../runtime/model.ts';
import { ProgressView } from '../cli/ui/ProgressView.tsx';
import { ApplyApp, type ApplyUiState } from '../cli/ui/ApplyApp.tsx';
import { createStore } from '../cli/ui/store.ts';
import { foldEvents, initialProgress, liveRows, reduceProgress } from '../cli/render/progress.ts';
import { eventually, maxLineWidth, recorded, recordedPlan, setupUi } from './ui-helpers.ts';

before(setupUi);

/** The events up to (and including) the first that matches. */
function until(events: ApplyEvent[], pred: (e: ApplyEvent) => boolean): ApplyEvent[] {
  const i = events.findIndex(pred);
  assert.ok(i >= 0, 'the recorded stream has the event');
  return events.slice(0, i + 1);
}

test('recorded create: independent services progress in parallel rows while networks settle in the log', () => {
  const events = recorded('demo-create.ndjson');
  // The moment both api and cache wait for health (they are independent).
  let seen = new Set<string>();
  const prefix = until(events, (e) => {
    if (e.type === 'health-wait') seen.add(e.service);
    return seen.has('api') && seen.has('cache');
  });
  const state = foldEvents(prefix);
  const now = prefix.at(-1)!.at + 1500;
  assert.deepEqual(liveRows(state).map((r) => r.label).sort(), ['api', 'cache']);
  const frame = render(<ProgressView state={state} now={now} width={80} />).lastFrame()!;
  const lines = frame.split('\n');
  const apiRow = lines.find((l) => /^\S api\s/.test(l))!;
  const cacheRow = lines.find((l) => /^\S cache\s/.test(l))!;
  assert.ok(apiRow && cacheRow, frame);
  for (const row of [apiRow, cacheRow]) {
    assert.match(row, /^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] /, 'a spinner');
    assert.match(row, /waiting for health \(starting, \d+s left\)/, 'health countdown from the deadline');
    assert.match(row, /\d+(\.\d)?s\s*$|\d+ms\s*$/, 'elapsed time');
  }
  // The countdown is the deadline minus now.
  const hw = prefix.filter((e): e is Extract<ApplyEvent, { type: 'health-wait' }> => e.type === 'health-wait' && e.service === 'api').at(-1)!;
  assert.match(apiRow, new RegExp(`${Math.ceil((hw.deadline - now) / 1000)}s left`));
  // Networks and the volume finished: static log lines above the live rows, project prefix dropped.
  assert.match(frame, /^✓ default\s+network created in \d+ms/m);
  assert.match(frame, /^✓ cache-data\s+volume created in/m);
  assert.ok(lines.findIndex((l) => /network created/.test(l)) < lines.indexOf(apiRow));
  assert.match(frame, /2 more waiting/, 'web and worker wait for api');
  assert.ok(maxLineWidth(frame) <= 80, frame);
});

test('recorded create: at the end every row is in the log and the summary counts 4 created', () => {
  const events = recorded('demo-create.ndjson');
  const state = foldEvents(events);
  const frame = render(<ProgressView state={state} now={events.at(-1)!.at} width={80} />).lastFrame()!;
  for (const svc of ['api', 'cache', 'web', 'worker']) assert.match(frame, new RegExp(`^✓ ${svc}\\s+created in`, 'm'));
  assert.doesNotMatch(frame, /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/, 'no live rows left');
  assert.match(frame, /apply complete: 4 created, 0 replaced, 0 updated, 0 removed, 0 failed in \d/);
});

test('recorded failing replace: the live replace shows its steps, then the failure is in the log', () => {
  const events = recorded('demo-change-fail.ndjson');
  const atSwitch = until(events, (e) => e.type === 'step' && e.step === 'stopping-old');
  const live = render(<ProgressView state={foldEvents(atSwitch)} now={atSwitch.at(-1)!.at + 200} width={80} />).lastFrame()!;
  assert.match(live, /^\S cache\s+stopping old/m);
  assert.match(live, /^✗ api\s+replace failed after/m);
  assert.match(live, /^✓ extra\s+created in/m);
  const end = render(<ProgressView state={foldEvents(events)} now={events.at(-1)!.at} width={80} />).lastFrame()!;
  assert.match(end, /^✓ cache\s+replaced in/m);
  assert.match(end, /apply failed: 1 created, 1 replaced, 0 updated, 0 removed, 1 failed/);
});

test('pull rows show a progress bar with bytes and layers', () => {
  const events = recorded('pull-synthetic.ndjson');
  const frame = render(<ProgressView state={foldEvents(events)} now={2500} width={80} />).lastFrame()!;
  const row = frame.split('\n').find((l) => l.includes('pulling'))!;
  assert.match(row, /^\S waffle-test\/app…/, 'the image name is truncated to the label column');
  assert.ok(row, frame);
  assert.match(row, /pulling \[█+░+\] 6\.3 MB\/12\.6 MB 1\/3 layers/);
  assert.match(row, /1\.5s\s*$/, 'elapsed since the pull started');
});

test('the app renders the event stream as it arrives, and shows both Ctrl-C presses', async () => {
  const events = recorded('demo-create.ndjson');
  const plan = recordedPlan('demo-change.plan.json');
  const store = createStore<ApplyUiState>({ phase: 'applying', full: false, progress: initialProgress(), interrupts: 0 });
  const r = render(<ApplyApp store={store} plan={plan} onAnswer={() => {}} onInterrupt={() => {}} interactive={false} width={80} now={events[0].at} />);
  try {
    const half = Math.floor(events.length / 2);
    for (const e of events.slice(0, half)) store.set((s) => ({ progress: reduceProgress(s.progress, e) }));
    await eventually(() => assert.match(r.lastFrame()!, /✓ default\s+network created/));
    const mid = r.lastFrame()!;
    assert.match(mid, /Plan for /, 'the answered plan stays above, in the static log');
    assert.doesNotMatch(mid, /apply complete/);
    store.set({ interrupts: 1 });
    await eventually(() => assert.match(r.lastFrame()!, /stopping: no new operations, calls in flight aborted\. Ctrl-C again exits now\./));
    store.set({ interrupts: 2 });
    await eventually(() => assert.match(r.lastFrame()!, /exiting now/));
    for (const e of events.slice(half)) store.set((s) => ({ progress: reduceProgress(s.progress, e) }));
    await eventually(() => assert.match(r.lastFrame()!, /apply complete: 4 created/));
    const end = r.lastFrame()!;
    assert.equal((end.match(/Plan for /g) ?? []).length, 1, 'the plan is printed once');
    assert.ok(maxLineWidth(end) <= 80);
  } finally {
    r.unmount();
  }
});
