/**
 * One change at a time per project: while another waffle holds the project's lock, apply and destroy
 * refuse at once, say who holds it, and change nothing. A lock whose holder died on this host is taken
 * over at once (with a notice); one held from another host expires by time. Within one process, a
 * LockManager queues calls for the same project instead of failing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { LockManager, ProjectLockedError, removeDeadLock, withProjectLock, type LockNotice, type LockOwner } from '../runtime/lock.ts';
import { cleanupProject, dockerClient, makeRepo, PKG_ROOT, snapshot, uniqueProject, waffle } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';

const project = uniqueProject('lock');
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-state-'));
const env = { WAFFLE_STATE_DIR: stateDir };
let docker: Dockerode;
let repo: string;

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  repo = makeRepo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
    'services/app.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: '${TEST_IMAGES.busybox}', command: ['sleep', '600'], stopGracePeriod: '1s' });\n`,
  });
});

after(async () => {
  await cleanupProject(docker, project);
  fs.rmSync(repo, { recursive: true, force: true });
  fs.rmSync(stateDir, { recursive: true, force: true });
});

test('apply and destroy refuse while another waffle holds the lock, naming it; nothing changes', async () => {
  await withProjectLock(
    project,
    'apply',
    async () => {
      const r = await waffle(['apply', '--yes'], { cwd: repo, env });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`project "${project}" is being changed by another waffle \\(apply, pid ${process.pid}`));
      assert.match(r.stderr, /Nothing was changed/);
      assert.deepEqual(await snapshot(docker, project), { containers: [], networks: [], volumes: [] });
      const d = await waffle(['destroy', '--yes'], { cwd: repo, env });
      assert.equal(d.code, 1, d.stderr);
      assert.match(d.stderr, /being changed by another waffle/);
    },
    { env },
  );
  // Released: the same apply goes through.
  const r = await waffle(['apply', '--yes'], { cwd: repo, env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await snapshot(docker, project)).containers.length, 1);
});

test('a lock whose holder died is taken over once it is stale', async () => {
  const dir = path.join(stateDir, project);
  fs.mkdirSync(path.join(dir, 'apply.lock'), { recursive: true });
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(dir, 'apply.lock'), old, old);
  const r = await waffle(['destroy', '--yes'], { cwd: repo, env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await snapshot(docker, project)).containers.length, 0);
  assert.equal(fs.existsSync(path.join(dir, 'apply.lock')), false, 'released after use');
});

// ── a holder that dies ──

const holderScript = path.join(stateDir, 'holder.mts');
fs.writeFileSync(
  holderScript,
  `import { withProjectLock } from ${JSON.stringify(path.join(PKG_ROOT, 'runtime', 'lock.ts'))};
const [project, dir] = process.argv.slice(2);
await withProjectLock(project, 'apply', async () => {
  process.stdout.write('locked ' + process.pid + '\\n');
  await new Promise(() => setInterval(() => {}, 1000));
}, { env: { WAFFLE_STATE_DIR: dir } });
`,
);

/** Starts a process that takes the project's lock and holds it; resolves with the holder's pid once it does. */
function startHolder(p: string, opts: { zombieParent?: boolean } = {}): { child: ChildProcess; locked: Promise<number> } {
  const node = [process.execPath, '--import', 'tsx', holderScript, p, stateDir];
  // As a zombie: the holder's parent becomes `sleep` (exec'd by the shell), which never reaps it.
  const child = opts.zombieParent
    ? spawn('sh', ['-c', `${node.map((a) => `'${a}'`).join(' ')} & exec sleep 600`], { cwd: PKG_ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(node[0], node.slice(1), { cwd: PKG_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const locked = new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /locked (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`holder exited (${code}) before taking the lock: ${out}`)));
    setTimeout(() => reject(new Error(`holder did not take the lock within 20 s: ${out}`)), 20_000).unref();
  });
  return { child, locked };
}

function procState(pid: number): string | undefined {
  try {
    const t = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return t.slice(t.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

async function gone(pid: number): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const s = procState(pid);
    if (s === undefined || s === 'Z') return s ?? 'gone';
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`process ${pid} still runs after SIGKILL`);
}

test('a holder killed with SIGKILL: the next apply takes the lock at once and says whose it was', async () => {
  const p = uniqueProject('lockdead');
  const { child, locked } = startHolder(p);
  const pid = await locked;
  // While it lives, it blocks.
  await assert.rejects(withProjectLock(p, 'apply', async () => 'ran', { env }), ProjectLockedError);
  child.kill('SIGKILL');
  await gone(pid);
  const notices: LockNotice[] = [];
  const t0 = performance.now();
  const got = await withProjectLock(p, 'apply', async () => performance.now() - t0, { env, onNotice: (n) => notices.push(n) });
  assert.ok(got < 500, `took ${got.toFixed(0)} ms to take a dead holder's lock`);
  assert.equal(notices.length, 1, JSON.stringify(notices));
  assert.equal(notices[0].kind, 'lock-taken-over');
  assert.match(notices[0].message, new RegExp(`took over the lock of project "${p}" from apply, pid ${pid} on ${os.hostname()} .*which is no longer running`));
  // Released afterwards: the next one takes it without a notice.
  const again: LockNotice[] = [];
  await withProjectLock(p, 'apply', async () => undefined, { env, onNotice: (n) => again.push(n) });
  assert.deepEqual(again, []);
});

test('a holder that became a zombie (its parent never reaps it) counts as dead', async () => {
  const p = uniqueProject('lockzombie');
  const { child, locked } = startHolder(p, { zombieParent: true });
  try {
    const pid = await locked;
    process.kill(pid, 'SIGKILL');
    assert.equal(await gone(pid), 'Z', 'the killed holder should linger as a zombie under `sleep`');
    const notices: LockNotice[] = [];
    const t0 = performance.now();
    await withProjectLock(p, 'destroy', async () => undefined, { env, onNotice: (n) => notices.push(n) });
    assert.ok(performance.now() - t0 < 500);
    assert.match(notices[0]?.message ?? '', new RegExp(`pid ${pid} .*no longer running`));
  } finally {
    child.kill('SIGKILL');
  }
});

test('the CLI apply after a killed holder goes through at once instead of waiting for expiry', async () => {
  const { child, locked } = startHolder(project);
  const pid = await locked;
  child.kill('SIGKILL');
  await gone(pid);
  const t0 = Date.now();
  const r = await waffle(['apply', '--yes', '--plain'], { cwd: repo, env });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Date.now() - t0 < 12_000, `apply took ${Date.now() - t0} ms`);
});

/** Puts a lock in place as another waffle would: the lock directory, then its owner file naming it. */
function plantLock(p: string, owner: Partial<LockOwner>): { lock: string } {
  const dir = path.join(stateDir, p);
  fs.mkdirSync(path.join(dir, 'apply.lock'), { recursive: true });
  const lockIno = fs.statSync(path.join(dir, 'apply.lock')).ino;
  const full: LockOwner = { pid: 1, host: os.hostname(), since: new Date().toISOString(), what: 'apply', nonce: `n${Math.random()}`, lockIno, ...owner };
  fs.writeFileSync(path.join(dir, 'apply.owner.json'), JSON.stringify(full));
  return { lock: path.join(dir, 'apply.lock') };
}

test('a holder on another host still blocks until its lock expires by time', async () => {
  const p = uniqueProject('lockremote');
  // pid 999999 does not exist here; on its own host it might.
  plantLock(p, { host: 'another-host.example', pid: 999_999 });
  await assert.rejects(withProjectLock(p, 'apply', async () => undefined, { env, staleMs: 2000 }), (e: Error) => {
    assert.ok(e instanceof ProjectLockedError);
    assert.match(e.message, /apply, pid 999999 on another-host\.example/);
    return true;
  });
  await new Promise((r) => setTimeout(r, 2300));
  const notices: LockNotice[] = [];
  assert.equal(await withProjectLock(p, 'apply', async () => 'ran', { env, staleMs: 2000, onNotice: (n) => notices.push(n) }), 'ran');
  assert.deepEqual(notices, [], 'an expired lock is not a takeover from a dead process');
});

test('a reused pid (alive, but another process than the one that took the lock) counts as dead', async () => {
  const p = uniqueProject('lockreuse');
  const sleeper = spawn('sleep', ['60']);
  try {
    plantLock(p, { pid: sleeper.pid!, startTime: 1 });
    const notices: LockNotice[] = [];
    await withProjectLock(p, 'apply', async () => undefined, { env, onNotice: (n) => notices.push(n) });
    assert.match(notices[0]?.message ?? '', new RegExp(`pid ${sleeper.pid} `));
    // The same pid with its true start time is alive: it blocks.
    const stat = fs.readFileSync(`/proc/${sleeper.pid}/stat`, 'utf8');
    const startTime = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    plantLock(p, { pid: sleeper.pid!, startTime });
    await assert.rejects(withProjectLock(p, 'apply', async () => undefined, { env }), ProjectLockedError);
  } finally {
    sleeper.kill('SIGKILL');
  }
});

test('two processes racing to take a dead holder\'s lock: exactly one wins', async () => {
  const p = uniqueProject('lockrace');
  const racer = path.join(stateDir, 'racer.mts');
  fs.writeFileSync(
    racer,
    `import { withProjectLock } from ${JSON.stringify(path.join(PKG_ROOT, 'runtime', 'lock.ts'))};
const [project, dir, at] = process.argv.slice(2);
await new Promise((r) => setTimeout(r, Number(at) - Date.now()));
try {
  await withProjectLock(project, 'apply', async () => { process.stdout.write('won'); await new Promise((r) => setTimeout(r, 1500)); }, { env: { WAFFLE_STATE_DIR: dir } });
} catch (e) { process.stdout.write(e.name); }
`,
  );
  for (let round = 0; round < 2; round++) {
    plantLock(p, { pid: 999_999 });
    const at = Date.now() + 1500; // all start at the same instant, after their start-up
    const outs = await Promise.all(
      [0, 1, 2, 3].map(
        () =>
          new Promise<string>((resolve) => {
            const c = spawn(process.execPath, ['--import', 'tsx', racer, p, stateDir, String(at)], { cwd: PKG_ROOT });
            let out = '';
            c.stdout.on('data', (d) => (out += d));
            c.on('close', () => resolve(out));
          }),
      ),
    );
    assert.equal(outs.filter((o) => o === 'won').length, 1, `round ${round}: ${JSON.stringify(outs)}`);
    assert.equal(outs.filter((o) => o === 'ProjectLockedError').length, 3, JSON.stringify(outs));
  }
});

test('a taker that judged a dead holder too late removes nothing: not the new holder\'s lock, not while another takes over', async () => {
  const p = uniqueProject('locklate');
  const dir = path.join(stateDir, p);
  const { lock } = plantLock(p, { pid: 999_999 });
  const dead = JSON.parse(fs.readFileSync(path.join(dir, 'apply.owner.json'), 'utf8')) as LockOwner;
  const ino = fs.statSync(lock).ino;
  // Another taker is mid-way (holds the claim for this holding): this one backs off.
  fs.mkdirSync(`${lock}.takeover-${dead.nonce}`);
  assert.equal(removeDeadLock(dir, dead, ino), false);
  assert.ok(fs.existsSync(lock));
  fs.rmdirSync(`${lock}.takeover-${dead.nonce}`);
  // The first taker finished and holds a fresh lock: the late one, with its old view, leaves it alone.
  await withProjectLock(p, 'apply', async () => {
    const mine = fs.readFileSync(path.join(dir, 'apply.owner.json'), 'utf8');
    assert.equal(removeDeadLock(dir, dead, ino), false);
    assert.ok(fs.existsSync(lock), 'the live lock was removed');
    assert.equal(fs.readFileSync(path.join(dir, 'apply.owner.json'), 'utf8'), mine);
    // Even given the live lock's inode (the directory reused the inode number), the owner must match.
    assert.equal(removeDeadLock(dir, dead, fs.statSync(lock).ino), false);
    assert.ok(fs.existsSync(lock));
  }, { env });
});

// ── in one process: a queue ──

test('in one process, a second change of the same project waits its turn (in order, no overlap)', async () => {
  const locks = new LockManager();
  const p = uniqueProject('lockq');
  const log: string[] = [];
  const notices: LockNotice[] = [];
  const job = (name: string, ms: number, fail = false) =>
    locks.withProjectLock(
      p,
      'apply',
      async () => {
        log.push(`${name} start`);
        await new Promise((r) => setTimeout(r, ms));
        log.push(`${name} end`);
        if (fail) throw new Error(`${name} failed`);
        return name;
      },
      { env, onNotice: (n) => notices.push(n) },
    );
  const results = await Promise.allSettled([job('a', 150), job('b', 10, true), job('c', 50), job('d', 0)]);
  assert.deepEqual(log, ['a start', 'a end', 'b start', 'b end', 'c start', 'c end', 'd start', 'd end']);
  assert.deepEqual(
    results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)),
    ['a', 'b failed', 'c', 'd'],
    'a failed change does not stop the ones after it',
  );
  assert.deepEqual(
    notices.map((n) => n.kind === 'lock-queued' && n.ahead),
    [1, 2, 3],
  );
  assert.equal(locks.pending(p, env), 0);
  // The file lock still keeps other processes out while the queue runs.
  let other = '';
  await locks.withProjectLock(project, 'apply', async () => {
    const r = await waffle(['destroy', '--yes'], { cwd: repo, env });
    other = r.stderr;
  }, { env });
  assert.match(other, /being changed by another waffle \(apply, pid /);
});

test('in one process, a change still waiting its turn can be withdrawn; the others keep their order', async () => {
  const locks = new LockManager();
  const p = uniqueProject('lockw');
  const log: string[] = [];
  const job = (name: string, ms: number, signal?: AbortSignal) =>
    locks.withProjectLock(
      p,
      'apply',
      async () => {
        log.push(`${name} start`);
        await new Promise((r) => setTimeout(r, ms));
        log.push(`${name} end`);
      },
      { env, signal },
    );
  const ac = new AbortController();
  const a = job('a', 150);
  const b = job('b', 0, ac.signal);
  const c = job('c', 0);
  assert.equal(locks.pending(p, env), 3);
  setTimeout(() => ac.abort(new Error('withdrawn')), 30);
  await assert.rejects(b, /withdrawn/);
  assert.deepEqual(log, ['a start'], 'c does not jump ahead of a when b leaves');
  await Promise.all([a, c]);
  assert.deepEqual(log, ['a start', 'a end', 'c start', 'c end']);
  assert.equal(locks.pending(p, env), 0);
});

test('in one process, two different projects change concurrently', async () => {
  const locks = new LockManager();
  const [p1, p2] = [uniqueProject('lockc'), uniqueProject('lockc')];
  let started2!: () => void;
  const b = new Promise<void>((r) => (started2 = r));
  const timeout = (ms: number) => new Promise((_, reject) => setTimeout(() => reject(new Error('the other project never started: they ran one after the other')), ms));
  await Promise.all([
    locks.withProjectLock(p1, 'apply', () => Promise.race([b, timeout(3000)]), { env }),
    locks.withProjectLock(p2, 'apply', async () => started2(), { env }),
  ]);
});
