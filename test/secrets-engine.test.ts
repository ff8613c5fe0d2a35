/**
 * Secrets on the real engine with the real CLI.
 *
 * Canary: a unique random value is deployed through env and another through a file. Each is found inside
 * the container and nowhere else: not in plan, apply, status or NDJSON output, not in container labels
 * or the rest of `docker inspect`, not in `.waffle/`, not in the repository as plaintext, not in the
 * deployer's state directory. One exception is inherent to environment variables: Docker keeps a
 * container's environment in its configuration, so `docker inspect` Config.Env holds the env canary
 * (anyone with access to the Docker socket can read it; use `files` where that matters: the file canary
 * is absent from `docker inspect` entirely).
 *
 * Rotation: changing one value with `waffle secrets set` and applying replaces exactly the services that
 * use it. A stopped container whose tmpfs files vanished (reboot) gets them back before it starts.
 * Vault unreachable: apply fails before any change, naming the address. A service that prints its
 * secret and fails: the value is redacted from waffle's failure events (log tail).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, execIn, freePort, gitCommitAll, makeRepo, parseNdjson, snapshot, uniqueProject, waffle, planFromJson } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { secretFilesRoot } from '../runtime/secrets/files.ts';

const project = uniqueProject('sec');
const rand = () => Math.random().toString(36).slice(2, 12);
const CANARY_ENV = `canaryenv${rand()}${rand()}`;
const CANARY_FILE = `canaryfile${rand()}${rand()}`;
const ROTATED = `canaryrot${rand()}${rand()}`;
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-secrets-e2e-'));
const stateDir = path.join(home, 'state');
const env = {
  WAFFLE_AGE_IDENTITY_FILE: path.join(home, 'id', 'age.key'),
  WAFFLE_AGE_IDENTITY: '',
  WAFFLE_STATE_DIR: stateDir,
  VAULT_TOKEN: 'unused-token',
};
let docker: Dockerode;
let repo: string;
let vaultPort: number;
const outputs: string[] = [];

const service = (body: string) => `import { defineService } from 'wafflemaker';
import { secrets } from '../waffle.config';
export default defineService({
  image: '${TEST_IMAGES.busybox}',
  command: 'sleep 3600',
  stopGracePeriod: '1s',
${body}
});
`;

async function run(args: string[], input?: string) {
  const r = await waffle(args, { cwd: repo, env, ...(input !== undefined ? { input } : {}) });
  outputs.push(`$ waffle ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  return r;
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

function assertNoCanary(text: string, where: string) {
  for (const c of [CANARY_ENV, CANARY_FILE, ROTATED]) assert.ok(!text.includes(c), `a secret value appears in ${where}`);
}

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!, { busybox: TEST_IMAGES.busybox });
  vaultPort = await freePort(); // nothing listens there: "Vault is down"
  repo = makeRepo(
    {
      'waffle.config.ts': `import { defineConfig, defineSecrets, generate } from 'wafflemaker';
export const secrets = defineSecrets({
  db: { provider: 'embedded', keys: ['url', 'password'] },
  session: { provider: 'embedded', keys: ['key'], generate: { key: generate({ format: 'hex', length: 40 }) } },
  other: { provider: 'embedded', keys: ['token'] },
  app: { provider: 'vault', engine: 'kv', path: 'app/config', keys: ['token'] },
});
export default defineConfig({
  project: '${project}',
  secrets,
  vault: { address: 'http://127.0.0.1:${vaultPort}', auth: { token: { env: 'VAULT_TOKEN' } } },
});
`,
      'services/api.ts': service(`  user: '1000:1000',
  env: { DATABASE_URL: secrets.db.url, MODE: 'prod' },
  files: { '/run/secrets/db_password': secrets.db.password },`),
      'services/worker.ts': service(`  files: { '/run/secrets/session': secrets.session.key },`),
      'services/web.ts': service(`  env: { TOKEN: secrets.other.token },`),
      'services/plain.ts': service(`  env: { A: 'b' },`),
      '.gitignore': '.waffle/\n',
    },
    { git: true },
  );
  for (const [args, input] of [
    [['secrets', 'init'], undefined],
    [['secrets', 'set', 'db.url'], CANARY_ENV],
    [['secrets', 'set', 'db.password'], CANARY_FILE],
    [['secrets', 'set', 'other.token'], 'token-one'],
  ] as Array<[string[], string | undefined]>) {
    const r = await run(args, input);
    assert.equal(r.code, 0, r.stderr);
  }
  gitCommitAll(repo, 'secrets');
});

after(async () => {
  await cleanupProject(docker, project);
  fs.rmSync(path.join(secretFilesRoot(), project), { recursive: true, force: true });
  fs.rmSync(repo, { recursive: true, force: true });
  fs.rmSync(home, { recursive: true, force: true });
});

const ids = async () => Object.fromEntries((await snapshot(docker, project)).containers.map((c) => [c.name.slice(project.length + 1), c.id]));

test('canary: values reach the container through env and a read-only 0400 tmpfs file, and nothing else', async () => {
  const plan = await run(['plan']);
  assert.equal(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, /4 to create/);
  const planJson = await run(['plan', '--json']);
  assert.equal(planJson.code, 0, planJson.stderr);
  assert.equal(planFromJson(planJson.stdout).operations.filter((o: { kind: string }) => o.kind === 'create-service').length, 4);

  const apply = await run(['apply', '--yes', '--plain']);
  assert.equal(apply.code, 0, apply.stderr + apply.stdout);

  // Inside the container: the env value, the file value, mode 0400 owned by the service's user, read-only.
  const api = `${project}-api`;
  assert.equal((await execIn(docker, api, ['sh', '-c', 'echo "$DATABASE_URL"'])).output.trim(), CANARY_ENV);
  assert.equal((await execIn(docker, api, ['cat', '/run/secrets/db_password'])).output, CANARY_FILE);
  assert.match((await execIn(docker, api, ['ls', '-ln', '/run/secrets/db_password'])).output, /^-r-------- +1 1000 +1000 /);
  const mount = (await execIn(docker, api, ['grep', ' /run/secrets/db_password ', '/proc/mounts'])).output;
  assert.match(mount, /^tmpfs \/run\/secrets\/db_password tmpfs ro[, ]/, 'a read-only bind of a tmpfs file');
  const write = await execIn(docker, api, ['sh', '-c', 'echo x > /run/secrets/db_password']);
  assert.notEqual(write.code, 0);
  assert.match(write.output, /Read-only file system/);

  // The generated key: created on first apply, stored encrypted, the same value in the container.
  const worker = `${project}-worker`;
  const generated = (await execIn(docker, worker, ['cat', '/run/secrets/session'])).output;
  assert.match(generated, /^[0-9a-f]{40}$/);
  const stored = await run(['secrets', 'get', 'session.key']);
  assert.equal(stored.stdout, generated);
  assert.ok(!fs.readFileSync(path.join(repo, 'secrets/session.age'), 'utf8').includes(generated));
  assert.equal((await execIn(docker, worker, ['ls', '-ln', '/run/secrets/session'])).output.split(/\s+/).slice(0, 4).join(' '), '-r-------- 1 0 0');

  // status and NDJSON apply (nothing to do) and plan again: no value, and nothing regenerated.
  const status = await run(['status']);
  const statusJson = await run(['status', '--json']);
  assert.equal(statusJson.code, 0, statusJson.stderr);
  const again = await run(['apply', '--yes', '--json']);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(parseNdjson(again.stdout).at(-1)!.type, 'apply-done');
  const replan = await run(['plan', '--json']);
  assert.deepEqual(planFromJson(replan.stdout).operations, [], 'stable digests: no change on a second plan');
  assert.ok(status.stdout.includes('api'));

  // Every output of waffle so far.
  assertNoCanary(outputs.join('\n'), 'the output of waffle');

  // docker inspect: labels never; the file value nowhere; the env value only in Config.Env (inherent to env).
  for (const name of ['api', 'worker', 'web', 'plain']) {
    const info = await docker.getContainer(`${project}-${name}`).inspect();
    assertNoCanary(JSON.stringify(info.Config.Labels), `the labels of ${name}`);
    const { Env, ...config } = info.Config;
    assertNoCanary(JSON.stringify({ ...info, Config: config }), `docker inspect of ${name} (without Config.Env)`);
    assert.ok(!JSON.stringify(Env).includes(CANARY_FILE), 'a file secret is not in the environment');
    if (name === 'api') assert.ok(Env.includes(`DATABASE_URL=${CANARY_ENV}`), 'Docker keeps env values in Config.Env');
  }

  // Files: .waffle/, the repository (the .age files are armored ciphertext), the state directory.
  const repoFiles = filesUnder(repo);
  assert.ok(repoFiles.some((f) => f.endsWith('secrets/db.age')));
  for (const f of repoFiles) assertNoCanary(fs.readFileSync(f, 'latin1'), f);
  assert.ok(!filesUnder(path.join(repo, '.waffle')).some((f) => fs.readFileSync(f, 'latin1').includes(CANARY_FILE)));
  const stateFiles = filesUnder(stateDir);
  assert.ok(stateFiles.some((f) => f.endsWith('hmac.key')));
  for (const f of stateFiles) assertNoCanary(fs.readFileSync(f, 'latin1'), f);
  assert.equal(fs.statSync(path.join(stateDir, project, 'hmac.key')).mode & 0o777, 0o600);

  // On the host, the file lives only on the tmpfs, 0400.
  const hostDir = path.join(secretFilesRoot(), project, 'api-1');
  const hostFiles = fs.readdirSync(hostDir);
  assert.equal(hostFiles.length, 1);
  assert.equal(fs.statSync(path.join(hostDir, hostFiles[0]!)).mode & 0o777, 0o400);
  assert.equal(fs.statfsSync(hostDir).type, 0x01021994, 'tmpfs');
});

test('rotation: a new value replaces exactly the services that use it', async () => {
  const before = await ids();
  assert.deepEqual(Object.keys(before).sort(), ['api', 'plain', 'web', 'worker']);
  const set = await run(['secrets', 'set', 'db.password'], ROTATED);
  assert.equal(set.code, 0, set.stderr);

  const plan = await run(['plan', '--json']);
  const ops = planFromJson(plan.stdout).operations as Array<{ id: string; causes: Array<{ kind: string; detail: string }> }>;
  assert.deepEqual(ops.map((o) => o.id), ['replace:api']);
  assert.deepEqual(ops[0]!.causes, [{ kind: 'secrets', detail: 'a secret value changed' }]);

  const apply = await run(['apply', '--yes', '--json']);
  assert.equal(apply.code, 0, apply.stderr);
  const done = parseNdjson(apply.stdout).at(-1)!;
  assert.deepEqual(done.summary, { created: 0, replaced: 1, updated: 0, removed: 0, failed: 0, skipped: 0 });

  const after = await ids();
  assert.notEqual(after.api, before.api, 'api uses db.password: replaced');
  for (const s of ['worker', 'web', 'plain']) assert.equal(after[s], before[s], `${s} does not use it: same container`);
  assert.equal((await execIn(docker, `${project}-api`, ['cat', '/run/secrets/db_password'])).output, ROTATED);
  assert.equal((await execIn(docker, `${project}-api`, ['sh', '-c', 'echo "$DATABASE_URL"'])).output.trim(), CANARY_ENV);
  // The old container is kept stopped for rollback, and its files with it (a rollback starts it again);
  // they go when it is pruned.
  assert.deepEqual(fs.readdirSync(path.join(secretFilesRoot(), project)).sort(), ['api-1', 'api-2', 'worker-1']);
  assertNoCanary(outputs.join('\n'), 'the output of waffle');
});

test('a stopped container whose tmpfs files are gone (a reboot) gets them again before it starts', async () => {
  const id = (await ids()).api!;
  await docker.getContainer(id).stop({ t: 1 });
  const dir = path.join(secretFilesRoot(), project, 'api-2');
  fs.rmSync(dir, { recursive: true, force: true });
  const plan = await run(['plan', '--json']);
  assert.deepEqual(planFromJson(plan.stdout).operations.map((o: { id: string }) => o.id), ['start:api']);
  const r = await run(['apply', '--yes', '--json']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal((await ids()).api, id, 'the same container, started again');
  assert.equal((await execIn(docker, `${project}-api`, ['cat', '/run/secrets/db_password'])).output, ROTATED);
  assertNoCanary(outputs.join('\n'), 'the output of waffle');
});

test('Vault unreachable: apply fails before any change, naming the address', async () => {
  const before = await snapshot(docker, project);
  fs.writeFileSync(path.join(repo, 'services/vaulty.ts'), service(`  env: { T: secrets.app.token },`));
  fs.writeFileSync(path.join(repo, 'services/plain.ts'), service(`  env: { A: 'changed' },`));
  try {
    const r = await run(['apply', '--yes', '--json']);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.ok(r.stderr.includes(`127.0.0.1:${vaultPort}`), r.stderr);
    assert.match(r.stderr, /unreachable/i);
    // --json streams the run's events: planning failed at the secrets stage, no operation started.
    const events = r.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { type: string; stage?: string });
    assert.ok(!events.some((e) => e.type === 'apply-start' || e.type === 'op-start'), `no apply started: ${r.stdout}`);
    assert.ok(events.some((e) => e.type === 'run-failed' && e.stage === 'secrets'), r.stdout);
    assert.deepEqual(await snapshot(docker, project), before, 'nothing running was touched');
  } finally {
    fs.rmSync(path.join(repo, 'services/vaulty.ts'));
    fs.writeFileSync(path.join(repo, 'services/plain.ts'), service(`  env: { A: 'b' },`));
  }
});

test('a service that prints its secret and fails: the value is redacted from the failure events', async () => {
  fs.writeFileSync(
    path.join(repo, 'services/crasher.ts'),
    `import { defineService } from 'wafflemaker';
import { secrets } from '../waffle.config';
export default defineService({
  image: '${TEST_IMAGES.busybox}',
  command: 'echo "connecting to $DATABASE_URL"; exit 3',
  env: { DATABASE_URL: secrets.db.url },
  healthcheck: { command: 'true', interval: '1s' },
  restart: 'no',
});
`,
  );
  try {
    const r = await run(['apply', '--yes', '--json']);
    assert.equal(r.code, 1, r.stderr);
    const failed = parseNdjson(r.stdout).find((e) => e.type === 'op-failed') as { failure: { logTail?: string[] } } | undefined;
    assert.ok(failed, r.stdout);
    assert.deepEqual(failed.failure.logTail, ['connecting to [secrets.db.url]']);
    assertNoCanary(outputs.join('\n'), 'the output of waffle');
  } finally {
    fs.rmSync(path.join(repo, 'services/crasher.ts'));
  }
});

test('destroy removes the containers and their secret files from the tmpfs', async () => {
  assert.ok(fs.existsSync(path.join(secretFilesRoot(), project)), 'files exist before destroy');
  const r = await run(['destroy', '--yes']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await snapshot(docker, project)).containers.length, 0);
  assert.equal(fs.existsSync(path.join(secretFilesRoot(), project)), false, 'secret files removed');
  assertNoCanary(outputs.join('\n'), 'the output of waffle');
});
