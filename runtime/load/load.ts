/**
 * load: the source-of-truth repository → LoadedRepo (plain data).
 *
 * Like Vite's config loader, esbuild bundles `waffle.config.ts` and the service files (packages
 * external, source maps); unlike it, the bundles are never written to disk: they go as text to a
 * child process that evaluates them inside a sandbox (see sandbox.ts: minimal environment, node's
 * permission model, nobody without a network when root, memory and time limits, its own process
 * group). The child sends back plain data; every failure becomes a Problem naming the user's file.
 *
 * Environment: the loader never reads `process.env`; the caller passes `env`. The config file is
 * evaluated first with an empty environment, which yields its `evaluation.env` allow-list. When an
 * allow-listed variable is set, a fresh process with exactly those variables evaluates the config again
 * (so it sees the same environment as the service files; its allow-list must come out the same) and
 * then the service files. Names that look like credentials are refused unless the caller forces them
 * (`allowEnv`), so a repository cannot grant itself the deployer's tokens.
 *
 * The runtime installs no signal handlers and keeps no state between loads: the evaluation process
 * dies with waffle (parent-death signal), `signal` stops a load, and `.waffle/tmp` files left by
 * earlier versions of the loader are removed at the next load (`removeStaleTempFiles`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as esbuild from 'esbuild';
import type { LoadedRepo, LoadedService, Problem } from '../model.ts';
import { importersOf, missingModuleFix, thrownFix } from '../fixes.ts';
import { LINE_COL, locateProblems, type Locator } from '../locate.ts';
import { ProblemsError } from '../problems.ts';
import type { BundleText, FromChild, SourceMapPayload, ThrownInfo, ToChild } from './protocol.ts';
import { defaultServiceName } from '../naming.ts';
import {
  childEnv,
  confinement,
  DEFAULT_MEMORY_MB,
  evaluationSettings,
  killGroup,
  leafProcess,
  memoryPrefix,
  NOBODY,
  nodeFlags,
  residentMb,
  RSS_HEADROOM_MB,
  type Confinement,
  type Env,
  type EvaluationSettings,
} from './sandbox.ts';

export interface LoadOptions {
  /** Places problems that name a field at its line (default `locateProblems`, in this process). */
  locate?: Locator;
  /** Time limit for evaluating user code, per phase (config, services). Default: `env.WAFFLE_LOAD_TIMEOUT_MS`, else 10000. */
  timeoutMs?: number;
  /** Config file relative to the root. Default `waffle.config.ts`. */
  configFile?: string;
  /**
   * The caller's environment. The evaluation gets only the variables the config allow-lists in
   * `evaluation.env`, taken from here. Default: empty (nothing reaches the configuration).
   */
  env?: Env;
  /**
   * Names the operator allows in `evaluation.env` although they look like credentials (`*_TOKEN`,
   * `VAULT_*`…). Comes from whoever runs waffle, never from the repository.
   */
  allowEnv?: string[];
  /** Aborting stops the load: the evaluation process group is killed and the reason is thrown. */
  signal?: AbortSignal;
  /** Told what part of the sandbox is unavailable on this machine (e.g. not root: no switch to nobody). */
  onWarning?: (message: string) => void;
  /**
   * How the evaluation process is confined on this machine, when the caller already knows (a
   * long-lived caller asks `confinement()` once); otherwise it is worked out for this load.
   */
  confinement?: Promise<Confinement>;
}

const DEFAULT_SERVICE_GLOBS = ['services/*.ts'];
const DEFAULT_TIMEOUT_MS = 10000;
/** How often the parent samples the evaluation process's resident memory. */
const MEMORY_POLL_MS = 25;
/** A leftover of another run whose owner cannot be told from its name is removed after this long. */
const STALE_MS = 60 * 60 * 1000;
const here = path.dirname(fileURLToPath(import.meta.url));
/**
 * esbuild and tinyglobby are imported when a load starts, not with this module: the engine that imports
 * the loader is ready sooner, and they load while the sandbox is probed and the evaluation process starts.
 */
const esbuildApi = () => import('esbuild');
const globApi = () => import('tinyglobby');

// ───────────────────────────── locating our own files ─────────────────────────────

function firstExisting(candidates: string[]): string | undefined {
  return candidates.find((c) => existsSync(c));
}

const runningFromSource = fileURLToPath(import.meta.url).endsWith('.ts');

/** Our `define/index` (source or built), which the `wafflemaker` import resolves to. */
export function definePath(): string {
  const built = [
    path.resolve(here, '../define/index.js'), // dist/cli/*.js → dist/define/index.js
    path.resolve(here, 'define/index.js'), // a single bundle in dist/
  ];
  const source = [path.resolve(here, '../../define/index.ts'), path.resolve(here, '../../define/index.js')];
  // Running built code: use the built API (what a published package has); from source: the source.
  const found = firstExisting(runningFromSource ? [...source, ...built] : [...built, ...source]);
  if (!found) throw new Error(`wafflemaker: cannot find define/index.(ts|js) near ${here}; reinstall wafflemaker`);
  return found;
}

/**
 * The child's code as one ES module text (it runs as `node -e`, reading no file). Built: dist's
 * child.js, already bundled. From source: child.ts bundled now (a few ms; no tsx in the child, whose
 * permissions would not let tsx start esbuild).
 */
async function childSource(): Promise<string> {
  if (!runningFromSource) {
    const built = firstExisting([path.join(here, 'child.js'), path.resolve(here, '../runtime/load/child.js'), path.resolve(here, 'runtime/load/child.js')]);
    if (built) return readFileSync(built, 'utf8').replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n');
  }
  const entry = firstExisting([path.join(here, 'child.ts'), path.resolve(here, '../../runtime/load/child.ts')]);
  if (!entry) throw new Error(`wafflemaker: cannot find the loader's child script near ${here}; reinstall wafflemaker`);
  const r = await (await esbuildApi()).build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'silent',
  });
  return r.outputFiles[0]!.text;
}

/** `node_modules` directories Node looks in when resolving from `root` (the packages the bundles may import). */
function packageDirs(root: string): string[] {
  const dirs: string[] = [];
  for (let d = root; ; d = path.dirname(d)) {
    const nm = path.join(d, 'node_modules');
    if (existsSync(nm)) dirs.push(nm);
    if (path.dirname(d) === d) return dirs;
  }
}

// ───────────────────────────── leftovers of earlier loaders ─────────────────────────────

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes what loaders that were killed left in `<root>/.waffle/tmp` (earlier versions wrote their
 * bundles there as `<time>-<pid>-<hex>-<tag>.mjs`): files of processes that are gone, and files
 * older than an hour whose owner cannot be told. Then the directory itself when empty. The loader
 * calls this at every start; a process owner may call it too (e.g. at start-up). Never throws.
 */
export function removeStaleTempFiles(root: string): void {
  const dir = path.join(path.resolve(root), '.waffle', 'tmp');
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  const now = Date.now();
  for (const name of names) {
    const f = path.join(dir, name);
    try {
      const owner = /^[0-9a-z]+-(\d+)-[0-9a-f]+-/.exec(name);
      const stale = owner ? Number(owner[1]) === process.pid || !pidAlive(Number(owner[1])) : now - statSync(f).mtimeMs > STALE_MS;
      if (stale) unlinkSync(f);
    } catch {
      /* raced with another run, or not ours to remove */
    }
  }
  try {
    rmdirSync(dir); // only when empty
  } catch {
    /* other runs' files */
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
 * Vite, but only when they resolve: a missing package fails here, at the importing file and line. An
 * external package is imported by its absolute `file://` URL, since the bundle is a `data:` module,
 * from which node resolves no bare name but a builtin.
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
        return { path: pathToFileURL(r.path).href, external: true };
      });
    },
  };
}

interface BundleResult {
  /** The bundle as the child receives it. */
  text: BundleText;
  inputs: string[];
  /** Import edges between the repository's own files (relative, forward slashes). */
  imports: Map<string, string[]>;
}

/**
 * Bundles `entry` in memory. `tag` names it: its frames read `file://<root>/.waffle/eval/<tag>.mjs`
 * (no such file is written), and its source map's sources become absolute `file://` URLs.
 */
async function bundle(
  root: string,
  tag: string,
  entry: { file: string } | { contents: string },
  serviceFiles: ReadonlyMap<string, string>,
): Promise<BundleResult> {
  const defineAbs = definePath();
  const { build } = await esbuildApi();
  let result: esbuild.BuildResult<{ metafile: true; write: false }>;
  try {
    result = await build({
      absWorkingDir: root,
      ...('file' in entry
        ? { entryPoints: [entry.file] }
        : { stdin: { contents: entry.contents, resolveDir: root, sourcefile: '<waffle-services>', loader: 'js' as const } }),
      outfile: path.join(root, '.waffle', 'eval', `${tag}.mjs`),
      write: false,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: 'external',
      sourcesContent: false,
      metafile: true,
      logLevel: 'silent',
      alias: { wafflemaker: defineAbs },
      plugins: [wafflePlugin(defineAbs)],
    });
  } catch (err) {
    const errors = (err as esbuild.BuildFailure).errors;
    if (!Array.isArray(errors)) throw err;
    throw new ProblemsError(errors.map((e) => esbuildProblem(e, serviceFiles, root, errors)));
  }
  const outDir = path.join(root, '.waffle', 'eval');
  const js = result.outputFiles.find((f) => f.path.endsWith('.mjs'));
  const mapFile = result.outputFiles.find((f) => f.path.endsWith('.map'));
  if (!js || !mapFile) throw new Error('esbuild produced no bundle');
  const map = JSON.parse(mapFile.text) as SourceMapPayload;
  map.sources = map.sources.map((s) => (/^[a-z]+:/.test(s) ? s : pathToFileURL(path.resolve(outDir, map.sourceRoot ?? '', s)).href));
  delete map.sourceRoot;
  const text: BundleText = { url: pathToFileURL(path.join(outDir, `${tag}.mjs`)).href, code: js.text, map };
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
  return { text, inputs, imports };
}

/** The service files `globs` select: relative to the root with forward slashes, without the config file, sorted. */
async function findServiceFiles(root: string, globs: string[], configFile: string): Promise<string[]> {
  const { glob } = await globApi();
  const found = await glob(globs, {
    cwd: root,
    onlyFiles: true,
    expandDirectories: false,
    ignore: ['**/*.d.ts', '**/*.test.ts', '**/node_modules/**', '.waffle/**'],
  });
  return [...new Set(found.map((f) => f.split(path.sep).join('/')))]
    .filter((f) => f !== configFile)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The services bundle's entry: one loader per file, so the child evaluates them one at a time, in order. */
function servicesEntry(root: string, files: string[]): string {
  return 'export const loaders = [\n' + files.map((f) => `  () => import(${JSON.stringify(path.join(root, f))}),`).join('\n') + '\n];\n';
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

/** The module an esbuild "Could not resolve" error is about, and the file that imports it. */
function unresolved(e: esbuild.Message): { specifier: string; file: string } | undefined {
  const specifier = /^Could not resolve "(.*)"$/.exec(e.text)?.[1];
  return specifier !== undefined && e.location?.file ? { specifier, file: e.location.file.split(path.sep).join('/') } : undefined;
}

function esbuildProblem(e: esbuild.Message, serviceFiles: ReadonlyMap<string, string>, root: string, all: esbuild.Message[]): Problem {
  const file = e.location?.file ? e.location.file.split(path.sep).join('/') : '(unknown file)';
  const missing = unresolved(e);
  const resolve = /^Could not resolve/.test(e.text);
  const p: Problem = {
    file,
    message: e.text,
    fix: missing
      ? missingModuleFix(missing.specifier, importersOf(missing, all.map(unresolved).filter((s) => s !== undefined), root), root)
      : resolve
        ? 'check the import path (relative imports need the file extension-less path or `.ts`), or install the package with `npm install`'
        : 'fix the code at this position (your editor or `npx tsc --noEmit` shows the details)',
  };
  if (serviceFiles.has(file)) p.service = serviceFiles.get(file);
  if (e.location) p.where = `${e.location.line}:${e.location.column + 1}`;
  return p;
}

// ───────────────────────────── the evaluation child ─────────────────────────────

type Failure =
  | { kind: 'timeout'; ms: number }
  | { kind: 'memory'; mb: number; ms: number }
  | { kind: 'aborted'; reason: unknown }
  | { kind: 'died'; code: number | null; signal: NodeJS.Signals | null };

interface SessionOptions {
  root: string;
  code: string;
  env: Record<string, string>;
  memoryMb: number;
  confinement: Confinement;
  signal?: AbortSignal;
}

/** One sandboxed evaluation process (see sandbox.ts), led by its own process group. */
class ChildSession {
  readonly proc: ChildProcess;
  readonly memoryMb: number;
  lastMark: string | undefined;
  private stderr = '';
  private waiter: { resolve: (m: FromChild) => void; reject: (f: Failure) => void; types: string[] } | undefined;
  private queue: FromChild[] = [];
  private exited: Failure | undefined;
  /** Set when the parent stopped the process (memory, abort): reported instead of its death. */
  private stopped: Failure | undefined;
  private readonly started = Date.now();
  private memoryTimer: NodeJS.Timeout | undefined;
  private readonly onAbort: () => void;
  private readonly signal: AbortSignal | undefined;

  constructor(o: SessionOptions) {
    this.memoryMb = o.memoryMb;
    this.signal = o.signal;
    const argv = [...memoryPrefix(o.memoryMb), ...o.confinement.prefix, process.execPath, ...nodeFlags(o.memoryMb, packageDirs(o.root)), '--input-type=module', '-e', o.code];
    // detached: a process group (and session) of its own, so a kill at a limit reaches everything in it.
    this.proc = spawn(argv[0]!, argv.slice(1), { cwd: o.root, env: o.env, detached: true, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    this.proc.stdout?.resume(); // user console output is not ours to show
    this.proc.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    this.proc.on('message', (m: FromChild) => {
      if (m.type === 'mark') {
        this.lastMark = m.file;
        return;
      }
      if (m.type === 'ready') this.watchMemory();
      if (this.waiter && this.waiter.types.includes(m.type)) {
        const w = this.waiter;
        this.waiter = undefined;
        w.resolve(m);
      } else this.queue.push(m);
    });
    this.proc.on('exit', (code, signal) => {
      this.stopWatching();
      // Anything left in its group goes too (the group outlives its leader while a member lives, so
      // its id cannot have been reused).
      killGroup(this.proc.pid);
      this.exited = this.stopped ?? (/JavaScript heap out of memory|Allocation failed/.test(this.stderr) ? { kind: 'memory', mb: this.memoryMb, ms: Date.now() - this.started } : { kind: 'died', code, signal });
      const w = this.waiter;
      this.waiter = undefined;
      w?.reject(this.exited);
    });
    // A wrapper that cannot be started (spawn's own failure) emits 'error' and no 'exit'.
    this.proc.on('error', (err) => {
      if (this.exited) return;
      this.stderr += `\n${err.message}`;
      this.stopWatching();
      this.exited = this.stopped ?? { kind: 'died', code: null, signal: null };
      const w = this.waiter;
      this.waiter = undefined;
      w?.reject(this.exited);
    });
    this.onAbort = () => this.stop({ kind: 'aborted', reason: o.signal?.reason });
    o.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /**
   * Samples the resident memory of the node process (below the wrappers) and stops it above the cap
   * plus node's own headroom: V8 alone would spend seconds collecting garbage near its heap limit
   * before it gives up, and off-heap buffers are not in that limit at all.
   */
  private watchMemory(): void {
    if (this.proc.pid === undefined || !existsSync(`/proc/${this.proc.pid}`)) return;
    const node = leafProcess(this.proc.pid);
    const limit = this.memoryMb + RSS_HEADROOM_MB;
    this.memoryTimer = setInterval(() => {
      const mb = residentMb(node);
      if (mb !== undefined && mb > limit) this.stop({ kind: 'memory', mb: this.memoryMb, ms: Date.now() - this.started });
    }, MEMORY_POLL_MS);
    this.memoryTimer.unref();
  }

  private stopWatching(): void {
    if (this.memoryTimer) clearInterval(this.memoryTimer);
    this.memoryTimer = undefined;
    this.signal?.removeEventListener('abort', this.onAbort);
  }

  /** Kills the process group; a pending request fails with `why`. */
  stop(why: Failure): void {
    this.stopped ??= why;
    this.kill();
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
      if (this.signal?.aborted) {
        this.stop({ kind: 'aborted', reason: this.signal.reason });
        return reject(this.stopped);
      }
      const timer = setTimeout(() => {
        this.waiter = undefined;
        this.stop({ kind: 'timeout', ms });
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

  /** SIGKILL to the whole process group: the evaluation process and anything it may have started. */
  kill(): void {
    this.stopWatching();
    // Once it exited (and was reaped) its pid could be reused: the exit handler cleaned up already.
    if (this.proc.exitCode === null && this.proc.signalCode === null) killGroup(this.proc.pid);
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

/** What the sandbox refused, in words, for ERR_ACCESS_DENIED's `permission`. */
const REFUSED: Record<string, string> = {
  FileSystemWrite: 'write a file',
  FileSystemRead: 'read a file',
  ChildProcess: 'start a process',
  WorkerThreads: 'start a worker thread',
  Addons: 'load a native addon',
  WASI: 'use WASI',
  Inspector: 'open the inspector',
};
const NETWORK_CODES = new Set(['ENETUNREACH', 'ECONNREFUSED', 'EHOSTUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'EADDRNOTAVAIL']);
const FIX_SIDE_EFFECTS =
  'a definition only describes its service: compute values from constants, imports and the variables the config allow-lists ' +
  "(evaluation.env in waffle.config.ts); do file, process and network work in the service's image, not while the configuration is evaluated";

/** The sandbox's part in a thrown error: what it refused and why, or undefined when it was not involved. */
function sandboxHint(t: ThrownInfo, conf: Confinement): { message: string; fix: string } | undefined {
  const runsAs = conf.nobody ? 'nobody' : 'self';
  if (t.code === 'ERR_ACCESS_DENIED') {
    const what = REFUSED[t.permission ?? ''] ?? `use ${t.permission ?? 'a restricted API'}`;
    return { message: `tried to ${what}${t.resource ? ` (${t.resource})` : ''}, which evaluation does not allow`, fix: FIX_SIDE_EFFECTS };
  }
  const missing = t.code === 'ERR_MODULE_NOT_FOUND' ? /Cannot find (?:module|package) '([^']+)'/.exec(t.message)?.[1] : undefined;
  if (missing && runsAs === 'nobody' && path.isAbsolute(missing) && existsSync(missing)) {
    return {
      message: `cannot read a package it imports: evaluation runs as nobody (uid ${NOBODY}), who cannot read ${missing}`,
      fix: 'make the packages the configuration imports readable by others: chmod -R o+rX node_modules, and o+x on the directories above it',
    };
  }
  if ((t.code === 'EACCES' || t.code === 'EPERM') && runsAs === 'nobody') {
    const pkg = /node_modules/.test(t.message);
    return {
      message: `was refused access (${t.code}): evaluation runs as nobody (uid ${NOBODY})${conf.noNetwork ? ' without a network' : ''}`,
      fix: pkg
        ? 'the packages the configuration imports must be readable by others: chmod -R o+rX node_modules (and o+x on the directories above the repository)'
        : FIX_SIDE_EFFECTS,
    };
  }
  if (t.code && NETWORK_CODES.has(t.code)) {
    return { message: `tried to use the network (${t.code}), which evaluation does not have`, fix: FIX_SIDE_EFFECTS };
  }
  return undefined;
}

function thrownProblem(t: ThrownInfo, root: string, serviceFiles: ReadonlyMap<string, string>, configFile: string, conf: Confinement): Problem {
  const exclude = [path.dirname(definePath()), here, path.join(root, '.waffle'), path.join(root, '[eval1]')];
  const frame = userFrame(t.stack, root, exclude);
  const file = frame?.file ?? t.file;
  const hint = t.exitCall ? undefined : sandboxHint(t, conf);
  const p: Problem = {
    file,
    message: t.exitCall
      ? t.message
      : `${frame && frame.file !== t.file && t.file ? `while loading ${t.file}: ` : ''}${hint ? `${hint.message}: ${t.message}` : `threw at the top level: ${t.message}`}`,
    fix: t.exitCall
      ? 'do not end the process while the configuration loads: remove the process.exit/abort/kill call from the top level of the file'
      : hint
        ? hint.fix
        : thrownFix({ root, file: t.file || file, ...(frame ? { frame } : {}), message: t.message, configFile }),
  };
  if (frame) p.where = frame.where;
  if (serviceFiles.has(file)) p.service = serviceFiles.get(file);
  return p;
}

function failureProblem(f: Failure, session: ChildSession, configFile: string, serviceFiles: ReadonlyMap<string, string>): Problem {
  const file = session.lastMark ?? configFile;
  let p: Problem;
  if (f.kind === 'timeout') {
    p = {
      file,
      message: `loading did not finish within ${f.ms} ms; stopped while evaluating ${file} (an endless loop or blocking code at the top level?)`,
      fix: 'remove the loop or blocking code from the top level of the file (only describe the service there); if loading is just slow, raise WAFFLE_LOAD_TIMEOUT_MS',
    };
  } else if (f.kind === 'memory') {
    p = {
      file,
      message: `used more memory than evaluation allows (${f.mb} MiB heap); stopped after ${f.ms} ms while evaluating ${file}`,
      fix: `do not build large data at the top level of the file; if the configuration really needs more, raise evaluation.memoryMb in ${configFile}`,
    };
  } else if (f.kind === 'died') {
    // stderr holds what node printed; the process had only the allow-listed environment to print from.
    p = {
      file,
      message:
        `the evaluation process ended (${f.signal ? `signal ${f.signal}` : `exit code ${f.code}`}) while evaluating ${file}` +
        (session.stderrTail ? `; its last output: ${session.stderrTail.split('\n').slice(-5).join(' | ')}` : ''),
      fix: 'remove code that ends or crashes the process (process.exit, native crashes) from the top level of the file',
    };
  } else {
    throw f.reason ?? new Error('load aborted');
  }
  if (serviceFiles.has(file)) p.service = serviceFiles.get(file);
  return p;
}

// ───────────────────────────── loadRepo ─────────────────────────────

function settingsProblems(config: Record<string, unknown>, configFile: string, allowEnv: readonly string[]): EvaluationSettings {
  const { settings, problems } = evaluationSettings(config, allowEnv);
  if (problems.length > 0) throw new ProblemsError(problems.map((p) => ({ file: configFile, where: p.where, message: p.message, fix: p.fix })));
  return settings;
}

/**
 * Loads and evaluates the repository at `root` in a sandboxed child process. Throws ProblemsError on
 * any problem (or `signal`'s reason when aborted). Writes nothing; removes stale `.waffle/tmp` files.
 */
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
  opts.signal?.throwIfAborted();
  const env = opts.env ?? {};
  const allowEnv = opts.allowEnv ?? [];
  const envTimeout = Number(env.WAFFLE_LOAD_TIMEOUT_MS);
  const timeoutMs = opts.timeoutMs ?? (Number.isFinite(envTimeout) && envTimeout > 0 ? envTimeout : DEFAULT_TIMEOUT_MS);
  removeStaleTempFiles(root);

  const prepared = Promise.all([childSource(), opts.confinement ?? confinement(process.getuid?.())]);
  void esbuildApi().catch(() => undefined); // loads while the sandbox is probed (a failure shows at the first build)
  const [code, conf] = await prepared;
  for (const w of conf.warnings) opts.onWarning?.(w);
  const start = (childEnvVars: Record<string, string>, memoryMb: number) =>
    new ChildSession({ root, code, env: childEnvVars, memoryMb, confinement: conf, ...(opts.signal ? { signal: opts.signal } : {}) });

  let session: ChildSession | undefined;
  /** Each service file → its service's name when the definition sets none. */
  let serviceFiles = new Map<string, string>();
  try {
    const evaluate = async (s: ChildSession, msg: ToChild | undefined, types: string[]): Promise<FromChild> => {
      const reply = await s.request(msg, [...types, 'thrown'], timeoutMs).catch((e: unknown): never => {
        if (e && typeof e === 'object' && 'kind' in e) throw new ProblemsError([failureProblem(e as Failure, s, configFile, serviceFiles)]);
        throw e;
      });
      if (reply.type === 'thrown') throw new ProblemsError([thrownProblem(reply.error, root, serviceFiles, configFile, conf)]);
      return reply;
    };
    const evalConfig = async (s: ChildSession, bundleText: BundleText): Promise<Record<string, unknown>> => {
      const reply = await evaluate(s, { type: 'config', root, bundle: bundleText, configFile }, ['config-result']);
      if (reply.type !== 'config-result') throw new Error(`unexpected reply ${reply.type}`);
      if (reply.problems.length > 0 || !reply.config) throw new ProblemsError(reply.problems);
      return reply.config;
    };

    // 1. the config, with an empty environment: bundle while the child starts
    session = start({}, DEFAULT_MEMORY_MB);
    const first = session;
    // Meanwhile, the service files the default globs select are found and bundled too (most configurations
    // set no `services`); that work is used only when the config's globs turn out to be the default ones.
    // On any failure it is dropped, and done again below with the config's naming, so problems read the same.
    const early = (async () => {
      const files = await findServiceFiles(root, DEFAULT_SERVICE_GLOBS, configFile);
      return { files, bundle: files.length > 0 ? await bundle(root, 'services', { contents: servicesEntry(root, files) }, new Map()) : undefined };
    })().catch(() => undefined);
    const [configBundle] = await Promise.all([bundle(root, 'config', { file: configAbs }, serviceFiles), evaluate(first, undefined, ['ready'])]);
    let config = await evalConfig(first, configBundle.text);
    const settings = settingsProblems(config, configFile, allowEnv);

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
    const speculated = JSON.stringify(globs) === JSON.stringify(DEFAULT_SERVICE_GLOBS) ? await early : undefined;
    const files = speculated?.files ?? (await findServiceFiles(root, globs as string[], configFile));
    serviceFiles = new Map(files.map((f) => [f, defaultServiceName(f, config.naming, globs as string[])]));
    // Bundled while a fresh process starts (step 3), if one does.
    const svcBundleP =
      files.length === 0 ? undefined : speculated?.bundle ? Promise.resolve(speculated.bundle) : bundle(root, 'services', { contents: servicesEntry(root, files) }, serviceFiles);
    svcBundleP?.catch(() => undefined); // awaited below, after step 3 (whose failure comes first)

    // 3. the allow-listed environment or another memory cap: a fresh process with exactly those
    const passed = childEnv(env, settings.env);
    if (Object.keys(passed).length > 0 || settings.memoryMb !== DEFAULT_MEMORY_MB) {
      first.kill();
      session = start(passed, settings.memoryMb);
      await evaluate(session, undefined, ['ready']);
      if (Object.keys(passed).length > 0) {
        // The config sees the same environment as the services; its allow-list must not depend on it.
        config = await evalConfig(session, configBundle.text);
        const again = settingsProblems(config, configFile, allowEnv);
        if (JSON.stringify(again) !== JSON.stringify(settings)) {
          throw new ProblemsError([
            {
              file: configFile,
              where: 'evaluation',
              message: 'evaluation settings changed once the allow-listed variables were set (they must not depend on the environment)',
              fix: 'write evaluation: { env: [...], memoryMb: ... } with constants',
            },
          ]);
        }
      }
    }
    const s = session;

    let services: LoadedService[] = [];
    let inputs = configBundle.inputs;
    if (svcBundleP) {
      const svcBundle = await svcBundleP;
      inputs = [...new Set([...inputs, ...svcBundle.inputs])];
      const cycle = findImportCycle(svcBundle.imports, new Set(serviceFiles.keys()));
      if (cycle) {
        const names = cycle.map((f) => serviceFiles.get(f)!);
        throw new ProblemsError([
          {
            file: cycle[0],
            service: names[0],
            message: `dependency cycle: ${names.join(' → ')} (${cycle.slice(0, -1).join(' imports ')} imports ${cycle[0]})`,
            fix: 'keep the reference on one side only: a link works in both directions, and a dependency cycle can never start',
          },
        ]);
      }
      const reply = await evaluate(s, { type: 'services', root, bundle: svcBundle.text, files, names: files.map((f) => serviceFiles.get(f)!) }, ['services-result']);
      if (reply.type !== 'services-result') throw new Error(`unexpected reply ${reply.type}`);
      if (reply.problems.length > 0) throw new ProblemsError(reply.problems);
      services = reply.services;
    }
    return { root, configFile, config, services, inputs: inputs.sort() };
  } catch (e) {
    // Evaluated data has no positions: a problem that names a field gets the field's line.
    if (e instanceof ProblemsError && e.problems.some((p) => p.where && !LINE_COL.test(p.where))) {
      throw new ProblemsError((opts.locate ?? locateProblems)(e.problems, { root, configFile }));
    }
    throw e;
  } finally {
    session?.kill();
  }
}
