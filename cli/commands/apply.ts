/** `waffle apply`: make Docker match the repository (plan, show, confirm, apply), one run from plan to summary. */
import type { Command } from 'commander';
import kleur from 'kleur';
import { cliOf, Exit, type App } from '../context.ts';
import { confirm, canPrompt } from '../prompt.ts';
import { listenerFor } from '../render/listen.ts';

export function register(program: Command, app: App): void {
  program
    .command('apply')
    .description('make Docker match the repository')
    .option('-y, --yes', 'apply without asking')
    .option('--pull <policy>', 'override every service\'s pull policy: always (ask the registry for newer images) or missing')
    .action(async (o: { yes?: boolean; pull?: string }, cmd: Command) => {
      const cli = cliOf(cmd, app);
      if (o.pull !== undefined && o.pull !== 'always' && o.pull !== 'missing') throw new Exit(1, `waffle: --pull takes always or missing, not "${o.pull}"`);
      const engine = await cli.engine();
      const signal = cli.interrupt.signal;
      const planned = await engine.plan(cli.source(), {
        purpose: 'apply',
        onEvent: await listenerFor(cli),
        signal,
        ...(o.pull ? { pull: o.pull as 'always' | 'missing' } : {}),
      });
      const { planText } = await import('../render/plan.ts');
      if (planned.plan.operations.length === 0) {
        // The stream still closes with apply-start and apply-done.
        await engine.apply(planned, { signal });
        if (cli.mode !== 'json') {
          app.stderr.write(planText(planned.plan, { columns: cli.columns() }));
          cli.err(kleur.green('nothing to do'));
        }
        return;
      }
      // Only a stale-plan check when a person looked at the plan (time passed between plan and apply).
      const checkStale = !o.yes;
      if (cli.mode === 'ink') {
        if (!o.yes && !canPrompt(cli)) await confirm(cli, 'Apply these changes', '--yes'); // fails, naming --yes
        // Ink and React load only here (see cli/ui/deps.ts).
        const { runApplyUi } = await import('../ui/apply.tsx');
        const code = await runApplyUi(planned, {
          yes: !!o.yes,
          interrupt: cli.interrupt,
          stdin: cli.stdin,
          stderr: cli.stderr,
          apply: (p, emit) => engine.apply(p, { onEvent: emit, signal, checkStale }),
        });
        if (code !== 0) throw new Exit(code);
        return;
      }
      if (cli.mode === 'plain') app.stderr.write(planText(planned.plan, { columns: cli.columns() }));
      // Asked through the engine, so a no (or no terminal to ask in) is a run-cancelled event in the stream too.
      const result = await engine.apply(planned, {
        signal,
        checkStale,
        ...(o.yes ? {} : { confirm: () => confirm(cli, 'Apply these changes', '--yes') }),
      });
      if (!result.ok) throw new Exit(1);
    });
}
