/**
 * The env validator on its own: names, plain values, url() references, secret references, and the
 * kernel's limit on one environment string (MAX_ARG_STRLEN), also through buildGraph with file,
 * service and fix.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildGraph } from '../runtime/graph/graph.ts';
import { checkEnv, type EnvContext } from '../runtime/graph/validate/env.ts';
import { envEntryBytes, envEntryFits, MAX_ARG_STRLEN } from '../runtime/limits.ts';
import { referenceResolver } from '../runtime/graph/validate/names.ts';
import { ProblemsError, formatProblem } from '../runtime/problems.ts';
import type { LoadedRepo, LoadedService, ServiceData } from '../runtime/model.ts';
import { none, only, recorder } from './graph-helpers.ts';

const loaded = (name: string, data: ServiceData): LoadedService => ({ name, file: `services/${name}.ts`, data });

function context(report: Parameters<typeof referenceResolver>[1], services: LoadedService[] = []): EnvContext {
  const byName = new Map(services.map((s) => [s.name, s]));
  return {
    service: 'api',
    byName,
    resolve: referenceResolver({ byName, configFile: 'waffle.config.ts', globs: ['services/*.ts'] }, report),
    secrets: { db: { name: 'db', provider: 'embedded', keys: ['url'] } },
    secretsDeclared: true,
    configFile: 'waffle.config.ts',
  };
}

test('checkEnv: plain values become strings, sorted by name; url() resolves and links; secrets stay references', () => {
  const r = recorder();
  const services = [loaded('api', {}), loaded('db', { port: 5432 })];
  const got = checkEnv(
    { Z: 1, A: true, S: 'x', DB: { $ref: 'service-url', service: 'db', path: '/app', scheme: 'postgres' }, PW: { $ref: 'secret', secret: 'db', key: 'url' } },
    context(r.report, services),
    r.report,
  );
  none(r.list);
  assert.deepEqual(got.env, { A: 'true', DB: 'postgres://db:5432/app', S: 'x', Z: '1' });
  assert.deepEqual(Object.keys(got.env), ['A', 'DB', 'S', 'Z']);
  assert.deepEqual(got.secretEnv, { PW: { secret: 'db', key: 'url' } });
  assert.deepEqual(got.links, ['db']);
});

test('checkEnv: an undeclared secret key names the declared ones', () => {
  const r = recorder();
  const got = checkEnv({ PW: { $ref: 'secret', secret: 'db', key: 'pasword' } }, context(r.report), r.report);
  assert.deepEqual(got.secretEnv, {});
  assert.equal(only(r.list, /secret "db" has no key "pasword"/).where, 'env.PW');
});

test('envEntryBytes counts KEY=value in UTF-8 bytes with the terminating NUL', () => {
  assert.equal(envEntryBytes('A', 'b'), 4);
  assert.equal(envEntryBytes('A', 'é'), 5);
  assert.equal(MAX_ARG_STRLEN, 128 * 1024);
  assert.equal(envEntryFits('A', 'x'.repeat(MAX_ARG_STRLEN - 3)), true);
  assert.equal(envEntryFits('A', 'x'.repeat(MAX_ARG_STRLEN - 2)), false);
});

test('checkEnv: a variable at the kernel limit passes; one byte more is rejected with where and fix', () => {
  const key = 'BIG';
  const fits = 'x'.repeat(MAX_ARG_STRLEN - key.length - 2); // KEY=value plus NUL is exactly 131072
  const r = recorder();
  const ok = checkEnv({ [key]: fits }, context(r.report), r.report);
  none(r.list);
  assert.equal(ok.env[key], fits);

  const r2 = recorder();
  const tooLong = checkEnv({ [key]: fits + 'x', SMALL: 'ok' }, context(r2.report), r2.report);
  const p = only(r2.list, /Linux allows one environment variable at most 131071 bytes/);
  assert.equal(p.where, 'env.BIG');
  assert.match(p.message, /the variable is 131072 bytes as BIG=…/);
  assert.match(p.fix!, /put the content in a file .*volumes.*files/);
  assert.equal(tooLong.env[key], undefined, 'the oversized value does not enter the spec');
  assert.equal(tooLong.env.SMALL, 'ok');
});

test('checkEnv: the limit counts bytes, not characters (multi-byte text)', () => {
  const r = recorder();
  // 'é' is 2 bytes: 65535 of them are 131070 bytes, plus "E=" and NUL is 131073.
  checkEnv({ E: 'é'.repeat(65535) }, context(r.report), r.report);
  only(r.list, /at most 131071 bytes/);
  const r2 = recorder();
  checkEnv({ E: 'é'.repeat(65534) }, context(r2.report), r2.report);
  none(r2.list);
});

test('buildGraph: an oversized env value is a problem of the service file, before anything runs', () => {
  const repo: LoadedRepo = {
    root: '/srv/repo',
    configFile: 'waffle.config.ts',
    config: { project: 'demo' },
    services: [{ name: 'api', file: 'services/api.ts', data: { image: 'busybox', env: { CERT: 'x'.repeat(200 * 1024) } } }],
    inputs: [],
  };
  let err: unknown;
  try {
    buildGraph(repo);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ProblemsError, String(err));
  assert.equal(err.problems.length, 1);
  const text = formatProblem(err.problems[0]);
  assert.match(text, /^services\/api\.ts: service "api": env\.CERT: the variable is 204805 bytes/);
  assert.match(text, /MAX_ARG_STRLEN/);
  assert.match(text, /fix: put the content in a file/);
});
