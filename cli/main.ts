/**
 * `waffle` command line. Commands load the engine lazily so `waffle --version` stays fast.
 * Data (`--json`) goes to stdout; progress and messages go to stderr.
 * Exit codes: 0 ok, 1 error, 2 changes pending (`plan --detailed-exitcode`).
 */
import { Command } from 'commander';
import kleur from 'kleur';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const VERSION = readVersion();

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

// Colour follows the stream the UI writes to (stderr), honouring NO_COLOR and FORCE_COLOR.
kleur.enabled =
  process.env.NO_COLOR === undefined &&
  process.env.NODE_DISABLE_COLORS === undefined &&
  process.env.TERM !== 'dumb' &&
  (process.env.FORCE_COLOR !== undefined ? process.env.FORCE_COLOR !== '0' : !!process.stderr.isTTY);

/**
 * How a command shows itself: `json` (data on stdout), `ink` (live UI on stderr: stderr is a terminal,
 * CI unset, no --plain) or `plain` lines (pipes, CI, --plain; no escape sequences without a TTY).
 */
function uiMode(o: { json?: boolean; plain?: boolean }): 'json' | 'ink' | 'plain' {
  if (o.json) return 'json';
  if (o.plain || !process.stderr.isTTY || process.env.CI || process.env.TERM === 'dumb') return 'plain';
  return 'ink';
}

/** Terminal width for plain text on stderr; undefined (no truncation) when it is not a terminal. */
const stderrColumns = () => (process.stderr.isTTY ? process.stderr.columns || 80 : undefined);

/** Raised to end a command with a given exit code after a message was printed. */
class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

interface GlobalOpts {
  dir: string;
  loadTimeout?: string;
  dockerHost?: string;
}

function projectOptions(cmd: Command) {
  const g = cmd.optsWithGlobals() as GlobalOpts;
  return {
    root: path.resolve(g.dir ?? process.cwd()),
    loadTimeoutMs: g.loadTimeout ? Number(g.loadTimeout) : undefined,
    dockerHost: g.dockerHost,
  };
}

const err = (line: string) => process.stderr.write(line + '\n');

async function confirm(question: string, flag: string): Promise<boolean> {
  if (!process.stdin.isTTY || process.env.CI) {
    err(kleur.red(`waffle: refusing to ${question.toLowerCase()} without confirmation: no terminal to ask in. Pass ${flag}.`));
    throw new Exit(1);
  }
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  // Ctrl-C at the prompt closes readline, which rejects the question: that is a "no", said clearly.
  const interrupted = new Promise<never>((_, reject) => rl.once('SIGINT', () => reject(new Exit(130))));
  try {
    const answer = (await Promise.race([rl.question(`${question}? (y/N) `), interrupted])).trim().toLowerCase();
    return answer === 'y' || answer === 'yes';
  } catch (e) {
    if (e instanceof Exit || (e as { code?: string }).code === 'ABORT_ERR') {
      err('\ncancelled: nothing was changed');
      throw new Exit(130);
    }
    throw e;
  } finally {
    rl.close();
  }
}

async function planText(plan: import('../runtime/model.ts').Plan, full = false): Promise<string> {
  const { planText: text } = await import('./render/plan.ts');
  return text(plan, { full, columns: stderrColumns() });
}

const program = new Command();
program
  .name('waffle')
  .description('Declarative, TypeScript-as-config GitOps deployer for one Docker host')
  .version(VERSION, '-v, --version')
  .option('-C, --dir <path>', 'repository root holding waffle.config.ts', process.cwd())
  .option('--load-timeout <ms>', 'time limit for evaluating the configuration')
  .option('--docker-host <url>', 'Docker engine (overrides DOCKER_HOST and docker.host)')
  .showHelpAfterError();

program
  .command('init')
  .description('write waffle.config.ts, services/web.ts, tsconfig.json and package.json into a repository')
  .argument('[dir]', 'target directory', '.')
  .option('--project <name>', 'project name (default: the directory name)')
  .action(async (dir: string, o: { project?: string }) => {
    const { initRepo } = await import('./init.ts');
    const written = initRepo(path.resolve(dir), { project: o.project });
    for (const f of written) err(`${kleur.green('+')} ${f}`);
    err(`next: edit services/*.ts, then run \`waffle plan\``);
  });

program
  .command('check')
  .description('load, type-check and validate the configuration without touching Docker')
  .option('--no-types', 'skip the TypeScript type-check')
  .option('--json', 'print the desired-state graph as JSON on stdout')
  .action(async (o: { types: boolean; json?: boolean }, cmd: Command) => {
    const opts = projectOptions(cmd);
    const { loadGraph } = await import('../runtime/pipeline.ts');
    if (o.types) {
      const { typecheck } = await import('../runtime/check/typecheck.ts');
      const problems = await typecheck(opts.root);
      if (problems.length) {
        const { formatProblems } = await import('../runtime/problems.ts');
        err(formatProblems(problems));
        throw new Exit(1);
      }
    }
    const graph = await loadGraph(opts);
    if (o.json) process.stdout.write(JSON.stringify(graph, null, 2) + '\n');
    const n = Object.keys(graph.services).length;
    err(`${kleur.green('ok')}: project ${graph.project}, ${n} service${n === 1 ? '' : 's'}`);
  });

program
  .command('plan')
  .description('show what apply would change')
  .option('--json', 'print the plan as JSON on stdout')
  .option('--full', 'show every field and every network, volume and image operation')
  .option('--detailed-exitcode', 'exit 2 when there are changes, 0 when none')
  .action(async (o: { json?: boolean; full?: boolean; detailedExitcode?: boolean }, cmd: Command) => {
    const { prepare } = await import('../runtime/pipeline.ts');
    const prepared = await prepare(projectOptions(cmd));
    if (o.json) process.stdout.write(JSON.stringify(prepared.plan) + '\n');
    else process.stderr.write(await planText(prepared.plan, o.full));
    if (o.detailedExitcode && prepared.plan.operations.length > 0) throw new Exit(2);
  });

program
  .command('apply')
  .description('make Docker match the repository')
  .option('-y, --yes', 'apply without asking')
  .option('--json', 'stream events as NDJSON on stdout')
  .option('--plain', 'plain lines even in a terminal')
  .action(async (o: { yes?: boolean; json?: boolean; plain?: boolean }, cmd: Command) => {
    const { prepare, applyPrepared } = await import('../runtime/pipeline.ts');
    const prepared = await prepare(projectOptions(cmd));
    const { plan } = prepared;
    const mode = uiMode(o);
    if (plan.operations.length === 0) {
      if (mode === 'json') {
        const { noopApplyDone } = await import('./render/json.ts');
        process.stdout.write(JSON.stringify(noopApplyDone()) + '\n');
      } else {
        process.stderr.write(await planText(plan));
        err(kleur.green('nothing to do'));
      }
      return;
    }
    if (mode === 'ink' && !o.yes && !process.stdin.isTTY) await confirm('Apply these changes', '--yes'); // fails: no keyboard
    if (mode === 'ink') {
      // Ink and React load only here (see cli/ui/deps.ts).
      const { runApplyUi } = await import('./ui/apply.tsx');
      const code = await runApplyUi(prepared, { yes: !!o.yes, checkStale: !o.yes, apply: applyPrepared });
      if (code !== 0) throw new Exit(code);
      return;
    }
    if (mode === 'plain') process.stderr.write(await planText(plan));
    if (!o.yes && !(await confirm('Apply these changes', '--yes'))) {
      err('cancelled: nothing was changed');
      return;
    }
    const controller = new AbortController();
    let presses = 0;
    const onSigint = () => {
      presses++;
      if (presses === 1) {
        err(kleur.yellow('stopping: no new operations will start; running ones finish (press Ctrl-C again to abort now)'));
        controller.abort();
      } else {
        err(kleur.red('aborted: operations in flight were interrupted; run `waffle status`, then `waffle apply` again'));
        process.exit(130);
      }
    };
    process.on('SIGINT', onSigint);
    let emit: (e: import('../runtime/model.ts').ApplyEvent) => void;
    if (mode === 'json') {
      const { createJsonRenderer } = await import('./render/json.ts');
      emit = createJsonRenderer((chunk) => process.stdout.write(chunk));
    } else {
      const { createPlainRenderer } = await import('./render/plain.ts');
      emit = createPlainRenderer({ write: (l) => err(l) });
    }
    try {
      const result = await applyPrepared(prepared, emit, { signal: controller.signal, checkStale: !o.yes });
      if (!result.ok) throw new Exit(1);
    } finally {
      process.off('SIGINT', onSigint);
    }
  });

program
  .command('status')
  .description('show each service: state, health, image, commit, uptime, ports')
  .option('--json', 'print as JSON on stdout')
  .option('-w, --watch', 'keep the table live (refreshed every 2 s)')
  .option('--plain', 'plain text even in a terminal')
  .action(async (o: { json?: boolean; watch?: boolean; plain?: boolean }, cmd: Command) => {
    const opts = projectOptions(cmd);
    const { loadGraph, openDocker } = await import('../runtime/pipeline.ts');
    const { observe } = await import('../runtime/docker/observe.ts');
    const { statusRows, formatStatus } = await import('./status.ts');
    const graph = await loadGraph(opts);
    const docker = await openDocker(graph, opts);
    const read = async () => statusRows(graph, await observe(docker, graph.project), Date.now());
    const mode = uiMode(o);
    if (o.watch && mode === 'ink') {
      const { runStatusWatch } = await import('./ui/status.tsx');
      await runStatusWatch({ project: graph.project, read, intervalMs: 2000 });
      return;
    }
    if (o.watch && mode === 'json') {
      // One JSON document per refresh (NDJSON), until interrupted.
      for (;;) {
        process.stdout.write(JSON.stringify({ project: graph.project, at: Date.now(), services: await read() }) + '\n');
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
    // The table is the command's data: stdout, coloured only when stdout is a terminal.
    const { useColorFor } = await import('./render/color.ts');
    useColorFor(process.stdout);
    const columns = process.stdout.isTTY ? process.stdout.columns || 80 : 120;
    const print = async () => process.stdout.write(formatStatus(await read(), columns));
    if (mode === 'json') {
      process.stdout.write(JSON.stringify({ project: graph.project, services: await read() }, null, 2) + '\n');
      return;
    }
    if (!o.watch) return void (await print());
    // Plain watch: re-print the table every 2 s with a time stamp (no cursor movement).
    for (;;) {
      process.stdout.write(`--- ${graph.project} ${new Date().toISOString()}\n`);
      await print();
      await new Promise((r) => setTimeout(r, 2000));
    }
  });

program
  .command('destroy')
  .description("remove every container and network of the project (and nothing else)")
  .option('-y, --yes', 'destroy without asking')
  .option('--volumes', "also remove the project's named volumes (their data is lost)")
  .action(async (o: { yes?: boolean; volumes?: boolean }, cmd: Command) => {
    const opts = projectOptions(cmd);
    const { loadGraph, openDocker, destroy } = await import('../runtime/pipeline.ts');
    const graph = await loadGraph(opts);
    if (!o.yes && !(await confirm(`Destroy project ${graph.project}`, '--yes'))) {
      err('cancelled: nothing was changed');
      return;
    }
    const docker = await openDocker(graph, opts);
    const report = await destroy(graph, docker, { volumes: !!o.volumes });
    err(`${kleur.green('destroyed')} project ${graph.project}: ${describeRemoved(report.removed)}`);
    if (report.revokedLeases) err(`revoked ${report.revokedLeases} Vault lease${report.revokedLeases > 1 ? 's' : ''}`);
    if (report.leaseErrors.length) {
      err(kleur.yellow(`could not revoke ${report.leaseErrors.length} Vault lease(s): ${report.leaseErrors[0]} (run waffle destroy again later)`));
    }
  });

function describeRemoved(r: unknown): string {
  if (r && typeof r === 'object') {
    return Object.entries(r as Record<string, unknown>)
      .map(([k, v]) => `${Array.isArray(v) ? v.length : v} ${k}`)
      .join(', ');
  }
  return '';
}

// secrets commands (issue 4) register here
(await import('./secrets.ts')).registerSecrets(program);

program
  .command('logs')
  .description("print a service's output")
  .argument('<service>', 'service name')
  .option('-f, --follow', 'keep following')
  .option('-n, --tail <lines>', 'lines from the end', '100')
  .action(async (service: string, o: { follow?: boolean; tail: string }, cmd: Command) => {
    const opts = projectOptions(cmd);
    const { loadGraph, openDocker } = await import('../runtime/pipeline.ts');
    const graph = await loadGraph(opts);
    if (!graph.services[service]) {
      err(kleur.red(`waffle: no service "${service}" in project ${graph.project}; services: ${Object.keys(graph.services).join(', ') || '(none)'}`));
      throw new Exit(1);
    }
    const docker = await openDocker(graph, opts);
    const { streamLogs } = await import('../runtime/docker/logs.ts');
    await streamLogs(docker, graph.project, service, { follow: !!o.follow, tail: Number(o.tail) }, process.stdout);
  });

export async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof Exit) return e.code;
    const error = e as Error;
    if (error?.name === 'ProblemsError' || error?.name === 'StalePlanError' || error?.name === 'ProjectLockedError') {
      err(kleur.red(error.message));
      return 1;
    }
    if (error && (error as { code?: string }).code?.startsWith?.('commander.')) return 1;
    err(kleur.red(`waffle: ${error?.message ?? String(e)}`));
    if (process.env.WAFFLE_DEBUG) err(String(error?.stack));
    return 1;
  }
}

program.exitOverride((e) => {
  if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') {
    process.exit(0);
  }
  throw e;
});

const code = await main(process.argv);
process.exitCode = code;
