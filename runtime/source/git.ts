/**
 * The commit the working tree came from: the short HEAD hash, `-dirty` when tracked files differ,
 * or `none` outside a git repository. Goes into the `commit` label (never into the config hash).
 */
export async function currentCommit(root: string): Promise<string> {
  try {
    // Imported here, not at the top: the engine starts loading the configuration before this module loads.
    const { simpleGit } = await import('simple-git');
    const git = simpleGit({ baseDir: root });
    const head = (await git.revparse(['--short=12', 'HEAD'])).trim();
    const status = await git.raw(['status', '--porcelain', '--untracked-files=no']);
    return status.trim() ? `${head}-dirty` : head;
  } catch {
    return 'none';
  }
}
