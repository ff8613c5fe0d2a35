/**
 * `waffle apply --json` on the real engine: every stdout line is JSON, and the stream carries every
 * step of every service: op-start and op-done for every planned operation, the create steps
 * (creating, starting, waiting-health when there is a healthcheck) and the replace steps in order.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import type { ApplyEvent, Operation, Plan } from '../runtime/model.ts';
import { cleanupProject, copyDemoRepo, dockerClient, freePort, gitCommitAll, parseNdjson, uniqueProject, waffle } from './helpers.ts';
import { DEMO_IMAGES, ensureTestImages, TEST_IMAGES } from './engine.ts';

const project = uniqueProject('nd');
let docker: Dockerode;
let repo: string;

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!, { ...TEST_IMAGES, ...DEMO_IMAGES });
  const port = await freePort();
  repo = copyDemoRepo(project, [['127.0.0.1:8088:8080', `127.0.0.1:${port}:8080`]]);
});

after(async () => {
  await cleanupProject(docker, project);
  fs.rmSync(repo, { recursive: true, force: true });
});

/** Plans, applies with --json, and checks the stream against the plan. */
async function applyAndCheck(): Promise<{ plan: Plan; events: ApplyEvent[] }> {
  const planned = await waffle(['plan', '--json'], { cwd: repo });
  assert.equal(planned.code, 0, planned.stderr);
  const plan = JSON.parse(planned.stdout) as Plan;
  assert.ok(plan.operations.length > 0);
  const r = await waffle(['apply', '--yes', '--json'], { cwd: repo });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.ok(r.stdout.endsWith('\n'));
  const events = parseNdjson(r.stdout) as unknown as ApplyEvent[];
  for (const e of events) {
    assert.equal(typeof e.type, 'string');
    assert.equal(typeof e.at, 'number');
  }
  assert.equal(events[0].type, 'apply-start');
  assert.equal(events.at(-1)!.type, 'apply-done');
  assert.equal(events.filter((e) => e.type === 'apply-done').length, 1);
  assert.equal(r.stderr.includes('{"type"'), false, 'events go to stdout only');

  for (const op of plan.operations) {
    const mine = events.filter((e) => 'op' in e && e.op === op.id);
    const types = mine.map((e) => e.type);
    assert.equal(types.filter((t) => t === 'op-start').length, 1, `${op.id}: one op-start`);
    assert.equal(types.filter((t) => t === 'op-done').length, 1, `${op.id}: one op-done`);
    assert.equal(types[0], 'op-start', `${op.id} starts with op-start`);
    assert.equal(types.at(-1), 'op-done', `${op.id} ends with op-done`);
    const start = mine[0] as Extract<ApplyEvent, { type: 'op-start' }>;
    assert.equal(start.kind, op.kind);
    if ('service' in op) assert.equal(start.service, op.service);
    const steps = mine.filter((e): e is Extract<ApplyEvent, { type: 'step' }> => e.type === 'step').map((e) => e.step);
    assert.deepEqual(steps, expectedSteps(op), `${op.id} steps`);
  }
  return { plan, events };
}

function expectedSteps(op: Operation): string[] {
  const health = (body: { Healthcheck?: unknown }, wait: boolean) => (wait && body.Healthcheck ? ['waiting-health'] : []);
  switch (op.kind) {
    case 'create-network':
    case 'create-volume':
      return ['creating'];
    case 'create-service':
      return ['creating', 'starting', ...health(op.body, op.waitHealthy)];
    case 'replace-service':
      return op.strategy === 'start-first'
        ? ['creating', 'starting', ...health(op.body, op.waitHealthy), 'switching', 'stopping-old', 'removing-old', 'renaming']
        : ['stopping-old', 'creating', 'starting', ...health(op.body, op.waitHealthy), 'removing-old', 'renaming'];
    case 'update-service':
      return ['updating'];
    case 'remove-service':
      return ['stopping', 'removing'];
    default:
      throw new Error(`no expectation for ${op.kind}`);
  }
}

test('NDJSON of a first apply: every operation and every create step of every service', async () => {
  const { plan, events } = await applyAndCheck();
  const services = plan.operations.filter((o) => o.kind === 'create-service').map((o) => (o as { service: string }).service).sort();
  assert.deepEqual(services, ['api', 'cache', 'web', 'worker']);
  // Health gates report their status with a deadline in the future of the event.
  const hw = events.filter((e): e is Extract<ApplyEvent, { type: 'health-wait' }> => e.type === 'health-wait');
  assert.deepEqual([...new Set(hw.map((e) => e.service))].sort(), ['api', 'cache', 'web']);
  for (const e of hw) assert.ok(e.deadline > e.at);
  assert.ok(hw.some((e) => e.status === 'healthy'));
  const done = events.at(-1) as Extract<ApplyEvent, { type: 'apply-done' }>;
  assert.deepEqual(done.summary, { created: 4, replaced: 0, updated: 0, removed: 0, failed: 0, skipped: 0 });
});

test('NDJSON of a change: the replace steps in order, and nothing for unchanged services', async () => {
  const file = path.join(repo, 'services/worker.ts');
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace("env: { API_URL: api.url('/') },", "env: { API_URL: api.url('/'), POLL: '3' },"));
  gitCommitAll(repo, 'worker: new env');
  const { plan, events } = await applyAndCheck();
  assert.deepEqual(plan.operations.map((o) => o.id), ['replace:worker']);
  const services = new Set(events.map((e) => ('service' in e ? e.service : undefined)).filter(Boolean));
  assert.deepEqual([...services], ['worker']);
});
