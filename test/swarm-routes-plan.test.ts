/**
 * Routes on Swarm, planned: the pure planner's proxy part (ingress networks, the Caddy container's
 * attachments, the order against service operations) fed with observed states built from its own
 * earlier plans, the Caddy JSON it renders (golden), and the validation of `ingress.caddy.container`.
 * No Docker, no Caddy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { makeRepo } from './helpers.ts';
import { Engine } from '../runtime/engine.ts';
import { LABEL } from '../runtime/labels.ts';
import type { ObservedState, Operation, Plan, ServiceGraph } from '../runtime/model.ts';
import { reconcileSwarm } from '../runtime/targets/swarm/reconcile.ts';
import { renderRoutes, renderTls, describeRoutes } from '../runtime/ingress/caddy.ts';

const config = (extra = "container: 'caddy'", target = 'swarm') => `import { defineConfig } from 'wafflemaker';
export default defineConfig({ project: 'shop', target: '${target}', ingress: { caddy: { admin: 'unix:///run/waffle-caddy/admin.sock'${extra ? `, ${extra}` : ''} } } });
`;

function files(o: { apiRoutes?: boolean; withWeb?: boolean } = {}): Record<string, string> {
  return {
    'waffle.config.ts': config(),
    ...(o.withWeb === false
      ? {}
      : {
          'services/web.ts': `import { defineService } from 'wafflemaker';
export default defineService({ image: 'shop/web:1', port: 8080, replicas: 2, routes: [{ domain: 'shop.example' }] });
`,
        }),
    'services/api.ts': `import { defineService } from 'wafflemaker';
export default defineService({ image: 'shop/api:1', port: 9000${o.apiRoutes === false ? '' : ", routes: [{ domain: 'shop.example', path: '/api', stripPrefix: true }]"} });
`,
  };
}

async function load(f: Record<string, string>): Promise<ServiceGraph> {
  const dir = makeRepo(f);
  try {
    return await new Engine({ env: {} }).load({ dir });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const empty = (caddyNetworks: string[] = ['bridge']): ObservedState => ({
  project: 'shop',
  containers: [],
  networks: [],
  volumes: [],
  images: [],
  swarm: { services: [], tasks: [], secrets: [], caddy: { container: 'caddy', networks: caddyNetworks } },
  proxy: { current: null, currentTls: null },
});

/** What Swarm and Caddy report after `plan` was applied. */
function applied(plan: Plan, before: ObservedState): ObservedState {
  const services = [
    ...(before.swarm?.services ?? []).filter((s) => !plan.operations.some((o) => 'service' in o && o.service === s.service)),
    ...plan.operations.flatMap((o) =>
      o.kind === 'create-swarm-service' || o.kind === 'update-swarm-service'
        ? [{ id: `id-${o.service}`, name: o.name, service: o.service, version: 10, configHash: o.spec.Labels[LABEL.configHash]!, labels: o.spec.Labels, replicas: o.replicas, image: o.spec.TaskTemplate.ContainerSpec.Image, secrets: [] }]
        : [],
    ),
  ];
  const removedNets = new Set(plan.operations.flatMap((o) => (o.kind === 'remove-network' ? [o.network] : [])));
  const networks = [
    ...before.networks.filter((n) => !removedNets.has(n.name)),
    ...plan.operations.flatMap((o) => (o.kind === 'create-network' ? [{ id: o.network, name: o.network, labels: o.body.Labels }] : [])),
  ];
  const proxyOp = plan.operations.find((o) => o.kind === 'configure-proxy');
  let caddy = before.swarm!.caddy!.networks;
  if (proxyOp?.kind === 'configure-proxy') caddy = [...new Set([...caddy, ...(proxyOp.attach ?? [])])].filter((n) => !(proxyOp.detach ?? []).includes(n)).sort();
  return {
    ...before,
    networks,
    swarm: { services, tasks: [], secrets: [], caddy: { container: 'caddy', networks: caddy } },
    proxy: plan.proxy ? { current: renderRoutes(plan.proxy), currentTls: renderTls(plan.proxy) } : { current: null, currentTls: null },
  };
}

const kinds = (ops: Operation[]) => ops.map((o) => `${o.kind} ${'service' in o ? o.service : 'network' in o ? o.network : ''}`.trim());
const byKind = (plan: Plan, kind: Operation['kind']) => plan.operations.filter((o) => o.kind === kind);

test('a new routed project: one attachable ingress network per routed service, Caddy attached and routed once the services converged', async () => {
  const graph = await load(files());
  const plan = reconcileSwarm(graph, empty(), { commit: 'c1' });
  assert.deepEqual(kinds(plan.operations), [
    'create-network shop_ingress_api',
    'create-network shop_ingress_web',
    'create-swarm-service api',
    'create-swarm-service web',
    'configure-proxy',
  ]);
  const net = plan.operations[0]!;
  assert.ok(net.kind === 'create-network');
  assert.deepEqual(net.body, { Name: 'shop_ingress_api', Driver: 'overlay', Internal: false, Attachable: true, Labels: { [LABEL.project]: 'shop', [LABEL.role]: 'ingress' }, Options: {} });
  const web = plan.operations[3]!;
  assert.ok(web.kind === 'create-swarm-service');
  assert.deepEqual(web.spec.TaskTemplate.Networks, [{ Target: 'shop_ingress_web', Aliases: ['web'] }], 'web is on its own ingress network only');
  const proxy = plan.operations[4]!;
  assert.ok(proxy.kind === 'configure-proxy');
  assert.deepEqual(proxy.after, ['create:api', 'create:web', 'network:shop_ingress_api', 'network:shop_ingress_web']);
  assert.equal(proxy.container, 'caddy');
  assert.deepEqual(proxy.attach, ['shop_ingress_api', 'shop_ingress_web']);
  assert.deepEqual(proxy.detach, []);
  assert.deepEqual(
    proxy.causes.map((c) => c.kind),
    ['proxy-missing', 'proxy-tls', 'proxy-network', 'proxy-network'],
  );
  assert.match(proxy.causes[2]!.detail, /Caddy \(container caddy\) not attached to shop_ingress_api/);
  assert.deepEqual(plan.proxy!.tasks, { api: 'tasks.shop_api', web: 'tasks.shop_web' });
  // Pure.
  assert.deepEqual(reconcileSwarm(graph, empty(), { commit: 'c1' }), plan);
});

test("the rendered route: the tasks' DNS name looked up every second, dial failures tried on another task (golden)", async () => {
  const graph = await load(files());
  const plan = reconcileSwarm(graph, empty(), { commit: 'c1' });
  const routes = renderRoutes(plan.proxy!) as { handle: Array<{ routes: Array<{ handle: Array<{ routes: unknown[] }> }> }> };
  const paths = routes.handle[0]!.routes[0]!.handle[0]!.routes;
  assert.deepEqual(paths, [
    {
      '@id': 'waffle-shop-routes:api:0',
      match: [{ path: ['/api', '/api/*'] }],
      handle: [
        { handler: 'rewrite', strip_path_prefix: '/api' },
        {
          handler: 'reverse_proxy',
          dynamic_upstreams: { source: 'a', name: 'tasks.shop_api', port: '9000', refresh: '1s' },
          load_balancing: { try_duration: '5s', try_interval: '250ms' },
        },
      ],
      terminal: true,
    },
    {
      '@id': 'waffle-shop-routes:web:0',
      handle: [
        {
          handler: 'reverse_proxy',
          dynamic_upstreams: { source: 'a', name: 'tasks.shop_web', port: '8080', refresh: '1s' },
          load_balancing: { try_duration: '5s', try_interval: '250ms' },
        },
      ],
      terminal: true,
    },
    { handle: [{ handler: 'static_response', status_code: 404, body: 'Not Found\n' }], terminal: true },
  ]);
  assert.deepEqual(
    [...describeRoutes(routes, 'shop')],
    [
      ['shop.example/api', 'api → tasks of tasks.shop_api:9000 (prefix stripped)'],
      ['shop.example/', 'web → tasks of tasks.shop_web:8080'],
    ],
  );
});

test('applied as planned: nothing to do; an image change is a rolling update with no proxy operation; Caddy restarted empty only pushes', async () => {
  const graph = await load(files());
  const observed = applied(reconcileSwarm(graph, empty(), { commit: 'c1' }), empty());
  assert.deepEqual(reconcileSwarm(graph, observed, { commit: 'c1' }).operations, []);

  const newImage = await load({ ...files(), 'services/web.ts': files()['services/web.ts']!.replace('shop/web:1', 'shop/web:2') });
  assert.deepEqual(kinds(reconcileSwarm(newImage, observed, { commit: 'c2' }).operations), ['update-swarm-service web']);

  const restarted = { ...observed, proxy: { current: null, currentTls: null } };
  const plan = reconcileSwarm(newImage, restarted, { commit: 'c2' });
  assert.deepEqual(kinds(plan.operations), ['update-swarm-service web', 'configure-proxy']);
  const proxy = byKind(plan, 'configure-proxy')[0]!;
  assert.deepEqual(proxy.after, [], 'the routes come back at once: a rolling update is not waited for');
  assert.match(proxy.causes[0]!.detail, /not in Caddy: shop\.example\/ \(web → tasks of tasks\.shop_web:8080\), shop\.example\/api/);

  // Caddy detached by hand: the plan attaches it again.
  const detached = { ...observed, swarm: { ...observed.swarm!, caddy: { container: 'caddy', networks: ['bridge', 'shop_ingress_api'] } } };
  const again = byKind(reconcileSwarm(graph, detached, { commit: 'c1' }), 'configure-proxy')[0]!;
  assert.ok(again.kind === 'configure-proxy');
  assert.deepEqual(again.attach, ['shop_ingress_web']);
  assert.deepEqual(again.causes, [{ kind: 'proxy-network', detail: 'Caddy (container caddy) not attached to shop_ingress_web' }]);

  // Maintenance changes only Caddy.
  const maintenance = reconcileSwarm(graph, observed, { commit: 'c1', maintenance: { web: '<p>later</p>' } });
  assert.deepEqual(kinds(maintenance.operations), ['configure-proxy']);
  assert.match(JSON.stringify(renderRoutes(maintenance.proxy!)), /"status_code":503/);
});

test("routes removed: they leave Caddy first, then the service leaves its network, then Caddy's network goes; a removed service likewise", async () => {
  const graph = await load(files());
  const observed = applied(reconcileSwarm(graph, empty(), { commit: 'c1' }), empty());

  const unrouted = reconcileSwarm(await load(files({ apiRoutes: false })), observed, { commit: 'c2' });
  assert.deepEqual(kinds(unrouted.operations), ['update-swarm-service api', 'configure-proxy', 'remove-network shop_ingress_api']);
  const [update, proxy, removeNet] = unrouted.operations;
  assert.ok(proxy!.kind === 'configure-proxy');
  assert.deepEqual(proxy.after, []);
  assert.deepEqual(proxy.attach, []);
  assert.deepEqual(proxy.detach, ['shop_ingress_api']);
  assert.deepEqual(update!.after, ['proxy:shop'], 'the routes leave Caddy before api leaves its network');
  assert.deepEqual(removeNet!.after, ['proxy:shop', 'update:api']);
  assert.deepEqual(removeNet!.causes, [{ kind: 'unused', detail: 'no longer routed' }]);

  const gone = reconcileSwarm(await load(files({ withWeb: false })), observed, { commit: 'c2' });
  assert.deepEqual(kinds(gone.operations), ['remove-swarm-service web', 'configure-proxy', 'remove-network shop_ingress_web']);
  assert.deepEqual(gone.operations[0]!.after, ['proxy:shop'], "web's routes leave Caddy before web is removed");
  assert.deepEqual(gone.operations[2]!.after, ['proxy:shop', 'remove:shop_web']);
});

test('validation: routes on Swarm need the Caddy container; the container is refused on the engine target; Traefik is refused on Swarm', async () => {
  const problems = async (f: Record<string, string>) => {
    try {
      await load(f);
      return [];
    } catch (e) {
      return ((e as { problems?: Array<{ file: string; where?: string; message: string; fix?: string }> }).problems ?? []).map((p) => ({ file: p.file, where: p.where, message: p.message, fix: p.fix ?? '' }));
    }
  };
  const missing = await problems({ ...files(), 'waffle.config.ts': config('') });
  assert.equal(missing.length, 1);
  assert.equal(missing[0]!.file, 'waffle.config.ts');
  assert.equal(missing[0]!.where, 'ingress.caddy.container');
  assert.match(missing[0]!.message, /need the name of the Caddy container/);
  assert.match(missing[0]!.fix, /container: 'caddy'.*waffle\.config\.ts/);

  const engine = await problems({ ...files(), 'services/web.ts': files()['services/web.ts']!.replace('replicas: 2, ', ''), 'waffle.config.ts': config("container: 'caddy'", 'engine') });
  assert.deepEqual(engine.map((p) => p.where), ['ingress.caddy.container']);
  assert.match(engine[0]!.fix, /remove container/);

  const cfg = (ingress: string) => `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 'shop', target: 'swarm', ingress: ${ingress} });\n`;
  const traefik = await problems({ ...files(), 'waffle.config.ts': cfg("{ provider: 'traefik' }") });
  assert.deepEqual(traefik.map((p) => p.where), ['ingress.provider']);
  assert.match(traefik[0]!.message, /not supported on target: 'swarm'/);

  const badAdmin = await problems({ ...files(), 'waffle.config.ts': cfg("{ caddy: { admin: 'unix:relative.sock', container: 'caddy' } }") });
  assert.deepEqual(badAdmin.map((p) => p.where), ['ingress.caddy.admin']);
});
