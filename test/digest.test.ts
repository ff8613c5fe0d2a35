/**
 * A tag re-pushed with new content redeploys: the plan compares the image ID a container was created
 * from (its list entry's ImageID) with the image the reference names now. With pull `always` the
 * reference is pulled from the real registry (Debian's docker-registry on 127.0.0.1) before planning;
 * with `missing` (default) only the local image counts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import type Dockerode from 'dockerode';
import { buildBusyboxImage, ensureEngine, ensureTestImages, TEST_IMAGES } from './engine.ts';
import { cleanupProject, dockerClient, makeRepo, snapshot, uniqueProject } from './helpers.ts';
import { pushImage, removeLocalImage, startRegistry, type Registry } from './registry.ts';
import { Engine, type Planned } from '../runtime/engine.ts';
import { formatPlan } from '../runtime/plan/format.ts';
import { containerBody } from '../runtime/plan/container.ts';
import { reconcile } from '../runtime/plan/reconcile.ts';
import { LABEL, names } from '../runtime/labels.ts';
import type { ObservedState, RunEvent, ServiceGraph, ServiceSpec } from '../runtime/model.ts';

let docker: Dockerode;
let registry: Registry;
let host: string;
const project = uniqueProject('dig');
const stateRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-digest-state-'));
let repo: string;
/** Pushed and used with pull `always`. */
let app: string;
/** Pushed and used with the default pull `missing`. */
let lazy: string;
/** Pushed once, never changed. */
let steady: string;
const local = (variant: string) => `waffle-test/digest-${project}:${variant}`;

function docker_(...args: string[]): string {
  const r = spawnSync('docker', args, { env: { ...process.env, DOCKER_HOST: host }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}
const imageId = (ref: string) => docker_('image', 'inspect', '--format', '{{.Id}}', ref);
const short = (id: string) => `${id.slice(0, 'sha256:'.length + 8)}…`;

/**
 * Pushes `variant` as `remote` the way another machine would: the registry gets the new content, and the
 * local tag goes back to what it named before (as on a deploy host that has not pulled yet).
 */
function pushFromElsewhere(variant: string, remote: string): void {
  const before = imageId(remote);
  pushImage(host, local(variant), remote);
  docker_('tag', before, remote);
}

const engine = () => new Engine({ env: { ...process.env }, dockerHost: host, stateDir: stateRoot });

async function apply(planned: Planned): Promise<RunEvent[]> {
  const events: RunEvent[] = [];
  const r = await engine().apply(planned, { onEvent: (e) => events.push(e), checkStale: false });
  assert.equal(r.ok, true, JSON.stringify(events.filter((e) => e.type === 'op-failed')));
  return events;
}

before(async () => {
  host = await ensureEngine();
  process.env.DOCKER_HOST = host;
  await ensureTestImages(host);
  docker = await dockerClient();
  registry = await startRegistry();
  app = `${registry.host}/waffle/${project}-app:main`;
  lazy = `${registry.host}/waffle/${project}-lazy:main`;
  steady = `${registry.host}/waffle/${project}-steady:main`;
  for (const v of ['a', 'b']) await buildBusyboxImage(host, local(v), `${project}-${v}`);
  pushImage(host, local('a'), app);
  pushImage(host, local('a'), lazy);
  pushImage(host, TEST_IMAGES.appV1, steady);
  const svc = (image: string, extra: string) => `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${image}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  stopGracePeriod: '1s',
${extra}});
`;
  repo = makeRepo(
    {
      'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
      'services/app.ts': svc(app, `  pull: 'always',\n  healthcheck: { http: '/', interval: '500ms', retries: 20 },\n`),
      'services/lazy.ts': svc(lazy, ''),
      'services/steady.ts': svc(steady, ''),
    },
    { git: true },
  );
});

after(async () => {
  await cleanupProject(docker, project);
  for (const ref of [app, lazy, steady, local('a'), local('b')]) if (ref) removeLocalImage(host, ref);
  await registry?.stop();
  fs.rmSync(repo, { recursive: true, force: true });
  fs.rmSync(stateRoot, { recursive: true, force: true });
});

test('a re-pushed tag with pull always replaces exactly that service, naming both image IDs', { timeout: 300_000 }, async () => {
  await apply(await engine().plan({ dir: repo }));
  const idA = imageId(local('a'));
  const idB = imageId(local('b'));
  assert.notEqual(idA, idB);
  const before = await snapshot(docker, project);
  assert.equal(before.containers.length, 3);
  const noop = await engine().plan({ dir: repo });
  assert.deepEqual(noop.plan.operations, [], 'nothing changed yet (pull always found the same image)');

  pushFromElsewhere('b', app);
  pushFromElsewhere('b', lazy);
  assert.equal(imageId(app), idA, 'the deploy host still has the old image under the tag');

  const planned = await engine().plan({ dir: repo });
  assert.deepEqual(planned.plan.operations.map((o) => o.id), ['replace:app']);
  const op = planned.plan.operations[0]!;
  assert.deepEqual(op.causes, [{ kind: 'image', detail: `${app} ${short(idA)} → ${short(idB)}` }]);
  assert.match(formatPlan(planned.plan), new RegExp(`replace app\\s+image: ${app.replace(/[.]/g, '\\.')} sha256:[0-9a-f]{8}… → sha256:[0-9a-f]{8}…`));
  // lazy (pull missing) was re-pushed too, but only the local image counts: unchanged.
  assert.deepEqual(planned.plan.unchanged, ['lazy', 'steady']);
  assert.equal(imageId(app), idB, 'pull always pulled the new content before planning');
  assert.equal(imageId(lazy), idA, 'pull missing asked no registry');

  const events = await apply(planned);
  const done = events.filter((e) => e.type === 'op-done').map((e) => (e as { op: string }).op);
  assert.deepEqual(done, ['replace:app']);
  const afterSnap = await snapshot(docker, project);
  // The replaced container is kept stopped for rollback (`<project>-app-kept-<generation>`): compare live ones.
  const byName = (s: typeof before) => new Map(s.containers.filter((c) => !/-kept-\d+$/.test(c.name)).map((c) => [c.labels['dev.wafflemaker.service'], c.id]));
  assert.notEqual(byName(afterSnap).get('app'), byName(before).get('app'), 'app was replaced');
  assert.equal(byName(afterSnap).get('lazy'), byName(before).get('lazy'), 'lazy kept its container');
  assert.equal(byName(afterSnap).get('steady'), byName(before).get('steady'), 'steady kept its container');
  const appNow = (await docker.listContainers({ all: true, filters: { label: [`dev.wafflemaker.service=app`, `dev.wafflemaker.project=${project}`] } })).find((c) => !/-kept-\d+$/.test(c.Names[0]!))!;
  assert.equal(appNow.ImageID, idB, 'the new container runs the new image');

  assert.deepEqual((await engine().plan({ dir: repo })).plan.operations, [], 'after the apply: nothing to do');

  // The caller's override (the CLI's --pull always) pulls lazy and steady too: lazy is replaced, with the same
  // cause; steady, whose tag the registry still has unchanged, is not.
  const forced = await engine().plan({ dir: repo }, { pull: 'always' });
  assert.deepEqual(forced.plan.operations.map((o) => o.id), ['replace:lazy']);
  assert.deepEqual(forced.plan.operations[0]!.causes, [{ kind: 'image', detail: `${lazy} ${short(idA)} → ${short(idB)}` }]);
  assert.deepEqual(forced.plan.unchanged, ['app', 'steady']);
  await apply(forced);
  assert.deepEqual((await engine().plan({ dir: repo })).plan.operations, []);
});

test('pull always on an image no registry has fails the plan, naming the image', { timeout: 60_000 }, async () => {
  const only = makeRepo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}x', pull: 'always' });\n`,
    'services/web.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: '${registry.host}/waffle/${project}-never-pushed:1' });\n`,
  });
  try {
    await assert.rejects(engine().plan({ dir: only }), new RegExp(`image ${registry.host.replace(/[.]/g, '\\.')}/waffle/${project}-never-pushed:1 could not be pulled`));
  } finally {
    fs.rmSync(only, { recursive: true, force: true });
  }
});

// ───────────── the planner alone (pure): which image IDs make a cause ─────────────

function pureSvc(name: string, image: string): ServiceSpec {
  return {
    name,
    file: `services/${name}.ts`,
    image,
    env: {},
    ports: [],
    mounts: [],
    restart: { name: 'unless-stopped', maximumRetryCount: 0 },
    resources: { memory: 0, nanoCpus: 0 },
    dependsOn: [],
    links: [],
    labels: {},
    stopGraceSeconds: 10,
    pull: 'missing',
  };
}

function pureGraph(...specs: ServiceSpec[]): ServiceGraph {
  return {
    project: 'p',
    root: '/repo',
    configFile: 'waffle.config.ts',
    parallelism: 4,
    services: Object.fromEntries(specs.map((s) => [s.name, s])),
    order: specs.map((s) => s.name).sort(),
    links: [],
    volumes: [],
  };
}

const ID_A = `sha256:${'1a2b3c4d'.repeat(8)}`;
const ID_B = `sha256:${'9f8e7d6c'.repeat(8)}`;

/** Containers created from `graph` on image `created`, and the engine's image list `imageIds`. */
function pureObserved(graph: ServiceGraph, created: Record<string, string>, imageIds: Record<string, string> | undefined): ObservedState {
  return {
    project: 'p',
    containers: Object.values(graph.services).map((s, i) => {
      const body = containerBody(graph, s, { commit: 'c', generation: 1 });
      return {
        id: `id${i}`,
        name: names.container('p', s.name),
        service: s.name,
        configHash: body.Labels[LABEL.configHash]!,
        commit: 'c',
        generation: 1,
        image: s.image,
        imageId: created[s.name]!,
        state: 'running',
        health: 'none',
        labels: body.Labels,
        restart: s.restart,
        resources: s.resources,
        createdAt: 1_700_000_000 + i,
        ports: [],
      };
    }),
    networks: [{ id: 'n', name: 'p_default', labels: { [LABEL.project]: 'p', [LABEL.role]: 'default' } }],
    volumes: [],
    images: Object.keys(imageIds ?? { 'app:main': '', 'db:1': '' }).sort(),
    ...(imageIds ? { imageIds } : {}),
  };
}

test('plan: a reference naming another image than the container runs is a replace with cause image', () => {
  const g = pureGraph(pureSvc('app', 'app:main'), pureSvc('db', 'db:1'));
  const p = reconcile(g, pureObserved(g, { app: ID_A, db: ID_A }, { 'app:main': ID_B, 'db:1': ID_A }), { commit: 'c' });
  assert.deepEqual(p.operations.map((o) => o.id), ['replace:app']);
  assert.deepEqual(p.operations[0]!.causes, [{ kind: 'image', detail: 'app:main sha256:1a2b3c4d… → sha256:9f8e7d6c…' }]);
  assert.deepEqual(p.unchanged, ['db']);
  assert.match(formatPlan(p), /replace app\s+image: app:main sha256:1a2b3c4d… → sha256:9f8e7d6c…/);
  // The same image: nothing. No image IDs observed (an older observer) or the image absent: the hash decides alone.
  assert.deepEqual(reconcile(g, pureObserved(g, { app: ID_B, db: ID_A }, { 'app:main': ID_B, 'db:1': ID_A }), { commit: 'c' }).operations, []);
  assert.deepEqual(reconcile(g, pureObserved(g, { app: ID_A, db: ID_A }, undefined), { commit: 'c' }).operations, []);
  // Docker lists `docker.io/library/app:main` as `app:main`: the same reference.
  const hub = pureGraph(pureSvc('app', 'docker.io/library/app:main'));
  const hubPlan = reconcile(hub, pureObserved(hub, { app: ID_A }, { 'app:main': ID_B }), { commit: 'c' });
  assert.deepEqual(hubPlan.operations.map((o) => o.id), ['replace:app']);
  // A changed reference says old → new reference once (not a second image cause).
  const moved = pureGraph(pureSvc('app', 'app:next'), pureSvc('db', 'db:1'));
  const mp = reconcile(moved, pureObserved(g, { app: ID_A, db: ID_A }, { 'app:main': ID_A, 'app:next': ID_B, 'db:1': ID_A }), { commit: 'c' });
  assert.deepEqual(mp.operations[0]!.causes, [{ kind: 'image', detail: 'app:main → app:next' }]);
});
