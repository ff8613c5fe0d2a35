/**
 * The deployer's own state directory for one project: kept OUTSIDE the source-of-truth repository
 * (the HMAC key that hashes secret values, durable Vault lease records). Shared by the secret modules.
 *
 * `WAFFLE_STATE_DIR/<project>` when set (tests point it at a temporary directory), else
 * `$XDG_STATE_HOME/wafflemaker/<project>`, else `~/.local/state/wafflemaker/<project>`. Created 0700.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function stateRoot(env: Record<string, string | undefined> = process.env): string {
  if (env.WAFFLE_STATE_DIR) return path.resolve(env.WAFFLE_STATE_DIR);
  const xdg = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(xdg, 'wafflemaker');
}

/** `p` with symbolic links resolved as far as it exists (the rest appended as given). */
function realish(p: string): string {
  const abs = path.resolve(p);
  let head = abs;
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync(head), ...rest);
    } catch {
      const up = path.dirname(head);
      if (up === head) return abs;
      rest.unshift(path.basename(head));
      head = up;
    }
  }
}

/** Whether `p` is `dir` or lies under it (symbolic links resolved). */
export function isInside(p: string, dir: string): boolean {
  const rel = path.relative(realish(dir), realish(p));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Throws when a private file of the deployer (`what`: the age identity, the HMAC key) would live inside
 * the repository `root`, where it would be committed with the secrets it protects.
 */
export function assertOutsideRepo(file: string, root: string, what: string, fix: string): void {
  if (isInside(file, root)) {
    throw new Error(`${what} ${file} is inside the repository ${path.resolve(root)}, where it could be committed next to what it protects: ${fix}`);
  }
}

/** The state directory of `project`, created (mode 0700) if missing. */
export function stateDir(project: string, env: Record<string, string | undefined> = process.env): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(project)) throw new Error(`invalid project name for a state directory: ${JSON.stringify(project)}`);
  const dir = path.join(stateRoot(env), project);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Writes a file atomically: a temporary file in the same directory, fsync, then rename over the target. */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = `${file}.${process.pid}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`;
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
