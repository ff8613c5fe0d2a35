/** `waffle destroy`: remove every container and network of the project (and nothing else); revoke its Vault leases. */
import type { Command } from 'commander';
import kleur from 'kleur';
import { cliOf, Exit, type App } from '../context.ts';
import { confirm } from '../prompt.ts';
import { listenerFor } from '../render/listen.ts';

export function register(program: Command, app: App): void {
  program
    .command('destroy')
    .description('remove every container and network of the project (and nothing else)')
    .option('-y, --yes', 'destroy without asking')
    .option('--volumes', "also remove the project's named volumes (their data is lost)")
    .action(async (o: { yes?: boolean; volumes?: boolean }, cmd: Command) => {
      const cli = cliOf(cmd, app);
      const engine = await cli.engine();
      const report = await engine.destroy(cli.source(), {
        volumes: !!o.volumes,
        onEvent: await listenerFor(cli),
        signal: cli.interrupt.signal,
        ...(o.yes ? {} : { confirm: (project: string) => confirm(cli, `Destroy project ${project}`, '--yes') }),
      });
      if (cli.mode === 'json') {
        if (report.errors.length) throw new Exit(1);
        return;
      }
      const r = report.removed;
      // A Swarm project reports its services and secret versions instead of containers.
      const what = r.services ? `${r.services.length} services, ${r.secrets?.length ?? 0} secrets` : `${r.containers.length} containers`;
      cli.err(`${kleur.green('destroyed')}: ${what}, ${r.networks.length} networks, ${r.volumes.length} volumes`);
      for (const e of report.errors) cli.err(kleur.red(`could not remove: ${e}`));
      if (report.revokedLeases) cli.err(`revoked ${report.revokedLeases} Vault lease${report.revokedLeases > 1 ? 's' : ''}`);
      if (report.leaseErrors.length) {
        cli.err(kleur.yellow(`could not revoke ${report.leaseErrors.length} Vault lease(s): ${report.leaseErrors[0]} (run waffle destroy again later)`));
      }
      if (report.errors.length) throw new Exit(1);
    });
}
