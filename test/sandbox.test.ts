/**
 * Hostile service files against the real loader: each is refused with a problem naming it, and leaves
 * no file, process or leaked value behind. Real parts throughout: the Docker socket of the test engine,
 * /proc for processes, a TCP server on 127.0.0.1, the files these tests create.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadRepo, type LoadOptions } from '../runtime/load/load.ts';
import { ProblemsError } from '../runtime/problems.ts';
import type { Problem } from '../runtime/model.ts';

const made: string[] = [];
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

const isRoot = process.getuid?.() === 0;
const CONFIG = `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 'demo' });\n`;
const SVC = (body: string, def = `{ image: 'a' }`) => `import { defineService } from 'wafflemaker';\n${body}\nexport default defineService(${def});\n`;

/** A repository in a temp dir, readable by others like a checkout under the usual umask. */
function repo(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'waffle-sandbox-'));
  chmodSync(root, 0o755);
  made.push(root);
  for (const [rel, text] of Object.entries({ 'waffle.config.ts': CONFIG, ...files })) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  }
  return root;
}

async function problemsOf(root: string, opts?: LoadOptions): Promise<Problem[]> {
  try {
    await loadRepo(root, opts);
  } catch (err) {
    assert.ok(err instanceof ProblemsError, `expected ProblemsError, got ${String(err)}`);
    return err.problems;
  }
  assert.fail('loadRepo should have failed');
}

/** The one problem of a refused file: it names the file and service. */
function refused(problems: Problem[], file: string): Problem {
  assert.equal(problems.length, 1, problems.map((p) => p.message).join('\n'));
  const p = problems[0]!;
  assert.equal(p.file, file);
  assert.equal(p.service, path.basename(file, '.ts'));
  assert.ok(p.fix && p.fix.length > 20, 'a fix is given');
  return p;
}

/** Processes whose command line contains `needle` and that still run (a zombie is dead). */
function running(needle: string): number[] {
  const found: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes(needle) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${d}/stat`, 'utf8'))) found.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Every descendant of `pid` (from /proc/<pid>/task/<pid>/children). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    let kids: number[] = [];
    try {
      kids = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      /* gone */
    }
    for (const k of kids) {
      out.push(k);
      walk(k);
    }
  };
  walk(pid);
  return out;
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return cond();
}

// ───────────────────────────── files ─────────────────────────────

test('(1) a service file that writes outside the repository is refused; nothing is written', async () => {
  const target = path.join(os.tmpdir(), `waffle-escape-${randomBytes(4).toString('hex')}`);
  const root = repo({
    'services/ok.ts': SVC(''),
    'services/writer.ts': SVC(`import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(target)}, 'owned');`),
  });
  const p = refused(await problemsOf(root), 'services/writer.ts');
  assert.match(p.message, /tried to write a file/);
  assert.equal(p.where, '3:1');
  assert.match(p.fix!, /evaluation\.env/);
  assert.ok(!existsSync(target), `${target} was written`);
  // Nothing inside the repository either (the loader writes nothing of its own now).
  assert.ok(!existsSync(path.join(root, '.waffle')), '.waffle/ was created');
});

test('(5) process.getBuiltinModule, dynamic import and createRequire do not get around it', async () => {
  const target = path.join(os.tmpdir(), `waffle-escape-${randomBytes(4).toString('hex')}`);
  const cases: Record<string, string> = {
    'services/builtin.ts': `(process as any).getBuiltinModule('fs').writeFileSync(${JSON.stringify(target)}, 'owned');`,
    'services/dynamic.ts': `const m = 'node:' + 'fs';\nconst fs = await import(m);\nfs.appendFileSync(${JSON.stringify(target)}, 'owned');`,
    'services/required.ts': `import { createRequire } from 'node:module';\nconst req = createRequire('/');\nreq('fs').writeFileSync(${JSON.stringify(target)}, 'owned');`,
  };
  for (const [file, body] of Object.entries(cases)) {
    const p = refused(await problemsOf(repo({ [file]: SVC(body) })), file);
    assert.match(p.message, /tried to write a file|ERR_ACCESS_DENIED|restricted/, `${file}: ${p.message}`);
    assert.ok(!existsSync(target), `${file} wrote ${target}`);
  }
});

// ───────────────────────────── processes ─────────────────────────────

test('(2) detached processes and execSync are refused; no such process exists afterwards', async () => {
  const mark = String(3000 + (process.pid % 900)); // a sleep duration nothing else on this host uses
  const cases: Record<string, string> = {
    'services/detach.ts': `import { spawn } from 'node:child_process';\nspawn('sleep', ['${mark}'], { detached: true, stdio: 'ignore' }).unref();`,
    'services/shell.ts': `import { execSync } from 'node:child_process';\nexecSync('sleep ${mark}.5 &');`,
  };
  for (const [file, body] of Object.entries(cases)) {
    const p = refused(await problemsOf(repo({ [file]: SVC(body) })), file);
    assert.match(p.message, /tried to start a process/, p.message);
    assert.equal(p.where, '3:1');
  }
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(running(`sleep ${mark}`), [], 'a sleep started by a service file is running');
});

test('(7) kill -9 of the loader mid-evaluation: the evaluation process dies too; the next load leaves .waffle/tmp empty', async () => {
  const root = repo({ 'services/spin.ts': SVC('while (true) {}') });
  const script = path.join(root, 'run.mts');
  const loader = new URL('../runtime/load/load.ts', import.meta.url).href;
  writeFileSync(script, `import { loadRepo } from ${JSON.stringify(loader)};\nawait loadRepo(${JSON.stringify(root)}, { timeoutMs: 60000 });\n`);
  const proc = spawn(process.execPath, ['--import', 'tsx', script], { cwd: process.cwd(), stdio: 'ignore' });
  // The evaluation process is the node started with `--input-type=module -e` below the loader.
  const isEval = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--experimental-permission');
    } catch {
      return false;
    }
  };
  let tree: number[] = [];
  assert.ok(
    await until(() => {
      tree = descendants(proc.pid!);
      return tree.some(isEval);
    }, 20000),
    'the evaluation process never started',
  );
  await new Promise((r) => setTimeout(r, 500)); // inside the endless loop by now
  tree = descendants(proc.pid!);
  // What a loader of an earlier version killed at this point left behind: its bundles.
  const tmp = path.join(root, '.waffle', 'tmp');
  mkdirSync(tmp, { recursive: true });
  writeFileSync(path.join(tmp, `mbx1-${proc.pid}-0a1b2c3d-config.mjs`), 'export default {}');
  writeFileSync(path.join(tmp, `mbx1-${proc.pid}-0a1b2c3d-services.mjs`), 'export const loaders = []');
  const exited = new Promise((r) => proc.on('exit', r));
  proc.kill('SIGKILL');
  await exited;
  assert.ok(await until(() => !tree.some(alive), 3000), `left running: ${tree.filter(alive).join(', ')}`);

  writeFileSync(path.join(root, 'services/spin.ts'), SVC(''));
  await loadRepo(root);
  assert.deepEqual(existsSync(tmp) ? readdirSync(tmp) : [], []);
});

// ───────────────────────────── network ─────────────────────────────

/** Unix sockets of Docker engines on this host: the test engine's, and the system one if present. */
function dockerSockets(): string[] {
  const found = new Set<string>();
  const host = process.env.DOCKER_HOST;
  if (host?.startsWith('unix://')) found.add(host.slice('unix://'.length));
  if (existsSync('/var/run/docker.sock')) found.add('/var/run/docker.sock');
  return [...found];
}

/** What the socket answers to `GET /_ping` (from this process: proves the socket is live). */
function ping(sock: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(sock);
    let d = '';
    s.on('connect', () => s.write('GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n'));
    s.on('data', (x) => (d += x));
    s.on('end', () => resolve(d));
    s.on('error', reject);
  });
}

test('(3) the Docker socket is unreachable from a service file', { skip: !isRoot && 'runs as nobody only when waffle is root' }, async () => {
  const sockets = dockerSockets();
  assert.ok(sockets.length > 0, 'no Docker socket to test against (set DOCKER_HOST)');
  for (const sock of sockets) {
    assert.match(await ping(sock), /200 OK/, `${sock} does not answer this test`);
    const file = 'services/docker.ts';
    const body = `import net from 'node:net';
const list = await new Promise<string>((resolve, reject) => {
  const s = net.connect(${JSON.stringify(sock)});
  let d = '';
  s.on('connect', () => s.write('GET /containers/json?all=1 HTTP/1.0\\r\\nHost: docker\\r\\n\\r\\n'));
  s.on('data', (x) => (d += x));
  s.on('end', () => resolve(d));
  s.on('error', reject);
});`;
    const p = refused(await problemsOf(repo({ [file]: SVC(body, `{ image: 'a', labels: { stolen: list.slice(0, 2000) } }`) })), file);
    assert.match(p.message, /refused access \(EACCES\)/, p.message);
    assert.match(p.message, new RegExp(sock.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
  }
});

test('(3b) TCP on 127.0.0.1 is unreachable: the evaluation has no network', { skip: !isRoot && 'needs root for a network namespace' }, async () => {
  let connections = 0;
  const server = net.createServer((c) => {
    connections++;
    c.end('HTTP/1.0 200 OK\r\n\r\nsecret-inventory');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const file = 'services/tcp.ts';
    const body = `const r = await fetch('http://127.0.0.1:${port}/');\nconst inventory = await r.text();`;
    const p = refused(await problemsOf(repo({ [file]: SVC(body, `{ image: 'a', labels: { inventory } }`) })), file);
    assert.match(p.message, /network/, p.message);
    assert.equal(connections, 0, 'the service file reached the server');
  } finally {
    server.close();
  }
});

// ───────────────────────────── environment ─────────────────────────────

test("(4) the deployer's tokens and identity never reach a service file, its result or the messages", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'waffle-identity-'));
  made.push(dir);
  const canaryKey = `AGE-SECRET-KEY-1${randomBytes(20).toString('hex').toUpperCase()}`;
  const identity = path.join(dir, 'age.key');
  writeFileSync(identity, `# created: now\n${canaryKey}\n`, { mode: 0o600 });
  const canaryToken = `hvs.${randomBytes(16).toString('hex')}`;
  const env = { VAULT_TOKEN: canaryToken, WAFFLE_AGE_IDENTITY_FILE: identity, DOCKER_HOST: 'unix:///secret/docker.sock', STAGE: 'prod', PATH: '/usr/bin' };
  const warnings: string[] = [];
  const leaks = (text: string) => [canaryToken, identity, canaryKey, 'secret/docker.sock'].filter((v) => text.includes(v));

  // Copying what it can see into a label and an env var: it sees nothing.
  const root = repo({
    'services/copy.ts': SVC(
      '',
      `{ image: 'a', labels: { t: String(process.env.VAULT_TOKEN), i: String(process.env.WAFFLE_AGE_IDENTITY_FILE), d: String(process.env.DOCKER_HOST), keys: Object.keys(process.env).join(',') }, env: { TOKEN: String(process.env.VAULT_TOKEN) } }`,
    ),
  });
  const loaded = await loadRepo(root, { env, onWarning: (w) => warnings.push(w) });
  assert.deepEqual(loaded.services[0]!.data.labels, { t: 'undefined', i: 'undefined', d: 'undefined', keys: '' });
  assert.deepEqual(leaks(JSON.stringify(loaded)), []);

  // Reading the identity where it usually lives (a hostile file need not ask the environment).
  const reader = repo({ 'services/steal.ts': SVC(`import { readFileSync } from 'node:fs';\nconst key = readFileSync(${JSON.stringify(identity)}, 'utf8');`, `{ image: 'a', labels: { key } }`) });
  const problems = await problemsOf(reader, { env, onWarning: (w) => warnings.push(w) });
  const p = refused(problems, 'services/steal.ts');
  assert.match(p.message, /tried to read a file|refused access/, p.message);
  // (The path is in the hostile file itself; the key and the token must not be anywhere.)
  const shown = JSON.stringify(problems) + new ProblemsError(problems).message + warnings.join('\n');
  assert.deepEqual(leaks(shown).filter((v) => v !== identity), []);
});

test('(4b) allow-listing a credential is refused with a message naming the config; only the operator can force it', async () => {
  const config = (names: string[]) =>
    `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 'demo', evaluation: { env: ${JSON.stringify(names)} } });\n`;
  const root = repo({ 'waffle.config.ts': config(['STAGE', 'VAULT_TOKEN', 'DEPLOY_KEY']), 'services/a.ts': SVC('', `{ image: 'a', labels: { t: String(process.env.VAULT_TOKEN) } }`) });
  const env = { VAULT_TOKEN: 'hvs.forced-canary', DEPLOY_KEY: 'k', STAGE: 'prod' };
  const problems = await problemsOf(root, { env });
  assert.deepEqual(
    problems.map((p) => [p.file, p.where]),
    [
      ['waffle.config.ts', 'evaluation.env[1]'],
      ['waffle.config.ts', 'evaluation.env[2]'],
    ],
  );
  assert.match(problems[0]!.message, /VAULT_TOKEN .*Vault/);
  assert.match(problems[0]!.fix!, /waffle --allow-env VAULT_TOKEN/);
  assert.match(problems[1]!.message, /DEPLOY_KEY looks like a credential/);
  assert.ok(!JSON.stringify(problems).includes('hvs.forced-canary'));

  const forced = await loadRepo(root, { env, allowEnv: ['VAULT_TOKEN', 'DEPLOY_KEY'] });
  assert.equal(forced.services[0]!.data.labels && (forced.services[0]!.data.labels as Record<string, string>).t, 'hvs.forced-canary');

  // What changes how node starts cannot be forced at all.
  const nodeOpts = repo({ 'waffle.config.ts': config(['NODE_OPTIONS']) });
  const [q] = await problemsOf(nodeOpts, { env: { NODE_OPTIONS: '--allow-child-process' }, allowEnv: ['NODE_OPTIONS'] });
  assert.equal(q!.file, 'waffle.config.ts');
  assert.match(q!.message, /NODE_OPTIONS changes how the evaluation process starts/);
  assert.doesNotMatch(q!.fix!, /allowEnv/);
});

test('the operator allows a credential-like name with --allow-env on the command line, never the repository', () => {
  const root = repo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 'demo', evaluation: { env: ['DEPLOY_KEY'] } });\n`,
    'services/a.ts': SVC('', `{ image: 'a', labels: { seen: String(process.env.DEPLOY_KEY !== undefined) } }`),
  });
  const bin = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'bin', 'waffle.js');
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [bin, 'check', '--no-types', '--no-secrets', '--json', '-C', root, ...args], {
      encoding: 'utf8',
      env: { ...process.env, DEPLOY_KEY: 'k-canary' },
    });
  const refused = run();
  assert.equal(refused.status, 1, refused.stderr);
  assert.match(refused.stdout + refused.stderr, /--allow-env DEPLOY_KEY/);
  const allowed = run('--allow-env', 'DEPLOY_KEY');
  assert.equal(allowed.status, 0, allowed.stderr);
  assert.equal(JSON.parse(allowed.stdout).services.a.labels.seen, 'true');
});

test('an allow-listed variable reaches the config and the service files; nothing else does', async () => {
  const root = repo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';
export default defineConfig({ project: process.env.STAGE === 'prod' ? 'shop' : 'shop-dev', evaluation: { env: ['STAGE', 'DOMAIN', 'UNSET'] } });
`,
    'services/web.ts': SVC('', `{ image: 'a', env: { STAGE: process.env.STAGE ?? 'none', URL: \`https://\${process.env.DOMAIN}/\` }, labels: { seen: Object.keys(process.env).sort().join(',') } }`),
  });
  const env = { STAGE: 'prod', DOMAIN: 'shop.example', HOME: '/root', PATH: '/usr/bin', VAULT_TOKEN: 'hvs.x' };
  const loaded = await loadRepo(root, { env });
  assert.equal(loaded.config.project, 'shop');
  assert.deepEqual(loaded.services[0]!.data.env, { STAGE: 'prod', URL: 'https://shop.example/' });
  assert.deepEqual(loaded.services[0]!.data.labels, { seen: 'DOMAIN,STAGE' });

  // No env option: nothing reaches it (the loader never falls back to process.env).
  const bare = await loadRepo(root);
  assert.equal(bare.config.project, 'shop-dev');
  assert.deepEqual(bare.services[0]!.data.env, { STAGE: 'none', URL: 'https://undefined/' });
});

test('a config whose evaluation settings depend on the environment is refused', async () => {
  const root = repo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';
export default defineConfig({ project: 'p', evaluation: { env: process.env.STAGE ? ['STAGE', 'REGION'] : ['STAGE'] } });
`,
  });
  const [p] = await problemsOf(root, { env: { STAGE: 'prod' } });
  assert.equal(p!.file, 'waffle.config.ts');
  assert.equal(p!.where, 'evaluation');
  assert.match(p!.message, /must not depend on the environment/);
});

// ───────────────────────────── memory ─────────────────────────────

test('(6) a growing array is stopped by the memory cap, fast, naming the file', async () => {
  const growers: Record<string, string> = {
    numbers: 'const a: number[] = [];\nfor (let i = 0; ; i++) a.push(i * 1.5);',
    strings: "const a: string[] = [];\nfor (let i = 0; ; i++) a.push('x'.repeat(64) + i);",
  };
  for (const [kind, body] of Object.entries(growers)) {
    const root = repo({ 'services/a.ts': SVC(''), 'services/hog.ts': SVC(body) });
    const t0 = Date.now();
    // A time limit far above: what stops it must be the memory cap.
    const [p] = await problemsOf(root, { timeoutMs: 60000 });
    const ms = Date.now() - t0;
    console.log(`# growing array of ${kind} (default cap 256 MiB) stopped after ${ms} ms`);
    assert.equal(p!.file, 'services/hog.ts');
    assert.equal(p!.service, 'hog');
    assert.match(p!.message, /more memory than evaluation allows \(256 MiB heap\).*services\/hog\.ts/);
    assert.match(p!.fix!, /evaluation\.memoryMb in waffle\.config\.ts/);
    // About a second on a quiet machine; the bound (half the time limit) leaves room for a host
    // loaded many times over, while the message says it was the memory cap, not the time limit.
    assert.ok(ms < 30000, `${kind}: took ${ms} ms`);
  }
});

test('(6b) off-heap buffers and evaluation.memoryMb: the configured cap applies', async () => {
  const root = repo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 'p', evaluation: { memoryMb: 64 } });\n`,
    'services/buffers.ts': SVC(`const a: Buffer[] = [];\nfor (;;) a.push(Buffer.alloc(1 << 20, 1));`),
  });
  const t0 = Date.now();
  const [p] = await problemsOf(root, { timeoutMs: 60000 });
  const ms = Date.now() - t0;
  console.log(`# growing buffers (cap 64 MiB) stopped after ${ms} ms`);
  assert.equal(p!.file, 'services/buffers.ts');
  assert.match(p!.message, /64 MiB/);
  assert.ok(ms < 30000, `took ${ms} ms`);

  // The same config with a cap that fits loads fine.
  const fine = repo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 'p', evaluation: { memoryMb: 64 } });\n`,
    'services/small.ts': SVC(`const a = Buffer.alloc(8 << 20, 1);`, `{ image: 'a', labels: { n: String(a.length) } }`),
  });
  const loaded = await loadRepo(fine);
  assert.deepEqual(loaded.services[0]!.data.labels, { n: String(8 << 20) });
});

test('as root every layer applies here: no warnings', { skip: !isRoot && 'not root' }, async () => {
  const warnings: string[] = [];
  await loadRepo(repo({ 'services/a.ts': SVC('') }), { onWarning: (w) => warnings.push(w) });
  const canUnshare = spawnSync('unshare', ['--net', '--pid', '--fork', 'true']).status === 0;
  assert.deepEqual(warnings.length === 0, canUnshare, warnings.join('\n'));
});

test('not root: the permission model still refuses writes and processes, and the loader says what is missing', { skip: !isRoot && 'needs root to start the loader as another user' }, async () => {
  const target = path.join(os.tmpdir(), `waffle-escape-${randomBytes(4).toString('hex')}`);
  const root = repo({
    'services/writer.ts': SVC(`import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(target)}, 'owned');`),
  });
  const other = repo({ 'services/spawner.ts': SVC(`import { execSync } from 'node:child_process';\nexecSync('true');`) });
  const script = path.join(root, 'run.mts');
  const loader = new URL('../runtime/load/load.ts', import.meta.url).href;
  writeFileSync(
    script,
    `import { loadRepo } from ${JSON.stringify(loader)};
const out = [];
for (const r of ${JSON.stringify([root, other])}) {
  const warnings = [];
  try { await loadRepo(r, { onWarning: (w) => warnings.push(w) }); out.push({ warnings, problems: [] }); }
  catch (e) { out.push({ warnings, problems: e.problems ?? [{ message: String(e) }] }); }
}
process.stdout.write(JSON.stringify(out));
`,
  );
  // The loader itself runs as nobody here (tsx keeps its cache in the temp dir, which nobody may write).
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, '--import', 'tsx', script], {
    cwd: process.cwd(),
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: '/nonexistent' },
    timeout: 60000,
  });
  assert.equal(r.status, 0, r.stderr);
  const [writer, spawner] = JSON.parse(r.stdout) as Array<{ warnings: string[]; problems: Problem[] }>;
  assert.equal(writer!.problems[0]!.file, 'services/writer.ts');
  assert.match(writer!.problems[0]!.message, /tried to write a file/);
  assert.ok(!existsSync(target), `${target} was written`);
  assert.equal(spawner!.problems[0]!.file, 'services/spawner.ts');
  assert.match(spawner!.problems[0]!.message, /tried to start a process/);
  assert.match(writer!.warnings.join('\n'), /uid 65534, not root: .*Docker socket/);
});

test('which names look like credentials', async () => {
  const { envNameRisk } = await import('../runtime/load/sandbox.ts');
  const kind = (n: string) => {
    const r = envNameRisk(n);
    return r === undefined ? 'ok' : r.forceable ? 'credential' : 'never';
  };
  const table: Record<string, string[]> = {
    ok: ['STAGE', 'DOMAIN', 'NODE_ENV', 'DEPLOY_ENV', 'API_REPLICAS', 'REGION', 'PWD', 'LOG_LEVEL', 'FEATURE_FLAGS'],
    credential: [
      'VAULT_TOKEN', 'VAULT_ADDR', 'GITHUB_TOKEN', 'NPM_TOKEN', 'WAFFLE_AGE_IDENTITY_FILE', 'WAFFLE_AGE_IDENTITY', 'DOCKER_HOST',
      'DOCKER_CERT_PATH', 'AWS_SECRET_ACCESS_KEY', 'DB_PASSWORD', 'DB_PWD', 'SSH_AUTH_SOCK', 'MY_API_KEY', 'OPENAI_APIKEY',
      'PRIVATE_KEY_PATH', 'STRIPE_SECRET', 'SENTRY_DSN', 'BASIC_AUTH', 'session_cookie',
    ],
    never: ['NODE_OPTIONS', 'NODE_PATH', 'LD_PRELOAD', 'LD_LIBRARY_PATH', 'PATH', 'UV_THREADPOOL_SIZE'],
  };
  for (const [expected, names] of Object.entries(table)) {
    for (const n of names) assert.equal(kind(n), expected, n);
  }
});

test('no other way out: bindings, addons, workers, WASI, reads, the inspector, signals, UDP, abstract sockets', async () => {
  const probe = `const r: Record<string, string> = {};
const tryIt = async (k: string, f: () => unknown) => { try { await f(); r[k] = 'ALLOWED'; } catch (e: any) { r[k] = \`\${e.code ?? ''} \${e.permission ?? ''} \${String(e.message).slice(0, 60)}\`; } };
await tryIt('binding', () => (process as any).binding('spawn_sync'));
await tryIt('dlopen', () => (process as any).dlopen({ exports: {} }, '/nonexistent.node'));
await tryIt('worker', async () => new (await import('node:worker_threads')).Worker('1', { eval: true }));
await tryIt('wasi', async () => new ((await import('node:wasi')) as any).WASI({ version: 'preview1' }));
await tryIt('readPasswd', async () => (await import('node:fs')).readFileSync('/etc/passwd'));
await tryIt('readProcEnv', async () => (await import('node:fs')).readFileSync('/proc/1/environ'));
await tryIt('inspector', async () => (await import('node:inspector')).open(0));
await tryIt('kill1', () => process.kill(1, 'SIGTERM'));
await tryIt('udp', async () => { const s = (await import('node:dgram')).createSocket('udp4'); await new Promise((res, rej) => s.send('x', 9, '127.0.0.1', (e) => (e ? rej(e) : res(0)))); });
await tryIt('abstractSock', async () => { const net = await import('node:net'); await new Promise((res, rej) => { const s = net.connect('\\0/containerd-shim/x.sock'); s.on('connect', res); s.on('error', rej); }); });
`;
  const root = repo({ 'services/probe.ts': SVC(probe, `{ image: 'a', labels: r }`) });
  const labels = (await loadRepo(root)).services[0]!.data.labels as Record<string, string>;
  const network = ['udp', 'abstractSock'];
  for (const [what, result] of Object.entries(labels)) {
    if (!isRoot && network.includes(what)) continue; // no network namespace without root
    assert.doesNotMatch(result, /ALLOWED/, `${what}: ${result}`);
  }
  assert.equal(Object.keys(labels).length, 10);
});

test('evaluation settings the loader cannot use are refused on the config, before any service file runs', async () => {
  const config = (ev: string) => `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 'p', evaluation: ${ev} as never });\n`;
  const cases: Array<[string, string, RegExp]> = [
    ['{ memoryMb: 8 }', 'evaluation.memoryMb', /from 32 to 16384/],
    ["{ memoryMb: '256' }", 'evaluation.memoryMb', /whole number of MiB/],
    ["{ env: 'STAGE' }", 'evaluation.env', /list of environment variable names/],
    ["{ env: ['STAGE=prod'] }", 'evaluation.env[0]', /not an environment variable name/],
    ["'all'", 'evaluation', /must be an object/],
  ];
  for (const [ev, where, message] of cases) {
    const root = repo({ 'waffle.config.ts': config(ev), 'services/a.ts': SVC(`throw new Error('a service file ran');`) });
    const problems = await problemsOf(root);
    assert.deepEqual(problems.map((p) => [p.file, p.where]), [['waffle.config.ts', where]], ev);
    assert.match(problems[0]!.message, message, ev);
    assert.ok(problems[0]!.fix, ev); // (had services/a.ts run, its throw would be the problem)
  }
});
