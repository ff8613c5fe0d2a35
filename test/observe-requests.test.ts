/**
 * Observation is list-based: a no-op apply makes the same number of Docker API calls at 10 and at 60
 * services (counted by a recording proxy in front of the real engine), and inspects no container.
 * Hand-made drift (stopped, removed, renamed containers) and in-place changes are still seen.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type Dockerode from 'dockerode';
import { ensureEngine, ensureTestImages, TEST_IMAGES } from './engine.ts';
import { cleanupProject, dockerClient, makeRepo, uniqueProject, writeFiles } from './helpers.ts';
import { startSocketProxy, type SocketProxy } from './doubles/socket-proxy.ts';
import { Engine, type Planned } from '../runtime/engine.ts';
import { healthFromStatus, observe } from '../runtime/docker/observe.ts';
import { names } from '../runtime/labels.ts';
import type { RunEvent } from '../runtime/model.ts';

let docker: Dockerode;
let proxy: SocketProxy;
let host: string;
const projects: string[] = [];
const repos: string[] = [];
const stateRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-observe-state-'));

before(async () => {
  host = await ensureEngine();
  process.env.DOCKER_HOST = host;
  process.env.WAFFLE_STATE_DIR = stateRoot;
  await ensureTestImages(host);
  docker = await dockerClient();
  proxy = await startSocketProxy(host);
});

after(async () => {
  for (const p of projects) await cleanupProject(docker, p);
  await proxy?.close();
  for (const r of repos) fs.rmSync(r, { recursive: true, force: true });
  fs.rmSync(stateRoot, { recursive: true, force: true });
});

const config = (project: string) =>
  `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}', parallelism: 8 });\n`;

/** Service i of a mixed project: every 5th health-checked, every 3rd with limits, every 4th linked to the previous one. */
function serviceFile(i: number): string {
  const lines = [`import { defineService } from 'wafflemaker';`];
  const linked = i % 4 === 3;
  if (linked) lines.push(`import prev from './s${i - 1}';`);
  lines.push(
    'export default defineService({',
    `  image: '${TEST_IMAGES.appV1}',`,
    `  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],`,
    '  port: 8080,',
    `  env: { INDEX: '${i}' },`,
    `  restart: '${i % 2 ? 'unless-stopped' : 'always'}',`,
    `  stopGracePeriod: '1s',`,
  );
  if (i % 5 === 0) lines.push(`  healthcheck: { http: '/', interval: '500ms', retries: 20 },`);
  if (i % 3 === 0) lines.push(`  resources: { memory: '${32 + i}m', cpus: 0.25 },`);
  if (linked) lines.push('  connects: [prev],');
  lines.push('});', '');
  return lines.join('\n');
}

function servicesFiles(from: number, to: number): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = from; i < to; i++) files[`services/s${i}.ts`] = serviceFile(i);
  return files;
}

/** The engine every interface drives, talking to Docker through the recording proxy. */
const engine = () => new Engine({ env: { ...process.env }, dockerHost: proxy.host, stateDir: stateRoot });

async function plan(root: string): Promise<Planned> {
  return engine().plan({ dir: root });
}

async function apply(root: string): Promise<{ prepared: Planned; events: RunEvent[] }> {
  const events: RunEvent[] = [];
  const r = await engine().apply({ dir: root }, { onEvent: (e) => events.push(e), checkStale: false });
  const failed = events.filter((e) => e.type === 'op-failed');
  assert.equal(r.ok, true, JSON.stringify(failed));
  return { prepared: r.planned, events };
}

/** The requests of one no-op `apply --yes`: plan, then apply of an empty plan. */
async function noopRequests(root: string): Promise<string[]> {
  proxy.reset();
  const { prepared } = await apply(root);
  assert.deepEqual(prepared.plan.operations, [], 'nothing to do');
  return proxy.requests.map((r) => `${r.method} ${r.url.replace(/^\/v[\d.]+/, '').replace(/\?.*$/, '')}`);
}

const inspects = (lines: string[]) => lines.filter((l) => /^GET \/containers\/[^/]+\/json$/.test(l));

test('a no-op apply makes the same Docker API calls at 10 and at 60 services, and inspects nothing', { timeout: 600_000 }, async () => {
  const project = uniqueProject('obs');
  projects.push(project);
  const root = makeRepo({ 'waffle.config.ts': config(project), ...servicesFiles(0, 10) });
  repos.push(root);

  await apply(root);
  const at10 = await noopRequests(root);

  writeFiles(root, servicesFiles(10, 60));
  const grown = await apply(root);
  assert.equal(grown.prepared.plan.operations.filter((o) => o.kind === 'create-service').length, 50);
  assert.equal(Object.keys(grown.prepared.graph.services).length, 60);
  const at60 = await noopRequests(root);

  assert.deepEqual(inspects(at10), [], 'no container is inspected at 10 services');
  assert.deepEqual(inspects(at60), [], 'no container is inspected at 60 services');
  assert.equal(at60.length, at10.length, `10 services:\n${at10.join('\n')}\n60 services:\n${at60.join('\n')}`);
  assert.deepEqual([...at60].sort(), [...at10].sort());
  assert.ok(at10.includes('GET /containers/json'), at10.join('\n'));
});

test('drift and in-place changes are seen from the list; an in-place update costs one inspect, once', { timeout: 300_000 }, async () => {
  const project = uniqueProject('drift');
  projects.push(project);
  const svc = (over: string) => `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${TEST_IMAGES.appV1}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  stopGracePeriod: '1s',
${over}});
`;
  const root = makeRepo({
    'waffle.config.ts': config(project),
    'services/a.ts': svc(`  restart: 'unless-stopped',\n`),
    'services/b.ts': svc(`  healthcheck: { http: '/', interval: '500ms', retries: 20 },\n`),
    'services/c.ts': svc(''),
  });
  repos.push(root);
  await apply(root);

  // Health and state from the list entry.
  const o = await observe(docker, project);
  const by = new Map(o.containers.map((c) => [c.service, c]));
  assert.equal(by.get('b')!.health, 'healthy');
  assert.equal(by.get('a')!.health, 'none');
  assert.equal(by.get('a')!.state, 'running');
  assert.deepEqual(by.get('a')!.restart, { name: 'unless-stopped', maximumRetryCount: 0 });
  assert.equal(by.get('a')!.image, TEST_IMAGES.appV1);
  assert.match(by.get('a')!.imageId, /^sha256:[0-9a-f]{64}$/);

  // In place: the label disagrees with the desired policy, so a is inspected (only a), and updated.
  writeFiles(root, { 'services/a.ts': svc(`  restart: 'always',\n  resources: { memory: '64m' },\n`) });
  proxy.reset();
  let p = await plan(root);
  assert.deepEqual(p.plan.operations.map((x) => x.id), ['update:a']);
  assert.deepEqual(p.plan.operations[0]!.causes.map((c) => c.kind), ['restart', 'resources']);
  const aId = p.observed.containers.find((c) => c.service === 'a')!.id;
  assert.deepEqual(inspects(proxy.requests.map((r) => `${r.method} ${r.url.replace(/^\/v[\d.]+/, '').replace(/\?.*$/, '')}`)), [`GET /containers/${aId}/json`]);
  await apply(root);
  const real = await docker.getContainer(aId).inspect();
  assert.equal(real.HostConfig.RestartPolicy?.Name, 'always');
  assert.equal(real.HostConfig.Memory, 64 * 1024 * 1024);

  // After the update the label still says unless-stopped: the first plan inspects a once and remembers
  // what it found; later no-ops inspect nothing.
  const first = await noopRequests(root);
  assert.deepEqual(inspects(first), [`GET /containers/${aId}/json`]);
  const second = await noopRequests(root);
  assert.deepEqual(inspects(second), []);
  assert.equal(second.length, first.length - 1);

  // Going back is seen too (the record says always; desired says unless-stopped): an update.
  writeFiles(root, { 'services/a.ts': svc(`  restart: 'unless-stopped',\n  resources: { memory: '64m' },\n`) });
  p = await plan(root);
  assert.deepEqual(p.plan.operations.map((x) => `${x.id} ${x.causes.map((c) => c.detail).join('; ')}`), ['update:a always → unless-stopped']);
  await apply(root);

  // Hand-made drift, seen from the list alone: b stopped, a removed, then c renamed.
  const cli = (...args: string[]) => {
    const r = spawnSync('docker', args, { env: { ...process.env, DOCKER_HOST: host }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  };
  const requestLines = () => proxy.requests.map((r) => `${r.method} ${r.url.replace(/^\/v[\d.]+/, '').replace(/\?.*$/, '')}`);
  cli('stop', '-t', '1', names.container(project, 'b'));
  cli('rm', '-f', names.container(project, 'a'));
  proxy.reset();
  p = await plan(root);
  const ops = p.plan.operations.map((x) => `${x.kind} ${'service' in x ? x.service : ''}`).sort();
  assert.deepEqual(ops, ['create-service a', 'start-service b']);
  assert.deepEqual(inspects(requestLines()), []);
  await apply(root);
  assert.deepEqual((await plan(root)).plan.operations, []);

  cli('rename', names.container(project, 'c'), `${project}-c-by-hand`);
  proxy.reset();
  p = await plan(root);
  assert.deepEqual(p.plan.operations.map((x) => ('service' in x ? x.service : x.id)), ['c']);
  const c = p.plan.operations[0]!;
  assert.ok(c.causes.some((x) => x.detail.includes(`${project}-c-by-hand`)), JSON.stringify(c.causes));
  assert.deepEqual(inspects(requestLines()), []);
});

test('health from the list entry\'s Status text', () => {
  assert.equal(healthFromStatus('Up 3 seconds (healthy)'), 'healthy');
  assert.equal(healthFromStatus('Up 2 minutes (unhealthy)'), 'unhealthy');
  assert.equal(healthFromStatus('Up 1 second (health: starting)'), 'starting');
  assert.equal(healthFromStatus('Up 5 hours'), 'none');
  assert.equal(healthFromStatus('Exited (137) 4 seconds ago'), 'none');
  assert.equal(healthFromStatus('Restarting (1) 2 seconds ago'), 'none');
  assert.equal(healthFromStatus(undefined), 'none');
});
