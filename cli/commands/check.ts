/**
 * `waffle check`: load, type-check and validate the configuration, and look at the secret values the
 * services use where they can be read (names only); touches nothing.
 */
import type { Command } from 'commander';
import kleur from 'kleur';
import { cliOf, type App } from '../context.ts';
import { listenerFor } from '../render/listen.ts';

export function register(program: Command, app: App): void {
  program
    .command('check')
    .description('load, type-check and validate the configuration without touching Docker (--json: the graph on stdout)')
    .option('--no-types', 'skip the TypeScript type-check')
    .option('--no-secrets', 'skip checking that the secret values services use are set')
    .action(async (o: { types: boolean; secrets: boolean }, cmd: Command) => {
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
      // Secret values: names of secrets and keys only, never a value; a missing one fails like plan.
      const values = o.secrets
        ? await engine.checkSecretValues(graph, listen ? { onEvent: (e) => e.type === 'run-failed' && listen(e) } : {})
        : undefined;
      if (cli.mode === 'json') cli.out(JSON.stringify(graph, null, 2) + '\n');
      const n = Object.keys(graph.services).length;
      cli.err(`${kleur.green('ok')}: project ${graph.project}, ${n} service${n === 1 ? '' : 's'}`);
      if (values) for (const line of secretValueLines(values)) cli.err(line);
    });
}

/** What the look at secret values found, one line each (names only). */
export function secretValueLines(r: import('../../runtime/secrets/values-check.ts').SecretValuesReport): string[] {
  const lines: string[] = [];
  if (r.set.length) lines.push(`secret values set: ${r.set.join(', ')}`);
  if (r.generated.length) lines.push(`generated at the next apply: ${r.generated.map((g) => `${g.secret}.${g.key}`).join(', ')}`);
  for (const x of r.notChecked) lines.push(kleur.yellow(`secret values not checked (${x.provider}: ${x.secrets.join(', ')}): ${x.reason}`));
  if (r.issuedAtApply.length) lines.push(`dynamic credentials issued at apply: ${r.issuedAtApply.join(', ')}`);
  return lines;
}
