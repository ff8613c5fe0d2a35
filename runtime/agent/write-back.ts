/**
 * Write-back: after an automatic update ran, the new tag is committed into the service's file in the
 * source repository and pushed, so git and what runs agree again (the next deploy is a no-op). The
 * image string is edited in place through the TypeScript AST (only the literal's characters change,
 * the rest of the file is kept byte for byte). It works in a clone of its own (the deploy checkout
 * stays exactly the deployed commit); a push refused because the branch moved is tried again on the
 * new head, never forced.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { SimpleGit } from 'simple-git';
import type { AppliedUpdate } from './image-updates.ts';

export interface WriteBackOptions {
  /** The source repository (what the agent's checkout clones). */
  repo: string;
  branch: string;
  /** A directory of its own for the write-back clone (in the agent's state dir). */
  dir: string;
  /** Commit author. Default `waffle agent <waffle-agent@localhost>`. */
  author?: { name: string; email: string };
  /** git's environment (credentials as the checkout passes them: never in the URL or config). */
  env?: Record<string, string>;
  /** Attempts when the push is refused because the branch moved. Default 5. */
  attempts?: number;
}

export type WriteBackResult =
  | { kind: 'committed'; commit: string; file: string; attempts: number }
  | { kind: 'unchanged'; reason: string };

/**
 * `source` with the image string literal of `defineService({ image: ... })` changed from `from` to `to`,
 * or a reason why it cannot be (the image is not written as a literal there).
 */
export async function rewriteImage(source: string, fileName: string, from: string, to: string): Promise<{ text: string } | { error: string }> {
  const ts = (await import('typescript')).default;
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const hits: import('typescript').StringLiteralLike[] = [];
  const visit = (node: import('typescript').Node): void => {
    if (
      ts.isPropertyAssignment(node) &&
      (ts.isIdentifier(node.name) || ts.isStringLiteral(node.name)) &&
      node.name.text === 'image' &&
      ts.isStringLiteralLike(node.initializer) &&
      node.initializer.text === from
    ) {
      hits.push(node.initializer);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  if (hits.length === 0) return { error: `${fileName} has no \`image: '${from}'\` written as a string literal (a constant or a template cannot be edited)` };
  if (hits.length > 1) return { error: `${fileName} has ${hits.length} \`image: '${from}'\` literals; which one to change is ambiguous` };
  const lit = hits[0]!;
  const start = lit.getStart(sf);
  const end = lit.getEnd();
  const quote = source[start]!;
  // The new reference has only characters of Docker's grammar: no escaping needed in any quote style.
  return { text: source.slice(0, start) + quote + to + quote + source.slice(end) };
}

export class WriteBack {
  readonly #o: WriteBackOptions;
  #git: SimpleGit | undefined;

  constructor(opts: WriteBackOptions) {
    this.#o = opts;
  }

  async #repo(): Promise<SimpleGit> {
    if (this.#git) return this.#git;
    const { simpleGit } = await import('simple-git');
    const env = this.#o.env ?? { PATH: '/usr/bin:/bin', HOME: '/root' };
    if (!fs.existsSync(path.join(this.#o.dir, '.git'))) {
      fs.mkdirSync(path.dirname(this.#o.dir), { recursive: true });
      fs.rmSync(this.#o.dir, { recursive: true, force: true });
      await simpleGit().env(env).clone(this.#o.repo, this.#o.dir, ['--branch', this.#o.branch, '--single-branch']);
    }
    this.#git = simpleGit({ baseDir: this.#o.dir }).env(env);
    return this.#git;
  }

  /** Commits `u.to` into `u.file` on the branch and pushes; on a refused push, starts again from the new head. */
  async commit(u: AppliedUpdate): Promise<WriteBackResult> {
    const git = await this.#repo();
    const author = this.#o.author ?? { name: 'waffle agent', email: 'waffle-agent@localhost' };
    const attempts = this.#o.attempts ?? 5;
    const branch = this.#o.branch;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      await git.fetch('origin', branch);
      await git.raw(['checkout', '-q', '-B', branch, `origin/${branch}`]);
      await git.raw(['reset', '-q', '--hard', `origin/${branch}`]);
      const file = path.join(this.#o.dir, u.file);
      if (!fs.existsSync(file)) return { kind: 'unchanged', reason: `${u.file} is not on ${branch} any more` };
      const source = fs.readFileSync(file, 'utf8');
      const edited = await rewriteImage(source, u.file, u.from, u.to);
      if ('error' in edited) {
        // Someone changed the line meanwhile: the file decides (the override is dropped at the next deploy).
        return { kind: 'unchanged', reason: edited.error };
      }
      fs.writeFileSync(file, edited.text);
      await git.add(u.file);
      const message = `waffle: ${u.service} image ${u.to.slice(u.to.lastIndexOf(':') + 1)}\n\nThe agent deployed ${u.to}${u.digest ? ` (${u.digest})` : ''} by the update policy of ${u.service} in ${u.file}\n(was ${u.from}).`;
      await git.raw(['-c', `user.name=${author.name}`, '-c', `user.email=${author.email}`, 'commit', '-q', '--author', `${author.name} <${author.email}>`, '-m', message]);
      const commit = (await git.revparse(['HEAD'])).trim();
      try {
        await git.raw(['push', '--porcelain', 'origin', `HEAD:refs/heads/${branch}`]);
        return { kind: 'committed', commit, file: u.file, attempts: attempt };
      } catch (e) {
        const text = String((e as Error).message);
        // Refused because the branch moved (non-fast-forward, fetch first): the next turn starts from its new head.
        if (!/rejected|non-fast-forward|fetch first|failed to push/i.test(text) || attempt === attempts) throw new Error(`write-back: pushing to ${branch} failed: ${text.split('\n').find((l) => l.trim()) ?? text}`);
      }
    }
    throw new Error('write-back: gave up');
  }
}
