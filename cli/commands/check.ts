/** `waffle check`: load, type-check and validate the configuration; touches nothing. */
import type { Command } from 'commander';
import kleur from 'kleur';
import { cliOf, type App } from '../context.ts';
import { listenerFor } from '../render/listen.ts';

export function register(program: Command, app: App): void {
  program
    .command('check')
    .description('load, type-check and validate the configuration without touching Docker (--json: the graph on stdout)')
    .option('--no-types', 'skip the TypeScript type-check')
    .action(async (o: { types: boolean }, cmd: Command) => {
      const cli = cliOf(cmd, app);
      const engine = await cli.engine();
      // With --json the graph alone is the data on stdout (a stored graph `plan --from-graph` replays);
      // a failure prints its run-failed event there instead.
      const listen = cli.mode === 'json' ? await listenerFor(cli) : undefined;
      const graph = await engine.check(cli.source(), {
        types: o.types,
        signal: cli.interrupt.signal,
        ...(listen ? { onEvent: (e) => e.type === 'run-failed' && listen(e) } : {}),
      });
      if (cli.mode === 'json') cli.out(JSON.stringify(graph, null, 2) + '\n');
      const n = Object.keys(graph.services).length;
      cli.err(`${kleur.green('ok')}: project ${graph.project}, ${n} service${n === 1 ? '' : 's'}`);
    });
}
