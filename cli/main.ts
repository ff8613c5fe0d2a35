/**
 * `waffle` command line: the process owner. It parses the command line (global options are accepted
 * before or after any command), sets the colour rule, installs the one Ctrl-C rule (signal handlers live
 * here, never in the engine), runs one command from cli/commands/ and maps the outcome to an exit code.
 * Commands load the engine lazily so `waffle --version` stays fast.
 * Exit codes: 0 ok, 1 error, 2 changes pending (`plan --detailed-exitcode`), 130 interrupted.
 */
import { Command, Option } from 'commander';
import kleur from 'kleur';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Exit, type App } from './context.ts';
import { createInterrupt } from './interrupt.ts';
import { colorEnabledFor } from './render/color.ts';
import { register as registerAgent } from './commands/agent.ts';
import { register as registerApply } from './commands/apply.ts';
import { register as registerCheck } from './commands/check.ts';
import { register as registerDestroy } from './commands/destroy.ts';
import { register as registerDev } from './commands/dev.ts';
import { register as registerImport } from './commands/import.ts';
import { register as registerHistory } from './commands/history.ts';
import { register as registerInit } from './commands/init.ts';
import { register as registerLogs } from './commands/logs.ts';
import { register as registerMaintenance } from './commands/maintenance.ts';
import { register as registerPlan } from './commands/plan.ts';
import { register as registerRollback } from './commands/rollback.ts';
import { register as registerSecrets } from './commands/secrets.ts';
import { register as registerStatus } from './commands/status.ts';

function readVersion(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(here, rel), 'utf8'));
      if (pkg.name === 'wafflemaker') return pkg.version;
    } catch {
      /* try the next */
    }
  }
  return '0.0.0';
}

/** The program with every command; global options on the root, so every command accepts them. */
export function buildProgram(app: App): Command {
  const program = new Command();
  program
    .name('waffle')
    .description('Declarative, TypeScript-as-config GitOps deployer for one Docker host')
    .version(readVersion(), '-v, --version')
    .option('-C, --dir <path>', 'repository root holding waffle.config.ts (default: the current directory)')
    .option('-c, --config <file>', 'configuration file, relative to the repository root (default: waffle.config.ts), e.g. waffle.prod.ts')
    .option('--json', 'machine output on stdout: NDJSON events (plan, apply, destroy) or a JSON document')
    .option('--plain', 'plain lines on stderr even in a terminal (no live UI)')
    .option('--docker-host <url>', 'Docker engine (overrides DOCKER_HOST and docker.host)')
    .option('--load-timeout <ms>', 'time limit for evaluating the configuration')
    .option('--allow-env <names>', "let the configuration's evaluation.env list these credential-like variables (comma-separated): the operator's decision, never the repository's")
    .addOption(new Option('--state-dir <path>', "the deployer's state directory (overrides WAFFLE_STATE_DIR)").hideHelp())
    .showHelpAfterError()
    .exitOverride((e) => {
      throw e;
    })
    .configureOutput({ writeOut: (s) => void app.stdout.write(s), writeErr: (s) => void app.stderr.write(s) });
  registerInit(program, app);
  registerImport(program, app);
  registerCheck(program, app);
  registerPlan(program, app);
  registerApply(program, app);
  registerDev(program, app);
  registerStatus(program, app);
  registerRollback(program, app);
  registerDestroy(program, app);
  registerSecrets(program, app);
  registerLogs(program, app);
  registerMaintenance(program, app);
  registerAgent(program, app);
  registerHistory(program, app);
  program.hook('preAction', (_root, action) => {
    const g = action.optsWithGlobals() as { loadTimeout?: string };
    if (g.loadTimeout !== undefined && !(Number(g.loadTimeout) > 0)) {
      throw new Exit(1, `waffle: --load-timeout takes a positive number of milliseconds, not "${g.loadTimeout}"`);
    }
  });
  return program;
}

/** Runs the command line in `app`; resolves with the exit code. */
export async function main(argv: string[], app: App): Promise<number> {
  const program = buildProgram(app);
  const say = (line: string) => void app.stderr.write(line + '\n');
  try {
    await program.parseAsync(argv);
    if (app.interrupt.presses > 0) {
      say(kleur.yellow(app.interrupt.outcome()));
      return 130;
    }
    return 0;
  } catch (e) {
    const error = e as Error & { code?: string; exitCode?: number };
    if (e instanceof Exit) {
      if (e.text) say(e.text);
      if (app.interrupt.presses > 0 && !e.opts.interruptHandled) {
        say(kleur.yellow(app.interrupt.outcome()));
        return 130;
      }
      return e.code;
    }
    if (typeof error?.code === 'string' && error.code.startsWith('commander.')) {
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help' ? 0 : (error.exitCode ?? 1);
    }
    if (app.interrupt.presses > 0) {
      // Whatever the interrupted run threw on its way out (an aborted Docker call), the outcome is the same.
      say(kleur.yellow(app.interrupt.outcome()));
      return 130;
    }
    if (error?.name === 'CancelledError') {
      // The answer was no: nothing was changed, and that is not an error.
      say(error.message);
      return 0;
    }
    const known = ['ProblemsError', 'StalePlanError', 'ProjectLockedError', 'InterruptedError', 'RollbackError'];
    say(kleur.red(known.includes(error?.name) ? error.message : `waffle: ${error?.message ?? String(e)}`));
    if (app.env.WAFFLE_DEBUG) say(String(error?.stack));
    return 1;
  }
}

// The process: colour for the UI's stream, the Ctrl-C rule, and clean-up on the way out.
kleur.enabled = colorEnabledFor(process.stderr, process.env);
const interrupt = createInterrupt({
  say: (line) => void process.stderr.write(kleur.yellow(line) + '\n'),
  exit: (code) => process.exit(code),
  process,
});
const atExit: Array<() => unknown> = [];
const app: App = { env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, cwd: process.cwd(), interrupt, atExit };
const code = await main(process.argv, app);
interrupt.dispose();
for (const fn of atExit) await Promise.resolve(fn()).catch(() => undefined);
process.exitCode = code;
