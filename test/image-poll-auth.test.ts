/**
 * The tag poll against a registry that wants credentials (the real docker-registry with htpasswd basic
 * auth): the credentials come from the project's secrets (the embedded, age-encrypted store, set with
 * `waffle secrets set`), the poll finds the allowed tags; without them the registry's refusal is logged
 * naming `updates.registries`, and nothing changes. The password never appears in the log.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { History } from '../runtime/history/history.ts';
import { ImageUpdates } from '../runtime/agent/image-updates.ts';
import { registryCredentials } from '../runtime/images/credentials.ts';
import { Engine } from '../runtime/engine.ts';
import type { ServiceGraph } from '../runtime/model.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { makeRepo, uniqueProject, waffle } from './helpers.ts';
import { startRegistry, type Registry } from './registry.ts';

const DOCKER_HOST = process.env.DOCKER_HOST!;
const PASSWORD = `pw-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
const project = uniqueProject('imgauth');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-imgauth-'));
const env = { WAFFLE_AGE_IDENTITY_FILE: path.join(home, 'id', 'age.key'), WAFFLE_AGE_IDENTITY: '', WAFFLE_STATE_DIR: path.join(home, 'state') };
let registry: Registry;
let repo: string;
let graph: ServiceGraph;
let history: History;
const lines: string[] = [];
const log = { info: (m: string, f?: object) => void lines.push(`${m} ${JSON.stringify(f ?? {})}`), warn: (m: string, f?: object) => void lines.push(`${m} ${JSON.stringify(f ?? {})}`), error: (m: string, f?: object) => void lines.push(`${m} ${JSON.stringify(f ?? {})}`) };

function docker(args: string[], input?: string): void {
  // A Docker client configuration of its own: the login stays in this test's directory.
  const r = spawnSync('docker', args, { env: { ...process.env, DOCKER_HOST, DOCKER_CONFIG: path.join(home, 'docker') }, encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
  if (r.status !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr || r.stdout}`);
}

before(async () => {
  await ensureTestImages(DOCKER_HOST);
  registry = await startRegistry({ auth: { username: 'bot', password: PASSWORD } });
  docker(['login', '-u', 'bot', '--password-stdin', registry.host], PASSWORD);
  for (const tag of ['main-3', 'main-20', 'dev-99']) {
    const ref = `${registry.host}/waffle/${project}:${tag}`;
    docker(['tag', TEST_IMAGES.appV1, ref]);
    docker(['push', ref]);
    docker(['rmi', ref]);
  }
  repo = makeRepo({
    'waffle.config.ts': `import { defineConfig, defineSecrets } from 'wafflemaker';
export const secrets = defineSecrets({ registry: { provider: 'embedded', keys: ['password'] } });
export default defineConfig({
  project: '${project}',
  secrets,
  updates: { poll: '30s', registries: { '${registry.host}': { username: 'bot', password: secrets.registry.password } } },
});
`,
    'services/api.ts': `import { defineService } from 'wafflemaker';
export default defineService({ image: '${registry.host}/waffle/${project}:main-1', update: { tags: { regex: '^main-(?<n>\\\\d+)$', sortBy: 'n' } } });
`,
  });
  assert.equal((await waffle(['secrets', 'init'], { cwd: repo, env })).code, 0);
  const set = await waffle(['secrets', 'set', 'registry.password'], { cwd: repo, env, input: PASSWORD });
  assert.equal(set.code, 0, set.stderr);
  graph = await new Engine({ env: { PATH: process.env.PATH, ...env } }).load({ dir: repo });
  history = History.open(path.join(home, 'history.db'));
});

after(async () => {
  history?.close();
  await registry?.stop();
  fs.rmSync(home, { recursive: true, force: true });
  if (repo) fs.rmSync(repo, { recursive: true, force: true });
});

test('without credentials the refusal is logged naming updates.registries, and nothing changes', async () => {
  const u = new ImageUpdates({ state: history, log });
  u.start(() => assert.fail('nothing may be queued'));
  u.desired({ ...graph, updates: { pollMs: 30_000, registries: {} } });
  assert.equal(await u.poll(), undefined);
  assert.ok(lines.some((l) => /registry poll failed/.test(l) && /refused access to waffle\/.* \(set them in updates\.registries\)/.test(l)), lines.join('\n'));
  await u.stop();
});

test('with the credentials from the project secrets the poll finds the allowed tags', async () => {
  const creds = await registryCredentials(graph, registry.host, env);
  assert.deepEqual(creds, { username: 'bot', password: PASSWORD });
  const queued: string[] = [];
  const u = new ImageUpdates({ state: history, log, credentials: (g, host) => registryCredentials(g, host, env) });
  u.start((t) => (queued.push(t.reason ?? ''), { deployment: 'd1', outcome: 'deployed' }));
  u.desired(graph);
  const r = await u.poll();
  assert.equal(r?.updates[0]?.to, 'main-20');
  assert.deepEqual(queued, [`image update: api main-1 → main-20`]);
  assert.deepEqual(u.candidates(`${registry.host}/waffle/${project}`).map((c) => c.tag).sort(), ['main-20', 'main-3']);
  await u.stop();
  assert.ok(!lines.join('\n').includes(PASSWORD), 'the password is never logged');
});
