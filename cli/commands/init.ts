/** `waffle init [dir]`: write a new source-of-truth repository from templates/. */
import type { Command } from 'commander';
import kleur from 'kleur';
import path from 'node:path';
import { cliOf, type App } from '../context.ts';

export function register(program: Command, app: App): void {
  program
    .command('init')
    .description('write waffle.config.ts, services/web.ts, tsconfig.json and package.json into a repository')
    .argument('[dir]', 'target directory (default: --dir, or the current directory)')
    .option('--project <name>', 'project name (default: the directory name)')
    .action(async (dir: string | undefined, o: { project?: string }, cmd: Command) => {
      const cli = cliOf(cmd, app);
      const { initRepo } = await import('../init.ts');
      const { written, updated } = initRepo(dir ? path.resolve(cli.root, dir) : cli.root, o.project ? { project: o.project } : {});
      for (const f of written) cli.err(`${kleur.green('+')} ${f}`);
      for (const f of updated) cli.err(`${kleur.yellow('~')} ${f} (added wafflemaker to devDependencies)`);
      // The dependency is what makes `npx waffle` in this repository run wafflemaker's binary.
      cli.err('next: npm install, edit services/*.ts, then run `npx waffle plan`');
      if (cli.mode === 'json') cli.out(JSON.stringify({ written, updated }) + '\n');
    });
}
