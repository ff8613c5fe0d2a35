/**
 * `waffle import compose` on Compose files in the shapes teams write: a web app with a database and a
 * cache, healthcheck-gated `depends_on` with `extends` and two merged files, bind mounts with env files
 * and `.env` interpolation, several networks, and keys that cannot be mapped. Each import must
 * type-check and plan (the real CLI); the runnable ones are applied on the real engine and brought up
 * with Debian's docker-compose from the original file, and the two are compared container by
 * container: the same services, images and environment, and the same reachability, checked from inside
 * the containers. Secret-looking values must be in the encrypted store and in no written file.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, execIn, freePort, httpGet, makeRepo, planFromJson, uniqueProject, waffle } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { importCompose, interpolate, looksSecret, shellWords, ComposeImportError } from '../cli/import/compose.ts';

const IMAGE = TEST_IMAGES.busybox;
const HTTPD = `["httpd", "-f", "-p", "8080", "-h", "/www"]`;

let docker: Dockerode;
const cleanups: Array<() => Promise<void> | void> = [];
let identityDir: string;
let idEnv: Record<string, string>;

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!, TEST_IMAGES);
  identityDir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-import-id-'));
  idEnv = { WAFFLE_AGE_IDENTITY_FILE: path.join(identityDir, 'age.key') };
  cleanups.push(() => fs.rmSync(identityDir, { recursive: true, force: true }));
});

after(async () => {
  for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => undefined);
});

function compose(dir: string, project: string, args: string[], env: Record<string, string> = {}): { code: number; out: string } {
  const r = spawnSync('docker-compose', ['-p', project, ...args], { cwd: dir, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 180_000 });
  return { code: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
}

/** A Compose directory and an output directory, both removed at the end (with what runs from them). */
function fixture(files: Record<string, string>): { dir: string; out: string } {
  const dir = makeRepo(files);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-imported-'));
  cleanups.push(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(out, { recursive: true, force: true });
  });
  return { dir, out };
}

/** `waffle import compose` then `waffle check` (type-check, evaluation, validation, secret values). */
async function importAndCheck(dir: string, out: string, project: string, args: string[] = [], env: Record<string, string> = {}): Promise<{ stderr: string; json: { services: Record<string, string>; secrets: string[]; notes: Array<{ service?: string; key: string; level: string; message: string; fix?: string }> } }> {
  const r = await waffle(['import', 'compose', '--out', out, '--project', project, '--json', ...args], { cwd: dir, env: { ...idEnv, ...env } });
  assert.equal(r.code, 0, r.stderr);
  const check = await waffle(['check'], { cwd: out, env: idEnv });
  assert.equal(check.code, 0, `waffle check of the import failed:\n${check.stderr}\n${fileDump(out)}`);
  return { stderr: r.stderr, json: JSON.parse(r.stdout) };
}

function fileDump(out: string): string {
  const files = ['waffle.config.ts', ...fs.readdirSync(path.join(out, 'services')).map((f) => `services/${f}`)];
  return files.map((f) => `--- ${f}\n${fs.readFileSync(path.join(out, f), 'utf8')}`).join('\n');
}

/** Every text the import wrote (the .ts files, tsconfig, package.json): secret values must be in none. */
function writtenText(out: string): string {
  const walk = (d: string): string[] =>
    fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? (e.name === 'secrets' ? [] : walk(path.join(d, e.name))) : [path.join(d, e.name)]));
  return walk(out).map((f) => fs.readFileSync(f, 'utf8')).join('\n');
}

async function plannedServices(out: string): Promise<string[]> {
  const r = await waffle(['plan', '--json'], { cwd: out, env: idEnv });
  assert.equal(r.code, 0, r.stderr);
  const plan = planFromJson(r.stdout);
  return plan.operations.filter((o) => o.kind === 'create-service').map((o) => (o as { service: string }).service).sort();
}

interface Running {
  id: string;
  info: Dockerode.ContainerInspectInfo;
}

/** The Compose project's container of each service. */
async function composeContainers(dir: string, project: string, services: string[], env: Record<string, string>): Promise<Record<string, Running>> {
  const out: Record<string, Running> = {};
  for (const s of services) {
    const id = compose(dir, project, ['ps', '-q', s], env).out.trim().split('\n').pop()!;
    out[s] = { id, info: await docker.getContainer(id).inspect() };
  }
  return out;
}

async function waffleContainers(project: string, services: Record<string, string>): Promise<Record<string, Running>> {
  const out: Record<string, Running> = {};
  for (const [composeName, name] of Object.entries(services)) {
    const info = await docker.getContainer(`${project}-${name}`).inspect();
    out[composeName] = { id: info.Id, info };
  }
  return out;
}

/** Which services each service reaches over HTTP by name (`from → to`), checked from inside its container. */
async function reachability(running: Record<string, Running>, names: Record<string, string>): Promise<string[]> {
  const pairs: string[] = [];
  for (const [from, c] of Object.entries(running)) {
    for (const to of Object.keys(running)) {
      if (to === from) continue;
      const r = await execIn(docker, c.id, ['timeout', '5', 'wget', '-q', '-O', '-', `http://${names[to]}:8080/`]);
      if (r.code === 0) pairs.push(`${from} → ${to}`);
    }
  }
  return pairs.sort();
}

/** The environment a container was given, sorted (the image's PATH included on both sides). */
const envOf = (r: Running) => [...r.info.Config.Env].sort();

/**
 * Imports, applies with waffle, brings the original up with docker-compose, and compares: the plan's
 * services are Compose's services; each container has the same image and environment; the same
 * services reach each other. Returns both sides for further checks.
 */
async function compareWithCompose(
  dir: string,
  out: string,
  project: string,
  json: { services: Record<string, string> },
  env: { waffle?: Record<string, string>; compose?: Record<string, string> } = {},
) {
  const composeProject = `${project}c`;
  cleanups.push(() => void compose(dir, composeProject, ['down', '-v', '--remove-orphans'], env.compose));
  cleanups.push(() => cleanupProject(docker, project));

  const configured = compose(dir, composeProject, ['config', '--services'], env.compose);
  assert.equal(configured.code, 0, configured.out);
  const composeServices = configured.out.trim().split('\n').sort();
  assert.deepEqual(Object.keys(json.services).sort(), composeServices);
  assert.deepEqual(await plannedServices(out), Object.values(json.services).sort());

  const applied = await waffle(['apply', '--yes'], { cwd: out, env: { ...idEnv, ...env.waffle } });
  assert.equal(applied.code, 0, applied.stderr);
  const up = compose(dir, composeProject, ['up', '-d'], env.compose);
  assert.equal(up.code, 0, up.out);

  const ours = await waffleContainers(project, json.services);
  const theirs = await composeContainers(dir, composeProject, composeServices, env.compose ?? {});
  for (const s of composeServices) {
    assert.equal(ours[s]!.info.Config.Image, theirs[s]!.info.Config.Image, `image of ${s}`);
    assert.deepEqual(envOf(ours[s]!), envOf(theirs[s]!), `environment of ${s}`);
    assert.deepEqual(ours[s]!.info.Config.Cmd, theirs[s]!.info.Config.Cmd, `command of ${s}`);
    assert.equal(ours[s]!.info.State.Running, true);
  }
  const composeNames = Object.fromEntries(composeServices.map((s) => [s, s]));
  const theirReach = await reachability(theirs, composeNames);
  const ourReach = await reachability(ours, json.services);
  assert.deepEqual(ourReach, theirReach);
  return { ours, theirs, ourReach };
}

// ───────────────────────────── the shapes ─────────────────────────────

test('a web app with a database and a cache: same services, images, env and reachability as docker-compose; secrets only in the store', async () => {
  const project = uniqueProject('imp');
  const [portW, portC] = [await freePort(), await freePort()];
  const { dir, out } = fixture({
    'docker-compose.yml': `
services:
  web:
    image: ${IMAGE}
    command: ${HTTPD}
    ports: ["127.0.0.1:\${WEB_PORT}:8080"]
    environment:
      DATABASE_URL: postgres://shop:hunter2-db@db:5432/shop
      REDIS_URL: redis://cache:6379/0
      STRIPE_API_KEY: sk_test_4eC39HqLyjWDarjtT1zdp7dc
      LOG_LEVEL: info
    depends_on: [db, cache]
    restart: unless-stopped
    deploy:
      resources:
        limits: { memory: 64M, cpus: "0.5" }
  db:
    image: ${IMAGE}
    command: ${HTTPD}
    environment:
      POSTGRES_USER: shop
      POSTGRES_PASSWORD: hunter2-pw
    volumes: [dbdata:/var/lib/postgresql/data]
  cache:
    image: ${IMAGE}
    command: ${HTTPD}
volumes:
  dbdata: {}
`,
  });
  const { json } = await importAndCheck(dir, out, project, [], { WEB_PORT: String(portW) });
  assert.deepEqual(json.services, { cache: 'cache', db: 'db', web: 'web' });
  assert.deepEqual(json.secrets.sort(), ['db.POSTGRES_PASSWORD', 'web.DATABASE_URL', 'web.STRIPE_API_KEY']);

  // References are imports, secrets are references, and no value is in a written file.
  const web = fs.readFileSync(path.join(out, 'services/web.ts'), 'utf8');
  assert.match(web, /import db from '\.\/db';/);
  assert.match(web, /dependsOn: \[cache, db\]/);
  assert.match(web, /STRIPE_API_KEY: secrets\.web\.STRIPE_API_KEY/);
  assert.match(web, /resources: \{ memory: '64m', cpus: 0\.5 \}/);
  const text = writtenText(out);
  for (const v of ['hunter2-db', 'hunter2-pw', 'sk_test_4eC39HqLyjWDarjtT1zdp7dc']) assert.ok(!text.includes(v), `${v} is in a written file`);
  const stored = await waffle(['secrets', 'get', 'web.STRIPE_API_KEY'], { cwd: out, env: idEnv });
  assert.equal(stored.stdout, 'sk_test_4eC39HqLyjWDarjtT1zdp7dc');

  const { ours, ourReach } = await compareWithCompose(dir, out, project, json, { compose: { WEB_PORT: String(portC) } });
  // Compose's one default network: everyone reaches everyone, and so do the imported services.
  assert.equal(ourReach.length, 6);
  assert.equal(ours.web!.info.HostConfig.Memory, 64 * 1024 * 1024);
  assert.equal((await httpGet(`http://127.0.0.1:${portW}/`)).status, 200);
  assert.equal((await httpGet(`http://127.0.0.1:${portC}/`)).status, 200);
});

test('healthcheck-gated depends_on, extends and two merged files: the condition becomes a healthy dependency and both sides run the same', async () => {
  const project = uniqueProject('imp');
  const { dir, out } = fixture({
    'docker-compose.yml': `
x-base: &base
  image: ${IMAGE}
  command: ${HTTPD}
  stop_grace_period: 2s
services:
  db:
    <<: *base
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/"]
      interval: 1s
      timeout: 2s
      retries: 5
      start_period: 1s
  api:
    extends: { service: db }
    environment: { ROLE: api }
    depends_on:
      db: { condition: service_healthy }
  worker:
    extends: { file: common.yml, service: job }
    depends_on:
      api: { condition: service_started }
      db: { condition: service_healthy }
`,
    'common.yml': `
services:
  job:
    image: ${IMAGE}
    command: ${HTTPD}
    environment: { ROLE: worker, QUEUE: default }
`,
    'docker-compose.override.yml': `
services:
  api:
    environment: { FEATURE: "on" }
`,
  });
  const { json } = await importAndCheck(dir, out, project, ['docker-compose.yml', 'docker-compose.override.yml']);
  const api = fs.readFileSync(path.join(out, 'services/api.ts'), 'utf8');
  assert.match(api, /dependsOn: \[\{ service: db, condition: 'healthy' \}\]/);
  assert.match(api, /healthcheck: \{[^}]*command: \['wget', '-q', '-O', '-', 'http:\/\/127\.0\.0\.1:8080\/'\][^}]*interval: '1s'/s);
  assert.match(api, /FEATURE: 'on'/);
  const worker = fs.readFileSync(path.join(out, 'services/worker.ts'), 'utf8');
  assert.match(worker, /QUEUE: 'default'/);
  assert.match(worker, /dependsOn: \[\{ service: db, condition: 'healthy' \}, api\]/);

  const { ours } = await compareWithCompose(dir, out, project, json, {});
  // docker-compose merges files given with -f; without them it reads docker-compose.override.yml itself.
  assert.ok(ours.api!.info.Config.Env.includes('FEATURE=on'));
  assert.equal(ours.db!.info.State.Health?.Status, 'healthy');
});

test('bind mounts, env files and .env interpolation: the same files and variables inside the containers', async () => {
  const project = uniqueProject('imp');
  const { dir, out } = fixture({
    'compose.yaml': `
services:
  site:
    image: \${IMAGE:-busybox:missing}
    command: ${HTTPD}
    env_file: [site.env]
    environment:
      - GREETING=\${GREETING:-hello}
      - EMPTY_DEFAULT=\${NOT_SET-fallback}
      - PRICE=$$5
    volumes:
      - ./public:/www:ro
      - type: bind
        source: ./conf
        target: /etc/site
        read_only: true
  sidecar:
    image: ${IMAGE}
    command: ${HTTPD}
    working_dir: /www
    user: "65534:65534"
    volumes: ["./public:/www"]
`,
    '.env': `IMAGE=${IMAGE}\nGREETING=bonjour\n`,
    'site.env': '# site settings\nSITE_NAME="Acme Shop"\nADMIN_TOKEN=tok-3f9a\nEMPTY=\n',
    'public/index.html': 'from the bind mount\n',
    'conf/site.conf': 'mode=production\n',
  });
  const { json } = await importAndCheck(dir, out, project);
  const site = fs.readFileSync(path.join(out, 'services/site.ts'), 'utf8');
  assert.match(site, /GREETING: 'bonjour'/);
  assert.match(site, /EMPTY_DEFAULT: 'fallback'/);
  assert.match(site, /PRICE: '\$5'/);
  assert.match(site, /ADMIN_TOKEN: secrets\.site\.ADMIN_TOKEN/);
  assert.match(site, /\{ bind: '[^']*public', target: '\/www', readOnly: true \}/);
  assert.ok(!writtenText(out).includes('tok-3f9a'));

  const { ours, theirs } = await compareWithCompose(dir, out, project, json, {});
  for (const side of [ours, theirs]) {
    assert.equal((await execIn(docker, side.site!.id, ['cat', '/www/index.html'])).output, 'from the bind mount\n');
    assert.equal((await execIn(docker, side.site!.id, ['cat', '/etc/site/site.conf'])).output, 'mode=production\n');
    assert.equal(side.sidecar!.info.Config.User, '65534:65534');
    assert.equal(side.sidecar!.info.Config.WorkingDir, '/www');
  }
});

test('several networks: services that share a network reach each other, the others do not, as under docker-compose', async () => {
  const project = uniqueProject('imp');
  const { dir, out } = fixture({
    'docker-compose.yml': `
services:
  proxy:
    image: ${IMAGE}
    command: ${HTTPD}
    networks: [front]
  app:
    image: ${IMAGE}
    command: ${HTTPD}
    networks:
      front: {}
      back: { aliases: [application] }
  db:
    image: ${IMAGE}
    command: ${HTTPD}
    networks: [back]
  metrics:
    image: ${IMAGE}
    command: ${HTTPD}
networks:
  front: {}
  back: { driver: bridge }
`,
  });
  const { json } = await importAndCheck(dir, out, project);
  const alias = json.notes.find((n) => n.service === 'app' && n.key === 'networks.back');
  assert.equal(alias?.level, 'unsupported');
  const { ourReach } = await compareWithCompose(dir, out, project, json, {});
  assert.deepEqual(ourReach, ['app → db', 'app → proxy', 'db → app', 'proxy → app']);
});

test('keys that cannot be mapped are listed per service with what to do; the rest still type-checks and plans', async () => {
  const project = uniqueProject('imp');
  const { dir, out } = fixture({
    'docker-compose.yml': `
services:
  app:
    build: ./app
    container_name: my-app
    cap_add: [NET_ADMIN]
    tmpfs: [/run]
    secrets: [db_password]
    deploy:
      replicas: 3
      resources:
        reservations: { memory: 64M }
    volumes:
      - /var/cache/app
      - type: tmpfs
        target: /scratch
    ports: ["9000-9002:9000-9002", "8443"]
    healthcheck:
      disable: true
  tools:
    image: ${IMAGE}
    profiles: [debug]
  my_worker:
    image: ${IMAGE}
    command: sleep 3600 "with quotes"
    ulimits: { nofile: 1024 }
    restart: on-failure:4
    env_file: [{ path: optional.env, required: false }]
    depends_on:
      app: { condition: service_completed_successfully }
secrets:
  db_password:
    file: ./db_password.txt
`,
  });
  const { json, stderr } = await importAndCheck(dir, out, project);
  const keys = (service: string) => json.notes.filter((n) => n.service === service && n.level === 'unsupported').map((n) => n.key).sort();
  assert.deepEqual(keys('app'), ['build', 'cap_add', 'container_name', 'deploy.replicas', 'deploy.resources.reservations', 'secrets', 'tmpfs', 'volumes[0]', 'volumes[1]']);
  assert.deepEqual(keys('my_worker'), ['ulimits']);
  assert.equal(json.notes.find((n) => n.service === 'my_worker' && n.key === 'depends_on.app.condition')?.level, 'changed');
  assert.ok(json.notes.some((n) => n.service === 'app' && n.key === 'healthcheck' && n.level === 'changed'));
  assert.ok(json.notes.some((n) => n.key === 'secrets' && n.service === undefined && n.level === 'unsupported'));
  assert.ok(json.notes.some((n) => n.service === 'tools' && n.key === 'profiles'));
  assert.ok(json.notes.some((n) => n.service === 'my_worker' && n.key === 'services' && /my-worker/.test(n.message)));
  for (const n of json.notes.filter((x) => x.level === 'unsupported')) assert.ok(n.fix, `${n.service}/${n.key} says what to do`);
  // The human output names the service and the key.
  assert.match(stderr, /service app:\n(.*\n)*\s+not mapped build: /);
  const app = fs.readFileSync(path.join(out, 'services/app.ts'), 'utf8');
  assert.match(app, /image: 'app:latest'/);
  assert.match(app, /ports: \['9000:9000', '9001:9001', '9002:9002', \{ container: 8443 \}\]/);
  const worker = fs.readFileSync(path.join(out, 'services/my-worker.ts'), 'utf8');
  assert.match(worker, /command: \['sleep', '3600', 'with quotes'\]/);
  assert.match(worker, /restart: \{ policy: 'on-failure', maxRetries: 4 \}/);
  assert.equal(fs.existsSync(path.join(out, 'services/tools.ts')), false);

  // With the profile, the service is imported too.
  const out2 = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-imported-'));
  cleanups.push(() => fs.rmSync(out2, { recursive: true, force: true }));
  const r = await waffle(['import', 'compose', '--out', out2, '--profile', 'debug'], { cwd: dir, env: idEnv });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fs.existsSync(path.join(out2, 'services/tools.ts')), true);

  // Plans (the placeholder image is reported as missing by the plan, not by the type-check).
  const plan = await waffle(['plan', '--offline'], { cwd: out, env: idEnv });
  assert.equal(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, /create\s+app/);

  // Existing files are not overwritten without --force; nothing is written then.
  const again = await waffle(['import', 'compose', '--out', out], { cwd: dir, env: idEnv });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /exist.*nothing was written.*--force/s);
});

// ───────────────────────────── pure parts ─────────────────────────────

test('interpolation follows Compose: defaults, alternatives, required variables, $$ and nesting', () => {
  const env = { A: 'a', EMPTY: '' };
  const unset: string[] = [];
  const i = (s: string) => interpolate(s, env, (n) => unset.push(n));
  assert.equal(i('${A}-$A-${A:-x}-${B:-x}-${EMPTY:-x}-${EMPTY-x}-${B-x}'), 'a-a-a-x-x--x');
  assert.equal(i('${A:+set}${B:+set}${EMPTY+set}'), 'setset');
  assert.equal(i('$$A costs $$5 ${B:-${A}x}'), '$A costs $5 ax');
  assert.equal(i('${MISSING}'), '');
  assert.deepEqual(unset, ['MISSING']);
  assert.throws(() => i('${B:?B is required}'), /required variable B is unset: B is required/);
  assert.throws(() => i('${EMPTY:?}'), ComposeImportError);
});

test('command strings split into words as Compose does; secret-looking names and URLs with passwords', () => {
  assert.deepEqual(shellWords(`sh -c 'echo "hi there"' a\\ b ""`), ['sh', '-c', 'echo "hi there"', 'a b', '']);
  for (const [k, v] of [['DB_PASSWORD', 'x'], ['GITHUB_TOKEN', 'x'], ['API_KEY', 'x'], ['SECRET_KEY_BASE', 'x'], ['AWS_SECRET_ACCESS_KEY', 'x'], ['DATABASE_URL', 'postgres://u:p@h/db']]) {
    assert.equal(looksSecret(k!, v!), true, k);
  }
  for (const [k, v] of [['DB_PASSWORD_FILE', '/run/secrets/pw'], ['KEYBOARD', 'us'], ['DB_USER', 'app'], ['DB_PASSWORD', ''], ['DATABASE_URL', 'postgres://h/db'], ['MONKEY', 'x']]) {
    assert.equal(looksSecret(k!, v!), false, k);
  }
});

test('import is pure and refuses what it cannot read: bad YAML, no services, a depends_on cycle', () => {
  const run = (text: string) => importCompose({ files: [{ path: '/x/docker-compose.yml', text }], read: () => undefined, env: {} });
  assert.throws(() => run('services: [a'), /not valid YAML/);
  assert.throws(() => run('volumes: {}'), /no services/);
  assert.throws(() => run('services:\n  a: { image: x, depends_on: [b] }\n  b: { image: x, depends_on: [a] }'), /depends_on cycle/);
  const r = run(`services:\n  b: { image: x, depends_on: [a] }\n  a: { image: x }`);
  assert.equal(r.project, 'x');
  assert.match(r.files['services/b.ts']!, /import a from '\.\/a';/);
  assert.doesNotMatch(r.files['services/a.ts']!, /import b/);
});

test('one secret value used by several services is one key; an optional env file that is missing is skipped, a required one is noted', () => {
  const files: Record<string, string> = { '/x/db.env': 'POSTGRES_PASSWORD=same-pw\n' };
  const r = importCompose({
    files: [
      {
        path: '/x/docker-compose.yml',
        text: `services:
  db: { image: db:1, env_file: db.env }
  app:
    image: app:1
    environment: { DB_PASSWORD: same-pw, DB_USER: app }
    env_file: [{ path: missing.env, required: false }, gone.env]
    depends_on: [db]
`,
      },
    ],
    read: (f) => files[f],
    env: {},
  });
  assert.deepEqual(r.secrets, { db: { POSTGRES_PASSWORD: 'same-pw' } });
  assert.match(r.files['services/app.ts']!, /DB_PASSWORD: secrets\.db\.POSTGRES_PASSWORD/);
  assert.match(r.files['services/app.ts']!, /DB_USER: 'app'/);
  assert.match(r.files['waffle.config.ts']!, /db: \{ provider: 'embedded', keys: \['POSTGRES_PASSWORD'\] \}/);
  for (const text of Object.values(r.files)) assert.ok(!text.includes('same-pw'));
  const envNotes = r.notes.filter((n) => n.service === 'app' && n.key === 'env_file' && n.level === 'unsupported');
  assert.equal(envNotes.length, 1);
  assert.match(envNotes[0]!.message, /gone\.env does not exist/);
});
