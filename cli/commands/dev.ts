/**
 * `waffle dev`: apply the repository, then watch the files it is made of and apply each change as it is
 * saved (plan shown first), until `q` or Ctrl-C. The services stay as they are when it ends, as after
 * `apply`. Ctrl-C while a change is being applied stops it as it stops `apply` (what was in flight rolls
 * back); while idle it just ends the session.
 */
import readline from 'node:readline';
import type { Command } from 'commander';
import kleur from 'kleur';
import { cliOf, Exit, type App } from '../context.ts';

export function register(program: Command, app: App): void {
  program
    .command('dev')
    .description('apply, then watch the configuration (and develop.watch paths) and apply every change as it is saved')
    .option('--debounce <ms>', 'quiet time after the last change before acting', '250')
    .option('--poll <ms>', 'poll files at this interval instead of file system events (network or container file systems)')
    .action(async (o: { debounce: string; poll?: string }, cmd: Command) => {
      const cli = cliOf(cmd, app);
      if (cli.mode === 'json') throw new Exit(1, 'waffle: dev has no --json output; use --plain for plain lines, or `waffle apply --json` for one run');
      const debounceMs = Number(o.debounce);
      if (!(debounceMs >= 0)) throw new Exit(1, `waffle: --debounce takes a number of milliseconds, not "${o.debounce}"`);
      const pollMs = o.poll === undefined ? undefined : Number(o.poll);
      if (pollMs !== undefined && !(pollMs > 0)) throw new Exit(1, `waffle: --poll takes a positive number of milliseconds, not "${o.poll}"`);
      const source = cli.source();
      if (!('dir' in source)) throw new Exit(1, 'waffle: dev needs a repository');
      const engine = await cli.engine();
      const { DevSession } = await import('../dev/session.ts');

      // While idle, Ctrl-C means "stop watching": apply's "rolling back" message would be wrong then, so
      // the interrupt is muted except while a change is being applied or a develop action runs.
      let busy = false;
      let busyAtPress = false;
      let unmute: (() => void) | undefined = cli.interrupt.mute();
      const onBusy = (b: boolean) => {
        busy = b;
        if (b) {
          unmute?.();
          unmute = undefined;
        } else unmute ??= cli.interrupt.mute();
      };
      const offPress = cli.interrupt.onPress((n) => {
        if (n === 1) busyAtPress = busy;
      });

      let ui: import('../ui/dev.tsx').DevUi | undefined;
      let view: import('../dev/session.ts').DevView;
      if (cli.mode === 'ink') {
        const { startDevUi } = await import('../ui/dev.tsx');
        ui = await startDevUi({ interrupt: cli.interrupt, stdin: cli.stdin, stderr: cli.stderr });
        view = ui.view;
      } else {
        const { createPlainDevView } = await import('../dev/plain-view.ts');
        view = createPlainDevView(cli.err, cli.columns());
      }
      const session = new DevSession({
        engine,
        source,
        view,
        signal: cli.interrupt.signal,
        debounceMs,
        ...(pollMs ? { pollMs } : {}),
        onBusy,
      });
      // `q` (a key in the UI; a line `q` on stdin otherwise) ends the session after the change in flight.
      let lines: readline.Interface | undefined;
      if (ui) void ui.quit.then(() => session.stop());
      else {
        lines = readline.createInterface({ input: cli.stdin });
        lines.on('line', (l) => {
          if (l.trim().toLowerCase() === 'q') void session.stop();
        });
        // stdin closed (a pipe that ended): keep watching, Ctrl-C still stops.
      }
      try {
        await session.run();
      } finally {
        lines?.close();
        offPress();
        unmute?.();
        await ui?.close();
      }
      const stopped = 'stopped watching; the services keep running (`waffle status`)';
      // Ctrl-C while idle is the normal way out; during an apply it interrupted something (exit 130, as apply).
      if (cli.interrupt.presses > 0 && busyAtPress) throw new Exit(130);
      throw new Exit(0, kleur.green(stopped), { interruptHandled: true });
    });
}
