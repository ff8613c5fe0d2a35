/**
 * One change at a time per project: apply and destroy hold a lock in the deployer's state directory,
 * so the CLI and the agent (or two terminals) never interleave operations or revoke each other's
 * freshly issued credentials. A lock whose holder died goes stale after `staleMs` and is taken over.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { stateDir } from './secrets/state.ts';

export class ProjectLockedError extends Error {
  constructor(project: string, holder: string, lockPath: string) {
    super(
      `project "${project}" is being changed by another waffle (${holder}). Nothing was changed. ` +
        `Fix: wait for it to finish and run the command again (a lock left by a crashed waffle expires by itself; it is ${lockPath}).`,
    );
    this.name = 'ProjectLockedError';
  }
}

interface Owner {
  pid: number;
  host: string;
  since: string;
  what: string;
}

/** Runs `fn` while holding the project's lock; throws ProjectLockedError at once when someone else holds it. */
export async function withProjectLock<T>(
  project: string,
  what: string,
  fn: () => Promise<T>,
  opts: { env?: Record<string, string | undefined>; staleMs?: number } = {},
): Promise<T> {
  const dir = stateDir(project, opts.env);
  const lockPath = path.join(dir, 'apply.lock');
  const ownerPath = path.join(dir, 'apply.owner.json');
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(dir, {
      lockfilePath: lockPath,
      realpath: false,
      stale: opts.staleMs ?? 15_000,
      update: Math.max(1000, Math.floor((opts.staleMs ?? 15_000) / 3)),
      retries: 0,
    });
  } catch (e) {
    if ((e as { code?: string }).code !== 'ELOCKED') throw e;
    let holder = 'unknown holder';
    try {
      const o = JSON.parse(fs.readFileSync(ownerPath, 'utf8')) as Owner;
      holder = `${o.what}, pid ${o.pid} on ${o.host}, since ${o.since}`;
    } catch {
      /* the holder has not written its name yet */
    }
    throw new ProjectLockedError(project, holder, lockPath);
  }
  const owner: Owner = { pid: process.pid, host: os.hostname(), since: new Date().toISOString(), what };
  fs.writeFileSync(ownerPath, JSON.stringify(owner), { mode: 0o600 });
  try {
    return await fn();
  } finally {
    fs.rmSync(ownerPath, { force: true });
    await release().catch(() => undefined);
  }
}
