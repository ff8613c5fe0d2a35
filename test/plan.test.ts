import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LABEL, names } from '../runtime/labels.ts';
import type { ObservedContainer, ObservedState, Operation, Plan, ServiceGraph, ServiceSpec } from '../runtime/model.ts';
import { configHash, containerBody, parsePartsLabel } from '../runtime/plan/container.ts';
import { formatPlan, planCounts } from '../runtime/plan/format.ts';
import kleur from 'kleur';
import { planText } from '../cli/render/plan.ts';
import { reconcile } from '../runtime/plan/reconcile.ts';

const GOLDEN_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'golden', 'plan');
const P = 'demo';

// ───────────── helpers: hand-built graphs and observed states ─────────────

function svc(name: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name,
    file: `services/${name}.ts`,
    definedAt: `services/${name}.ts:3:16`,
    image: 'waffle-test/app:1',
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
    ...over,
  };
}

/** A graph like graph/ would build: dependency order with name ties, link pairs, volume names. */
function graphOf(...specs: ServiceSpec[]): ServiceGraph {
  const services: Record<string, ServiceSpec> = {};
  for (const s of specs) services[s.name] = s;
  const order: string[] = [];
  const visit = (n: string) => {
    if (order.includes(n)) return;
    for (const d of [...services[n]!.dependsOn].sort((a, b) => a.service.localeCompare(b.service))) visit(d.service);
    order.push(n);
  };
  for (const n of Object.keys(services).sort()) visit(n);
  const links = new Map<string, [string, string]>();
  for (const s of specs) for (const o of s.links) {
    const pair: [string, string] = s.name < o ? [s.name, o] : [o, s.name];
    links.set(pair.join('|'), pair);
  }
  const volumes = new Set<string>();
  for (const s of specs) for (const m of s.mounts) if (m.type === 'volume') volumes.add(m.name);
  return {
    project: P,
    root: '/repo',
    configFile: 'waffle.config.ts',
    parallelism: 4,
    services,
    order,
    links: [...links.values()].sort((a, b) => a.join('|').localeCompare(b.join('|'))),
    volumes: [...volumes].sort(),
  };
}

const HC = {
  test: ['CMD-SHELL', 'wget -q -O /dev/null http://127.0.0.1:80/health || exit 1'],
  intervalNs: 5e9,
  timeoutNs: 3e9,
  retries: 3,
  startPeriodNs: 0,
  describe: 'http /health :80',
};

/** The demo-like project: db ← api ← web, with a volume, a healthcheck, links and one fixed host port. */
function demoGraph(overrides: Record<string, Partial<ServiceSpec>> = {}): ServiceGraph {
  return graphOf(
    svc('db', {
      image: 'waffle-test/busybox:latest',
      env: { POSTGRES_DB: 'app' },
      mounts: [{ type: 'volume', name: 'data', source: `${P}_data`, target: '/data', readOnly: false }],
      healthcheck: HC,
      links: ['api'],
      ...overrides.db,
    }),
    svc('api', {
      env: { DB_HOST: 'db', LOG_LEVEL: 'info' },
      port: 80,
      dependsOn: [{ service: 'db', condition: 'healthy' }],
      links: ['db', 'web'],
      healthcheck: HC,
      ...overrides.api,
    }),
    svc('web', {
      port: 80,
      ports: [{ container: 80, host: 8080, hostIp: '', protocol: 'tcp' }],
      dependsOn: [{ service: 'api', condition: 'started' }],
      links: ['api'],
      ...overrides.web,
    }),
  );
}

let nextId = 1;
/** What observe would report after a previous apply of `graph` (every container running, all images present). */
function observedAfterApply(graph: ServiceGraph, opts: { commit?: string; generation?: number } = {}): ObservedState {
  const containers = graph.order.map((name) => fakeContainer(graph, graph.services[name]!, { generation: opts.generation ?? 1, commit: opts.commit }));
  const networks = [names.defaultNetwork(P), ...graph.links.map(([a, b]) => names.linkNetwork(P, a, b))].map((n, i) => ({
    id: `net${i}`,
    name: n,
    labels: { [LABEL.project]: P, [LABEL.role]: n.endsWith('_default') ? 'default' : 'link' },
  }));
  return {
    project: P,
    containers,
    networks,
    volumes: graph.volumes.map((v) => ({ name: names.volume(P, v), labels: { [LABEL.project]: P, [LABEL.role]: 'volume' } })),
    images: ['waffle-test/app:1', 'waffle-test/app:2', 'waffle-test/busybox:latest'],
  };
}

function fakeContainer(
  graph: ServiceGraph,
  s: ServiceSpec,
  o: { generation?: number; commit?: string; name?: string; createdAt?: number; state?: string } = {},
): ObservedContainer {
  const generation = o.generation ?? 1;
  const body = containerBody(graph, s, { commit: o.commit ?? 'c0ffee1', generation });
  const n = nextId++;
  return {
    id: `id-${s.name}-${n}`,
    name: o.name ?? names.container(P, s.name),
    service: s.name,
    configHash: body.Labels[LABEL.configHash]!,
    commit: o.commit ?? 'c0ffee1',
    generation,
    image: s.image,
    imageId: `sha256:${s.image.length}`,
    state: o.state ?? 'running',
    health: s.healthcheck ? 'healthy' : 'none',
    labels: body.Labels,
    restart: s.restart,
    resources: s.resources,
    createdAt: o.createdAt ?? 1_700_000_000 + n,
    ports: s.ports.map((p) => ({ container: p.container, host: p.host ?? 32768, hostIp: '0.0.0.0', protocol: p.protocol })),
  };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** Golden text: the plan exactly as users see it (the short diff, then the full one), then each op's id and what it waits for. */
function goldenText(plan: Plan): string {
  const after = plan.operations.map((op) => `${op.id}${op.after.length ? ` <- ${op.after.join(', ')}` : ''}`);
  kleur.enabled = false;
  return `${planText(plan)}--- full diff (d)\n${planText(plan, { full: true })}--- operations (id <- after)\n${after.join('\n')}\n`;
}

function assertGolden(name: string, plan: Plan): void {
  const file = path.join(GOLDEN_DIR, `${name}.txt`);
  const text = goldenText(plan);
  if (process.env.UPDATE_GOLDEN === '1') {
    fs.mkdirSync(GOLDEN_DIR, { recursive: true });
    fs.writeFileSync(file, text);
  }
  assert.equal(text, fs.readFileSync(file, 'utf8'), `golden ${name} differs (UPDATE_GOLDEN=1 to rewrite)`);
}

/** reconcile on frozen inputs: proves it does not mutate them. */
function plan(graph: ServiceGraph, observed: ObservedState, commit = 'abc1234'): Plan {
  return reconcile(deepFreeze(graph), deepFreeze(observed), { commit });
}

const op = <K extends Operation['kind']>(p: Plan, id: string, kind: K) => {
  const o = p.operations.find((x) => x.id === id);
  assert.ok(o, `no operation ${id} in ${p.operations.map((x) => x.id).join(', ')}`);
  assert.equal(o.kind, kind);
  return o as Extract<Operation, { kind: K }>;
};

const emptyObserved = (images = ['waffle-test/app:1', 'waffle-test/app:2', 'waffle-test/busybox:latest']): ObservedState => ({
  project: P,
  containers: [],
  networks: [],
  volumes: [],
  images,
});

// ───────────── container body and hash ─────────────

test('configHash: stable, 64 hex, ignores key order, restart, resources, commit; covers env and secrets digest', () => {
  const g = demoGraph();
  const api = g.services.api!;
  const h = configHash(g, api);
  assert.match(h, /^[0-9a-f]{64}$/);
  const reordered = { ...api, env: { LOG_LEVEL: 'info', DB_HOST: 'db' } };
  assert.equal(configHash(g, reordered), h);
  assert.equal(configHash(g, { ...api, restart: { name: 'always', maximumRetryCount: 0 } }), h);
  assert.equal(configHash(g, { ...api, resources: { memory: 1 << 28, nanoCpus: 5e8 } }), h);
  assert.notEqual(configHash(g, { ...api, env: { ...api.env, LOG_LEVEL: 'debug' } }), h);
  assert.notEqual(configHash(g, { ...api, image: 'waffle-test/app:2' }), h);
  assert.notEqual(configHash(g, api, { secretsDigest: 'hmac1' }), h);
  assert.notEqual(configHash(g, api, { secretsDigest: 'hmac1' }), configHash(g, api, { secretsDigest: 'hmac2' }));
  const b1 = containerBody(g, api, { commit: 'a', generation: 1 });
  const b2 = containerBody(g, api, { commit: 'b', generation: 7 });
  assert.equal(b1.Labels[LABEL.configHash], b2.Labels[LABEL.configHash]);
  assert.equal(b1.Labels[LABEL.configHash], h);
});

test('containerBody: docker create body with labels, ports, healthcheck, mounts and networks', () => {
  const g = demoGraph({ web: { labels: { team: 'front' }, command: ['httpd', '-f'], user: 'nobody', workdir: '/www', env: { B: '2', A: '1' } } });
  const web = containerBody(g, g.services.web!, { commit: 'abc', generation: 3 });
  assert.equal(web.Image, 'waffle-test/app:1');
  assert.deepEqual(web.Cmd, ['httpd', '-f']);
  assert.equal(web.Entrypoint, undefined);
  assert.deepEqual(web.Env, ['A=1', 'B=2']);
  assert.equal(web.User, 'nobody');
  assert.equal(web.WorkingDir, '/www');
  assert.equal(web.Labels.team, 'front');
  assert.equal(web.Labels[LABEL.project], P);
  assert.equal(web.Labels[LABEL.service], 'web');
  assert.equal(web.Labels[LABEL.commit], 'abc');
  assert.equal(web.Labels[LABEL.generation], '3');
  assert.equal(web.Labels[LABEL.definedAt], 'services/web.ts:3:16');
  const parts = parsePartsLabel(web.Labels[LABEL.configParts]);
  assert.ok(parts && /^[0-9a-f]{8}$/.test(parts.image!) && parts['env.A'] && parts['env.B']);
  assert.ok(!web.Labels[LABEL.configParts]!.includes('=1,') && !web.Labels[LABEL.configParts]!.includes('=2,'));
  assert.deepEqual(web.ExposedPorts, { '80/tcp': {} });
  assert.deepEqual(web.HostConfig.PortBindings, { '80/tcp': [{ HostIp: '', HostPort: '8080' }] });
  assert.deepEqual(web.HostConfig.RestartPolicy, { Name: 'unless-stopped', MaximumRetryCount: 0 });
  assert.equal(web.HostConfig.NetworkMode, 'demo_default');
  assert.equal(web.StopTimeout, 10);
  assert.deepEqual(web.NetworkingConfig.EndpointsConfig, {
    demo_default: { Aliases: [] },
    demo_link_api_web: { Aliases: ['web'] },
  });

  const db = containerBody(g, g.services.db!, { commit: 'abc', generation: 1 });
  assert.deepEqual(db.Healthcheck, { Test: HC.test, Interval: 5e9, Timeout: 3e9, Retries: 3, StartPeriod: 0 });
  assert.deepEqual(db.HostConfig.Mounts, [{ Type: 'volume', Source: 'demo_data', Target: '/data', ReadOnly: false }]);
  assert.deepEqual(db.HostConfig.PortBindings, {});
  const random = containerBody(graphOf(svc('x', { ports: [{ container: 53, hostIp: '127.0.0.1', protocol: 'udp' }] })), svc('x', { ports: [{ container: 53, hostIp: '127.0.0.1', protocol: 'udp' }] }), { commit: 'a', generation: 1 });
  assert.deepEqual(random.HostConfig.PortBindings, { '53/udp': [{ HostIp: '127.0.0.1', HostPort: '' }] });
});

// ───────────── reconcile cases (golden) ─────────────

test('empty host: creates networks, volume and every service in dependency order', () => {
  const p = plan(demoGraph(), emptyObserved());
  assertGolden('empty', p);
  assert.deepEqual(planCounts(p), { create: 3, update: 0, replace: 0, remove: 0, start: 0, unchanged: 0 });
  const net = op(p, 'network:demo_default', 'create-network');
  assert.deepEqual(net.body.Options, { 'com.docker.network.bridge.enable_icc': 'false' });
  assert.equal(op(p, 'network:demo_link_api_db', 'create-network').body.Options['com.docker.network.bridge.enable_icc'], undefined);
  assert.ok(p.operations.some((o) => o.kind === 'create-volume' && o.volume === 'demo_data'));
  const api = op(p, 'create:api', 'create-service');
  assert.equal(api.containerName, 'demo-api');
  assert.equal(api.body.Labels[LABEL.generation], '1');
  assert.equal(api.body.Labels[LABEL.commit], 'abc1234');
  assert.equal(api.waitHealthy, true);
  assert.equal(op(p, 'create:web', 'create-service').waitHealthy, false);
  assert.ok(api.after.includes('create:db'));
  assert.ok(api.after.includes('network:demo_link_api_web'));
  assert.ok(op(p, 'create:db', 'create-service').after.includes('volume:demo_data'));
  assert.deepEqual(p.unchanged, []);
});

test('identical: no operations, everything unchanged', () => {
  const g = demoGraph();
  const p = plan(g, observedAfterApply(g));
  assertGolden('identical', p);
  assert.deepEqual(p.operations, []);
  assert.deepEqual(p.unchanged, ['api', 'db', 'web']);
  assert.equal(formatPlan(p), 'no changes\n3 unchanged\n');
});

test('env change: one replace naming the key, never the value', () => {
  const g0 = demoGraph({ api: { env: { DB_HOST: 'db', LOG_LEVEL: 'info', TOKEN: 'old-s3cret-value' } } });
  const g1 = demoGraph({ api: { env: { DB_HOST: 'db', LOG_LEVEL: 'info', TOKEN: 'new-s3cret-value', EXTRA: 'x' } } });
  const p = plan(g1, observedAfterApply(g0, { generation: 4 }));
  assertGolden('env-change', p);
  assert.equal(p.operations.length, 1);
  const r = op(p, 'replace:api', 'replace-service');
  assert.deepEqual(r.causes, [{ kind: 'env', detail: 'TOKEN changed, EXTRA added' }]);
  assert.equal(r.strategy, 'start-first');
  assert.equal(r.tempName, 'demo-api-next-5');
  assert.equal(r.containerName, 'demo-api');
  assert.equal(r.oldContainerName, 'demo-api');
  assert.equal(r.body.Labels[LABEL.generation], '5');
  const text = formatPlan(p);
  assert.match(text, /env: TOKEN changed, EXTRA added/);
  for (const secretish of ['old-s3cret-value', 'new-s3cret-value']) {
    assert.ok(!text.includes(secretish));
    assert.ok(!JSON.stringify(r.causes).includes(secretish));
    assert.ok(!JSON.stringify(r.body.Labels).includes(secretish));
  }
  assert.deepEqual(p.unchanged, ['db', 'web']);
});

test('image change: cause shows old → new image', () => {
  const g0 = demoGraph();
  const g1 = demoGraph({ api: { image: 'waffle-test/app:2' } });
  const p = plan(g1, observedAfterApply(g0));
  assertGolden('image-change', p);
  assert.deepEqual(op(p, 'replace:api', 'replace-service').causes, [{ kind: 'image', detail: 'waffle-test/app:1 → waffle-test/app:2' }]);
  assert.match(formatPlan(p), /-\/\+ replace api {10}image: waffle-test\/app:1 → waffle-test\/app:2 \(start-first\)/);
});

test('fixed host port: replaced stop-first, and the plan says why', () => {
  const g0 = demoGraph();
  const g1 = demoGraph({ web: { image: 'waffle-test/app:2' } });
  const p = plan(g1, observedAfterApply(g0));
  assertGolden('fixed-port', p);
  const r = op(p, 'replace:web', 'replace-service');
  assert.equal(r.strategy, 'stop-first');
  assert.equal(r.strategyReason, 'fixed host port 8080/tcp');
  assert.match(formatPlan(p), /\(stop-first: fixed host port 8080\/tcp\)/);
});

test('replace strategy: stop-first only when the old container holds a wanted host port', () => {
  const published = (host: number) => ({ web: { ports: [{ container: 80, host, hostIp: '', protocol: 'tcp' as const }] } });
  // No fixed port before, one now: the old container does not hold it, so the two can overlap.
  const gained = op(plan(demoGraph(published(8080)), observedAfterApply(demoGraph({ web: { ports: [] } }))), 'replace:web', 'replace-service');
  assert.equal(gained.strategy, 'start-first');
  assert.equal(gained.strategyReason, 'fixed host port 8080/tcp not held by demo-web');
  // Moved to another fixed port: start-first too.
  assert.equal(op(plan(demoGraph(published(8081)), observedAfterApply(demoGraph(published(8080)))), 'replace:web', 'replace-service').strategy, 'start-first');
  // Random host port before (Docker picked 32768), fixed now: start-first.
  const random = demoGraph({ web: { ports: [{ container: 80, hostIp: '', protocol: 'tcp' }] } });
  assert.equal(op(plan(demoGraph(published(8080)), observedAfterApply(random)), 'replace:web', 'replace-service').strategy, 'start-first');
  // A crash-looping container lists no ports between restarts but takes them back: stop-first.
  const looping = observedAfterApply(demoGraph());
  looping.containers = looping.containers.map((c) => (c.service === 'web' ? { ...c, state: 'restarting', ports: [] } : c));
  const r = op(plan(demoGraph({ web: { image: 'waffle-test/app:2' } }), looping), 'replace:web', 'replace-service');
  assert.equal(r.strategy, 'stop-first');
  assert.equal(r.strategyReason, 'fixed host port 8080/tcp');
});

test('restart policy and resources change in place', () => {
  const g0 = demoGraph({ web: { restart: { name: 'no', maximumRetryCount: 0 } } });
  const g1 = demoGraph({ web: { restart: { name: 'always', maximumRetryCount: 0 } }, api: { resources: { memory: 256 * 1024 * 1024, nanoCpus: 5e8 } } });
  const p = plan(g1, observedAfterApply(g0));
  assertGolden('update-in-place', p);
  assert.deepEqual(planCounts(p), { create: 0, update: 2, replace: 0, remove: 0, start: 0, unchanged: 1 });
  const web = op(p, 'update:web', 'update-service');
  assert.deepEqual(web.update, { RestartPolicy: { Name: 'always', MaximumRetryCount: 0 } });
  assert.deepEqual(web.causes, [{ kind: 'restart', detail: 'no → always' }]);
  const api = op(p, 'update:api', 'update-service');
  assert.deepEqual(api.update, { Memory: 268435456, MemorySwap: 536870912, NanoCpus: 5e8 });
  assert.deepEqual(api.causes, [{ kind: 'resources', detail: 'memory unlimited → 256m, cpus unlimited → 0.5' }]);
});

test('removing a memory limit cannot happen in place: replace', () => {
  const g0 = demoGraph({ api: { resources: { memory: 1 << 28, nanoCpus: 0 } } });
  const p = plan(demoGraph(), observedAfterApply(g0));
  const r = op(p, 'replace:api', 'replace-service');
  assert.deepEqual(r.causes, [{ kind: 'resources', detail: 'memory 256m → unlimited (cannot be unset in place)' }]);
});

test('removed service: its container and its orphan link network go', () => {
  const g0 = demoGraph();
  const g1 = graphOf(
    svc('db', { ...g0.services.db!, links: [] }),
    svc('api', { ...g0.services.api!, links: ['web'], dependsOn: [] }),
    g0.services.web!,
  );
  // db stays but loses its link to api; add a service "old" that is gone from the repo.
  const observed = observedAfterApply(g0);
  const oldSvc = svc('old');
  observed.containers.push(fakeContainer(graphOf(oldSvc), oldSvc));
  const p = plan(g1, observed);
  assertGolden('removed', p);
  const rm = op(p, 'remove:demo-old', 'remove-service');
  assert.deepEqual(rm.causes, [{ kind: 'removed', detail: 'removed' }]);
  const net = op(p, 'remove-network:demo_link_api_db', 'remove-network');
  assert.ok(net.after.includes('remove:demo-old'));
  assert.ok(net.after.includes('replace:api') && net.after.includes('replace:db'));
  assert.equal(p.operations.at(-1)!.kind, 'remove-network');
  assert.deepEqual(op(p, 'replace:db', 'replace-service').causes, [{ kind: 'networks', detail: 'no links' }]);
});

test('a project without services: no network is created, and the last service takes the default network with it', () => {
  const empty = graphOf();
  assert.deepEqual(plan(empty, emptyObserved()).operations, []);
  const g0 = graphOf(svc('web'));
  const p = plan(empty, observedAfterApply(g0));
  assert.deepEqual(p.operations.map((o) => o.id), ['remove:demo-web', 'remove-network:demo_default']);
  assert.deepEqual(op(p, 'remove-network:demo_default', 'remove-network').after, ['remove:demo-web']);
});

test('foreign containers and networks (no project label) are never touched', () => {
  const g = demoGraph();
  const observed = observedAfterApply(g);
  const stranger = fakeContainer(graphOf(svc('x')), svc('x'));
  observed.containers.push({ ...stranger, labels: { ...stranger.labels, [LABEL.project]: 'other' } });
  observed.networks.push({ id: 'n9', name: 'somebody_else', labels: {} });
  const p = plan(g, observed);
  assert.deepEqual(p.operations, []);
});

test('stopped container: start it', () => {
  const g = demoGraph();
  const observed = observedAfterApply(g);
  observed.containers = observed.containers.map((c) => (c.service === 'db' ? { ...c, state: 'exited' } : c));
  const p = plan(g, observed);
  assertGolden('stopped', p);
  const s = op(p, 'start:db', 'start-service');
  assert.equal(s.waitHealthy, true);
  assert.equal(s.containerId, observed.containers.find((c) => c.service === 'db')!.id);
  assert.deepEqual(planCounts(p), { create: 0, update: 0, replace: 0, remove: 0, start: 1, unchanged: 2 });
});

test('duplicate containers: keep the canonical one, remove leftovers; replace waits for the cleanup', () => {
  const g = demoGraph();
  const observed = observedAfterApply(g, { generation: 2 });
  const api = g.services.api!;
  observed.containers.push(fakeContainer(g, api, { name: 'demo-api-next-3', generation: 3, createdAt: 1_800_000_000 }));
  let p = plan(g, observed);
  assertGolden('duplicates', p);
  const rm = op(p, 'remove:demo-api-next-3', 'remove-service');
  assert.deepEqual(rm.causes, [{ kind: 'duplicate', detail: 'duplicate demo-api-next-3' }]);
  assert.equal(p.operations.length, 1);
  assert.deepEqual(p.unchanged, ['db', 'web']);

  // Only a temp container survived: it is kept, and replaced to get its proper name back.
  const g2 = demoGraph({ api: { image: 'waffle-test/app:2' } });
  const only = observedAfterApply(g);
  only.containers = only.containers.map((c) => (c.service === 'api' ? { ...c, name: 'demo-api-next-3', generation: 3 } : c));
  p = plan(g2, only);
  const r = op(p, 'replace:api', 'replace-service');
  assert.equal(r.oldContainerName, 'demo-api-next-3');
  assert.equal(r.tempName, 'demo-api-next-4');
  assert.deepEqual(r.causes.map((c) => c.kind), ['image', 'name']);
});

test('missing image: pulled first, services using it wait for the pull', () => {
  const p = plan(demoGraph({ api: { image: 'waffle-test/app:2' } }), emptyObserved(['waffle-test/app:1', 'docker.io/library/nothing:1']));
  assertGolden('missing-image', p);
  assert.deepEqual(
    p.operations.filter((o) => o.kind === 'pull-image').map((o) => o.id),
    ['pull:waffle-test/app:2', 'pull:waffle-test/busybox:latest'],
  );
  assert.equal(p.operations[0]!.kind, 'pull-image');
  assert.ok(op(p, 'create:api', 'create-service').after.includes('pull:waffle-test/app:2'));
  assert.ok(!op(p, 'create:web', 'create-service').after.some((a) => a.startsWith('pull:')));
  assert.deepEqual(op(p, 'pull:waffle-test/app:2', 'pull-image').causes, [{ kind: 'missing-image', detail: 'not present on the host' }]);
});

test('dependency ordering: after follows dependsOn through services without operations', () => {
  // db and web change, api (in between) does not: web still waits for db.
  const g0 = demoGraph();
  const g1 = demoGraph({ db: { env: { POSTGRES_DB: 'app2' } }, web: { env: { X: '1' } } });
  const p = plan(g1, observedAfterApply(g0));
  assertGolden('dependencies', p);
  assert.deepEqual(op(p, 'replace:web', 'replace-service').after, ['replace:db']);
  assert.deepEqual(op(p, 'replace:db', 'replace-service').after, []);
  assert.deepEqual(p.unchanged, ['api']);
  // Plan order: by graph order (db, api, web).
  assert.deepEqual(p.operations.map((o) => o.id), ['replace:db', 'replace:web']);
});

test('an unchanged dependency that must be healthy and is not: gated before its dependant restarts', () => {
  const g0 = demoGraph();
  const g1 = demoGraph({ api: { env: { DB_HOST: 'db', LOG_LEVEL: 'debug' } } });
  const observed = observedAfterApply(g0);
  observed.containers = observed.containers.map((c) => (c.service === 'db' ? { ...c, health: 'unhealthy' } : c));
  const p = plan(g1, observed);
  const gate = op(p, 'start:db', 'start-service');
  assert.equal(gate.waitHealthy, true);
  assert.equal(gate.containerId, observed.containers.find((c) => c.service === 'db')!.id);
  assert.deepEqual(gate.causes, [{ kind: 'dependency-health', detail: 'unhealthy; api waits until it is healthy' }]);
  assert.deepEqual(op(p, 'replace:api', 'replace-service').after, ['start:db']);
  assert.deepEqual(p.unchanged, ['web']);
  // web depends on api with `started` only: api's health is not gated for it.
  const webOnly = plan(demoGraph({ web: { env: { X: '1' } } }), {
    ...observed,
    containers: observed.containers.map((c) => (c.service === 'api' ? { ...c, health: 'starting' } : c)),
  });
  assert.deepEqual(webOnly.operations.map((o) => o.id), ['replace:web']);
  // Nothing restarts: an unhealthy dependency alone is no change.
  assert.deepEqual(plan(g0, observed).operations, []);
  // A healthy dependency needs no gate.
  assert.deepEqual(plan(g1, observedAfterApply(g0)).operations.map((o) => o.id), ['replace:api']);
});

test('a new service whose fixed host port a removed one holds waits for that removal', () => {
  const oldSvc = svc('legacy', { ports: [{ container: 80, host: 8080, hostIp: '', protocol: 'tcp' }] });
  const observed: ObservedState = { ...emptyObserved(), containers: [fakeContainer(graphOf(oldSvc), oldSvc)] };
  const p = plan(demoGraph(), observed);
  assert.ok(op(p, 'create:web', 'create-service').after.includes('remove:demo-legacy'));
  assert.ok(!op(p, 'create:api', 'create-service').after.includes('remove:demo-legacy'));
});

test('a host port another service gives up by its replacement: wait for that replacement; a swap adds no cycle', () => {
  const pub = (host: number) => [{ container: 80, host, hostIp: '', protocol: 'tcp' as const }];
  const g0 = demoGraph();
  // web moves from 8080 to 8081; a new service takes 8080.
  const g1 = graphOf(...Object.values(demoGraph({ web: { ports: pub(8081) } }).services), svc('edge', { ports: pub(8080) }));
  const p = plan(g1, observedAfterApply(g0));
  assert.deepEqual(op(p, 'create:edge', 'create-service').after, ['replace:web']);
  assert.equal(op(p, 'replace:web', 'replace-service').strategy, 'start-first');
  // api and web swap their host ports: neither waits for the other's port (web still waits for api, its dependency).
  const s0 = demoGraph({ api: { ports: pub(9090) } });
  const s1 = demoGraph({ api: { ports: pub(8080) }, web: { ports: pub(9090) } });
  const swap = plan(s1, observedAfterApply(s0));
  assert.deepEqual(op(swap, 'replace:api', 'replace-service').after, []);
  assert.deepEqual(op(swap, 'replace:web', 'replace-service').after, ['replace:api']);
});

test('missing config-parts label: cause is "config"', () => {
  const g0 = demoGraph();
  const observed = observedAfterApply(g0);
  observed.containers = observed.containers.map((c) => {
    if (c.service !== 'api') return c;
    const labels = { ...c.labels };
    delete labels[LABEL.configParts];
    return { ...c, labels };
  });
  const p = plan(demoGraph({ api: { user: 'nobody' } }), observed);
  assert.deepEqual(op(p, 'replace:api', 'replace-service').causes, [{ kind: 'config', detail: 'configuration changed' }]);
});

test('secrets digest: rotation replaces the service and says so without values', () => {
  const g = demoGraph();
  const observed = observedAfterApply(g);
  const withSecret = (digest: string) => {
    const c = observed.containers.find((x) => x.service === 'api')!;
    const body = containerBody(g, g.services.api!, { commit: 'c', generation: 1, secretsDigest: digest });
    return { ...observed, containers: observed.containers.map((x) => (x === c ? { ...c, configHash: body.Labels[LABEL.configHash]!, labels: body.Labels } : x)) };
  };
  const o1 = withSecret('hmac-one');
  assert.deepEqual(reconcile(g, o1, { commit: 'c', secretsDigests: { api: 'hmac-one' } }).operations, []);
  const p = reconcile(g, o1, { commit: 'c', secretsDigests: { api: 'hmac-two' } });
  assert.deepEqual(op(p, 'replace:api', 'replace-service').causes, [{ kind: 'secrets', detail: 'a secret value changed' }]);
  const added = reconcile(g, observed, { commit: 'c', secretsDigests: { api: 'hmac-one' } });
  assert.deepEqual(op(added, 'replace:api', 'replace-service').causes, [{ kind: 'secrets', detail: 'now used' }]);
});

test('reconcile is deterministic and does not mutate its (frozen) inputs', () => {
  const g0 = demoGraph();
  const g1 = demoGraph({ api: { image: 'waffle-test/app:2' }, web: { restart: { name: 'always', maximumRetryCount: 0 } } });
  const observed = observedAfterApply(g0);
  observed.containers.push(fakeContainer(graphOf(svc('old')), svc('old')));
  const before = JSON.stringify([g1, observed]);
  const a = plan(g1, observed);
  const b = reconcile(g1, observed, { commit: 'abc1234' });
  assert.deepEqual(a, b);
  assert.equal(JSON.stringify(a), JSON.stringify(b));
  assert.equal(JSON.stringify([g1, observed]), before);
  assert.match(a.observedFingerprint, /^[0-9a-f]{64}$/);
  // Same state listed in another order: same fingerprint. A changed state: another one.
  const shuffled = { ...observed, containers: [...observed.containers].reverse(), networks: [...observed.networks].reverse() };
  assert.equal(reconcile(g1, shuffled, { commit: 'abc1234' }).observedFingerprint, a.observedFingerprint);
  const stopped = { ...observed, containers: observed.containers.map((c, i) => (i === 0 ? { ...c, state: 'exited' } : c)) };
  assert.notEqual(reconcile(g1, stopped, { commit: 'abc1234' }).observedFingerprint, a.observedFingerprint);
});

test('stopped container with a new restart policy: update, then start', () => {
  const g0 = demoGraph();
  const g1 = demoGraph({ web: { restart: { name: 'on-failure', maximumRetryCount: 3 } } });
  const observed = observedAfterApply(g0);
  observed.containers = observed.containers.map((c) => (c.service === 'web' ? { ...c, state: 'exited' } : c));
  const p = plan(g1, observed);
  assert.deepEqual(p.operations.map((o) => o.id), ['update:web', 'start:web']);
  assert.deepEqual(op(p, 'start:web', 'start-service').after, ['update:web']);
  assert.match(formatPlan(p), /~ update  web {12}restart: unless-stopped → on-failure:3\n> start   web {12}\(stopped: exited\)/);
});

test('a replace interrupted by a crash: the running candidate with the desired config is kept and renamed, not recreated', () => {
  const g0 = demoGraph();
  const g1 = demoGraph({ api: { image: 'waffle-test/app:2' } });
  const api = g1.services.api!;
  // waffle was killed at stopping-old: Docker finished the stop (Exited 137); the candidate runs, healthy.
  const crashed = (oldState: string, candidateHealth = 'healthy') => {
    const o = observedAfterApply(g0);
    o.containers = o.containers.map((c) => (c.service === 'api' ? { ...c, state: oldState } : c));
    o.containers.push({ ...fakeContainer(g1, api, { name: 'demo-api-next-2', generation: 2, createdAt: 1_800_000_000 }), health: candidateHealth });
    return o;
  };
  const observed = crashed('exited');
  const oldId = observed.containers.find((c) => c.name === 'demo-api')!.id;
  const candidateId = observed.containers.find((c) => c.name === 'demo-api-next-2')!.id;
  const p = plan(g1, observed);
  assertGolden('crash-recovery', p);
  assert.deepEqual(p.operations.map((o) => o.id), ['rename:api']);
  const r = op(p, 'rename:api', 'rename-service');
  assert.equal(r.containerId, candidateId);
  assert.equal(r.currentName, 'demo-api-next-2');
  assert.equal(r.containerName, 'demo-api');
  assert.deepEqual(
    r.steps.map((s) => s.step),
    ['switching', 'switching', 'unaliasing-old', 'unaliasing-old', 'retaining-old', 'renaming'],
  );
  assert.deepEqual(
    r.steps.filter((s) => s.step === 'switching').map((s) => (s.step === 'switching' ? [s.network, s.aliases] : [])),
    [['demo_link_api_db', ['api']], ['demo_link_api_web', ['api']]],
  );
  // The stale old container is kept for rollback, without the alias it still had while stopped.
  assert.deepEqual(r.steps.find((s) => s.step === 'retaining-old'), { step: 'retaining-old', target: { id: oldId, name: 'demo-api' }, to: 'demo-api-kept-1' });
  assert.deepEqual(p.unchanged, ['db', 'web']);
  assert.deepEqual(planCounts(p), { create: 0, update: 1, replace: 0, remove: 0, start: 0, unchanged: 2 });

  // Killed before the old one was let go: it still serves, so it loses the alias, drains, then stops.
  const early = op(plan(g1, crashed('running')), 'rename:api', 'rename-service');
  assert.deepEqual(
    early.steps.map((s) => s.step),
    ['switching', 'switching', 'unaliasing-old', 'unaliasing-old', 'draining', 'stopping-old', 'retaining-old', 'renaming'],
  );
  // Killed while the candidate's health was still starting: its health is waited for first.
  assert.equal(op(plan(g1, crashed('running', 'starting')), 'rename:api', 'rename-service').steps[0]!.step, 'waiting-health');

  // A candidate that is unhealthy is no keeper: it goes, and the old one is replaced as usual.
  const bad = plan(g1, crashed('running', 'unhealthy'));
  assert.deepEqual(bad.operations.map((o) => o.id), ['remove:demo-api-next-2', 'replace:api']);
  assert.equal(op(bad, 'replace:api', 'replace-service').oldContainerName, 'demo-api');
  // The configuration moved on since the crash: nothing matches; the running candidate is kept (it may be the
  // one serving), the stopped old one goes first, and the candidate is replaced.
  const moved = plan(demoGraph({ api: { image: 'waffle-test/app:2', env: { DB_HOST: 'db', LOG_LEVEL: 'debug' } } }), observed);
  assert.deepEqual(moved.operations.map((o) => o.id), ['remove:demo-api', 'replace:api']);
  const rep = op(moved, 'replace:api', 'replace-service');
  assert.equal(rep.oldContainerId, candidateId);
  assert.deepEqual(rep.after, ['remove:demo-api']);
  assert.ok(rep.causes.some((c) => c.kind === 'name'));
  // Only the candidate is left (killed after removing the old one): a rename alone.
  const alone = { ...observed, containers: observed.containers.filter((c) => c.id !== oldId) };
  assert.deepEqual(op(plan(g1, alone), 'rename:api', 'rename-service').steps.map((s) => s.step), ['switching', 'switching', 'renaming']);
});

test('a replace is planned as named steps: the new container gets the alias only in the switch', () => {
  const g1 = demoGraph({ api: { image: 'waffle-test/app:2' } });
  const r = op(plan(g1, observedAfterApply(demoGraph())), 'replace:api', 'replace-service');
  // Created on its networks without the service alias: linked clients keep resolving the old container.
  for (const cfg of Object.values(r.body.NetworkingConfig.EndpointsConfig)) assert.deepEqual(cfg.Aliases, []);
  assert.deepEqual(Object.keys(r.body.NetworkingConfig.EndpointsConfig), ['demo_default', 'demo_link_api_db', 'demo_link_api_web']);
  assert.deepEqual(r.steps.map((s) => s.step), [
    'creating', 'starting', 'waiting-health', 'switching', 'switching', 'unaliasing-old', 'unaliasing-old', 'draining', 'stopping-old', 'retaining-old', 'renaming',
  ]);
  assert.deepEqual(r.rollback, []);
  const web = op(plan(demoGraph({ web: { image: 'waffle-test/app:2' } }), observedAfterApply(demoGraph())), 'replace:web', 'replace-service');
  assert.equal(web.strategy, 'stop-first');
  // Stopped first, it still has the alias: it loses it before it is kept for rollback.
  assert.deepEqual(web.steps.map((s) => s.step), ['stopping-old', 'creating', 'starting', 'switching', 'unaliasing-old', 'retaining-old', 'renaming']);
  assert.deepEqual(web.rollback, [{ step: 'starting', target: { id: web.oldContainerId, name: 'demo-web' } }]);
});
