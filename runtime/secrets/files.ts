/**
 * Secret files on the Docker host: written at apply time into a per-container directory on a tmpfs
 * (memory, never disk), mode 0400, owned by the service's numeric user (root when unset), and
 * bind-mounted read-only at their target. The directory is `<root>/<project>/<service>-<generation>/`,
 * where `<root>` is `WAFFLE_SECRET_FILES_DIR`, else `/run/wafflemaker/secrets` when /run is a tmpfs,
 * else `/dev/shm/wafflemaker-secrets`. Directories of containers that no longer exist are removed
 * after each apply (`gcSecretFiles`).
 *
 * This needs the Docker engine on the same host as waffle (a unix socket), like bind mounts do. After
 * a reboot the tmpfs is empty: the next apply writes the files again before starting the container.
 */
import fs from 'node:fs';
import path from 'node:path';

type Env = Record<string, string | undefined>;

const TMPFS_MAGIC = 0x01021994;

function isTmpfs(dir: string): boolean {
  try {
    return fs.statfsSync(dir).type === TMPFS_MAGIC;
  } catch {
    return false;
  }
}

/** The root directory of secret files on this host. */
export function secretFilesRoot(env: Env = process.env): string {
  if (env.WAFFLE_SECRET_FILES_DIR) return path.resolve(env.WAFFLE_SECRET_FILES_DIR);
  if (isTmpfs('/run')) return '/run/wafflemaker/secrets';
  if (isTmpfs('/dev/shm')) return '/dev/shm/wafflemaker-secrets';
  throw new Error(
    'no tmpfs for secret files: neither /run nor /dev/shm is a tmpfs on this host. ' +
      'Set WAFFLE_SECRET_FILES_DIR to a directory on a tmpfs (secret files must never be written to disk).',
  );
}

/** Directory name of one container's files: `<service>-<generation>`. */
export function containerKey(service: string, generation: number | string): string {
  return `${service}-${generation}`;
}

export function projectFilesDir(project: string, env: Env = process.env): string {
  return path.join(secretFilesRoot(env), project);
}

/** `{uid, gid}` from a numeric `user` (`'1000'` or `'1000:1000'`); root when unset. */
export function fileOwner(user: string | undefined): { uid: number; gid: number } {
  if (user === undefined) return { uid: 0, gid: 0 };
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!m) throw new Error(`user ${JSON.stringify(user)} is not numeric; secret files need a numeric uid[:gid]`);
  return { uid: Number(m[1]), gid: m[2] !== undefined ? Number(m[2]) : 0 };
}

/**
 * Writes one container's secret files (replacing what a failed earlier attempt left). Returns the
 * host path of each, in the order given.
 */
export function writeSecretFiles(
  project: string,
  key: string,
  files: Array<{ target: string; value: string }>,
  owner: { uid: number; gid: number },
  env: Env = process.env,
): Array<{ source: string; target: string }> {
  const root = secretFilesRoot(env);
  fs.mkdirSync(root, { recursive: true, mode: 0o711 });
  const dir = path.join(root, project, key);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const canChown = typeof process.getuid === 'function' && process.getuid() === 0;
  return files.map((f, i) => {
    const name = `${i}-${path.posix.basename(f.target).replace(/[^A-Za-z0-9._-]/g, '_') || 'file'}`;
    const source = path.join(dir, name);
    const fd = fs.openSync(source, 'wx', 0o400);
    try {
      fs.writeFileSync(fd, f.value);
      fs.fchmodSync(fd, 0o400);
      if (canChown && (owner.uid !== 0 || owner.gid !== 0)) fs.fchownSync(fd, owner.uid, owner.gid);
    } finally {
      fs.closeSync(fd);
    }
    return { source, target: f.target };
  });
}

/** Whether a container's files are all present (after a reboot the tmpfs is empty). */
export function secretFilesPresent(project: string, key: string, count: number, env: Env = process.env): boolean {
  try {
    return fs.readdirSync(path.join(secretFilesRoot(env), project, key)).length === count;
  } catch {
    return false;
  }
}

/** Removes the file directories of `project` not in `keep` (container keys). Returns the removed keys. */
export function gcSecretFiles(project: string, keep: Set<string>, env: Env = process.env): string[] {
  let dir: string;
  try {
    dir = projectFilesDir(project, env);
  } catch {
    return [];
  }
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const e of entries) {
    if (keep.has(e)) continue;
    fs.rmSync(path.join(dir, e), { recursive: true, force: true });
    removed.push(e);
  }
  if (entries.length === removed.length) fs.rmSync(dir, { recursive: true, force: true });
  return removed;
}

/** Removes every secret file of `project` (after `destroy`). */
export function removeSecretFiles(project: string, env: Env = process.env): void {
  gcSecretFiles(project, new Set(), env);
}
