/**
 * The one way Wafflemaker talks to Docker: a dockerode client, loaded lazily (it costs ~150 ms to
 * load and `waffle --version` must stay fast), pinged before use so a missing engine fails with a fix.
 *
 * Every request of a client made by `connectDocker` goes through one guard around docker-modem's
 * `dial` (the single path every dockerode call takes):
 * - a time limit per call (ordinary calls: `timeoutMs`; the body of a streamed answer has its own
 *   limit; long operations raise theirs with `withCallLimits`). A call that runs out is failed with an
 *   error naming the call and the engine, and its request is destroyed, so no dangling socket keeps
 *   the process alive and callers' `finally` paths (the project lock) run.
 * - abort signals: the client's own (`settings.signal`: the run's, e.g. Ctrl-C or an agent shutting
 *   down) and a scope's (`withCallLimits({ signal })`) abort calls in flight and refuse new ones. A
 *   detached scope (`withCallLimits({ detached: true })`) ignores both: the clean-up after an aborted
 *   run (a rollback) still reaches the engine, under its own short limits and its own signal only.
 * - configuration only in the request body: dockerode hands the create options to docker-modem, which
 *   would put them in the query string as well (`POST /containers/create?Env=…`), where a socket proxy
 *   or a dockerd in debug mode logs them. Create calls send `name` (and `platform`) in the query, the
 *   rest only in the body.
 *
 * Settings come from the caller; nothing here reads `process.env` (`dockerSettingsFromEnv` maps an
 * environment the caller passes in).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import fs from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { loadDockerode } from './dockerode.ts';

export type { Dockerode };

const DEFAULT_SOCKET = '/var/run/docker.sock';
export const DEFAULT_DOCKER_HOST = `unix://${DEFAULT_SOCKET}`;

/** How the client talks to the engine. Every field is optional; the defaults suit a CLI. */
export interface DockerSettings {
  /** Time limit of an ordinary call (and of the body of a streamed answer), ms. Default 30 000. */
  timeoutMs?: number;
  /** Time limit of the first ping, ms. Default 5000 (or `timeoutMs`, when smaller). */
  pingTimeoutMs?: number;
  /** Time limit of a whole image pull (the progress stream), ms. Default 30 minutes. */
  pullTimeoutMs?: number;
  /** Aborts every call in flight and refuses new ones (a second Ctrl-C, an agent shutting down). */
  signal?: AbortSignal;
  /** TLS for a `tcp://` host (as DOCKER_TLS_VERIFY=1 does). Port 2376 implies it. */
  tlsVerify?: boolean;
  /** Directory with ca.pem, cert.pem and key.pem for TLS (as DOCKER_CERT_PATH). */
  certPath?: string;
}

/** Settings and the host, mapped from an environment the caller passes in (the CLI: `process.env`). */
export interface DockerEnvSettings extends DockerSettings {
  /** DOCKER_HOST, when set. */
  host?: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_PING_TIMEOUT_MS = 5_000;
const DEFAULT_PULL_TIMEOUT_MS = 30 * 60_000;

/**
 * Maps the standard Docker variables (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) and
 * Wafflemaker's limits (WAFFLE_DOCKER_TIMEOUT_MS, WAFFLE_DOCKER_PULL_TIMEOUT_MS) of `env` to settings.
 * Throws an Error naming the variable when a limit is not a positive number.
 */
export function dockerSettingsFromEnv(env: Record<string, string | undefined>): DockerEnvSettings {
  const ms = (name: string): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0) {
      throw new Error(`${name}="${raw}" is not a time limit. Fix: set it to a positive number of milliseconds (e.g. 30000), or unset it.`);
    }
    return n;
  };
  const out: DockerEnvSettings = {};
  if (env.DOCKER_HOST) out.host = env.DOCKER_HOST;
  if (env.DOCKER_TLS_VERIFY === '1') out.tlsVerify = true;
  if (env.DOCKER_CERT_PATH) out.certPath = env.DOCKER_CERT_PATH;
  const timeoutMs = ms('WAFFLE_DOCKER_TIMEOUT_MS');
  if (timeoutMs !== undefined) out.timeoutMs = timeoutMs;
  const pullTimeoutMs = ms('WAFFLE_DOCKER_PULL_TIMEOUT_MS');
  if (pullTimeoutMs !== undefined) out.pullTimeoutMs = pullTimeoutMs;
  return out;
}

/**
 * Dockerode options for a `unix://…`, `tcp://…` (or `http(s)://…`) host. Every connection field is
 * given (undefined when unused) so docker-modem's own defaults, which it reads from the process
 * environment, never mix in.
 */
export function dockerOptions(host: string, settings: Pick<DockerSettings, 'tlsVerify' | 'certPath'> = {}): Dockerode.DockerOptions {
  const none = { host: undefined, port: undefined, socketPath: undefined, ca: undefined, cert: undefined, key: undefined, timeout: undefined };
  if (host.startsWith('unix://')) return { ...none, socketPath: host.slice('unix://'.length) || DEFAULT_SOCKET, protocol: 'http' };
  if (host.startsWith('/')) return { ...none, socketPath: host, protocol: 'http' };
  const withScheme = host.includes('://') ? host : `tcp://${host}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new Error(
      `Docker host "${host}" is not a valid address. Fix: use unix:///path/to/docker.sock or tcp://HOST:PORT ` +
        '(DOCKER_HOST, or `docker.host` in the configuration file).',
    );
  }
  const https = u.protocol === 'https:' || (u.protocol === 'tcp:' && (u.port === '2376' || !!settings.tlsVerify));
  const opts: Dockerode.DockerOptions = {
    ...none,
    host: u.hostname,
    port: Number(u.port || (https ? 2376 : 2375)),
    protocol: https ? 'https' : 'http',
  };
  if (https && settings.certPath) {
    const read = (f: string) => fs.readFileSync(path.join(settings.certPath!, f));
    try {
      Object.assign(opts, { ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') });
    } catch (err) {
      throw new Error(`cannot read the TLS files for Docker at ${host} from ${settings.certPath}: ${(err as Error).message}. Fix: DOCKER_CERT_PATH must hold ca.pem, cert.pem and key.pem.`);
    }
  }
  return opts;
}

/** A Docker call that did not complete: it ran out of time, or its caller aborted it. */
export class DockerCallError extends Error {
  constructor(
    /** `METHOD /path` of the call, ids shortened, no query. */
    readonly call: string,
    /** The engine address. */
    readonly host: string,
    readonly reason: 'timeout' | 'aborted',
    /** The limit that ran out (timeouts). */
    readonly timeoutMs?: number,
    /** Whether the limit was on the streamed body of an answer that had started (pull progress, events). */
    readonly streamed = false,
  ) {
    super(
      reason === 'timeout'
        ? `Docker at ${host} did not ${streamed ? 'finish its streamed answer to' : 'answer'} ${call} within ${formatMs(timeoutMs!)}; ` +
            `the request was cancelled. Fix: check that the engine responds (\`docker info\`) and restart it if it hangs, then run the command again.`
        : `${call} to Docker at ${host} was interrupted (aborted by the caller)`,
    );
    this.name = 'DockerCallError';
  }
}

export function isDockerCallError(err: unknown): err is DockerCallError {
  return err instanceof DockerCallError;
}

function formatMs(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`;
}

/** Per-call overrides for the calls made inside a `withCallLimits` scope. */
export interface CallLimits {
  /** Until the engine answers (the whole answer for ordinary calls, the headers of a stream), ms. */
  timeoutMs?: number;
  /** The body of a streamed answer (pull progress, events, followed logs), ms; 0: no limit. */
  streamTimeoutMs?: number;
  /** Aborts the scope's calls in flight and refuses new ones. */
  signal?: AbortSignal;
  /**
   * The scope's calls ignore the client's signal and every outer scope's: only this scope's `signal`
   * (and the signals of scopes nested in it) and the time limits apply. For clean-up that must run
   * after the run was aborted (removing a half-made container, starting the old one again); give it
   * short limits, since nothing else will stop it.
   */
  detached?: boolean;
}

interface Scope {
  timeoutMs?: number;
  streamTimeoutMs?: number;
  signals: AbortSignal[];
  /** The client's own signal does not apply (a detached scope, or one nested in it). */
  detached: boolean;
}

// Carries a scope's limits from `withCallLimits` to the guard around `dial` (dockerode calls `dial`
// synchronously from the method the scope's function calls). Holds no state of its own.
const scopes = new AsyncLocalStorage<Scope>();

/**
 * Runs `fn` with other limits (and an extra abort signal) for the Docker calls it makes on guarded
 * clients. Nested scopes keep the outer signals and override the limits they set; a detached scope
 * drops the outer signals and the client's (see `CallLimits.detached`).
 */
export function withCallLimits<T>(limits: CallLimits, fn: () => Promise<T>): Promise<T> {
  const outer = scopes.getStore();
  const own = limits.signal ? [limits.signal] : [];
  const scope: Scope = {
    timeoutMs: limits.timeoutMs ?? outer?.timeoutMs,
    streamTimeoutMs: limits.streamTimeoutMs ?? outer?.streamTimeoutMs,
    // Each signal once: every call adds one abort listener per signal (Node warns past 10 on one signal).
    signals: limits.detached ? own : [...new Set([...(outer?.signals ?? []), ...own])],
    detached: !!limits.detached || !!outer?.detached,
  };
  return scopes.run(scope, fn);
}

/** The effective settings of a client (defaults for a client `connectDocker` did not make). */
export interface ResolvedDockerSettings {
  host: string;
  timeoutMs: number;
  pingTimeoutMs: number;
  pullTimeoutMs: number;
  signal?: AbortSignal;
}

const SETTINGS = Symbol('wafflemaker.docker.settings');

export function dockerSettingsOf(docker: Dockerode): ResolvedDockerSettings {
  const s = (docker.modem as unknown as Modem)[SETTINGS];
  return s ?? { host: 'the Docker engine', timeoutMs: DEFAULT_TIMEOUT_MS, pingTimeoutMs: DEFAULT_PING_TIMEOUT_MS, pullTimeoutMs: DEFAULT_PULL_TIMEOUT_MS };
}

function resolveSettings(host: string, settings: DockerSettings): ResolvedDockerSettings {
  const timeoutMs = positive(settings.timeoutMs) ?? DEFAULT_TIMEOUT_MS;
  const resolved: ResolvedDockerSettings = {
    host,
    timeoutMs,
    pingTimeoutMs: positive(settings.pingTimeoutMs) ?? Math.min(DEFAULT_PING_TIMEOUT_MS, timeoutMs),
    pullTimeoutMs: positive(settings.pullTimeoutMs) ?? DEFAULT_PULL_TIMEOUT_MS,
  };
  if (settings.signal) resolved.signal = settings.signal;
  return resolved;
}

const positive = (n: number | undefined) => (typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined);

/** What docker-modem's `dial` receives from dockerode (the fields the guard reads or sets). */
interface DialOptions {
  path: string;
  method: string;
  options?: unknown;
  abortSignal?: AbortSignal;
  hijack?: boolean;
  openStdin?: boolean;
  [k: string]: unknown;
}
type DialCallback = (err: unknown, data: unknown) => void;
interface Modem {
  dial(options: DialOptions, callback: DialCallback): void;
  [SETTINGS]?: ResolvedDockerSettings;
}

/**
 * Endpoints that take a JSON body but whose dockerode path ends in `?` (so docker-modem would copy
 * the whole body into the query string): the query parameters the Docker Engine API defines for them.
 */
const BODY_ENDPOINTS: Array<[RegExp, string[]]> = [
  [/^\/containers\/create\?$/, ['name', 'platform']],
  [/^\/networks\/create\?$/, []],
  [/^\/volumes\/create\?$/, []],
  [/^\/secrets\/create\?$/, []],
  [/^\/configs\/create\?$/, []],
  [/^\/commit\?$/, ['container', 'repo', 'tag', 'comment', 'author', 'pause', 'changes']],
];

/** Rewrites a body-carrying call so that only its query parameters go into the URL (docker-modem's `_query`/`_body`). */
function bodyOnly(options: DialOptions): void {
  if (options.method !== 'POST' || !options.options || typeof options.options !== 'object') return;
  const entry = BODY_ENDPOINTS.find(([re]) => re.test(options.path));
  if (!entry) return;
  const opts = options.options as Record<string, unknown>;
  if ('_query' in opts || '_body' in opts) return;
  const query: Record<string, unknown> = {};
  const body: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts)) {
    if (k === 'abortSignal' || k === 'authconfig') continue;
    (entry[1].includes(k) ? query : body)[k] = v;
  }
  if (Object.keys(query).length === 0) {
    // No query at all: without the trailing `?`, docker-modem adds none.
    options.path = options.path.slice(0, -1);
    options.options = body;
  } else {
    options.options = { _query: query, _body: body };
  }
}

/** `METHOD /path` for messages: no query, no API version prefix, 64-hex ids shortened to 12. */
export function describeCall(method: string, urlPath: string): string {
  const p = urlPath.split('?')[0].replace(/^\/v\d+\.\d+(?=\/)/, '').replace(/\b([0-9a-f]{12})[0-9a-f]{52}\b/g, '$1');
  return `${method} ${p}`;
}

const isStreamLike = (d: unknown): d is NodeJS.ReadableStream & { destroy(err?: Error): void } =>
  !!d && typeof d === 'object' && typeof (d as { pipe?: unknown }).pipe === 'function' && typeof (d as { destroy?: unknown }).destroy === 'function';

/**
 * Puts the guard around a client's `dial` (see the file's comment). Idempotent. Returns the
 * effective settings. `connectDocker` does this; call it for a client made another way.
 */
export function guardDocker(docker: Dockerode, host: string, settings: DockerSettings = {}): ResolvedDockerSettings {
  const modem = docker.modem as unknown as Modem;
  if (modem[SETTINGS]) return modem[SETTINGS];
  const s = resolveSettings(host, settings);
  modem[SETTINGS] = s;
  const dial = modem.dial.bind(modem);
  modem.dial = (options: DialOptions, callback: DialCallback) => {
    const scope = scopes.getStore();
    const call = describeCall(options.method, options.path);
    bodyOnly(options);
    const timeoutMs = scope?.timeoutMs ?? s.timeoutMs;
    const streamTimeoutMs = options.hijack || options.openStdin ? 0 : (scope?.streamTimeoutMs ?? s.timeoutMs);
    const signals = [...new Set([scope?.detached ? undefined : s.signal, ...(scope?.signals ?? []), options.abortSignal])].filter((x): x is AbortSignal => !!x);

    const controller = new AbortController();
    let answered = false;
    let stream: (NodeJS.ReadableStream & { destroy(err?: Error): void }) | undefined;
    let timer: NodeJS.Timeout | undefined;
    const unlink: Array<() => void> = [];
    const cleanup = () => {
      clearTimeout(timer);
      for (const u of unlink.splice(0)) u();
    };
    // Ends the call: destroys the request (its signal) or the streamed answer, and fails the call once.
    const giveUp = (err: DockerCallError) => {
      cleanup();
      controller.abort(err);
      if (stream) {
        stream.destroy(err);
        return;
      }
      if (answered) return;
      answered = true;
      callback(err, null);
    };

    const already = signals.find((sig) => sig.aborted);
    if (already) {
      answered = true;
      callback(new DockerCallError(call, s.host, 'aborted'), null);
      return;
    }
    for (const sig of signals) {
      const onAbort = () => giveUp(new DockerCallError(call, s.host, 'aborted'));
      sig.addEventListener('abort', onAbort, { once: true });
      unlink.push(() => sig.removeEventListener('abort', onAbort));
    }
    timer = setTimeout(() => giveUp(new DockerCallError(call, s.host, 'timeout', timeoutMs)), timeoutMs);
    options.abortSignal = controller.signal;

    dial(options, (err, data) => {
      if (answered) {
        // An answer after the call gave up: nobody reads it.
        if (isStreamLike(data)) data.destroy();
        return;
      }
      answered = true;
      if (err || !isStreamLike(data)) {
        cleanup();
        callback(err, data);
        return;
      }
      // A streamed answer: the headers came; the body gets its own limit, and ends the guard when closed.
      clearTimeout(timer);
      stream = data;
      if (streamTimeoutMs > 0) {
        timer = setTimeout(() => giveUp(new DockerCallError(call, s.host, 'timeout', streamTimeoutMs, true)), streamTimeoutMs);
      }
      data.once('close', cleanup);
      callback(null, data);
    });
  };
  return s;
}

/**
 * Connects to Docker and pings it. `host`: `unix:///…` or `tcp://…`; default /var/run/docker.sock
 * (the caller resolves DOCKER_HOST and the configuration's `docker.host`). Throws an Error naming the
 * host and the fix when the engine does not answer within `settings.pingTimeoutMs`.
 */
export async function connectDocker(host?: string, settings: DockerSettings = {}): Promise<Dockerode> {
  const target = host || DEFAULT_DOCKER_HOST;
  const DockerCtor = await loadDockerode();
  const docker = new DockerCtor(dockerOptions(target, settings));
  const s = guardDocker(docker, target, settings);
  try {
    await withCallLimits({ timeoutMs: s.pingTimeoutMs }, () => docker.ping());
  } catch (err) {
    if (isDockerCallError(err) && err.reason === 'aborted') throw err;
    const why = isDockerCallError(err) ? `no answer to ${err.call} within ${formatMs(err.timeoutMs!)}` : dockerErrorMessage(err);
    throw new Error(
      `Docker is not answering at ${target} (${why}). ` +
        'Fix: start Docker, or point Wafflemaker at a running engine with DOCKER_HOST=unix:///path/to/docker.sock ' +
        '(or tcp://HOST:PORT), or set `docker: { host: ... }` in the configuration file (waffle.config.ts, or the one given with -c).',
    );
  }
  return docker;
}

/** Docker's own message from a dockerode error (`err.json.message`), else the error's message. */
export function dockerErrorMessage(err: unknown): string {
  const e = err as { json?: unknown; message?: string; code?: string } | undefined;
  if (e && e.json && typeof e.json === 'object' && typeof (e.json as { message?: unknown }).message === 'string') {
    return ((e.json as { message: string }).message).trim();
  }
  if (e && typeof e.json === 'string' && e.json.trim()) {
    try {
      const parsed = JSON.parse(e.json) as { message?: string };
      if (parsed.message) return parsed.message.trim();
    } catch {
      /* not JSON */
    }
  }
  if (e?.message) return e.message.trim();
  return String(err);
}

/** HTTP status of a dockerode error (404, 409, …), if any. */
export function dockerStatus(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown } | undefined)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}
