/**
 * Secrets without Docker: references in the authoring API (and what they refuse to do), validation in
 * graph, the keyed digest, the embedded age store, the session (values never in JSON or inspect) and
 * the type tests of test/fixtures/types/secrets-*.ts plus `waffle check` with file and line.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { defineSecrets, defineService, generate, isSecretRef } from '../define/index.ts';
import { buildGraph } from '../runtime/graph/graph.ts';
import { ProblemsError, formatProblem } from '../runtime/problems.ts';
import type { ApplyEvent, LoadedRepo, LoadedService, ObservedState, Plan, Problem, ServiceData } from '../runtime/model.ts';
import { bindSecrets } from '../runtime/apply/bind.ts';
import { configHash, containerBody } from '../runtime/plan/container.ts';
import { digestOf, hmacKey } from '../runtime/secrets/digest.ts';
import { SecretStore, ensureIdentityFile } from '../runtime/secrets/store.ts';
import { SecretsSession } from '../runtime/secrets/session.ts';
import { generateValue } from '../runtime/secrets/generate.ts';
import { loadRepo } from '../runtime/load/load.ts';
import { makeRepo, PKG_ROOT, typeDiagnostics, waffle } from './helpers.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-secrets-unit-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// ───────────── references ─────────────

const secrets = defineSecrets({
  db: { provider: 'embedded', keys: ['url', 'password'] },
  session: { provider: 'embedded', keys: ['key'], generate: { key: generate({ format: 'hex', length: 16 }) } },
});

test('a reference is a branded object naming secret and key', () => {
  const r = secrets.db.password;
  assert.ok(isSecretRef(r));
  assert.equal(r.secret, 'db');
  assert.equal(r.key, 'password');
  assert.equal(inspect(r), '[SecretRef secrets.db.password]');
});

test('turning a reference into text throws and says how to use it', () => {
  const r = secrets.db.url;
  const how = /secrets\.db\.url is a secret reference.*env: \{ NAME: secrets\.db\.url \}.*files:/s;
  assert.throws(() => `${r}`, how);
  assert.throws(() => 'x' + (r as unknown as string), how);
  assert.throws(() => String(r), how);
  assert.throws(() => JSON.stringify({ r }), how);
  assert.throws(() => JSON.stringify(secrets.db), /whole secret \(keys: url, password\)/);
  assert.throws(() => `${secrets.db}`, /whole secret/);
});

test('an undeclared key or secret throws at evaluation, naming the secret and its keys', () => {
  const loose = secrets as unknown as Record<string, Record<string, unknown>>;
  assert.throws(() => loose.db!.pasword, /secrets\.db has no key "pasword"; its keys are "url", "password"/);
  assert.throws(() => loose.dbb, /no secret named "dbb" is declared; declared: "db", "session"/);
  // Probes by libraries (promises, inspectors) do not throw.
  assert.equal(loose.db!.then, undefined);
  assert.equal((loose as Record<string, unknown>).then, undefined);
});

test('a service keeps references in env and files', () => {
  const s = defineService({ image: 'a:1', env: { URL: secrets.db.url }, files: { '/run/secrets/p': secrets.db.password } });
  assert.ok(isSecretRef(s.definition.env!.URL));
  assert.ok(isSecretRef(s.definition.files!['/run/secrets/p']));
});

test('generated values have the declared alphabet and length', () => {
  assert.match(generateValue('hex', 31), /^[0-9a-f]{31}$/);
  assert.match(generateValue('alphanumeric', 50), /^[A-Za-z0-9]{50}$/);
  assert.match(generateValue('base64', 44), /^[A-Za-z0-9+/]{44}$/);
  assert.notEqual(generateValue('hex', 32), generateValue('hex', 32));
});

// ───────────── graph ─────────────

const decls = {
  db: { name: 'db', provider: 'embedded', keys: ['url', 'password'] },
  pg: { name: 'pg', provider: 'vault', engine: 'database', role: 'api', keys: ['username', 'password'] },
};
const vault = { address: 'http://127.0.0.1:8200', auth: { token: { env: 'VAULT_TOKEN' } } };
const sref = (secret: string, key: string) => ({ $ref: 'secret', secret, key });

function repoOf(services: Array<[string, ServiceData]>, config: Record<string, unknown> = { project: 'demo', secrets: decls, vault }): LoadedRepo {
  const loaded: LoadedService[] = services.map(([name, data]) => ({ name, file: `services/${name}.ts`, definedAt: `services/${name}.ts:3:16`, data }));
  return { root: '/srv/repo', configFile: 'waffle.config.ts', config, services: loaded, inputs: [] };
}

function problemsOf(r: LoadedRepo): Problem[] {
  try {
    buildGraph(r);
  } catch (e) {
    assert.ok(e instanceof ProblemsError, String(e));
    return e.problems;
  }
  assert.fail('expected problems');
}

test('graph: secret env and files become names, never values; the graph carries declarations', () => {
  const g = buildGraph(
    repoOf([
      ['api', { image: 'a:1', env: { A: 'x', DATABASE_URL: sref('db', 'url') }, files: { '/run/secrets/pw': sref('db', 'password'), '/run/secrets/../secrets/u': sref('pg', 'username') }, user: '1000' }],
      ['web', { image: 'a:1' }],
    ]),
  );
  const api = g.services.api!;
  assert.deepEqual(api.env, { A: 'x' });
  assert.deepEqual(api.secretEnv, { DATABASE_URL: { secret: 'db', key: 'url' } });
  assert.deepEqual(api.secretFiles, [
    { target: '/run/secrets/pw', secret: 'db', key: 'password' },
    { target: '/run/secrets/u', secret: 'pg', key: 'username' },
  ]);
  assert.equal(g.services.web!.secretEnv, undefined);
  assert.deepEqual(Object.keys(g.secrets!), ['db', 'pg']);
  assert.equal(g.vault!.address, 'http://127.0.0.1:8200');
  assert.deepEqual(g.vault!.auth, { method: 'token', tokenEnv: 'VAULT_TOKEN' });
  // The body has no secret entries; the hash still depends on which secret a variable or file takes.
  const body = containerBody(g, api, { commit: 'c', generation: 1 });
  assert.deepEqual(body.Env, ['A=x']);
  assert.deepEqual(body.HostConfig.Mounts, []);
  const other = { ...api, secretEnv: { DATABASE_URL: { secret: 'db', key: 'password' } } };
  assert.notEqual(configHash(g, other), configHash(g, api));
  const moved = { ...api, secretFiles: [{ target: '/run/other', secret: 'db', key: 'password' }] };
  assert.notEqual(configHash(g, moved), configHash(g, api));
});

test('graph: an undeclared secret or key (a JS user bypassing types) is a problem with file, service and fix', () => {
  const problems = problemsOf(
    repoOf([
      ['api', { image: 'a:1', env: { X: sref('dbb', 'url'), Y: sref('db', 'pasword') }, files: { '/run/secrets/z': sref('nope', 'k') } }],
    ]),
  );
  const texts = problems.map(formatProblem);
  const find = (re: RegExp) => {
    const p = problems.find((x) => re.test(x.message));
    assert.ok(p, `no problem ${re} in\n${texts.join('\n')}`);
    assert.equal(p.file, 'services/api.ts');
    assert.equal(p.service, 'api');
    assert.ok(p.fix);
    return p;
  };
  assert.equal(find(/secret "dbb" is not declared in waffle\.config\.ts.*did you mean "db"/).fix, 'write secrets.db.url');
  assert.equal(find(/secret "db" has no key "pasword".*did you mean "password"/).where, 'env.Y');
  assert.match(find(/secret "nope" is not declared/).where!, /^files\["\/run\/secrets\/z"\]$/);
  assert.equal(problems.length, 3, texts.join('\n'));
});

test('graph: secrets used but none declared, bad files, bad declarations, vault missing', () => {
  const none = problemsOf(repoOf([['api', { image: 'a:1', env: { X: sref('db', 'url') } }]], { project: 'demo' }));
  assert.match(none[0]!.message, /declares no secrets/);
  assert.match(none[0]!.fix!, /defineSecrets/);

  const files = problemsOf(
    repoOf([
      ['api', { image: 'a:1', files: { 'relative/x': sref('db', 'url'), '/run/plain': 'hunter2', '/data/x': sref('db', 'url') }, volumes: [{ name: 'd', target: '/data' }] }],
      ['named', { image: 'a:1', user: 'nobody', files: { '/run/secrets/x': sref('db', 'url') } }],
    ]),
  ).map(formatProblem);
  assert.ok(files.some((t) => /must be an absolute file path/.test(t)), files.join('\n'));
  assert.ok(files.some((t) => /must be a secret reference/.test(t)), files.join('\n'));
  assert.ok(files.some((t) => /inside a volume/.test(t)), files.join('\n'));
  assert.ok(files.some((t) => /services\/named\.ts(:\d+:\d+)?: service "named": user: .*must be numeric/.test(t)), files.join('\n'));
  assert.ok(!files.join('\n').includes('hunter2') || files.every((t) => !/hunter2/.test(t.split('got')[0]!)));

  const bad = problemsOf(
    repoOf([['api', { image: 'a:1' }]], {
      project: 'demo',
      secrets: {
        a: { provider: 'sops', keys: ['x'] },
        b: { provider: 'embedded', keys: ['x'], generate: { y: { format: 'hex', length: 8 } } },
        c: { provider: 'vault', engine: 'database', role: 'r', keys: ['user'] },
        d: { provider: 'vault', engine: 'kv', keys: ['x'] },
        e: { provider: 'embedded', keys: ['then'] },
      },
    }),
  ).map(formatProblem);
  for (const re of [/provider "sops"/, /"y" is generated but is not among the keys/, /provides "username", "password", not "user"/, /a kv secret needs `path`/, /key "then" is reserved/, /come from Vault, but no vault is configured/]) {
    assert.ok(bad.some((t) => re.test(t)), `${re} in\n${bad.join('\n')}`);
  }
  assert.ok(bad.every((t) => t.startsWith('waffle.config.ts')), bad.join('\n'));
});

// ───────────── digest ─────────────

test('digest: keyed, order-insensitive, changes with any value, key created 0600 outside the repo', () => {
  const env = { WAFFLE_STATE_DIR: path.join(tmp, 'state') };
  const k1 = hmacKey('proj', env);
  assert.equal(k1.length, 32);
  assert.deepEqual(hmacKey('proj', env), k1, 'the key is kept');
  const file = path.join(tmp, 'state', 'proj', 'hmac.key');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const a = { secret: 'db', key: 'url', value: 'postgres://x' };
  const b = { secret: 'db', key: 'password', value: 'p1' };
  const d = digestOf(k1, [a, b])!;
  assert.match(d, /^[0-9a-f]{64}$/);
  assert.equal(digestOf(k1, [b, a]), d);
  assert.notEqual(digestOf(k1, [a, { ...b, value: 'p2' }]), d);
  assert.notEqual(digestOf(Buffer.alloc(32, 1), [a, b]), d, 'another deployer key gives another digest');
  assert.equal(digestOf(k1, []), undefined);
  assert.ok(!d.includes('p1') && !d.includes('postgres'));
});

// ───────────── store and session ─────────────

test('store: age files per secret, armored, decrypted with the identity; wrong identity explains the fix', async () => {
  const root = path.join(tmp, 'repo1');
  fs.mkdirSync(root);
  const idFile = path.join(tmp, 'id1', 'age.key');
  const { recipient, created } = await ensureIdentityFile(idFile);
  assert.ok(created);
  assert.equal(fs.statSync(idFile).mode & 0o777, 0o600);
  assert.match(recipient, /^age1/);
  const env = { WAFFLE_AGE_IDENTITY_FILE: idFile };
  const store = new SecretStore(root, env);
  store.addRecipient(recipient);
  await store.update('db', { password: 'p@ss w0rd', url: 'u' });
  await store.update('db', { url: 'u2' });
  const text = fs.readFileSync(path.join(root, 'secrets/db.age'), 'utf8');
  assert.match(text, /^-----BEGIN AGE ENCRYPTED FILE-----/);
  assert.ok(!text.includes('p@ss'));
  assert.deepEqual(await store.read('db'), { password: 'p@ss w0rd', url: 'u2' });
  assert.deepEqual(store.names(), ['db']);

  const other = path.join(tmp, 'id2', 'age.key');
  await ensureIdentityFile(other);
  await assert.rejects(new SecretStore(root, { WAFFLE_AGE_IDENTITY_FILE: other }).read('db'), /cannot decrypt secrets\/db\.age .*waffle secrets recipients add age1/s);
  await assert.rejects(new SecretStore(root, { WAFFLE_AGE_IDENTITY_FILE: path.join(tmp, 'none') }).read('db'), /no age identity at .*waffle secrets init/);
});

test('store and session refuse private files inside the repository: the identity, the HMAC key state', async () => {
  const root = path.join(tmp, 'repo-inside');
  fs.mkdirSync(root);
  const idFile = path.join(root, '.keys', 'age.key');
  const { recipient } = await ensureIdentityFile(idFile);
  const store = new SecretStore(root, { WAFFLE_AGE_IDENTITY_FILE: idFile });
  store.addRecipient(recipient);
  await store.write('db', { url: 'u' }); // encrypting needs only the recipients
  await assert.rejects(store.read('db'), /age identity .*inside the repository/);
  assert.throws(() => store.checkIdentity(), /age identity .*inside the repository.*WAFFLE_AGE_IDENTITY_FILE/s);

  const outside = path.join(tmp, 'id-outside', 'age.key');
  const out = await ensureIdentityFile(outside);
  const ok = new SecretStore(root, { WAFFLE_AGE_IDENTITY_FILE: outside });
  ok.addRecipient(out.recipient);
  await ok.write('db', { url: 'u', password: 'p' });
  const g = buildGraph({
    root,
    configFile: 'waffle.config.ts',
    config: { project: 'inside', secrets: { db: { provider: 'embedded', keys: ['url', 'password'] } } },
    services: [{ name: 'api', file: 'services/api.ts', data: { image: 'x:1', env: { U: sref('db', 'url') } } }],
    inputs: [],
  });
  const stateInside = path.join(root, '.waffle-state');
  await assert.rejects(
    SecretsSession.open(g, { env: { WAFFLE_AGE_IDENTITY_FILE: outside, WAFFLE_STATE_DIR: stateInside } }),
    /state directory .*inside the repository.*WAFFLE_STATE_DIR/s,
  );
  assert.equal(fs.existsSync(stateInside), false, 'no HMAC key was written into the repository');
  const s = await SecretsSession.open(g, { env: { WAFFLE_AGE_IDENTITY_FILE: outside, WAFFLE_STATE_DIR: path.join(tmp, 'state-outside') } });
  assert.match(s!.digests.api!, /^[0-9a-f]{64}$/);
});

test('bind: events are redacted of every known value, and of each line of a multi-line value (a key file printed line by line)', async () => {
  const root = path.join(tmp, 'repo-redact');
  fs.mkdirSync(root);
  const idFile = path.join(tmp, 'id-redact', 'age.key');
  const { recipient } = await ensureIdentityFile(idFile);
  const env = { WAFFLE_AGE_IDENTITY_FILE: idFile, WAFFLE_STATE_DIR: path.join(tmp, 'state-redact') };
  const store = new SecretStore(root, env);
  store.addRecipient(recipient);
  const pem = ['-----BEGIN PRIVATE KEY-----', 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC', 'kqhkiG9w0BAQEFAASCBKcwggSjAgEAAo', '-----END PRIVATE KEY-----', ''].join('\n');
  await store.write('tls', { key: pem, token: 'CANARY-tok-42' });
  const g = buildGraph({
    root,
    configFile: 'waffle.config.ts',
    config: { project: 'redact', secrets: { tls: { provider: 'embedded', keys: ['key', 'token'] } } },
    services: [{ name: 'api', file: 'services/api.ts', data: { image: 'x:1', env: { T: sref('tls', 'token') }, files: { '/run/secrets/key': sref('tls', 'key') } } }],
    inputs: [],
  });
  const session = (await SecretsSession.open(g, { env }))!;
  const bound = await bindSecrets(g, { project: 'redact', operations: [] } as unknown as Plan, { containers: [] } as unknown as ObservedState, session, { env });
  const seen: ApplyEvent[] = [];
  const emit = bound.listen((e) => seen.push(e));
  emit({
    type: 'op-failed',
    op: 'create:api',
    kind: 'create-service',
    service: 'api',
    ms: 1,
    at: 1,
    failure: { message: 'token CANARY-tok-42 rejected', logTail: ['loaded key:', 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC', '  kqhkiG9w0BAQEFAASCBKcwggSjAgEAAo  '] },
  });
  const out = JSON.stringify(seen);
  assert.ok(!out.includes('CANARY-tok-42'), out);
  assert.ok(!out.includes('MIIEvQIBADANBgkqhkiG9w0BAQEFAASC') && !out.includes('kqhkiG9w0BAQEFAASCBKcwggSjAgEAAo'), out);
  assert.match(out, /\[secrets\.tls\.token\] rejected/);
  assert.match(out, /"\[secrets\.tls\.key\]"/);
  assert.match(out, /"loaded key:"/, 'other text is left alone');
  // An error thrown during execute is redacted the same way; one without a value passes unchanged.
  const thrown = bound.redactError(new Error('create failed: Env T=CANARY-tok-42 invalid')) as Error;
  assert.equal(thrown.message, 'create failed: Env T=[secrets.tls.token] invalid');
  const plain = new Error('no value here');
  assert.equal(bound.redactError(plain), plain);
});

test('session: digests per service, generated values kept in memory until apply, never serialised', async () => {
  const root = path.join(tmp, 'repo2');
  fs.mkdirSync(root);
  const idFile = path.join(tmp, 'id3', 'age.key');
  const { recipient } = await ensureIdentityFile(idFile);
  const env = { WAFFLE_AGE_IDENTITY_FILE: idFile, WAFFLE_STATE_DIR: path.join(tmp, 'state2') };
  const store = new SecretStore(root, env);
  store.addRecipient(recipient);
  await store.write('db', { url: 'CANARY-url-1', password: 'CANARY-pw-1' });
  const g = buildGraph({
    root,
    configFile: 'waffle.config.ts',
    config: { project: 'sess', secrets: { db: { provider: 'embedded', keys: ['url', 'password'] }, session: { provider: 'embedded', keys: ['key'], generate: { key: { format: 'hex', length: 20 } } } } },
    services: [
      { name: 'a', file: 'services/a.ts', data: { image: 'x:1', env: { U: sref('db', 'url') } } },
      { name: 'b', file: 'services/b.ts', data: { image: 'x:1', env: { K: sref('session', 'key') } } },
      { name: 'c', file: 'services/c.ts', data: { image: 'x:1' } },
    ],
    inputs: [],
  });
  const s1 = (await SecretsSession.open(g, { env }))!;
  assert.deepEqual(Object.keys(s1.digests).sort(), ['a', 'b']);
  assert.deepEqual(s1.generated, [{ secret: 'session', key: 'key' }]);
  assert.equal(fs.existsSync(path.join(root, 'secrets/session.age')), false, 'planning writes nothing');
  const shown = JSON.stringify(s1) + inspect(s1, { depth: 10, showHidden: true }) + JSON.stringify({ ...s1 });
  assert.ok(!shown.includes('CANARY'), shown);
  const { values } = await s1.valuesFor('b');
  const generatedValue = values.get('session')!.get('key')!;
  assert.match(generatedValue, /^[0-9a-f]{20}$/);
  await s1.persistGenerated();
  assert.deepEqual(await store.read('session'), { key: generatedValue });

  // Same values → same digests; a rotated value changes only its users' digest.
  const s2 = (await SecretsSession.open(g, { env }))!;
  assert.deepEqual(s2.digests, s1.digests);
  assert.deepEqual(s2.generated, []);
  await store.update('db', { password: 'CANARY-pw-2' });
  assert.deepEqual((await SecretsSession.open(g, { env }))!.digests, s1.digests, 'a key no service uses changes nothing');
  await store.update('db', { url: 'CANARY-url-2' });
  const s3 = (await SecretsSession.open(g, { env }))!;
  assert.notEqual(s3.digests.a, s1.digests.a);
  assert.equal(s3.digests.b, s1.digests.b);

  // A missing value is a problem naming the file, the users and how to set it.
  await store.remove('db', 'url');
  await assert.rejects(SecretsSession.open(g, { env }), (e: unknown) => {
    assert.ok(e instanceof ProblemsError);
    const t = formatProblem(e.problems[0]!);
    assert.match(t, /^secrets\/db\.age: secret "db" has no value for "url", which is used by "a" \(services\/a\.ts\)/);
    assert.match(t, /waffle secrets set db\.url/);
    return true;
  });
});

test('session: an unreachable Vault fails before anything is read, naming the address', async () => {
  const g = buildGraph(
    repoOf([['api', { image: 'a:1', env: { U: sref('pg', 'username') } }]], {
      project: 'vdown',
      secrets: decls,
      vault: { address: 'http://127.0.0.1:1', auth: { token: { env: 'VAULT_TOKEN' } } },
    }),
  );
  await assert.rejects(SecretsSession.open(g, { env: { VAULT_TOKEN: 't', WAFFLE_STATE_DIR: path.join(tmp, 'state3') } }), /127\.0\.0\.1:1/);
});

// ───────────── load ─────────────

test('load: references become { $ref: secret } data and the config carries the declarations', async () => {
  const root = makeRepo({
    'waffle.config.ts': `import { defineConfig, defineSecrets, generate } from 'wafflemaker';
export const secrets = defineSecrets({
  db: { provider: 'embedded', keys: ['url'] },
  s: { provider: 'embedded', keys: ['k'], generate: { k: generate({ format: 'hex', length: 8 }) } },
});
export default defineConfig({ project: 'ld', secrets });
`,
    'services/api.ts': `import { defineService } from 'wafflemaker';
import { secrets } from '../waffle.config';
export default defineService({ image: 'a:1', env: { U: secrets.db.url }, files: { '/run/k': secrets.s.k } });
`,
  });
  try {
    const repo = await loadRepo(root);
    assert.deepEqual(repo.config.secrets, {
      db: { provider: 'embedded', keys: ['url'], name: 'db' },
      s: { provider: 'embedded', keys: ['k'], generate: { k: { format: 'hex', length: 8 } }, name: 's' },
    });
    assert.deepEqual(repo.services[0]!.data.env, { U: { $ref: 'secret', secret: 'db', key: 'url' } });
    assert.deepEqual(repo.services[0]!.data.files, { '/run/k': { $ref: 'secret', secret: 's', key: 'k' } });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

// ───────────── types ─────────────

const diagnostics = typeDiagnostics;

test('types: right secret declarations and references compile; each wrong one is an error', async () => {
  const fixtures = path.join(PKG_ROOT, 'test/fixtures/types');
  assert.deepEqual(await diagnostics(path.join(fixtures, 'secrets-right.ts')), []);
  const wrong = path.join(fixtures, 'secrets-wrong.ts');
  const expected = fs.readFileSync(wrong, 'utf8').split('\n').filter((l) => l.includes('@ts-expect-error')).length;
  assert.ok(expected >= 12, `${expected} wrong definitions`);
  assert.deepEqual(await diagnostics(wrong), [], 'every @ts-expect-error is used (TS2578 otherwise)');
});

test('waffle check: a missing secret or key fails with file and line; a correct reference passes', async () => {
  const config = `import { defineConfig, defineSecrets } from 'wafflemaker';
export const secrets = defineSecrets({ db: { provider: 'embedded', keys: ['url', 'password'] } });
export default defineConfig({ project: 'tcheck', secrets });
`;
  const service = (value: string) => `import { defineService } from 'wafflemaker';
import { secrets } from '../waffle.config';
export default defineService({
  image: 'a:1',
  env: { DATABASE_URL: ${value} },
});
`;
  const root = makeRepo({ 'waffle.config.ts': config, 'services/api.ts': service('secrets.db.pasword') });
  try {
    const key = await waffle(['check'], { cwd: root });
    assert.equal(key.code, 1, key.stderr);
    assert.match(key.stderr, /services\/api\.ts:5:\d+/);
    assert.match(key.stderr, /pasword/);

    fs.writeFileSync(path.join(root, 'services/api.ts'), service('secrets.dbb.url'));
    const name = await waffle(['check'], { cwd: root });
    assert.equal(name.code, 1, name.stderr);
    assert.match(name.stderr, /services\/api\.ts:5:\d+/);
    assert.match(name.stderr, /dbb/);

    fs.writeFileSync(path.join(root, 'services/api.ts'), service('secrets.db.url'));
    const ok = await waffle(['check'], { cwd: root });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /1 service/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
