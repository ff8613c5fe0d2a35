/**
 * `waffle rollback` on the Swarm target, on a one-node swarm of the real engine (see swarm-support.ts),
 * through the real CLI and real git repositories.
 *
 * v1 → v2 → `waffle rollback web`: Swarm's own rollback to the previous spec, followed per task; the
 * tasks run v1 again. The pin holds across the next apply (the service's spec version does not move) and
 * the plan says so; a second rollback (which would toggle forward) is refused while pinned; `--list`
 * shows the current and previous spec and the pin; `--release` lets the next apply deploy v2 again.
 * A changed definition drops the pin. Refused, with nothing changed (same spec version): a service with
 * no previous spec, `--to 1`, and a previous spec whose Swarm secret version a rotation removed.
 * The pure parts are also fed plain data: every refusal of the rollback plan, and the Swarm planner
 * holding a pin (the secret version the pinned service mounts is kept) or dropping it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { ensureEngine, ensureTestImages, TEST_IMAGES } from './engine.ts';
import { dockerClient, gitCommitAll, makeRepo, uniqueProject, waffle, writeFiles } from './helpers.ts';
import { joinTestSwarm, removeSwarmProject, type TestSwarm } from './swarm-support.ts';
import { foldEvents, stepText } from '../cli/render/progress.ts';
import { formatPlan } from '../runtime/plan/format.ts';
import { Engine } from '../runtime/engine.ts';
import type { ApplyEvent, Operation, RunEvent } from '../runtime/model.ts';

let docker: Dockerode;
let host: string;
let swarm: TestSwarm | undefined;
const projects: string[] = [];
const repos: string[] = [];
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-swarm-rollback-'));
const stateDir = path.join(home, 'state');
const cliEnv = () => ({ WAFFLE_STATE_DIR: stateDir, WAFFLE_AGE_IDENTITY_FILE: path.join(home, 'id', 'age.key'), WAFFLE_AGE_IDENTITY: '', DOCKER_HOST: host });

before(async () => {
  host = await ensureEngine();
  process.env.DOCKER_HOST = host;
  await ensureTestImages(host);
  docker = await dockerClient();
  swarm = await joinTestSwarm(docker, host);
});

after(async () => {
  for (const p of projects) await removeSwarmProject(docker, p);
  for (const r of repos) fs.rmSync(r, { recursive: true, force: true });
  fs.rmSync(home, { recursive: true, force: true });
  await swarm?.leave();
});

const engine = () => new Engine({ env: { ...process.env, ...cliEnv() }, dockerHost: host, stateDir });

async function apply(root: string): Promise<{ ok: boolean; events: RunEvent[]; ops: Operation[]; text: string }> {
  const events: RunEvent[] = [];
  const r = await engine().apply({ dir: root }, { onEvent: (e) => events.push(e) });
  assert.equal(r.ok, true, JSON.stringify(events.filter((e) => e.type === 'op-failed' || e.type === 'run-failed')));
  return { ok: r.ok, events, ops: r.planned.plan.operations, text: formatPlan(r.planned.plan) };
}

const cli = (root: string, args: string[], input?: string) => waffle(args, { cwd: root, env: cliEnv(), ...(input !== undefined ? { input } : {}) });

const config = (project: string) => `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}', target: 'swarm' });\n`;

const web = (image: string, over = '') => `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${image}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  healthcheck: { http: '/', interval: '500ms', timeout: '2s', retries: 3 },
  stopGracePeriod: '1s',
  rollout: { monitor: '2s' },
${over}
});
`;

interface ServiceInfo {
  Version: { Index: number };
  Spec: { Labels: Record<string, string>; TaskTemplate: { ContainerSpec: { Image: string } } };
  UpdateStatus?: { State?: string };
}

const inspect = async (project: string, service: string) => (await docker.getService(`${project}_${service}`).inspect()) as ServiceInfo;
const versionOf = async (project: string, service: string) => (await inspect(project, service)).Version.Index;

/** The images of the service's tasks that run and are meant to. */
async function runningImages(project: string, service: string): Promise<string[]> {
  const tasks = (await docker.listTasks({ filters: { service: [`${project}_${service}`] } })) as Array<{ DesiredState?: string; Status?: { State?: string }; Spec?: { ContainerSpec?: { Image?: string } } }>;
  return tasks.filter((t) => t.DesiredState === 'running' && t.Status?.State === 'running').map((t) => t.Spec?.ContainerSpec?.Image ?? '');
}

const headCommit = (root: string) => fs.readFileSync(path.join(root, '.git', fs.readFileSync(path.join(root, '.git', 'HEAD'), 'utf8').trim().slice(5)), 'utf8').trim();

const pinsOf = (project: string) => {
  const file = path.join(stateDir, project, 'pins.json');
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as { pins: Record<string, { generation: number; swarm?: { image: string; commit: string; fromImage: string } }> }).pins : {};
};

test('waffle rollback on Swarm: v2 back to v1 by Swarm, pinned across applies, listed, released to v2 again; refusals change nothing', { timeout: 900_000 }, async () => {
  const project = uniqueProject('swrb');
  projects.push(project);
  const root = makeRepo({ 'waffle.config.ts': config(project), 'services/web.ts': web(TEST_IMAGES.appV1) }, { git: true });
  repos.push(root);
  await apply(root);
  // The commit label of the spec (the repository's commit, abbreviated).
  const commitLabel = async () => (await inspect(project, 'web')).Spec.Labels['dev.wafflemaker.commit']!;
  const commit1 = await commitLabel();
  assert.ok(commit1 && headCommit(root).startsWith(commit1), commit1);
  assert.deepEqual(await runningImages(project, 'web'), [TEST_IMAGES.appV1]);

  // ── refused: a service that was never updated has no previous spec; nothing changes ──
  const fresh = await versionOf(project, 'web');
  const none = await cli(root, ['rollback', 'web', '--yes', '--plain']);
  assert.equal(none.code, 1, none.stderr);
  assert.match(none.stderr, /web has no previous spec: Swarm keeps one once a service has been updated/);
  assert.match(none.stderr, /Fix: /);
  assert.equal(await versionOf(project, 'web'), fresh, 'nothing was sent to Swarm');
  assert.deepEqual(pinsOf(project), {});

  // ── v2 ──
  writeFiles(root, { 'services/web.ts': web(TEST_IMAGES.appV2) });
  gitCommitAll(root, 'web v2');
  await apply(root);
  const commit2 = await commitLabel();
  assert.ok(commit2 && headCommit(root).startsWith(commit2) && commit2 !== commit1, commit2);
  assert.deepEqual(await runningImages(project, 'web'), [TEST_IMAGES.appV2]);

  // ── refused: --to (Swarm keeps one previous spec) ──
  const v2version = await versionOf(project, 'web');
  const to = await cli(root, ['rollback', 'web', '--to', '1', '--yes', '--plain']);
  assert.equal(to.code, 1, to.stderr);
  assert.match(to.stderr, /keeps one previous spec of a service, not generations: --to 1/);
  assert.match(to.stderr, /Fix: `waffle rollback web` goes one step back; for an older version, deploy the earlier definition: git revert, then waffle apply/);
  assert.equal(await versionOf(project, 'web'), v2version);

  // ── rollback: Swarm goes back to v1, followed per task ──
  const rb = await cli(root, ['rollback', 'web', '--yes', '--plain']);
  assert.equal(rb.code, 0, rb.stderr);
  assert.match(rb.stderr, /<-\s+rollback web\s+\(Swarm's rollback to the previous spec\)/, 'the plan line');
  assert.match(rb.stderr, new RegExp(`rollback\\s+back to the previous spec \\(waffle-test/app:1, commit ${commit1.slice(0, 12)}\\) from the current one \\(waffle-test/app:2, commit ${commit2.slice(0, 12)}\\)`));
  assert.match(rb.stderr, /image\s+waffle-test\/app:2 → waffle-test\/app:1/);
  assert.match(rb.stderr, /web: task \d+ running/, 'per-task progress');
  assert.match(rb.stderr, /✓ web: rolled back/);
  assert.match(rb.stderr, /web is pinned to its previous spec \(waffle-test\/app:1\)/);
  const after1 = await inspect(project, 'web');
  assert.equal(after1.UpdateStatus?.State, 'rollback_completed');
  assert.equal(after1.Spec.TaskTemplate.ContainerSpec.Image, TEST_IMAGES.appV1);
  assert.deepEqual(await runningImages(project, 'web'), [TEST_IMAGES.appV1]);
  const pin = pinsOf(project).web;
  assert.ok(pin?.swarm, JSON.stringify(pinsOf(project)));
  assert.deepEqual([pin.swarm.image, pin.swarm.commit, pin.swarm.fromImage, pin.generation], [TEST_IMAGES.appV1, commit1, TEST_IMAGES.appV2, v2version]);

  // ── --list: current and previous spec, and the pin ──
  const list = await cli(root, ['rollback', '--list', 'web']);
  assert.equal(list.code, 0, list.stderr);
  const rows = list.stdout.trim().split('\n');
  assert.match(rows[0]!, /^ROLE\s+IMAGE\s+COMMIT\s+UPDATED$/);
  assert.match(rows[1]!, new RegExp(`^current \\(pinned\\)\\s+waffle-test/app:1\\s+${commit1.slice(0, 12)}\\s+\\d+[smhd] ago$`));
  assert.match(rows[2]!, new RegExp(`^previous\\s+waffle-test/app:2\\s+${commit2.slice(0, 12)}\\s+until \\d+[smhd] ago$`));
  assert.match(list.stderr, /web is pinned to waffle-test\/app:1 \(left waffle-test\/app:2\)/);
  const listJson = JSON.parse((await cli(root, ['rollback', '--list', 'web', '--json'])).stdout) as { target: string; current: { image: string; commit: string }; previous: { image: string; commit: string }; pin: { swarm: { image: string } } };
  assert.deepEqual([listJson.target, listJson.current.image, listJson.current.commit, listJson.previous.image, listJson.previous.commit, listJson.pin.swarm.image], ['swarm', TEST_IMAGES.appV1, commit1, TEST_IMAGES.appV2, commit2, TEST_IMAGES.appV1]);

  // ── the pin holds: the next apply leaves web alone (same spec version), and the plan says so ──
  const pinnedVersion = await versionOf(project, 'web');
  const held = await apply(root);
  assert.deepEqual(held.ops, []);
  assert.match(held.text, /=\s+pinned\s+web\s+pinned by rollback to the previous spec \(waffle-test\/app:1, commit [0-9a-f]{12}\) \(waffle rollback --release web\)/);
  assert.equal(await versionOf(project, 'web'), pinnedVersion, 'no update was sent');
  const plan = await cli(root, ['plan', '--plain']);
  assert.match(plan.stdout + plan.stderr, /pinned\s+web\s+pinned by rollback to the previous spec/);

  // ── refused while pinned: a second rollback would toggle forward to v2 ──
  const twice = await cli(root, ['rollback', 'web', '--yes', '--plain']);
  assert.equal(twice.code, 1, twice.stderr);
  assert.match(twice.stderr, /web is rolled back already \(pinned since .*\): Swarm's previous spec is now the newer one it left, so a second rollback would undo the first/);
  assert.match(twice.stderr, /Fix: `waffle rollback --release web`, then waffle apply/);
  assert.equal(await versionOf(project, 'web'), pinnedVersion);

  // ── --release: the next apply deploys v2 again ──
  const rel = await cli(root, ['rollback', '--release', 'web']);
  assert.equal(rel.code, 0, rel.stderr);
  assert.match(rel.stderr, /released web from its previous spec \(waffle-test\/app:1\)/);
  assert.deepEqual(pinsOf(project), {});
  const forward = await apply(root);
  assert.deepEqual(forward.ops.map((o) => o.kind), ['update-swarm-service']);
  assert.deepEqual(await runningImages(project, 'web'), [TEST_IMAGES.appV2]);
  assert.equal((await inspect(project, 'web')).Spec.Labels['dev.wafflemaker.commit'], commit2);
});

test('a changed definition drops the pin of a rolled-back Swarm service; the live row reads "roll back"', { timeout: 900_000 }, async () => {
  const project = uniqueProject('swrp');
  projects.push(project);
  const root = makeRepo({ 'waffle.config.ts': config(project), 'services/web.ts': web(TEST_IMAGES.appV1) }, { git: true });
  repos.push(root);
  await apply(root);
  writeFiles(root, { 'services/web.ts': web(TEST_IMAGES.appV2) });
  gitCommitAll(root, 'web v2');
  await apply(root);

  // Through the engine: the events as the terminal UI folds them.
  const events: RunEvent[] = [];
  const r = await engine().rollback({ dir: root }, 'web', { onEvent: (e) => events.push(e) });
  assert.equal(r.ok, true, JSON.stringify(events.filter((e) => e.type === 'op-failed' || e.type === 'run-failed')));
  assert.deepEqual(await runningImages(project, 'web'), [TEST_IMAGES.appV1]);
  const applyEvents = events.filter((e): e is RunEvent & ApplyEvent => ['op-start', 'task-progress', 'op-done', 'apply-start', 'apply-done'].includes(e.type));
  const start = applyEvents.findIndex((e) => e.type === 'op-start');
  assert.equal(stepText(foldEvents(applyEvents.slice(0, start + 1)).rows['rollback:web']!, 1), 'roll back', 'the row before any task news');
  const progress = applyEvents.filter((e) => e.type === 'task-progress');
  assert.ok(progress.some((e) => e.type === 'task-progress' && e.current && e.state === 'running'), 'a task of the rollback is reported running');
  assert.match(stepText(foldEvents(applyEvents.slice(0, applyEvents.indexOf(progress.at(-1)!) + 1)).rows['rollback:web']!, 1), /^rolling back \d\/1 new · task/);

  // A commit that changes web: the pin is dropped, the plan says why, and v2 with the change deploys.
  writeFiles(root, { 'services/web.ts': web(TEST_IMAGES.appV2, "  env: { GREETING: 'hello' },") });
  gitCommitAll(root, 'web v2 with a greeting');
  const changed = await apply(root);
  const update = changed.ops.find((o) => o.kind === 'update-swarm-service');
  assert.ok(update, changed.text);
  assert.deepEqual(update.causes[0], { kind: 'pin', detail: `pin to the previous spec (waffle-test/app:1, commit ${pinCommit(r.pin)}) dropped: the definition changed since the rollback` });
  assert.ok(changed.events.some((e) => e.type === 'notice' && /web: pin to the previous spec .* dropped: the definition changed since the rollback/.test(e.message)));
  assert.deepEqual(pinsOf(project), {});
  assert.deepEqual(await runningImages(project, 'web'), [TEST_IMAGES.appV2]);
});

const pinCommit = (pin: { swarm?: { commit: string } } | undefined) => pin?.swarm?.commit.slice(0, 12) ?? '';

test('rollback on Swarm is refused when a secret rotation removed the secret version of the previous spec; nothing changes', { timeout: 600_000 }, async () => {
  const project = uniqueProject('swrs');
  projects.push(project);
  const root = makeRepo(
    {
      'waffle.config.ts': `import { defineConfig, defineSecrets } from 'wafflemaker';
export const secrets = defineSecrets({ db: { provider: 'embedded', keys: ['password'] } });
export default defineConfig({ project: '${project}', target: 'swarm', secrets });
`,
      'services/app.ts': `import { defineService } from 'wafflemaker';
import { secrets } from '../waffle.config';
export default defineService({
  image: '${TEST_IMAGES.busybox}',
  command: 'sleep 3600',
  stopGracePeriod: '1s',
  rollout: { monitor: '1s' },
  files: { '/run/secrets/db_password': secrets.db.password },
});
`,
      '.gitignore': '.waffle/\n',
    },
    { git: true },
  );
  repos.push(root);
  for (const [args, input] of [
    [['secrets', 'init'], undefined],
    [['secrets', 'set', 'db.password'], 'first-value-1234'],
  ] as Array<[string[], string | undefined]>) {
    const r = await cli(root, args, input);
    assert.equal(r.code, 0, r.stderr);
  }
  gitCommitAll(root, 'secrets');
  await apply(root);
  const setTwo = await cli(root, ['secrets', 'set', 'db.password'], 'second-value-5678');
  assert.equal(setTwo.code, 0, setTwo.stderr);
  const rotated = await apply(root);
  assert.deepEqual(rotated.ops.map((o) => o.kind), ['create-swarm-secret', 'update-swarm-service', 'remove-swarm-secret']);
  const removed = rotated.ops[2]!.kind === 'remove-swarm-secret' ? rotated.ops[2]!.secret : '';

  const version = await versionOf(project, 'app');
  const refused = await cli(root, ['rollback', 'app', '--yes', '--plain']);
  assert.equal(refused.code, 1, refused.stderr);
  assert.ok(refused.stderr.includes(`the previous spec of app mounts the Swarm secret ${removed}, which no longer exists`), refused.stderr);
  assert.match(refused.stderr, /Fix: deploy the earlier definition: git revert, then waffle apply/);
  assert.ok(!refused.stderr.includes('value-'), 'no secret value in the output');
  assert.equal(await versionOf(project, 'app'), version, 'nothing was sent to Swarm');
  assert.notEqual((await inspect(project, 'app')).UpdateStatus?.State, 'rollback_started');
  assert.deepEqual(pinsOf(project), {});
});

// ── the pure parts: refusals and pins as data (no Docker) ──

const shopFiles = (image: string) => ({
  'waffle.config.ts': `import { defineConfig, defineSecrets } from 'wafflemaker';
export const secrets = defineSecrets({ db: { provider: 'embedded', keys: ['password'] } });
export default defineConfig({ project: 'shop', target: 'swarm', secrets });
`,
  'services/api.ts': `import { defineService } from 'wafflemaker';
import { secrets } from '../waffle.config';
export default defineService({ image: '${image}', port: 8080, files: { '/run/secrets/db': secrets.db.password } });
`,
});

async function shopGraph(image: string) {
  const dir = makeRepo(shopFiles(image));
  try {
    return await new Engine({ env: {} }).load({ dir });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Docker's answer to `GET /services/{id}` for shop_api, in the fields a rollback reads. */
const inspectAnswer = (o: { previousNetworks?: string[]; previousSecret?: string; state?: string; previous?: boolean }) => ({
  ID: 'id-api',
  Version: { Index: 42 },
  UpdatedAt: '2026-01-02T03:04:05Z',
  Spec: { Name: 'shop_api', Labels: { 'dev.wafflemaker.commit': 'c2', 'dev.wafflemaker.config-hash': 'h2' }, TaskTemplate: { ContainerSpec: { Image: 'shop/api:2', Secrets: [{ SecretID: 's2', SecretName: 'shop_db_password_bbb' }] } } },
  ...(o.previous === false
    ? {}
    : {
        PreviousSpec: {
          Labels: { 'dev.wafflemaker.commit': 'c1', 'dev.wafflemaker.config-hash': 'h1' },
          Mode: { Replicated: { Replicas: 2 } },
          TaskTemplate: { ContainerSpec: { Image: 'shop/api:1', Secrets: [o.previousSecret ? { SecretID: 's-gone', SecretName: o.previousSecret } : { SecretID: 's1', SecretName: 'shop_db_password_aaa' }] }, Networks: (o.previousNetworks ?? []).map((Target) => ({ Target })) },
        },
      }),
  ...(o.state ? { UpdateStatus: { State: o.state } } : {}),
});

test('the Swarm rollback plan: one operation to the previous spec, or a refusal naming the cause and the fix', async () => {
  const { planSwarmRollback, serviceHistoryOf } = await import('../runtime/targets/swarm/rollback.ts');
  const graph = await shopGraph('shop/api:2');
  const observed = {
    project: 'shop',
    containers: [],
    networks: [{ id: 'net-1', name: 'shop_link_api_web', labels: {} }],
    volumes: [],
    images: [],
    swarm: { services: [], tasks: [], secrets: [{ id: 's1', name: 'shop_db_password_aaa', labels: {} }, { id: 's2', name: 'shop_db_password_bbb', labels: {} }] },
  };
  const plan = (o: Parameters<typeof inspectAnswer>[0], extra: { to?: number; leased?: string[]; pin?: { at: string } } = {}) =>
    planSwarmRollback({ graph, observed, service: 'api', history: serviceHistoryOf(inspectAnswer(o), 'api'), leased: extra.leased ?? [], ...(extra.to ? { to: extra.to } : {}), ...(extra.pin ? { pin: extra.pin } : {}) });

  const ok = plan({ previousNetworks: ['net-1'] });
  assert.equal(ok.operations.length, 1);
  const op = ok.operations[0]!;
  assert.ok(op.kind === 'rollback-swarm-service');
  assert.deepEqual([op.serviceId, op.version, op.replicas, op.to, op.from], ['id-api', 42, 2, { image: 'shop/api:1', commit: 'c1', configHash: 'h1' }, { image: 'shop/api:2', commit: 'c2', configHash: 'h2' }]);
  assert.deepEqual(plan({ previousNetworks: ['net-1'] }), ok, 'pure: the same input gives the same plan');

  assert.throws(() => plan({ previousNetworks: ['net-gone-123456789'] }), /the previous spec of api joins network net-gone-123, which no longer exists .* Fix: deploy the earlier definition: git revert, then waffle apply/);
  assert.throws(() => plan({ previousSecret: 'shop_db_password_old' }), /mounts the Swarm secret shop_db_password_old, which no longer exists/);
  assert.throws(() => plan({ state: 'updating' }), /Swarm is still updating api \(shop_api\)\. Fix: wait until it is done/);
  assert.throws(() => plan({ state: 'rollback_completed' }), /the last change of api was a rollback \(Swarm: rollback_completed\): its previous spec is the newer one it left/);
  assert.throws(() => plan({ previous: false }), /api has no previous spec/);
  assert.throws(() => plan({}, { to: 3 }), /--to 3 picks a kept container of the single engine/);
  assert.throws(() => plan({}, { leased: ['pg'] }), /api uses leased credentials \(pg\), which are issued per container: the Swarm target cannot do that \(apply refuses them too\)/);
  assert.throws(() => plan({}, { pin: { at: '2026-01-01T00:00:00Z' } }), /api is rolled back already \(pinned since 2026-01-01T00:00:00Z\)/);
  assert.throws(() => planSwarmRollback({ graph, observed, service: 'api', leased: [] }), /api is not deployed on the Swarm \(no service shop_api\): nothing to roll back\. Fix: waffle apply deploys it/);
});

test('the Swarm planner and a pin: held (secret version in use kept), dropped when the service runs another spec or the definition changed', async () => {
  const { reconcileSwarm } = await import('../runtime/targets/swarm/reconcile.ts');
  const { swarmDefinitionHash } = await import('../runtime/targets/swarm/pin.ts');
  const graph = await shopGraph('shop/api:2');
  const digest = 'b'.repeat(64);
  const inputs = { commit: 'c3', secretsDigests: { api: 'd'.repeat(64) }, secretFileDigests: { api: { '/run/secrets/db': digest } } };
  const current = reconcileSwarm(graph, { project: 'shop', containers: [], networks: [], volumes: [], images: [], swarm: { services: [], tasks: [], secrets: [] } }, inputs);
  const wanted = current.operations.find((o) => o.kind === 'create-swarm-secret')!;
  assert.ok(wanted.kind === 'create-swarm-secret');
  // What Swarm runs after a rollback to v1: the spec of v1, with the secret version of its time.
  const observed = (configHash: string) => ({
    project: 'shop',
    containers: [],
    networks: [],
    volumes: [],
    images: [],
    swarm: {
      services: [{ id: 'id-api', name: 'shop_api', service: 'api', version: 50, configHash, labels: { [`dev.wafflemaker.project`]: 'shop' }, replicas: 1, image: 'shop/api:1', secrets: ['shop_db_password_old'], updateState: 'rollback_completed' }],
      tasks: [],
      secrets: [
        { id: 's-old', name: 'shop_db_password_old', labels: { 'dev.wafflemaker.project': 'shop' } },
        { id: 's-new', name: wanted.secret, labels: { 'dev.wafflemaker.project': 'shop' } },
      ],
    },
  });
  const pin = { generation: 48, definitionHash: swarmDefinitionHash(graph, graph.services.api!), swarm: { configHash: 'h1', image: 'shop/api:1', commit: 'c1', fromImage: 'shop/api:2', fromCommit: 'c2' } };

  const held = reconcileSwarm(graph, observed('h1'), { ...inputs, pins: { api: pin } });
  assert.deepEqual(held.operations, [], 'the pinned service is left alone, and the secret version it mounts stays');
  assert.deepEqual(held.unchanged, ['api']);
  assert.deepEqual(held.pins, [{ service: 'api', generation: 48, state: 'held', detail: 'pinned by rollback to the previous spec (shop/api:1, commit c1) (waffle rollback --release api)' }]);

  const moved = reconcileSwarm(graph, observed('h-other'), { ...inputs, pins: { api: pin } });
  const update = moved.operations.find((o) => o.kind === 'update-swarm-service');
  assert.ok(update);
  assert.deepEqual(update.causes[0], { kind: 'pin', detail: 'pin to the previous spec (shop/api:1, commit c1) dropped: the service no longer runs the spec it was rolled back to' });
  assert.equal(moved.pins?.[0]?.state, 'dropped');

  const changed = await shopGraph('shop/api:3');
  const redefined = reconcileSwarm(changed, observed('h1'), { ...inputs, pins: { api: pin } });
  assert.match(JSON.stringify(redefined.operations.find((o) => o.kind === 'update-swarm-service')?.causes), /dropped: the definition changed since the rollback/);
});
