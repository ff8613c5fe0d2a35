/**
 * kill -9 of `waffle agent` in the middle of an apply (a replace waiting for a slow healthcheck), then a
 * restart with the same state directory: the history shows the interrupted deploy as interrupted,
 * the start-up reconcile converges on the branch head, and the project ends with exactly one container
 * per service (no duplicate, no orphaned candidate).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, snapshot, uniqueProject } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { config, deliver, makeRemote, pushPayload, startAgent, tempRoot, live, waitFor, webService, type RunningAgent } from './agent-support.ts';

let docker: Dockerode;
const project = uniqueProject('agk');
let root: string;
const agents: RunningAgent[] = [];

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  root = tempRoot('waffle-agent-crash-');
});

after(async () => {
  for (const a of agents) await a.kill9().catch(() => undefined);
  if (docker) await cleanupProject(docker, project);
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** Version 2 answers only after a few seconds: the replace waits for its health long enough to be killed in. */
const slowV2 = `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${TEST_IMAGES.appV2}',
  command: ['sh', '-c', 'sleep 4; exec httpd -f -p 8080 -h /www'],
  port: 8080,
  healthcheck: { http: '/index.html', interval: '300ms', timeout: '2s', retries: 60 },
  stopGracePeriod: '1s',
});
`;

test('kill -9 mid-apply, restart: interrupted in history, converged, no duplicate or orphan', async () => {
  const remote = makeRemote(root, { 'waffle.config.ts': config(project), 'services/web.ts': webService(1) });
  const stateDir = path.join(root, 'state');
  const first = await startAgent({ root, repo: remote.bare, stateDir });
  agents.push(first);
  await waitFor('the start-up deploy', async () => (await first.api('GET', '/deployments')).json.deployments.find((d: { state: string }) => d.state === 'applied'));

  const commit = remote.commit({ 'services/web.ts': slowV2 }, 'slow v2');
  const r = await deliver(first.url, { body: pushPayload(commit) });
  assert.equal(r.status, 202);
  const id: string = r.json.deployment;
  // In the middle of the replace: the candidate exists next to the old container, waiting for health.
  await waitFor('the replace to wait for health', async () => {
    const events = (await first.api('GET', `/deployments/${id}`)).json.events as Array<{ type: string; step?: string }>;
    return events.some((e) => e.type === 'step' && e.step === 'waiting-health');
  });
  const during = await snapshot(docker, project);
  assert.equal(live(during.containers).length, 2, 'old container and candidate');
  await first.kill9();

  const second = await startAgent({ root, repo: remote.bare, stateDir });
  agents.push(second);
  const rows = await waitFor('the start-up reconcile to finish', async () => {
    const list = (await second.api('GET', '/deployments')).json.deployments as Array<{ id: string; state: string; trigger: string; commit?: string; error?: string }>;
    const startup = list.filter((d) => d.trigger === 'startup');
    return startup.length === 2 && startup[0]!.state !== 'queued' && startup[0]!.state !== 'running' ? list : undefined;
  }, 90_000);
  const interrupted = rows.find((d) => d.id === id)!;
  assert.equal(interrupted.state, 'interrupted');
  assert.equal(interrupted.commit, commit);
  const reconcile = rows.find((d) => d.trigger === 'startup')!;
  assert.equal(reconcile.state, 'applied', reconcile.error);
  assert.equal(reconcile.commit, commit);

  const after = await snapshot(docker, project);
  assert.deepEqual(live(after.containers).map((c) => c.name), [`${project}-web`], 'one container, under its own name');
  // Anything else is an old generation kept for rollback: stopped, under its kept name (no orphaned candidate).
  for (const k of after.containers.filter((x) => !live([x]).length)) assert.notEqual(k.state, 'running', k.name);
  const c = live(after.containers)[0]!;
  assert.equal(c.image, TEST_IMAGES.appV2);
  assert.equal(c.state, 'running');
  assert.equal(c.labels['dev.wafflemaker.commit'], commit.slice(0, 12));
  const health = (await docker.getContainer(c.id).inspect()).State.Health?.Status;
  assert.equal(health, 'healthy');
  // A second reconcile finds nothing to do: converged.
  const again = await second.api('POST', '/deployments', {});
  const done = await waitFor('the follow-up deploy', async () => {
    const d = (await second.api('GET', `/deployments/${again.json.deployment}`)).json;
    return d.state !== 'queued' && d.state !== 'running' ? d : undefined;
  });
  assert.equal(done.state, 'no-op');

  // SIGTERM during a deploy: the deploy finishes (the slow replace becomes healthy), then the agent exits.
  const back = remote.commit({ 'services/web.ts': slowV2.replace(TEST_IMAGES.appV2, TEST_IMAGES.appV1) }, 'slow v1');
  const r2 = await deliver(second.url, { body: pushPayload(back) });
  await waitFor('the second replace to wait for health', async () => {
    const events = (await second.api('GET', `/deployments/${r2.json.deployment}`)).json.events as Array<{ type: string; step?: string }>;
    return events.some((e) => e.type === 'step' && e.step === 'waiting-health');
  });
  assert.equal(await second.stop(), 0, second.log().slice(-3000));
  const { History } = await import('../runtime/history/history.ts');
  const history = History.open(path.join(stateDir, '_agent', 'history.sqlite'));
  try {
    assert.equal(history.get(r2.json.deployment)?.state, 'applied');
  } finally {
    history.close();
  }
  const final = await snapshot(docker, project);
  assert.deepEqual(live(final.containers).map((c) => [c.name, c.image, c.state]), [[`${project}-web`, TEST_IMAGES.appV1, 'running']]);
});
