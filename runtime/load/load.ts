/**
 * load: the source-of-truth repository → LoadedRepo (plain data).
 *
 * Like Vite's config loader: esbuild bundles `waffle.config.ts` and the service files (node_modules
 * external, inline source maps) into a unique temp file under `<root>/.waffle/tmp/`, which a child
 * process evaluates (so an endless loop or `process.exit()` in user code cannot hurt waffle). The
 * child sends back plain data; every failure becomes a Problem naming the user's file and line.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import * as esbuild from 'esbuild';
import { glob } from 'tinyglobby';
import type { LoadedRepo, LoadedService, Problem } from '../model.ts';
import { ProblemsError } from '../problems.ts';
import type { FromChild, ThrownInfo, ToChild } from './protocol.ts';
import { serviceNameFromFile } from './serialize.ts';

export interface LoadOptions {
  /** Time limit for evaluating user code, per phase (config, services). Default: env WAFFLE_LOAD_TIMEOUT_MS or 10000. */
  timeoutMs?: number;
  /** Config file relative to the root. Default `waffle.config.ts`. */
  configFile?: string;
}

const DEFAULT_SERVICE_GLOBS = ['services/*.ts'];
const STALE_MS = 60 * 60 * 1000;
const here = path.dirname(fileURLToPath(import.meta.url));

// ───────────────────────────── locating our own files ─────────────────────────────

function firstExisting(candidates: string[]): string | undefined {
  return candidates.find((c) => existsSync(c));
}

let definePathCache: string | undefined;
/** Our `define/index` (source or built), which the `wafflemaker` import resolves to. */
export function definePath(): string {
  if (process.env.WAFFLE_DEFINE_PATH) return path.resolve(process.env.WAFFLE_DEFINE_PATH);
  const built = [
    path.resolve(here, '../define/index.js'), // dist/cli/*.js → dist/define/index.js
    path.resolve(here, 'define/index.js'), // a single bundle in dist/
  ];
  const source = [path.resolve(here, '../../define/index.ts'), path.resolve(here, '../../define/index.js')];
  // Running built code: use the built API (what a published package has); from source: the source.
  definePathCache ??= firstExisting(fileURLToPath(import.meta.url).endsWith('.ts') ? [...source, ...built] : [...built, ...source]);
  if (!definePathCache) throw new Error(`wafflemaker: cannot find define/index.(ts|js) near ${here}; set WAFFLE_DEFINE_PATH`);
  return definePathCache;
}

function childPath(): string {
  if (process.env.WAFFLE_LOAD_CHILD) return path.resolve(process.env.WAFFLE_LOAD_CHILD);
  const self = fileURLToPath(import.meta.url);
  const candidates = self.endsWith('.ts')
    ? [path.join(here, 'child.ts'), path.join(here, 'child.js')]
    : [path.join(here, 'child.js'), path.resolve(here, '../runtime/load/child.js'), path.resolve(here, 'runtime/load/child.js'), path.join(here, 'child.ts')];
  const found = firstExisting(candidates);
  if (!found) throw new Error(`wafflemaker: cannot find the loader's child script near ${here}; set WAFFLE_LOAD_CHILD`);
  return found;
}

// ───────────────────────────── temp files and exit cleanup ─────────────────────────────

const liveFiles = new Set<string>();
const liveChildren = new Set<ChildProcess>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let active = 0;

function cleanupNow(): void {
  for (const f of liveFiles) {
    try {
      unlinkSync(f);
    } catch {
      /* gone already */
    }
  }
  liveFiles.clear();
  for (const c of liveChildren) c.kill('SIGKILL');
  liveChildren.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  cleanupNow();
  // When nobody else handles the signal, keep its default meaning: end the process.
  if (process.listenerCount(signal) === 1) {
    detachSignals();
    process.kill(process.pid, signal);
  }
}

function attachSignals(): void {
  if (active++ > 0) return;
  process.on('exit', cleanupNow);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function detachSignals(): void {
  active = 0;
  process.off('exit', cleanupNow);
  for (const s of SIGNALS) process.off(s, onSignal);
}

function release(): void {
  if (--active <= 0) detachSignals();
}

class TempDir {
  readonly dir: string;
  private readonly createdWaffleDir: boolean;
  private readonly files: string[] = [];
  private readonly id = `${Date.now().toString(36)}-${process.pid}-${randomBytes(4).toString('hex')}`;

  constructor(root: string) {
    const waffleDir = path.join(root, '.waffle');
    this.createdWaffleDir = !existsSync(waffleDir);
    this.dir = path.join(waffleDir, 'tmp');
    mkdirSync(this.dir, { recursive: true });
    // Remove what a killed run may have left behind.
    try {
      const now = Date.now();
      for (const name of readdirSync(this.dir)) {
        const f = path.join(this.dir, name);
        try {
          if (now - statSync(f).mtimeMs > STALE_MS) unlinkSync(f);
        } catch {
          /* raced with another run */
        }
      }
    } catch {
      /* unreadable: ignore */
    }
  }

  file(tag: string): string {
    const f = path.join(this.dir, `${this.id}-${tag}.mjs`);
    this.files.push(f);
    liveFiles.add(f);
    return f;
  }

  remove(): void {
    for (const f of this.files) {
      liveFiles.delete(f);
      try {
        unlinkSync(f);
      } catch {
        /* never written */
      }
    }
    try {
      rmdirSync(this.dir); // only when empty
      if (this.createdWaffleDir) rmdirSync(path.dirname(this.dir));
    } catch {
      /* not empty: other runs or other state */
    }
  }
}

// ───────────────────────────── bundling ─────────────────────────────

/** Bare specifiers (packages), except those starting with `wafflemaker` (Go regexp: no lookahead). */
const BARE_NOT_WAFFLE = new RegExp(
  '^(?:[^./w]|' +
    [...'wafflemake'].map((_, i) => `${'wafflemaker'.slice(0, i + 1)}(?:[^${'wafflemaker'[i + 1]}]|$)`).join('|') +
    '|wafflemaker[^/])',
);

/**
 * `wafflemaker` resolves to our define module (exactly: through `alias`, which is cheaper than a plugin
 * callback per service file; `wafflemaker/...` through the plugin). Packages stay external, as in
 * Vite, but only when they resolve: a missing package fails here, at the importing file and line.
 */
function wafflePlugin(definePathAbs: string): esbuild.Plugin {
  return {
    name: 'wafflemaker',
    setup(build) {
      build.onResolve({ filter: /^wafflemaker\// }, () => ({ path: definePathAbs }));
      build.onResolve({ filter: BARE_NOT_WAFFLE }, async (args) => {
        if (args.pluginData === 'waffle-resolving') return undefined;
        if (isBuiltin(args.path)) return { path: args.path, external: true };
        const r = await build.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          pluginData: 'waffle-resolving',
        });
        if (r.errors.length > 0) return undefined; // let esbuild report "Could not resolve" at the import
        return { path: args.path, external: true };
      });
    },
  };
}

interface BundleResult {
  inputs: string[];
  /** Import edges between the repository's own files (relative, forward slashes). */
  imports: Map<string, string[]>;
}

async function bundle(
  root: string,
  outfile: string,
  entry: { file: string } | { contents: string },
  serviceFiles: Set<string>,
): Promise<BundleResult> {
  const defineAbs = definePath();
  let result: esbuild.BuildResult<{ metafile: true }>;
  try {
    result = await esbuild.build({
      absWorkingDir: root,
      ...('file' in entry
        ? { entryPoints: [entry.file] }
        : { stdin: { contents: entry.contents, resolveDir: root, sourcefile: '<waffle-services>', loader: 'js' as const } }),
      outfile,
      write: true,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: 'inline',
      sourcesContent: false,
      metafile: true,
      logLevel: 'silent',
      alias: { wafflemaker: defineAbs },
      plugins: [wafflePlugin(defineAbs)],
    });
  } catch (err) {
    const errors = (err as esbuild.BuildFailure).errors;
    if (!Array.isArray(errors)) throw err;
    throw new ProblemsError(errors.map((e) => esbuildProblem(e, serviceFiles)));
  }
  const defineDir = path.dirname(defineAbs);
  const inputs = Object.keys(result.metafile.inputs)
    .filter((f) => !f.startsWith('<'))
    .filter((f) => {
      const abs = path.resolve(root, f);
      return abs !== defineAbs && !abs.startsWith(defineDir + path.sep);
    })
    .map((f) => f.split(path.sep).join('/'));
  const imports = new Map<string, string[]>();
  for (const [f, info] of Object.entries(result.metafile.inputs)) {
    if (f.startsWith('<')) continue;
    imports.set(
      f.split(path.sep).join('/'),
      info.imports.filter((i) => !i.external && !i.path.startsWith('<')).map((i) => i.path.split(path.sep).join('/')),
    );
  }
  return { inputs, imports };
}

/**
 * Service files that import each other form a reference cycle: in JavaScript one side would see
 * `undefined`, and as dependencies they could never start. Returns the first cycle, e.g.
 * `['services/api.ts', 'services/db.ts', 'services/api.ts']`.
 */
export function findImportCycle(imports: Map<string, string[]>, serviceFiles: Set<string>): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): string[] | undefined => {
    state.set(f, 'open');
    stack.push(f);
    for (const next of (imports.get(f) ?? []).filter((n) => serviceFiles.has(n)).sort()) {
      if (state.get(next) === 'open') return [...stack.slice(stack.indexOf(next)), next];
      if (!state.has(next)) {
        const found = visit(next);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(f, 'done');
    return undefined;
  };
  for (const f of [...serviceFiles].sort()) {
    if (!state.has(f)) {
      const found = visit(f);
      if (found) return found;
    }
  }
  return undefined;
}

function esbuildProblem(e: esbuild.Message, serviceFiles: Set<string>): Problem {
  const file = e.location?.file ? e.location.file.split(path.sep).join('/') : '(unknown file)';
  const resolve = /^Could not resolve/.test(e.text);
  const p: Problem = {
    file,
    message: e.text,
    fix: resolve
      ? 'check the import path (relative imports need the file extension-less path or `.ts`), or install the package with `npm install`'
      : 'fix the code at this position (your editor or `npx tsc --noEmit` shows the details)',
  };
  if (serviceFiles.has(file)) p.service = serviceNameFromFile(file);
  if (e.location) p.where = `${e.location.line}:${e.location.column + 1}`;
  return p;
}

// ───────────────────────────── the evaluation child ─────────────────────────────

type Failure =
  | { kind: 'timeout'; ms: number }
  | { kind: 'died'; code: number | null; signal: NodeJS.Signals | null };

class ChildSession {
  readonly proc: ChildProcess;
  lastMark: string | undefined;
  private stderr = '';
  private waiter: { resolve: (m: FromChild) => void; reject: (f: Failure) => void; types: string[] } | undefined;
  private queue: FromChild[] = [];
  private exited: Failure | undefined;

  constructor(root: string) {
    const script = childPath();
    const execArgv = ['--enable-source-maps'];
    if (/\.[mc]?ts$/.test(script)) {
      const tsx = createRequire(import.meta.url).resolve('tsx');
      execArgv.push('--import', pathToFileURL(tsx).href);
    }
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    this.proc = fork(script, [], { cwd: root, execArgv, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    liveChildren.add(this.proc);
    this.proc.stdout?.resume(); // user console output is not ours to show
    this.proc.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    this.proc.on('message', (m: FromChild) => {
      if (m.type === 'mark') {
        this.lastMark = m.file;
        return;
      }
      if (this.waiter && this.waiter.types.includes(m.type)) {
        const w = this.waiter;
        this.waiter = undefined;
        w.resolve(m);
      } else this.queue.push(m);
    });
    this.proc.on('exit', (code, signal) => {
      liveChildren.delete(this.proc);
      this.exited = { kind: 'died', code, signal };
      const w = this.waiter;
      this.waiter = undefined;
      w?.reject(this.exited);
    });
    this.proc.on('error', () => {
      /* reported through 'exit' */
    });
  }

  get stderrTail(): string {
    return this.stderr.trim();
  }

  /** Sends `msg` (if any) and waits for a reply of one of `types`, for at most `ms`. */
  request(msg: ToChild | undefined, types: string[], ms: number): Promise<FromChild> {
    return new Promise((resolve, reject) => {
      const queued = this.queue.findIndex((m) => types.includes(m.type));
      if (queued >= 0) return resolve(this.queue.splice(queued, 1)[0]!);
      if (this.exited) return reject(this.exited);
      const timer = setTimeout(() => {
        this.waiter = undefined;
        this.kill();
        reject({ kind: 'timeout', ms } satisfies Failure);
      }, ms);
      this.waiter = {
        types,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (f) => {
          clearTimeout(timer);
          reject(f);
        },
      };
      if (msg) this.proc.send(msg);
    });
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    liveChildren.delete(this.proc);
  }
}

// ───────────────────────────── errors from user code ─────────────────────────────

/** The first stack frame in the user's own files: `{ file: 'services/a.ts', where: '3:7' }`. */
export function userFrame(stack: string | undefined, root: string, exclude: string[]): { file: string; where: string } | undefined {
  if (!stack) return undefined;
  for (const line of stack.split('\n')) {
    if (!/^\s+at /.test(line)) continue;
    const m = /\(?((?:file:\/\/)?\/[^()]*?):(\d+):(\d+)\)?\s*$/.exec(line);
    if (!m) continue;
    let file = m[1]!;
    if (file.startsWith('file://')) {
      try {
        file = fileURLToPath(file);
      } catch {
        continue;
      }
    }
    if (!file.startsWith(root + path.sep)) continue;
    if (exclude.some((d) => file === d || file.startsWith(d + path.sep))) continue;
    if (file.includes(`${path.sep}node_modules${path.sep}`)) continue;
    return { file: path.relative(root, file).split(path.sep).join('/'), where: `${m[2]}:${m[3]}` };
  }
  return undefined;
}

function thrownProblem(t: ThrownInfo, root: string, serviceFiles: Set<string>, configFile: string): Problem {
  const exclude = [path.dirname(definePath()), here, path.dirname(childPath()), path.join(root, '.waffle')];
  const frame = userFrame(t.stack, root, exclude);
  const file = frame?.file ?? t.file;
  const p: Problem = {
    file,
    message: t.exitCall
      ? t.message
      : `${frame && frame.file !== t.file && t.file ? `while loading ${t.file}: ` : ''}threw at the top level: ${t.message}`,
    fix: t.exitCall
      ? 'do not end the process while the configuration loads: remove the process.exit/abort/kill call from the top level of the file'
      : file === configFile
        ? 'fix the code that throws; the config file is evaluated on every plan and apply'
        : 'fix the code that throws; service files are evaluated on every plan and apply, so keep their top level free of side effects',
  };
  if (frame) p.where = frame.where;
  if (serviceFiles.has(file)) p.service = serviceNameFromFile(file);
  return p;
}

function failureProblem(f: Failure, session: ChildSession, root: string, configFile: string, serviceFiles: Set<string>): Problem {
  const file = session.lastMark ?? configFile;
  const p: Problem =
    f.kind === 'timeout'
      ? {
          file,
          message: `loading did not finish within ${f.ms} ms; stopped while evaluating ${file} (an endless loop or blocking code at the top level?)`,
          fix: 'remove the loop or blocking code from the top level of the file (only describe the service there); if loading is just slow, raise WAFFLE_LOAD_TIMEOUT_MS',
        }
      : {
          file,
          message:
            `the evaluation process ended (${f.signal ? `signal ${f.signal}` : `exit code ${f.code}`}) while evaluating ${file}` +
            (session.stderrTail ? `; its last output: ${session.stderrTail.split('\n').slice(-5).join(' | ')}` : ''),
          fix: 'remove code that ends or crashes the process (process.exit, native crashes) from the top level of the file',
        };
  if (serviceFiles.has(file)) p.service = serviceNameFromFile(file);
  void root;
  return p;
}

// ───────────────────────────── loadRepo ─────────────────────────────

/** Loads and evaluates the repository at `root`. Throws ProblemsError on any problem; writes only under `<root>/.waffle/`. */
export async function loadRepo(root: string, opts: LoadOptions = {}): Promise<LoadedRepo> {
  root = path.resolve(root);
  const configFile = path.relative(root, path.resolve(root, opts.configFile ?? 'waffle.config.ts')).split(path.sep).join('/');
  const configAbs = path.join(root, configFile);
  if (!existsSync(configAbs)) {
    throw new ProblemsError([
      {
        file: configFile,
        message: `not found in ${root}; this is not a Wafflemaker repository (yet)`,
        fix: 'run `waffle init` to create it, or run waffle from (or point it at) the repository root',
      },
    ]);
  }
  const envTimeout = Number(process.env.WAFFLE_LOAD_TIMEOUT_MS);
  const timeoutMs = opts.timeoutMs ?? (Number.isFinite(envTimeout) && envTimeout > 0 ? envTimeout : 10000);

  attachSignals();
  const tmp = new TempDir(root);
  let session: ChildSession | undefined;
  let serviceFiles = new Set<string>();
  try {
    session = new ChildSession(root);
    const s = session;
    const fail = (e: unknown): never => {
      if (e && typeof e === 'object' && 'kind' in e) throw new ProblemsError([failureProblem(e as Failure, s, root, configFile, serviceFiles)]);
      throw e;
    };
    const evaluate = async (msg: ToChild | undefined, types: string[]): Promise<FromChild> => {
      const reply = await s.request(msg, [...types, 'thrown'], timeoutMs).catch(fail);
      if (reply.type === 'thrown') throw new ProblemsError([thrownProblem(reply.error, root, serviceFiles, configFile)]);
      return reply;
    };

    // 1. the config: bundle while the child starts
    const configOut = tmp.file('config');
    const [configBundle] = await Promise.all([
      bundle(root, configOut, { file: configAbs }, serviceFiles),
      evaluate(undefined, ['ready']),
    ]);
    const cfgReply = await evaluate({ type: 'config', root, bundle: configOut, configFile }, ['config-result']);
    if (cfgReply.type !== 'config-result') throw new Error(`unexpected reply ${cfgReply.type}`);
    if (cfgReply.problems.length > 0 || !cfgReply.config) throw new ProblemsError(cfgReply.problems);
    const config = cfgReply.config;

    // 2. the service files
    const globs = config.services ?? DEFAULT_SERVICE_GLOBS;
    if (!Array.isArray(globs) || globs.some((g) => typeof g !== 'string' || g === '')) {
      throw new ProblemsError([
        {
          file: configFile,
          where: 'services',
          message: 'must be a list of glob patterns (strings), relative to the repository root',
          fix: "write `services: ['services/*.ts']`, or leave it out for that default",
        },
      ]);
    }
    const found = await glob(globs as string[], {
      cwd: root,
      onlyFiles: true,
      expandDirectories: false,
      ignore: ['**/*.d.ts', '**/*.test.ts', '**/node_modules/**', '.waffle/**'],
    });
    const files = [...new Set(found.map((f) => f.split(path.sep).join('/')))]
      .filter((f) => f !== configFile)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    serviceFiles = new Set(files);

    let services: LoadedService[] = [];
    let inputs = configBundle.inputs;
    if (files.length > 0) {
      const entry =
        'export const loaders = [\n' +
        files.map((f) => `  () => import(${JSON.stringify(path.join(root, f))}),`).join('\n') +
        '\n];\n';
      const servicesOut = tmp.file('services');
      const svcBundle = await bundle(root, servicesOut, { contents: entry }, serviceFiles);
      inputs = [...new Set([...inputs, ...svcBundle.inputs])];
      const cycle = findImportCycle(svcBundle.imports, serviceFiles);
      if (cycle) {
        const names = cycle.map((f) => path.basename(f).replace(/\.[cm]?tsx?$/, ''));
        throw new ProblemsError([
          {
            file: cycle[0],
            service: names[0],
            message: `dependency cycle: ${names.join(' → ')} (${cycle.slice(0, -1).join(' imports ')} imports ${cycle[0]})`,
            fix: 'keep the reference on one side only: a link works in both directions, and a dependency cycle can never start',
          },
        ]);
      }
      const reply = await evaluate({ type: 'services', bundle: servicesOut, files }, ['services-result']);
      if (reply.type !== 'services-result') throw new Error(`unexpected reply ${reply.type}`);
      if (reply.problems.length > 0) throw new ProblemsError(reply.problems);
      services = reply.services;
    }
    return { root, configFile, config, services, inputs: inputs.sort() };
  } finally {
    session?.kill();
    tmp.remove();
    release();
  }
}
