/** The agent's SQLite history on real files: reopen, pruning, interrupted deploys, deliveries, state, two writers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { History, SCHEMA_VERSION } from '../runtime/history/history.ts';
import { PKG_ROOT } from './helpers.ts';

const HISTORY_TS = path.join(PKG_ROOT, 'runtime', 'history', 'history.ts');

/** A temporary state directory, removed after the test whatever happens. */
function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-history-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Opens a history and closes it after the test. */
function open(t: { after: (fn: () => void) => void }, file: string, opts?: Parameters<typeof History.open>[1]): History {
  const h = History.open(file, opts);
  t.after(() => h.close());
  return h;
}

/** Runs a TypeScript snippet in a separate Node process (tsx), resolving with its exit code and signal. */
function runChild(dir: string, source: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const script = path.join(dir, `child-${Math.random().toString(36).slice(2)}.ts`);
  fs.writeFileSync(script, source);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: PKG_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
}

test('history: a deployment is created queued, updated through its life, and read back after a reopen', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'state', 'history.db');
  const h = History.open(file);
  const d = h.createDeployment({ trigger: 'push', delivery: 'dlv-1', commit: 'a'.repeat(40) });
  assert.equal(d.state, 'queued');
  assert.match(d.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.deepEqual(h.get(d.id), d);

  h.update(d.id, { state: 'running', startedAt: d.queuedAt + 5, run: 'RUN1' });
  h.appendEvent(d.id, { type: 'run-start', kind: 'apply', run: 'RUN1', seq: 1 });
  h.appendEvent(d.id, { type: 'plan-ready', counts: { create: 1 }, run: 'RUN1', seq: 2 });
  h.update(d.id, {
    state: 'applied',
    planSummary: '1 to create',
    counts: { create: 1, replace: 0 },
    services: [{ service: 'web', action: 'create', outcome: 'done' }],
    finishedAt: d.queuedAt + 900,
    durationMs: 895,
  });
  h.close();

  // The file is WAL-mode and private to the agent.
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const raw = new Database(file, { readonly: true });
  assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(raw.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  raw.close();

  const again = open(t, file);
  assert.deepEqual(again.get(d.id), {
    id: d.id,
    trigger: 'push',
    delivery: 'dlv-1',
    commit: 'a'.repeat(40),
    state: 'applied',
    run: 'RUN1',
    planSummary: '1 to create',
    counts: { create: 1, replace: 0 },
    services: [{ service: 'web', action: 'create', outcome: 'done' }],
    queuedAt: d.queuedAt,
    startedAt: d.queuedAt + 5,
    finishedAt: d.queuedAt + 900,
    durationMs: 895,
  });
  assert.deepEqual(again.events(d.id), [
    { type: 'run-start', kind: 'apply', run: 'RUN1', seq: 1 },
    { type: 'plan-ready', counts: { create: 1 }, run: 'RUN1', seq: 2 },
  ]);
  // Clearing a field with undefined.
  again.update(d.id, { error: 'boom' });
  assert.equal(again.get(d.id)?.error, 'boom');
  again.update(d.id, { error: undefined });
  assert.equal(again.get(d.id)?.error, undefined);
});

test('history: bad updates and events for unknown deployments are refused with a clear error', (t) => {
  const h = open(t, path.join(tempDir(t), 'h.db'));
  const d = h.createDeployment({ trigger: 'manual' });
  assert.throws(() => h.update('NOPE', { state: 'failed' }), /no deployment NOPE/);
  assert.throws(() => h.update(d.id, { state: 'done' as never }), /state "done" is not one of queued, running, applied, no-op, failed, interrupted/);
  assert.throws(() => h.update(d.id, { bogus: 1 } as never), /no field `bogus`/);
  assert.throws(() => h.appendEvent('NOPE', { type: 'x' }), /no deployment NOPE/);
  assert.equal(h.get(d.id)?.state, 'queued');
  assert.deepEqual(h.events('NOPE'), []);
});

test('history: list is newest first, pages with before, and ids sort in creation order', (t) => {
  const h = open(t, path.join(tempDir(t), 'h.db'));
  // A clock that stands still: ids must still increase.
  const frozen = History.open(path.join(tempDir(t), 'frozen.db'), { now: () => 1_700_000_000_000 });
  t.after(() => frozen.close());
  const fids = Array.from({ length: 20 }, () => frozen.createDeployment({ trigger: 'poll' }).id);
  assert.deepEqual([...fids].sort(), fids, 'ids increase even within one millisecond');
  assert.equal(new Set(fids).size, 20);

  const ids = Array.from({ length: 7 }, (_, i) => h.createDeployment({ trigger: 'poll', commit: `c${i}` }).id);
  assert.deepEqual(h.list().map((r) => r.id), [...ids].reverse());
  const page1 = h.list({ limit: 3 });
  assert.deepEqual(page1.map((r) => r.commit), ['c6', 'c5', 'c4']);
  const page2 = h.list({ limit: 3, before: page1[2]!.id });
  assert.deepEqual(page2.map((r) => r.commit), ['c3', 'c2', 'c1']);
  const page3 = h.list({ limit: 3, before: page2[2]!.id });
  assert.deepEqual(page3.map((r) => r.commit), ['c0']);
  assert.deepEqual(h.list({ before: 'UNKNOWN' }), []);
});

test('history: pruning keeps the last N deployments with their events and 5×N deliveries, never an active one', (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'h.db');
  const h = History.open(file, { keep: 3 });
  const running = h.createDeployment({ trigger: 'push', commit: 'running' });
  h.update(running.id, { state: 'running' });
  h.appendEvent(running.id, { type: 'run-start' });
  const done: string[] = [];
  for (let i = 0; i < 6; i++) {
    const d = h.createDeployment({ trigger: 'push', commit: `c${i}` });
    h.appendEvent(d.id, { type: 'apply-done', i });
    h.update(d.id, { state: i % 2 ? 'failed' : 'applied' });
    done.push(d.id);
  }
  // The last three finished ones stay; the running one stays although it is the oldest.
  const kept = h.list({ limit: 100 }).map((r) => r.commit);
  assert.deepEqual(kept, ['c5', 'c4', 'c3', 'running']);
  for (const id of done.slice(0, 2)) {
    assert.equal(h.get(id), undefined);
    assert.deepEqual(h.events(id), [], 'events of a pruned deployment go with it');
  }
  assert.deepEqual(h.events(done[5]!), [{ type: 'apply-done', i: 5 }]);
  assert.deepEqual(h.events(running.id), [{ type: 'run-start' }]);

  for (let i = 0; i < 40; i++) h.recordDelivery({ id: `d${i}`, source: 'github', event: 'push', outcome: 'deployed', receivedAt: 1000 + i });
  const ds = h.deliveries({ limit: 1000 });
  assert.equal(ds.length, 15);
  assert.equal(ds[0]!.id, 'd39');
  assert.equal(ds[14]!.id, 'd25');
  assert.equal(h.hasDelivery('d24'), false);
  h.close();

  // No rows of pruned deployments are left anywhere in the file.
  const raw = new Database(file, { readonly: true });
  const events = raw.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number };
  raw.close();
  assert.equal(events.n, 4);

  // A smaller keep prunes on open; the running one is marked interrupted and then counts like the rest.
  const small = open(t, file, { keep: 1 });
  assert.deepEqual(small.list({ limit: 10 }).map((r) => r.commit), ['c5', 'running']);
  small.markInterrupted();
  assert.deepEqual(small.list({ limit: 10 }).map((r) => r.commit), ['c5']);
  assert.equal(small.deliveries({ limit: 100 }).length, 5);
});

test('history: markInterrupted turns queued and running deployments into interrupted after a kill -9', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'h.db');
  // A separate process records a running and a queued deployment, then is killed with SIGKILL.
  const r = await runChild(
    dir,
    `import { History } from ${JSON.stringify(HISTORY_TS)};
     const h = History.open(${JSON.stringify(file)});
     const done = h.createDeployment({ trigger: 'startup', commit: 'old' });
     h.update(done.id, { state: 'no-op', finishedAt: Date.now() });
     const a = h.createDeployment({ trigger: 'push', delivery: 'x1', commit: 'aaa' });
     h.update(a.id, { state: 'running', startedAt: Date.now() - 1000 });
     h.appendEvent(a.id, { type: 'apply-start', operations: 2 });
     h.createDeployment({ trigger: 'push', delivery: 'x2', commit: 'bbb' });
     process.kill(process.pid, 'SIGKILL');`,
  );
  assert.equal(r.signal, 'SIGKILL', r.stderr);

  const h = open(t, file);
  const before = h.list();
  assert.deepEqual(before.map((d) => d.state), ['queued', 'running', 'no-op']);
  const marked = h.markInterrupted();
  assert.deepEqual(marked.map((d) => [d.commit, d.state]), [['aaa', 'interrupted'], ['bbb', 'interrupted']]);
  const ran = marked[0]!;
  assert.ok(ran.finishedAt! >= ran.startedAt!);
  assert.equal(ran.durationMs, ran.finishedAt! - ran.startedAt!);
  assert.match(ran.error!, /agent stopped while this deployment was queued or running/);
  assert.equal(marked[1]!.durationMs, undefined, 'a queued deployment never started: no duration');
  assert.deepEqual(h.events(ran.id), [{ type: 'apply-start', operations: 2 }]);
  assert.equal(h.list().find((d) => d.commit === 'old')?.state, 'no-op', 'finished deployments are left alone');
  assert.deepEqual(h.markInterrupted(), [], 'a second call finds nothing');
});

test('history: deliveries are recorded newest first; a refused delivery does not make the genuine one a duplicate', (t) => {
  const h = open(t, path.join(tempDir(t), 'h.db'));
  const d = h.createDeployment({ trigger: 'push', delivery: 'g-1' });
  h.recordDelivery({ id: 'g-0', source: 'github', event: 'push', outcome: 'refused: bad signature', receivedAt: 1 });
  assert.equal(h.hasDelivery('g-0'), false);
  h.recordDelivery({ id: 'g-1', source: 'github', event: 'push', outcome: 'deployed', deployment: d.id, receivedAt: 2 });
  h.recordDelivery({ id: 'g-2', source: 'github', event: 'push', outcome: 'ignored: branch refs/heads/x', receivedAt: 3 });
  h.recordDelivery({ id: 'g-1', source: 'github', event: 'push', outcome: 'duplicate', receivedAt: 4 });
  assert.equal(h.hasDelivery('g-1'), true);
  assert.equal(h.hasDelivery('g-2'), true);
  assert.equal(h.hasDelivery('nope'), false);
  assert.deepEqual(h.deliveries({ limit: 2 }), [
    { id: 'g-1', source: 'github', event: 'push', outcome: 'duplicate', receivedAt: 4 },
    { id: 'g-2', source: 'github', event: 'push', outcome: 'ignored: branch refs/heads/x', receivedAt: 3 },
  ]);
  assert.deepEqual(h.deliveries()[2], { id: 'g-1', source: 'github', event: 'push', outcome: 'deployed', deployment: d.id, receivedAt: 2 });
});

test('history: key/value state holds JSON values across a reopen; undefined deletes', (t) => {
  const file = path.join(tempDir(t), 'h.db');
  const h = History.open(file);
  assert.equal(h.getState('notify:last'), undefined);
  h.setState('notify:last', { commit: 'abc', state: 'failed', n: 2 });
  h.setState('budget', 3);
  h.setState('budget', 4);
  h.setState('gone', 'x');
  h.setState('gone', undefined);
  h.close();
  const again = open(t, file);
  assert.deepEqual(again.getState('notify:last'), { commit: 'abc', state: 'failed', n: 2 });
  assert.equal(again.getState<number>('budget'), 4);
  assert.equal(again.getState('gone'), undefined);
});

test('history: events beyond the per-deployment limit are dropped', (t) => {
  const h = open(t, path.join(tempDir(t), 'h.db'), { maxEventsPerDeployment: 5 });
  const d = h.createDeployment({ trigger: 'push' });
  for (let i = 0; i < 12; i++) h.appendEvent(d.id, { i });
  assert.deepEqual(h.events(d.id), [0, 1, 2, 3, 4].map((i) => ({ i })));
});

test('history: two History objects on one file see each other, and a second process writes beside this one', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'h.db');
  // `a` keeps every event however long the child takes on a loaded machine.
  const a = open(t, file, { maxEventsPerDeployment: 1_000_000 });
  const b = open(t, file);
  const d = a.createDeployment({ trigger: 'push' });
  assert.equal(b.get(d.id)?.trigger, 'push');
  b.update(d.id, { state: 'running' });
  assert.equal(a.get(d.id)?.state, 'running');
  b.setState('k', 1);
  assert.equal(a.getState('k'), 1);

  // Another process appends 300 events to its own deployment while this one keeps appending to `d`
  // until the child has exited: the two writers overlap.
  let childDone = false;
  const child = runChild(
    dir,
    `import { History } from ${JSON.stringify(HISTORY_TS)};
     const h = History.open(${JSON.stringify(file)});
     const c = h.createDeployment({ trigger: 'manual', commit: 'child' });
     for (let i = 0; i < 300; i++) h.appendEvent(c.id, { i });
     h.update(c.id, { state: 'applied' });
     h.close();`,
  );
  void child.then(() => (childDone = true));
  let written = 0;
  while (!childDone && written < 200_000) {
    a.appendEvent(d.id, { i: written++ });
    await new Promise((r) => setImmediate(r));
  }
  const r = await child;
  assert.equal(r.code, 0, r.stderr);
  const c = b.list().find((x) => x.commit === 'child');
  assert.equal(c?.state, 'applied');
  assert.equal(b.events(c!.id).length, 300);
  assert.ok(written > 0);
  assert.deepEqual(b.events(d.id).map((e) => (e as { i: number }).i), Array.from({ length: written }, (_, i) => i));
});

test('history: two processes opening a new file at once both migrate it without error', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'new.db');
  const src = `import { History } from ${JSON.stringify(HISTORY_TS)};
    const h = History.open(${JSON.stringify(file)});
    for (let i = 0; i < 20; i++) h.createDeployment({ trigger: 'poll' });
    h.close();`;
  const results = await Promise.all([runChild(dir, src), runChild(dir, src), runChild(dir, src)]);
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  const h = open(t, file);
  assert.equal(h.list({ limit: 100 }).length, 60);
});

test('history: a file of a newer schema or not a database is refused with its name and the fix', (t) => {
  const dir = tempDir(t);
  const newer = path.join(dir, 'newer.db');
  History.open(newer).close();
  const raw = new Database(newer);
  raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  raw.close();
  assert.throws(() => History.open(newer), (e: Error) => e.message.includes(newer) && /newer than this waffle's/.test(e.message) && /upgrade waffle/.test(e.message));

  const junk = path.join(dir, 'junk.db');
  fs.writeFileSync(junk, 'this is not sqlite '.repeat(100));
  assert.throws(() => History.open(junk), (e: Error) => e.message.includes(junk) && /not a readable SQLite database/.test(e.message) && /move it away/.test(e.message));
  assert.equal(fs.readFileSync(junk, 'utf8').startsWith('this is not sqlite'), true, 'the file is left as it was');

  assert.throws(() => History.open(path.join(dir, 'k.db'), { keep: 0 }), /keep must be a whole number of at least 1/);
});
