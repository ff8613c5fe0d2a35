/**
 * The real reverse proxy from Debian's `caddy` package, started by the test on 127.0.0.1 with its own
 * admin port, HTTP and HTTPS ports (free high ports) and data directory, and killed after. Its initial
 * configuration is what an operator would give a host Caddy: the admin address and the ports, the local
 * certificate authority without touching the system's trust store, and no saved config (`--resume` off),
 * so a restart comes back empty. A Caddy started by the package's systemd unit is never used.
 *
 * For the Swarm target, `startCaddyContainer()` runs the same binary as a container (an image built
 * from it, `ensureCaddyImage()`), as an operator runs Caddy on a manager: admin API on a unix socket in
 * a host directory, HTTP and HTTPS ports published on 127.0.0.1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { ensureDebianPackages } from './engine.ts';
import { freePort } from './helpers.ts';

export interface Caddy {
  /** `http://127.0.0.1:PORT`: the admin API. */
  admin: string;
  httpsPort: number;
  httpPort: number;
  /** Stops the process and starts it again with its initial (empty) configuration. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** Caddy's own output, for failure messages. */
  output(): string;
}

export async function startCaddy(): Promise<Caddy> {
  ensureDebianPackages([{ pkg: 'caddy', provides: 'caddy' }]);
  const [adminPort, httpPort, httpsPort] = [await freePort(), await freePort(), await freePort()];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-caddy-'));
  const admin = `http://127.0.0.1:${adminPort}`;
  const config = path.join(dir, 'caddy.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      admin: { listen: `127.0.0.1:${adminPort}`, config: { persist: false } },
      logging: { logs: { default: { level: 'ERROR' } } },
      storage: { module: 'file_system', root: path.join(dir, 'data') },
      apps: {
        http: { http_port: httpPort, https_port: httpsPort },
        pki: { certificate_authorities: { local: { install_trust: false } } },
      },
    }),
  );
  let child: ChildProcess | undefined;
  let out = '';
  const env = { ...process.env, HOME: dir, XDG_DATA_HOME: path.join(dir, 'xdg-data'), XDG_CONFIG_HOME: path.join(dir, 'xdg-config') };
  const start = async () => {
    child = spawn('caddy', ['run', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'], env });
    child.stdout?.on('data', (d) => (out = (out + d).slice(-20_000)));
    child.stderr?.on('data', (d) => (out = (out + d).slice(-20_000)));
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        const res = await fetch(`${admin}/config/`, { signal: AbortSignal.timeout(1000) });
        if (res.ok) return;
      } catch {
        /* not up yet */
      }
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`caddy did not start (admin ${admin}): ${out.slice(-2000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    admin,
    httpPort,
    httpsPort,
    async restart() {
      await stop();
      await start();
    },
    async stop() {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
    output: () => out,
  };
}

/**
 * A GET through Caddy as a browser sends it: when the connection is reset before any byte of an answer
 * arrived (Caddy 2.6 resets a few connections when it loads a new configuration), the request is sent
 * again once, on a new connection; `retried` says so. An answer that arrived (any status) is never retried.
 */
export async function getLikeABrowser(
  caddy: Pick<Caddy, 'httpsPort'>,
  domain: string,
  urlPath: string,
  opts: { timeoutMs?: number } = {},
): Promise<{ status: number; body: string; retried: boolean }> {
  try {
    return { ...(await requestThrough(caddy, domain, urlPath, opts)), retried: false };
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { answered?: boolean };
    if (err.answered || !['ECONNRESET', 'EPIPE', 'EPROTO'].includes(err.code ?? '')) throw e;
    return { ...(await requestThrough(caddy, domain, urlPath, opts)), retried: true };
  }
}

/** One request of a load loop through Caddy. */
export interface Answer {
  /** When the request was sent and answered (ms since the epoch). */
  start: number;
  end: number;
  /** `v1`, `v2` (the test app's `waffle vN` answer), or what went wrong. */
  version: string;
  ok: boolean;
  /** Sent again once after its connection was reset before any answer (see `getLikeABrowser`). */
  retried: boolean;
}

/**
 * Keeps `inFlight` GETs of `domain` + `urlPath` going through Caddy until stopped; every answer is
 * recorded. Each GET is sent as a browser sends it (`getLikeABrowser`); a request that still fails, or
 * any answer that is not the app's 200, counts as failed.
 */
export function loadThrough(
  caddy: Pick<Caddy, 'httpsPort'>,
  domain: string,
  urlPath: string,
  inFlight: number,
  timeoutMs: number,
): { answers: Answer[]; stop: () => Promise<Answer[]> } {
  const answers: Answer[] = [];
  let stopping = false;
  const worker = async () => {
    while (!stopping) {
      const start = Date.now();
      try {
        const r = await getLikeABrowser(caddy, domain, urlPath, { timeoutMs });
        const m = /^waffle (v\d)\n$/.exec(r.body);
        answers.push({ start, end: Date.now(), version: r.status === 200 && m ? m[1]! : `HTTP ${r.status} ${r.body.slice(0, 80)}`, ok: r.status === 200 && !!m, retried: r.retried });
      } catch (e) {
        answers.push({ start, end: Date.now(), version: `error ${(e as Error).message}`, ok: false, retried: true });
      }
    }
  };
  const workers = Array.from({ length: inFlight }, worker);
  return {
    answers,
    async stop() {
      stopping = true;
      await Promise.all(workers);
      return answers;
    },
  };
}

/** One HTTPS request to Caddy on 127.0.0.1 for `domain` (SNI and Host), trusting Caddy's local authority for the test. */
export function requestThrough(
  caddy: Pick<Caddy, 'httpsPort'>,
  domain: string,
  urlPath: string,
  opts: { agent?: https.Agent; timeoutMs?: number } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: caddy.httpsPort,
        path: urlPath,
        servername: domain,
        headers: { Host: domain },
        rejectUnauthorized: false,
        // A connection of its own unless an agent is given: Caddy closes idle kept-alive connections when
        // it loads a new configuration, and Node's client does not retry a request sent on one.
        agent: opts.agent ?? false,
        timeout: opts.timeoutMs ?? 5000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        // The answer had begun: whatever breaks now is not a connection that failed before the request.
        res.on('error', (e) => reject(Object.assign(e, { answered: true })));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request to ${domain}${urlPath} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Requests `domain``urlPath` until `pred` holds for the answer (the proxy just changed), or fails after `ms`. */
export async function until(
  caddy: Pick<Caddy, 'httpsPort'>,
  domain: string,
  urlPath: string,
  pred: (r: { status: number; body: string }) => boolean,
  ms = 15_000,
): Promise<{ status: number; body: string }> {
  const deadline = Date.now() + ms;
  let last: { status: number; body: string } | string = 'no answer';
  for (;;) {
    try {
      const r = await requestThrough(caddy, domain, urlPath);
      if (pred(r)) return r;
      last = r;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${domain}${urlPath} never answered as expected; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * One request to Caddy's admin API, on a connection of its own (Caddy closes idle admin connections when
 * it loads a new configuration). Resolves with the status and the parsed JSON answer (null when empty).
 */
export function caddyApi(caddy: Pick<Caddy, 'admin'>, method: string, apiPath: string, body?: unknown): Promise<{ status: number; json: unknown; text: string }> {
  const data = body !== undefined ? JSON.stringify(body) : undefined;
  return new Promise((resolve, reject) => {
    const unix = caddy.admin.startsWith('unix://') ? caddy.admin.slice('unix://'.length) : undefined;
    const url = unix ? undefined : new URL(`${caddy.admin}${apiPath}`);
    const req = http.request(
      {
        ...(unix ? { socketPath: unix, path: apiPath, setHost: false } : { host: url!.hostname, port: url!.port, path: `${url!.pathname}${url!.search}` }),
        method,
        agent: false,
        // On a unix socket Caddy accepts only an empty Host (no host name names the service).
        headers: { 'Content-Type': 'application/json', ...(unix ? { Host: '' } : {}), ...(data !== undefined ? { 'Content-Length': Buffer.byteLength(data) } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          let json: unknown = null;
          try {
            json = text.trim() ? JSON.parse(text) : null;
          } catch {
            /* not JSON: an error text */
          }
          resolve({ status: res.statusCode ?? 0, json, text });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

/** The Caddy image built from Debian's `/usr/bin/caddy` (no registry is reachable to pull `caddy:2`). */
export const CADDY_IMAGE = 'waffle-test/caddy:2.6.2';

/**
 * Builds `CADDY_IMAGE` when missing: `FROM scratch`, Debian's caddy binary, the shared libraries `ldd`
 * lists for it (libzstd, libc, the loader), CA certificates and a `/data` + `/config` for its storage.
 */
export async function ensureCaddyImage(host: string): Promise<void> {
  ensureDebianPackages([{ pkg: 'caddy', provides: 'caddy' }]);
  const cli = (args: string[], extra: Record<string, string> = {}) => spawnSync('docker', args, { env: { ...process.env, DOCKER_HOST: host, ...extra }, encoding: 'utf8' });
  if (cli(['image', 'inspect', CADDY_IMAGE]).status === 0) return;
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-caddy-img-'));
  try {
    const ldd = spawnSync('ldd', ['/usr/bin/caddy'], { encoding: 'utf8' });
    if (ldd.status !== 0) throw new Error(`ldd /usr/bin/caddy: ${ldd.stderr}`);
    // `libzstd.so.1 => /lib/x86_64-linux-gnu/libzstd.so.1 (0x…)` and `/lib64/ld-linux-x86-64.so.2 (0x…)`
    const libs = [...ldd.stdout.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
    const copy = (from: string) => {
      const to = path.join(ctx, 'root', from);
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.copyFileSync(fs.realpathSync(from), to);
    };
    copy('/usr/bin/caddy');
    for (const l of libs) copy(l);
    if (fs.existsSync('/etc/ssl/certs/ca-certificates.crt')) copy('/etc/ssl/certs/ca-certificates.crt');
    for (const d of ['data', 'config', 'tmp']) fs.mkdirSync(path.join(ctx, 'root', d), { recursive: true });
    fs.writeFileSync(
      path.join(ctx, 'Dockerfile'),
      ['FROM scratch', 'COPY root /', 'ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config HOME=/tmp', 'ENTRYPOINT ["/usr/bin/caddy"]', 'CMD ["run", "--resume"]', ''].join('\n'),
    );
    const r = cli(['build', '-q', '-t', CADDY_IMAGE, ctx], { DOCKER_BUILDKIT: '0' });
    if (r.status !== 0) throw new Error(`docker build ${CADDY_IMAGE} failed: ${r.stderr || r.stdout}`);
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
}

export interface CaddyContainer extends Caddy {
  /** The container's name (unique per test). */
  name: string;
}

/**
 * Caddy as an operator runs it on a Swarm manager: a container of `CADDY_IMAGE` attached to no network
 * of a project at start (the default bridge only), its HTTP and HTTPS ports published on 127.0.0.1:<free
 * port>, its admin API on a unix socket in a host directory mounted into the container (`admin` is
 * `unix://<dir>/admin.sock`), so no container on a network Caddy joins can reach it. Its configuration is
 * not persisted, so `restart()` brings it back empty. `stop()` removes the container and the directory.
 */
export async function startCaddyContainer(host: string, name: string): Promise<CaddyContainer> {
  await ensureCaddyImage(host);
  const cli = (args: string[]) => spawnSync('docker', args, { env: { ...process.env, DOCKER_HOST: host }, encoding: 'utf8' });
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-caddy-ctr-'));
  const socket = path.join(dir, 'admin.sock');
  fs.writeFileSync(
    path.join(dir, 'caddy.json'),
    JSON.stringify({
      admin: { listen: 'unix//etc/waffle-caddy/admin.sock', config: { persist: false } },
      logging: { logs: { default: { level: 'ERROR' } } },
      apps: { http: { http_port: 80, https_port: 443 }, pki: { certificate_authorities: { local: { install_trust: false } } } },
    }),
  );
  const admin = `unix://${socket}`;
  const waitUp = async () => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        const r = await caddyApi({ admin }, 'GET', '/config/');
        if (r.status === 200) return;
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) throw new Error(`caddy container ${name} did not start: ${cli(['logs', '--tail', '50', name]).stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  cli(['rm', '-f', name]);
  const run = cli([
    'run', '-d', '--name', name,
    '-p', `127.0.0.1:${httpPort}:80`, '-p', `127.0.0.1:${httpsPort}:443`,
    '-v', `${dir}:/etc/waffle-caddy`,
    '--label', 'dev.wafflemaker.test-caddy=1',
    CADDY_IMAGE, 'run', '--config', '/etc/waffle-caddy/caddy.json',
  ]);
  const cleanUp = () => {
    cli(['rm', '-f', name]);
    fs.rmSync(dir, { recursive: true, force: true });
  };
  if (run.status !== 0) {
    cleanUp();
    throw new Error(`docker run ${CADDY_IMAGE}: ${run.stderr}`);
  }
  try {
    await waitUp();
  } catch (e) {
    cleanUp();
    throw e;
  }
  return {
    name,
    admin,
    httpPort,
    httpsPort,
    async restart() {
      fs.rmSync(socket, { force: true });
      const r = cli(['restart', '-t', '0', name]);
      if (r.status !== 0) throw new Error(`docker restart ${name}: ${r.stderr}`);
      await waitUp();
    },
    async stop() {
      cleanUp();
    },
    output: () => {
      const r = cli(['logs', '--tail', '100', name]);
      return r.stdout + r.stderr;
    },
  };
}
