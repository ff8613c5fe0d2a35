/**
 * The Engine on the real Docker engine: every event stamped with its run, a sequence from 1 and the
 * project; two applies of one project in one Engine run one after the other (the second waits, then
 * plans against what the first made and finds nothing to do); a stored graph plans exactly like its
 * directory; a broken repository and an unreachable Vault fail as run-failed events with their problems;
 * an offline plan contacts no Vault and reports the services it could not check.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { Engine, type Planned } from '../runtime/engine.ts';
import type { RunEvent } from '../runtime/model.ts';
import { cleanupProject, dockerClient, freePort, makeRepo, snapshot, uniqueProject } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';

const project = uniqueProject('eng');
let docker: Dockerode;
let repo: string;
let stateDir: string;
const dirs: string[] = [];

const config = (p: string, extra = '') => `import { defineConfig } from 'wafflemaker';
export default defineConfig({ project: '${p}'${extra} });
`;
const service = (body: string, imports = '') => `import { defineService } from 'wafflemaker';
${imports}
export default defineService({
  image: '${TEST_IMAGES.appV1}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
${body}
});
`;

/** An engine with this process's environment and its own state directory. */
const engine = () => new Engine({ env: { ...process.env }, stateDir });

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-state-'));
  repo = makeRepo({ 'waffle.config.ts': config(project), 'services/api.ts': service(`  port: 8080,`), 'services/cache.ts': service('') }, { git: true });
  dirs.push(repo, stateDir);
});

after(async () => {
  await cleanupProject(docker, project);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Every event of one run: one run id, seq 1, 2, 3… without a gap, and the project once known. */
function assertStamped(events: RunEvent[], proj: string | null): string {
  assert.ok(events.length > 0);
  const run = events[0]!.run;
  assert.match(run, /^[0-9A-Z]{26}$/);
  events.forEach((e, i) => {
    assert.equal(e.run, run, `event ${i} (${e.type}) belongs to the run`);
    assert.equal(e.seq, i + 1, `event ${i} (${e.type}) has seq ${i + 1}`);
  });
  assert.equal(events[0]!.type, 'run-start');
  if (proj) assert.equal(events.at(-1)!.project, proj);
  return run;
}

test('planning reports itself as events: run-start, load, observe, plan-ready with counts and the plan', async () => {
  const events: RunEvent[] = [];
  const planned = await engine().plan({ dir: repo }, { onEvent: (e) => events.push(e) });
  assertStamped(events, project);
  assert.deepEqual(
    events.map((e) => e.type),
    ['run-start', 'load-start', 'load-done', 'observe-start', 'observe-done', 'plan-ready'],
  );
  const load = events.find((e) => e.type === 'load-done') as Extract<RunEvent, { type: 'load-done' }>;
  assert.equal(load.services, 2);
  assert.ok(load.files >= 3, `files read: ${load.files}`);
  assert.equal(load.project, project);
  const ready = events.at(-1) as Extract<RunEvent, { type: 'plan-ready' }>;
  assert.equal(ready.counts.create, 2);
  assert.equal(ready.operations, planned.plan.operations.length);
  assert.deepEqual(ready.plan, planned.plan);
  assert.equal(planned.run, ready.run);
});

test('two applies of one project in one Engine run one after the other: the second waits, then finds nothing to do', async () => {
  const e = engine();
  const first: RunEvent[] = [];
  const second: RunEvent[] = [];
  const [a, b] = await Promise.all([
    e.apply({ dir: repo }, { onEvent: (x) => first.push(x) }),
    e.apply({ dir: repo }, { onEvent: (x) => second.push(x) }),
  ]);
  assert.equal(a.ok, true);
  assert.equal(b.ok, true);
  const runA = assertStamped(first, project);
  const runB = assertStamped(second, project);
  assert.notEqual(runA, runB);
  // Which one went first is up to the loads; the other one waited.
  const [early, late] = first.some((x) => x.type === 'queued') ? [second, first] : [first, second];
  assert.ok(late.some((x) => x.type === 'queued'), 'the later apply waited in the queue');
  assert.ok(!early.some((x) => x.type === 'queued'), 'the first did not wait');
  const earlyDone = early.find((x) => x.type === 'apply-done')!;
  const lateReady = late.find((x) => x.type === 'plan-ready') as Extract<RunEvent, { type: 'plan-ready' }>;
  assert.ok(lateReady.at >= earlyDone.at, 'the later one planned only after the first finished');
  assert.equal((early.find((x) => x.type === 'plan-ready') as Extract<RunEvent, { type: 'plan-ready' }>).counts.create, 2);
  assert.equal(lateReady.operations, 0, 'planned against what the first made: nothing to do');
  const snap = await snapshot(docker, project);
  assert.deepEqual(snap.containers.map((c) => c.name), [`${project}-api`, `${project}-cache`]);
});

test('a stored graph plans exactly like its directory (a deploy can be replayed)', async () => {
  const e = engine();
  // Change the directory so there is something to plan, then store its graph as JSON.
  fs.writeFileSync(path.join(repo, 'services/cache.ts'), service(`  env: { MODE: 'replayed' },`));
  const fromDir = await e.plan({ dir: repo });
  assert.deepEqual(fromDir.plan.operations.map((o) => o.id), ['replace:cache']);
  const stored = JSON.parse(JSON.stringify(fromDir.graph));
  const events: RunEvent[] = [];
  const fromGraph = await e.plan({ graph: stored, commit: fromDir.commit }, { onEvent: (x) => events.push(x) });
  assertStamped(events, project);
  assert.equal((events[0] as Extract<RunEvent, { type: 'run-start' }>).source, 'graph');
  assert.ok(!events.some((x) => x.type === 'load-start'), 'nothing is loaded');
  assert.deepEqual(fromGraph.plan, fromDir.plan);
  // And applying the stored graph's plan makes the change.
  const r = await e.apply(fromGraph);
  assert.equal(r.ok, true);
  const again = await e.plan({ graph: stored, commit: fromDir.commit });
  assert.deepEqual(again.plan.operations, []);
});

test('a broken repository fails as a run-failed event naming each problem\'s file and service', async () => {
  const broken = makeRepo({
    'waffle.config.ts': config(project),
    'services/api.ts': service(`  port: 8080,\n  dependsOn: ['nope' as never],`),
    'services/web.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: '' });\n`,
  });
  dirs.push(broken);
  const events: RunEvent[] = [];
  await assert.rejects(engine().plan({ dir: broken }, { onEvent: (x) => events.push(x) }), { name: 'ProblemsError' });
  assertStamped(events, project);
  const failed = events.at(-1) as Extract<RunEvent, { type: 'run-failed' }>;
  assert.equal(failed.type, 'run-failed');
  assert.equal(failed.stage, 'validate');
  assert.ok(failed.problems.length >= 2, JSON.stringify(failed.problems));
  for (const p of failed.problems) {
    assert.match(p.file, /^services\/(api|web)\.ts$/);
    assert.ok(p.service === 'api' || p.service === 'web', JSON.stringify(p));
    assert.equal(typeof p.message, 'string');
  }
  assert.deepEqual([...new Set(failed.problems.map((p) => p.service))].sort(), ['api', 'web']);
});

test('Vault unreachable fails planning as an event naming the address; --offline plans without contacting it', async () => {
  const p = uniqueProject('engv');
  const vaultPort = await freePort(); // nothing listens there
  const vaultRepo = makeRepo({
    'waffle.config.ts': `import { defineConfig, defineSecrets } from 'wafflemaker';
export const secrets = defineSecrets({ app: { provider: 'vault', engine: 'kv', path: 'app/config', keys: ['token'] } });
export default defineConfig({ project: '${p}', secrets, vault: { address: 'http://127.0.0.1:${vaultPort}', auth: { token: { env: 'VAULT_TOKEN' } } } });
`,
    'services/api.ts': service(`  env: { TOKEN: secrets.app.token },`, `import { secrets } from '../waffle.config';`),
    'services/plain.ts': service(''),
  });
  dirs.push(vaultRepo);
  const e = new Engine({ env: { ...process.env, VAULT_TOKEN: 'root' }, stateDir });
  const events: RunEvent[] = [];
  await assert.rejects(e.plan({ dir: vaultRepo }, { onEvent: (x) => events.push(x) }));
  const failed = events.at(-1) as Extract<RunEvent, { type: 'run-failed' }>;
  assert.equal(failed.type, 'run-failed');
  assert.equal(failed.stage, 'secrets');
  assert.match(failed.message, new RegExp(`127\\.0\\.0\\.1:${vaultPort}`));
  assert.ok(!events.some((x) => x.type === 'observe-start'), 'nothing observed after the failure');

  const offline: RunEvent[] = [];
  const planned: Planned = await e.plan({ dir: vaultRepo }, { offline: true, onEvent: (x) => offline.push(x) });
  assertStamped(offline, p);
  assert.deepEqual(planned.notChecked, ['api']);
  const ready = offline.at(-1) as Extract<RunEvent, { type: 'plan-ready' }>;
  assert.equal(ready.offline, true);
  assert.deepEqual(ready.notChecked, ['api']);
  assert.equal(ready.counts.create, 2, 'both services are still new');
  // An offline plan is for reading: applying it is refused before anything changes.
  await assert.rejects(e.apply(planned), /offline/);
  assert.deepEqual((await snapshot(docker, p)).containers, []);
});

test('a run waiting its turn is withdrawn by its signal: an interrupted run-failed event, nothing changed by it', async () => {
  const e = engine();
  fs.writeFileSync(path.join(repo, 'services/cache.ts'), service(`  env: { MODE: 'withdrawn' },`));
  const first: RunEvent[] = [];
  const second: RunEvent[] = [];
  const stop = new AbortController();
  const a = e.apply({ dir: repo }, { onEvent: (x) => first.push(x) });
  // The second asks once the first holds the project, and gives up while it waits.
  while (!first.some((x) => x.type === 'plan-ready')) await new Promise((r) => setTimeout(r, 20));
  const b = e.apply({ dir: repo }, {
    signal: stop.signal,
    onEvent: (x) => {
      second.push(x);
      if (x.type === 'queued') stop.abort();
    },
  });
  await assert.rejects(b, { name: 'InterruptedError' });
  assert.equal((await a).ok, true);
  assertStamped(second, project);
  const failed = second.at(-1) as Extract<RunEvent, { type: 'run-failed' }>;
  assert.equal(failed.type, 'run-failed');
  assert.equal(failed.stage, 'interrupted');
  assert.ok(!second.some((x) => x.type === 'plan-ready' || x.type === 'apply-start'), 'it never planned nor applied');
});
