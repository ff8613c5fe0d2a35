/**
 * `waffle plan --json` and `waffle apply --json` on the real engine: every stdout line is JSON and
 * carries the run's id, its sequence number (1, 2, 3… without a gap) and the project; planning reports
 * itself (load, observe, plan-ready with the plan) before apply does; and the stream carries every step
 * of every service: op-start and op-done for every planned operation, the create steps (creating,
 * starting, waiting-health when there is a healthcheck) and the replace steps in order.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import type { ApplyEvent, Operation, Plan } from '../runtime/model.ts';
import { cleanupProject, copyDemoRepo, dockerClient, freePort, gitCommitAll, parseNdjson, planFromJson, uniqueProject, waffle } from './helpers.ts';
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

/** Every line of one command's stream: one run, seq from 1 without a gap, the project once it is known. */
function assertRunStamps(lines: Array<Record<string, unknown>>): string {
  assert.ok(lines.length > 0);
  const run = lines[0].run;
  assert.equal(typeof run, 'string');
  assert.match(run as string, /^[0-9A-Z]{26}$/);
  lines.forEach((e, i) => {
    assert.equal(e.run, run, `line ${i + 1} (${e.type}) carries the run`);
    assert.equal(e.seq, i + 1, `line ${i + 1} (${e.type}) carries seq ${i + 1}`);
    assert.equal(typeof e.type, 'string');
    assert.equal(typeof e.at, 'number');
    // Only the events before the configuration named the project lack it.
    if (!['run-start', 'load-start'].includes(e.type as string)) assert.equal(e.project, project, `line ${i + 1} (${e.type}) carries the project`);
  });
  return run as string;
}

/** Plans, applies with --json, and checks the stream against the plan. */
async function applyAndCheck(): Promise<{ plan: Plan; events: ApplyEvent[] }> {
  const planned = await waffle(['plan', '--json'], { cwd: repo });
  assert.equal(planned.code, 0, planned.stderr);
  const planLines = parseNdjson(planned.stdout);
  const planRun = assertRunStamps(planLines);
  assert.deepEqual(
    planLines.map((e) => e.type),
    ['run-start', 'load-start', 'load-done', 'observe-start', 'observe-done', 'plan-ready'],
  );
  const plan = planFromJson(planned.stdout);
  assert.ok(plan.operations.length > 0);
  const r = await waffle(['apply', '--yes', '--json'], { cwd: repo });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.ok(r.stdout.endsWith('\n'));
  const lines = parseNdjson(r.stdout);
  const applyRun = assertRunStamps(lines);
  assert.notEqual(applyRun, planRun, 'each command is a run of its own');
  // Planning first, in the same run, then the apply's own events.
  const ready = lines.findIndex((e) => e.type === 'plan-ready');
  assert.ok(ready > 0, 'apply --json reports its planning');
  assert.deepEqual((lines[ready].plan as Plan).operations.map((o) => o.id), plan.operations.map((o) => o.id));
  const events = lines.slice(ready + 1) as unknown as ApplyEvent[];
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
      // A replace planned step by step emits exactly its planned steps.
      if (Array.isArray((op as { steps?: unknown }).steps)) return (op as unknown as { steps: Array<{ step: string }> }).steps.map((s) => s.step);
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
