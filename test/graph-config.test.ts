/**
 * The project configuration on its own: defaults every service inherits (restart, resources, stop grace,
 * healthcheck timing, pull), evaluation settings, and the Vault settings secrets from Vault need.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkConfig } from '../runtime/graph/validate/config.ts';
import { checkEvaluation, MAX_EVALUATION_MB, MIN_EVALUATION_MB } from '../runtime/graph/validate/evaluation.ts';
import { checkLifecycle, parseResources, parseRestart } from '../runtime/graph/validate/lifecycle.ts';
import type { LoadedRepo, Problem } from '../runtime/model.ts';
import { none, only, recorder } from './graph-helpers.ts';

const repo = (config: Record<string, unknown>): LoadedRepo => ({ root: '/srv/repo', configFile: 'waffle.config.ts', config, services: [], inputs: [] });

test('checkConfig: built-in defaults', () => {
  const problems: Problem[] = [];
  const c = checkConfig(repo({ project: 'demo' }), problems);
  assert.deepEqual(problems, []);
  assert.equal(c.project, 'demo');
  assert.equal(c.parallelism, 4);
  assert.deepEqual(c.globs, ['services/*.ts']);
  assert.deepEqual(c.defaults, {
    restart: { name: 'unless-stopped', maximumRetryCount: 0 },
    stopGraceNs: 10e9,
    timing: { intervalNs: 5e9, timeoutNs: 3e9, retries: 3, startPeriodNs: 0 },
    pull: 'missing',
  });
  assert.equal(c.evaluation, undefined);
  assert.equal(c.vault, undefined);
  assert.equal(c.secretsDeclared, false);
});

test('checkConfig: project defaults and pull', () => {
  const problems: Problem[] = [];
  const c = checkConfig(
    repo({ project: 'demo', pull: 'always', defaults: { restart: 'no', resources: { memory: '64m', cpus: 2 }, stopGracePeriod: '3s', healthcheck: { retries: 7 } } }),
    problems,
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(c.defaults, {
    restart: { name: 'no', maximumRetryCount: 0 },
    stopGraceNs: 3e9,
    memory: 64 * 1024 ** 2,
    nanoCpus: 2e9,
    timing: { intervalNs: 5e9, timeoutNs: 3e9, retries: 7, startPeriodNs: 0 },
    pull: 'always',
  });
});

test('checkConfig: every problem is on the config file, with no service', () => {
  const problems: Problem[] = [];
  checkConfig(repo({ project: 'demo', pull: 'sometimes', evaluation: { env: ['1X'] }, defaults: { pull: 'always' } }), problems);
  assert.equal(problems.length, 3, JSON.stringify(problems));
  for (const p of problems) {
    assert.equal(p.file, 'waffle.config.ts');
    assert.equal(p.service, undefined);
    assert.ok(p.fix);
  }
  assert.deepEqual(problems.map((p) => p.where).sort(), ['defaults.pull', 'evaluation.env[0]', 'pull']);
  assert.match(problems.find((p) => p.where === 'defaults.pull')!.fix!, /move it: defineConfig\(\{ \.\.\., pull: 'always' \}\)/);
});

test('checkConfig: secrets from Vault without vault settings name the secrets', () => {
  const problems: Problem[] = [];
  checkConfig(repo({ project: 'demo', secrets: { pg: { name: 'pg', provider: 'vault', engine: 'database', role: 'api', keys: ['username'] } } }), problems);
  assert.equal(problems.length, 1);
  assert.equal(problems[0].where, 'vault');
  assert.match(problems[0].message, /secret "pg" comes from Vault, but no vault is configured/);
});

test('checkEvaluation: the credentials the configuration names for the deployer are refused', () => {
  const r = recorder();
  const got = checkEvaluation({ env: ['VAULT_SECRET_ID', 'REGION'] }, r.report, { VAULT_SECRET_ID: 'the Vault AppRole secret id' });
  assert.equal(got, undefined);
  assert.equal(only(r.list, /VAULT_SECRET_ID holds the Vault AppRole secret id/).where, 'evaluation.env[0]');

  const problems: Problem[] = [];
  checkConfig(
    repo({ project: 'demo', vault: { address: 'http://127.0.0.1:8200', auth: { approle: { roleId: 'r', secretIdEnv: 'SID' } } }, evaluation: { env: ['SID'] } }),
    problems,
  );
  assert.equal(problems.length, 1);
  assert.match(problems[0].message, /SID holds the Vault AppRole secret id/);
});

test('checkEvaluation: bounds of memoryMb are inclusive', () => {
  const r = recorder();
  assert.deepEqual(checkEvaluation({ memoryMb: MIN_EVALUATION_MB }, r.report), { env: [], memoryMb: MIN_EVALUATION_MB });
  assert.deepEqual(checkEvaluation({ memoryMb: MAX_EVALUATION_MB }, r.report), { env: [], memoryMb: MAX_EVALUATION_MB });
  none(r.list);
  assert.equal(checkEvaluation({ memoryMb: MIN_EVALUATION_MB - 1 }, r.report), undefined);
  assert.equal(checkEvaluation({ memoryMb: '256' }, r.report), undefined);
  assert.equal(r.list.length, 2);
  assert.match(r.list[0].fix!, /MiB, not bytes/);
});

test('lifecycle: restart, resources and stop grace fall back to the defaults', () => {
  const r = recorder();
  const defaults = { restart: { name: 'always' as const, maximumRetryCount: 0 }, memory: 1024 ** 3, stopGraceNs: 20e9 };
  assert.deepEqual(checkLifecycle({}, defaults, r.report), {
    restart: { name: 'always', maximumRetryCount: 0 },
    resources: { memory: 1024 ** 3, nanoCpus: 0 },
    stopGraceNs: 20e9,
  });
  assert.deepEqual(checkLifecycle({ restart: { policy: 'on-failure', maxRetries: 2 }, resources: { cpus: 0.25 }, stopGracePeriod: 1500 }, defaults, r.report), {
    restart: { name: 'on-failure', maximumRetryCount: 2 },
    resources: { memory: 1024 ** 3, nanoCpus: 250_000_000 },
    stopGraceNs: 1.5e9,
  });
  none(r.list);
  // invalid values are reported and the defaults kept
  assert.deepEqual(checkLifecycle({ restart: 'never', stopGracePeriod: 'soon' }, defaults, r.report).restart, defaults.restart);
  assert.match(only(r.list, /restart policy "never"/).fix!, /'unless-stopped'/);
  assert.equal(only(r.list, /"soon" is not a duration/).where, 'stopGracePeriod');
});

test('parseRestart and parseResources report where they are written', () => {
  const r = recorder();
  assert.equal(parseRestart({ policy: 'on-failure', maxRetries: 1.5 }, 'defaults.restart', r.report), undefined);
  assert.equal(only(r.list, /maxRetries 1\.5/).where, 'defaults.restart.maxRetries');
  assert.deepEqual(parseResources({ memory: '2m' }, 'defaults.resources', r.report), {});
  assert.equal(only(r.list, /below the 6 MiB/).where, 'defaults.resources.memory');
});
