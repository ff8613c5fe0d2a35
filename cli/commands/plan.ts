/** `waffle plan`: what apply would change, each change with its cause. Exit 2 with --detailed-exitcode when there are changes. */
import type { Command } from 'commander';
import { cliOf, Exit, type App } from '../context.ts';
import { listenerFor } from '../render/listen.ts';

export function register(program: Command, app: App): void {
  program
    .command('plan')
    .description('show what apply would change')
    .option('--full', 'show every field and every network, volume and image operation')
    .option('--detailed-exitcode', 'exit 2 when there are changes, 0 when none')
    .option('--offline', 'contact no Vault and no registry: secrets that would be read or renewed are reported as not checked')
    .option('--from-graph <file>', 'plan a stored graph (the JSON of `waffle check --json`) instead of the repository')
    .option('--pull <policy>', "override every service's pull policy: always (ask the registry for newer images) or missing")
    .action(async (o: { full?: boolean; detailedExitcode?: boolean; offline?: boolean; fromGraph?: string; pull?: string }, cmd: Command) => {
      const cli = cliOf(cmd, app);
      if (o.pull !== undefined && o.pull !== 'always' && o.pull !== 'missing') throw new Exit(1, `waffle: --pull takes always or missing, not "${o.pull}"`);
      const engine = await cli.engine();
      const source = o.fromGraph ? await graphSource(cli.root, o.fromGraph, app.cwd) : cli.source();
      const planned = await engine.plan(source, {
        onEvent: await listenerFor(cli),
        signal: cli.interrupt.signal,
        ...(o.offline ? { offline: true } : {}),
        ...(o.pull ? { pull: o.pull as 'always' | 'missing' } : {}),
      });
      if (cli.mode !== 'json') {
        // The plan is the command's result: stdout (`waffle plan > plan.txt`, `| less`), coloured and cut
        // to the width only when stdout is a terminal. Progress and problems stayed on stderr.
        const { planText } = await import('../render/plan.ts');
        const { useColorFor } = await import('../render/color.ts');
        useColorFor(cli.stdout, cli.env);
        cli.out(planText(planned.plan, { full: !!o.full, columns: cli.stdout.isTTY ? cli.stdout.columns || 80 : undefined }));
        if (planned.notChecked.length) {
          cli.out(`not checked (offline): the secrets of ${planned.notChecked.join(', ')}; a changed value would replace them\n`);
        }
      }
      if (o.detailedExitcode && planned.plan.operations.length > 0) throw new Exit(2);
    });
}

/** A stored graph as the plan's source (replaying a deploy exactly). */
export async function graphSource(root: string, file: string, cwd: string) {
  const fs = await import('node:fs');
  const path = await import('node:path');
  const text = fs.readFileSync(path.resolve(cwd, file), 'utf8');
  const graph = JSON.parse(text) as import('../../runtime/model.ts').ServiceGraph;
  if (!graph || typeof graph !== 'object' || typeof graph.project !== 'string' || typeof graph.services !== 'object') {
    throw new Exit(1, `waffle: ${file} is not a stored graph (expected the JSON of \`waffle check --json\`)`);
  }
  void root;
  return { graph };
}
