/**
 * `secretString`: a secret value built from references and text.
 *
 * Without Docker: the tag (a branded object that refuses to become text), what the loader makes of it,
 * validation (parts, a misspelt key from a JavaScript user, URLs), the hash (a rotated part replaces the
 * service and the plan names the variable, never a value), bind (the container body gets the whole
 * string; events are redacted of the whole and of each part), and the embedded store as the source.
 *
 * With the real engine, the real CLI and the Vault DOUBLE (test/doubles/vault-double.ts, a local
 * imitation of Vault's HTTP API; no Vault server can be installed here): database credentials issued
 * by Vault are composed into DATABASE_URL (and a file). The container sees the full URL; the plan and
 * the events never show it or its parts; both parts come from one lease; renewal keeps it; a lease at
 * its max TTL redeploys the service with a new URL.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import type Dockerode from 'dockerode';
import { defineSecrets, defineService, isSecretString, secretString } from '../define/index.ts';
import { buildGraph } from '../runtime/graph/graph.ts';
import { ProblemsError, formatProblem } from '../runtime/problems.ts';
import type { ApplyEvent, LoadedRepo, LoadedService, ObservedState, Plan, Problem, ServiceData, ServiceGraph } from '../runtime/model.ts';
import { bindSecrets } from '../runtime/apply/bind.ts';
import { configHash, containerBody } from '../runtime/plan/container.ts';
import { reconcile } from '../runtime/plan/reconcile.ts';
import { SecretStore, ensureIdentityFile } from '../runtime/secrets/store.ts';
import { SecretsSession } from '../runtime/secrets/session.ts';
import { LABEL } from '../runtime/labels.ts';
import { loadRepo } from '../runtime/load/load.ts';
import { cleanupProject, dockerClient, execIn, makeRepo, parseNdjson, planFromJson, snapshot, uniqueProject, waffle } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { VaultDouble } from './doubles/vault-double.ts';
import { LeaseStore } from '../runtime/secrets/leases.ts';
import { Renewer } from '../runtime/secrets/renewer.ts';
import { VaultProvider } from '../runtime/secrets/vault.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-secret-template-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// ───────────── the tag ─────────────

const secrets = defineSecrets({
  pg: { provider: 'vault', engine: 'database', role: 'portal', keys: ['username', 'password'] },
  cache: { provider: 'embedded', keys: ['password'] },
});

test('secretString is a branded object holding the text and the references; it refuses to become text', () => {
  const s = secretString`postgres://${secrets.pg.username}:${secrets.pg.password}@postgres:${5432}/portal`;
  assert.ok(isSecretString(s));
  assert.deepEqual(s.strings, ['postgres://', ':', '@postgres:', '/portal']);
  assert.equal(s.values.length, 3);
  assert.equal(inspect(s), '[SecretString 3 parts]');
  const how = /secret value built at apply time, not a string.*env: \{ NAME: secretString/s;
  assert.throws(() => `${s}`, how);
  assert.throws(() => String(s), how);
  assert.throws(() => JSON.stringify({ s }), how);
  const svc = defineService({ image: 'a:1', env: { DATABASE_URL: s }, files: { '/run/secrets/url': s } });
  assert.ok(isSecretString(svc.definition.env!.DATABASE_URL));
  // A reference alone, turned into text, now says how to build a longer string.
  assert.throws(() => `${secrets.cache.password}`, /use the secretString tag: secretString`postgres:\/\/app:\$\{secrets\.cache\.password\}@db:5432\/app`/);
});

// ───────────── load and graph ─────────────

test('load: a secretString becomes { $ref: secret-string, parts } with references as names (env and files)', async () => {
  const root = makeRepo({
    'waffle.config.ts': `import { defineConfig, defineSecrets } from 'wafflemaker';
export const secrets = defineSecrets({ cache: { provider: 'embedded', keys: ['password'] } });
export default defineConfig({ project: 'ld', secrets });
`,
    'services/cache.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: 'a:1', port: 6379 });\n`,
    'services/api.ts': `import { defineService, secretString } from 'wafflemaker';
import { secrets } from '../waffle.config';
import cache from './cache';
export default defineService({
  image: 'a:1',
  env: { CACHE_URL: secretString\`\${cache.url('/0', { scheme: 'redis' })}?password=\${secrets.cache.password}&db=\${0}\` },
  files: { '/run/secrets/cache': secretString\`\${secrets.cache.password}\` },
});
`,
  });
  try {
    const repo = await loadRepo(root);
    const api = repo.services.find((s) => s.name === 'api')!;
    assert.deepEqual(api.data.env, {
      CACHE_URL: {
        $ref: 'secret-string',
        parts: [
          { $ref: 'service-url', service: 'cache', path: '/0', scheme: 'redis', definedAt: (api.data.env!.CACHE_URL as { parts: Array<{ definedAt?: string }> }).parts[0]!.definedAt },
          '?password=',
          { $ref: 'secret', secret: 'cache', key: 'password' },
          '&db=',
          0,
        ],
      },
    });
    assert.deepEqual(api.data.files, { '/run/secrets/cache': { $ref: 'secret-string', parts: [{ $ref: 'secret', secret: 'cache', key: 'password' }] } });
    const g = buildGraph(repo);
    assert.deepEqual(g.services.api!.secretEnv, { CACHE_URL: { template: ['redis://cache:6379/0?password=', { secret: 'cache', key: 'password' }, '&db=0'] } });
    assert.deepEqual(g.services.api!.links, ['cache'], 'a url() inside the template implies the link');
    assert.deepEqual(g.services.api!.env, {}, 'nothing of it is a plain variable');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

const decls = {
  db: { name: 'db', provider: 'embedded', keys: ['user', 'password'] },
  pg: { name: 'pg', provider: 'vault', engine: 'database', role: 'api', keys: ['username', 'password'] },
};
const vaultCfg = { address: 'http://127.0.0.1:8200', auth: { token: { env: 'VAULT_TOKEN' } } };
const sref = (secret: string, key: string) => ({ $ref: 'secret', secret, key });
const tpl = (...parts: unknown[]) => ({ $ref: 'secret-string', parts });

function repoOf(services: Array<[string, ServiceData]>, config: Record<string, unknown> = { project: 'demo', secrets: decls, vault: vaultCfg }, root = '/srv/repo'): LoadedRepo {
  const loaded: LoadedService[] = services.map(([name, data]) => ({ name, file: `services/${name}.ts`, data }));
  return { root, configFile: 'waffle.config.ts', config, services: loaded, inputs: [] };
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

test('graph: a template keeps its text and names its keys, in env and files; the body holds neither', () => {
  const g = buildGraph(
    repoOf([
      [
        'api',
        {
          image: 'a:1',
          user: '1000',
          env: { DATABASE_URL: tpl('postgres://', sref('pg', 'username'), ':', sref('pg', 'password'), '@postgres:', 5432, '/portal'), A: 'x' },
          files: { '/run/secrets/dsn': tpl('user=', sref('db', 'user'), ' password=', sref('db', 'password')) },
        },
      ],
    ]),
  );
  const api = g.services.api!;
  assert.deepEqual(api.secretEnv, {
    DATABASE_URL: { template: ['postgres://', { secret: 'pg', key: 'username' }, ':', { secret: 'pg', key: 'password' }, '@postgres:5432/portal'] },
  });
  assert.deepEqual(api.secretFiles, [{ target: '/run/secrets/dsn', template: ['user=', { secret: 'db', key: 'user' }, ' password=', { secret: 'db', key: 'password' }] }]);
  const body = containerBody(g, api, { commit: 'c', generation: 1 });
  assert.deepEqual(body.Env, ['A=x']);
  assert.deepEqual(body.HostConfig.Mounts, []);
  // The template's text and keys are part of the hash (they are configuration, not values).
  const other = { ...api, secretEnv: { DATABASE_URL: { template: ['postgres://', { secret: 'pg', key: 'username' }, '@postgres:5432/other'] } } };
  assert.notEqual(configHash(g, other), configHash(g, api));
});

test('graph: a misspelt key, an undeclared secret, a part that is not a reference or text, and a template without a secret are problems at their place', () => {
  const problems = problemsOf(
    repoOf([
      ['api', { image: 'a:1', env: { DATABASE_URL: tpl('postgres://', sref('pg', 'usernme'), '@db') } }],
      ['web', { image: 'a:1', env: { U: tpl(sref('pgg', 'username')), B: tpl(sref('db', 'user'), true), N: tpl('just text') } }],
      ['job', { image: 'a:1', files: { '/run/secrets/x': tpl(sref('db', 'user'), { $ref: 'service-url', service: 'api', path: '', scheme: 'http' }) } }],
    ]),
  );
  const text = problems.map(formatProblem).join('\n');
  const find = (re: RegExp) => {
    const p = problems.find((x) => re.test(x.message));
    assert.ok(p, `a problem matching ${re} in:\n${text}`);
    return p;
  };
  const key = find(/no key "usernme".*did you mean "username"/);
  assert.equal(key.service, 'api');
  assert.equal(key.where, 'env.DATABASE_URL.secretString[1]');
  assert.match(key.fix!, /secrets\.pg\.username/);
  assert.equal(find(/secret "pgg" is not declared/).where, 'env.U.secretString[0]');
  assert.equal(find(/true cannot be interpolated into a secretString/).where, 'env.B.secretString[1]');
  assert.equal(find(/holds no secret reference/).where, 'env.N');
  assert.equal(find(/a service url\(\) cannot go into a secret file/).service, 'job');
});

// ───────────── session, hash, plan and bind (embedded store) ─────────────

async function embeddedRepo(name: string, values: Record<string, Record<string, string>>) {
  const root = path.join(tmp, name);
  fs.mkdirSync(root);
  const idFile = path.join(tmp, `${name}-id`, 'age.key');
  const { recipient } = await ensureIdentityFile(idFile);
  const env = { WAFFLE_AGE_IDENTITY_FILE: idFile, WAFFLE_STATE_DIR: path.join(tmp, `${name}-state`), WAFFLE_SECRET_FILES_DIR: path.join(tmp, `${name}-files`) };
  const store = new SecretStore(root, env);
  store.addRecipient(recipient);
  for (const [secret, v] of Object.entries(values)) await store.write(secret, v);
  return { root, env, store };
}

const observedOf = (graph: ServiceGraph, plan: Plan): ObservedState => ({
  project: graph.project,
  containers: plan.operations
    .filter((o) => o.kind === 'create-service')
    .map((o) => {
      const op = o as Extract<Plan['operations'][number], { kind: 'create-service' }>;
      return {
        id: `id-${op.service}`,
        name: op.containerName,
        service: op.service,
        configHash: op.body.Labels[LABEL.configHash]!,
        commit: 'c1',
        generation: 1,
        image: op.body.Image,
        imageId: 'sha256:1',
        state: 'running',
        health: 'none',
        labels: op.body.Labels,
        restart: graph.services[op.service]!.restart,
        resources: graph.services[op.service]!.resources,
        createdAt: 1,
        ports: [],
      };
    }),
  networks: plan.operations
    .filter((o) => o.kind === 'create-network')
    .map((o) => {
      const op = o as Extract<Plan['operations'][number], { kind: 'create-network' }>;
      return { id: op.network, name: op.network, labels: op.body.Labels };
    }),
  volumes: [],
  images: ['x:1'],
});

test('embedded: the container body gets the whole string; a rotated part replaces exactly its users and the plan names the variable, never a value', async () => {
  const CANARY_USER = `cuser${Math.random().toString(36).slice(2, 10)}`;
  const CANARY_PW = `cpw${Math.random().toString(36).slice(2, 12)}`;
  const ROTATED = `crot${Math.random().toString(36).slice(2, 12)}`;
  const { root, env, store } = await embeddedRepo('emb', { db: { user: CANARY_USER, password: CANARY_PW } });
  const g = buildGraph(
    repoOf(
      [
        ['api', { image: 'x:1', env: { DATABASE_URL: tpl('postgres://', sref('db', 'user'), ':', sref('db', 'password'), '@postgres:5432/portal'), MODE: 'a' } }],
        ['job', { image: 'x:1', user: '1000', files: { '/run/secrets/dsn': tpl('user=', sref('db', 'user'), ' password=', sref('db', 'password')) } }],
        ['auth', { image: 'x:1', env: { DB_USER: sref('db', 'user') } }],
        ['plain', { image: 'x:1', env: { A: 'b' } }],
      ],
      { project: 'tpl', secrets: { db: decls.db } },
      root,
    ),
  );
  const s1 = (await SecretsSession.open(g, { env }))!;
  const plan1 = reconcile(g, { project: 'tpl', containers: [], networks: [], volumes: [], images: ['x:1'] }, { commit: 'c1', ...s1.hashInputs() });
  const shown = JSON.stringify(plan1) + JSON.stringify(s1) + inspect(s1, { depth: 10, showHidden: true });
  for (const v of [CANARY_USER, CANARY_PW]) assert.ok(!shown.includes(v), 'no part in the plan or the session as data');

  // Bind: the copy of the plan for the executor holds the whole string in Env and in the file.
  const bound = await bindSecrets(g, plan1, { project: 'tpl', containers: [], networks: [], volumes: [], images: [] }, s1, { env });
  const create = bound.plan.operations.find((o) => o.kind === 'create-service' && o.service === 'api') as Extract<Plan['operations'][number], { kind: 'create-service' }>;
  const url = `postgres://${CANARY_USER}:${CANARY_PW}@postgres:5432/portal`;
  assert.deepEqual(create.body.Env, [`DATABASE_URL=${url}`, 'MODE=a']);
  const job = bound.plan.operations.find((o) => o.kind === 'create-service' && o.service === 'job') as Extract<Plan['operations'][number], { kind: 'create-service' }>;
  const mount = job.body.HostConfig.Mounts.find((m) => m.Target === '/run/secrets/dsn')!;
  assert.equal(fs.readFileSync(mount.Source, 'utf8'), `user=${CANARY_USER} password=${CANARY_PW}`);
  assert.ok(!JSON.stringify(plan1).includes(CANARY_PW), 'the printed plan was not touched');

  // Events: the whole string and each part are redacted.
  const seen: ApplyEvent[] = [];
  bound.listen((e) => seen.push(e))({
    type: 'op-failed',
    op: 'create:api',
    kind: 'create-service',
    service: 'api',
    ms: 1,
    at: 1,
    failure: { message: `connect ${url} failed`, logTail: [`user ${CANARY_USER} denied`, `pw=${CANARY_PW}`, `dsn: user=${CANARY_USER} password=${CANARY_PW}`] },
  });
  const out = JSON.stringify(seen);
  for (const v of [url, CANARY_USER, CANARY_PW]) assert.ok(!out.includes(v), out);
  assert.match(out, /connect \[secretString api env\.DATABASE_URL\] failed/, 'the whole string is named as a whole');
  assert.match(out, /user \[secrets\.db\.user\] denied/);
  assert.match(out, /pw=\[secrets\.db\.password\]/);
  assert.match(out, /dsn: \[secretString job \/run\/secrets\/dsn\]/);
  const err = bound.redactError(new Error(`create failed: Env DATABASE_URL=${url}`)) as Error;
  assert.equal(err.message, 'create failed: Env DATABASE_URL=[secretString api env.DATABASE_URL]');

  // Same values: nothing to do.
  const observed = observedOf(g, plan1);
  const same = reconcile(g, observed, { commit: 'c2', ...(await SecretsSession.open(g, { env }))!.hashInputs() });
  assert.deepEqual(same.operations, []);

  // A rotated part: its users are replaced, each cause naming the variable and never a value.
  await store.update('db', { password: ROTATED });
  const s2 = (await SecretsSession.open(g, { env }))!;
  const plan2 = reconcile(g, observed, { commit: 'c2', ...s2.hashInputs() });
  const replaced = plan2.operations.filter((o) => o.kind === 'replace-service').map((o) => (o as { service: string }).service).sort();
  assert.deepEqual(replaced, ['api', 'job']);
  const apiOp = plan2.operations.find((o) => o.kind === 'replace-service' && o.service === 'api')!;
  assert.deepEqual(apiOp.causes, [{ kind: 'secrets', detail: 'a secret value changed (in DATABASE_URL)' }]);
  const text = JSON.stringify(plan2);
  for (const v of [ROTATED, CANARY_PW, CANARY_USER]) assert.ok(!text.includes(v), 'no value in the plan');
  // Labels carry keyed hashes only.
  assert.ok(!JSON.stringify(observed.containers.map((c) => c.labels)).includes(CANARY_PW));

  // The template's text changed and no value did (rotated back): the cause is the variable, not a value.
  await store.update('db', { password: CANARY_PW });
  const text2 = buildGraph(
    repoOf(
      [['api', { image: 'x:1', env: { DATABASE_URL: tpl('postgres://', sref('db', 'user'), ':', sref('db', 'password'), '@postgres:5432/other'), MODE: 'a' } }]],
      { project: 'tpl', secrets: { db: decls.db } },
      root,
    ),
  );
  const s3 = (await SecretsSession.open(text2, { env }))!;
  const plan3 = reconcile(text2, { ...observed, containers: observed.containers.filter((c) => c.service === 'api') }, { commit: 'c3', ...s3.hashInputs() });
  const causes = plan3.operations.find((o) => o.kind === 'replace-service')!.causes;
  assert.deepEqual(causes, [{ kind: 'env', detail: 'DATABASE_URL changed' }]);

  // Another variable changed and a part rotated: the env cause names only what was configured
  // differently, the secrets cause the variable whose value changed.
  await store.update('db', { password: ROTATED });
  const both = buildGraph(
    repoOf(
      [['api', { image: 'x:1', env: { DATABASE_URL: tpl('postgres://', sref('db', 'user'), ':', sref('db', 'password'), '@postgres:5432/portal'), MODE: 'b' } }]],
      { project: 'tpl', secrets: { db: decls.db } },
      root,
    ),
  );
  const plan4 = reconcile(both, { ...observed, containers: observed.containers.filter((c) => c.service === 'api') }, { commit: 'c4', ...(await SecretsSession.open(both, { env }))!.hashInputs() });
  assert.deepEqual(plan4.operations.find((o) => o.kind === 'replace-service')!.causes, [
    { kind: 'env', detail: 'MODE changed' },
    { kind: 'secrets', detail: 'a secret value changed (in DATABASE_URL)' },
  ]);
});

// ───────────── messages ─────────────

test('a secretString too long for one environment variable is found while planning, naming the variable, never the value', async () => {
  const big = `CANARYBIG${'x'.repeat(140 * 1024)}`;
  const { root, env } = await embeddedRepo('big', { db: { user: 'u', password: big } });
  const g = buildGraph(
    repoOf([['api', { image: 'x:1', env: { DATABASE_URL: tpl('postgres://', sref('db', 'user'), ':', sref('db', 'password'), '@db/app') } }]], { project: 'big', secrets: { db: decls.db } }, root),
  );
  await assert.rejects(SecretsSession.open(g, { env }), (e: unknown) => {
    assert.ok(e instanceof ProblemsError);
    const t = e.problems.map(formatProblem).join('\n');
    assert.match(t, /the secretString in DATABASE_URL is \d+ bytes as DATABASE_URL=…; Linux allows one environment variable at most/);
    assert.match(t, /files: \{ '\/run\/secrets\/database_url': secretString`…` \}/);
    assert.equal(e.problems[0]!.where, 'env.DATABASE_URL');
    assert.ok(!t.includes('CANARYBIG'), 'no value in the problem');
    return true;
  });
});

test('a secret with missing values: per service, the keys it uses that have none (services using only set keys are not named)', async () => {
  const { root, env } = await embeddedRepo('missing', { portal: { c: 'set' } });
  const g = buildGraph(
    repoOf(
      [
        ['web', { image: 'x:1', env: { A: sref('portal', 'a'), C: sref('portal', 'c') } }],
        ['sync', { image: 'x:1', env: { URL: tpl('x://', sref('portal', 'a'), ':', sref('portal', 'b')) } }],
        ['report', { image: 'x:1', env: { C: sref('portal', 'c') } }],
        ['other', { image: 'x:1', env: { D: sref('portal', 'd') } }],
      ],
      { project: 'miss', secrets: { portal: { name: 'portal', provider: 'embedded', keys: ['a', 'b', 'c', 'd', 'unused'] } } },
      root,
    ),
  );
  await assert.rejects(SecretsSession.open(g, { env }), (e: unknown) => {
    assert.ok(e instanceof ProblemsError);
    assert.equal(e.problems.length, 1);
    const t = formatProblem(e.problems[0]!);
    assert.match(
      t,
      /^secrets\/portal\.age: secret "portal" has no value for "a", "b", "d": "other" \(services\/other\.ts\) uses "d"; "sync" \(services\/sync\.ts\) uses "a", "b"; "web" \(services\/web\.ts\) uses "a"$/m,
      t,
    );
    assert.ok(!/report/.test(t) && !/"unused"/.test(t) && !/"c"/.test(t), t);
    assert.match(t, /waffle secrets set portal\.a/);
    return true;
  });
});

// ───────────── end to end: Vault-issued database credentials in DATABASE_URL ─────────────

const project = uniqueProject('tpl');
let docker: Dockerode;
let vault: VaultDouble;
let repo: string;
let home: string;
let env: Record<string, string>;
/** Every output of the CLI in this part, to look for values in. */
const outputs: string[] = [];

const e2eConfig = (address: string) => `import { defineConfig, defineSecrets, generate } from 'wafflemaker';

export const secrets = defineSecrets({
  pg: {
    provider: 'vault',
    engine: 'database',
    role: 'portal',
    keys: ['username', 'password'],
    createRole: { db_name: 'pg', creation_statements: ['CREATE ROLE "{{name}}"'], default_ttl: '60s', max_ttl: '120s' },
  },
  cache: { provider: 'embedded', keys: ['password'], generate: { password: generate({ format: 'alphanumeric', length: 24 }) } },
});

export default defineConfig({
  project: '${project}',
  secrets,
  vault: { address: '${address}', auth: { token: { env: 'VAULT_TOKEN' } }, renewFraction: 0.5 },
  defaults: { stopGracePeriod: '1s' },
});
`;

const portalService = `import { defineService, secretString } from 'wafflemaker';
import { secrets } from '../waffle.config';

const databaseUrl = secretString\`postgres://\${secrets.pg.username}:\${secrets.pg.password}@postgres:5432/portal\`;

export default defineService({
  image: '${TEST_IMAGES.busybox}',
  command: 'trap "exit 0" TERM; while true; do sleep 1; done',
  env: {
    DATABASE_URL: databaseUrl,
    PGUSER: secrets.pg.username,
    CACHE_URL: secretString\`redis://:\${secrets.cache.password}@cache:6379/\${0}\`,
    MODE: 'portal',
  },
  files: { '/run/secrets/database_url': databaseUrl },
});
`;

async function cli(args: string[], input?: string) {
  const r = await waffle(args, { cwd: repo, env, ...(input !== undefined ? { input } : {}) });
  outputs.push(`$ waffle ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  return r;
}

async function containerEnv(service: string): Promise<Record<string, string>> {
  const r = await execIn(docker, `${project}-${service}`, ['env']);
  assert.equal(r.code, 0, r.output);
  const out: Record<string, string> = {};
  for (const line of r.output.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

async function readInContainer(service: string, file: string): Promise<string> {
  const r = await execIn(docker, `${project}-${service}`, ['cat', file]);
  assert.equal(r.code, 0, r.output);
  return r.output;
}

const URL_RE = /^postgres:\/\/([^:@/]+):([^@]+)@postgres:5432\/portal$/;
const store = () => LeaseStore.open(project, { env: { WAFFLE_STATE_DIR: path.join(home, 'state') } });
const renewer = () =>
  new Renewer({ store: store(), provider: new VaultProvider({ address: vault.address, env: { VAULT_TOKEN: vault.rootToken }, now: () => vault.now() }), renewFraction: 0.5 });

/** Asserts none of `values` appears in any CLI output so far, nor in the containers' labels. */
async function assertNowhere(values: string[], what: string) {
  const text = outputs.join('\n');
  const labels = JSON.stringify((await snapshot(docker, project)).containers.map((c) => c.labels));
  for (const v of values) {
    assert.ok(v.length >= 8, `the canary ${what} is long enough to be meaningful`);
    assert.ok(!text.includes(v), `${what} appears in the CLI output`);
    assert.ok(!labels.includes(v), `${what} appears in a label`);
  }
}

let firstUrl = '';
let firstLease = '';
let portalId = '';

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!, { busybox: TEST_IMAGES.busybox });
  vault = await VaultDouble.start();
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-tpl-e2e-'));
  env = {
    VAULT_TOKEN: vault.createToken({ ttl: 86400 }),
    WAFFLE_STATE_DIR: path.join(home, 'state'),
    WAFFLE_AGE_IDENTITY_FILE: path.join(home, 'id', 'age.key'),
    WAFFLE_AGE_IDENTITY: '',
  };
  repo = makeRepo({ 'waffle.config.ts': e2eConfig(vault.address), 'services/portal.ts': portalService, '.gitignore': '.waffle/\n' }, { git: true });
  const init = await cli(['secrets', 'init']);
  assert.equal(init.code, 0, init.stderr);
});

after(async () => {
  if (docker) await cleanupProject(docker, project);
  if (vault) await vault.stop();
  if (repo) fs.rmSync(repo, { recursive: true, force: true });
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

test('e2e: Vault database credentials composed into DATABASE_URL: the container sees the full URL (env and file), both parts from one lease, no value in the plan or events (Vault double)', async () => {
  const plan = await cli(['plan', '--json']);
  assert.equal(plan.code, 0, plan.stderr);
  assert.equal(vault.issued({ role: 'portal' }).length, 0, 'planning issues no credentials');

  const r = await cli(['apply', '--yes', '--json']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const e = await containerEnv('portal');
  const m = URL_RE.exec(e.DATABASE_URL ?? '');
  assert.ok(m, `the container sees the composed URL (got ${e.DATABASE_URL === undefined ? 'nothing' : 'another shape'})`);
  const [, user, password] = m as unknown as [string, string, string];
  assert.match(user, /^v-token-portal-/);
  const lease = vault.leaseByValue(user);
  assert.ok(lease, 'the username in the URL was issued by the Vault double');
  assert.equal(lease.values.password, password, 'username and password in the URL come from one lease');
  assert.equal(vault.issued({ role: 'portal' }).length, 1, 'one lease for the service: the URL, the file and PGUSER share it');
  assert.equal(e.PGUSER, user);
  assert.equal(await readInContainer('portal', '/run/secrets/database_url'), e.DATABASE_URL, 'the file holds the same string');
  assert.deepEqual(store().list({ service: 'portal' }).map((l) => l.leaseId), [lease.leaseId]);

  // The embedded example: a generated password composed into CACHE_URL.
  const got = await cli(['secrets', 'get', 'cache.password']);
  assert.equal(got.code, 0, got.stderr);
  const cachePw = got.stdout.trim();
  outputs.pop(); // `secrets get` prints the value by design: it is not an output that must hide it
  assert.match(cachePw, /^[A-Za-z0-9]{24}$/);
  assert.equal(e.CACHE_URL, `redis://:${cachePw}@cache:6379/0`);

  // The mechanism put them in the container; nothing else shows them.
  const events = parseNdjson(r.stdout);
  assert.ok(events.some((x) => x.type === 'op-done' && x.service === 'portal'), 'the events are the apply of portal');
  await assertNowhere([e.DATABASE_URL!, user, password, cachePw, e.CACHE_URL!], 'a composed value or one of its parts');
  firstUrl = e.DATABASE_URL!;
  firstLease = lease.leaseId;
  portalId = (await docker.getContainer(`${project}-portal`).inspect()).Id;
});

test('e2e: a second plan changes nothing and issues nothing; renewal keeps the URL and the container (Vault double)', async () => {
  const issued = vault.issued().length;
  let p = await cli(['plan', '--json']);
  assert.equal(p.code, 0, p.stderr);
  assert.deepEqual(planFromJson(p.stdout).operations, []);

  // The double's clock runs in real time too: move it to a lease age, so a slow machine does not make the lease due early.
  const ageS = () => (vault.now() - store().get(firstLease)!.issuedAt) / 1000;
  vault.advance(Math.max(0, 35 - ageS())); // 35 s of a 60 s TTL: due
  const r = await renewer().renewDue(vault.now());
  assert.deepEqual(r.renewed.map((x) => x.leaseId), [firstLease]);
  assert.equal(vault.lease(firstLease)?.renewals, 1, 'the double saw the renewal');

  p = await cli(['plan', '--json']);
  assert.equal(p.code, 0, p.stderr);
  assert.deepEqual(planFromJson(p.stdout).operations, [], 'a renewed lease replaces nothing');
  // Offline, the template's Vault parts are not read: the service is reported as not checked, and nothing changes.
  const calls = vault.callsTo('').length;
  const off = await cli(['plan', '--offline', '--json']);
  assert.equal(off.code, 0, off.stderr);
  const ready = parseNdjson(off.stdout).find((x) => x.type === 'plan-ready')!;
  assert.deepEqual(ready.notChecked, ['portal']);
  assert.deepEqual((ready.plan as { operations: unknown[] }).operations, []);
  assert.equal(vault.callsTo('').length, calls, 'an offline plan contacts no Vault');
  const a = await cli(['apply', '--yes', '--json']);
  assert.equal(a.code, 0, a.stderr + a.stdout);
  assert.equal((await docker.getContainer(`${project}-portal`).inspect()).Id, portalId, 'same container');
  assert.equal((await containerEnv('portal')).DATABASE_URL, firstUrl, 'same URL');
  assert.equal(vault.issued().length, issued, 'no new credentials');
});

test('e2e: a lease at its max TTL redeploys the service with a new URL; the plan names DATABASE_URL, never a value; the old lease is revoked (Vault double)', async () => {
  const ageS = () => (vault.now() - store().get(firstLease)!.issuedAt) / 1000;
  vault.advance(Math.max(0, 75 - ageS())); // renewed at 35 for 60 s → due; the max TTL (120 s) caps it
  const r = await renewer().renewDue(vault.now());
  assert.deepEqual(r.expiring.map((x) => x.leaseId), [firstLease]);
  assert.match(r.expiring[0]!.reason, /max TTL/);

  const p = await cli(['plan', '--json']);
  assert.equal(p.code, 0, p.stderr);
  const plan = planFromJson(p.stdout);
  assert.deepEqual(plan.operations.filter((o) => 'service' in o).map((o) => `${o.kind}:${(o as { service: string }).service}`), ['replace-service:portal']);
  assert.deepEqual(plan.operations[0]!.causes, [{ kind: 'credentials', detail: 'fresh dynamic credentials: a lease can no longer be renewed (in DATABASE_URL)' }]);
  const text = await cli(['plan', '--plain']);
  assert.match(text.stdout + text.stderr, /DATABASE_URL/, 'the plain plan names the variable');

  const a = await cli(['apply', '--yes', '--json']);
  assert.equal(a.code, 0, a.stderr + a.stdout);
  const e = await containerEnv('portal');
  const m = URL_RE.exec(e.DATABASE_URL ?? '');
  assert.ok(m, 'a composed URL again');
  assert.notEqual(e.DATABASE_URL, firstUrl, 'a new URL');
  const fresh = vault.leaseByValue(m![1]!);
  assert.ok(fresh && fresh.leaseId !== firstLease);
  assert.equal(fresh.values.password, m![2], 'from one lease again');
  assert.equal(e.PGUSER, m![1]);
  assert.equal(await readInContainer('portal', '/run/secrets/database_url'), e.DATABASE_URL);
  assert.equal(vault.lease(firstLease)?.revokedBy, 'revoke', 'the old container is gone: its lease is revoked');
  assert.notEqual((await docker.getContainer(`${project}-portal`).inspect()).Id, portalId);
  const first = URL_RE.exec(firstUrl)!;
  await assertNowhere([e.DATABASE_URL!, m![1]!, m![2]!, firstUrl, first[1]!, first[2]!], 'an old or new URL or one of its parts');
});
