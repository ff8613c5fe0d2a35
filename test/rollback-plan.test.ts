/**
 * The pure parts of rollback: retention in the planner (kept containers are never a service's current
 * one, the newest N stay, the next generation skips theirs), pins as planner input (held, dropped by a
 * definition change or a vanished container, an interrupted rollback finished), and the rollback plan
 * (target choice, steps, strategy, pruning). Golden files pin the text users see.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import kleur from 'kleur';
import { LABEL, isKept, names } from '../runtime/labels.ts';
import type { ObservedContainer, ObservedState, Operation, Plan, ServiceGraph, ServiceSpec } from '../runtime/model.ts';
import { containerBody, definitionHash } from '../runtime/plan/container.ts';
import { formatPlan } from '../runtime/plan/format.ts';
import { reconcile, type PinInput } from '../runtime/plan/reconcile.ts';
import { planRollback, rollbackTarget, RollbackError } from '../runtime/plan/rollback.ts';
import { planText } from '../cli/render/plan.ts';
import { checkConfig } from '../runtime/graph/validate/config.ts';
import type { LoadedRepo, Problem } from '../runtime/model.ts';

const GOLDEN_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'golden', 'plan');
const P = 'demo';

function svc(name: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name,
    file: `services/${name}.ts`,
    image: 'waffle-test/app:2',
    env: {},
    ports: [],
    mounts: [],
    restart: { name: 'always', maximumRetryCount: 0 },
    resources: { memory: 0, nanoCpus: 0 },
    dependsOn: [],
    links: [],
    labels: {},
    stopGraceSeconds: 10,
    pull: 'missing',
    ...over,
  };
}

/** api (linked with web), web; `keep` sets rollback.keep. */
function graph(o: { api?: Partial<ServiceSpec>; keep?: number } = {}): ServiceGraph {
  const api = svc('api', { links: ['web'], port: 8080, ...o.api });
  const web = svc('web', { links: ['api'] });
  return {
    project: P,
    root: '/repo',
    configFile: 'waffle.config.ts',
    parallelism: 4,
    services: { api, web },
    order: ['api', 'web'],
    links: [['api', 'web']],
    volumes: [],
    ...(o.keep !== undefined ? { rollback: { keep: o.keep } } : {}),
  };
}

/** A container of `s` as observe reports it: created from `g`'s definition at `generation`. */
function container(g: ServiceGraph, s: ServiceSpec, generation: number, o: { name?: string; state?: string; image?: string } = {}): ObservedContainer {
  const spec = o.image ? { ...s, image: o.image } : s;
  const body = containerBody(g, spec, { commit: `c${generation}`, generation });
  return {
    id: `id-${s.name}-${generation}`,
    name: o.name ?? names.container(P, s.name),
    service: s.name,
    configHash: body.Labels[LABEL.configHash]!,
    commit: `c${generation}`,
    generation,
    image: spec.image,
    imageId: `sha256:${spec.image}`,
    state: o.state ?? 'running',
    health: 'none',
    labels: body.Labels,
    restart: s.restart,
    resources: s.resources,
    createdAt: 1_700_000_000_000 + generation,
    ports: [],
  };
}

const kept = (g: ServiceGraph, s: ServiceSpec, generation: number, image = 'waffle-test/app:1') =>
  container(g, s, generation, { name: names.keptContainer(P, s.name, generation), state: 'exited', image });

function observed(g: ServiceGraph, containers: ObservedContainer[]): ObservedState {
  return {
    project: P,
    containers,
    networks: [`${P}_default`, `${P}_link_api_web`].map((name) => ({ id: name, name, labels: { [LABEL.project]: P } })),
    volumes: [],
    images: ['waffle-test/app:1', 'waffle-test/app:2'],
  };
}

function plan(g: ServiceGraph, o: ObservedState, pins?: Record<string, PinInput>): Plan {
  return reconcile(g, o, { commit: 'abc1234', ...(pins ? { pins } : {}) });
}

const op = <K extends Operation['kind']>(p: Plan, id: string, kind: K) => {
  const found = p.operations.find((x) => x.id === id);
  assert.ok(found, `no operation ${id} in ${p.operations.map((x) => x.id).join(', ')}`);
  assert.equal(found.kind, kind);
  return found as Extract<Operation, { kind: K }>;
};

function assertGolden(name: string, p: Plan): void {
  kleur.enabled = false;
  const text = `${planText(p)}--- full diff (d)\n${planText(p, { full: true })}--- formatPlan\n${formatPlan(p)}`;
  const file = path.join(GOLDEN_DIR, `${name}.txt`);
  if (process.env.UPDATE_GOLDEN === '1') fs.writeFileSync(file, text);
  assert.equal(text, fs.readFileSync(file, 'utf8'), `golden ${name} differs (UPDATE_GOLDEN=1 to rewrite)`);
}

// ───────────── configuration ─────────────

test('rollback.keep: a whole number from 0 to 20; anything else is reported on the config file with a fix', () => {
  const repo = (config: Record<string, unknown>): LoadedRepo => ({ root: '/srv/repo', configFile: 'waffle.config.ts', config, services: [], inputs: [] });
  const ok: Problem[] = [];
  assert.deepEqual(checkConfig(repo({ project: 'demo', rollback: { keep: 0 } }), ok).rollback, { keep: 0 });
  assert.equal(checkConfig(repo({ project: 'demo' }), ok).rollback, undefined, 'absent: the planner uses its default');
  assert.deepEqual(ok, []);
  for (const [value, re] of [
    [{ keep: 2.5 }, /rollback\.keep 2\.5 must be a whole number from 0 to 20/],
    [{ keep: 99 }, /rollback\.keep 99 must be a whole number from 0 to 20/],
    [{ kep: 3 }, /kep/],
    [3, /rollback must be an object/],
  ] as const) {
    const problems: Problem[] = [];
    const c = checkConfig(repo({ project: 'demo', rollback: value }), problems);
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.match(problems[0]!.message, re);
    assert.equal(problems[0]!.file, 'waffle.config.ts');
    assert.ok(problems[0]!.fix, 'a fix is given');
    assert.equal(c.rollback, undefined);
  }
});

// ───────────── kept containers ─────────────

test('isKept: by the name made of its own service and generation, never by a look-alike', () => {
  const g = graph();
  assert.equal(isKept(kept(g, g.services.api!, 3), P), true);
  assert.equal(isKept(container(g, g.services.api!, 3), P), false);
  // A service named `api-kept-3` has its own canonical name; a kept name with a wrong generation is not kept.
  assert.equal(isKept({ name: 'demo-api-kept-3', service: 'api-kept-3', generation: 1 }, P), false);
  assert.equal(isKept({ name: 'demo-api-kept-3', service: 'api', generation: 2 }, P), false);
});

test('a replace keeps the old container for rollback; the newest N stay, older ones are pruned in its steps', () => {
  const g = graph();
  const api = g.services.api!;
  const old = container(g, api, 4, { image: 'waffle-test/app:1' });
  const p = plan(g, observed(g, [old, kept(g, api, 3), kept(g, api, 2), kept(g, api, 1), container(g, g.services.web!, 1)]));
  assertGolden('retention', p);
  const r = op(p, 'replace:api', 'replace-service');
  assert.equal(r.tempName, 'demo-api-next-5', 'the next generation counts the kept ones');
  assert.equal(r.body.Labels[LABEL.generation], '5');
  assert.deepEqual(
    r.steps.map((s) => s.step),
    ['creating', 'starting', 'switching', 'unaliasing-old', 'draining', 'stopping-old', 'retaining-old', 'renaming', 'removing-old'],
  );
  assert.deepEqual(r.steps.find((s) => s.step === 'retaining-old'), { step: 'retaining-old', target: { id: old.id, name: 'demo-api' }, to: 'demo-api-kept-4' });
  assert.deepEqual(r.steps.at(-1), { step: 'removing-old', target: { id: 'id-api-1', name: 'demo-api-kept-1' } });
  assert.deepEqual(p.unchanged, ['web']);
});

test('rollback.keep 0: the old container is removed as before; a lowered keep prunes without touching the service', () => {
  const g0 = graph({ keep: 0 });
  const api = g0.services.api!;
  const r = op(plan(g0, observed(g0, [container(g0, api, 1, { image: 'waffle-test/app:1' }), container(g0, g0.services.web!, 1)])), 'replace:api', 'replace-service');
  assert.deepEqual(r.steps.filter((s) => s.step === 'removing-old' || s.step === 'retaining-old').map((s) => s.step), ['removing-old']);

  const g1 = graph({ keep: 1 });
  const p = plan(g1, observed(g1, [container(g1, g1.services.api!, 4), kept(g1, api, 3), kept(g1, api, 2), container(g1, g1.services.web!, 1)]));
  assert.deepEqual(p.operations.map((o) => o.id), ['remove:demo-api-kept-2']);
  assert.deepEqual(op(p, 'remove:demo-api-kept-2', 'remove-service').causes, [{ kind: 'retention', detail: 'kept generation 2: beyond the 1 kept for rollback' }]);
  assert.deepEqual(p.unchanged, ['api', 'web']);
});

test('kept containers are never the current one: with only kept ones left, the service is created at the next generation', () => {
  const g = graph();
  const api = g.services.api!;
  const p = plan(g, observed(g, [kept(g, api, 2, 'waffle-test/app:2'), kept(g, api, 1), container(g, g.services.web!, 1)]));
  const c = op(p, 'create:api', 'create-service');
  assert.equal(c.body.Labels[LABEL.generation], '3');
  assert.deepEqual(p.operations.map((o) => o.id), ['create:api']);
  // A removed service takes its kept containers with it.
  const gone: ServiceGraph = { ...g, services: { web: g.services.web! }, order: ['web'], links: [] };
  const removed = plan(gone, observed(gone, [container(g, api, 3), kept(g, api, 2), container(g, g.services.web!, 1)]));
  assert.deepEqual(removed.operations.filter((o) => o.kind === 'remove-service').map((o) => o.id), ['remove:demo-api', 'remove:demo-api-kept-2']);
});

// ───────────── pins ─────────────

test('a pinned service is left alone while its definition is unchanged, and the plan says so', () => {
  const g = graph();
  const api = g.services.api!;
  // Rolled back to generation 1 (app:1) while the repository says app:2.
  const o = observed(g, [container(g, api, 1, { image: 'waffle-test/app:1' }), kept(g, api, 2, 'waffle-test/app:2'), container(g, g.services.web!, 1)]);
  const pin = { api: { generation: 1, definitionHash: definitionHash(g, api) } };
  const p = plan(g, o, pin);
  assertGolden('pinned', p);
  assert.deepEqual(p.operations, []);
  assert.deepEqual(p.unchanged, ['api', 'web']);
  assert.deepEqual(p.pins, [{ service: 'api', generation: 1, state: 'held', detail: 'pinned by rollback to generation 1 (waffle rollback --release api)' }]);
  // Without the pin the same state is a replace.
  assert.ok(plan(g, o).operations.some((x) => x.id === 'replace:api'));
  // A commit that changes another service leaves the pin held (web is replaced, api is not).
  const other = graph();
  other.services.web = { ...other.services.web!, env: { MODE: 'new' } };
  const p2 = plan(other, o, pin);
  assert.deepEqual(p2.operations.map((x) => x.id), ['replace:web']);
  assert.equal(p2.pins?.[0]?.state, 'held');
  // A stopped pinned container is started, still pinned.
  const stopped = plan(g, observed(g, [container(g, api, 1, { image: 'waffle-test/app:1', state: 'exited' }), container(g, g.services.web!, 1)]), pin);
  assert.deepEqual(stopped.operations.map((x) => x.id), ['start:api']);
  assert.equal(stopped.pins?.[0]?.state, 'held');
});

test('a new definition drops the pin: the replace says why first; a pin whose generation is gone is dropped too', () => {
  const g = graph();
  const api = g.services.api!;
  const o = observed(g, [container(g, api, 1, { image: 'waffle-test/app:1' }), kept(g, api, 2, 'waffle-test/app:2'), container(g, g.services.web!, 1)]);
  const pin = { api: { generation: 1, definitionHash: definitionHash(g, api) } };
  const changed = graph({ api: { env: { LOG_LEVEL: 'debug' } } });
  const p = plan(changed, o, pin);
  assertGolden('pin-dropped', p);
  const r = op(p, 'replace:api', 'replace-service');
  assert.deepEqual(r.causes[0], { kind: 'pin', detail: 'pin to generation 1 dropped: the definition changed since the rollback' });
  assert.equal(p.pins?.[0]?.state, 'dropped');
  assert.doesNotMatch(planText(p), /unpin/, 'said once, by the cause');

  const vanished = plan(g, observed(g, [container(g, api, 3), container(g, g.services.web!, 1)]), pin);
  assert.deepEqual(vanished.pins, [{ service: 'api', generation: 1, state: 'dropped', detail: 'pin to generation 1 dropped: generation 1 has no container any more' }]);
  assert.deepEqual(vanished.operations, []);
  assert.match(planText(vanished), /unpin\s+api\s+pin to generation 1 dropped: generation 1 has no container any more/);
});

test('a rollback interrupted after its switch is finished by the next apply, not undone', () => {
  const g = graph();
  const api = g.services.api!;
  // The target serves under its kept name; the container it replaced is still the canonical one.
  const target = container(g, api, 1, { name: 'demo-api-kept-1', image: 'waffle-test/app:1' });
  const o = observed(g, [target, container(g, api, 2, { state: 'exited' }), container(g, g.services.web!, 1)]);
  const p = plan(g, o, { api: { generation: 1, definitionHash: definitionHash(g, api) } });
  const r = op(p, 'rename:api', 'rename-service');
  assert.equal(r.containerId, target.id);
  assert.deepEqual(r.steps.map((s) => s.step), ['switching', 'unaliasing-old', 'retaining-old', 'renaming']);
  assert.deepEqual(r.steps.find((s) => s.step === 'retaining-old'), { step: 'retaining-old', target: { id: 'id-api-2', name: 'demo-api' }, to: 'demo-api-kept-2' });
  assert.deepEqual(r.steps.at(-1), { step: 'renaming', target: { id: target.id, name: 'demo-api-kept-1' }, from: 'demo-api-kept-1', to: 'demo-api' });
});

// ───────────── the rollback plan ─────────────

test('rollbackTarget: the newest kept generation older than the current one, or --to; clear errors otherwise', () => {
  const g = graph();
  const api = g.services.api!;
  const o = observed(g, [container(g, api, 4), kept(g, api, 5), kept(g, api, 3), kept(g, api, 2)]);
  assert.equal(rollbackTarget(o, 'api').generation, 3);
  assert.equal(rollbackTarget(o, 'api', 5).generation, 5);
  assert.throws(() => rollbackTarget(o, 'api', 4), (e: Error) => e instanceof RollbackError && /generation 4 already serves api/.test(e.message));
  assert.throws(() => rollbackTarget(o, 'api', 9), /generation 9 of api is not kept \(kept: 5, 3, 2\)\. Fix: choose a kept generation; see them with `waffle rollback --list api`/);
  assert.throws(() => rollbackTarget(observed(g, [container(g, api, 1)]), 'api'), /api has no kept container to roll back to.*Fix:/);
  assert.throws(() => rollbackTarget(observed(g, [container(g, api, 1), kept(g, api, 2)]), 'api'), /no kept generation older than the current one \(1\); kept: 2\. Fix: .*--to 2/);
});

test('planRollback: the replace sequence with the kept container as the new one; no create; the current one is kept', () => {
  const g = graph();
  const api = g.services.api!;
  const current = container(g, api, 4);
  const o = observed(g, [current, kept(g, api, 3), kept(g, api, 2), kept(g, api, 1)]);
  const target = rollbackTarget(o, 'api');
  const p = planRollback({ graph: g, observed: o, service: 'api', target, targetNetworks: ['demo_default', 'demo_link_api_web'], targetHostPorts: [] });
  assertGolden('rollback', p);
  const r = op(p, 'rollback:api', 'rollback-service');
  assert.equal(r.strategy, 'start-first');
  assert.deepEqual(r.steps, [
    { step: 'restoring', target: { id: target.id, name: 'demo-api-kept-3' }, restart: { name: 'always', maximumRetryCount: 0 } },
    { step: 'starting', target: { id: target.id, name: 'demo-api-kept-3' } },
    { step: 'waiting-health', target: { id: target.id, name: 'demo-api-kept-3' } },
    { step: 'switching', target: { id: target.id, name: 'demo-api-kept-3' }, network: 'demo_link_api_web', aliases: ['api'] },
    { step: 'unaliasing-old', target: { id: current.id, name: 'demo-api' }, network: 'demo_link_api_web', aliases: ['api'] },
    { step: 'draining', seconds: 2 },
    { step: 'stopping-old', target: { id: current.id, name: 'demo-api' } },
    { step: 'retaining-old', target: { id: current.id, name: 'demo-api' }, to: 'demo-api-kept-4' },
    { step: 'renaming', target: { id: target.id, name: 'demo-api-kept-3' }, from: 'demo-api-kept-3', to: 'demo-api' },
    // Kept afterwards: 4, 2, 1 minus the oldest beyond 3 → nothing pruned; with keep 2, generation 1 goes.
  ]);
  assert.deepEqual(r.rollback, [
    { step: 'stopping-old', target: { id: target.id, name: 'demo-api-kept-3' } },
    { step: 'retaining-old', target: { id: target.id, name: 'demo-api-kept-3' }, to: 'demo-api-kept-3' },
  ]);
  assert.ok(!r.steps.some((s) => s.step === 'creating'), 'no create, so no pull');
  const fewer = op(planRollback({ graph: graph({ keep: 2 }), observed: o, service: 'api', target, targetNetworks: ['demo_link_api_web'], targetHostPorts: [] }), 'rollback:api', 'rollback-service');
  assert.deepEqual(fewer.steps.at(-1), { step: 'removing-old', target: { id: 'id-api-1', name: 'demo-api-kept-1' } });
});

test('planRollback: a fixed host port the current container holds makes it stop-first, and the undo starts it again', () => {
  const g = graph();
  const api = g.services.api!;
  const current = { ...container(g, api, 2), ports: [{ container: 8080, host: 8080, hostIp: '0.0.0.0', protocol: 'tcp' }] };
  const o = observed(g, [current, kept(g, api, 1)]);
  const r = op(
    planRollback({ graph: g, observed: o, service: 'api', target: rollbackTarget(o, 'api'), targetNetworks: ['demo_link_api_web'], targetHostPorts: [{ host: 8080, protocol: 'tcp' }] }),
    'rollback:api',
    'rollback-service',
  );
  assert.equal(r.strategy, 'stop-first');
  assert.equal(r.strategyReason, 'fixed host port 8080/tcp');
  assert.deepEqual(r.steps.map((s) => s.step), ['stopping-old', 'restoring', 'starting', 'waiting-health', 'switching', 'unaliasing-old', 'retaining-old', 'renaming']);
  assert.deepEqual(r.rollback.map((s) => s.step), ['stopping-old', 'retaining-old', 'starting']);
  assert.deepEqual(r.rollback.at(-1), { step: 'starting', target: { id: current.id, name: 'demo-api' } });
});
