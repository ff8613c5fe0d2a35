/**
 * The project's own Docker engine helper, used by the tests, the demo and the benches.
 *
 * `ensureEngine()` reuses an engine that answers (`DOCKER_HOST`, then /var/run/docker.sock, then our
 * private socket); otherwise it starts a private `dockerd` (Debian `docker.io`) with its own socket,
 * data directory and exec root, detached so it outlives the caller. Only one engine per machine: a
 * second dockerd would fight the first over iptables.
 *
 * `ensureTestImages()` builds the test images from Debian's `busybox-static` (no registry is reachable).
 *
 * CLI: `tsx test/engine.ts [--test-tools] [--demo-images] [--out FILE]` makes sure the engine and images
 * exist, then writes the one line `DOCKER_HOST=...` to FILE (with --out) or else to stdout. Everything
 * else it or the programs it runs (apt-get, docker build, dockerd) say goes to stderr or a log file;
 * scripts/setup.sh also sends the helper's whole stdout to stderr and reads only FILE.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ENGINE_DIR = process.env.WAFFLE_ENGINE_DIR ?? '/var/lib/wafflemaker-engine';
export const PRIVATE_SOCKET = path.join(ENGINE_DIR, 'docker.sock');

/** Test images, all built from busybox-static. Two versions of the app image differ by a label. */
export const TEST_IMAGES = {
  busybox: 'waffle-test/busybox:latest',
  appV1: 'waffle-test/app:1',
  appV2: 'waffle-test/app:2',
} as const;

function socketPathOf(host: string): string | undefined {
  return host.startsWith('unix://') ? host.slice('unix://'.length) : undefined;
}

/** GET /_ping on a unix socket or tcp host; resolves true when the engine answers OK. */
export function ping(host: string, timeoutMs = 1500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = socketPathOf(host);
    let opts: http.RequestOptions;
    if (sock) {
      if (!fs.existsSync(sock)) return resolve(false);
      opts = { socketPath: sock, path: '/_ping', timeout: timeoutMs };
    } else {
      const u = new URL(host.replace(/^tcp:/, 'http:'));
      opts = { host: u.hostname, port: Number(u.port || 2375), path: '/_ping', timeout: timeoutMs };
    }
    const req = http.get(opts, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Installs Debian packages when running as root on Debian; otherwise explains what to install. */
export function ensureDebianPackages(pkgs: Array<{ pkg: string; provides: string }>): void {
  const missing = pkgs.filter((p) => !have(p.provides) && !fs.existsSync(p.provides));
  if (missing.length === 0) return;
  const names = missing.map((m) => m.pkg).join(' ');
  if (!isRoot() || !fs.existsSync('/etc/debian_version')) {
    throw new Error(
      `missing ${missing.map((m) => m.provides).join(', ')}: install the Debian/Ubuntu packages "${names}" ` +
        `(or Docker Engine and a static busybox for your system), then run this again.`,
    );
  }
  process.stderr.write(`engine: installing ${names} with apt-get…\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // apt's output goes to stderr: stdout carries only the one result line that scripts/setup.sh reads.
  const upd = spawnSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 2, 2], env });
  if (upd.status !== 0) throw new Error('apt-get update failed');
  const inst = spawnSync('apt-get', ['install', '-y', '-qq', ...missing.map((m) => m.pkg)], { stdio: ['ignore', 2, 2], env });
  if (inst.status !== 0) throw new Error(`apt-get install ${names} failed`);
}

/** Returns a DOCKER_HOST that answers, starting a private dockerd when none does. */
export async function ensureEngine(): Promise<string> {
  const candidates = [process.env.DOCKER_HOST, 'unix:///var/run/docker.sock', `unix://${PRIVATE_SOCKET}`].filter(
    (h): h is string => !!h,
  );
  for (const host of candidates) if (await ping(host)) return host;

  ensureDebianPackages([{ pkg: 'docker.io', provides: 'dockerd' }]);
  if (!isRoot()) throw new Error('starting a private dockerd needs root; start Docker yourself and set DOCKER_HOST');

  fs.mkdirSync(ENGINE_DIR, { recursive: true });
  const pidFile = path.join(ENGINE_DIR, 'docker.pid');
  const host = `unix://${PRIVATE_SOCKET}`;
  // A private dockerd that is still alive but not answering yet is starting up (it may be cleaning up
  // after a crash): wait for it rather than start a second one on the same directories.
  const running = livePid(pidFile);
  if (running !== undefined) {
    if (await waitForPing(host, 180_000, () => livePid(pidFile) !== undefined)) return host;
    if (livePid(pidFile) !== undefined) throw new Error(`private dockerd (pid ${running}) is running but did not answer on ${PRIVATE_SOCKET} within 180 s; see ${path.join(ENGINE_DIR, 'dockerd.log')}`);
  }
  fs.rmSync(pidFile, { force: true });
  clearStaleRuntimeState();
  fs.rmSync(PRIVATE_SOCKET, { force: true });

  for (let attempt = 1; attempt <= 2; attempt++) {
    const child = startDockerd(pidFile);
    if (await waitForPing(host, 120_000, () => child.exitCode === null)) return host;
    const tail = fs.readFileSync(path.join(ENGINE_DIR, 'dockerd.log'), 'utf8').split('\n').slice(-15).join('\n');
    // containerd gives up when it spends too long reaping what a killed engine left; the reaping it
    // finished stays done, so one more start gets further.
    if (attempt === 1 && child.exitCode !== null && /timeout waiting for containerd/.test(tail)) {
      process.stderr.write('engine: containerd timed out cleaning up after a killed engine; starting it once more\n');
      clearStaleRuntimeState();
      continue;
    }
    if (child.exitCode === null) child.kill('SIGTERM');
    throw new Error(`private dockerd did not answer on ${PRIVATE_SOCKET} within 120 s. Last log lines:\n${tail}`);
  }
  throw new Error('unreachable');
}

function livePid(pidFile: string): number | undefined {
  if (!fs.existsSync(pidFile)) return undefined;
  const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  if (!(pid > 0)) return undefined;
  try {
    process.kill(pid, 0);
  } catch {
    return undefined;
  }
  // A recycled pid that is not a dockerd does not count.
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('dockerd') ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function waitForPing(host: string, ms: number, stillWorthWaiting: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await ping(host)) return true;
    if (!stillWorthWaiting()) return await ping(host);
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

function startDockerd(pidFile: string) {
  const log = fs.openSync(path.join(ENGINE_DIR, 'dockerd.log'), 'a');
  const child = spawn(
    'dockerd',
    [
      '--host',
      `unix://${PRIVATE_SOCKET}`,
      '--data-root',
      path.join(ENGINE_DIR, 'data'),
      '--exec-root',
      path.join(ENGINE_DIR, 'exec'),
      '--pidfile',
      pidFile,
      // Small subnets so a project with many link networks does not run out of address pools.
      '--default-address-pool',
      'base=10.213.0.0/16,size=24',
    ],
    { detached: true, stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  child.unref();
  return child;
}

/**
 * Removes what a killed private engine leaves behind, so the next one starts in seconds: orphaned
 * containerd and shim processes of our directories, their mounts, the exec root (runtime state, like
 * /run/docker) and containerd's task bundles. Without it, containerd reaps every dead shim one by one
 * on start (thousands after a large bench) and dockerd gives up waiting for it. Only called when no
 * dockerd of ours is alive; containers themselves (data/containers) are kept.
 */
function clearStaleRuntimeState(): void {
  const execRoot = path.join(ENGINE_DIR, 'exec');
  const tasks = path.join(ENGINE_DIR, 'data', 'containerd', 'daemon', 'io.containerd.runtime.v2.task');
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline = '';
    try {
      cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (/containerd/.test(cmdline) && (cmdline.includes(execRoot) || cmdline.includes(tasks) || cmdline.includes(ENGINE_DIR))) {
      try {
        process.kill(Number(entry), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  // Unmount deepest first; a recursive delete must never walk into a container's mounted root.
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && (m.startsWith(execRoot + '/') || m.startsWith(tasks + '/')))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  const stillMounted = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => {
      const m = l.split(' ')[4];
      return !!m && (m.startsWith(execRoot + '/') || m.startsWith(tasks + '/'));
    });
  if (stillMounted) return;
  fs.rmSync(execRoot, { recursive: true, force: true });
  fs.rmSync(tasks, { recursive: true, force: true });
}

function dockerCli(host: string, args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('docker', args, { env: { ...process.env, DOCKER_HOST: host }, encoding: 'utf8', input });
  return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Finds a statically linked busybox binary. */
export function busyboxPath(): string {
  for (const p of ['/bin/busybox', '/usr/bin/busybox']) {
    if (fs.existsSync(p)) {
      const out = spawnSync('file', ['-L', p], { encoding: 'utf8' }).stdout ?? '';
      if (!out || /statically linked|static-pie/.test(out)) return p;
    }
  }
  ensureDebianPackages([{ pkg: 'busybox-static', provides: '/bin/busybox' }]);
  return '/bin/busybox';
}

/**
 * Builds a busybox image: `FROM scratch`, the binary, its applets, and an index page.
 * `variant` goes into a label and the page so two versions have different image IDs.
 */
export async function buildBusyboxImage(host: string, tag: string, variant = 'base', opts: { payloadBytes?: number } = {}): Promise<void> {
  const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-img-'));
  try {
    fs.copyFileSync(busyboxPath(), path.join(ctx, 'busybox'));
    fs.mkdirSync(path.join(ctx, 'www'));
    fs.writeFileSync(path.join(ctx, 'www', 'index.html'), `waffle ${variant}\n`);
    // Incompressible bytes, so a pull of this image downloads a layer big enough to report progress.
    if (opts.payloadBytes) fs.writeFileSync(path.join(ctx, 'www', 'payload.bin'), randomBytes(opts.payloadBytes));
    fs.writeFileSync(
      path.join(ctx, 'Dockerfile'),
      [
        'FROM scratch',
        'COPY busybox /bin/busybox',
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
        'RUN ["/bin/busybox", "sh", "-c", "mkdir -p /tmp /usr/bin /etc && chmod 1777 /tmp && ln -s /bin/env /usr/bin/env && echo root:x:0:0:root:/root:/bin/sh > /etc/passwd && echo nobody:x:65534:65534:nobody:/:/bin/sh >> /etc/passwd && echo root:x:0: > /etc/group && echo nogroup:x:65534: >> /etc/group"]',
        'COPY www /www',
        `LABEL dev.wafflemaker.test-variant="${variant}"`,
        'ENV PATH=/bin:/usr/bin',
        'CMD ["/bin/sh"]',
        '',
      ].join('\n'),
    );
    const r = spawnSync('docker', ['build', '-q', '-t', tag, ctx], {
      env: { ...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: '0' },
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`docker build ${tag} failed: ${r.stderr || r.stdout}`);
  } finally {
    fs.rmSync(ctx, { recursive: true, force: true });
  }
}

/** Builds each missing test image. */
export async function ensureTestImages(host: string, images: Record<string, string> = TEST_IMAGES): Promise<void> {
  for (const [key, tag] of Object.entries(images)) {
    if (dockerCli(host, ['image', 'inspect', tag]).status === 0) continue;
    const variant = tag.endsWith(':2') ? 'v2' : tag.endsWith(':1') ? 'v1' : key;
    await buildBusyboxImage(host, tag, variant);
  }
}

/** Debian packages the test suite uses besides the engine: the real peers it talks to. */
export const TEST_TOOLS = [
  { pkg: 'docker.io', provides: 'dockerd' },
  { pkg: 'busybox-static', provides: '/bin/busybox' },
  { pkg: 'docker-compose', provides: 'docker-compose' },
  { pkg: 'docker-registry', provides: 'docker-registry' },
  // htpasswd files (bcrypt) for the registry's basic auth
  { pkg: 'apache2-utils', provides: 'htpasswd' },
  { pkg: 'tmux', provides: 'tmux' },
  // a real browser for the agent page's test, driven by playwright-core (no browser download)
  { pkg: 'chromium', provides: '/usr/bin/chromium' },
  // the reference age CLI: a second implementation that must decrypt what `waffle secrets` writes
  { pkg: 'age', provides: 'age' },
  // the reverse proxy routed services are deployed behind (tests start their own `caddy run` on free ports)
  { pkg: 'caddy', provides: 'caddy' },
];

/** The images of the demo repository (services/*.ts at the root). */
export const DEMO_IMAGES = {
  web: 'waffle-demo/web:1',
  api: 'waffle-demo/api:1',
  worker: 'waffle-demo/worker:1',
  cache: 'waffle-demo/cache:1',
};

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const wantDemo = process.argv.includes('--demo-images');
  try {
    if (process.argv.includes('--test-tools')) ensureDebianPackages(TEST_TOOLS);
    const host = await ensureEngine();
    await ensureTestImages(host);
    if (wantDemo) await ensureTestImages(host, DEMO_IMAGES);
    const line = `DOCKER_HOST=${host}\n`;
    const i = process.argv.indexOf('--out');
    if (i > 0) {
      const out = process.argv[i + 1];
      if (!out) throw new Error('--out needs a file name');
      fs.writeFileSync(out, line);
    } else process.stdout.write(line);
  } catch (err) {
    process.stderr.write(`engine: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
