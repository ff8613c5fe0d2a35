/** Names and references on their own: service names, duplicates, references, dependsOn, connects, order and cycles. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findCycles, topoOrder, type Edge } from '../runtime/graph/order.ts';
import { checkConnects, checkDependsOn, checkServiceName, indexServices, referenceResolver } from '../runtime/graph/validate/names.ts';
import type { LoadedService, Problem, ServiceData } from '../runtime/model.ts';
import { none, only, recorder } from './graph-helpers.ts';

const loaded = (name: string, data: ServiceData = {}, file = `services/${name}.ts`): LoadedService => ({ name, file, data });
const ref = (service: string | null) => ({ $ref: 'service', service });

test('checkServiceName: DNS-safe names pass; others and a non-string `name` are reported on `name`', () => {
  const r = recorder();
  for (const ok of ['a', 'api', 'api-2', 'a'.repeat(63)]) checkServiceName(ok, undefined, r.report);
  none(r.list);
  for (const bad of ['Api', '2api', 'api-', 'a_b', 'a'.repeat(64)]) checkServiceName(bad, undefined, r.report);
  assert.equal(r.list.length, 5);
  assert.ok(r.list.every((p) => p.where === 'name' && /is not DNS-safe/.test(p.message)));
  const r2 = recorder();
  checkServiceName('api', 42, r2.report);
  only(r2.list, /name must be a string, got 42/);
});

test('indexServices: the first of a name wins; the later one is a problem naming both files', () => {
  const problems: Problem[] = [];
  const first = loaded('api');
  const byName = indexServices([first, loaded('db'), loaded('api', {}, 'services/api-copy.ts')], problems);
  assert.equal(byName.get('api'), first);
  assert.deepEqual([...byName.keys()], ['api', 'db']);
  assert.equal(problems.length, 1);
  assert.equal(problems[0].file, 'services/api-copy.ts');
  assert.equal(problems[0].service, 'api');
  assert.match(problems[0].message, /in services\/api\.ts and in services\/api-copy\.ts/);
});

function scope(...services: LoadedService[]) {
  return { byName: new Map(services.map((s) => [s.name, s])), configFile: 'waffle.config.ts', globs: ['services/*.ts', 'extra/*.ts'] };
}

test('referenceResolver: a project service resolves; strings, foreign objects and outsiders are reported with the fix', () => {
  const r = recorder();
  const resolve = referenceResolver(scope(loaded('db')), r.report);
  assert.equal(resolve(ref('db'), 'dependsOn[0]', 'dependsOn: [X]'), 'db');
  assert.equal(resolve('db', 'dependsOn[1]', 'dependsOn: [X]'), undefined);
  assert.equal(resolve({ image: 'x' }, 'dependsOn[2]', 'dependsOn: [X]'), undefined);
  assert.equal(resolve({ ...ref('ghost'), definedAt: 'lib/ghost.ts:1:1' }, 'dependsOn[3]', 'dependsOn: [X]'), undefined);
  assert.match(only(r.list, /"db" is a string/).fix!, /import db from '\.\/db'\) and write dependsOn: \[db\]/);
  only(r.list, /expected a service imported from its file/);
  const outside = only(r.list, /the referenced service "ghost" is not part of the project \(defined at lib\/ghost\.ts:1:1\)/);
  assert.match(outside.fix!, /globs in waffle\.config\.ts \(now 'services\/\*\.ts', 'extra\/\*\.ts'\)/);
});

test('checkDependsOn: conditions, edges and links; self, twice and healthy-without-healthcheck are problems', () => {
  const r = recorder();
  const byName = new Map([loaded('api'), loaded('db', { healthcheck: { tcp: 5432 } }), loaded('cache')].map((s) => [s.name, s]));
  const resolve = referenceResolver({ byName, configFile: 'waffle.config.ts', globs: ['services/*.ts'] }, r.report);
  const got = checkDependsOn(
    [{ service: ref('db'), condition: 'healthy' }, ref('cache'), ref('api'), ref('db'), { service: ref('cache'), condition: 'healthy' }, { condition: 'started' }],
    { service: 'api', byName, resolve },
    r.report,
  );
  assert.deepEqual(got.dependsOn, [
    { service: 'db', condition: 'healthy' },
    { service: 'cache', condition: 'started' },
  ]);
  assert.deepEqual(got.edges, [
    { to: 'db', where: 'dependsOn[0]' },
    { to: 'cache', where: 'dependsOn[1]' },
  ]);
  assert.deepEqual(got.links, ['db', 'cache']);
  assert.equal(only(r.list, /depends on itself/).where, 'dependsOn[2]');
  assert.equal(only(r.list, /"db" is listed twice/).where, 'dependsOn[3]');
  // cache is listed twice too (dependsOn[4]); that is reported before the condition is looked at
  assert.equal(only(r.list, /"cache" is listed twice/).where, 'dependsOn[4]');
  assert.equal(only(r.list, /a dependency needs `service`/).where, 'dependsOn[5].service');
  assert.equal(r.list.length, 4);
});

test('checkDependsOn: condition healthy on a service without healthcheck names its file', () => {
  const r = recorder();
  const byName = new Map([loaded('api'), loaded('db')].map((s) => [s.name, s]));
  const resolve = referenceResolver({ byName, configFile: 'waffle.config.ts', globs: ['services/*.ts'] }, r.report);
  checkDependsOn([{ service: ref('db'), condition: 'healthy' }], { service: 'api', byName, resolve }, r.report);
  const p = only(r.list, /condition 'healthy' needs a healthcheck on "db" \(services\/db\.ts\)/);
  assert.equal(p.where, 'dependsOn[0].condition');
});

test('checkConnects: links; self and non-lists are problems', () => {
  const r = recorder();
  const s = scope(loaded('api'), loaded('cache'));
  const resolve = referenceResolver(s, r.report);
  assert.deepEqual(checkConnects([ref('cache'), ref('api')], { service: 'api', resolve }, r.report), ['cache']);
  assert.equal(only(r.list, /connects to itself/).where, 'connects[1]');
  assert.deepEqual(checkConnects(ref('cache'), { service: 'api', resolve }, r.report), []);
  only(r.list, /connects must be a list/);
});

const edges = (o: Record<string, string[]>) => new Map(Object.entries(o).map(([k, vs]) => [k, vs.map((to, i): Edge => ({ to, where: `dependsOn[${i}]` }))]));

test('topoOrder: dependencies first, ties by name', () => {
  assert.deepEqual(topoOrder(edges({ web: ['api'], api: ['db', 'cache'], db: [], cache: [], worker: [] })), ['cache', 'db', 'api', 'web', 'worker']);
});

test('findCycles: each cycle once, from its smallest name, with files and the first edge', () => {
  const byName = new Map(['a', 'b', 'c', 'd'].map((n) => [n, loaded(n)]));
  const ps = findCycles(edges({ c: ['a'], a: ['d', 'b'], b: ['c'], d: [] }), byName);
  assert.equal(ps.length, 1);
  assert.equal(ps[0].service, 'a');
  assert.equal(ps[0].where, 'dependsOn[1]');
  assert.match(ps[0].message, /dependency cycle: a → b → c → a \(a in services\/a\.ts, b in services\/b\.ts, c in services\/c\.ts\)/);
  assert.deepEqual(findCycles(edges({ a: ['b'], b: [] }), byName), []);
});
