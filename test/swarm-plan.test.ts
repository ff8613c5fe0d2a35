/**
 * The Swarm planner is a pure function of the graph, Swarm's observed state and the digests: these
 * tests feed it observed states built from its own earlier plans (as Swarm would report the services
 * it created) and check what it plans next. No Docker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { makeRepo } from './helpers.ts';
import { Engine } from '../runtime/engine.ts';
import { LABEL } from '../runtime/labels.ts';
import type { ObservedState, Operation, Plan, ServiceGraph } from '../runtime/model.ts';
import { reconcileSwarm } from '../runtime/targets/swarm/reconcile.ts';
import type { PlanInputs } from '../runtime/targets/target.ts';

const files = (replicas: number) => ({
  'waffle.config.ts': `import { defineConfig, defineSecrets } from 'wafflemaker';
export const secrets = defineSecrets({ db: { provider: 'embedded', keys: ['password'] } });
export default defineConfig({ project: 'shop', target: 'swarm', secrets });
`,
  'services/api.ts': `import { defineService } from 'wafflemaker';
import { secrets } from '../waffle.config';
export default defineService({ image: 'shop/api:1', port: 8080, replicas: ${replicas}, files: { '/run/secrets/db': secrets.db.password } });
`,
  'services/web.ts': `import { defineService } from 'wafflemaker';
import api from './api';
export default defineService({ image: 'shop/web:1', env: { API: api.url('/') }, ports: ['80:8080'] });
`,
});

async function graphOf(replicas: number): Promise<ServiceGraph> {
  const dir = makeRepo(files(replicas));
  try {
    return await new Engine({ env: {} }).load({ dir });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const inputs = (digest: string | undefined): PlanInputs => ({
  commit: 'c1',
  secretsDigests: { api: 'd'.repeat(64) },
  secretFileDigests: digest ? { api: { '/run/secrets/db': digest } } : {},
});

/** What Swarm reports after `plan` was applied: its services (with the labels sent), networks and secrets. */
function applied(plan: Plan): ObservedState {
  const services = plan.operations.flatMap((o) =>
    o.kind === 'create-swarm-service' || o.kind === 'update-swarm-service'
      ? [
          {
            id: `id-${o.service}`,
            name: o.name,
            service: o.service,
            version: 10,
            configHash: o.spec.Labels[LABEL.configHash]!,
            labels: o.spec.Labels,
            replicas: o.replicas,
            image: o.spec.TaskTemplate.ContainerSpec.Image,
            secrets: o.spec.TaskTemplate.ContainerSpec.Secrets.map((s) => s.SecretName),
          },
        ]
      : [],
  );
  const networks = plan.operations.flatMap((o) => (o.kind === 'create-network' ? [{ id: o.network, name: o.network, labels: o.body.Labels }] : []));
  const secrets = plan.operations.flatMap((o) => (o.kind === 'create-swarm-secret' ? [{ id: `sid-${o.secret}`, name: o.secret, labels: o.labels }] : []));
  return { project: 'shop', containers: [], networks, volumes: [], images: [], swarm: { services, tasks: [], secrets } };
}

const empty: ObservedState = { project: 'shop', containers: [], networks: [], volumes: [], images: [], swarm: { services: [], tasks: [], secrets: [] } };
const kinds = (ops: Operation[]) => ops.map((o) => `${o.kind} ${'service' in o ? o.service : 'secret' in o ? o.secret : 'network' in o ? o.network : ''}`);

test('a new project: the link network (overlay), the secret version, then the services in dependency order', async () => {
  const graph = await graphOf(3);
  const plan = reconcileSwarm(graph, empty, inputs('a'.repeat(64)));
  assert.deepEqual(kinds(plan.operations), [
    'create-network shop_link_api_web',
    'create-swarm-secret shop_db_password_aaaaaaaaaaaa',
    'create-swarm-service api',
    'create-swarm-service web',
  ]);
  const api = plan.operations[2]!;
  assert.ok(api.kind === 'create-swarm-service');
  assert.deepEqual(api.after, ['network:shop_link_api_web', 'secret:shop_db_password_aaaaaaaaaaaa']);
  assert.equal(api.spec.Mode.Replicated.Replicas, 3);
  assert.deepEqual(api.spec.TaskTemplate.Networks, [{ Target: 'shop_link_api_web', Aliases: ['api'] }]);
  assert.deepEqual(api.spec.TaskTemplate.ContainerSpec.Secrets, [{ SecretName: 'shop_db_password_aaaaaaaaaaaa', File: { Name: '/run/secrets/db', UID: '0', GID: '0', Mode: 0o400 } }]);
  assert.equal(api.spec.EndpointSpec.Mode, 'dnsrr');
  const web = plan.operations[3]!;
  assert.ok(web.kind === 'create-swarm-service');
  assert.equal(web.spec.UpdateConfig.Order, 'stop-first', 'a fixed host port rolls out stop-first');
  assert.equal(api.spec.UpdateConfig.Order, 'start-first');
  // Pure: the same input gives the same plan.
  assert.deepEqual(reconcileSwarm(graph, empty, inputs('a'.repeat(64))), plan);
});

test('what Swarm runs as planned needs nothing; replicas change without replacing tasks; a rotation rolls and cleans up', async () => {
  const graph = await graphOf(3);
  const first = reconcileSwarm(graph, empty, inputs('a'.repeat(64)));
  const observed = applied(first);
  assert.deepEqual(reconcileSwarm(graph, observed, inputs('a'.repeat(64))).operations, []);
  // Another commit alone changes nothing either.
  assert.deepEqual(reconcileSwarm(graph, observed, { ...inputs('a'.repeat(64)), commit: 'c2' }).operations, []);

  const scaled = reconcileSwarm(await graphOf(1), observed, inputs('a'.repeat(64)));
  assert.deepEqual(kinds(scaled.operations), ['update-swarm-service api']);
  const op = scaled.operations[0]!;
  assert.ok(op.kind === 'update-swarm-service');
  assert.equal(op.rolls, false);
  assert.equal(op.version, 10, 'the update names the spec version it was planned against');
  assert.deepEqual(op.causes, [{ kind: 'replicas', detail: '3 → 1' }]);

  const rotated = reconcileSwarm(graph, observed, { ...inputs('b'.repeat(64)), secretsDigests: { api: 'e'.repeat(64) } });
  assert.deepEqual(kinds(rotated.operations), ['create-swarm-secret shop_db_password_bbbbbbbbbbbb', 'update-swarm-service api', 'remove-swarm-secret shop_db_password_aaaaaaaaaaaa']);
  const [create, update, remove] = rotated.operations;
  assert.deepEqual(create!.causes, [{ kind: 'secret-rotated', detail: 'a new version (the value changed)' }]);
  assert.ok(update!.kind === 'update-swarm-service' && update!.rolls);
  assert.deepEqual(update!.after, [create!.id]);
  assert.deepEqual(remove!.after, [update!.id]);
  assert.ok(!JSON.stringify(rotated).includes('bbbbbbbbbbbbbbbbbbbb'), 'only a short part of the digest names the version');

  // A value not read (offline): the version in use stays, nothing to do.
  assert.deepEqual(reconcileSwarm(graph, observed, inputs(undefined)).operations, []);
});

test('a replica count changed by hand (labels unchanged) is set back without replacing the tasks', async () => {
  const graph = await graphOf(3);
  const observed = applied(reconcileSwarm(graph, empty, inputs('a'.repeat(64))));
  const byHand: ObservedState = { ...observed, swarm: { ...observed.swarm!, services: observed.swarm!.services.map((x) => (x.service === 'api' ? { ...x, replicas: 1 } : x)) } };
  const plan = reconcileSwarm(graph, byHand, inputs('a'.repeat(64)));
  assert.deepEqual(kinds(plan.operations), ['update-swarm-service api']);
  const op = plan.operations[0]!;
  assert.ok(op.kind === 'update-swarm-service');
  assert.equal(op.rolls, false);
  assert.equal(op.replicas, 3);
  assert.equal(op.spec.Mode.Replicated.Replicas, 3);
  assert.deepEqual(op.causes, [{ kind: 'replicas', detail: '1 → 3 (scaled by hand)' }]);
  assert.deepEqual(plan.unchanged, ['web']);
});

test('a service no longer defined is removed, then the network nobody uses and its secret versions', async () => {
  const graph = await graphOf(1);
  const observed = applied(reconcileSwarm(graph, empty, inputs('a'.repeat(64))));
  const only = { ...graph, services: { web: { ...graph.services.web!, links: [], env: {} } }, order: ['web'], links: [] } as ServiceGraph;
  const plan = reconcileSwarm(only, observed, { commit: 'c1' });
  assert.deepEqual(kinds(plan.operations), [
    'update-swarm-service web',
    'remove-swarm-service api',
    'remove-swarm-secret shop_db_password_aaaaaaaaaaaa',
    'remove-network shop_link_api_web',
  ]);
  assert.deepEqual(plan.operations[2]!.after, ['remove:shop_api']);
  assert.deepEqual(plan.operations[3]!.after, ['remove:shop_api', 'update:web']);
});

test('on Swarm, routes without the Caddy container and a port bound to one address are refused with the file and the fix', async () => {
  const dir = makeRepo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 'shop', target: 'swarm' });\n`,
    'services/web.ts': `import { defineService } from 'wafflemaker';
export default defineService({ image: 'shop/web:1', port: 8080, ports: ['127.0.0.1:8088:8080'], routes: [{ domain: 'shop.example' }] });
`,
  });
  try {
    await assert.rejects(new Engine({ env: {} }).load({ dir }), (e: Error & { problems?: Array<{ file: string; service?: string; where?: string; fix?: string }> }) => {
      const got = (e.problems ?? []).map((p) => [p.file, p.service, p.where]);
      assert.deepEqual(got.sort(), [
        ['services/web.ts', 'web', 'ports[0]'],
        ['waffle.config.ts', undefined, 'ingress.caddy.container'],
      ]);
      assert.ok(e.problems!.every((p) => p.fix), 'each with its fix');
      return true;
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
