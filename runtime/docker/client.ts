/**
 * The one way Wafflemaker talks to Docker: a dockerode client, loaded lazily (it costs ~150 ms to
 * load and `waffle --version` must stay fast), pinged before use so a missing engine fails with a fix.
 */
import type Dockerode from 'dockerode';

export type { Dockerode };

const DEFAULT_SOCKET = '/var/run/docker.sock';

/** Dockerode options for a `unix://…`, `tcp://…` (or `http(s)://…`) host. */
export function dockerOptions(host: string): Dockerode.DockerOptions {
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length) || DEFAULT_SOCKET };
  if (host.startsWith('/')) return { socketPath: host };
  const withScheme = host.includes('://') ? host : `tcp://${host}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new Error(
      `Docker host "${host}" is not a valid address. Fix: use unix:///path/to/docker.sock or tcp://HOST:PORT ` +
        '(DOCKER_HOST or `docker.host` in waffle.config.ts).',
    );
  }
  const https = u.protocol === 'https:' || (u.protocol === 'tcp:' && (u.port === '2376' || process.env.DOCKER_TLS_VERIFY === '1'));
  return {
    host: u.hostname,
    port: Number(u.port || (https ? 2376 : 2375)),
    protocol: https ? 'https' : 'http',
  };
}

/** The host that `connectDocker()` uses when none is given. */
export function defaultDockerHost(): string {
  return process.env.DOCKER_HOST || `unix://${DEFAULT_SOCKET}`;
}

/**
 * Connects to Docker and pings it. `host`: `unix:///…` or `tcp://…`; default `DOCKER_HOST`, then
 * /var/run/docker.sock. Throws an Error naming the host and the fix when the engine does not answer.
 */
export async function connectDocker(host?: string, opts: { timeoutMs?: number } = {}): Promise<Dockerode> {
  const target = host || defaultDockerHost();
  const { default: DockerCtor } = await import('dockerode');
  const docker = new DockerCtor(dockerOptions(target));
  const timeoutMs = opts.timeoutMs ?? 5000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      docker.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (err) {
    throw new Error(
      `Docker is not answering at ${target} (${dockerErrorMessage(err)}). ` +
        'Fix: start Docker, or point Wafflemaker at a running engine with DOCKER_HOST=unix:///path/to/docker.sock ' +
        '(or tcp://HOST:PORT), or set `docker: { host: ... }` in waffle.config.ts.',
    );
  } finally {
    if (timer) clearTimeout(timer);
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
