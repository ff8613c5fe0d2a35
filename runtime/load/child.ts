/**
 * The evaluation child: evaluates the bundles the loader sends (as text, over IPC) and sends back
 * plain data. Started by load.ts as `node -e <this file, bundled>` inside the sandbox (see sandbox.ts):
 * no file writes, no processes, no network; it reads no file of ours. Imports only node builtins and
 * relative files (load.ts bundles it into one script).
 *
 * A bundle is imported as a `data:` module named by a `//# sourceURL` comment; node does not apply
 * source maps to those, so this file maps stack frames itself (Error.prepareStackTrace), and errors
 * point at the user's original files as with `--enable-source-maps`.
 *
 * User code may not end this process: process.exit/abort/kill(self) throw instead, so the error
 * names the file and line that called them.
 */
import path from 'node:path';
import { SourceMap } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { LoadedService, Problem } from '../model.ts';
import type { BundleText, FromChild, ToChild } from './protocol.ts';
import { serviceNameFromFile, toPlainData, type SerializeContext, type SerializeIssue } from './serialize.ts';
import { isService, type Service } from '../../define/index.ts';
import { isSecretCollection } from '../../define/secrets.ts';

const realExit = process.exit.bind(process);
const realKill = process.kill.bind(process);

let root = '';
/** File (relative to the root) being evaluated right now. */
let current: string | null = null;

function exitCalled(what: string): never {
  const err = new Error(`${what} called while loading ${current ?? 'the project'}`);
  (err as Error & { waffleExitCall?: boolean }).waffleExitCall = true;
  throw err;
}

process.exit = ((code?: number | string) => exitCalled(`process.exit(${code ?? ''})`)) as typeof process.exit;
process.abort = (() => exitCalled('process.abort()')) as typeof process.abort;
process.kill = ((pid: number, signal?: string | number) => {
  const n = Number(pid);
  if (n === process.pid || n === 0 || n === -process.pid || n === process.ppid) exitCalled(`process.kill(${pid})`);
  return realKill(pid, signal);
}) as typeof process.kill;

// ───────────────────────────── source-mapped stacks ─────────────────────────────

type SourceMapInput = ConstructorParameters<typeof SourceMap>[0];

/**
 * Source maps of the bundles evaluated here, by the name their frames carry. Each is parsed when a
 * frame of its bundle is first mapped (parsing a large bundle's mappings takes a while, and most
 * loads map few frames).
 */
const maps = new Map<string, { payload: SourceMapInput; parsed?: SourceMap }>();

function mapFrame(site: NodeJS.CallSite): string {
  let text: string;
  try {
    text = String(site);
  } catch {
    return '<unknown>';
  }
  const line = site.getLineNumber();
  const col = site.getColumnNumber();
  if (line === null || col === null) return text;
  for (const name of [site.getScriptNameOrSourceURL(), site.getFileName()]) {
    const entry = name ? maps.get(name) : undefined;
    if (!entry) continue;
    const map = (entry.parsed ??= new SourceMap(entry.payload));
    const e = map.findEntry(line - 1, col - 1) as { originalSource?: string; originalLine?: number; originalColumn?: number };
    if (!e.originalSource || e.originalLine === undefined || e.originalColumn === undefined) return text;
    const generated = `${name}:${line}:${col}`;
    const original = `${e.originalSource}:${e.originalLine + 1}:${e.originalColumn + 1}`;
    return text.includes(generated) ? text.replace(generated, original) : `${text} (${original})`;
  }
  return text;
}

/** The error's head line, then one line per frame, each mapped on its own. */
const prepareStackTrace = (error: unknown, sites: NodeJS.CallSite[]): string => {
  let head: string;
  try {
    head = Error.prototype.toString.call(error);
  } catch {
    head = 'Error';
  }
  return head + sites.map((s) => `\n    at ${mapFrame(s)}`).join('');
};
// Frame-wise: defineService may format just the one frame it needs (see define/index.ts captureCallSite).
Object.defineProperty(prepareStackTrace, Symbol.for('wafflemaker.framewise-stack'), { value: true });
Error.prepareStackTrace = prepareStackTrace;

/** The `data:` URLs of the bundles → their names, to keep the (long) URLs out of messages. */
const dataUrls = new Map<string, string>();

/** Imports a bundle sent as text; its frames are named `bundle.url` and mapped back to the sources. */
async function importBundle(bundle: BundleText): Promise<Record<string, unknown>> {
  maps.set(bundle.url, { payload: bundle.map as SourceMapInput });
  const code = `${bundle.code}\n//# sourceURL=${bundle.url}\n`;
  const url = `data:text/javascript;base64,${Buffer.from(code).toString('base64')}`;
  dataUrls.set(url, bundle.url);
  return (await import(url)) as Record<string, unknown>;
}

function withoutDataUrls(text: string): string {
  return text.replace(/data:text\/javascript;base64,[A-Za-z0-9+/=]+/g, (u) => dataUrls.get(u) ?? 'the bundle');
}

/** Progress marker: written to the IPC pipe synchronously (libuv writes at once when nothing is queued), so it arrives even if the next file never returns. */
function mark(file: string): void {
  if (process.send && process.connected) process.send({ type: 'mark', file } satisfies FromChild);
}

function send(msg: FromChild): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

function thrown(err: unknown, file: string): FromChild {
  if (err instanceof Error || (typeof err === 'object' && err !== null && 'stack' in err)) {
    const e = err as Error & { waffleExitCall?: boolean; code?: unknown; permission?: unknown; resource?: unknown };
    let stack: string | undefined;
    let message: string;
    const extra: { code?: string; permission?: string; resource?: string } = {};
    try {
      stack = typeof e.stack === 'string' ? e.stack : undefined;
      message = String(e.message ?? e);
      if (typeof e.code === 'string') extra.code = e.code;
      // fetch() wraps the socket error: `fetch failed`, with the code on its cause.
      const cause = (e as { cause?: { code?: unknown; message?: unknown } }).cause;
      if (extra.code === undefined && cause && typeof cause.code === 'string') {
        extra.code = cause.code;
        if (typeof cause.message === 'string') message = `${message} (${cause.message})`;
      }
      if (typeof e.permission === 'string') extra.permission = e.permission;
      if (typeof e.resource === 'string') extra.resource = e.resource;
    } catch {
      message = 'threw an error that cannot be read';
    }
    return {
      type: 'thrown',
      error: { file, message: withoutDataUrls(message), stack: stack === undefined ? undefined : withoutDataUrls(stack), exitCall: e.waffleExitCall === true, ...extra },
    };
  }
  let text: string;
  try {
    text = typeof err === 'string' ? JSON.stringify(err) : String(err);
  } catch {
    text = typeof err;
  }
  return { type: 'thrown', error: { file, message: `threw a value that is not an Error: ${text}` } };
}

/**
 * A relative path whose every segment is written the same in a file URL and on disk (no
 * percent-encoding) and does not start with a dot (so it is no `.`, `..` or `.waffle`).
 */
const PLAIN_RELATIVE = /^[A-Za-z0-9_-][A-Za-z0-9._-]*(?:\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/;
/** `root` as a file URL with a trailing slash, for the common case of relDefinedAt. */
let rootUrl: { root: string; href: string } | undefined;

/** `file:///r/services/a.ts:3:7` → `services/a.ts:3:7` (undefined when it is not a user file). */
function relDefinedAt(at: string | undefined): string | undefined {
  if (!at) return undefined;
  const m = /^(.*):(\d+):(\d+)$/.exec(at);
  if (!m) return undefined;
  let file = m[1]!;
  // Most often a plain file below the root: the same answer as below, without decoding the URL.
  if (rootUrl?.root !== root) rootUrl = { root, href: `${pathToFileURL(root).href}/` };
  if (file.startsWith(rootUrl.href) && PLAIN_RELATIVE.test(file.slice(rootUrl.href.length))) {
    return `${file.slice(rootUrl.href.length)}:${m[2]}:${m[3]}`;
  }
  if (file.startsWith('file://')) {
    try {
      file = fileURLToPath(file);
    } catch {
      return undefined;
    }
  }
  if (!path.isAbsolute(file)) return undefined;
  const rel = path.relative(root, file);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return `${file}:${m[2]}:${m[3]}`;
  if (rel.startsWith('.waffle')) return undefined; // not mapped back to the source: better nothing than a temp file
  return `${rel.split(path.sep).join('/')}:${m[2]}:${m[3]}`;
}

const FIX_PLAIN =
  'use only strings, numbers, booleans, null, plain objects and arrays, or references to services ' +
  '(`api`, `api.url()`); compute anything else into one of those at the top level (e.g. `String(x)`)';

function issuesToProblems(issues: SerializeIssue[], file: string, service: string | undefined, prefix: string): Problem[] {
  return issues.map((i) => ({
    file,
    ...(service !== undefined ? { service } : {}),
    where: i.path || prefix,
    message: `${i.path ? '' : `${prefix} `}${i.message}`,
    fix: FIX_PLAIN,
  }));
}

async function evalConfig(msg: Extract<ToChild, { type: 'config' }>): Promise<FromChild> {
  root = msg.root;
  current = msg.configFile;
  let mod: Record<string, unknown>;
  try {
    mod = await importBundle(msg.bundle);
  } catch (err) {
    return thrown(err, msg.configFile);
  }
  const cfg = mod.default;
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) {
    return {
      type: 'config-result',
      problems: [
        {
          file: msg.configFile,
          message:
            cfg === undefined
              ? 'has no default export'
              : `its default export is ${Array.isArray(cfg) ? 'an array' : cfg === null ? 'null' : `a ${typeof cfg}`}, not a configuration object`,
          fix: "write `export default defineConfig({ project: 'my-app' })` with `import { defineConfig } from 'wafflemaker'`",
        },
      ],
    };
  }
  const ctx: SerializeContext = { names: new Map(), definedAt: (s) => relDefinedAt(s.definedAt) };
  const issues: SerializeIssue[] = [];
  // `export const secrets = defineSecrets(...)` next to a config that does not pass it on: use it.
  const source = (cfg as Record<string, unknown>).secrets === undefined && isSecretCollection(mod.secrets) ? { ...cfg, secrets: mod.secrets } : cfg;
  const config = toPlainData(source, ctx, issues) as Record<string, unknown>;
  return { type: 'config-result', config, problems: issuesToProblems(issues, msg.configFile, undefined, 'the config') };
}

async function evalServices(msg: Extract<ToChild, { type: 'services' }>): Promise<FromChild> {
  root = msg.root;
  current = null;
  let bundle: { loaders: Array<() => Promise<Record<string, unknown>>> };
  try {
    bundle = (await importBundle(msg.bundle)) as unknown as typeof bundle;
  } catch (err) {
    return thrown(err, msg.files[0] ?? '');
  }
  const defaults: unknown[] = [];
  const hasDefault: boolean[] = [];
  for (let i = 0; i < msg.files.length; i++) {
    const file = msg.files[i]!;
    current = file;
    mark(file);
    try {
      const mod = await bundle.loaders[i]!();
      defaults.push(mod.default);
      hasDefault.push('default' in mod);
    } catch (err) {
      return thrown(err, file);
    }
  }
  current = null;

  const problems: Problem[] = [];
  const names = new Map<object, string>();
  const nameOf: string[] = [];
  msg.files.forEach((file, i) => {
    const d = defaults[i];
    const defName = isService(d) ? (d.definition as { name?: unknown } | undefined)?.name : undefined;
    const name = typeof defName === 'string' ? defName : (msg.names?.[i] ?? serviceNameFromFile(file));
    nameOf.push(name);
    if (isService(d) && !names.has(d)) names.set(d, name);
  });
  const ctx: SerializeContext = { names, definedAt: (s: Service) => relDefinedAt(s.definedAt) };
  const services: LoadedService[] = [];
  msg.files.forEach((file, i) => {
    const d = defaults[i];
    const name = nameOf[i]!;
    if (!isService(d)) {
      const what = !hasDefault[i]
        ? 'has no default export'
        : `its default export is ${d === null ? 'null' : Array.isArray(d) ? 'an array' : `a ${typeof d}`}, not a service made by defineService`;
      problems.push({
        file,
        service: name,
        message: what,
        fix: "write `export default defineService({ image: '...' })` with `import { defineService } from 'wafflemaker'`",
      });
      return;
    }
    const def = d.definition as unknown;
    if (typeof def !== 'object' || def === null || Array.isArray(def)) {
      problems.push({
        file,
        service: name,
        message: 'defineService was called without a definition object',
        fix: "pass an object: `defineService({ image: '...' })`",
      });
      return;
    }
    const issues: SerializeIssue[] = [];
    const data = toPlainData(def, ctx, issues) as Record<string, unknown>;
    problems.push(...issuesToProblems(issues, file, name, 'the definition'));
    const svc: LoadedService = { name, file, data };
    const at = relDefinedAt(d.definedAt);
    if (at !== undefined) svc.definedAt = at;
    services.push(svc);
  });
  return { type: 'services-result', services, problems };
}

let busy = false;
async function handle(msg: ToChild): Promise<void> {
  busy = true;
  const reply = msg.type === 'config' ? await evalConfig(msg) : await evalServices(msg);
  busy = false;
  await send(reply);
}

process.on('message', (msg: ToChild) => {
  handle(msg).catch(async (err) => {
    busy = false;
    await send(thrown(err, current ?? ''));
  });
});

// Errors thrown later by user code (timers, promises) while a request is running.
const late = (err: unknown): void => {
  if (busy) {
    busy = false;
    void send(thrown(err, current ?? ''));
  }
};
process.on('uncaughtException', late);
process.on('unhandledRejection', late);
process.on('disconnect', () => realExit(0));

void send({ type: 'ready' });
