/**
 * A push is not root on the host: commits whose service files try to read the agent's environment or
 * its files, or to reach the Docker socket, and one that breaks the host policy, are each refused and
 * reported (file, service, rule), nothing is deployed, none of the agent's secrets shows up anywhere,
 * and the agent keeps serving and deploys the next good commit.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, snapshot, uniqueProject } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { config, deliver, makeRemote, pushPayload, SECRET, startAgent, tempRoot, TOKEN, live, waitFor, webService, type Remote, type RunningAgent } from './agent-support.ts';

let docker: Dockerode;
const project = uniqueProject('ags');
let root: string;
let remote: Remote;
let agent: RunningAgent;
const canaryVault = `hvs.${randomBytes(12).toString('hex')}`;
const canaryKey = `AGE-SECRET-KEY-1${randomBytes(16).toString('hex').toUpperCase()}`;
let identityFile: string;
let dataRoot: string;

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  root = tempRoot('waffle-agent-sandbox-');
  dataRoot = path.join(root, 'data');
  fs.mkdirSync(dataRoot);
  identityFile = path.join(root, 'age.key');
  fs.writeFileSync(identityFile, `${canaryKey}\n`, { mode: 0o600 });
  const policyFile = path.join(root, 'policy.json');
  fs.writeFileSync(policyFile, JSON.stringify({ bindRoots: [dataRoot], dockerSocket: false, hostPorts: [[20000, 30000]] }));
  remote = makeRemote(root, { 'waffle.config.ts': config(project), 'services/web.ts': webService(1) });
  agent = await startAgent({
    root,
    // A file:// URL this time (the other tests give a path): cloned like any remote.
    repo: `file://${remote.bare}`,
    stateDir: path.join(root, 'state'),
    args: ['--host-policy', policyFile],
    env: { VAULT_TOKEN: canaryVault, WAFFLE_AGE_IDENTITY_FILE: identityFile },
  });
  await waitFor('the start-up deploy', async () => (await agent.api('GET', '/deployments')).json.deployments.find((d: { state: string }) => d.state === 'applied'));
});

after(async () => {
  await agent?.stop().catch(() => undefined);
  if (docker) await cleanupProject(docker, project);
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

type Row = { id: string; state: string; commit?: string; error?: string };

/** Pushes `files`, delivers the push, waits for its deploy; checks nothing changed and the agent serves. */
async function refusedCommit(files: Record<string, string>, message: string): Promise<Row> {
  const running = live((await snapshot(docker, project)).containers).map((c) => c.id);
  const commit = remote.commit(files, message);
  const r = await deliver(agent.url, { body: pushPayload(commit) });
  assert.equal(r.status, 202);
  const row = await waitFor(`deployment of ${message}`, async () => {
    const d = (await agent.api<Row>('GET', `/deployments/${r.json.deployment}`)).json;
    return d.state !== 'queued' && d.state !== 'running' ? d : undefined;
  });
  assert.equal(row.state, 'failed', `${message}: ${row.error}`);
  assert.equal(row.commit, commit);
  assert.deepEqual(live((await snapshot(docker, project)).containers).map((c) => c.id), running, `${message}: nothing deployed`);
  assert.equal((await fetch(agent.url + '/healthz')).status, 200, 'the agent still serves');
  return row;
}

const svc = (body: string, def: string) => `import { defineService } from 'wafflemaker';\n${body}\nexport default defineService(${def});\n`;

test("a service file reading the agent's environment and files sees nothing and is refused", async () => {
  const row = await refusedCommit(
    {
      'services/web.ts': svc(
        `import { readFileSync } from 'node:fs';
const seen = JSON.stringify(process.env);
const parent = readFileSync('/proc/' + process.ppid + '/environ', 'utf8');
const secret = readFileSync(${JSON.stringify(path.join(root, 'webhook-secret'))}, 'utf8');`,
        `{ image: '${TEST_IMAGES.appV1}', labels: { seen, parent, secret } }`,
      ),
    },
    'read the environment',
  );
  assert.match(row.error!, /services\/web\.ts/);
  assert.match(row.error!, /\(web\)/);
  assert.match(row.error!, /tried to read a file|refused access/);
});

test('a service file reaching for the Docker socket is refused', async () => {
  const sock = process.env.DOCKER_HOST!.replace(/^unix:\/\//, '');
  const row = await refusedCommit(
    {
      'services/web.ts': svc(
        `import net from 'node:net';
const list = await new Promise<string>((resolve, reject) => {
  const s = net.connect(${JSON.stringify(sock)});
  let d = '';
  s.on('connect', () => s.write('GET /containers/json HTTP/1.0\\r\\n\\r\\n'));
  s.on('data', (x) => (d += x));
  s.on('end', () => resolve(d));
  s.on('error', reject);
});`,
        `{ image: '${TEST_IMAGES.appV1}', labels: { list: list.slice(0, 100) } }`,
      ),
    },
    'docker socket',
  );
  assert.match(row.error!, /services\/web\.ts/);
  assert.match(row.error!, /refused access \(EACCES\)|network/);
});

test('a commit that breaks the host policy is refused with file, service and rule', async () => {
  const bind = await refusedCommit(
    { 'services/web.ts': webService(2, `\n  volumes: [{ bind: '/etc', target: '/host-etc', readOnly: true }],`) },
    'bind /etc',
  );
  assert.match(bind.error!, /host policy/);
  assert.match(bind.error!, /services\/web\.ts/);
  assert.match(bind.error!, /\(web\)/);
  assert.match(bind.error!, /\/etc/);
  // The socket of the engine the agent drives, although it lies under no well-known path.
  const sock = process.env.DOCKER_HOST!.replace(/^unix:\/\//, '');
  const socket = await refusedCommit({ 'services/web.ts': webService(2, `\n  volumes: [{ bind: ${JSON.stringify(sock)}, target: '/var/run/docker.sock' }],`) }, 'bind the docker socket');
  assert.match(socket.error!, /host policy/);
  assert.match(socket.error!, /socket/i);
  const port = await refusedCommit({ 'services/web.ts': webService(2, `\n  ports: ['8088:8080'],`) }, 'host port 8088');
  assert.match(port.error!, /host policy/);
  assert.match(port.error!, /8088/);
});

test('the next good commit deploys (a bind mount under an allowed root); no secret shows anywhere', async () => {
  const commit = remote.commit({ 'services/web.ts': webService(2, `\n  volumes: [{ bind: ${JSON.stringify(dataRoot)}, target: '/data', readOnly: true }],\n  ports: ['127.0.0.1:${20000 + Math.floor(Math.random() * 9000)}:8080'],`) }, 'good');
  const r = await deliver(agent.url, { body: pushPayload(commit) });
  const row = await waitFor('the good deploy', async () => {
    const d = (await agent.api<Row>('GET', `/deployments/${r.json.deployment}`)).json;
    return d.state !== 'queued' && d.state !== 'running' ? d : undefined;
  });
  assert.equal(row.state, 'applied', row.error);
  const containers = live((await snapshot(docker, project)).containers);
  assert.equal(containers.length, 1);
  assert.equal(containers[0]!.image, TEST_IMAGES.appV2);

  // Nothing the agent holds reaches its answers or its log.
  const everything = [
    JSON.stringify((await agent.api('GET', '/deployments?limit=100')).json),
    ...(await Promise.all(((await agent.api('GET', '/deployments?limit=100')).json.deployments as Row[]).map(async (d) => JSON.stringify((await agent.api('GET', `/deployments/${d.id}`)).json)))),
    JSON.stringify((await agent.api('GET', '/deliveries')).json),
    JSON.stringify((await agent.api('GET', '/status')).json),
    agent.log(),
  ].join('\n');
  for (const v of [SECRET, TOKEN, canaryVault, canaryKey]) assert.ok(!everything.includes(v), 'a secret value leaked');
});
