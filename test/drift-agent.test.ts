/**
 * Drift and crash repair end to end: the real `waffle agent` follows the engine's events for its project.
 * A container removed by hand and one killed are back (polled with a generous deadline, not timed); one
 * created by hand with the project's label is removed; a crash-looping service is restarted within its
 * budget, then left stopped and reported once, with the budget's counts surviving an agent restart; a
 * container without the project's label is never touched, even when it exits.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, snapshot, uniqueProject } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { config, makeRemote, sleep, startAgent, tempRoot, waitFor, webService, type Remote, type RunningAgent } from './agent-support.ts';
import { ChatRecorder } from './doubles/chat-recorder.ts';

let docker: Dockerode;
const project = uniqueProject('drift');
const strayName = `${project}-stray`;
let root: string;
let remote: Remote;
let agent: RunningAgent;
let chat: ChatRecorder;
let chatFile: string;
let stateDir: string;

/** Exits two seconds after it starts, every time. */
const crashFile = `import { defineService } from 'wafflemaker';
export default defineService({ image: '${TEST_IMAGES.busybox}', command: ['sh', '-c', 'sleep 2; exit 3'], restart: 'no', stopGracePeriod: '1s' });
`;

type Row = { id: string; state: string; trigger: string; error?: string; planSummary?: string; services: Array<{ service: string; action: string; outcome: string; message?: string }> };
type DeliveryRow = { id: string; source: string; event: string; outcome: string; deployment?: string };

async function deployments(): Promise<Row[]> {
  return (await agent.api<{ deployments: Row[] }>('GET', '/deployments?limit=500')).json.deployments;
}
async function repairs(): Promise<DeliveryRow[]> {
  return (await agent.api<{ deliveries: DeliveryRow[] }>('GET', '/deliveries?limit=2500')).json.deliveries.filter((d) => d.source === 'docker');
}
async function web(): Promise<{ id: string; state: string } | undefined> {
  return (await snapshot(docker, project)).containers.find((c) => c.labels['dev.wafflemaker.service'] === 'web');
}
const crashMessages = () => chat.posts.filter((p) => JSON.stringify(p.body).includes('crash keeps failing'));

async function launch(): Promise<RunningAgent> {
  return startAgent({ root, repo: remote.bare, stateDir, args: ['--restart-budget', '3/5m', '--chat-webhook-url-file', chatFile, '--chat-format', 'slack'] });
}

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  root = tempRoot('waffle-drift-');
  stateDir = path.join(root, 'state');
  chat = await new ChatRecorder('slack').start();
  chatFile = path.join(root, 'chat-url');
  fs.writeFileSync(chatFile, chat.url + '\n', { mode: 0o600 });
  // A container of nobody's project, named like ours, that exits: the agent must leave it alone.
  const stray = await docker.createContainer({ name: strayName, Image: TEST_IMAGES.busybox, Cmd: ['sh', '-c', 'sleep 1; exit 1'], HostConfig: { RestartPolicy: { Name: 'no', MaximumRetryCount: 0 } } });
  remote = makeRemote(root, { 'waffle.config.ts': config(project), 'services/web.ts': webService(1) });
  agent = await launch();
  await waitFor('the start-up deploy', async () => (await deployments()).find((d) => d.trigger === 'startup' && d.state === 'applied'));
  await stray.start();
});

after(async () => {
  await agent?.stop().catch(() => undefined);
  await chat?.close().catch(() => undefined);
  if (docker) {
    await cleanupProject(docker, project);
    await docker.getContainer(strayName).remove({ force: true }).catch(() => undefined);
  }
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

test('a container removed by hand is put back and the repair is recorded', async () => {
  const before = (await web())!;
  assert.equal(before.state, 'running');
  await docker.getContainer(before.id).remove({ force: true });
  const back = await waitFor('web to run again', async () => {
    const c = await web();
    return c && c.id !== before.id && c.state === 'running' ? c : undefined;
  });
  assert.ok(back);
  const r = await waitFor('the repair record', async () => (await repairs()).find((d) => d.outcome === 'repaired: container removed by hand'));
  const row = (await deployments()).find((d) => d.id === r.deployment);
  assert.equal(row?.trigger, 'repair');
  assert.match(await (await fetch(`${agent.url}/metrics`)).text(), /waffle_repairs_total\{kind="removed"\} 1/);
});

test('a killed container is running again', async () => {
  await waitFor('the queue to be empty', async () => (await agent.api<{ queue: number }>('GET', '/healthz', undefined, null)).json.queue === 0);
  const c = (await web())!;
  await docker.getContainer(c.id).kill();
  await waitFor('web to run again after the kill', async () => {
    const now = await web();
    if (!now || now.state !== 'running') return undefined;
    const info = await docker.getContainer(now.id).inspect();
    return info.State.Running && Date.parse(info.State.StartedAt) > Date.now() - 120_000 && now;
  });
  await waitFor('the exit recorded', async () => (await repairs()).find((d) => /^repaired: container exited \(code 137\)/.test(d.outcome)));
});

test('a container created by hand with the project label but not desired is removed', async () => {
  const ghost = await docker.createContainer({
    name: `${project}-ghost`,
    Image: TEST_IMAGES.busybox,
    Cmd: ['sleep', '600'],
    Labels: { 'dev.wafflemaker.project': project, 'dev.wafflemaker.service': 'ghost' },
  });
  await waitFor('the ghost to be removed', async () => !(await snapshot(docker, project)).containers.some((c) => c.id === ghost.id));
  await waitFor('the repair record', async () => (await repairs()).find((d) => d.outcome === 'repaired: container created by hand'));
});

test('a restart policy changed by hand is set back in place', async () => {
  await waitFor('the queue to be empty', async () => (await agent.api<{ queue: number }>('GET', '/healthz', undefined, null)).json.queue === 0);
  const c = (await web())!;
  await docker.getContainer(c.id).update({ RestartPolicy: { Name: 'no', MaximumRetryCount: 0 } });
  await waitFor('the restart policy set back', async () => (await docker.getContainer(c.id).inspect()).HostConfig.RestartPolicy?.Name === 'unless-stopped');
  await waitFor('the repair record', async () => (await repairs()).find((d) => d.outcome === 'repaired: restart policy changed by hand, set back'));
  assert.equal((await web())?.id, c.id, 'the same container');
});

test('a container that turns unhealthy is restarted', async () => {
  // Healthy at first (the deploy waits for it), unhealthy a few seconds later; a restart makes it healthy again.
  remote.commit(
    {
      'services/flaky.ts': `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${TEST_IMAGES.busybox}',
  command: ['sh', '-c', 'touch /tmp/ok; sleep 4; rm /tmp/ok; sleep 3600'],
  healthcheck: { command: 'test -f /tmp/ok', interval: '500ms', retries: 2 },
  stopGracePeriod: '1s',
});
`,
    },
    'add a service that turns unhealthy',
  );
  await agent.api('POST', '/deployments', {});
  await waitFor('the unhealthy container restarted', async () => (await repairs()).find((d) => d.event.includes('-flaky') && /^repaired: container unhealthy, restarted \(\d of 3 in 300s\)/.test(d.outcome)), 90_000);
  remote.commit({ 'services/flaky.ts': null }, 'remove flaky');
  await agent.api('POST', '/deployments', {});
  await waitFor('flaky removed', async () => !(await snapshot(docker, project)).containers.some((c) => c.labels['dev.wafflemaker.service'] === 'flaky'));
});

test('a crash-looping service is restarted within its budget, also across an agent restart, then left stopped and reported once', async () => {
  remote.commit({ 'services/crash.ts': crashFile }, 'add a crashing service');
  await agent.api('POST', '/deployments', {});
  const restarted = async () => (await repairs()).filter((d) => d.event.startsWith('die ') && d.event.includes('-crash') && /^repaired: container exited \(code 3\), restarted/.test(d.outcome));
  await waitFor('a first restart of crash', async () => (await restarted()).length >= 1, 90_000);

  // The agent stops and starts again: the budget's counts are in the history, not in the process.
  await agent.stop();
  agent = await launch();
  const gaveUp = await waitFor('the agent to give up on crash', async () => (await repairs()).find((d) => d.event.includes('-crash') && /^failed: restart budget spent \(3 in 300s\)/.test(d.outcome)), 120_000);
  assert.equal((await restarted()).length, 3, 'three restarts in all, across both agent processes');
  const row = (await deployments()).find((d) => d.id === gaveUp.deployment)!;
  assert.equal(row.state, 'failed');
  assert.match(row.error ?? '', /crash: failed: restart budget spent/);
  await waitFor('the report', async () => crashMessages().length >= 1);

  // Left stopped: it stays exited (the agent does not start it again, and nothing else does).
  const crash = (await snapshot(docker, project)).containers.find((c) => c.labels['dev.wafflemaker.service'] === 'crash')!;
  await sleep(6000);
  const info = await docker.getContainer(crash.id).inspect();
  assert.equal(info.State.Running, false);
  assert.equal((await restarted()).length, 3);

  // Another agent restart: its start-up deploy starts the container again; when it exits, it is left
  // stopped without a second report.
  await agent.stop();
  agent = await launch();
  await waitFor('the exit after the restart to be judged', async () => (await repairs()).find((d) => d.event.includes('-crash') && /left stopped/.test(d.outcome)), 120_000);
  await sleep(2000);
  assert.equal(crashMessages().length, 1, `reported once: ${JSON.stringify(chat.posts.map((p) => p.body))}`);
  assert.equal((await restarted()).length, 3);
});

test('a container without the project label is never touched, even when it exits', async () => {
  const info = await docker.getContainer(strayName).inspect();
  assert.equal(info.State.Running, false, 'it exited by itself');
  assert.equal(info.State.ExitCode, 1);
  assert.equal(info.RestartCount, 0);
  assert.equal(Date.parse(info.State.StartedAt) < Date.parse(info.State.FinishedAt), true);
  // Started once (by this test), never again: still its first run, and no repair names it.
  assert.ok(!(await repairs()).some((d) => d.event.includes('stray')));
});
