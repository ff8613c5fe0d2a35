/**
 * Dynamic credentials from Vault, end to end: the real CLI and the real Docker engine, against a Vault
 * DOUBLE (test/doubles/vault-double.ts: a local imitation of Vault's documented HTTP API; no Vault server
 * can be installed on these machines).
 *
 * In order: database credentials are injected (docker exec printenv) and recorded as a lease; a second
 * apply changes nothing and issues nothing; the lease is renewed (the double sees it); a lease that
 * reaches its max TTL redeploys the service with fresh credentials (cause `credentials`) and the old lease
 * is revoked; two AWS roles in one service give two distinct pairs; removing the service from the
 * repository revokes its lease; Vault down fails the apply before any change, naming the address, with
 * the running containers untouched; destroy revokes the rest.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, execIn, gitCommitAll, makeRepo, parseNdjson, snapshot, uniqueProject, waffle, planFromJson } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { VaultDouble } from './doubles/vault-double.ts';
import { LeaseStore } from '../runtime/secrets/leases.ts';
import { Renewer } from '../runtime/secrets/renewer.ts';
import { VaultProvider } from '../runtime/secrets/vault.ts';
import type { Plan } from '../runtime/model.ts';

const project = uniqueProject('vault');
let docker: Dockerode;
let vault: VaultDouble;
let repo: string;
let stateRoot: string;
let env: Record<string, string>;

function config(address: string): string {
  return `import { defineConfig, defineSecrets } from 'wafflemaker';

export const secrets = defineSecrets({
  pg: {
    provider: 'vault',
    engine: 'database',
    role: 'orders',
    keys: ['username', 'password'],
    createRole: { db_name: 'pg', creation_statements: ['CREATE ROLE "{{name}}" LOGIN PASSWORD \\'{{password}}\\''], default_ttl: '60s', max_ttl: '120s' },
  },
  awsRead: { provider: 'vault', engine: 'aws', role: 'reader', keys: ['accessKeyId', 'secretAccessKey'] },
  awsWrite: { provider: 'vault', engine: 'aws', role: 'writer', keys: ['accessKeyId', 'secretAccessKey'] },
});

export default defineConfig({
  project: '${project}',
  secrets,
  vault: { address: '${address}', auth: { token: { env: 'VAULT_TOKEN' } }, renewFraction: 0.5 },
  defaults: { stopGracePeriod: '1s' },
});
`;
}

const sleeper = (envBlock: string) => `import { defineService } from 'wafflemaker';
import { secrets } from '../waffle.config';

export default defineService({
  image: '${TEST_IMAGES.busybox}',
  command: 'trap "exit 0" TERM; while true; do sleep 1; done',
  env: { ${envBlock} },
});
`;

const files = (address: string): Record<string, string> => ({
  'waffle.config.ts': config(address),
  'services/api.ts': sleeper('MODE: "db", DB_USER: secrets.pg.username, DB_PASSWORD: secrets.pg.password'),
  'services/worker.ts': sleeper(
    'READ_KEY: secrets.awsRead.accessKeyId, READ_SECRET: secrets.awsRead.secretAccessKey, WRITE_KEY: secrets.awsWrite.accessKeyId, WRITE_SECRET: secrets.awsWrite.secretAccessKey',
  ),
  'services/plain.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: '${TEST_IMAGES.busybox}', command: 'sleep 3600', env: { PLAIN: '1' } });\n`,
});

async function printenv(service: string): Promise<Record<string, string>> {
  const r = await execIn(docker, `${project}-${service}`, ['env'] /* busybox-static has no printenv applet */);
  assert.equal(r.code, 0, r.output);
  const out: Record<string, string> = {};
  for (const line of r.output.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

async function containerId(service: string): Promise<string> {
  return (await docker.getContainer(`${project}-${service}`).inspect()).Id;
}

const store = () => LeaseStore.open(project, { env: { WAFFLE_STATE_DIR: stateRoot } });
/** The renewer as the agent runs it, on the double's clock (which the tests move forward). */
const renewer = () =>
  new Renewer({ store: store(), provider: new VaultProvider({ address: vault.address, env: { VAULT_TOKEN: vault.rootToken }, now: () => vault.now() }), renewFraction: 0.5 });

async function apply(): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await waffle(['apply', '--yes', '--json'], { cwd: repo, env });
  return r;
}

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!, TEST_IMAGES);
  vault = await VaultDouble.start();
  vault.addRole('aws', 'reader', { defaultTtl: 600, maxTtl: 3600 });
  vault.addRole('aws', 'writer', { defaultTtl: 600, maxTtl: 3600 });
  stateRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-vault-state-'));
  env = { VAULT_TOKEN: vault.createToken({ ttl: 86400 }), WAFFLE_STATE_DIR: stateRoot };
  repo = makeRepo(files(vault.address), { git: true });
});

after(async () => {
  await cleanupProject(docker, project);
  await vault.stop();
  fs.rmSync(repo, { recursive: true, force: true });
  fs.rmSync(stateRoot, { recursive: true, force: true });
});

let firstUser = '';
let firstLease = '';
let apiId = '';

test('dynamic database credentials are injected into the container and recorded as a lease (Vault double)', async () => {
  const r = await apply();
  assert.equal(r.code, 0, r.stderr + r.stdout);
  // The role did not exist: created from createRole.
  assert.equal(vault.role('database', 'orders')?.defaultTtl, 60);
  assert.equal(vault.role('database', 'orders')?.extra.db_name, 'pg');

  const e = await printenv('api');
  assert.match(e.DB_USER!, /^v-token-orders-/);
  const lease = vault.leaseByValue(e.DB_USER!);
  assert.ok(lease, 'the username in the container was issued by the Vault double');
  assert.equal(lease.values.password, e.DB_PASSWORD, 'username and password come from one lease');
  assert.equal(lease.revoked, false);
  firstUser = e.DB_USER!;
  firstLease = lease.leaseId;
  apiId = await containerId('api');

  const rec = store().get(lease.leaseId);
  assert.ok(rec, 'the lease is recorded durably');
  assert.equal(rec.service, 'api');
  assert.equal(rec.secret, 'pg');
  assert.equal(rec.containerId, apiId);
  const gen = (await docker.getContainer(apiId).inspect()).Config.Labels['dev.wafflemaker.generation'];
  assert.equal(rec.containerKey, `api-${gen}`, 'the record names its container before it exists (a crash before attach must not revoke it)');
  assert.equal(rec.ttlSeconds, 60);
  assert.match(rec.digest, /^[0-9a-f]{64}$/);

  // Values appear nowhere but inside the container.
  const leaseFile = fs.readFileSync(store().file, 'utf8');
  const snap = await snapshot(docker, project);
  for (const v of [e.DB_USER!, e.DB_PASSWORD!]) {
    assert.ok(!r.stdout.includes(v) && !r.stderr.includes(v), 'not in the apply output');
    assert.ok(!leaseFile.includes(v), 'not in the lease records');
    assert.ok(!JSON.stringify(snap.containers.map((c) => c.labels)).includes(v), 'not in labels');
  }
});

test('two AWS roles in one service give two distinct credential pairs (Vault double)', async () => {
  const e = await printenv('worker');
  assert.match(e.READ_KEY!, /^AKIA/);
  assert.notEqual(e.READ_KEY, e.WRITE_KEY);
  assert.notEqual(e.READ_SECRET, e.WRITE_SECRET);
  const read = vault.leaseByValue(e.READ_KEY!);
  const write = vault.leaseByValue(e.WRITE_KEY!);
  assert.equal(read?.role, 'reader');
  assert.equal(write?.role, 'writer');
  assert.equal(read?.values.secret_key, e.READ_SECRET, 'each pair comes from one lease');
  assert.equal(write?.values.secret_key, e.WRITE_SECRET);
  assert.deepEqual(store().list({ service: 'worker' }).map((l) => l.secret).sort(), ['awsRead', 'awsWrite']);
});

test('a second apply changes nothing and issues no new credentials (Vault double)', async () => {
  const issued = vault.issued().length;
  const r = await waffle(['plan', '--json'], { cwd: repo, env });
  assert.equal(r.code, 0, r.stderr);
  const plan = planFromJson(r.stdout);
  assert.deepEqual(plan.operations, []);
  assert.equal(vault.issued().length, issued);
  assert.equal(await containerId('api'), apiId);
});

test('leases are renewed at half their TTL, and `waffle secrets renew` runs (Vault double)', async () => {
  // The double's clock runs in real time too: move it to a lease age, not by a fixed step, so a slow
  // machine (the earlier tests took long) does not make the lease due early.
  const ageS = () => (vault.now() - store().get(firstLease)!.issuedAt) / 1000;
  vault.advance(Math.max(0, 20 - ageS()));
  let r = await renewer().renewDue(vault.now());
  if (ageS() < 29) assert.deepEqual(r.renewed, [], 'not due before half the TTL');
  vault.advance(Math.max(0, 35 - ageS())); // 35 s of 60
  r = await renewer().renewDue(vault.now());
  assert.deepEqual(r.renewed.map((x) => x.leaseId), [firstLease]);
  assert.equal(vault.lease(firstLease)?.renewals, 1, 'the double saw the renewal');
  assert.equal(store().get(firstLease)?.renewals, 1);
  assert.ok(vault.callsTo('sys/leases/renew').length >= 1);

  const cli = await waffle(['secrets', 'renew'], { cwd: repo, env });
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stderr, /nothing due|renewed/);
});

test('a lease that reaches its max TTL redeploys the service with fresh credentials; the old lease is revoked (Vault double)', async () => {
  vault.advance(35); // 70 s of a 120 s max: the renewal comes back capped at 50 s
  const r = await renewer().renewDue(vault.now());
  assert.deepEqual(r.expiring.map((x) => x.leaseId), [firstLease]);
  assert.match(r.expiring[0]!.reason, /max TTL/);
  const workerId = await containerId('worker');
  const plainId = await containerId('plain');

  const p = await waffle(['plan', '--json'], { cwd: repo, env });
  assert.equal(p.code, 0, p.stderr);
  const plan = planFromJson(p.stdout);
  const services = plan.operations.filter((o) => 'service' in o).map((o) => `${o.kind}:${(o as { service: string }).service}`);
  assert.deepEqual(services, ['replace-service:api']);
  assert.deepEqual(plan.operations[0]!.causes.map((c) => c.kind), ['credentials']);

  const a = await apply();
  assert.equal(a.code, 0, a.stderr + a.stdout);
  const done = parseNdjson(a.stdout).at(-1)!;
  assert.equal((done.summary as { replaced: number }).replaced, 1);
  const e = await printenv('api');
  assert.notEqual(e.DB_USER, firstUser, 'fresh credentials');
  const fresh = vault.leaseByValue(e.DB_USER!);
  assert.equal(fresh?.revoked, false);
  assert.equal(vault.lease(firstLease)?.revokedBy, 'revoke', 'the old container is gone: its lease is revoked');
  assert.equal(store().get(firstLease), undefined);
  assert.equal(store().get(fresh!.leaseId)?.containerId, await containerId('api'));
  assert.equal(await containerId('worker'), workerId, 'other services untouched');
  assert.equal(await containerId('plain'), plainId);

  // The replaced container is kept stopped for rollback, without live credentials: a rollback to it is
  // refused, naming the leased secret and the fix, and changes nothing.
  const kept = await docker.listContainers({ all: true, filters: { label: [`dev.wafflemaker.project=${project}`, 'dev.wafflemaker.service=api'] } });
  assert.equal(kept.filter((c) => /-kept-\d+$/.test(c.Names[0]!)).length, 1, 'the old api container is kept');
  const rb = await waffle(['rollback', 'api', '--yes'], { cwd: repo, env });
  assert.equal(rb.code, 1, rb.stdout + rb.stderr);
  assert.match(rb.stdout + rb.stderr, /uses leased credentials \(pg\)[\s\S]*git revert/);
  assert.equal(await containerId('api'), store().get(fresh!.leaseId)?.containerId, 'the current api container still serves');
});

test('Vault down: apply fails before any change, naming the address; running containers untouched (Vault double)', async () => {
  fs.writeFileSync(path.join(repo, 'services/plain.ts'), fs.readFileSync(path.join(repo, 'services/plain.ts'), 'utf8').replace("PLAIN: '1'", "PLAIN: '2'"));
  gitCommitAll(repo, 'plain 2');
  const before = await snapshot(docker, project);
  const issued = vault.issued().length;
  await vault.stop();
  let r;
  try {
    r = await apply();
  } finally {
    await vault.start();
  }
  assert.notEqual(r.code, 0);
  assert.ok((r.stderr + r.stdout).includes(vault.address), r.stderr + r.stdout);
  assert.match(r.stderr + r.stdout, /unreachable/i);
  assert.deepEqual(await snapshot(docker, project), before, 'same containers, same ids, same state');
  assert.equal(vault.issued().length, issued);
});

test('removing a service from the repository revokes its lease (Vault double)', async () => {
  const apiLease = store().list({ service: 'api' })[0]!.leaseId;
  fs.rmSync(path.join(repo, 'services/api.ts'));
  gitCommitAll(repo, 'remove api');
  const r = await apply();
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.equal((await snapshot(docker, project)).containers.some((c) => c.name === `${project}-api`), false);
  assert.equal(vault.lease(apiLease)?.revokedBy, 'revoke');
  assert.deepEqual(store().list({ service: 'api' }), []);
  // The worker's pairs are still alive.
  assert.equal(store().list({ service: 'worker' }).length, 2);
  for (const l of store().list({ service: 'worker' })) assert.equal(vault.lease(l.leaseId)?.revoked, false);
});

test('destroy revokes every remaining lease (Vault double)', async () => {
  const leases = store().list().map((l) => l.leaseId);
  assert.equal(leases.length, 2);
  const r = await waffle(['destroy', '--yes'], { cwd: repo, env });
  assert.equal(r.code, 0, r.stderr);
  for (const id of leases) assert.equal(vault.lease(id)?.revokedBy, 'revoke');
  assert.deepEqual(store().list(), []);
});
