/** `waffle maintenance on|off <service>`: the proxy answers the service's routes with 503 and a page; the containers keep running. */
import type { Command } from 'commander';
import kleur from 'kleur';
import { cliOf, Exit, type App } from '../context.ts';
import { listenerFor } from '../render/listen.ts';

export function register(program: Command, app: App): void {
  program
    .command('maintenance')
    .description("answer a routed service's domains with 503 and a maintenance page (on), or route them to it again (off)")
    .argument('<state>', 'on or off')
    .argument('<service>', 'service name')
    .option('--page <file>', 'the page to answer with (default: ingress.maintenancePage, else a built-in page)')
    .action(async (state: string, service: string, o: { page?: string }, cmd: Command) => {
      if (state !== 'on' && state !== 'off') throw new Exit(1, `waffle: maintenance takes on or off, not "${state}"`);
      const cli = cliOf(cmd, app);
      const engine = await cli.engine();
      await engine.maintenance(cli.source(), service, state === 'on', {
        onEvent: await listenerFor(cli),
        signal: cli.interrupt.signal,
        ...(o.page !== undefined ? { page: o.page } : {}),
      });
      if (cli.mode !== 'json') {
        cli.err(state === 'on' ? `${kleur.yellow('maintenance on')}: ${service} answers 503 with the maintenance page` : `${kleur.green('maintenance off')}: ${service} is routed to its container again`);
      }
    });
}
