/**
 * One repository, one configuration file per environment (`-c, --config <file>`): each is checked on its
 * own and yields its own graph, services globs stay relative to the repository root, and a file named
 * with -c that does not exist is an error naming it. The README's pattern for environments is checked
 * like user code, with each of its configurations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeRepo, PKG_ROOT, waffle } from './helpers.ts';

const base = `import { defineSecrets, type ProjectConfig } from 'wafflemaker';
export const secrets = defineSecrets({ db: { provider: 'embedded', keys: ['password'] } });
export const base = { services: ['services/*.ts'], defaults: { restart: 'unless-stopped' } } satisfies Partial<ProjectConfig>;
`;
const staging = `import { defineConfig } from 'wafflemaker';
import { base, secrets } from './config/base';
export default defineConfig({ ...base, project: 'envs-staging', secrets });
`;
const prod = `import { defineConfig, defineSecrets } from 'wafflemaker';
import { base } from '../config/base';
export default defineConfig({
  ...base,
  project: 'envs-prod',
  secrets: defineSecrets({ db: { provider: 'vault', engine: 'kv', path: 'envs/db', keys: ['password'] } }),
  vault: { address: 'http://127.0.0.1:1', auth: { token: { env: 'VAULT_TOKEN' } } },
});
`;
const api = `import { defineService } from 'wafflemaker';
import { secrets } from '../config/base';
export default defineService({ image: 'example/api:1', env: { DB_PASSWORD: secrets.db.password } });
`;

type Graph = { project: string; configFile: string; services: Record<string, unknown>; secrets?: Record<string, { provider: string }> };

test('two environment configurations: each passes waffle check -c and gives its own graph', async () => {
  // prod lives in a folder of its own: its services glob still counts from the repository root.
  const repo = makeRepo({ 'config/base.ts': base, 'waffle.staging.ts': staging, 'envs/prod.ts': prod, 'services/api.ts': api });
  try {
    const s = await waffle(['check', '--json', '-c', 'waffle.staging.ts'], { cwd: repo });
    assert.equal(s.code, 0, s.stderr + s.stdout);
    // The option is global: before the command too, and with --config.
    const p = await waffle(['--config', 'envs/prod.ts', 'check', '--json'], { cwd: repo });
    assert.equal(p.code, 0, p.stderr + p.stdout);
    const gs = JSON.parse(s.stdout) as Graph;
    const gp = JSON.parse(p.stdout) as Graph;
    assert.equal(gs.project, 'envs-staging');
    assert.equal(gp.project, 'envs-prod');
    assert.equal(gs.configFile, 'waffle.staging.ts');
    assert.equal(gp.configFile, 'envs/prod.ts');
    assert.deepEqual(Object.keys(gs.services), ['api']);
    assert.deepEqual(Object.keys(gp.services), ['api']);
    assert.equal(gs.secrets?.db?.provider, 'embedded');
    assert.equal(gp.secrets?.db?.provider, 'vault');
    assert.match(s.stderr, /ok: project envs-staging, 1 service/);
    assert.match(p.stderr, /ok: project envs-prod, 1 service/);

    // The type-check runs over the configuration named (tsconfig-less repo): a type error in it fails check.
    fs.writeFileSync(path.join(repo, 'envs/prod.ts'), prod.replace("project: 'envs-prod'", 'project: 42'));
    const bad = await waffle(['check', '-c', 'envs/prod.ts'], { cwd: repo });
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, /envs\/prod\.ts:5:\d+: type error/);

    // An environment that does not declare a key the services use fails its check, naming the key.
    fs.writeFileSync(path.join(repo, 'envs/prod.ts'), prod.replace("keys: ['password']", "keys: ['pass']"));
    const undeclared = await waffle(['check', '--no-types', '-c', 'envs/prod.ts'], { cwd: repo });
    assert.equal(undeclared.code, 1, undeclared.stderr);
    assert.match(undeclared.stderr, /services\/api\.ts.*password/s);
    assert.match(undeclared.stderr, /envs\/prod\.ts/, 'the fix names the configuration in use');
  } finally {
    fs.rmSync(repo, { recursive: true, force: true });
  }
});

test('a -c file that does not exist is an error naming it; without -c, a repository of environment files says to choose one', async () => {
  const repo = makeRepo({ 'config/base.ts': base, 'waffle.staging.ts': staging, 'services/api.ts': api });
  try {
    for (const cmd of [['check'], ['plan'], ['status'], ['secrets', 'list']]) {
      const r = await waffle([...cmd, '-c', 'waffle.prdo.ts'], { cwd: repo });
      assert.equal(r.code, 1, `${cmd.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /--config waffle\.prdo\.ts: no such file .*waffle\.prdo\.ts \(configurations here: waffle\.staging\.ts\)/, cmd.join(' '));
      assert.equal(r.stdout, '');
    }
    const none = await waffle(['check'], { cwd: repo });
    assert.equal(none.code, 1, none.stderr);
    assert.match(none.stderr, /no waffle\.config\.ts in .*; choose a configuration with -c: -c waffle\.staging\.ts/);
    const outside = await waffle(['check', '-c', '../elsewhere.ts'], { cwd: repo });
    assert.equal(outside.code, 1, outside.stderr);
    assert.match(outside.stderr, /--config \.\.\/elsewhere\.ts: the configuration must be a file inside the repository/);
  } finally {
    fs.rmSync(repo, { recursive: true, force: true });
  }
});

/** The README block that shows configurations per environment: its files by their `// path` comment. */
function readmeEnvironmentExample(): Record<string, string> {
  const text = fs.readFileSync(path.join(PKG_ROOT, 'README.md'), 'utf8');
  for (const [, block] of text.matchAll(/```ts\n([\s\S]*?)```/g)) {
    const files: Record<string, string> = {};
    let current: string | undefined;
    for (const line of block!.split('\n')) {
      const m = /^\/\/ ([\w./-]+\.ts)$/.exec(line);
      if (m) files[(current = m[1]!)] = '';
      else if (current) files[current] += line + '\n';
    }
    if (Object.keys(files).some((f) => /^waffle\.[\w-]+\.ts$/.test(f) && f !== 'waffle.config.ts')) return files;
  }
  throw new Error('README.md shows no configuration per environment (a ```ts block with // waffle.<env>.ts)');
}

test("the README's configurations per environment pass waffle check, each with its own project and secrets backend", async () => {
  const files = readmeEnvironmentExample();
  const configs = Object.keys(files).filter((f) => /^waffle\.[\w-]+\.ts$/.test(f)).sort();
  assert.deepEqual(configs, ['waffle.prod.ts', 'waffle.staging.ts']);
  const repo = makeRepo(files);
  try {
    const graphs: Graph[] = [];
    for (const c of configs) {
      // Secret values are another check's concern: this one is about the configuration as written.
      const r = await waffle(['check', '--json', '--no-secrets', '-c', c], { cwd: repo });
      assert.equal(r.code, 0, `${c}:\n${r.stderr}${r.stdout}`);
      graphs.push(JSON.parse(r.stdout) as Graph);
    }
    const [prodGraph, stagingGraph] = graphs as [Graph, Graph];
    assert.notEqual(prodGraph.project, stagingGraph.project);
    const providers = (g: Graph) => [...new Set(Object.values(g.secrets ?? {}).map((s) => s.provider))];
    assert.deepEqual(providers(prodGraph), ['vault']);
    assert.deepEqual(providers(stagingGraph), ['embedded']);
    assert.deepEqual(Object.keys(prodGraph.services), Object.keys(stagingGraph.services));
  } finally {
    fs.rmSync(repo, { recursive: true, force: true });
  }
});
