/**
 * Durable lease records (runtime/secrets/leases.ts) and the renewer (runtime/secrets/renewer.ts) against a
 * Vault DOUBLE (a local imitation of Vault's HTTP API; no Vault server can be installed here).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VaultDouble } from './doubles/vault-double.ts';
import { VaultProvider } from '../runtime/secrets/vault.ts';
import { LeaseStore } from '../runtime/secrets/leases.ts';
import { Renewer } from '../runtime/secrets/renewer.ts';
import type { SecretDecl } from '../runtime/secrets/provider.ts';

let vault: VaultDouble;
let dir: string;
before(async () => {
  vault = await VaultDouble.start();
  vault.addRole('database', 'app', { defaultTtl: 100, maxTtl: 260 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-leases-'));
});
after(async () => {
  await vault.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const decl: SecretDecl = { name: 'db', provider: 'vault', engine: 'database', role: 'app', keys: ['username', 'password'] };
const provider = () => new VaultProvider({ address: vault.address, env: { VAULT_TOKEN: vault.rootToken }, now: () => vault.now() });

async function issue(store: LeaseStore, service: string, containerId?: string) {
  const r = await provider().resolve(decl, { project: store.project, service, root: '/tmp' });
  const rec = store.add({ service, secret: 'db', leaseId: r.lease!.leaseId, engine: 'database', issuedAt: r.lease!.issuedAt, ttlSeconds: r.lease!.ttlSeconds, renewable: r.lease!.renewable, digest: 'hmac-of-values', containerId });
  return { values: r.values, rec };
}

test('lease records survive a restart: a new store on the same directory sees them, and never the values (Vault double)', async () => {
  const s1 = LeaseStore.open('p1', { dir: path.join(dir, 'p1') });
  const { values, rec } = await issue(s1, 'api');
  s1.attach([rec.leaseId], 'c-api-1');
  const s2 = LeaseStore.open('p1', { dir: path.join(dir, 'p1') });
  const again = s2.get(rec.leaseId);
  assert.equal(again?.containerId, 'c-api-1');
  assert.equal(again?.ttlSeconds, 100);
  assert.equal(again?.digest, 'hmac-of-values');
  const text = fs.readFileSync(s2.file, 'utf8');
  assert.ok(!text.includes(values.password) && !text.includes(values.username), 'no values on disk');
  assert.equal((fs.statSync(s2.file).mode & 0o777).toString(8), '600');
  assert.deepEqual(fs.readdirSync(path.dirname(s2.file)).filter((f) => f.endsWith('.tmp')), [], 'atomic write leaves no temp file');
});

test('stateDir puts records under WAFFLE_STATE_DIR/<project>', () => {
  const store = LeaseStore.open('p-env', { env: { WAFFLE_STATE_DIR: dir } });
  assert.equal(store.file, path.join(dir, 'p-env', 'leases.json'));
});

test('renewDue renews at the configured fraction, then marks the lease expiring at the max TTL (Vault double)', async () => {
  const store = LeaseStore.open('p2', { dir: path.join(dir, 'p2') });
  const renewer = new Renewer({ store, provider: provider(), renewFraction: 0.5 });
  const { rec } = await issue(store, 'api', 'c1');
  const markerBefore = store.credentialMarker('api', 'db');

  vault.advance(40);
  let r = await renewer.renewDue(vault.now());
  assert.deepEqual(r.renewed, [], 'not due before half the TTL');
  assert.equal(vault.lease(rec.leaseId)?.renewals, 0);

  vault.advance(20); // 60 s of 100
  r = await renewer.renewDue(vault.now());
  assert.equal(r.renewed.length, 1);
  assert.equal(vault.lease(rec.leaseId)?.renewals, 1, 'the double saw the renewal');
  assert.equal(store.get(rec.leaseId)?.renewals, 1);
  assert.equal(store.credentialMarker('api', 'db'), markerBefore, 'renewed: same credentials, same marker');

  vault.advance(60); // 120 s; renewed at 60 for 100 → due at 110
  r = await renewer.renewDue(vault.now());
  assert.equal(r.renewed[0]?.ttlSeconds, 100, 'max 260: still a full increment');
  vault.advance(60); // 180 s: 80 s left before the max TTL
  r = await renewer.renewDue(vault.now());
  assert.equal(r.renewed[0]?.ttlSeconds, 80, 'capped at the max TTL');
  assert.equal(r.expiring.length, 1);
  assert.match(r.expiring[0].reason, /max TTL/);
  assert.equal(store.get(rec.leaseId)?.state, 'expiring');
  assert.notEqual(store.credentialMarker('api', 'db'), markerBefore, 'a new marker: the next plan replaces the service');
  // Expiring leases are not renewed again.
  vault.advance(70);
  r = await renewer.renewDue(vault.now());
  assert.deepEqual(r.renewed, []);
});

test('a lease Vault no longer knows is marked expiring; Vault unreachable is reported and retried (Vault double)', async () => {
  const store = LeaseStore.open('p3', { dir: path.join(dir, 'p3') });
  const renewer = new Renewer({ store, provider: provider() });
  const gone = await issue(store, 'api', 'c1');
  const kept = await issue(store, 'worker', 'c2');
  vault.advance(101); // both expired (and were revoked) in Vault before anyone renewed them
  let r = await renewer.renewDue(vault.now());
  assert.deepEqual(r.expiring.map((e) => e.leaseId).sort(), [gone.rec.leaseId, kept.rec.leaseId].sort());
  assert.match(r.expiring[0].reason, /expired or was revoked/);

  const fresh = await issue(store, 'web', 'c3');
  vault.advance(60);
  await vault.stop();
  try {
    r = await renewer.renewDue(vault.now());
  } finally {
    await vault.start();
  }
  assert.equal(r.failed.length, 1);
  assert.ok(r.failed[0].error.includes(vault.address));
  assert.equal(store.get(fresh.rec.leaseId)?.state, 'active', 'still active: retried later');
  r = await renewer.renewDue(vault.now());
  assert.equal(r.renewed[0]?.leaseId, fresh.rec.leaseId);
});

test('revokeOrphans revokes leases whose container is gone (and unattached ones), keeps the others (Vault double)', async () => {
  const store = LeaseStore.open('p4', { dir: path.join(dir, 'p4') });
  const renewer = new Renewer({ store, provider: provider() });
  const a = await issue(store, 'api', 'c-a');
  const b = await issue(store, 'worker', 'c-b');
  const loose = await issue(store, 'web');
  const r = await renewer.revokeOrphans(['c-a']);
  assert.deepEqual(r.revoked.map((x) => x.leaseId).sort(), [b.rec.leaseId, loose.rec.leaseId].sort());
  assert.equal(vault.lease(b.rec.leaseId)?.revokedBy, 'revoke');
  assert.equal(vault.lease(loose.rec.leaseId)?.revokedBy, 'revoke');
  assert.equal(vault.lease(a.rec.leaseId)?.revoked, false);
  assert.deepEqual(store.list().map((l) => l.leaseId), [a.rec.leaseId]);
  await renewer.revokeAll();
  assert.equal(vault.lease(a.rec.leaseId)?.revokedBy, 'revoke');
  assert.deepEqual(store.list(), []);
});

test('revokeOrphans adopts an unattached lease whose container exists (waffle died before recording it), revokes a stale one (Vault double)', async () => {
  const store = LeaseStore.open('p5', { dir: path.join(dir, 'p5') });
  const renewer = new Renewer({ store, provider: provider() });
  // A first attempt issued credentials for api generation 3, then died before creating the container.
  const stale = await issue(store, 'api');
  store.add({ ...store.get(stale.rec.leaseId)!, containerKey: 'api-3' });
  // The next attempt issued new ones for the same container, created it, and died before `attach`.
  const used = await issue(store, 'api');
  store.add({ ...store.get(used.rec.leaseId)!, issuedAt: stale.rec.issuedAt + 1, containerKey: 'api-3' });
  // Issued for a container that never came to be.
  const never = await issue(store, 'web');
  store.add({ ...store.get(never.rec.leaseId)!, containerKey: 'web-1' });
  const r = await renewer.revokeOrphans([{ id: 'c-api-3', service: 'api', generation: 3 }]);
  assert.deepEqual(r.revoked.map((x) => x.leaseId).sort(), [stale.rec.leaseId, never.rec.leaseId].sort());
  assert.equal(vault.lease(used.rec.leaseId)?.revoked, false, 'the credentials the running container uses stay valid');
  assert.equal(store.get(used.rec.leaseId)?.containerId, 'c-api-3');
  assert.deepEqual(store.list().map((l) => l.leaseId), [used.rec.leaseId]);
  // Once adopted, it goes with its container.
  const gone = await renewer.revokeOrphans([]);
  assert.deepEqual(gone.revoked.map((x) => x.leaseId), [used.rec.leaseId]);
});
