/**
 * The secrets session against the provider interface alone (a provider written here, no age store, no
 * Vault): deferred generation through readStored/storeGenerated, the problem for a missing value, and
 * providers that only resolve.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildGraph } from '../runtime/graph/graph.ts';
import type { LoadedRepo } from '../runtime/model.ts';
import { ProblemsError } from '../runtime/problems.ts';
import type { ResolvedSecret, SecretDecl, SecretProvider, StoredValues } from '../runtime/secrets/provider.ts';
import type { ProviderRegistry } from '../runtime/secrets/registry.ts';
import { SecretsSession } from '../runtime/secrets/session.ts';

const state = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-session-'));
after(() => fs.rmSync(state, { recursive: true, force: true }));
const env = { WAFFLE_STATE_DIR: state };

function graphUsing(keys: string[], generate: Record<string, unknown> = {}) {
  const repo: LoadedRepo = {
    root: '/srv/repo-session',
    configFile: 'waffle.config.ts',
    config: { project: 'session', secrets: { app: { name: 'app', provider: 'embedded', keys, generate } } },
    services: [
      {
        name: 'api',
        file: 'services/api.ts',
        data: { image: 'busybox', env: Object.fromEntries(keys.map((k) => [k.toUpperCase(), { $ref: 'secret', secret: 'app', key: k }])) },
      },
    ],
    inputs: [],
  };
  return buildGraph(repo);
}

/** A provider with deferred generation that keeps its values in a plain object. */
class MemoryProvider implements SecretProvider {
  readonly kind = 'embedded' as const;
  readonly stored: Record<string, string>;
  readonly writes: Array<Record<string, string>> = [];
  resolveCalls = 0;
  constructor(initial: Record<string, string>) {
    this.stored = { ...initial };
  }
  async check(): Promise<void> {}
  async resolve(): Promise<ResolvedSecret> {
    this.resolveCalls++;
    throw new Error('a provider with readStored is not asked to resolve static values');
  }
  async readStored(decl: SecretDecl): Promise<StoredValues> {
    const values: Record<string, string> = {};
    const missing: string[] = [];
    for (const k of decl.keys) (this.stored[k] !== undefined ? (values[k] = this.stored[k]) : missing.push(k));
    return { values, missing, location: 'memory/app', howToSet: (keys) => `memory-set ${keys.join(',')}` };
  }
  async storeGenerated(_decl: SecretDecl, generated: Record<string, string>): Promise<void> {
    this.writes.push({ ...generated });
    Object.assign(this.stored, generated);
  }
}

const registryOf = (p: SecretProvider) => ({ for: async () => p, kind: async () => p }) as unknown as ProviderRegistry;

test('deferred generation: generated in memory at plan time, stored through the interface at apply time', async () => {
  const provider = new MemoryProvider({ token: 't0' });
  const graph = graphUsing(['token', 'gen'], { gen: { format: 'hex', length: 12 } });
  const session = await SecretsSession.open(graph, { env, registry: registryOf(provider) });
  assert.ok(session);
  assert.deepEqual(session.generated, [{ secret: 'app', key: 'gen' }]);
  assert.deepEqual(provider.writes, [], 'opening the session (a plan) stores nothing');
  const { values } = await session.valuesFor('api');
  const gen = values.get('app')!.get('gen')!;
  assert.match(gen, /^[0-9a-f]{12}$/);
  assert.equal(values.get('app')!.get('token'), 't0');
  assert.deepEqual(await session.persistGenerated(), [{ secret: 'app', key: 'gen' }]);
  assert.deepEqual(provider.writes, [{ gen }], 'the value the containers got is the value stored');
  assert.equal(provider.resolveCalls, 0);
  assert.deepEqual(await session.persistGenerated(), [], 'stored once');
});

test('a used key without value and without generate: a problem at the location the provider names, with its fix', async () => {
  const provider = new MemoryProvider({});
  await assert.rejects(SecretsSession.open(graphUsing(['token']), { env, registry: registryOf(provider) }), (e: unknown) => {
    assert.ok(e instanceof ProblemsError, String(e));
    assert.equal(e.problems.length, 1);
    assert.equal(e.problems[0].file, 'memory/app');
    assert.match(e.problems[0].message, /secret "app" has no value for "token", which is used by "api" \(services\/api\.ts\)/);
    assert.equal(e.problems[0].fix, 'memory-set token');
    return true;
  });
});

test('a provider without readStored is asked to resolve its static values', async () => {
  const provider: SecretProvider = {
    kind: 'vault',
    async check() {},
    async resolve(decl, ctx) {
      assert.equal(ctx.service, '*', 'static values are resolved once for every service');
      return { values: Object.fromEntries(decl.keys.map((k) => [k, `${k}-value`])) };
    },
  };
  const session = await SecretsSession.open(graphUsing(['token']), { env, registry: registryOf(provider) });
  const { values } = await session!.valuesFor('api');
  assert.equal(values.get('app')!.get('token'), 'token-value');
  assert.deepEqual(await session!.persistGenerated(), []);
});

test('a secret value too long for one environment variable is a problem of the service, naming the size, never the value', async () => {
  const big = 'S3cr3t'.repeat(30_000); // 180000 bytes
  const provider = new MemoryProvider({ token: big });
  await assert.rejects(SecretsSession.open(graphUsing(['token']), { env, registry: registryOf(provider) }), (e: unknown) => {
    assert.ok(e instanceof ProblemsError, String(e));
    assert.equal(e.problems.length, 1);
    const p = e.problems[0];
    assert.equal(p.file, 'services/api.ts');
    assert.equal(p.service, 'api');
    assert.equal(p.where, 'env.TOKEN');
    assert.match(p.message, /secrets\.app\.token is 180006 bytes as TOKEN=…; Linux allows one environment variable at most 131071 bytes/);
    assert.match(p.fix!, /files: \{ '\/run\/secrets\/app_token': secrets\.app\.token \}/);
    assert.doesNotMatch(e.message, /S3cr3t/);
    return true;
  });
  // the same value fits when it is short enough
  const fits = new MemoryProvider({ token: 'x'.repeat(131071 - 'TOKEN='.length) });
  assert.ok(await SecretsSession.open(graphUsing(['token']), { env, registry: registryOf(fits) }));
});
