/**
 * The pull requests' side of git: a bare repository of the agent's own (apart from the deploy
 * checkout, which a preview never touches) that fetches a pull request's head commit
 * (`refs/pull/<n>/head`, which GitHub keeps on the base repository for forks too, else the commit by
 * its sha) shallowly, and one detached worktree per preview, removed when the preview ends.
 * Git operations on the repository run one at a time; the signal stops a fetch in flight.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { SimpleGit } from 'simple-git';

export interface PreviewWorkspaceOptions {
  /** A directory of the agent's state dir, owned by the previews. */
  dir: string;
  /** The repository to fetch from: the agent's remote (URL or path). */
  remote: string;
  /** The whole environment git runs with (PATH, HOME, GIT_SSH_COMMAND, a credential helper); default: this process's. */
  env?: Record<string, string>;
}

export interface PreviewCheckout {
  /** The worktree holding the commit. */
  dir: string;
  sha: string;
  /** Removes the worktree. */
  release(): Promise<void>;
}

const SHA = /^[0-9a-f]{40}$/;

export class PreviewWorkspace {
  readonly #opts: PreviewWorkspaceOptions;
  readonly #bare: string;
  #chain: Promise<unknown> = Promise.resolve();
  #ready: Promise<void> | undefined;

  constructor(opts: PreviewWorkspaceOptions) {
    this.#opts = opts;
    this.#bare = path.join(opts.dir, 'repo.git');
  }

  async #git(dir: string, signal?: AbortSignal): Promise<SimpleGit> {
    const { simpleGit } = await import('simple-git');
    const git = simpleGit({ baseDir: dir, ...(signal ? { abort: signal } : {}) });
    return this.#opts.env ? git.env(this.#opts.env) : git;
  }

  /** One git operation at a time on the shared repository. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  #init(): Promise<void> {
    return (this.#ready ??= (async () => {
      fs.mkdirSync(this.#bare, { recursive: true });
      if (!fs.existsSync(path.join(this.#bare, 'HEAD'))) await (await this.#git(this.#bare)).init(true);
      // Worktrees of a run that was killed: their directories are gone or stale.
      for (const e of fs.readdirSync(this.#opts.dir)) if (e.startsWith('pull-')) fs.rmSync(path.join(this.#opts.dir, e), { recursive: true, force: true });
      await (await this.#git(this.#bare)).raw(['worktree', 'prune']);
    })().catch((e) => {
      this.#ready = undefined;
      throw e;
    }));
  }

  async #has(git: SimpleGit, sha: string): Promise<boolean> {
    try {
      return (await git.raw(['cat-file', '-t', sha])).trim() === 'commit';
    } catch {
      return false;
    }
  }

  /** Fetches pull request `number`'s commit `sha` and checks it out into a fresh worktree. */
  checkout(number: number, sha: string, signal?: AbortSignal): Promise<PreviewCheckout> {
    if (!SHA.test(sha)) return Promise.reject(new Error(`"${sha}" is not a full commit sha`));
    if (!Number.isInteger(number) || number <= 0) return Promise.reject(new Error(`"${number}" is not a pull request number`));
    return this.#serial(async () => {
      await this.#init();
      const git = await this.#git(this.#bare, signal);
      const ref = `refs/pull/${number}/head`;
      if (!(await this.#has(git, sha))) {
        const fetchErrors: string[] = [];
        try {
          await git.raw(['fetch', '--no-tags', '--depth=1', this.#opts.remote, `+${ref}:${ref}`]);
        } catch (e) {
          fetchErrors.push((e as Error).message.trim());
        }
        // The pull request moved on since the event (a newer push) or has no such ref: ask for the commit itself.
        if (!(await this.#has(git, sha))) {
          try {
            await git.raw(['fetch', '--no-tags', '--depth=1', this.#opts.remote, sha]);
          } catch (e) {
            fetchErrors.push((e as Error).message.trim());
          }
        }
        if (signal?.aborted) throw signal.reason ?? new Error('aborted');
        if (!(await this.#has(git, sha))) {
          throw new Error(`commit ${sha.slice(0, 12)} of pull request #${number} could not be fetched from the repository${fetchErrors.length ? `: ${fetchErrors.at(-1)!.split('\n').at(-1)}` : ''}`);
        }
      }
      const dir = path.join(this.#opts.dir, `pull-${number}-${sha.slice(0, 12)}-${Date.now().toString(36)}`);
      await git.raw(['worktree', 'add', '--detach', '--force', dir, sha]);
      let released = false;
      return {
        dir,
        sha,
        release: () =>
          released
            ? Promise.resolve()
            : ((released = true),
              this.#serial(async () => {
                const g = await this.#git(this.#bare);
                await g.raw(['worktree', 'remove', '--force', dir]).catch(() => fs.rmSync(dir, { recursive: true, force: true }));
                await g.raw(['worktree', 'prune']).catch(() => undefined);
              })),
      };
    });
  }
}
