/**
 * `waffle check` looks at secret values too, read-only and by name only: with an identity, a used key
 * without a value fails the check (as it would fail plan) and says how to set it; a key apply generates
 * is fine; without an identity, or with Vault unreachable, it says the values were not checked and why.
 * Vault KV (the double) is read, never written.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeRepo, waffle, parseNdjson } from './helpers.ts';
import { VaultDouble } from './doubles/vault-double.ts';

const VALUE = 'pw-Zq81-never-printed';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-check-secrets-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const embeddedConfig = `import { defineConfig, defineSecrets, generate } from 'wafflemaker';
export const secrets = defineSecrets({
  db: { provider: 'embedded', keys: ['password', 'unused'] },
  session: { provider: 'embedded', keys: ['key'], generate: { key: generate({ format: 'hex', length: 16 }) } },
});
export default defineConfig({ project: 'chksec', secrets });
`;
const api = `import { defineService } from 'wafflemaker';
import { secrets } from '../waffle.config';
export default defineService({ image: 'example/api:1', env: { DB_PASSWORD: secrets.db.password, SESSION: secrets.session.key } });
`;

test('embedded store: not checked without an identity; with one, a missing value fails and a set one passes, names only', async () => {
  const repo = makeRepo({ 'waffle.config.ts': embeddedConfig, 'services/api.ts': api });
  const idFile = path.join(tmp, 'age.key');
  const env = { WAFFLE_AGE_IDENTITY_FILE: idFile, WAFFLE_STATE_DIR: path.join(tmp, 'state') };
  try {
    const none = await waffle(['check', '--no-types'], { cwd: repo, env });
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stderr, /ok: project chksec/);
    assert.match(none.stderr, new RegExp(`secret values not checked \\(embedded: db, session\\): no age identity at ${idFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}.*WAFFLE_AGE_IDENTITY_FILE`));

    const init = await waffle(['secrets', 'init'], { cwd: repo, env });
    assert.equal(init.code, 0, init.stderr);
    const missing = await waffle(['check', '--no-types'], { cwd: repo, env });
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /secret "db" has no value for "password", which is used by "api"/);
    assert.match(missing.stderr, /waffle secrets set db\.password/);
    assert.doesNotMatch(missing.stderr, /"unused"/, 'a key no service uses is not asked for');
    assert.doesNotMatch(missing.stderr, /session/, 'a generated key is not missing');
    // --json: the run-failed event on stdout, with the problem.
    const json = await waffle(['check', '--no-types', '--json'], { cwd: repo, env });
    assert.equal(json.code, 1, json.stderr);
    const failed = parseNdjson(json.stdout).find((e) => e.type === 'run-failed') as { stage: string; problems: Array<{ message: string }> } | undefined;
    assert.equal(failed?.stage, 'secrets');
    assert.match(failed!.problems[0]!.message, /"password"/);
    // --no-secrets skips the look.
    assert.equal((await waffle(['check', '--no-types', '--no-secrets'], { cwd: repo, env })).code, 0);

    const set = await waffle(['secrets', 'set', 'db.password'], { cwd: repo, env, input: VALUE });
    assert.equal(set.code, 0, set.stderr);
    const ok = await waffle(['check', '--no-types'], { cwd: repo, env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /secret values set: db, session/);
    assert.match(ok.stderr, /generated at the next apply: session\.key/);
    const okJson = await waffle(['check', '--no-types', '--json'], { cwd: repo, env });
    assert.equal(okJson.code, 0, okJson.stderr);
    for (const out of [ok.stdout, ok.stderr, okJson.stdout, okJson.stderr, missing.stderr, json.stdout]) assert.ok(!out.includes(VALUE), 'no value printed');
    assert.equal(JSON.parse(okJson.stdout).project, 'chksec', 'stdout still holds only the graph');
    assert.ok(!fs.existsSync(path.join(repo, 'secrets/session.age')), 'check stores no generated value');

    // A stored value too long for one environment variable fails the plan at the line of its variable.
    const long = 'x'.repeat(140 * 1024);
    assert.equal((await waffle(['secrets', 'set', 'db.password'], { cwd: repo, env, input: long })).code, 0);
    const tooLong = await waffle(['plan', '--json'], { cwd: repo, env });
    assert.equal(tooLong.code, 1, tooLong.stderr);
    const tooLongFailed = parseNdjson(tooLong.stdout).find((e) => e.type === 'run-failed') as { problems: Array<{ file: string; where?: string; loc?: string; message: string }> } | undefined;
    const p = tooLongFailed?.problems.find((x) => x.where === 'env.DB_PASSWORD');
    assert.ok(p, JSON.stringify(tooLongFailed?.problems));
    assert.equal(p.file, 'services/api.ts');
    assert.equal(p.loc, `3:${api.split('\n')[2]!.indexOf('DB_PASSWORD') + 1}`, 'the line and column of the variable');
    assert.ok(!tooLong.stdout.includes(long.slice(0, 64)) && !tooLong.stderr.includes(long.slice(0, 64)), 'no value printed');
    assert.equal((await waffle(['secrets', 'set', 'db.password'], { cwd: repo, env, input: VALUE })).code, 0);

    // An identity that cannot decrypt the file: not checked, saying why, and not a failure.
    const other = path.join(tmp, 'other.key');
    const init2 = await waffle(['secrets', 'init'], { cwd: makeRepo({}), env: { ...env, WAFFLE_AGE_IDENTITY_FILE: other } });
    assert.equal(init2.code, 0, init2.stderr);
    const stranger = await waffle(['check', '--no-types'], { cwd: repo, env: { ...env, WAFFLE_AGE_IDENTITY_FILE: other } });
    assert.equal(stranger.code, 0, stranger.stderr);
    assert.match(stranger.stderr, /secret values not checked \(embedded: db\): cannot decrypt secrets\/db\.age/);
  } finally {
    fs.rmSync(repo, { recursive: true, force: true });
  }
});

const vaultConfig = (address: string) => `import { defineConfig, defineSecrets, generate } from 'wafflemaker';
export const secrets = defineSecrets({
  app: { provider: 'vault', engine: 'kv', path: 'chk/app', keys: ['token', 'salt'], generate: { salt: generate({ format: 'hex', length: 8 }) } },
  pg: { provider: 'vault', engine: 'database', role: 'chk', keys: ['username', 'password'] },
});
export default defineConfig({ project: 'chkvault', secrets, vault: { address: '${address}', auth: { token: { env: 'VAULT_TOKEN' } } } });
`;
const vaultApi = `import { defineService } from 'wafflemaker';
import { secrets } from '../waffle.config';
export default defineService({ image: 'example/api:1', env: { TOKEN: secrets.app.token, SALT: secrets.app.salt, PG_USER: secrets.pg.username } });
`;

test('Vault: not checked when unreachable; when reachable, KV values are read (never written) and dynamic credentials left to apply', async () => {
  const vault = await VaultDouble.start();
  const repo = makeRepo({ 'waffle.config.ts': vaultConfig(vault.address), 'services/api.ts': vaultApi });
  const env = { VAULT_TOKEN: vault.rootToken, WAFFLE_STATE_DIR: path.join(tmp, 'state-vault') };
  try {
    const missing = await waffle(['check', '--no-types'], { cwd: repo, env });
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /Vault at .* has no secret at secret\/data\/chk\/app/);
    assert.match(missing.stderr, /vault kv put -mount=secret chk\/app token=\.\.\./);

    vault.kvPut('secret', 'chk/app', { token: VALUE });
    const ok = await waffle(['check', '--no-types'], { cwd: repo, env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /secret values set: app/);
    assert.match(ok.stderr, /dynamic credentials issued at apply: pg/);
    assert.ok(!(ok.stdout + ok.stderr).includes(VALUE));
    const writes = vault.calls.filter((c) => c.method !== 'GET' && !/auth\/token\/lookup-self/.test(c.path));
    assert.deepEqual(writes, [], 'check writes nothing to Vault and issues no credentials');

    await vault.stop();
    const down = await waffle(['check', '--no-types'], { cwd: repo, env });
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stderr, new RegExp(`secret values not checked \\(vault: app\\): Vault at ${vault.address.replace(/[.]/g, '\\.')} is unreachable`));
  } finally {
    await vault.stop();
    fs.rmSync(repo, { recursive: true, force: true });
  }
});
