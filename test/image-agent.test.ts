/**
 * Image updates end to end: the real `waffle agent`, the real engine, a real bare repository and the real
 * registry (Debian's docker-registry on 127.0.0.1) whose push notifications go to the agent's
 * `/hooks/registry` with the shared secret in the header the registry is configured to send. A pushed
 * tag the policy allows is deployed and answers; a tag it does not allow is not; semver picks the highest
 * of several pushes; a cooldown holds a fresh tag back; a bad secret is refused; the chosen tag survives
 * an unrelated commit and gives way when the file changes the image.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, freePort, httpGet, snapshot, uniqueProject } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { pushImage, removeLocalImage, startRegistry, type Registry } from './registry.ts';
import { config, makeRemote, startAgent, tempRoot, waitFor, type Remote, type RunningAgent } from './agent-support.ts';

const DOCKER_HOST = process.env.DOCKER_HOST!;
const REGISTRY_SECRET = `regsec-${Math.random().toString(36).slice(2)}`;
let docker: Dockerode;
const project = uniqueProject('imga');
let root: string;
let remote: Remote;
let agent: RunningAgent;
let registry: Registry;
let webPort: number;
const refs: string[] = [];

const image = (name: string, tag: string) => `${registry.host}/waffle/${project}-${name}:${tag}`;

/** Pushes a test image (v1 or v2 page) under `name:tag` and drops the local reference (the agent pulls it). */
function push(name: string, tag: string, version: 1 | 2): void {
  const ref = image(name, tag);
  pushImage(DOCKER_HOST, version === 1 ? TEST_IMAGES.appV1 : TEST_IMAGES.appV2, ref);
  removeLocalImage(DOCKER_HOST, ref);
  refs.push(ref);
}

function webFile(tag: string, update = "{ tags: { semver: '^1.2' } }"): string {
  return `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${image('web', tag)}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  ports: ['127.0.0.1:${webPort}:8080'],
  healthcheck: { http: '/index.html', interval: '300ms', timeout: '3s', retries: 10 },
  stopGracePeriod: '1s',
  update: ${update},
});
`;
}

const coolFile = () => `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${image('cool', 'sha-0')}',
  command: ['sleep', '3600'],
  stopGracePeriod: '1s',
  update: { tags: { glob: 'sha-*' }, cooldown: '6s' },
});
`;

type Row = { id: string; state: string; trigger: string; error?: string; delivery?: string; planSummary?: string; services: Array<{ service: string; action: string; outcome: string }> };
type DeliveryRow = { id: string; source: string; outcome: string; deployment?: string };

async function deployments(): Promise<Row[]> {
  return (await agent.api<{ deployments: Row[] }>('GET', '/deployments?limit=200')).json.deployments;
}
async function deliveries(): Promise<DeliveryRow[]> {
  return (await agent.api<{ deliveries: DeliveryRow[] }>('GET', '/deliveries?limit=500')).json.deliveries.filter((d) => d.source === 'registry');
}
async function running(service: string): Promise<{ image: string; id: string } | undefined> {
  const c = (await snapshot(docker, project)).containers.find((x) => x.labels['dev.wafflemaker.service'] === service && x.state === 'running');
  return c ? { image: c.labels['dev.wafflemaker.image'] ?? c.image, id: c.id } : undefined;
}
async function idle(): Promise<void> {
  await waitFor('the queue to be empty', async () => (await agent.api<{ queue: number }>('GET', '/healthz', undefined, null)).json.queue === 0);
}

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(DOCKER_HOST);
  root = tempRoot('waffle-imga-');
  webPort = await freePort();
  const agentPort = await freePort();
  registry = await startRegistry({ notify: { url: `http://127.0.0.1:${agentPort}/hooks/registry`, headers: { Authorization: `Bearer ${REGISTRY_SECRET}` } } });
  push('web', '1.2.0', 1);
  push('cool', 'sha-0', 1);
  remote = makeRemote(root, { 'waffle.config.ts': config(project), 'services/web.ts': webFile('1.2.0'), 'services/cool.ts': coolFile() });
  const secretFile = path.join(root, 'registry-secret');
  fs.writeFileSync(secretFile, REGISTRY_SECRET + '\n', { mode: 0o600 });
  agent = await startAgent({ root, repo: remote.bare, stateDir: path.join(root, 'state'), port: agentPort, args: ['--registry-secret-file', secretFile] });
  await waitFor('the start-up deploy', async () => (await deployments()).find((d) => d.trigger === 'startup' && d.state === 'applied'));
});

after(async () => {
  await agent?.stop().catch(() => undefined);
  if (docker) await cleanupProject(docker, project);
  for (const r of refs) removeLocalImage(DOCKER_HOST, r);
  await registry?.stop();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

test('a pushed tag the policy allows is deployed through the health-gated path and answers', async () => {
  assert.equal((await running('web'))?.image, image('web', '1.2.0'));
  assert.equal((await httpGet(`http://127.0.0.1:${webPort}/`)).body.trim(), 'waffle v1');
  push('web', '1.3.0', 2);
  await waitFor('1.3.0 to run', async () => (await running('web'))?.image === image('web', '1.3.0'));
  assert.equal((await httpGet(`http://127.0.0.1:${webPort}/`)).body.trim(), 'waffle v2');
  const d = await waitFor('the registry delivery', async () => (await deliveries()).find((x) => /^(deployed|coalesced): web 1\.2\.0 → 1\.3\.0 \(sha256:[0-9a-f]{64}\)$/.test(x.outcome)));
  const row = (await deployments()).find((x) => x.id === d.deployment)!;
  assert.match(row.trigger, /^registry/);
  await waitFor('the registry deploy to finish', async () => (await deployments()).find((x) => x.id === d.deployment && x.state === 'applied'));
});

test('a tag the policy does not allow deploys nothing', async () => {
  await idle();
  const before = (await running('web'))!;
  const count = (await deployments()).length;
  push('web', '2.0.0', 1);
  push('web', 'latest', 1);
  await waitFor('both deliveries', async () => {
    const o = (await deliveries()).map((x) => x.outcome);
    return o.some((x) => /ignored: .*web:2\.0\.0: web: .*not allowed by its policy/.test(x)) && o.some((x) => /ignored: .*web:latest: web: .*not allowed/.test(x));
  });
  assert.equal((await deployments()).length, count, 'no deploy was queued');
  assert.deepEqual(await running('web'), before);
});

test('semver picks the highest allowed version among several pushes', async () => {
  await idle();
  for (const tag of ['1.4.0', '1.10.0', '1.9.0']) push('web', tag, 2);
  await waitFor('1.10.0 to run', async () => (await running('web'))?.image === image('web', '1.10.0'));
  // Every push was delivered; whatever their order, 1.10.0 stays.
  await waitFor('all three deliveries', async () => (await deliveries()).filter((x) => /web:1\.(4|10|9)\.0|→ 1\.(4|10|9)\.0/.test(x.outcome)).length >= 3);
  await idle();
  assert.equal((await running('web'))?.image, image('web', '1.10.0'));
});

test('a cooldown holds a fresh tag back, then deploys it', async () => {
  await idle();
  push('cool', 'sha-1', 2);
  const d = await waitFor('the sha-1 delivery', async () => (await deliveries()).find((x) => /cool:sha-1: cool: sha-1 waits for its cooldown/.test(x.outcome)));
  assert.ok(d, 'the push was judged while cooling down');
  assert.equal((await running('cool'))?.image, image('cool', 'sha-0'), 'not deployed while cooling down');
  await waitFor('sha-1 to run after its cooldown', async () => (await running('cool'))?.image === image('cool', 'sha-1'), 90_000);
});

test('a bad shared secret is refused and recorded', async () => {
  const body = JSON.stringify({ events: [{ id: 'forged', action: 'push', timestamp: new Date().toISOString(), target: { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', repository: `waffle/${project}-web`, tag: '1.99.0' }, request: { host: registry.host } }] });
  for (const auth of ['Bearer nope', undefined]) {
    const res = await fetch(`${agent.url}/hooks/registry`, { method: 'POST', headers: { 'content-type': 'application/vnd.docker.distribution.events.v1+json', ...(auth ? { authorization: auth } : {}) }, body });
    assert.equal(res.status, 401);
  }
  assert.equal((await deliveries()).filter((d) => d.outcome === 'refused: bad secret').length, 2);
  const metrics = await (await fetch(`${agent.url}/metrics`)).text();
  assert.match(metrics, /waffle_webhook_deliveries_total\{source="registry",outcome="refused"\} 2/);
  assert.equal((await running('web'))?.image, image('web', '1.10.0'));
});

test('the chosen tag survives an unrelated commit; a changed image in the file wins', async () => {
  await idle();
  const before = (await running('web'))!;
  remote.commit({ 'README.md': 'unrelated\n', 'services/cool.ts': coolFile().replace("'3600'", "'3601'") }, 'unrelated change');
  const r = await agent.api<{ deployment: string }>('POST', '/deployments', {});
  const row = await waitFor('the deploy of the unrelated commit', async () => (await deployments()).find((x) => x.id === r.json.deployment && x.state !== 'queued' && x.state !== 'running'));
  assert.equal(row.state, 'applied', row.error);
  assert.ok(!row.services.some((s) => s.service === 'web'), `web untouched: ${JSON.stringify(row.services)}`);
  assert.deepEqual(await running('web'), before, 'the same container, still 1.10.0');

  // The file names another image: the file decides again (the override is dropped).
  remote.commit({ 'services/web.ts': webFile('1.9.0') }, 'pin web to 1.9.0');
  const again = await agent.api<{ deployment: string }>('POST', '/deployments', {});
  const row2 = await waitFor('the deploy of the new image', async () => (await deployments()).find((x) => x.id === again.json.deployment && x.state !== 'queued' && x.state !== 'running'));
  assert.equal(row2.state, 'applied', row2.error);
  assert.equal((await running('web'))?.image, image('web', '1.9.0'));
});
