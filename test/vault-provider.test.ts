/**
 * The Vault provider (runtime/secrets/vault.ts, through node-vault) against a Vault DOUBLE: a local HTTP server
 * that imitates Vault's documented API (no Vault server can be installed here).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { VaultDouble } from './doubles/vault-double.ts';
import { LeaseGoneError, VaultProvider, VaultUnreachableError } from '../runtime/secrets/vault.ts';
import type { SecretDecl } from '../runtime/secrets/provider.ts';

let vault: VaultDouble;
before(async () => {
  vault = await VaultDouble.start();
  vault.addRole('database', 'app', { defaultTtl: 60, maxTtl: 150 }, { db_name: 'pg' });
  vault.addRole('aws', 'reader', { defaultTtl: 600, maxTtl: 3600 });
  vault.addRole('aws', 'writer', { defaultTtl: 600, maxTtl: 3600 });
});
after(async () => {
  await vault.stop();
});

const ctx = { project: 'p', service: 'api', root: '/tmp' };
const rootProvider = (extra: Partial<ConstructorParameters<typeof VaultProvider>[0]> = {}) =>
  new VaultProvider({ address: vault.address, env: { VAULT_TOKEN: vault.rootToken }, now: () => vault.now(), ...extra });

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let s = '';
        res.on('data', (c) => (s += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: s ? JSON.parse(s) : undefined }));
      })
      .on('error', reject);
  });
}

test('the Vault double answers like Vault: 403 permission denied without a valid token, health without one', async () => {
  const denied = await get(`${vault.address}/v1/secret/data/x`);
  assert.equal(denied.status, 403);
  assert.deepEqual(denied.body, { errors: ['permission denied'] });
  const wrong = await get(`${vault.address}/v1/database/creds/app`, { 'X-Vault-Token': 'hvs.nope' });
  assert.equal(wrong.status, 403);
  const health = await get(`${vault.address}/v1/sys/health`);
  assert.equal(health.status, 200);
  assert.equal(health.body.sealed, false);
  const noRoute = await get(`${vault.address}/v1/nomount/thing`, { 'X-Vault-Token': vault.rootToken });
  assert.equal(noRoute.status, 404);
  assert.match(noRoute.body.errors[0], /no handler for route/);
});

test('KV v2 read through node-vault against a Vault double; missing keys name the path and a fix', async () => {
  vault.kvPut('secret', 'apps/web', { api_key: 'k-123', other: 'x' });
  const p = rootProvider();
  const decl: SecretDecl = { name: 'web', provider: 'vault', engine: 'kv', path: 'apps/web', keys: ['api_key'] };
  assert.deepEqual((await p.resolve(decl, ctx)).values, { api_key: 'k-123' });
  await assert.rejects(
    p.resolve({ ...decl, name: 'web2', keys: ['api_key', 'nope'] }, ctx),
    (e: Error) => /no key nope at secret\/data\/apps\/web/.test(e.message) && /vault kv put/.test(e.message),
  );
  await assert.rejects(p.resolve({ ...decl, name: 'web3', path: 'missing' }, ctx), /no secret at secret\/data\/missing/);
});

test('KV v2 generated keys are written once to a Vault double and read back afterwards', async () => {
  const decl: SecretDecl = {
    name: 'session',
    provider: 'vault',
    engine: 'kv',
    path: 'apps/session',
    keys: ['key', 'salt'],
    generate: { key: { format: 'hex', length: 32 }, salt: { format: 'alphanumeric', length: 20 } },
  };
  const first = await rootProvider().resolve(decl, ctx);
  assert.match(first.values.key, /^[0-9a-f]{32}$/);
  assert.match(first.values.salt, /^[A-Za-z0-9]{20}$/);
  assert.deepEqual(vault.kvGet('secret', 'apps/session'), first.values);
  const second = await rootProvider().resolve(decl, ctx);
  assert.deepEqual(second.values, first.values, 'never regenerated');
  assert.equal(vault.callsTo('secret/data/apps/session', 'POST').length + vault.callsTo('secret/data/apps/session', 'PUT').length, 1);
});

test('database credentials per service, with a lease, and the role created when missing (Vault double)', async () => {
  const p = rootProvider();
  const decl: SecretDecl = { name: 'db', provider: 'vault', engine: 'database', role: 'orders', keys: ['username', 'password'], createRole: { db_name: 'pg', creation_statements: ['CREATE ROLE "{{name}}"'], default_ttl: '1m', max_ttl: '5m' } };
  const a = await p.resolve(decl, { ...ctx, service: 'api' });
  const b = await p.resolve(decl, { ...ctx, service: 'worker' });
  assert.deepEqual(vault.role('database', 'orders')?.defaultTtl, 60);
  assert.equal(vault.role('database', 'orders')?.maxTtl, 300);
  assert.notEqual(a.values.username, b.values.username, 'one credential set per service');
  assert.ok(a.lease && b.lease);
  assert.equal(a.lease.ttlSeconds, 60);
  assert.equal(a.lease.renewable, true);
  assert.match(a.lease.leaseId, /^database\/creds\/orders\//);
  assert.equal(vault.lease(a.lease.leaseId)?.values.password, a.values.password);
  // Same service, same provider instance: one lease (username and password come from the same set).
  const again = await p.resolve(decl, { ...ctx, service: 'api' });
  assert.equal(again.lease?.leaseId, a.lease.leaseId);
  // A second resolve does not re-create the role.
  assert.equal(vault.callsTo('database/roles/orders', 'POST').length + vault.callsTo('database/roles/orders', 'PUT').length, 1);
  await assert.rejects(p.resolve({ ...decl, name: 'db2', role: 'ghost', createRole: undefined }, ctx), /unknown role: ghost/);
});

test('two AWS roles in one service give two distinct credential pairs (Vault double)', async () => {
  const p = rootProvider();
  const r = await p.resolve({ name: 'awsRead', provider: 'vault', engine: 'aws', role: 'reader', keys: ['accessKeyId', 'secretAccessKey'] }, ctx);
  const w = await p.resolve({ name: 'awsWrite', provider: 'vault', engine: 'aws', role: 'writer', keys: ['accessKeyId', 'secretAccessKey'] }, ctx);
  assert.deepEqual(Object.keys(r.values), ['accessKeyId', 'secretAccessKey']);
  assert.match(r.values.accessKeyId, /^AKIA[A-Z2-7]{16}$/);
  assert.equal(r.values.secretAccessKey.length, 40);
  assert.notEqual(r.values.accessKeyId, w.values.accessKeyId);
  assert.notEqual(r.values.secretAccessKey, w.values.secretAccessKey);
  assert.equal(vault.leaseByValue(r.values.accessKeyId)?.values.secret_key, r.values.secretAccessKey, 'a pair from one lease');
  assert.notEqual(r.lease?.leaseId, w.lease?.leaseId);
  assert.equal(vault.lease(r.lease!.leaseId)?.role, 'reader');
  assert.equal(vault.lease(w.lease!.leaseId)?.role, 'writer');
});

test('lease renewal is capped at the max TTL, then fails once expired; revoke ends it (Vault double)', async () => {
  const p = rootProvider();
  const { lease } = await p.resolve({ name: 'dbr', provider: 'vault', engine: 'database', role: 'app', keys: ['username'] }, ctx);
  assert.ok(lease);
  vault.advance(30);
  assert.deepEqual(await p.renew(lease.leaseId, 60), { ttlSeconds: 60, renewable: true });
  vault.advance(55);
  // 85 s used of a 150 s max: only 65 s left.
  assert.equal((await p.renew(lease.leaseId, 100)).ttlSeconds, 65);
  assert.equal(vault.lease(lease.leaseId)?.renewals, 2);
  vault.advance(66);
  assert.equal(vault.lease(lease.leaseId)?.revokedBy, 'expired');
  await assert.rejects(p.renew(lease.leaseId, 60), LeaseGoneError);

  const other = await rootProvider().resolve({ name: 'dbr', provider: 'vault', engine: 'database', role: 'app', keys: ['username'] }, ctx);
  await p.revoke(other.lease!.leaseId);
  assert.equal(vault.lease(other.lease!.leaseId)?.revokedBy, 'revoke');
});

test('token auth: renew-self once half the TTL has passed; an expired token is refused (Vault double)', async () => {
  vault.kvPut('secret', 'tok', { a: '1' });
  const token = vault.createToken({ ttl: 100, maxTtl: 1000 });
  const p = new VaultProvider({ address: vault.address, env: { VAULT_TOKEN: token }, now: () => vault.now() });
  const decl: SecretDecl = { name: 'tok', provider: 'vault', engine: 'kv', keys: ['a'] };
  await p.check();
  const before = vault.callsTo('auth/token/renew-self').length;
  vault.advance(40);
  await p.resolveKv(decl);
  assert.equal(vault.callsTo('auth/token/renew-self').length, before, 'not yet due');
  vault.advance(20);
  await p.resolveKv(decl);
  assert.equal(vault.callsTo('auth/token/renew-self').length, before + 1, 'renewed past half its TTL');

  const dead = vault.createToken({ ttl: 10 });
  const q = new VaultProvider({ address: vault.address, env: { VAULT_TOKEN: dead }, now: () => vault.now() });
  vault.advance(11);
  await assert.rejects(q.check(), (e: Error) => e.message.includes(vault.address) && /permission denied/.test(e.message));
});

test('AppRole login with role_id and secret_id from the environment (Vault double)', async () => {
  vault.kvPut('secret', 'ar', { v: 'ok' });
  const { roleId, secretId } = vault.addAppRole('waffle', { tokenTtl: 100, tokenMaxTtl: 130 });
  const env = { VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: secretId };
  const p = new VaultProvider({ address: vault.address, auth: { method: 'approle' }, env, now: () => vault.now() });
  await p.check();
  assert.deepEqual(await p.resolveKv({ name: 'ar', provider: 'vault', keys: ['v'] }), { v: 'ok' });
  const logins = vault.callsTo('auth/approle/login').length;
  vault.advance(60);
  await p.resolveKv({ name: 'ar', provider: 'vault', keys: ['v'] }); // renew-self: capped at 70 s < 100*0.5? no → keeps token
  vault.advance(60);
  await p.resolveKv({ name: 'ar', provider: 'vault', keys: ['v'] }); // near max TTL: logs in again
  assert.equal(vault.callsTo('auth/approle/login').length, logins + 1);
  const bad = new VaultProvider({ address: vault.address, auth: { method: 'approle' }, env: { VAULT_ROLE_ID: roleId, VAULT_SECRET_ID: 'wrong' } });
  await assert.rejects(bad.check(), /invalid secret id/);
});

test('Vault double down: check() fails naming the address, and works again once it is back', async () => {
  const p = rootProvider();
  await vault.stop();
  try {
    await assert.rejects(p.check(), (e: Error) => e instanceof VaultUnreachableError && e.message.includes(vault.address));
  } finally {
    await vault.start();
  }
  await p.check();
});
