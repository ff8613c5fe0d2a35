/** `waffle logs <service>`: a service's output, on stdout. */
import type { Command } from 'commander';
import { cliOf, Exit, type App } from '../context.ts';

export function register(program: Command, app: App): void {
  program
    .command('logs')
    .description("print a service's output")
    .argument('<service>', 'service name')
    .option('-f, --follow', 'keep following (Ctrl-C stops)')
    .option('-n, --tail <lines>', 'lines from the end, or all', '100')
    .action(async (service: string, o: { follow?: boolean; tail: string }, cmd: Command) => {
      const cli = cliOf(cmd, app);
      const tail = o.tail === 'all' ? 'all' : Number(o.tail);
      if (tail !== 'all' && !(Number.isInteger(tail) && tail >= 0)) throw new Exit(1, `waffle: --tail takes a number of lines or all, not "${o.tail}"`);
      const engine = await cli.engine();
      await engine.logs(cli.source(), service, { follow: !!o.follow, tail, out: cli.stdout, signal: cli.interrupt.signal });
    });
}
