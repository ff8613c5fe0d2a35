/** Shared test helpers: temporary repositories, the real CLI, and Docker snapshots by project label. */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type Dockerode from 'dockerode';

export const PKG_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const WAFFLE_BIN = path.join(PKG_ROOT, 'bin', 'waffle.js');

/** A project name no other run uses: tests never collide and leftovers never break the next run. */
export function uniqueProject(prefix = 't'): string {
  return `${prefix}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

/** Writes files into a new temporary directory; with `git`, commits them to a real repository. */
export function makeRepo(files: Record<string, string>, opts: { git?: boolean } = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-repo-'));
  writeFiles(dir, files);
  if (opts.git) {
    const run = (...args: string[]) => {
      const r = spawnSync('git', args, { cwd: dir, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
    };
    run('init', '-q', '-b', 'main');
    run('-c', 'user.email=t@example.com', '-c', 'user.name=t', 'add', '-A');
    run('-c', 'user.email=t@example.com', '-c', 'user.name=t', 'commit', '-q', '-m', 'initial');
  }
  return dir;
}

export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text);
  }
}

export function gitCommitAll(dir: string, message: string): void {
  for (const args of [['add', '-A'], ['commit', '-q', '-m', message]]) {
    const r = spawnSync('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  }
}

/** Copies the demo repository at the package root (waffle.config.ts + services/) with a new project name. */
export function copyDemoRepo(project: string, replacements: Array<[string | RegExp, string]> = []): string {
  const files: Record<string, string> = {};
  const add = (rel: string) => {
    let text = fs.readFileSync(path.join(PKG_ROOT, rel), 'utf8');
    for (const [from, to] of replacements) text = text.replace(from, to);
    files[rel] = text;
  };
  add('waffle.config.ts');
  for (const f of fs.readdirSync(path.join(PKG_ROOT, 'services'))) add(`services/${f}`);
  files['waffle.config.ts'] = files['waffle.config.ts'].replace(/project: '[^']+'/, `project: '${project}'`);
  return makeRepo(files, { git: true });
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI (`bin/waffle.js`, the built dist/) in `cwd`. */
export function waffle(args: string[], opts: { cwd: string; env?: Record<string, string>; input?: string; timeoutMs?: number }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WAFFLE_BIN, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, NO_COLOR: '1', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`waffle ${args.join(' ')} timed out\nstdout:${stdout}\nstderr:${stderr}`));
    }, opts.timeoutMs ?? 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

export async function dockerClient(): Promise<Dockerode> {
  const { default: Docker } = await import('dockerode');
  const host = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  return new Docker({ socketPath: host.replace(/^unix:\/\//, '') });
}

export interface Snapshot {
  containers: Array<{ id: string; name: string; state: string; image: string; labels: Record<string, string> }>;
  networks: string[];
  volumes: string[];
}

/** Everything in the engine that carries the project label, sorted. */
export async function snapshot(docker: Dockerode, project: string): Promise<Snapshot> {
  const filters = { label: [`dev.wafflemaker.project=${project}`] };
  const [containers, networks, volumes] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listNetworks({ filters }),
    docker.listVolumes({ filters }),
  ]);
  return {
    containers: containers
      .map((c) => ({ id: c.Id, name: c.Names[0].replace(/^\//, ''), state: c.State, image: c.Image, labels: c.Labels }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    networks: networks.map((n) => n.Name).sort(),
    volumes: (volumes.Volumes ?? []).map((v) => v.Name).sort(),
  };
}

/** Runs a command in a container; resolves with exit code and combined output. */
export async function execIn(docker: Dockerode, container: string, cmd: string[]): Promise<{ code: number; output: string }> {
  const exec = await docker.getContainer(container).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve) => {
    const sink = { write: (b: Buffer) => chunks.push(Buffer.from(b)) } as unknown as NodeJS.WritableStream;
    docker.modem.demuxStream(stream, sink, sink);
    stream.on('end', () => resolve());
    stream.on('close', () => resolve());
  });
  const info = await exec.inspect();
  return { code: info.ExitCode ?? -1, output: Buffer.concat(chunks).toString('utf8') };
}

/** Docker events (container, network, volume) about the project between two instants (seconds). */
export async function projectEvents(docker: Dockerode, project: string, since: number, until: number): Promise<Array<{ Type: string; Action: string; Actor: { ID: string } }>> {
  const stream = (await docker.getEvents({
    since,
    until,
    filters: { label: [`dev.wafflemaker.project=${project}`] },
  })) as unknown as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** Removes everything of a project from the engine (used in `after` hooks; never touches other labels). */
export async function cleanupProject(docker: Dockerode, project: string): Promise<void> {
  const snap = await snapshot(docker, project);
  await Promise.all(snap.containers.map((c) => docker.getContainer(c.id).remove({ force: true }).catch(() => {})));
  // Docker can still count an endpoint of a container it has just removed: retry a network a few times.
  await Promise.all(
    snap.networks.map(async (n) => {
      for (let attempt = 0; attempt < 10; attempt++) {
        try {
          await docker.getNetwork(n).remove();
          return;
        } catch (e) {
          if ((e as { statusCode?: number }).statusCode === 404) return;
          await new Promise((r) => setTimeout(r, 300));
        }
      }
    }),
  );
  await Promise.all(snap.volumes.map((v) => docker.getVolume(v).remove().catch(() => {})));
}

export async function httpGet(url: string, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}

/** Parses NDJSON, failing on any line that is not JSON. */
export function parseNdjson(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l, i) => {
      try {
        return JSON.parse(l);
      } catch {
        throw new Error(`line ${i + 1} is not JSON: ${l}`);
      }
    });
}

/** The plan in `waffle plan --json` output: the `plan-ready` event of its NDJSON stream (every line JSON). */
export function planFromJson(stdout: string): import('../runtime/model.ts').Plan {
  const ready = parseNdjson(stdout).find((e) => e.type === 'plan-ready');
  if (!ready) throw new Error(`no plan-ready event in:\n${stdout}`);
  return ready.plan as import('../runtime/model.ts').Plan;
}

/** Type-checks one file with the real TypeScript compiler, `wafflemaker` resolved to define/; returns the diagnostics. */
export async function typeDiagnostics(file: string): Promise<string[]> {
  const ts = (await import('typescript')).default;
  const program = ts.createProgram([file], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    allowImportingTsExtensions: true,
    skipLibCheck: true,
    types: [],
    paths: { wafflemaker: [path.join(PKG_ROOT, 'define/index.ts')] },
  });
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const pos = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    return `${pos ? `${pos.line + 1}:${pos.character + 1} ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}
