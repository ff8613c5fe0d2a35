/**
 * The Swarm target on a one-node swarm of the real engine (see swarm-support.ts: `docker swarm init`
 * when the engine is not in a swarm yet, left again by the last test file using a swarm a test made).
 *
 * One project goes through a service's life: created with 3 replicas (per-task progress events),
 * scaled to 1 (the task kept), updated start-first to a new image (the new task runs before the old
 * one stops, as Swarm's task timestamps show; the plain renderer prints the tasks), then an update
 * whose health check fails: Swarm rolls it back and the apply reports it FAILED with the task error.
 * `connects` isolation holds on the overlay networks (from inside task containers). A secret file is a
 * versioned Swarm secret: a rotation creates a new version, rolls the service and removes the old one.
 * `destroy` leaves nothing behind. A no-op apply at 5 and at 50 services makes the same Docker API
 * calls (a recording proxy), changes no service version and sends no write.
 * On the engine target, `replicas` above 1 is refused with file, service and fix.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { ensureEngine, ensureTestImages, TEST_IMAGES } from './engine.ts';
import { copyDemoRepo, dockerClient, execIn, gitCommitAll, makeRepo, uniqueProject, waffle, writeFiles } from './helpers.ts';
import { foldEvents, stepText } from '../cli/render/progress.ts';
import { joinTestSwarm, removeSwarmProject, type TestSwarm } from './swarm-support.ts';
import { startSocketProxy, type SocketProxy } from './doubles/socket-proxy.ts';
import { Engine } from '../runtime/engine.ts';
import type { Operation, RunEvent } from '../runtime/model.ts';

let docker: Dockerode;
let host: string;
let swarm: TestSwarm | undefined;
const projects: string[] = [];
const repos: string[] = [];
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-swarm-'));
const stateDir = path.join(home, 'state');
const cliEnv = { WAFFLE_STATE_DIR: stateDir, WAFFLE_AGE_IDENTITY_FILE: path.join(home, 'id', 'age.key'), WAFFLE_AGE_IDENTITY: '' };


before(async () => {
  host = await ensureEngine();
  process.env.DOCKER_HOST = host;
  await ensureTestImages(host);
  docker = await dockerClient();
  swarm = await joinTestSwarm(docker, host);
});

after(async () => {
  for (const p of projects) await removeProject(p);
  for (const r of repos) fs.rmSync(r, { recursive: true, force: true });
  fs.rmSync(home, { recursive: true, force: true });
  await swarm?.leave();
});

const removeProject = (project: string) => removeSwarmProject(docker, project);

const engine = (dockerHost = host) => new Engine({ env: { ...process.env, ...cliEnv }, dockerHost, stateDir });

async function apply(root: string, dockerHost?: string): Promise<{ ok: boolean; events: RunEvent[]; ops: Operation[] }> {
  const events: RunEvent[] = [];
  const r = await engine(dockerHost).apply({ dir: root }, { onEvent: (e) => events.push(e) });
  return { ok: r.ok, events, ops: r.planned.plan.operations };
}

const config = (project: string) =>
  `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}', target: 'swarm', parallelism: 8 });\n`;

interface TaskInfo {
  ID: string;
  Slot?: number;
  DesiredState?: string;
  Spec?: { ContainerSpec?: { Image?: string } };
  Status?: { State?: string; Timestamp?: string; Err?: string; ContainerStatus?: { ContainerID?: string } };
}

async function tasks(project: string, service: string): Promise<TaskInfo[]> {
  return (await docker.listTasks({ filters: { service: [`${project}_${service}`] } })) as TaskInfo[];
}

const running = (list: TaskInfo[]) => list.filter((t) => t.Status?.State === 'running' && t.DesiredState === 'running');

/** A running task container of the service (on this node). */
async function taskContainer(project: string, service: string): Promise<string> {
  const list = running(await tasks(project, service));
  const id = list[0]?.Status?.ContainerStatus?.ContainerID;
  assert.ok(id, `a running task of ${service}`);
  return id;
}

async function inspectService(project: string, service: string) {
  return (await docker.getService(`${project}_${service}`).inspect()) as {
    Version: { Index: number };
    Spec: { Mode: { Replicated: { Replicas: number } }; UpdateConfig: { Order: string; FailureAction: string }; TaskTemplate: { ContainerSpec: { Image: string; Secrets?: Array<{ SecretName: string }> } } };
    UpdateStatus?: { State?: string };
  };
}

const web = (over: string) => `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${TEST_IMAGES.appV1}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  healthcheck: { http: '/', interval: '500ms', timeout: '2s', retries: 3 },
  stopGracePeriod: '1s',
  rollout: { monitor: '3s' },
${over}
});
`;

const sleeper = (over = '') => `import { defineService } from 'wafflemaker';
${over.includes('web') ? "import web from './web';\n" : ''}export default defineService({
  image: '${TEST_IMAGES.busybox}',
  command: 'sleep 3600',
  stopGracePeriod: '1s',
${over}
});
`;

test('a service on Swarm: 3 replicas, scaled to 1, updated start-first, a failing update rolled back and reported failed; connects isolation', { timeout: 900_000 }, async () => {
  const project = uniqueProject('swm');
  projects.push(project);
  const root = makeRepo(
    {
      'waffle.config.ts': config(project),
      'services/web.ts': web('  replicas: 3,'),
      'services/client.ts': sleeper('  connects: [web],'),
      'services/outsider.ts': sleeper(),
    },
    { git: true },
  );
  repos.push(root);

  // ── create with 3 replicas ──
  const created = await apply(root);
  assert.equal(created.ok, true, JSON.stringify(created.events.filter((e) => e.type === 'op-failed')));
  assert.deepEqual(created.ops.filter((o) => o.kind === 'create-swarm-service').map((o) => 'service' in o && o.service).sort(), ['client', 'outsider', 'web']);
  assert.ok(created.ops.some((o) => o.kind === 'create-network' && o.network === `${project}_link_client_web` && o.body.Driver === 'overlay'));
  assert.equal(running(await tasks(project, 'web')).length, 3);
  // `waffle status`: one row per task, the replicas not taken for duplicates.
  const status = await waffle(['status', '--json'], { cwd: root, env: { ...cliEnv, DOCKER_HOST: host } });
  assert.equal(status.code, 0, status.stderr);
  const rows = (JSON.parse(status.stdout) as { services: Array<{ service: string; container: string; state: string; marks: string[] }> }).services.filter((r) => r.service === 'web');
  assert.deepEqual(rows.map((r) => [r.container, r.state, r.marks]).sort(), [1, 2, 3].map((i) => [`${project}_web.${i}`, 'running', []]));
  const webProgress = created.events.filter((e) => e.type === 'task-progress' && e.op === 'create:web');
  assert.deepEqual(
    [...new Set(webProgress.filter((e) => e.type === 'task-progress' && e.state === 'running').map((e) => e.type === 'task-progress' && e.slot))].sort(),
    [1, 2, 3],
    'each of the 3 tasks is reported running',
  );

  // ── connects: the linked client reaches web by name; the unlinked outsider does not even resolve it ──
  // (busybox-static's wget crashes with -T and a DNS name, so the shell's `timeout` bounds it)
  const client = await taskContainer(project, 'client');
  const outsider = await taskContainer(project, 'outsider');
  const fromClient = await execIn(docker, client, ['timeout', '5', 'wget', '-q', '-O-', 'http://web:8080/']);
  assert.equal(fromClient.code, 0, fromClient.output);
  assert.match(fromClient.output, /waffle v1/);
  const fromOutsider = await execIn(docker, outsider, ['timeout', '5', 'wget', '-q', '-O-', 'http://web:8080/']);
  assert.notEqual(fromOutsider.code, 0, 'an unlinked service cannot reach web');
  const resolve = await execIn(docker, outsider, ['nslookup', 'web']);
  assert.doesNotMatch(resolve.output, /Address: 10\./, 'web does not resolve for an unlinked service');
  // Nor by the address of one of web's tasks: the outsider shares no network with it.
  const webAddr = /Address: (10\.[\d.]+)/.exec((await execIn(docker, client, ['nslookup', 'web'])).output)?.[1];
  assert.ok(webAddr, 'web resolves for the client');
  assert.notEqual((await execIn(docker, outsider, ['timeout', '5', 'wget', '-q', '-O-', `http://${webAddr}:8080/`])).code, 0);

  // ── scale to 1: an update that keeps the tasks ──
  const before = running(await tasks(project, 'web')).map((t) => t.ID);
  writeFiles(root, { 'services/web.ts': web('  replicas: 1,') });
  const scaled = await apply(root);
  assert.equal(scaled.ok, true, JSON.stringify(scaled.events.filter((e) => e.type === 'op-failed')));
  const scaleOp = scaled.ops.find((o) => o.kind === 'update-swarm-service');
  assert.ok(scaleOp && scaleOp.kind === 'update-swarm-service');
  assert.equal(scaleOp.rolls, false);
  assert.deepEqual(scaleOp.causes, [{ kind: 'replicas', detail: '3 → 1' }]);
  assert.equal(scaled.ops.length, 1, 'only web changes');
  const after1 = running(await tasks(project, 'web'));
  assert.equal(after1.length, 1);
  assert.ok(before.includes(after1[0]!.ID), 'the remaining task is one of the three (no task replaced)');

  // ── rolling update, start-first, through the CLI's plain renderer ──
  writeFiles(root, { 'services/web.ts': web(`  replicas: 1,`).replace(TEST_IMAGES.appV1, TEST_IMAGES.appV2) });
  const oldTask = after1[0]!.ID;
  const cli = await waffle(['apply', '--yes', '--plain'], { cwd: root, env: { ...cliEnv, DOCKER_HOST: host }, timeoutMs: 300_000 });
  assert.equal(cli.code, 0, cli.stdout + cli.stderr);
  const printed = cli.stdout + cli.stderr;
  assert.match(printed, /web: task 1 running/, 'the plain renderer prints the new task running');
  assert.match(printed, /web: task 1 \(previous\) running → shutdown/, 'and the old one being stopped');
  const svc = await inspectService(project, 'web');
  assert.equal(svc.Spec.UpdateConfig.Order, 'start-first');
  assert.equal(svc.Spec.TaskTemplate.ContainerSpec.Image, TEST_IMAGES.appV2);
  assert.equal(svc.UpdateStatus?.State, 'completed');
  // Swarm says `completed` once the new task runs; the old one is stopped right after.
  let all = await tasks(project, 'web');
  for (let i = 0; i < 60 && all.find((t) => t.ID === oldTask)?.Status?.State !== 'shutdown'; i++) {
    await new Promise((r) => setTimeout(r, 500));
    all = await tasks(project, 'web');
  }
  const old = all.find((t) => t.ID === oldTask)!;
  const fresh = running(all)[0]!;
  assert.notEqual(fresh.ID, oldTask);
  // Swarm's own record: the new task was running before the old one reached shutdown (start-first).
  const newRunningAt = Date.parse((await docker.getContainer(fresh.Status!.ContainerStatus!.ContainerID!).inspect()).State.StartedAt);
  assert.equal(old.Status?.State, 'shutdown');
  assert.ok(newRunningAt <= Date.parse(old.Status!.Timestamp!), `new task started ${new Date(newRunningAt).toISOString()}, old one shut down ${old.Status!.Timestamp}`);
  const v2 = await execIn(docker, await taskContainer(project, 'client'), ['timeout', '5', 'wget', '-q', '-O-', 'http://web:8080/']);
  assert.match(v2.output, /waffle v2/);

  // ── an update whose health check fails: Swarm rolls it back, waffle reports it failed ──
  writeFiles(root, {
    'services/web.ts': web('  replicas: 1,')
      .replace(TEST_IMAGES.appV1, TEST_IMAGES.appV2)
      .replace("healthcheck: { http: '/', interval: '500ms', timeout: '2s', retries: 3 }", "healthcheck: { command: 'exit 1', interval: '500ms', timeout: '2s', retries: 2 }"),
  });
  const failing = await apply(root);
  assert.equal(failing.ok, false, 'the apply is not a success');
  const failed = failing.events.find((e) => e.type === 'op-failed');
  assert.ok(failed && failed.type === 'op-failed', 'an operation failed');
  assert.equal(failed.service, 'web');
  assert.match(failed.failure.message, /Swarm rolled the update back/);
  assert.match(failed.failure.message, /task 1: .*(unhealthy|exit)/, 'with the task error');
  const done = failing.events.find((e) => e.type === 'apply-done');
  assert.ok(done && done.type === 'apply-done' && done.ok === false && done.summary.failed === 1);
  assert.ok(failing.events.some((e) => e.type === 'task-progress' && e.update === 'rollback_started'), 'the rollback shows in the task progress');
  const rolledBack = await inspectService(project, 'web');
  assert.match(rolledBack.UpdateStatus?.State ?? '', /^rollback_(completed|paused)$/);
  assert.equal(running(await tasks(project, 'web')).length, 1, 'the previous definition still runs');
  // The next plan wants the update again and says what happened.
  const again = await engine().plan({ dir: root });
  const retry = again.plan.operations.find((o) => o.kind === 'update-swarm-service');
  assert.ok(retry && retry.causes.some((c) => c.kind === 'rolled-back'), JSON.stringify(again.plan.operations));
  gitCommitAll(root, 'done');
});

test('a secret file on Swarm: a versioned Swarm secret; a rotation creates a new version, rolls the service, removes the old', { timeout: 600_000 }, async () => {
  const project = uniqueProject('sws');
  projects.push(project);
  const rand = () => Math.random().toString(36).slice(2, 12);
  const first = `first${rand()}${rand()}`;
  const second = `second${rand()}${rand()}`;
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
  files: { '/run/secrets/db_password': secrets.db.password },
});
`,
      '.gitignore': '.waffle/\n',
    },
    { git: true },
  );
  repos.push(root);
  const cli = (args: string[], input?: string) => waffle(args, { cwd: root, env: { ...cliEnv, DOCKER_HOST: host }, ...(input !== undefined ? { input } : {}) });
  for (const [args, input] of [
    [['secrets', 'init'], undefined],
    [['secrets', 'set', 'db.password'], first],
  ] as Array<[string[], string | undefined]>) {
    const r = await cli(args, input);
    assert.equal(r.code, 0, r.stderr);
  }
  gitCommitAll(root, 'secrets');

  const secretsOf = async () =>
    ((await docker.listSecrets({ filters: { label: [`dev.wafflemaker.project=${project}`] } })) as unknown as Array<{ Spec: { Name: string; Labels: Record<string, string> } }>)
      .map((s) => s.Spec)
      .sort((a, b) => a.Name.localeCompare(b.Name));

  const created = await apply(root);
  assert.equal(created.ok, true, JSON.stringify(created.events.filter((e) => e.type === 'op-failed')));
  const v1 = await secretsOf();
  assert.equal(v1.length, 1);
  assert.match(v1[0]!.Name, new RegExp(`^${project}_db_password_[0-9a-f]{12}$`));
  assert.equal(v1[0]!.Labels['dev.wafflemaker.secret-source'], 'db.password');
  assert.equal((await execIn(docker, await taskContainer(project, 'app'), ['cat', '/run/secrets/db_password'])).output, first);
  // The value is in no event and in no label.
  assert.ok(!JSON.stringify(created.events).includes(first), 'no event holds the value');
  assert.ok(!JSON.stringify(await inspectService(project, 'app')).includes(first), 'the service spec does not hold the value');

  // A no-op plan: nothing to do, the version is the same.
  assert.deepEqual((await engine().plan({ dir: root })).plan.operations, []);

  const r = await cli(['secrets', 'set', 'db.password'], second);
  assert.equal(r.code, 0, r.stderr);
  // The rotation goes through a recording proxy: the value travels in a request body, never in a request line.
  const proxy = await startSocketProxy(host);
  let rotated: Awaited<ReturnType<typeof apply>>;
  try {
    rotated = await apply(root, proxy.host);
    const create = proxy.requests.filter((q) => q.method === 'POST' && /\/secrets\/create/.test(q.url));
    assert.equal(create.length, 1);
    assert.equal(JSON.parse(create[0]!.body).Data, Buffer.from(second).toString('base64'), 'the new version holds the value');
    assert.ok(!proxy.requests.some((q) => q.url.includes(second) || q.url.includes(Buffer.from(second).toString('base64'))), 'no request line holds the value');
  } finally {
    await proxy.close();
  }
  assert.equal(rotated.ok, true, JSON.stringify(rotated.events.filter((e) => e.type === 'op-failed')));
  assert.deepEqual(rotated.ops.map((o) => o.kind), ['create-swarm-secret', 'update-swarm-service', 'remove-swarm-secret']);
  const update = rotated.ops[1]!;
  assert.ok(update.kind === 'update-swarm-service' && update.rolls);
  assert.deepEqual(update.after, [rotated.ops[0]!.id], 'the service moves after the new version exists');
  assert.deepEqual(rotated.ops[2]!.after, [update.id], 'the old version goes after the service moved');
  const v2 = await secretsOf();
  assert.equal(v2.length, 1, 'the old version was removed');
  assert.notEqual(v2[0]!.Name, v1[0]!.Name);
  assert.deepEqual((await inspectService(project, 'app')).Spec.TaskTemplate.ContainerSpec.Secrets?.map((s) => s.SecretName), [v2[0]!.Name]);
  assert.equal((await execIn(docker, await taskContainer(project, 'app'), ['cat', '/run/secrets/db_password'])).output, second);
  assert.ok(!JSON.stringify(rotated.events).includes(second));

  // ── destroy leaves nothing behind ──
  const report = await engine().destroy({ dir: root });
  assert.deepEqual(report.errors, []);
  assert.deepEqual(report.removed.services, [`${project}_app`]);
  assert.deepEqual(report.removed.secrets, [v2[0]!.Name]);
  const filters = { label: [`dev.wafflemaker.project=${project}`] };
  assert.deepEqual(await docker.listServices({ filters }), []);
  assert.deepEqual(await docker.listSecrets({ filters }), []);
  assert.deepEqual(await docker.listNetworks({ filters }), []);
  const containers = await docker.listContainers({ all: true, filters: { label: [`com.docker.swarm.service.name=${project}_app`] } });
  assert.deepEqual(containers, [], 'no task container is left');
});

test('destroy removes services, overlay networks and secrets of a linked project, and nothing else', { timeout: 300_000 }, async () => {
  const project = uniqueProject('swd');
  const other = uniqueProject('swo');
  projects.push(project, other);
  const root = makeRepo({ 'waffle.config.ts': config(project), 'services/web.ts': web(''), 'services/client.ts': sleeper('  connects: [web],') });
  const otherRoot = makeRepo({ 'waffle.config.ts': config(other), 'services/web.ts': web('') });
  repos.push(root, otherRoot);
  assert.equal((await apply(root)).ok, true);
  assert.equal((await apply(otherRoot)).ok, true);
  const report = await engine().destroy({ dir: root });
  assert.deepEqual(report.errors, []);
  assert.deepEqual(report.removed.services, [`${project}_client`, `${project}_web`]);
  assert.deepEqual(report.removed.networks, [`${project}_link_client_web`]);
  const filters = { label: [`dev.wafflemaker.project=${project}`] };
  assert.deepEqual(await docker.listServices({ filters }), []);
  assert.deepEqual(await docker.listNetworks({ filters }), []);
  const left = await docker.listContainers({ all: true, filters: { label: ['dev.wafflemaker.task-of'] } });
  assert.deepEqual(left.filter((c) => c.Labels['dev.wafflemaker.task-of']!.startsWith(`${project}/`)), []);
  // The other project is untouched.
  assert.equal(running(await tasks(other, 'web')).length, 1);
});

test('a no-op apply on Swarm makes the same Docker API calls at 5 and at 50 services, and changes no service', { timeout: 900_000 }, async () => {
  const project = uniqueProject('swn');
  projects.push(project);
  const svc = (i: number) => `import { defineService } from 'wafflemaker';
${i % 5 === 4 ? `import prev from './s${i - 1}';\n` : ''}export default defineService({
  image: '${TEST_IMAGES.busybox}',
  command: 'sleep 3600',
  env: { INDEX: '${i}' },
  stopGracePeriod: '1s',
${i % 5 === 4 ? '  connects: [prev],\n' : ''}${i % 3 === 0 ? "  resources: { memory: '32m' },\n" : ''}});
`;
  const files = (from: number, to: number) => Object.fromEntries(Array.from({ length: to - from }, (_, k) => [`services/s${from + k}.ts`, svc(from + k)]));
  const root = makeRepo({ 'waffle.config.ts': config(project), ...files(0, 5) });
  repos.push(root);
  const proxy: SocketProxy = await startSocketProxy(host);
  try {
    const noop = async () => {
      proxy.reset();
      const r = await apply(root, proxy.host);
      assert.equal(r.ok, true);
      assert.deepEqual(r.ops, [], 'nothing to do');
      return proxy.requests.map((q) => `${q.method} ${q.url.replace(/^\/v[\d.]+/, '').replace(/\?.*$/, '')}`);
    };
    assert.equal((await apply(root)).ok, true);
    const at5 = await noop();
    writeFiles(root, files(5, 50));
    const grown = await apply(root);
    assert.equal(grown.ok, true, JSON.stringify(grown.events.filter((e) => e.type === 'op-failed')));
    assert.equal(grown.ops.filter((o) => o.kind === 'create-swarm-service').length, 45);
    const versions = async () =>
      Object.fromEntries(
        ((await docker.listServices({ filters: { label: [`dev.wafflemaker.project=${project}`] } })) as unknown as Array<{ Spec: { Name: string }; Version: { Index: number } }>).map((s) => [
          s.Spec.Name,
          s.Version.Index,
        ]),
      );
    const before50 = await versions();
    assert.equal(Object.keys(before50).length, 50);
    const at50 = await noop();
    assert.deepEqual(await versions(), before50, 'every service keeps its spec version');
    assert.equal(at50.length, at5.length, `5 services:\n${at5.join('\n')}\n50 services:\n${at50.join('\n')}`);
    assert.deepEqual([...at50].sort(), [...at5].sort());
    assert.deepEqual(at50.filter((l) => !l.startsWith('GET ')), [], 'no write');
    for (const list of ['GET /services', 'GET /tasks', 'GET /secrets', 'GET /networks']) assert.ok(at50.includes(list), `${list} in\n${at50.join('\n')}`);
  } finally {
    await proxy.close();
  }
});

test('on the engine target, replicas above 1 is refused with the file, the service and the fix', async () => {
  const project = uniqueProject('swr');
  const root = makeRepo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
    'services/web.ts': web('  replicas: 3,'),
  });
  repos.push(root);
  const events: RunEvent[] = [];
  await assert.rejects(engine().plan({ dir: root }, { onEvent: (e) => events.push(e) }));
  const failed = events.find((e) => e.type === 'run-failed');
  assert.ok(failed && failed.type === 'run-failed' && failed.stage === 'validate');
  const p = failed.problems.find((x) => x.where === 'replicas');
  assert.ok(p, JSON.stringify(failed.problems));
  assert.equal(p.file, 'services/web.ts');
  assert.equal(p.service, 'web');
  assert.match(p.message, /replicas: 3 needs a Docker Swarm/);
  assert.match(p.fix ?? '', /target: 'swarm' in waffle\.config\.ts/);
  // Nothing was created.
  assert.deepEqual(await docker.listContainers({ all: true, filters: { label: [`dev.wafflemaker.project=${project}`] } }), []);
});

test('the demo repository planned against both targets: the differences docs/swarm.md shows', { timeout: 300_000 }, async () => {
  const project = uniqueProject('swdemo');
  const onEngine = copyDemoRepo(project);
  repos.push(onEngine);
  const engineOps = (await engine().plan({ dir: onEngine })).plan.operations;
  const kinds = (ops: Operation[]) => ops.map((o) => o.kind).sort();
  assert.deepEqual(kinds(engineOps), ['create-network', 'create-network', 'create-network', 'create-network', 'create-service', 'create-service', 'create-service', 'create-service', 'create-volume']);

  // As it is, web's port bound to 127.0.0.1 is refused on Swarm (it would be published on every address).
  const asIs = copyDemoRepo(project, [["project: 'waffle-demo',", "project: 'waffle-demo',\n  target: 'swarm',"]]);
  repos.push(asIs);
  const events: RunEvent[] = [];
  await assert.rejects(engine().plan({ dir: asIs }, { onEvent: (e) => events.push(e) }));
  const failed = events.find((e) => e.type === 'run-failed');
  assert.ok(failed && failed.type === 'run-failed');
  assert.deepEqual(
    failed.problems.map((p) => [p.file, p.service, p.where]),
    [['services/web.ts', 'web', 'ports[0]']],
  );
  assert.match(failed.problems[0]!.fix ?? '', /'8088:8080'/);

  // With the port on all addresses: four Swarm services, the three link networks only, no volume operation.
  const onSwarm = copyDemoRepo(project, [
    ["project: 'waffle-demo',", "project: 'waffle-demo',\n  target: 'swarm',"],
    ["'127.0.0.1:8088:8080'", "'8088:8080'"],
  ]);
  repos.push(onSwarm);
  const swarmOps = (await engine().plan({ dir: onSwarm })).plan.operations;
  assert.deepEqual(kinds(swarmOps), ['create-network', 'create-network', 'create-network', 'create-swarm-service', 'create-swarm-service', 'create-swarm-service', 'create-swarm-service']);
  assert.deepEqual(
    swarmOps.filter((o) => o.kind === 'create-network').map((o) => o.kind === 'create-network' && o.network),
    engineOps.filter((o) => o.kind === 'create-network' && !o.network.endsWith('_default')).map((o) => o.kind === 'create-network' && o.network),
    'the same link networks, without the project-wide one',
  );
  const spec = (name: string) => {
    const op = swarmOps.find((o) => o.kind === 'create-swarm-service' && o.service === name);
    assert.ok(op && op.kind === 'create-swarm-service');
    return op.spec;
  };
  assert.equal(spec('web').UpdateConfig.Order, 'stop-first', 'a fixed host port rolls out stop-first');
  assert.equal(spec('api').UpdateConfig.Order, 'start-first');
  assert.deepEqual(spec('web').EndpointSpec.Ports, [{ Protocol: 'tcp', TargetPort: 8080, PublishedPort: 8088, PublishMode: 'host' }]);
  assert.deepEqual(spec('cache').TaskTemplate.ContainerSpec.Mounts.map((m) => [m.Type, m.Source, m.Target, m.VolumeOptions?.Labels['dev.wafflemaker.project']]), [
    ['volume', `${project}_cache-data`, '/data', project],
  ]);
  // web waits for api (dependsOn healthy): its create comes after api's.
  const web = swarmOps.find((o) => o.kind === 'create-swarm-service' && o.service === 'web')!;
  assert.ok(web.after.includes('create:api'));
});

test('the progress view shows the latest task of a rolling update', () => {
  const base = { op: 'update:web', service: 'web', desiredState: 'running', at: 1 } as const;
  const s = foldEvents([
    { type: 'apply-start', project: 'p', operations: 1, at: 0 },
    { type: 'op-start', op: 'update:web', kind: 'update-swarm-service', service: 'web', at: 0 },
    { ...base, type: 'task-progress', task: 'a', slot: 1, state: 'running', current: true, replicas: 2 },
    { ...base, type: 'task-progress', task: 'b', slot: 1, state: 'running', desiredState: 'shutdown', current: false, replicas: 2 },
  ]);
  // The new tasks running out of the replicas, then the latest change.
  assert.equal(stepText(s.rows['update:web']!, 1), 'updating 1/2 new · task 1 (previous) running → shutdown');
  const next = foldEvents([
    ...[
      { type: 'apply-start', project: 'p', operations: 1, at: 0 },
      { type: 'op-start', op: 'update:web', kind: 'update-swarm-service', service: 'web', at: 0 },
    ] as const,
    { ...base, type: 'task-progress', task: 'a', slot: 1, state: 'running', current: true, replicas: 2 },
    { ...base, type: 'task-progress', task: 'c', slot: 2, state: 'starting', current: true, replicas: 2 },
    { ...base, type: 'task-progress', task: 'c', slot: 2, state: 'running', current: true, replicas: 2 },
  ]);
  assert.equal(stepText(next.rows['update:web']!, 1), 'updating 2/2 new · task 2 running');
  // Events without the replicas (an older recording) show the latest change alone.
  const bare = foldEvents([
    { type: 'op-start', op: 'update:web', kind: 'update-swarm-service', service: 'web', at: 0 },
    { ...base, type: 'task-progress', task: 'b', slot: 1, state: 'running', desiredState: 'shutdown', current: false },
  ]);
  assert.equal(stepText(bare.rows['update:web']!, 1), 'updating task 1 (previous) running → shutdown');
  const failed = foldEvents([
    { type: 'op-start', op: 'update:web', kind: 'update-swarm-service', service: 'web', at: 0 },
    { ...base, type: 'task-progress', task: 'c', slot: 1, state: 'failed', desiredState: 'shutdown', current: true, error: 'unhealthy container', update: 'rollback_started' },
  ]);
  assert.equal(stepText(failed.rows['update:web']!, 1), 'updating task 1 failed → shutdown: unhealthy container [rollback_started]');
});
