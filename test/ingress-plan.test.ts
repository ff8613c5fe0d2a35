/**
 * The planner with routed services (pure, no Docker): which address the proxy table holds for each
 * service, where the routing step sits in a replace (after the health gate, before the drain), that a
 * new service is routed only after its health gate, and that a removed service's route leaves the proxy
 * before its container goes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildGraph } from '../runtime/graph/graph.ts';
import { reconcile } from '../runtime/plan/reconcile.ts';
import { configHash } from '../runtime/plan/container.ts';
import { renderRoutes, renderTls } from '../runtime/ingress/caddy.ts';
import type { ObservedContainer, ObservedState, ServiceGraph } from '../runtime/model.ts';

function graph(services: Record<string, Record<string, unknown>>, ingress: Record<string, unknown> = { drainSeconds: 3 }): ServiceGraph {
  return buildGraph({
    root: '/tmp/x',
    configFile: 'waffle.config.ts',
    config: { project: 'p', ingress },
    services: Object.entries(services).map(([name, data]) => ({ name, file: `services/${name}.ts`, data })),
    inputs: [],
  });
}

const web = (image = 'app:1') => ({ image, port: 8080, routes: [{ domain: 'www.test' }], healthcheck: { http: '/' } });

function container(g: ServiceGraph, service: string, over: Partial<ObservedContainer> = {}): ObservedContainer {
  return {
    id: `id-${service}`,
    name: `p-${service}`,
    service,
    configHash: configHash(g, g.services[service]!),
    commit: 'c',
    generation: 1,
    image: g.services[service]!.image,
    imageId: '',
    state: 'running',
    health: 'healthy',
    labels: { 'dev.wafflemaker.project': 'p', 'dev.wafflemaker.service': service },
    restart: g.services[service]!.restart,
    resources: g.services[service]!.resources,
    createdAt: 0,
    ports: [],
    addresses: { p_default: '10.0.0.9', p_ingress: `10.1.0.${service.length}` },
    ...over,
  };
}

const observed = (containers: ObservedContainer[], proxy?: ObservedState['proxy']): ObservedState => ({
  project: 'p',
  containers,
  networks: [{ id: 'n1', name: 'p_default', labels: { 'dev.wafflemaker.project': 'p' } }, { id: 'n2', name: 'p_ingress', labels: { 'dev.wafflemaker.project': 'p' } }],
  volumes: [],
  images: ['app:1', 'app:2'],
  ...(proxy ? { proxy } : {}),
});

test('a new routed service: no address in the table, routed by its create after the health gate', () => {
  const g = graph({ web: web() });
  const plan = reconcile(g, observed([], { current: null, currentTls: null }), { commit: 'c' });
  const create = plan.operations.find((o) => o.kind === 'create-service');
  assert.ok(create?.kind === 'create-service');
  assert.deepEqual(create.route, { network: 'p_ingress' });
  assert.equal(create.waitHealthy, true);
  assert.deepEqual(plan.proxy?.upstreams, { web: null });
  // Nothing to put in Caddy before the container is healthy: no proxy operation.
  assert.ok(!plan.operations.some((o) => o.kind === 'configure-proxy'), JSON.stringify(plan.operations.map((o) => o.id)));
  // Routed services are on the ingress network, without an alias there.
  assert.deepEqual(create.body.NetworkingConfig.EndpointsConfig.p_ingress, { Aliases: [] });
});

test('a replace of a routed service: health gate, routing, drain of drainSeconds, then the old one stops; the table keeps the old address until then', () => {
  const g1 = graph({ web: web('app:1') });
  const old = container(g1, 'web');
  const g2 = graph({ web: web('app:2') });
  const table = reconcile(g1, observed([old]), { commit: 'c' }).proxy!;
  const inSync = { current: renderRoutes(table), currentTls: renderTls(table) };
  const plan = reconcile(g2, observed([old], inSync), { commit: 'c' });
  const replace = plan.operations.find((o) => o.kind === 'replace-service');
  assert.ok(replace?.kind === 'replace-service');
  assert.equal(replace.strategy, 'start-first');
  assert.deepEqual(
    replace.steps.map((s) => (s.step === 'draining' ? `draining ${s.seconds}` : s.step)),
    ['creating', 'starting', 'waiting-health', 'routing', 'draining 3', 'stopping-old', 'retaining-old', 'renaming'],
  );
  assert.deepEqual(plan.proxy?.upstreams, { web: '10.1.0.3' }, 'the old container serves until the switch');
  assert.ok(!plan.operations.some((o) => o.kind === 'configure-proxy'), 'Caddy already holds what the plan wants');
});

test('an address only for a container that passed its healthcheck; a removed routed service leaves the proxy before its container', () => {
  const g = graph({ web: web(), api: { ...web(), routes: [{ domain: 'api.test' }] } });
  const starting = reconcile(g, observed([container(g, 'web', { health: 'starting' }), container(g, 'api')]), { commit: 'c' });
  assert.deepEqual(starting.proxy?.upstreams, { api: '10.1.0.3', web: null });

  const g2 = graph({ api: { ...web(), routes: [{ domain: 'api.test' }] } });
  const before = reconcile(g, observed([container(g, 'web'), container(g, 'api')]), { commit: 'c' }).proxy!;
  const plan = reconcile(g2, observed([container(g, 'web'), container(g2, 'api')], { current: renderRoutes(before), currentTls: renderTls(before) }), { commit: 'c' });
  const proxy = plan.operations.find((o) => o.kind === 'configure-proxy');
  assert.ok(proxy, JSON.stringify(plan.operations));
  assert.deepEqual(proxy.causes.map((c) => c.detail), ['no longer routed: www.test/', 'TLS policy differs']);
  const remove = plan.operations.find((o) => o.kind === 'remove-service');
  assert.deepEqual(remove?.after, [proxy.id]);
  assert.ok(plan.operations.indexOf(proxy) < plan.operations.indexOf(remove!));
});

test('maintenance: the table carries the page, and a proxy that does not answer with it is a change', () => {
  const g = graph({ web: web() });
  const c = container(g, 'web');
  const normal = reconcile(g, observed([c]), { commit: 'c' }).proxy!;
  const plan = reconcile(g, observed([c], { current: renderRoutes(normal), currentTls: renderTls(normal) }), { commit: 'c', maintenance: { web: '<p>soon</p>' } });
  assert.deepEqual(plan.proxy?.maintenance, { web: '<p>soon</p>' });
  const op = plan.operations.find((o) => o.kind === 'configure-proxy');
  assert.match(op!.causes[0]!.detail, /www\.test\/ is web → 10\.1\.0\.3:8080, should be web maintenance page \(503\)/);
});
