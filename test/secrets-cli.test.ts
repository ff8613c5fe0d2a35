/**
 * `waffle secrets` round trip with the real CLI: init, set from stdin (never argv), list, get, rm,
 * generate, rekey for a second recipient (both identities decrypt), and a file written by waffle is
 * decrypted by a second, independent age implementation: Debian's `age` CLI (the Go reference tool).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeRepo, waffle } from './helpers.ts';

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-secrets-cli-'));
const idA = path.join(home, 'alice', 'age.key');
const idB = path.join(home, 'bob', 'age.key');
const envA = { WAFFLE_AGE_IDENTITY_FILE: idA, WAFFLE_STATE_DIR: path.join(home, 'state'), WAFFLE_AGE_IDENTITY: '' };
const envB = { ...envA, WAFFLE_AGE_IDENTITY_FILE: idB };
const repo = makeRepo({
  'waffle.config.ts': `import { defineConfig, defineSecrets, generate } from 'wafflemaker';
export const secrets = defineSecrets({
  db: { provider: 'embedded', keys: ['url', 'password'] },
  token: { provider: 'embedded', keys: ['value'] },
  session: { provider: 'embedded', keys: ['key'], generate: { key: generate({ format: 'alphanumeric', length: 24 }) } },
});
export default defineConfig({ project: 'secretscli', secrets });
`,
});
after(() => {
  fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(repo, { recursive: true, force: true });
});

const ageCli = spawnSync('sh', ['-c', 'command -v age'], { encoding: 'utf8' }).stdout.trim();

function ageDecrypt(identity: string, file: string): { code: number | null; out: string; err: string } {
  const r = spawnSync(ageCli, ['-d', '-i', identity, file], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const VALUE = `pw-${Math.random().toString(36).slice(2)} with spaces & $ymbols`;

test('init creates the identity (0600, outside the repo) and the recipients file', async () => {
  const r = await waffle(['secrets', 'init'], { cwd: repo, env: envA });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.statSync(idA).mode & 0o777, 0o600);
  const pub = /public key: (age1\S+)/.exec(fs.readFileSync(idA, 'utf8'))![1]!;
  const recipients = fs.readFileSync(path.join(repo, 'secrets/recipients.txt'), 'utf8');
  assert.ok(recipients.includes(pub));
  assert.ok(!recipients.includes('AGE-SECRET-KEY'), 'no private key in the repository');
  assert.match(r.stderr, /created identity/);
  const again = await waffle(['secrets', 'init'], { cwd: repo, env: envA });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /already listed/);
  assert.equal(fs.readFileSync(path.join(repo, 'secrets/recipients.txt'), 'utf8').split(pub).length, 2, 'listed once');
});

test('init refuses an identity file inside the repository (it would be committed next to the secrets)', async () => {
  const inside = path.join(repo, 'keys', 'age.key');
  const r = await waffle(['secrets', 'init'], { cwd: repo, env: { ...envA, WAFFLE_AGE_IDENTITY_FILE: inside } });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /age identity .*inside the repository.*WAFFLE_AGE_IDENTITY_FILE/s);
  assert.equal(fs.existsSync(inside), false, 'no private key was written into the repository');
});

test('set reads stdin, get prints only the value, list shows no values', async () => {
  const set = await waffle(['secrets', 'set', 'db.password'], { cwd: repo, env: envA, input: VALUE + '\n' });
  assert.equal(set.code, 0, set.stderr);
  assert.ok(!set.stderr.includes(VALUE) && !set.stdout.includes(VALUE));
  assert.equal((await waffle(['secrets', 'set', 'db.url'], { cwd: repo, env: envA, input: 'postgres://db/app' })).code, 0);
  // NAME alone works for a secret with one key.
  assert.equal((await waffle(['secrets', 'set', 'token'], { cwd: repo, env: envA, input: 'tok-1' })).code, 0);

  const text = fs.readFileSync(path.join(repo, 'secrets/db.age'), 'utf8');
  assert.match(text, /^-----BEGIN AGE ENCRYPTED FILE-----\n/);
  assert.ok(!text.includes(VALUE) && !text.includes('postgres://'));

  const get = await waffle(['secrets', 'get', 'db.password'], { cwd: repo, env: envA });
  assert.equal(get.code, 0, get.stderr);
  assert.equal(get.stdout, VALUE, 'the value exactly, one trailing newline of stdin removed');
  assert.equal((await waffle(['secrets', 'get', 'token.value'], { cwd: repo, env: envA })).stdout, 'tok-1');

  const list = await waffle(['secrets', 'list', '--json'], { cwd: repo, env: envA });
  assert.equal(list.code, 0, list.stderr);
  assert.ok(!list.stdout.includes(VALUE) && !list.stdout.includes('postgres://'));
  const rows = JSON.parse(list.stdout).secrets as Array<{ name: string; keys: Array<{ key: string; stored: boolean; generated: boolean }> }>;
  assert.deepEqual(
    rows.map((r) => [r.name, r.keys.map((k) => `${k.key}:${k.stored ? 'set' : k.generated ? 'gen' : 'missing'}`)]),
    [
      ['db', ['password:set', 'url:set']],
      ['session', ['key:gen']],
      ['token', ['value:set']],
    ],
  );
  const plain = await waffle(['secrets', 'list'], { cwd: repo, env: envA });
  assert.match(plain.stderr, /session \[embedded\]: key \(generated on apply\)/);
});

test('set with the value already stored leaves the .age file untouched and says so; another value rewrites it', async () => {
  const file = path.join(repo, 'secrets/token.age');
  const before = fs.readFileSync(file, 'utf8');
  const past = new Date(Date.now() - 60_000);
  fs.utimesSync(file, past, past);
  const mtime = fs.statSync(file).mtimeMs;
  const same = await waffle(['secrets', 'set', 'token.value'], { cwd: repo, env: envA, input: 'tok-1' });
  assert.equal(same.code, 0, same.stderr);
  assert.match(same.stderr, /token\.value already has this value: secrets\/token\.age left untouched/);
  assert.ok(!same.stderr.includes('tok-1'));
  assert.equal(fs.readFileSync(file, 'utf8'), before, 'same bytes (age encryption is randomised: a rewrite would differ)');
  assert.equal(fs.statSync(file).mtimeMs, mtime, 'not written at all');

  const other = await waffle(['secrets', 'set', 'token.value'], { cwd: repo, env: envA, input: 'tok-2' });
  assert.equal(other.code, 0, other.stderr);
  assert.match(other.stderr, /^set token\.value in secrets\/token\.age/m);
  assert.notEqual(fs.readFileSync(file, 'utf8'), before, 'a new value is written');
  assert.equal((await waffle(['secrets', 'get', 'token.value'], { cwd: repo, env: envA })).stdout, 'tok-2');
  const back = await waffle(['secrets', 'set', 'token.value'], { cwd: repo, env: envA, input: 'tok-1' });
  assert.match(back.stderr, /^set token\.value/m, 'setting the earlier value again is a change');
  assert.equal((await waffle(['secrets', 'get', 'token.value'], { cwd: repo, env: envA })).stdout, 'tok-1');
});

test('set refuses values on the command line, undeclared names and missing stdin', async () => {
  const argv = await waffle(['secrets', 'set', 'db.password', 'hunter2'], { cwd: repo, env: envA, input: 'x' });
  assert.notEqual(argv.code, 0, 'no value argument is accepted');
  const undeclared = await waffle(['secrets', 'set', 'dbb.url'], { cwd: repo, env: envA, input: 'x' });
  assert.equal(undeclared.code, 1);
  assert.match(undeclared.stderr, /secret "dbb" is not declared/);
  const badKey = await waffle(['secrets', 'set', 'db.pasword'], { cwd: repo, env: envA, input: 'x' });
  assert.equal(badKey.code, 1);
  assert.match(badKey.stderr, /has no key "pasword" \(keys: url, password\)/);
  const empty = await waffle(['secrets', 'set', 'db.url'], { cwd: repo, env: envA, input: '' });
  assert.equal(empty.code, 1);
  assert.match(empty.stderr, /no value on stdin/);
});

test('generate creates a missing generated key once; --force replaces it', async () => {
  const g1 = await waffle(['secrets', 'generate'], { cwd: repo, env: envA });
  assert.equal(g1.code, 0, g1.stderr);
  const v1 = (await waffle(['secrets', 'get', 'session.key'], { cwd: repo, env: envA })).stdout;
  assert.match(v1, /^[A-Za-z0-9]{24}$/);
  await waffle(['secrets', 'generate'], { cwd: repo, env: envA });
  assert.equal((await waffle(['secrets', 'get', 'session.key'], { cwd: repo, env: envA })).stdout, v1, 'never regenerated unless asked');
  await waffle(['secrets', 'generate', 'session.key', '--force'], { cwd: repo, env: envA });
  const v2 = (await waffle(['secrets', 'get', 'session.key'], { cwd: repo, env: envA })).stdout;
  assert.match(v2, /^[A-Za-z0-9]{24}$/);
  assert.notEqual(v2, v1);
});

test('the age CLI (an independent implementation) decrypts what waffle wrote', { skip: ageCli ? false : 'the `age` CLI is not installed (apt-get install age)' }, () => {
  const r = ageDecrypt(idA, path.join(repo, 'secrets/db.age'));
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out), { password: VALUE, url: 'postgres://db/app' });
});

test('rekey for a second recipient: both identities decrypt; rm removes a key and a secret', async () => {
  // Bob makes his identity; his key cannot read the files yet.
  const bobInit = await waffle(['secrets', 'init'], { cwd: repo, env: envB });
  assert.equal(bobInit.code, 0, bobInit.stderr);
  const before = await waffle(['secrets', 'get', 'db.password'], { cwd: repo, env: envB });
  assert.equal(before.code, 1);
  assert.match(before.stderr, /cannot decrypt secrets\/db\.age/);
  assert.match(before.stderr, /waffle secrets rekey/);

  // `init` added Bob to recipients.txt; Alice (who can decrypt) re-encrypts for everyone listed.
  const bobPub = /public key: (age1\S+)/.exec(fs.readFileSync(idB, 'utf8'))![1]!;
  const listed = await waffle(['secrets', 'recipients', 'list'], { cwd: repo, env: envA });
  assert.equal(listed.code, 0, listed.stderr);
  assert.ok(listed.stdout.split('\n').includes(bobPub), `${bobPub} not in: ${listed.stdout}`);
  const already = await waffle(['secrets', 'recipients', 'add', bobPub], { cwd: repo, env: envA });
  assert.match(already.stderr, /already listed/);
  const rekey = await waffle(['secrets', 'rekey'], { cwd: repo, env: envA });
  assert.equal(rekey.code, 0, rekey.stderr);
  assert.match(rekey.stderr, /re-encrypted 3 files for 2 recipients/);

  for (const env of [envA, envB]) {
    const r = await waffle(['secrets', 'get', 'db.password'], { cwd: repo, env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, VALUE);
  }
  // Bob's identity given as the key itself (WAFFLE_AGE_IDENTITY) works too.
  const inline = await waffle(['secrets', 'get', 'token.value'], { cwd: repo, env: { ...envA, WAFFLE_AGE_IDENTITY: fs.readFileSync(idB, 'utf8'), WAFFLE_AGE_IDENTITY_FILE: '/nonexistent' } });
  assert.equal(inline.stdout, 'tok-1', inline.stderr);
  if (ageCli) {
    for (const id of [idA, idB]) {
      const r = ageDecrypt(id, path.join(repo, 'secrets/token.age'));
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(JSON.parse(r.out), { value: 'tok-1' });
    }
  }

  const rmKey = await waffle(['secrets', 'rm', 'db.url'], { cwd: repo, env: envA });
  assert.equal(rmKey.code, 0, rmKey.stderr);
  assert.equal((await waffle(['secrets', 'get', 'db.url'], { cwd: repo, env: envA })).code, 1);
  assert.equal((await waffle(['secrets', 'get', 'db.password'], { cwd: repo, env: envB })).stdout, VALUE, 'other keys kept, still for both');
  const rm = await waffle(['secrets', 'rm', 'token'], { cwd: repo, env: envA });
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal(fs.existsSync(path.join(repo, 'secrets/token.age')), false);
  assert.equal((await waffle(['secrets', 'rm', 'token'], { cwd: repo, env: envA })).code, 1);
});
