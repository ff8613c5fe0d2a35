/**
 * `waffle agent` against a Swarm manager: the same agent process, started with the same flags as for
 * the single engine (nothing says Swarm but the repository's `target: 'swarm'`), on the one-node swarm
 * of the real engine (see swarm-support.ts), with a real bare repository as the remote, signed
 * webhooks, and GitHub's API and a Slack webhook as doubles.
 *
 * - The start-up reconcile creates the first Swarm service; a signed push adds a service with 2
 *   replicas: both tasks run, the history, the commit status, the chat message and `/status` say so.
 * - A push changing image and environment rolls the service start-first; the service carries the new
 *   commit label and the agent reports success.
 * - A push whose health check fails: Swarm rolls it back; the agent reports the deploy FAILED (history,
 *   commit status, chat message, with the task error) and the previous version keeps running; the next
 *   good push deploys.
 * - Swarm repairs its own tasks: a killed task is replaced by Swarm, and the agent neither starts a
 *   container nor records a repair; a container of the project that is not a Swarm task (left from the
 *   engine target) is not restarted either. After the agent is stopped and the service is scaled by
 *   hand, the next start's reconcile sets the replicas back.
 * - A pull-request preview plans against Swarm's state and posts the status and the comment; nothing
 *   changes on the swarm.
 * - Image updates: a tag the policy allows, pushed to the real registry (Debian's docker-registry, its
 *   notifications sent to the agent), rolls the Swarm service to it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, snapshot, uniqueProject } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { deliver, git, GITHUB_REPO, GITHUB_TOKEN, makeRemote, pushPayload, secretFiles, startAgent, tempRoot, TOKEN, waitFor, type Remote, type RunningAgent } from './agent-support.ts';
import { GitHubDouble } from './doubles/github-double.ts';
import { ChatRecorder } from './doubles/chat-recorder.ts';
import { joinTestSwarm, removeSwarmProject, type TestSwarm } from './swarm-support.ts';
import { pushImage, removeLocalImage, startRegistry, type Registry } from './registry.ts';

const project = uniqueProject('ags');
let docker: Dockerode;
let swarm: TestSwarm | undefined;
let root: string;
let stateDir: string;
let remote: Remote;
let agent: RunningAgent;
let github: GitHubDouble;
let chat: ChatRecorder;
let agentArgs: string[];
const agents: RunningAgent[] = [];
/** The image-update test: a project, a registry and an agent of its own. */
const imageProject = uniqueProject('agsi');
let registry: Registry | undefined;
const pushedRefs: string[] = [];
const roots: string[] = [];

const swarmConfig = `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}', target: 'swarm' });\n`;

/** busybox httpd on 8080 with an HTTP health check; `extra` adds fields (replicas, env, a failing check). */
const web = (version: 1 | 2, extra = '') => `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${version === 1 ? TEST_IMAGES.appV1 : TEST_IMAGES.appV2}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  healthcheck: { http: '/index.html', interval: '500ms', timeout: '3s', retries: 3 },
  stopGracePeriod: '1s',
  rollout: { monitor: '3s' },
  replicas: 2,${extra}
});
`;

const worker = (level: string) =>
  `import { defineService } from 'wafflemaker';\nexport default defineService({ image: '${TEST_IMAGES.busybox}', command: ['sleep', '3600'], env: { LOG_LEVEL: '${level}' }, stopGracePeriod: '1s' });\n`;

const FAILING_CHECK = `\n  env: { MODE: 'broken' },\n  healthcheck: { command: 'exit 1', interval: '500ms', timeout: '2s', retries: 2 },`;

before(async () => {
  const host = process.env.DOCKER_HOST;
  assert.ok(host, 'DOCKER_HOST names the test engine');
  docker = await dockerClient();
  await ensureTestImages(host);
  swarm = await joinTestSwarm(docker, host);
  root = tempRoot('waffle-agent-swarm-');
  stateDir = path.join(root, 'state');
  github = await new GitHubDouble().start();
  github.addRepo(GITHUB_REPO);
  github.addToken(GITHUB_TOKEN, { repos: [GITHUB_REPO], login: 'waffle-bot' });
  chat = await new ChatRecorder('slack').start();
  const { githubTokenFile } = secretFiles(root);
  const chatFile = path.join(root, 'chat-url');
  fs.writeFileSync(chatFile, chat.url + '\n', { mode: 0o600 });
  remote = makeRemote(root, { 'waffle.config.ts': swarmConfig, 'services/worker.ts': worker('info') });
  // The flags of an agent on the single engine: the target comes from the repository alone.
  agentArgs = ['--github-token-file', githubTokenFile, '--github-api-url', github.url, '--public-url', 'https://deploy.example.test', '--chat-webhook-url-file', chatFile, '--chat-format', 'slack'];
  agent = await startAgent({ root, repo: remote.bare, stateDir, args: agentArgs });
  agents.push(agent);
});

after(async () => {
  for (const a of agents) await a.stop().catch(() => undefined);
  await github?.close();
  await chat?.close();
  if (docker) {
    for (const p of [project, imageProject]) {
      await removeSwarmProject(docker, p);
      await cleanupProject(docker, p);
    }
  }
  for (const ref of pushedRefs) removeLocalImage(process.env.DOCKER_HOST!, ref);
  await registry?.stop();
  for (const r of [root, ...roots]) if (r) fs.rmSync(r, { recursive: true, force: true });
  await swarm?.leave();
});

type Row = { id: string; state: string; commit?: string; trigger: string; error?: string; services: Array<{ service: string; action: string; outcome: string; message?: string }>; planSummary?: string };
type ServiceRow = { service: string; state: string; health: string; image?: string; commit?: string; replicas?: { desired: number; running: number }; update?: string };

async function deployments(): Promise<Row[]> {
  const r = await agent.api<{ deployments: Row[] }>('GET', '/deployments?limit=200');
  assert.equal(r.status, 200);
  return r.json.deployments;
}

async function finished(id: string): Promise<Row> {
  return waitFor(`deployment ${id} to finish`, async () => {
    const r = await agent.api<Row>('GET', `/deployments/${id}`);
    return r.json.state !== 'queued' && r.json.state !== 'running' ? r.json : undefined;
  }, 300_000);
}

async function push(files: Record<string, string>, message: string): Promise<{ commit: string; row: Row }> {
  const commit = remote.commit(files, message);
  const r = await deliver(agent.url, { body: pushPayload(commit) });
  assert.equal(r.status, 202, JSON.stringify(r.json));
  assert.equal(r.json.status, 'deployed');
  return { commit, row: await finished(r.json.deployment) };
}

interface ServiceInfo {
  Version: { Index: number };
  Spec: {
    Labels: Record<string, string>;
    Mode: { Replicated: { Replicas: number } };
    UpdateConfig: { Order: string; FailureAction: string };
    TaskTemplate: { ContainerSpec: { Image: string; Env?: string[] } };
  };
  UpdateStatus?: { State?: string };
}
const inspectService = async (service: string) => (await docker.getService(`${project}_${service}`).inspect()) as ServiceInfo;

interface TaskInfo {
  ID: string;
  DesiredState?: string;
  Spec?: { ContainerSpec?: { Image?: string } };
  Status?: { State?: string; Err?: string; ContainerStatus?: { ContainerID?: string } };
}
const runningTasks = async (service: string) =>
  ((await docker.listTasks({ filters: { service: [`${project}_${service}`] } })) as TaskInfo[]).filter((t) => t.Status?.State === 'running' && t.DesiredState === 'running');

const deployStatuses = (commit: string) => github.statuses(GITHUB_REPO, commit).filter((s) => s.context === 'waffle/deploy');
const finalDeployStatus = (commit: string) => waitFor(`the commit status of ${commit.slice(0, 7)}`, () => deployStatuses(commit).find((s) => s.state !== 'pending'));
const chatAbout = (commit: string) => waitFor(`a chat message about ${commit.slice(0, 7)}`, () => chat.delivered.find((p) => JSON.stringify(p.body).includes(commit.slice(0, 7))));

async function serviceStatus(service: string): Promise<ServiceRow | undefined> {
  const r = await agent.api<{ project?: string; services: ServiceRow[] }>('GET', '/status');
  assert.equal(r.status, 200);
  assert.equal(r.json.project, project);
  return r.json.services.find((s) => s.service === service);
}

let good: string;

test('the start-up reconcile creates the Swarm service; a signed push deploys a service with 2 replicas and reports it', { timeout: 600_000 }, async () => {
  const startup = await waitFor('the start-up deploy', async () => (await deployments()).find((d) => d.trigger === 'startup' && d.state !== 'queued' && d.state !== 'running'), 300_000);
  assert.equal(startup.state, 'applied', startup.error);
  assert.deepEqual(startup.services, [{ service: 'worker', action: 'create', outcome: 'done' }]);
  assert.equal((await runningTasks('worker')).length, 1);

  const { commit, row } = await push({ 'services/web.ts': web(1) }, 'web on swarm');
  assert.equal(row.state, 'applied', row.error);
  assert.equal(row.commit, commit);
  assert.equal(row.trigger, 'push');
  assert.equal(row.planSummary, '1 to create');
  assert.deepEqual(row.services, [{ service: 'web', action: 'create', outcome: 'done' }]);

  const svc = await inspectService('web');
  assert.equal(svc.Spec.Mode.Replicated.Replicas, 2);
  assert.equal(svc.Spec.Labels['dev.wafflemaker.commit'], commit.slice(0, 12));
  assert.equal((await runningTasks('web')).length, 2, 'both tasks run');
  // A Swarm service, not containers of the single engine: nothing carries the project label but Swarm's objects.
  assert.deepEqual((await snapshot(docker, project)).containers, []);

  const st = await finalDeployStatus(commit);
  assert.equal(st.state, 'success');
  assert.equal(st.description, 'waffle: applied (1 to create)');
  assert.equal(st.target_url, `https://deploy.example.test/deployments/${row.id}`);
  assert.equal(deployStatuses(commit)[0]!.state, 'pending', 'pending first, then success');
  assert.match(JSON.stringify((await chatAbout(commit)).body), /applied \(1 to create\)/);

  const s = await serviceStatus('web');
  assert.ok(s, 'the status lists web');
  assert.equal(s.state, 'running');
  assert.equal(s.health, 'healthy');
  assert.equal(s.image, TEST_IMAGES.appV1);
  assert.equal(s.commit, commit.slice(0, 12));
  assert.deepEqual(s.replicas, { desired: 2, running: 2 });
  assert.deepEqual((await serviceStatus('worker'))?.replicas, { desired: 1, running: 1 });
  // The status page says the same for people.
  const page = await fetch(agent.url + '/', { headers: { authorization: `Bearer ${TOKEN}`, accept: 'text/html' } });
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(html, /id="service-web"[\s\S]*?<dt>tasks<\/dt><dd>2 of 2 running<\/dd>/);
  good = commit;
});

test('a push changing image and environment rolls the service start-first and reports success with the new commit', { timeout: 600_000 }, async () => {
  const before = (await runningTasks('web')).map((t) => t.ID);
  const { commit, row } = await push({ 'services/web.ts': web(2, `\n  env: { MODE: 'v2' },`) }, 'web v2');
  assert.equal(row.state, 'applied', row.error);
  assert.equal(row.planSummary, '1 to replace');
  assert.deepEqual(row.services, [{ service: 'web', action: 'replace', outcome: 'done' }]);

  const svc = await inspectService('web');
  assert.equal(svc.Spec.UpdateConfig.Order, 'start-first');
  assert.equal(svc.Spec.TaskTemplate.ContainerSpec.Image, TEST_IMAGES.appV2);
  assert.ok(svc.Spec.TaskTemplate.ContainerSpec.Env?.includes('MODE=v2'));
  assert.equal(svc.Spec.Labels['dev.wafflemaker.commit'], commit.slice(0, 12));
  assert.equal(svc.UpdateStatus?.State, 'completed');
  const now = await runningTasks('web');
  assert.equal(now.length, 2);
  assert.ok(now.every((t) => !before.includes(t.ID) && t.Spec?.ContainerSpec?.Image === TEST_IMAGES.appV2), 'both tasks were replaced by tasks of the new image');

  assert.equal((await finalDeployStatus(commit)).state, 'success');
  const s = await serviceStatus('web');
  assert.equal(s?.commit, commit.slice(0, 12));
  assert.equal(s?.image, TEST_IMAGES.appV2);
  assert.equal(s?.update, 'completed');
  good = commit;
});

test('a push whose health check fails: Swarm rolls it back, the agent reports it failed with the task error; the next good push deploys', { timeout: 600_000 }, async () => {
  const { commit, row } = await push({ 'services/web.ts': web(2, FAILING_CHECK) }, 'broken health check');
  assert.equal(row.state, 'failed', 'a rolled back update is not a success');
  assert.match(row.error ?? '', /^web: Swarm rolled the update back/);
  assert.match(row.error ?? '', /task \d+: .*(unhealthy|exit)/, 'with the task error');
  assert.equal(row.services.length, 1);
  assert.equal(row.services[0]!.service, 'web');
  assert.equal(row.services[0]!.action, 'replace');
  assert.equal(row.services[0]!.outcome, 'failed');
  assert.match(row.services[0]!.message ?? '', /task \d+: .*(unhealthy|exit)/);

  const st = await finalDeployStatus(commit);
  assert.equal(st.state, 'failure');
  assert.match(st.description ?? '', /^waffle: failed \(apply\): web: Swarm rolled the update back; task \d+: .*unhealthy container/);
  assert.ok((st.description ?? '').length <= 140, st.description ?? '');
  const post = JSON.stringify((await chatAbout(commit)).body);
  assert.match(post, /fail/i);
  assert.match(post, /Swarm rolled the update back/);
  assert.match(post, /task \d+: .*(unhealthy|exit)/, 'the chat message carries the task error');

  // The previous version keeps running.
  const svc = await inspectService('web');
  assert.match(svc.UpdateStatus?.State ?? '', /^rollback_(completed|paused)$/);
  assert.equal(svc.Spec.Labels['dev.wafflemaker.commit'], good.slice(0, 12));
  await waitFor('both tasks of the previous version running', async () => {
    const t = await runningTasks('web');
    return t.length === 2 && t.every((x) => x.Spec?.ContainerSpec?.Image === TEST_IMAGES.appV2);
  });
  const s = await serviceStatus('web');
  assert.equal(s?.commit, good.slice(0, 12), 'the status shows the version that runs');
  assert.match(s?.update ?? '', /^rollback_/);

  // The next good push deploys.
  const next = await push({ 'services/web.ts': web(2, `\n  env: { MODE: 'v3' },`) }, 'fixed');
  assert.equal(next.row.state, 'applied', next.row.error);
  assert.deepEqual(next.row.services, [{ service: 'web', action: 'replace', outcome: 'done' }]);
  const fixed = await inspectService('web');
  assert.equal(fixed.Spec.Labels['dev.wafflemaker.commit'], next.commit.slice(0, 12));
  assert.equal(fixed.UpdateStatus?.State, 'completed');
  assert.equal((await runningTasks('web')).length, 2);
  assert.equal((await finalDeployStatus(next.commit)).state, 'success');
  good = next.commit;
});

test('Swarm repairs its own tasks: the agent starts no container and records no repair, not even for a stray container of the project', { timeout: 600_000 }, async () => {
  const rowsBefore = (await deployments()).length;
  const tasks = await runningTasks('web');
  assert.equal(tasks.length, 2);
  const victim = tasks[0]!;
  await docker.getContainer(victim.Status!.ContainerStatus!.ContainerID!).kill();
  // Swarm replaces the killed task with a new one.
  await waitFor('Swarm to replace the killed task', async () => {
    const now = await runningTasks('web');
    return now.length === 2 && !now.some((t) => t.ID === victim.ID);
  }, 120_000);

  // A container with the project's label that is not a Swarm task (as the engine target left it): not the agent's to restart on Swarm.
  const stray = await docker.createContainer({
    name: `${project}-web`,
    Image: TEST_IMAGES.busybox,
    Cmd: ['sleep', '600'],
    Labels: { 'dev.wafflemaker.project': project, 'dev.wafflemaker.service': 'web' },
  });
  await stray.start();
  await stray.kill();

  // A deploy on request runs after what the agent heard meanwhile; then nothing more was done than that deploy.
  const r = await agent.api<{ deployment: string }>('POST', '/deployments', {});
  assert.equal(r.status, 202);
  const d = await finished(r.json.deployment);
  assert.equal(d.state, 'no-op', d.error);
  const rows = await deployments();
  assert.equal(rows.length, rowsBefore + 1, JSON.stringify(rows.slice(0, rows.length - rowsBefore)));
  assert.deepEqual(rows.filter((x) => x.trigger === 'repair'), []);
  const deliveries = await agent.api<{ deliveries: Array<{ source: string; outcome: string }> }>('GET', '/deliveries');
  assert.deepEqual(deliveries.json.deliveries.filter((x) => x.source === 'docker'), []);
  assert.equal((await stray.inspect()).State.Running, false, 'the stray container was left as it is');
  const own = (await snapshot(docker, project)).containers;
  assert.deepEqual(own.map((c) => c.name), [`${project}-web`], 'the agent created no container of its own');
  assert.ok(!chat.delivered.some((p) => /keeps failing/.test(JSON.stringify(p.body))), 'no crash loop reported');
  const metrics = await fetch(agent.url + '/metrics').then((x) => x.text());
  assert.doesNotMatch(metrics, /^waffle_repairs_total\{[^}]*\} [1-9]/m);
  await stray.remove({ force: true });
});

test('a pull-request preview plans against the swarm and posts the status and the comment; nothing changes', { timeout: 600_000 }, async () => {
  const versions = async () => Object.fromEntries(await Promise.all(['web', 'worker'].map(async (s) => [s, (await inspectService(s)).Version.Index] as const)));
  const before = await versions();
  git(remote.work, 'checkout', '-q', '-b', 'pull-9', 'main');
  const sha = remote.commit({ 'services/web.ts': web(2, `\n  env: { MODE: 'v3' },`).replace('replicas: 2', 'replicas: 3'), 'services/worker.ts': worker('debug') }, 'pull 9', 'pull-9');
  git(remote.work, 'push', '-q', '--force', 'origin', 'HEAD:refs/pull/9/head');
  git(remote.work, 'checkout', '-q', 'main');
  const payload = JSON.stringify({
    action: 'opened',
    number: 9,
    pull_request: {
      number: 9,
      state: 'open',
      head: { sha, ref: 'pull-9', label: 'acme:pull-9', repo: { full_name: GITHUB_REPO } },
      base: { ref: 'main', sha: '0'.repeat(40), repo: { full_name: GITHUB_REPO } },
    },
    repository: { full_name: GITHUB_REPO, name: GITHUB_REPO.split('/')[1] },
    sender: { login: 'octocat' },
  });
  const r = await deliver(agent.url, { event: 'pull_request', body: payload });
  assert.equal(r.status, 202);
  assert.deepEqual(r.json, { status: 'previewing', pull: 9, commit: sha });
  const st = await waitFor('the preview status', () => github.statuses(GITHUB_REPO, sha).find((s) => s.context === 'waffle/plan' && s.state !== 'pending'), 180_000);
  assert.equal(st.state, 'success', st.description ?? '');
  assert.match(st.description ?? '', /^waffle plan: /);
  assert.match(st.description ?? '', /1 to replace/);
  assert.match(st.description ?? '', /1 to update/);
  const comments = github.issueComments(GITHUB_REPO, 9);
  assert.equal(comments.length, 1);
  const body = comments[0]!.body;
  assert.match(body, /^<!-- waffle-plan -->\n/);
  assert.match(body, /\*\*update\*\* `web`/, 'the replica change keeps the tasks');
  assert.match(body, /3 replicas|2 → 3/);
  assert.match(body, /\*\*replace\*\* `worker`/, 'the environment change rolls the worker');
  assert.match(body, /rolling update/);
  assert.deepEqual(await versions(), before, 'no Swarm service changed');
  assert.ok(!(await deployments()).some((d) => d.commit === sha), 'a preview never deploys');
});

test('after a restart, the start-up reconcile puts back what was changed by hand on the swarm', { timeout: 600_000 }, async () => {
  assert.equal(await agent.stop(), 0);
  const svc = await inspectService('web');
  // Scaled by hand while the agent was down.
  await docker.getService(`${project}_web`).update({ version: svc.Version.Index, ...svc.Spec, Mode: { Replicated: { Replicas: 1 } } });
  await waitFor('one task of web', async () => (await runningTasks('web')).length === 1, 120_000);

  agent = await startAgent({ root, repo: remote.bare, stateDir, args: agentArgs });
  agents.push(agent);
  const startup = await waitFor(
    'the second start-up deploy',
    async () => {
      const rows = (await deployments()).filter((d) => d.trigger === 'startup');
      return rows.length === 2 && rows[0]!.state !== 'queued' && rows[0]!.state !== 'running' ? rows[0] : undefined;
    },
    300_000,
  );
  assert.equal(startup.commit, good);
  assert.equal(startup.state, 'applied', startup.error);
  assert.deepEqual(startup.services, [{ service: 'web', action: 'update', outcome: 'done' }], 'the replicas set back, tasks kept');
  assert.equal((await inspectService('web')).Spec.Mode.Replicated.Replicas, 2);
  await waitFor('two tasks of web', async () => (await runningTasks('web')).length === 2, 120_000);
  assert.deepEqual((await serviceStatus('web'))?.replicas, { desired: 2, running: 2 });
});

test('image updates on Swarm: a pushed tag the policy allows rolls the service to it', { timeout: 600_000 }, async () => {
  const host = process.env.DOCKER_HOST!;
  const imgRoot = tempRoot('waffle-agent-swarm-img-');
  roots.push(imgRoot);
  const { freePort } = await import('./helpers.ts');
  const port = await freePort();
  const secret = `regsec-${Math.random().toString(36).slice(2)}`;
  registry = await startRegistry({ notify: { url: `http://127.0.0.1:${port}/hooks/registry`, headers: { Authorization: `Bearer ${secret}` } } });
  const ref = (tag: string) => `${registry!.host}/waffle/${imageProject}-web:${tag}`;
  // Pushed, then the local reference dropped: the swarm node pulls the image from the registry.
  const publish = (tag: string, version: 1 | 2) => {
    pushImage(host, version === 1 ? TEST_IMAGES.appV1 : TEST_IMAGES.appV2, ref(tag));
    removeLocalImage(host, ref(tag));
    pushedRefs.push(ref(tag));
  };
  publish('1.2.0', 1);
  const file = `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${ref('1.2.0')}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  healthcheck: { http: '/index.html', interval: '500ms', timeout: '3s', retries: 3 },
  stopGracePeriod: '1s',
  replicas: 2,
  update: { tags: { semver: '^1.2' } },
});
`;
  const imgRemote = makeRemote(imgRoot, { 'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${imageProject}', target: 'swarm' });\n`, 'services/web.ts': file });
  const secretFile = path.join(imgRoot, 'registry-secret');
  fs.writeFileSync(secretFile, secret + '\n', { mode: 0o600 });
  const a = await startAgent({ root: imgRoot, repo: imgRemote.bare, stateDir: path.join(imgRoot, 'state'), port, args: ['--registry-secret-file', secretFile] });
  agents.push(a);
  type Deploy = { id: string; state: string; trigger: string; error?: string; services: Array<{ service: string; action: string; outcome: string }> };
  const rows = async () => (await a.api<{ deployments: Deploy[] }>('GET', '/deployments?limit=50')).json.deployments;
  const startup = await waitFor('the start-up deploy', async () => (await rows()).find((d) => d.trigger === 'startup' && d.state !== 'queued' && d.state !== 'running'), 300_000);
  assert.equal(startup.state, 'applied', startup.error);
  const image = async () => ((await docker.getService(`${imageProject}_web`).inspect()) as ServiceInfo).Spec.TaskTemplate.ContainerSpec.Image;
  assert.equal(await image(), ref('1.2.0'));

  publish('1.3.0', 2);
  const delivery = await waitFor(
    'the registry delivery',
    async () => (await a.api<{ deliveries: Array<{ source: string; outcome: string; deployment?: string }> }>('GET', '/deliveries')).json.deliveries.find((d) => d.source === 'registry' && /^(deployed|coalesced): web 1\.2\.0 → 1\.3\.0 \(sha256:[0-9a-f]{64}\)$/.test(d.outcome)),
    120_000,
  );
  const row = await waitFor('the registry deploy', async () => (await rows()).find((d) => d.id === delivery.deployment && d.state !== 'queued' && d.state !== 'running'), 300_000);
  assert.equal(row.state, 'applied', row.error);
  assert.match(row.trigger, /^registry/);
  assert.deepEqual(row.services, [{ service: 'web', action: 'replace', outcome: 'done' }]);
  assert.equal(await image(), ref('1.3.0'));
  const tasks = ((await docker.listTasks({ filters: { service: [`${imageProject}_web`] } })) as TaskInfo[]).filter((t) => t.Status?.State === 'running' && t.DesiredState === 'running');
  assert.equal(tasks.length, 2);
  assert.ok(tasks.every((t) => t.Spec?.ContainerSpec?.Image === ref('1.3.0')), 'both tasks run the new tag');
});
