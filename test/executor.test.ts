/**
 * The Docker adapter, observer and executor against the real engine. Operations are built by hand
 * (no planner), every test uses its own project, and everything is removed in `after`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type Dockerode from 'dockerode';
import { ensureEngine, ensureTestImages, TEST_IMAGES } from './engine.ts';
import { connectDocker } from '../runtime/docker/client.ts';
import { demuxBuffer } from '../runtime/docker/container.ts';
import { observe } from '../runtime/docker/observe.ts';
import { destroyProject } from '../runtime/docker/destroy.ts';
import { streamLogs } from '../runtime/docker/logs.ts';
import { execute } from '../runtime/apply/executor.ts';
import { LABEL, names } from '../runtime/labels.ts';
import { replaceSteps } from '../runtime/plan/steps.ts';
import type { ApplyEvent, ContainerCreateBody, NetworkCreateBody, Operation, Plan } from '../runtime/model.ts';

let docker: Dockerode;
const projects: string[] = [];
const strays: string[] = [];

function newProject(): string {
  const p = `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  projects.push(p);
  return p;
}

before(async () => {
  const host = await ensureEngine();
  process.env.DOCKER_HOST = host;
  await ensureTestImages(host);
  docker = await connectDocker(host);
});

after(async () => {
  if (!docker) return;
  for (const p of projects) await destroyProject(docker, p, { volumes: true });
  for (const id of strays) await docker.getContainer(id).remove({ force: true }).catch(() => undefined);
});

const HTTPD = ['httpd', '-f', '-p', '8080', '-h', '/www'];
const MS = 1_000_000;

function body(
  project: string,
  service: string,
  opts: {
    image?: string;
    cmd?: string[];
    networks?: string[];
    healthcheck?: string[];
    ports?: Record<string, Array<{ HostIp: string; HostPort: string }>>;
    memory?: number;
    restart?: string;
    generation?: number;
    hash?: string;
  } = {},
): ContainerCreateBody {
  const nets = opts.networks ?? [names.defaultNetwork(project)];
  return {
    Image: opts.image ?? TEST_IMAGES.appV1,
    Cmd: opts.cmd ?? HTTPD,
    Env: [`SERVICE=${service}`],
    Labels: {
      [LABEL.project]: project,
      [LABEL.service]: service,
      [LABEL.configHash]: opts.hash ?? `hash-${service}-${opts.generation ?? 1}`,
      [LABEL.generation]: String(opts.generation ?? 1),
      [LABEL.commit]: 'c0ffee1',
      [LABEL.definedAt]: `services/${service}.ts:3:16`,
    },
    ExposedPorts: { '8080/tcp': {} },
    ...(opts.healthcheck
      ? { Healthcheck: { Test: opts.healthcheck, Interval: 300 * MS, Timeout: 1000 * MS, Retries: 2, StartPeriod: 0 } }
      : {}),
    StopTimeout: 1,
    HostConfig: {
      RestartPolicy: { Name: opts.restart ?? 'unless-stopped', MaximumRetryCount: 0 },
      Memory: opts.memory ?? 0,
      NanoCpus: 0,
      PortBindings: opts.ports ?? {},
      Mounts: [],
      NetworkMode: nets[0],
    },
    // The service name is an alias on link networks only: on the default network (icc off) Docker's
    // DNS could otherwise answer with an address nobody can reach. Alone on the default network, a
    // service keeps its alias there.
    NetworkingConfig: {
      EndpointsConfig: Object.fromEntries(
        nets.map((n) => [n, { Aliases: n === names.defaultNetwork(project) && nets.length > 1 ? [] : [service] }]),
      ),
    },
  };
}

function networkOp(project: string, name: string, role: 'default' | 'link'): Operation {
  const b: NetworkCreateBody = {
    Name: name,
    Driver: 'bridge',
    Internal: false,
    Labels: { [LABEL.project]: project, [LABEL.role]: role },
    Options: role === 'default' ? { 'com.docker.network.bridge.enable_icc': 'false' } : {},
  };
  return { id: `network:${name}`, kind: 'create-network', network: name, body: b, after: [], causes: [{ kind: 'new', detail: 'new network' }] };
}

function createOp(project: string, service: string, b: ContainerCreateBody, after: string[], waitHealthy = !!b.Healthcheck): Operation {
  return {
    id: `create:${service}`,
    kind: 'create-service',
    service,
    containerName: names.container(project, service),
    body: b,
    waitHealthy,
    after,
    causes: [{ kind: 'new', detail: 'new service' }],
  };
}

function plan(project: string, operations: Operation[]): Plan {
  return { project, observedFingerprint: 'test', operations, unchanged: [] };
}

async function run(p: Plan, opts: Parameters<typeof execute>[3] = {}): Promise<{ ok: boolean; events: ApplyEvent[] }> {
  const events: ApplyEvent[] = [];
  const r = await execute(docker, p, (e) => events.push(e), opts);
  return { ...r, events };
}

/** Runs a command inside a container; returns exit code and output. */
async function exec(containerId: string, cmd: string[]): Promise<{ code: number; out: string }> {
  const ex = await docker.getContainer(containerId).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await ex.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  const info = await ex.inspect();
  return { code: info.ExitCode ?? -1, out: demuxBuffer(Buffer.concat(chunks)).combined };
}

async function projectContainers(project: string) {
  return docker.listContainers({ all: true, filters: { label: [`${LABEL.project}=${project}`] } });
}

function hostGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 2000 }, (res) => {
      let s = '';
      res.on('data', (d) => (s += d));
      res.on('end', () => resolve(s));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

async function eventually<T>(fn: () => Promise<T>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** A project with one running service `web` (app:1) on the default network; returns its container id. */
async function deployWeb(project: string, extra: Parameters<typeof body>[2] = {}): Promise<string> {
  const net = networkOp(project, names.defaultNetwork(project), 'default');
  const r = await run(plan(project, [net, createOp(project, 'web', body(project, 'web', extra), [net.id])]));
  assert.equal(r.ok, true, JSON.stringify(r.events.filter((e) => e.type === 'op-failed')));
  const info = await docker.getContainer(names.container(project, 'web')).inspect();
  return info.Id;
}

function replaceOp(
  project: string,
  oldId: string,
  strategy: 'start-first' | 'stop-first',
  b: ContainerCreateBody,
): Extract<Operation, { kind: 'replace-service' }> {
  const planned = replaceSteps({
    strategy,
    old: { id: oldId, name: names.container(project, 'web'), state: 'running' },
    tempName: names.tempContainer(project, 'web', 2),
    containerName: names.container(project, 'web'),
    body: b,
    waitHealthy: true,
  });
  return {
    id: 'replace:web',
    kind: 'replace-service',
    service: 'web',
    strategy,
    strategyReason: strategy === 'stop-first' ? 'fixed host port' : 'no fixed host port',
    oldContainerId: oldId,
    oldContainerName: names.container(project, 'web'),
    containerName: names.container(project, 'web'),
    tempName: names.tempContainer(project, 'web', 2),
    body: planned.body,
    waitHealthy: true,
    steps: planned.steps,
    rollback: planned.rollback,
    after: [],
    causes: [{ kind: 'image', detail: 'app:1 → app:2' }],
  };
}

test('creates services and networks; links decide who reaches whom; events and observe agree', async () => {
  const p = newProject();
  const def = names.defaultNetwork(p);
  const link = names.linkNetwork(p, 'a', 'b');
  const netDef = networkOp(p, def, 'default');
  const netLink = networkOp(p, link, 'link');
  const hc = ['CMD', 'wget', '-q', '-O-', 'http://127.0.0.1:8080/'];
  const ops: Operation[] = [
    netDef,
    netLink,
    createOp(p, 'a', body(p, 'a', { networks: [def, link], memory: 64 * 1024 * 1024, restart: 'on-failure' }), [netDef.id, netLink.id]),
    createOp(p, 'b', body(p, 'b', { networks: [def, link], healthcheck: hc, generation: 3 }), [netDef.id, netLink.id]),
    createOp(p, 'c', body(p, 'c'), [netDef.id]),
  ];
  const r = await run(plan(p, ops), { parallelism: 3 });
  assert.equal(r.ok, true, JSON.stringify(r.events.filter((e) => e.type === 'op-failed')));

  // Events: every op started and finished, the summary counts them.
  for (const op of ops) {
    assert.ok(r.events.some((e) => e.type === 'op-start' && e.op === op.id), `op-start ${op.id}`);
    assert.ok(r.events.some((e) => e.type === 'op-done' && e.op === op.id), `op-done ${op.id}`);
  }
  assert.equal(r.events[0].type, 'apply-start');
  const done = r.events.at(-1)!;
  assert.equal(done.type, 'apply-done');
  if (done.type === 'apply-done') {
    assert.deepEqual(done.summary, { created: 3, replaced: 0, updated: 0, removed: 0, failed: 0, skipped: 0 });
  }
  // `after` respected: no service started before both networks were done.
  const idx = (pred: (e: ApplyEvent) => boolean) => r.events.findIndex(pred);
  const netDone = Math.max(
    idx((e) => e.type === 'op-done' && e.op === netDef.id),
    idx((e) => e.type === 'op-done' && e.op === netLink.id),
  );
  assert.ok(idx((e) => e.type === 'op-start' && e.op === 'create:a') > netDone);
  assert.ok(r.events.some((e) => e.type === 'health-wait' && e.service === 'b'));

  // Containers running with labels.
  const list = await projectContainers(p);
  assert.equal(list.length, 3);
  for (const c of list) {
    assert.equal(c.State, 'running');
    assert.equal(c.Labels[LABEL.project], p);
    assert.ok(['a', 'b', 'c'].includes(c.Labels[LABEL.service]));
    assert.equal(c.Labels[LABEL.commit], 'c0ffee1');
  }
  const a = await docker.getContainer(names.container(p, 'a')).inspect();
  assert.deepEqual(Object.keys(a.NetworkSettings.Networks).sort(), [def, link].sort());
  assert.ok(a.NetworkSettings.Networks[link].Aliases?.includes('a'));
  assert.ok(!a.NetworkSettings.Networks[def].Aliases?.includes('a'));

  // a reaches b by name over the link network; c (default network only, icc off) cannot.
  // (busybox-static wget crashes with -T and a DNS name, so the shell's `timeout` bounds it; the
  // same command must succeed from a, which makes c's failure meaningful.)
  const fetchB = ['timeout', '3', 'wget', '-q', '-O-', 'http://b:8080/'];
  const ab = await exec(a.Id, fetchB);
  assert.equal(ab.code, 0, ab.out);
  assert.match(ab.out, /waffle v1/);
  const cId = (await docker.getContainer(names.container(p, 'c')).inspect()).Id;
  const cb = await exec(cId, fetchB);
  assert.notEqual(cb.code, 0, `c must not reach b, got: ${cb.out}`);
  assert.doesNotMatch(cb.out, /waffle/);
  // Even by container name, which resolves on the shared default network, the connection fails (icc off).
  const bName = names.container(p, 'b');
  const resolves = await exec(cId, ['nslookup', bName]);
  assert.match(resolves.out, /Address: \d+\.\d+\.\d+\.\d+/, `${bName} resolves from c`);
  const cbByName = await exec(cId, ['timeout', '3', 'wget', '-q', '-O-', `http://${bName}:8080/`]);
  assert.notEqual(cbByName.code, 0, `c must not reach ${bName}, got: ${cbByName.out}`);
  assert.doesNotMatch(cbByName.out, /waffle/);

  // observe sees what was created.
  const o = await observe(docker, p);
  assert.equal(o.project, p);
  assert.deepEqual(o.containers.map((c) => c.service), ['a', 'b', 'c']);
  const [oa, ob, oc] = o.containers;
  assert.equal(oa.name, names.container(p, 'a'));
  assert.equal(oa.configHash, 'hash-a-1');
  assert.equal(ob.generation, 3);
  assert.equal(ob.health, 'healthy');
  assert.equal(oc.health, 'none');
  assert.deepEqual(oa.restart, { name: 'on-failure', maximumRetryCount: 0 });
  assert.deepEqual(ob.restart, { name: 'unless-stopped', maximumRetryCount: 0 });
  assert.equal(oa.resources.memory, 64 * 1024 * 1024);
  assert.equal(ob.resources.memory, 0);
  assert.equal(oa.state, 'running');
  assert.equal(oa.image, TEST_IMAGES.appV1);
  assert.match(oa.imageId, /^sha256:/);
  assert.deepEqual(o.networks.map((n) => n.name), [def, link].sort());
  assert.ok(o.images.includes(TEST_IMAGES.appV2));

  // update-service in place: memory above the current swap limit, and a new restart policy.
  const upd = await run(
    plan(p, [
      {
        id: 'update:a',
        kind: 'update-service',
        service: 'a',
        containerId: a.Id,
        update: { Memory: 256 * 1024 * 1024, RestartPolicy: { Name: 'always', MaximumRetryCount: 0 } },
        after: [],
        causes: [{ kind: 'resources', detail: 'memory 64m → 256m' }],
      },
    ]),
  );
  assert.equal(upd.ok, true, JSON.stringify(upd.events));
  const o2 = await observe(docker, p);
  const oa2 = o2.containers.find((c) => c.service === 'a')!;
  assert.equal(oa2.id, a.Id);
  assert.equal(oa2.resources.memory, 256 * 1024 * 1024);
  assert.equal(oa2.restart.name, 'always');

  // streamLogs writes the service's logs.
  const chunks: string[] = [];
  const sink = new (await import('node:stream')).Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  await streamLogs(docker, p, 'a', { follow: false, tail: 10 }, sink);
  await assert.rejects(streamLogs(docker, p, 'nope', { follow: false }, sink), /has no container.*a, b, c/);
});

test('start-first replace with a passing healthcheck: the new version serves under the old name', async () => {
  const p = newProject();
  const oldId = await deployWeb(p);
  const hc = ['CMD', 'wget', '-q', '-O-', 'http://127.0.0.1:8080/'];
  const op = replaceOp(p, oldId, 'start-first', body(p, 'web', { image: TEST_IMAGES.appV2, healthcheck: hc, generation: 2 }));
  const r = await run(plan(p, [op]));
  assert.equal(r.ok, true, JSON.stringify(r.events.filter((e) => e.type === 'op-failed')));
  const steps = r.events.filter((e) => e.type === 'step').map((e) => (e.type === 'step' ? e.step : ''));
  assert.deepEqual(steps, ['creating', 'starting', 'waiting-health', 'switching', 'unaliasing-old', 'draining', 'stopping-old', 'removing-old', 'renaming']);

  const list = await projectContainers(p);
  assert.equal(list.length, 1);
  assert.equal(list[0].Names[0], `/${names.container(p, 'web')}`);
  assert.notEqual(list[0].Id, oldId);
  assert.equal(list[0].Labels[LABEL.generation], '2');
  await assert.rejects(docker.getContainer(oldId).inspect(), (e: { statusCode?: number }) => e.statusCode === 404);
  const served = await exec(list[0].Id, ['wget', '-q', '-O-', 'http://127.0.0.1:8080/']);
  assert.match(served.out, /waffle v2/);
  const doneEv = r.events.find((e) => e.type === 'op-done');
  assert.equal(doneEv?.type === 'op-done' ? doneEv.containerId : undefined, list[0].Id);
  const summary = r.events.at(-1);
  assert.equal(summary?.type === 'apply-done' ? summary.summary.replaced : -1, 1);
});

test('the old container drains with its own stop grace period, not the new spec\'s', async () => {
  const p = newProject();
  // The old version ignores SIGTERM and has a 1 s grace; the new one asks for 120 s.
  const oldId = await deployWeb(p, { cmd: ['sh', '-c', 'trap "" TERM; httpd -f -p 8080 -h /www & wait'] });
  const b = { ...body(p, 'web', { image: TEST_IMAGES.appV2, generation: 2 }), StopTimeout: 120 };
  const t0 = Date.now();
  const r = await run(plan(p, [replaceOp(p, oldId, 'start-first', b)]));
  assert.equal(r.ok, true, JSON.stringify(r.events.filter((e) => e.type === 'op-failed')));
  // With the new spec's 120 s the old container would still be draining; its own 1 s ends it.
  assert.ok(Date.now() - t0 < 60_000, `the replace waited ${Date.now() - t0} ms for the old container`);
  await assert.rejects(docker.getContainer(oldId).inspect(), 'the old container is gone');
});

test('start-first replace whose health fails leaves the old container running and untouched', async () => {
  const p = newProject();
  const oldId = await deployWeb(p);
  const cmd = ['sh', '-c', 'echo starting web v2; echo oops on stderr >&2; exec httpd -f -p 8080 -h /www'];
  const op = replaceOp(
    p,
    oldId,
    'start-first',
    body(p, 'web', { image: TEST_IMAGES.appV2, cmd, healthcheck: ['CMD-SHELL', 'echo health says no; exit 1'], generation: 2 }),
  );
  const r = await run(plan(p, [op]));
  assert.equal(r.ok, false);
  const failed = r.events.find((e) => e.type === 'op-failed');
  assert.ok(failed && failed.type === 'op-failed');
  assert.match(failed.failure.message, /service web did not become healthy/);
  assert.ok(failed.failure.healthOutput?.some((l) => l.includes('health says no')), JSON.stringify(failed.failure));
  assert.ok(failed.failure.logTail?.includes('starting web v2'), JSON.stringify(failed.failure));
  assert.ok(failed.failure.logTail?.includes('oops on stderr'), JSON.stringify(failed.failure));
  assert.equal(failed.failure.definedAt, 'services/web.ts:3:16');
  assert.ok(!r.events.some((e) => e.type === 'op-done'));

  const list = await projectContainers(p);
  assert.equal(list.length, 1, 'the new container is gone');
  assert.equal(list[0].Id, oldId);
  assert.equal(list[0].State, 'running');
  assert.equal(list[0].Names[0], `/${names.container(p, 'web')}`);
  const served = await exec(oldId, ['wget', '-q', '-O-', 'http://127.0.0.1:8080/']);
  assert.match(served.out, /waffle v1/);
});

test('stop-first replace (fixed host port) whose new version fails restarts the old one', async () => {
  const p = newProject();
  const port = 20000 + Math.floor(Math.random() * 30000);
  const ports = { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] };
  const oldId = await deployWeb(p, { ports });
  assert.match(await eventually(() => hostGet(port)), /waffle v1/);

  const op = replaceOp(p, oldId, 'stop-first', body(p, 'web', { image: TEST_IMAGES.appV2, ports, healthcheck: ['CMD', 'false'], generation: 2 }));
  const r = await run(plan(p, [op]), { healthTimeoutMs: 8000 });
  assert.equal(r.ok, false);
  const steps = r.events.filter((e) => e.type === 'step').map((e) => (e.type === 'step' ? e.step : ''));
  assert.equal(steps[0], 'stopping-old');
  assert.ok(steps.includes('rolling-back'));
  const failed = r.events.find((e) => e.type === 'op-failed');
  assert.ok(failed?.type === 'op-failed' && failed.failure.healthOutput && failed.failure.healthOutput.length > 0);

  const list = await projectContainers(p);
  assert.equal(list.length, 1);
  assert.equal(list[0].Id, oldId);
  assert.equal(list[0].State, 'running');
  assert.match(await eventually(() => hostGet(port)), /waffle v1/);
});

test('stop-first replace that succeeds frees the port for the new version', async () => {
  const p = newProject();
  const port = 20000 + Math.floor(Math.random() * 30000);
  const ports = { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] };
  const oldId = await deployWeb(p, { ports });
  const op = replaceOp(p, oldId, 'stop-first', body(p, 'web', { image: TEST_IMAGES.appV2, ports, generation: 2 }));
  const r = await run(plan(p, [op]));
  assert.equal(r.ok, true, JSON.stringify(r.events.filter((e) => e.type === 'op-failed')));
  const list = await projectContainers(p);
  assert.equal(list.length, 1);
  assert.notEqual(list[0].Id, oldId);
  assert.equal(list[0].Names[0], `/${names.container(p, 'web')}`);
  assert.match(await eventually(() => hostGet(port)), /waffle v2/);
});

test('a host port held by someone else: the failure names the port and the fix, and nothing is left behind', async () => {
  const p = newProject();
  const port = 20000 + Math.floor(Math.random() * 30000);
  const ports = { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] };
  await deployWeb(p, { ports });
  const net = networkOp(p, names.defaultNetwork(p), 'default');
  const r = await run(plan(p, [net, createOp(p, 'api', body(p, 'api', { ports }), [net.id])]));
  assert.equal(r.ok, false);
  const failed = r.events.find((e) => e.type === 'op-failed');
  assert.ok(failed?.type === 'op-failed', JSON.stringify(r.events));
  assert.match(failed.failure.message, /^service api: could not start container/);
  assert.ok(failed.failure.message.includes(`Fix: host port ${port} is taken`), failed.failure.message);
  assert.ok(failed.failure.message.includes(`docker ps --filter publish=${port}`), failed.failure.message);
  assert.equal(failed.failure.definedAt, 'services/api.ts:3:16');
  assert.deepEqual((await projectContainers(p)).map((c) => c.Labels[LABEL.service]), ['web']);
});

test('a failed image pull changes nothing: every other operation is skipped', async () => {
  const p = newProject();
  const image = '127.0.0.1:9/waffle-test/does-not-exist:1';
  const net = networkOp(p, names.defaultNetwork(p), 'default');
  const pull: Operation = { id: `pull:${image}`, kind: 'pull-image', image, after: [], causes: [{ kind: 'image', detail: 'missing' }] };
  const ops = [pull, net, createOp(p, 'web', body(p, 'web', { image }), [pull.id, net.id]), createOp(p, 'other', body(p, 'other'), [net.id])];
  const r = await run(plan(p, ops));
  assert.equal(r.ok, false);
  const failed = r.events.find((e) => e.type === 'op-failed');
  assert.ok(failed?.type === 'op-failed');
  assert.equal(failed.op, pull.id);
  assert.ok(failed.failure.message.includes(image));
  assert.match(failed.failure.message, /could not be pulled/);
  assert.match(failed.failure.message, /Fix: build or push/);
  const skipped = r.events.filter((e) => e.type === 'op-skipped').map((e) => e.op).sort();
  assert.deepEqual(skipped, [net.id, 'create:other', 'create:web'].sort());
  assert.ok(!r.events.some((e) => e.type === 'op-start' && e.op !== pull.id));
  assert.equal((await projectContainers(p)).length, 0);
  assert.equal((await docker.listNetworks({ filters: { label: [`${LABEL.project}=${p}`] } })).length, 0);
  const done = r.events.at(-1);
  assert.deepEqual(done?.type === 'apply-done' ? [done.summary.failed, done.summary.skipped] : [], [1, 3]);
});

test('a failed op skips what comes after it; independent ops still run', async () => {
  const p = newProject();
  const net = networkOp(p, names.defaultNetwork(p), 'default');
  const bad = createOp(p, 'bad', body(p, 'bad', { cmd: ['sh', '-c', 'echo dying; exit 3'] }), [net.id], true);
  const dependent = { ...createOp(p, 'dep', body(p, 'dep'), [bad.id]), id: 'create:dep' };
  const transitive = { ...createOp(p, 'dep2', body(p, 'dep2'), ['create:dep']), id: 'create:dep2' };
  const independent = createOp(p, 'ok', body(p, 'ok'), [net.id]);
  const r = await run(plan(p, [net, bad, dependent, transitive, independent]));
  assert.equal(r.ok, false);
  const failed = r.events.find((e) => e.type === 'op-failed');
  assert.ok(failed?.type === 'op-failed');
  assert.match(failed.failure.message, /exited with code 3/);
  // Its restart policy may have run it more than once before the gate saw it die.
  assert.ok(failed.failure.logTail?.length && failed.failure.logTail.every((l) => l === 'dying'), String(failed.failure.logTail));
  const skipped = r.events.filter((e) => e.type === 'op-skipped');
  assert.deepEqual(skipped.map((e) => e.op).sort(), ['create:dep', 'create:dep2']);
  assert.ok(skipped.every((e) => e.type === 'op-skipped' && /failed|skipped/.test(e.reason)));
  assert.ok(r.events.some((e) => e.type === 'op-done' && e.op === independent.id));
  const list = await projectContainers(p);
  assert.deepEqual(list.map((c) => c.Labels[LABEL.service]), ['ok'], 'the failed container was removed');
});

test('an aborted apply starts nothing new', async () => {
  const p = newProject();
  const ctl = new AbortController();
  ctl.abort();
  const net = networkOp(p, names.defaultNetwork(p), 'default');
  const r = await run(plan(p, [net, createOp(p, 'web', body(p, 'web'), [net.id])]), { signal: ctl.signal });
  assert.equal(r.ok, false);
  assert.equal(r.events.filter((e) => e.type === 'op-skipped').length, 2);
  assert.equal((await docker.listNetworks({ filters: { label: [`${LABEL.project}=${p}`] } })).length, 0);
});

test('aborting mid-apply cancels the running op\'s health wait, removes its new container and starts nothing after it', async () => {
  const p = newProject();
  const ctl = new AbortController();
  const net = networkOp(p, names.defaultNetwork(p), 'default');
  // Its first health probe runs only after a minute: the gate waits until the abort cancels it.
  const slow = { Test: ['CMD', 'true'], Interval: 60_000 * MS, Timeout: 1000 * MS, Retries: 1, StartPeriod: 0 };
  const first = createOp(p, 'first', { ...body(p, 'first'), Healthcheck: slow }, [net.id], true);
  const second = createOp(p, 'second', body(p, 'second'), [first.id]);
  const events: ApplyEvent[] = [];
  let abortedAt = 0;
  const r = await execute(
    docker,
    plan(p, [net, first, second]),
    (e) => {
      events.push(e);
      if (e.type === 'health-wait' && e.op === first.id && !abortedAt) {
        abortedAt = Date.now();
        ctl.abort();
      }
    },
    { signal: ctl.signal },
  );
  assert.equal(r.ok, false);
  assert.ok(abortedAt > 0, 'the gate was reached');
  assert.ok(Date.now() - abortedAt < 5000, `returned ${Date.now() - abortedAt} ms after the abort`);
  const failed = events.find((e) => e.type === 'op-failed');
  assert.ok(failed?.type === 'op-failed' && failed.op === first.id, JSON.stringify(events));
  assert.equal(failed.failure.message, `service first: interrupted while waiting-health; rolled back: removed the new container ${names.container(p, 'first')}`);
  const skipped = events.find((e) => e.type === 'op-skipped');
  assert.ok(skipped?.type === 'op-skipped' && skipped.op === second.id && /aborted/.test(skipped.reason));
  assert.deepEqual(await projectContainers(p), [], 'the service had no container before, and has none now');
});

test('aborting a start-first replace after its switch rolls nothing back: the new container serves and is left for the next apply', async () => {
  const p = newProject();
  const oldId = await deployWeb(p);
  const hc = ['CMD', 'wget', '-q', '-O-', 'http://127.0.0.1:8080/'];
  const op = replaceOp(p, oldId, 'start-first', body(p, 'web', { image: TEST_IMAGES.appV2, healthcheck: hc, generation: 2 }));
  const ctl = new AbortController();
  const events: ApplyEvent[] = [];
  const r = await execute(
    docker,
    plan(p, [op]),
    (e) => {
      events.push(e);
      if (e.type === 'step' && e.step === 'draining') ctl.abort();
    },
    { signal: ctl.signal },
  );
  assert.equal(r.ok, false);
  const steps = events.filter((e) => e.type === 'step').map((e) => (e.type === 'step' ? e.step : ''));
  assert.deepEqual(steps, ['creating', 'starting', 'waiting-health', 'switching', 'unaliasing-old', 'draining'], 'the drain was cut short and nothing after it ran');
  const failed = events.find((e) => e.type === 'op-failed');
  assert.ok(failed?.type === 'op-failed', JSON.stringify(events));
  assert.equal(
    failed.failure.message,
    `service web: interrupted before stopping-old, after the switch: the new container ${names.tempContainer(p, 'web', 2)} serves, so nothing was rolled back; ` +
      `left for the next apply, which finishes the replacement (renames it to ${names.container(p, 'web')})`,
  );
  // Both still run; the new one holds the service alias.
  const list = await projectContainers(p);
  assert.deepEqual(list.map((c) => [c.Names[0], c.State]).sort(), [[`/${names.container(p, 'web')}`, 'running'], [`/${names.tempContainer(p, 'web', 2)}`, 'running']]);
  const fresh = await docker.getContainer(names.tempContainer(p, 'web', 2)).inspect();
  assert.ok(fresh.NetworkSettings.Networks[names.defaultNetwork(p)]?.Aliases?.includes('web'), JSON.stringify(fresh.NetworkSettings.Networks));
});

test('create-network reuses our own existing network; remove-service and remove-network clean up', async () => {
  const p = newProject();
  const oldId = await deployWeb(p);
  const net = networkOp(p, names.defaultNetwork(p), 'default');
  const again = await run(plan(p, [net]));
  assert.equal(again.ok, true);
  const r = await run(
    plan(p, [
      {
        id: 'remove:web',
        kind: 'remove-service',
        service: 'web',
        containerId: oldId,
        containerName: names.container(p, 'web'),
        stopTimeout: 1,
        after: [],
        causes: [{ kind: 'removed', detail: 'gone from source' }],
      },
      { id: 'remove-network', kind: 'remove-network', network: names.defaultNetwork(p), after: ['remove:web'], causes: [] },
    ]),
  );
  assert.equal(r.ok, true, JSON.stringify(r.events));
  assert.equal((await projectContainers(p)).length, 0);
  assert.equal((await docker.listNetworks({ filters: { label: [`${LABEL.project}=${p}`] } })).length, 0);
});

test('destroyProject removes only the project and leaves a differently labelled container alone', async () => {
  const p = newProject();
  await deployWeb(p);
  const other = await docker.createContainer({
    Image: TEST_IMAGES.busybox,
    Cmd: ['sleep', '60'],
    name: `${p}-unrelated`,
    Labels: { [LABEL.project]: `${p}other`, [LABEL.service]: 'web' },
  });
  strays.push(other.id);
  const res = await destroyProject(docker, p, { volumes: true });
  assert.deepEqual(res.containers, [names.container(p, 'web')]);
  assert.deepEqual(res.networks, [names.defaultNetwork(p)]);
  assert.deepEqual(res.errors, []);
  assert.equal((await projectContainers(p)).length, 0);
  const still = await docker.getContainer(other.id).inspect();
  assert.equal(still.Config.Labels[LABEL.project], `${p}other`);
});

test('connectDocker names the host and the fix when nothing answers', async () => {
  await assert.rejects(connectDocker('unix:///nonexistent/waffle.sock'), (err: Error) => {
    assert.match(err.message, /unix:\/\/\/nonexistent\/waffle\.sock/);
    assert.match(err.message, /start Docker/);
    assert.match(err.message, /DOCKER_HOST/);
    assert.match(err.message, /waffle\.config\.ts/);
    return true;
  });
});
