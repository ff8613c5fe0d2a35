/**
 * What the agent tests share: a real bare repository as the remote (commits pushed with git), the
 * real `waffle agent` process (bin/waffle.js) on a free port, and signed webhook deliveries.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, WAFFLE_BIN, writeFiles } from './helpers.ts';
import { TEST_IMAGES } from './engine.ts';

export const SECRET = `whsec-${randomBytes(12).toString('hex')}`;
export const TOKEN = `tok-${randomBytes(12).toString('hex')}`;
export const GITHUB_REPO = 'acme/infra';
export const GITHUB_TOKEN = `ghp_${randomBytes(10).toString('hex')}`;

export function git(cwd: string, ...args: string[]): string {
  const r = spawnSync('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** A bare repository (the remote) and a work tree that pushes to it. */
export interface Remote {
  bare: string;
  work: string;
  /** Writes files (null removes), commits, pushes `main` (or `branch`); returns the full commit id. */
  commit(files: Record<string, string | null>, message?: string, branch?: string): string;
}

export function makeRemote(root: string, files: Record<string, string>): Remote {
  const bare = path.join(root, 'remote.git');
  const work = path.join(root, 'work');
  fs.mkdirSync(work, { recursive: true });
  git(root, 'init', '-q', '--bare', '-b', 'main', bare);
  git(work, 'init', '-q', '-b', 'main');
  git(work, 'remote', 'add', 'origin', bare);
  const remote: Remote = {
    bare,
    work,
    commit(change, message = 'change', branch = 'main') {
      for (const [rel, text] of Object.entries(change)) {
        if (text === null) fs.rmSync(path.join(work, rel), { force: true });
        else writeFiles(work, { [rel]: text });
      }
      git(work, 'add', '-A');
      git(work, 'commit', '-q', '--allow-empty', '-m', message);
      git(work, 'push', '-q', 'origin', `HEAD:refs/heads/${branch}`);
      return git(work, 'rev-parse', 'HEAD');
    },
  };
  remote.commit(files, 'initial');
  return remote;
}

export const config = (project: string) => `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`;

/** A busybox httpd service answering on 8080; `version` picks waffle-test/app:<version>. */
export function webService(version: 1 | 2, extra = ''): string {
  return `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${version === 1 ? TEST_IMAGES.appV1 : TEST_IMAGES.appV2}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  healthcheck: { http: '/index.html', interval: '300ms', timeout: '3s', retries: 10 },
  stopGracePeriod: '1s',${extra}
});
`;
}

export interface RunningAgent {
  url: string;
  proc: ChildProcess;
  log: () => string;
  /** JSON log lines so far. */
  lines: () => Array<Record<string, unknown>>;
  api<T = any>(method: string, route: string, body?: unknown, token?: string | null): Promise<{ status: number; json: T }>;
  /** SIGTERM, then waits for the exit (SIGKILL after `ms`). */
  stop(ms?: number): Promise<number | null>;
  kill9(): Promise<void>;
}

export interface AgentSetup {
  root: string;
  repo: string;
  stateDir: string;
  args?: string[];
  env?: Record<string, string>;
  /** Port to listen on (chosen before the agent starts, e.g. for a registry's notification URL); default a free one. */
  port?: number;
}

/** Files for the agent's secrets, 0600 under `root`. */
export function secretFiles(root: string): { secretFile: string; tokenFile: string; githubTokenFile: string } {
  const w = (name: string, text: string) => {
    const p = path.join(root, name);
    fs.writeFileSync(p, text + '\n', { mode: 0o600 });
    return p;
  };
  return { secretFile: w('webhook-secret', SECRET), tokenFile: w('token', TOKEN), githubTokenFile: w('github-token', GITHUB_TOKEN) };
}

/** Starts `waffle agent` on a free port and waits until it answers /healthz. */
export async function startAgent(s: AgentSetup): Promise<RunningAgent> {
  const port = s.port ?? (await freePort());
  const { secretFile, tokenFile } = secretFiles(s.root);
  const child = spawn(
    process.execPath,
    [WAFFLE_BIN, 'agent', '--repo', s.repo, '--github-repo', GITHUB_REPO, '--listen', `127.0.0.1:${port}`, '--state-dir', s.stateDir,
      '--webhook-secret-file', secretFile, '--token-file', tokenFile, '--poll', '0', '--log-format', 'json', ...(s.args ?? [])],
    { cwd: s.root, env: { ...process.env, NO_COLOR: '1', ...s.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  // WAFFLE_TEST_AGENT_LOG=<dir>: each agent's log is kept there (to read after a failure).
  const keep = process.env.WAFFLE_TEST_AGENT_LOG;
  if (keep) child.on('exit', () => fs.writeFileSync(path.join(keep, `agent-${port}.log`), out));
  const url = `http://127.0.0.1:${port}`;
  const agent: RunningAgent = {
    url,
    proc: child,
    log: () => out,
    lines: () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)),
    async api(method, route, body, token = TOKEN) {
      const res = await fetch(url + route, {
        method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(20_000),
      });
      const text = await res.text();
      return { status: res.status, json: text ? JSON.parse(text) : undefined };
    },
    async stop(ms = 60_000) {
      if (child.exitCode !== null || child.signalCode) return child.exitCode;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), ms);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    async kill9() {
      if (child.exitCode !== null || child.signalCode) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
  const end = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the agent exited (${child.exitCode}):\n${out}`);
    try {
      const r = await fetch(url + '/healthz', { signal: AbortSignal.timeout(1000) });
      if (r.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > end) throw new Error(`the agent did not answer /healthz:\n${out}`);
    await sleep(100);
  }
  return agent;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `fn` returns a truthy value (checked every 150 ms); throws with `what` after `ms`. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(150);
  }
}

export interface Delivery {
  event?: string;
  body: string | Buffer;
  id?: string;
  signature?: string | null;
  contentType?: string;
}

/** POSTs a webhook delivery signed with the secret (unless `signature` says otherwise). */
export async function deliver(url: string, d: Delivery): Promise<{ status: number; json: any }> {
  const body = typeof d.body === 'string' ? Buffer.from(d.body) : d.body;
  const signature = d.signature === undefined ? 'sha256=' + createHmac('sha256', SECRET).update(body).digest('hex') : d.signature;
  const res = await fetch(url + '/hooks/github', {
    method: 'POST',
    headers: {
      'content-type': d.contentType ?? 'application/json',
      'x-github-event': d.event ?? 'push',
      'x-github-delivery': d.id ?? randomBytes(8).toString('hex'),
      ...(signature ? { 'x-hub-signature-256': signature } : {}),
    },
    body: new Uint8Array(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json };
}

/** A GitHub push payload (the fields the agent reads, as GitHub sends them). */
export function pushPayload(commit: string, opts: { ref?: string; repo?: string; deleted?: boolean } = {}): string {
  return JSON.stringify({
    ref: opts.ref ?? 'refs/heads/main',
    before: '0'.repeat(40),
    after: commit,
    deleted: !!opts.deleted,
    repository: { full_name: opts.repo ?? GITHUB_REPO, name: (opts.repo ?? GITHUB_REPO).split('/')[1] },
    pusher: { name: 't' },
  });
}

export function tempRoot(prefix: string): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(root, 0o755);
  return root;
}

/** The project's containers without those kept for rollback (stopped, named `<project>-<service>-kept-<generation>`). */
export function live<T extends { name: string }>(containers: T[]): T[] {
  return containers.filter((c) => !/-kept-\d+$/.test(c.name));
}
