/**
 * The agent's own checkout of the source of truth (simple-git): cloned once (or reused), then for each
 * deploy fetched, the wanted commit checked to be on the branch, and the work tree hard-reset to it.
 * Never a merge: the checkout is exactly the commit. Credentials reach git through its environment
 * (an HTTP header in GIT_CONFIG_*, an SSH key in GIT_SSH_COMMAND), never through the URL or
 * .git/config, so nothing in the checkout (which the evaluation reads) holds them.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { SimpleGit } from 'simple-git';
import type { Target } from './trigger.ts';

export interface GitAuth {
  /** HTTPS: a token sent as basic auth (`x-access-token:<token>`, GitHub's convention). */
  token?: string;
  /** SSH: a private key file. */
  sshKeyFile?: string;
  /** SSH: a known_hosts file; without it, a host key is accepted the first time and checked after. */
  knownHostsFile?: string;
}

export interface CheckoutOptions {
  repo: string;
  branch: string;
  dir: string;
  auth?: GitAuth;
  /** Time limit of one git command. */
  timeoutMs?: number;
  /** PATH and HOME git runs with (the caller's; nothing else of its environment reaches git). */
  hostEnv?: { PATH?: string; HOME?: string };
}

/** A commit that is not on the branch, or a branch that does not exist: the deploy is refused. */
export class CheckoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckoutError';
  }
}

export class Checkout {
  readonly dir: string;
  readonly branch: string;
  readonly #opts: CheckoutOptions;
  #git: Promise<SimpleGit> | undefined;

  constructor(opts: CheckoutOptions) {
    this.#opts = opts;
    this.dir = opts.dir;
    this.branch = opts.branch;
  }

  /** The repository followed (a URL or a path). */
  get repo(): string {
    return this.#opts.repo;
  }

  /** git's environment: nothing from this process but what git needs, plus the credentials. */
  gitEnv(): Record<string, string> {
    const env: Record<string, string> = { PATH: this.#opts.hostEnv?.PATH ?? '/usr/bin:/bin', HOME: this.#opts.hostEnv?.HOME ?? '/root' };
    const auth = this.#opts.auth ?? {};
    if (auth.token) {
      const basic = Buffer.from(`x-access-token:${auth.token}`).toString('base64');
      Object.assign(env, { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'http.extraHeader', GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}` });
    }
    if (auth.sshKeyFile) {
      const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
      const hosts = auth.knownHostsFile ? `-o UserKnownHostsFile=${q(auth.knownHostsFile)} -o StrictHostKeyChecking=yes` : '-o StrictHostKeyChecking=accept-new';
      env.GIT_SSH_COMMAND = `ssh -i ${q(auth.sshKeyFile)} -o IdentitiesOnly=yes -o BatchMode=yes ${hosts}`;
    }
    return env;
  }

  async #client(baseDir: string): Promise<SimpleGit> {
    const { simpleGit } = await import('simple-git');
    return simpleGit({
      baseDir,
      timeout: { block: this.#opts.timeoutMs ?? 120_000 },
      // The environment above is ours, set on purpose: an SSH command and a config header.
      unsafe: { allowUnsafeSshCommand: true, allowUnsafeConfigEnvCount: true },
    }).env(this.gitEnv());
  }

  /** Clones the repository (the branch only) unless the directory already holds a checkout of it. */
  async ensure(): Promise<{ cloned: boolean }> {
    const dir = this.dir;
    if (fs.existsSync(path.join(dir, '.git'))) {
      const git = await this.#client(dir);
      // The URL may have changed in the agent's settings: the checkout follows it.
      await git.remote(['set-url', 'origin', this.#opts.repo]);
      this.#git = Promise.resolve(git);
      return { cloned: false };
    }
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    const git = await this.#client(path.dirname(dir));
    try {
      await git.clone(this.#opts.repo, dir, ['--branch', this.branch, '--single-branch', '--no-tags']);
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new CheckoutError(`cannot clone ${redactUrl(this.#opts.repo)} (branch ${this.branch}): ${firstLine(e)}`);
    }
    // Readable by the evaluation's unprivileged user (it reads the service files), like any checkout.
    fs.chmodSync(dir, 0o755);
    this.#git = this.#client(dir);
    return { cloned: true };
  }

  async #repoGit(): Promise<SimpleGit> {
    if (!this.#git) await this.ensure();
    return this.#git!;
  }

  /** The branch head on the remote, without fetching (the poll's cheap question). */
  async remoteHead(): Promise<string | undefined> {
    const git = await this.#repoGit();
    const out = await git.listRemote(['origin', `refs/heads/${this.branch}`]);
    return /^([0-9a-f]{40})\s/.exec(out)?.[1];
  }

  /**
   * Fetches the branch; resolves `target` to a full commit on it; hard-resets the work tree to it.
   * Every git command here prints something on success: simple-git waits a further 50 ms after a
   * command that printed nothing, to be sure its output is complete.
   */
  async sync(target: Target): Promise<string> {
    const git = await this.#repoGit();
    const ref = `refs/remotes/origin/${this.branch}`;
    // Files of an earlier commit that git does not track (ignored ones too) go, while the fetch runs
    // (it writes only under .git): with the hard reset after it, the tree is exactly the commit.
    const cleaned = git.raw(['clean', '-ffdx']).then(() => undefined, (e: unknown) => e);
    try {
      await git.fetch(['origin', `+refs/heads/${this.branch}:${ref}`, '--no-tags', '--prune', '--no-write-fetch-head', '--no-auto-gc', '--no-recurse-submodules']);
    } catch (e) {
      await cleaned;
      throw new CheckoutError(`cannot fetch ${this.branch} from ${redactUrl(this.#opts.repo)}: ${firstLine(e)}`);
    }
    const cleanError = await cleaned;
    if (cleanError) throw new CheckoutError(`cannot clean the checkout ${this.dir}: ${firstLine(cleanError)}`);
    let commit: string;
    if ('commit' in target) {
      if (!/^[0-9a-f]{4,40}$/i.test(target.commit)) throw new CheckoutError(`"${target.commit}" is not a commit id`);
      // Only the branch is fetched: a commit that is not in it is not in the checkout at all.
      const [head, found] = (await git.raw(['rev-parse', ref, `${target.commit}^{commit}`]).catch(() => '')).trim().split('\n');
      commit = found ?? '';
      if (!head || !/^[0-9a-f]{40}$/.test(commit)) throw new CheckoutError(`commit ${target.commit} is not on branch ${this.branch}`);
      // On the branch: an ancestor of (or equal to) its head, i.e. its merge base with the head is itself.
      // Anything else is refused, never merged.
      if (commit !== head) {
        const base = (await git.raw(['merge-base', commit, head]).catch(() => '')).trim();
        if (base !== commit) throw new CheckoutError(`commit ${commit.slice(0, 12)} is not on branch ${this.branch}`);
      }
    } else commit = (await git.revparse([ref])).trim();
    // Not --quiet: it prints `HEAD is now at …`.
    await git.raw(['reset', '--hard', commit]);
    return commit;
  }

  /** The commit the work tree is at now, if any. */
  async current(): Promise<string | undefined> {
    try {
      const git = await this.#repoGit();
      return (await git.revparse(['HEAD'])).trim();
    } catch {
      return undefined;
    }
  }
}

/** A URL without its user information (a token someone put in it stays out of messages). */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z+]+:\/\/)[^@/]+@/i, '$1***@');
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n').find((l) => l.trim() && !/^\s*$/.test(l))?.trim() ?? 'git failed';
}
