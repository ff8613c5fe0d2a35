/**
 * `waffle rollback <service> [--to <generation>]`: switch a service back to a container kept by an
 * earlier replace (health-gated, no pull) and pin it there; on Swarm, Swarm's own rollback to the
 * service's previous spec (one step back), pinned the same way. `--list` shows the service's generations
 * (on Swarm: its current and previous spec), `--release` forgets the pin so the next apply deploys the
 * repository's version again.
 */
import type { Command } from 'commander';
import kleur from 'kleur';
import { cliOf, Exit, type App, type Cli } from '../context.ts';
import { confirm } from '../prompt.ts';
import { printable, truncate } from '../render/text.ts';
import type { RunEvent } from '../../runtime/model.ts';
import type { GenerationsReport } from '../../runtime/engine.ts';

interface Options {
  to?: string;
  list?: boolean;
  release?: boolean;
  yes?: boolean;
}

export function register(program: Command, app: App): void {
  program
    .command('rollback')
    .description('switch a service back to a kept earlier container (on Swarm: its previous spec) and pin it there')
    .argument('<service>', 'service name')
    .option('--to <generation>', 'the generation to switch to (default: the newest kept one older than the current one)')
    .option('--list', "show the service's current and kept generations (on Swarm: its current and previous spec), and its pin")
    .option('--release', 'forget the pin: the next apply deploys the repository\'s version again')
    .option('-y, --yes', 'roll back without asking')
    .action(async (service: string, o: Options, cmd: Command) => {
      const cli = cliOf(cmd, app);
      if ([o.list, o.release, o.to !== undefined].filter(Boolean).length > 1) {
        throw new Exit(1, 'waffle: use one of --to, --list and --release at a time');
      }
      let to: number | undefined;
      if (o.to !== undefined) {
        to = Number(o.to);
        if (!Number.isInteger(to) || to < 1) throw new Exit(1, `waffle: --to takes a generation number (see \`waffle rollback --list ${service}\`), not "${o.to}"`);
      }
      if (o.list) return list(cli, service);
      if (o.release) return release(cli, service);
      return rollback(cli, service, to, !!o.yes);
    });
}

/** Plain lines on stderr in a terminal too (a rollback is one operation: no live UI). */
async function listener(cli: Cli): Promise<(e: RunEvent) => void> {
  if (cli.mode === 'json') {
    const { createJsonRenderer } = await import('../render/json.ts');
    return createJsonRenderer(cli.out);
  }
  const { createPlainRenderer } = await import('../render/plain.ts');
  return createPlainRenderer({ write: cli.err });
}

async function rollback(cli: Cli, service: string, to: number | undefined, yes: boolean): Promise<void> {
  const engine = await cli.engine();
  const { planText } = await import('../render/plan.ts');
  const result = await engine.rollback(cli.source(), service, {
    ...(to !== undefined ? { to } : {}),
    onEvent: await listener(cli),
    signal: cli.interrupt.signal,
    confirm: async (planned) => {
      if (cli.mode !== 'json') cli.err(planText(planned.plan, { full: true, columns: cli.columns() }).trimEnd());
      return yes || confirm(cli, `Roll back ${service}`, '--yes');
    },
  });
  const swarm = result.planned.graph.target === 'swarm';
  if (!result.ok) {
    throw new Exit(
      1,
      cli.mode === 'json' ? undefined : kleur.red(swarm ? `rollback of ${service} failed: see Swarm's message above; \`waffle rollback --list ${service}\` shows which spec it runs` : `rollback of ${service} failed: the current container keeps serving`),
    );
  }
}

async function list(cli: Cli, service: string): Promise<void> {
  const engine = await cli.engine();
  const report = await engine.generations(cli.source(), service);
  if (report.swarm) return listSwarm(cli, service, report.swarm, report.pin);
  const rows = [...(report.current ? [report.current] : []), ...report.kept];
  const now = Date.now();
  if (cli.mode === 'json') {
    cli.out(
      JSON.stringify({
        service,
        keep: report.keep,
        pin: report.pin ?? null,
        generations: rows.map((c) => ({
          generation: c.generation,
          role: c === report.current ? 'current' : 'kept',
          container: c.name,
          state: c.state,
          image: c.image,
          commit: c.commit || null,
          created: new Date(c.createdAt).toISOString(),
        })),
      }) + '\n',
    );
    return;
  }
  const table = [
    ['GEN', 'ROLE', 'STATE', 'IMAGE', 'COMMIT', 'CREATED', 'CONTAINER'],
    ...rows.map((c) => [
      String(c.generation),
      c === report.current ? (report.pin?.generation === c.generation ? 'current (pinned)' : 'current') : 'kept',
      c.state,
      printable(c.image),
      (c.commit || '-').slice(0, 12),
      `${ago(now - c.createdAt)} ago`,
      c.name,
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  const columns = cli.columns();
  for (const r of table) {
    const line = r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd();
    cli.out((columns ? truncate(line, columns) : line) + '\n');
  }
  if (rows.length === 0) cli.out(`(${service} has no container)\n`);
  if (report.pin) {
    cli.err(`${service} is pinned to generation ${report.pin.generation} (rolled back ${report.pin.at}); \`waffle rollback --release ${service}\` lets applies deploy the repository's version again`);
  }
  cli.err(`a replace keeps ${report.keep} earlier container${report.keep === 1 ? '' : 's'} of each service (rollback.keep)`);
}

/** `--list` on Swarm: the service's current and previous spec (Swarm keeps one), and its pin. */
function listSwarm(cli: Cli, service: string, specs: NonNullable<GenerationsReport['swarm']>, pin: GenerationsReport['pin']): void {
  const updated = specs.updatedAt ? Date.parse(specs.updatedAt) : undefined;
  if (cli.mode === 'json') {
    cli.out(
      JSON.stringify({
        service,
        target: 'swarm',
        pin: pin ?? null,
        name: specs.name,
        version: specs.version,
        updateState: specs.updateState ?? null,
        current: { image: specs.current.image, commit: specs.current.commit || null, updated: updated !== undefined ? new Date(updated).toISOString() : null },
        previous: specs.previous ? { image: specs.previous.image, commit: specs.previous.commit || null } : null,
      }) + '\n',
    );
    return;
  }
  const now = Date.now();
  const pinned = pin?.swarm && pin.swarm.configHash === specs.current.configHash;
  const when = updated !== undefined ? `${ago(now - updated)} ago` : '-';
  const table = [
    ['ROLE', 'IMAGE', 'COMMIT', 'UPDATED'],
    [pinned ? 'current (pinned)' : 'current', printable(specs.current.image), (specs.current.commit || '-').slice(0, 12), when],
    ...(specs.previous ? [['previous', printable(specs.previous.image), (specs.previous.commit || '-').slice(0, 12), `until ${when}`]] : []),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  const columns = cli.columns();
  for (const r of table) {
    const line = r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd();
    cli.out((columns ? truncate(line, columns) : line) + '\n');
  }
  if (!specs.previous) cli.out(`(${service} has no previous spec: Swarm keeps one once the service is updated)\n`);
  if (pin) {
    cli.err(
      `${service} is pinned${pin.swarm ? ` to ${pin.swarm.image} (left ${pin.swarm.fromImage})` : ''} (rolled back ${pin.at}); \`waffle rollback --release ${service}\` lets applies deploy the repository's version again`,
    );
  }
  cli.err(`${specs.name} runs on Swarm, which keeps one previous spec of a service: \`waffle rollback ${service}\` goes one step back (server-side)`);
}

async function release(cli: Cli, service: string): Promise<void> {
  const engine = await cli.engine();
  const { released } = await engine.releasePin(cli.source(), service);
  if (cli.mode === 'json') {
    cli.out(JSON.stringify({ service, released: released ?? null }) + '\n');
    return;
  }
  cli.err(
    released
      ? `${kleur.green('released')} ${service} from ${released.swarm ? `its previous spec (${released.swarm.image})` : `generation ${released.generation}`}: the next apply deploys the repository's version`
      : `${service} is not pinned: nothing to release`,
  );
}

/** `3m`, `2h`, `5d`: how long ago, coarse. */
function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return `${s}s`;
  if (s < 90 * 60) return `${Math.round(s / 60)}m`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}
