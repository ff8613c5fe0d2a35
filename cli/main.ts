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

if (process.env.NO_COLOR !== undefined || process.env.FORCE_COLOR === '0') kleur.enabled = false;

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
  try {
    const answer = (await rl.question(`${question}? (y/N) `)).trim().toLowerCase();
    return answer === 'y' || answer === 'yes';
  } finally {
    rl.close();
  }
}

async function planText(plan: import('../runtime/model.ts').Plan): Promise<string> {
  const { formatPlan } = await import('../runtime/plan/format.ts');
  return formatPlan(plan);
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
  .option('--detailed-exitcode', 'exit 2 when there are changes, 0 when none')
  .action(async (o: { json?: boolean; detailedExitcode?: boolean }, cmd: Command) => {
    const { prepare } = await import('../runtime/pipeline.ts');
    const prepared = await prepare(projectOptions(cmd));
    if (o.json) process.stdout.write(JSON.stringify(prepared.plan) + '\n');
    else process.stderr.write(await planText(prepared.plan));
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
    if (!o.json) process.stderr.write(await planText(plan));
    if (plan.operations.length === 0) {
      if (o.json) {
        const at = Date.now();
        process.stdout.write(JSON.stringify({ type: 'apply-done', ok: true, summary: { created: 0, replaced: 0, updated: 0, removed: 0, failed: 0, skipped: 0 }, ms: 0, at }) + '\n');
      } else err(kleur.green('nothing to do'));
      return;
    }
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
        err(kleur.red('aborted: operations in flight were interrupted; run `waffle status` and `waffle apply` again'));
        process.exit(130);
      }
    };
    process.on('SIGINT', onSigint);
    let emit: (e: import('../runtime/model.ts').ApplyEvent) => void;
    if (o.json) {
      emit = (e) => process.stdout.write(JSON.stringify(e) + '\n');
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
  .description('show each service: container, state, health, image, commit')
  .option('--json', 'print as JSON on stdout')
  .action(async (o: { json?: boolean }, cmd: Command) => {
    const opts = projectOptions(cmd);
    const { loadGraph, openDocker } = await import('../runtime/pipeline.ts');
    const { observe } = await import('../runtime/docker/observe.ts');
    const { statusRows, formatStatus } = await import('./status.ts');
    const graph = await loadGraph(opts);
    const docker = await openDocker(graph, opts);
    const rows = statusRows(graph, await observe(docker, graph.project), Date.now());
    if (o.json) process.stdout.write(JSON.stringify({ project: graph.project, services: rows }, null, 2) + '\n');
    else process.stdout.write(formatStatus(rows, process.stdout.columns ?? 100));
  });

program
  .command('destroy')
  .description("remove every container and network of the project (and nothing else)")
  .option('-y, --yes', 'destroy without asking')
  .option('--volumes', "also remove the project's named volumes (their data is lost)")
  .action(async (o: { yes?: boolean; volumes?: boolean }, cmd: Command) => {
    const opts = projectOptions(cmd);
    const { loadGraph, openDocker } = await import('../runtime/pipeline.ts');
    const graph = await loadGraph(opts);
    if (!o.yes && !(await confirm(`Destroy project ${graph.project}`, '--yes'))) {
      err('cancelled: nothing was changed');
      return;
    }
    const docker = await openDocker(graph, opts);
    const { destroyProject } = await import('../runtime/docker/destroy.ts');
    const removed = await destroyProject(docker, graph.project, { volumes: !!o.volumes });
    err(`${kleur.green('destroyed')} project ${graph.project}${removed ? `: ${describeRemoved(removed)}` : ''}`);
  });

function describeRemoved(r: unknown): string {
  if (r && typeof r === 'object') {
    return Object.entries(r as Record<string, unknown>)
      .map(([k, v]) => `${Array.isArray(v) ? v.length : v} ${k}`)
      .join(', ');
  }
  return '';
}

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
    if (error?.name === 'ProblemsError' || error?.name === 'StalePlanError') {
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
