/**
 * One change at a time per project: apply and destroy hold a lock in the deployer's state directory,
 * so the CLI and the agent (or two terminals) never interleave operations or revoke each other's
 * freshly issued credentials.
 *
 * - Across processes: a directory lock (proper-lockfile, `apply.lock`) plus an owner file naming the
 *   holder (what, pid, host, boot id, process start time). A second process fails at once with
 *   ProjectLockedError.
 * - A holder on this host that no longer runs (gone, a zombie, or its pid now belongs to another
 *   process) leaves a lock that is stale now: it is taken over at once and the caller is told.
 *   A holder on another host cannot be checked: its lock goes stale `staleMs` after its last refresh.
 * - Within one process: a LockManager queues calls for the same project (first come, first served)
 *   instead of failing, so a long-running agent applies pushes one after the other.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stateDir, writeFileAtomic } from './secrets/state.ts';

export class ProjectLockedError extends Error {
  constructor(project: string, holder: string, lockPath: string) {
    super(
      `project "${project}" is being changed by another waffle (${holder}). Nothing was changed. ` +
        `Fix: wait for it to finish and run the command again (a lock left by a waffle that died on this host is taken over at once; ` +
        `one held from another host expires by itself; it is ${lockPath}).`,
    );
    this.name = 'ProjectLockedError';
  }
}

/** Who holds a project's lock, as written next to it. */
export interface LockOwner {
  pid: number;
  host: string;
  since: string;
  what: string;
  /** Random per acquisition: names this holding of the lock. */
  nonce?: string;
  /** Inode of the lock directory this owner created: an owner file not matching the lock is not its owner. */
  lockIno?: number;
  /** /proc/sys/kernel/random/boot_id: a holder from before a reboot is gone. */
  bootId?: string;
  /** Start time of the holder's process (clock ticks since boot, /proc/<pid>/stat): tells a reused pid apart. */
  startTime?: number;
}

/** Something the caller may want to print: the lock was taken from a dead holder, or the call waits its turn. */
export type LockNotice =
  | { kind: 'lock-taken-over'; project: string; holder: LockOwner; message: string }
  | { kind: 'lock-queued'; project: string; ahead: number; message: string };

export interface ProjectLockOptions {
  env?: Record<string, string | undefined>;
  /** A lock not refreshed for this long is stale (holders on other hosts, or holders we cannot check). */
  staleMs?: number;
  onNotice?: (notice: LockNotice) => void;
}

const DEFAULT_STALE_MS = 15_000;

function readProcStat(pid: number): { state: string; startTime: number } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may contain spaces or ')': the fields follow the last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '', startTime: Number(rest[19]) };
  } catch {
    return undefined;
  }
}

function bootId(): string | undefined {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Whether the lock's holder still runs: 'dead' only when that is certain (same host and boot, and the
 * pid is gone, a zombie, or now another process); 'unknown' for a holder on another host.
 */
export function holderState(owner: LockOwner): 'alive' | 'dead' | 'unknown' {
  if (owner.host !== os.hostname()) return 'unknown';
  const boot = bootId();
  if (owner.bootId && boot && owner.bootId !== boot) return 'dead';
  if (!Number.isInteger(owner.pid) || owner.pid <= 0) return 'unknown';
  try {
    process.kill(owner.pid, 0);
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return 'dead';
  }
  const stat = readProcStat(owner.pid);
  // kill() found it, but /proc does not show it (hidepid, no /proc): it exists.
  if (!stat) return 'alive';
  // A zombie has exited; it only waits to be reaped (and not every PID 1 reaps).
  if (stat.state === 'Z' || stat.state === 'X' || stat.state === 'x') return 'dead';
  if (owner.startTime !== undefined && Number.isFinite(stat.startTime) && stat.startTime !== owner.startTime) return 'dead';
  return 'alive';
}

function describe(o: LockOwner): string {
  return `${o.what}, pid ${o.pid} on ${o.host}, since ${o.since}`;
}

interface Paths {
  dir: string;
  lock: string;
  owner: string;
}

function readOwner(p: Paths): LockOwner | undefined {
  try {
    return JSON.parse(fs.readFileSync(p.owner, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

function inodeOf(file: string): number | undefined {
  try {
    return fs.statSync(file).ino;
  } catch {
    return undefined;
  }
}

/**
 * Removes the lock of a holder found dead, if no other taker did first. The atomic step is the mkdir of a
 * claim named after that holding (its nonce): of two takers, one creates it and the other fails. The
 * winner then renames the lock directory away and checks it moved the very lock it judged (inode), so a
 * fresh lock taken meanwhile is never removed. Returns true when the dead holder's lock is gone.
 */
export function removeDeadLock(dir: string, owner: LockOwner, ino: number): boolean {
  const p = pathsIn(dir);
  const claim = `${p.lock}.takeover-${owner.nonce}`;
  try {
    fs.mkdirSync(claim);
  } catch {
    return false; // another taker is at it, or one crashed mid-way (the lock then expires by time)
  }
  try {
    if (inodeOf(p.lock) !== ino || readOwner(p)?.nonce !== owner.nonce) return false;
    const grave = `${p.lock}.dead-${owner.nonce}-${randomBytes(4).toString('hex')}`;
    try {
      fs.renameSync(p.lock, grave);
    } catch {
      return false;
    }
    if (inodeOf(grave) !== ino) {
      // Not the lock we judged (it was replaced in between): put it back.
      try {
        fs.renameSync(grave, p.lock);
      } catch {
        fs.rmSync(grave, { recursive: true, force: true });
      }
      return false;
    }
    fs.rmSync(grave, { recursive: true, force: true });
    if (readOwner(p)?.nonce === owner.nonce) fs.rmSync(p.owner, { force: true });
    return true;
  } finally {
    fs.rmSync(claim, { recursive: true, force: true });
  }
}

/** Takes the file lock or throws ProjectLockedError; takes over at once from a dead holder on this host. */
async function acquireFileLock(
  project: string,
  what: string,
  p: Paths,
  opts: ProjectLockOptions,
): Promise<{ release: () => Promise<void>; owner: LockOwner }> {
  const staleMs = opts.staleMs ?? DEFAULT_STALE_MS;
  let compromised: Error | undefined;
  // Imported on first use: a plan, or an apply with nothing to do, never takes the lock.
  const { default: lockfile } = await import('proper-lockfile');
  const tryLock = () =>
    lockfile.lock(p.dir, {
      lockfilePath: p.lock,
      realpath: false,
      stale: staleMs,
      update: Math.max(1000, Math.floor(staleMs / 3)),
      retries: 0,
      // proper-lockfile throws from a timer by default, which would kill the process mid-apply.
      onCompromised: (e) => {
        compromised = e;
      },
    });
  let takenFrom: LockOwner | undefined;
  let release: (() => Promise<void>) | undefined;
  for (let attempt = 0; !release; attempt++) {
    try {
      release = await tryLock();
    } catch (e) {
      if ((e as { code?: string }).code !== 'ELOCKED') throw e;
      const ino = inodeOf(p.lock);
      const owner = readOwner(p);
      // The owner file belongs to this lock only if it names this lock directory.
      const current = owner && ino !== undefined && owner.lockIno === ino ? owner : undefined;
      if (attempt < 3) {
        if (ino === undefined) continue; // released meanwhile
        if (current?.nonce && holderState(current) === 'dead') {
          // Lost to another taker: the next attempt finds its lock (alive) and says so.
          if (removeDeadLock(p.dir, current, ino)) takenFrom = current;
          continue;
        }
      }
      throw new ProjectLockedError(project, current ? describe(current) : owner ? describe(owner) : 'holder not known yet', p.lock);
    }
  }
  const self = readProcStat(process.pid);
  const owner: LockOwner = {
    pid: process.pid,
    host: os.hostname(),
    since: new Date().toISOString(),
    what,
    nonce: randomBytes(8).toString('hex'),
    lockIno: inodeOf(p.lock),
    ...(bootId() ? { bootId: bootId() } : {}),
    ...(self && Number.isFinite(self.startTime) ? { startTime: self.startTime } : {}),
  };
  writeFileAtomic(p.owner, JSON.stringify(owner));
  if (takenFrom) {
    opts.onNotice?.({
      kind: 'lock-taken-over',
      project,
      holder: takenFrom,
      message:
        `took over the lock of project "${project}" from ${takenFrom.what}, pid ${takenFrom.pid} on ${takenFrom.host} ` +
        `(since ${takenFrom.since}), which is no longer running (what it was doing may be half done)`,
    });
  }
  const held = release;
  return {
    owner,
    release: async () => {
      // The owner file goes first: a lock directory without an owner file is never judged dead.
      if (readOwner(p)?.nonce === owner.nonce) fs.rmSync(p.owner, { force: true });
      if (!compromised) await held().catch(() => undefined);
    },
  };
}

function pathsIn(dir: string): Paths {
  return { dir, lock: path.join(dir, 'apply.lock'), owner: path.join(dir, 'apply.owner.json') };
}

function lockPaths(project: string, env?: Record<string, string | undefined>): Paths {
  return pathsIn(stateDir(project, env));
}

/**
 * Runs `fn` while holding the project's lock. Throws ProjectLockedError at once when another process
 * holds it; takes it over at once (with a notice) when that process is gone. Within one process, use a
 * LockManager to wait in turn instead of failing.
 */
export async function withProjectLock<T>(project: string, what: string, fn: () => Promise<T>, opts: ProjectLockOptions = {}): Promise<T> {
  const p = lockPaths(project, opts.env);
  const { release } = await acquireFileLock(project, what, p, opts);
  try {
    return await fn();
  } finally {
    await release();
  }
}

/**
 * The in-process half of the project lock: calls for the same project (same state directory) run one
 * after the other in the order they came, each still taking the file lock against other processes;
 * different projects run concurrently. One instance per engine; it holds no global state.
 */
export class LockManager {
  readonly #tails = new Map<string, { done: Promise<void>; waiting: number }>();

  /** How many calls for the project are running or waiting in this manager. */
  pending(project: string, env?: Record<string, string | undefined>): number {
    return this.#tails.get(lockPaths(project, env).lock)?.waiting ?? 0;
  }

  /**
   * Runs `fn` once every earlier call for the same project in this manager has finished, holding the file
   * lock against other processes. With `signal`, a call still waiting its turn can be withdrawn: it
   * rejects with the signal's reason and never runs (the ones after it keep their order).
   */
  async withProjectLock<T>(
    project: string,
    what: string,
    fn: () => Promise<T>,
    opts: ProjectLockOptions & { signal?: AbortSignal } = {},
  ): Promise<T> {
    const key = lockPaths(project, opts.env).lock;
    const prev = this.#tails.get(key);
    let finished!: () => void;
    const ran = new Promise<void>((r) => (finished = r));
    // The next call waits for this one and, should this one be withdrawn early, for the ones before it.
    const done = prev ? Promise.all([prev.done, ran]).then(() => undefined) : ran;
    const entry = { done, waiting: (prev?.waiting ?? 0) + 1 };
    this.#tails.set(key, entry);
    try {
      opts.signal?.throwIfAborted();
      if (prev) {
        opts.onNotice?.({
          kind: 'lock-queued',
          project,
          ahead: prev.waiting,
          message: `waiting for ${prev.waiting} earlier change${prev.waiting === 1 ? '' : 's'} of project "${project}" in this process to finish`,
        });
        await waitOrAbort(prev.done, opts.signal);
      }
      return await withProjectLock(project, what, fn, opts);
    } finally {
      finished();
      void done.then(() => {
        const tail = this.#tails.get(key);
        if (tail === entry) this.#tails.delete(key);
      });
      const tail = this.#tails.get(key);
      if (tail) tail.waiting--;
    }
  }
}

function waitOrAbort(p: Promise<void>, signal?: AbortSignal): Promise<void> {
  if (!signal) return p;
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
