/**
 * The real image registry from Debian's `docker-registry` package (distribution 2.8), on 127.0.0.1 with
 * its own storage directory, for pulls in tests. dockerd trusts 127.0.0.0/8 as an insecure registry.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDebianPackages } from './engine.ts';
import { freePort } from './helpers.ts';

export interface Registry {
  /** `127.0.0.1:PORT`, the prefix of image references. */
  host: string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** Push notifications: the registry's `notifications.endpoints` entry (url and headers it sends). */
  notify?: { url: string; headers?: Record<string, string> };
  /** HTTP basic auth: this user and password only (an htpasswd file with a bcrypt hash). */
  auth?: { username: string; password: string };
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  ensureDebianPackages([{ pkg: 'docker-registry', provides: 'docker-registry' }]);
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-registry-'));
  const config = path.join(dir, 'config.yml');
  let htpasswd: string | undefined;
  if (opts.auth) {
    ensureDebianPackages([{ pkg: 'apache2-utils', provides: 'htpasswd' }]);
    const r = spawnSync('htpasswd', ['-Bbn', opts.auth.username, opts.auth.password], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`htpasswd failed: ${r.stderr}`);
    htpasswd = path.join(dir, 'htpasswd');
    fs.writeFileSync(htpasswd, r.stdout);
  }
  fs.writeFileSync(
    config,
    [
      'version: 0.1',
      'log: { level: warn }',
      'storage:',
      `  filesystem: { rootdirectory: ${path.join(dir, 'data')} }`,
      '  delete: { enabled: true }',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...(htpasswd ? ['auth:', '  htpasswd:', '    realm: waffle-test', `    path: ${htpasswd}`] : []),
      ...(opts.notify
        ? [
            'notifications:',
            '  endpoints:',
            '    - name: waffle',
            `      url: ${opts.notify.url}`,
            ...(opts.notify.headers
              ? ['      headers:', ...Object.entries(opts.notify.headers).map(([k, v]) => `        ${k}: [${JSON.stringify(v)}]`)]
              : []),
            '      timeout: 2s',
            '      threshold: 3',
            '      backoff: 1s',
            '      ignoredmediatypes: [application/octet-stream]',
          ]
        : []),
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr += d));
  const host = `127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1000) });
      // With auth on, an anonymous request is answered 401: up all the same.
      if (res.status === 200 || (opts.auth && res.status === 401)) break;
    } catch {
      /* not up yet */
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`docker-registry did not start on ${host}: ${stderr.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Tags a local image into the registry and pushes it (the real `docker push`). */
export function pushImage(dockerHost: string, local: string, remote: string): void {
  const env = { ...process.env, DOCKER_HOST: dockerHost };
  for (const args of [['tag', local, remote], ['push', remote]]) {
    const r = spawnSync('docker', args, { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr || r.stdout}`);
  }
}

/** Removes a local image reference (the registry keeps it). */
export function removeLocalImage(dockerHost: string, ref: string): void {
  spawnSync('docker', ['rmi', ref], { env: { ...process.env, DOCKER_HOST: dockerHost }, encoding: 'utf8' });
}
