/**
 * Bad input: every broken repository exits non-zero with a message naming the file and the service,
 * and leaves Docker exactly as it was (a running deployment of the same project is not touched).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, makeRepo, parseNdjson, snapshot, uniqueProject, waffle, type Snapshot } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';

const project = uniqueProject('bad');
let docker: Dockerode;
let baseline: Snapshot;
const dirs: string[] = [];

const config = (extra = '') => `import { defineConfig } from 'wafflemaker';
export default defineConfig({ project: '${project}'${extra} });
`;

const svc = (body: string, imports = '') => `import { defineService } from 'wafflemaker';
${imports}
export default defineService({
${body}
});
`;

const good = svc(`  image: '${TEST_IMAGES.appV1}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,`);

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  const repo = makeRepo({ 'waffle.config.ts': config(), 'services/api.ts': good }, { git: true });
  dirs.push(repo);
  const r = await waffle(['apply', '--yes'], { cwd: repo });
  assert.equal(r.code, 0, r.stderr);
  baseline = await snapshot(docker, project);
  assert.equal(baseline.containers.length, 1);
});

after(async () => {
  await cleanupProject(docker, project);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

interface Case {
  name: string;
  files: Record<string, string>;
  /** Each must appear in stderr. */
  expect: RegExp[];
  args?: string[];
}

const cases: Case[] = [
  {
    name: 'syntax error',
    files: { 'services/api.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({\n  image: 'x:1',,\n});\n` },
    expect: [/services\/api\.ts:3:\d+/, /api/],
  },
  {
    name: 'throw at top level',
    files: { 'services/api.ts': `import { defineService } from 'wafflemaker';\nconst port = 8080;\nthrow new Error('no config for ' + port);\nexport default defineService({ image: 'x:1' });\n` },
    expect: [/services\/api\.ts:3:\d+/, /no config for 8080/, /api/],
  },
  {
    name: 'infinite loop',
    files: { 'services/api.ts': `import { defineService } from 'wafflemaker';\nwhile (true) {}\nexport default defineService({ image: 'x:1' });\n` },
    args: ['--load-timeout', '1500'],
    expect: [/services\/api\.ts/, /api/, /(time|finish|limit)/i],
  },
  {
    name: 'process.exit in a definition',
    files: { 'services/api.ts': `import { defineService } from 'wafflemaker';\nprocess.exit(0);\nexport default defineService({ image: 'x:1' });\n` },
    expect: [/services\/api\.ts/, /process\.exit/, /api/],
  },
  {
    name: 'missing image',
    files: { 'services/api.ts': svc(`  port: 8080,`) },
    // No image field to point at: the line of the defineService call.
    expect: [/services\/api\.ts:3:16: service "api"/, /image/],
  },
  {
    name: 'dependency cycle',
    files: {
      'services/api.ts': svc(`  image: 'a:1',\n  dependsOn: [db],`, `import db from './db';`),
      'services/db.ts': svc(`  image: 'b:1',\n  dependsOn: [api],`, `import api from './api';`),
    },
    expect: [/cycle/i, /services\/(api|db)\.ts/, /(api → db → api|db → api → db)/],
  },
  {
    name: 'duplicate name',
    files: { 'services/api.ts': good, 'services/api2.ts': svc(`  name: 'api',\n  image: 'b:1',`) },
    expect: [/services\/api2\.ts/, /services\/api\.ts/, /service "api"/, /duplicate|already|unique|used twice/i],
  },
  {
    name: 'host port clash',
    files: {
      'services/api.ts': svc(`  image: 'a:1',\n  ports: ['18080:80'],`),
      'services/web.ts': svc(`  image: 'b:1',\n  ports: ['18080:8080'],`),
    },
    expect: [/18080/, /services\/(api|web)\.ts:5:\d+: service "(api|web)": ports\[0\]/],
  },
  {
    name: 'unknown dependency (a service outside the project)',
    files: {
      'services/api.ts': svc(`  image: 'a:1',\n  dependsOn: [extra],`, `import extra from '../lib/extra';`),
      'lib/extra.ts': svc(`  image: 'b:1',`),
    },
    expect: [/services\/api\.ts/, /service "api"/, /dependsOn/, /not part of the project/i],
  },
  {
    name: 'bad service name',
    files: { 'services/api.ts': svc(`  name: 'My_Service',\n  image: 'a:1',`) },
    expect: [/services\/api\.ts/, /My_Service/, /name/i],
  },
  {
    name: 'non-serialisable value',
    files: { 'services/api.ts': svc(`  image: 'a:1',\n  env: { BUILD: (() => 'x') as unknown as string },`) },
    expect: [/services\/api\.ts/, /api/, /env\.BUILD/],
  },
  {
    name: 'invalid image reference',
    files: { 'services/api.ts': svc(`  image: 'Not A/Valid::Image',`) },
    expect: [/services\/api\.ts/, /service "api"/, /image/],
  },
  {
    name: 'healthy dependency without a healthcheck',
    files: {
      'services/api.ts': svc(`  image: 'a:1',\n  dependsOn: [{ service: db, condition: 'healthy' }],`, `import db from './db';`),
      'services/db.ts': svc(`  image: 'b:1',`),
    },
    expect: [/services\/api\.ts:5:\d+: service "api": dependsOn\[0\]\.condition/, /healthcheck/],
  },
  {
    name: 'misspelt field',
    files: { 'services/api.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: 'a:1', envv: { A: '1' } } as never);\n` },
    expect: [/services\/api\.ts:2:\d+: service "api": envv/, /env/],
  },
  {
    name: 'port out of range',
    files: { 'services/api.ts': svc(`  image: 'a:1',\n  ports: ['99999:80' as never],`) },
    expect: [/services\/api\.ts/, /service "api"/, /99999/],
  },
  {
    name: 'unparseable duration',
    files: { 'services/api.ts': svc(`  image: 'a:1',\n  healthcheck: { command: 'true', interval: 'five seconds' as never },`) },
    expect: [/services\/api\.ts:5:\d+: service "api": healthcheck\.interval/],
  },
  {
    name: 'file without a default export',
    files: { 'services/api.ts': `import { defineService } from 'wafflemaker';\nexport const api = defineService({ image: 'a:1' });\n` },
    expect: [/services\/api\.ts/, /default/],
  },
  {
    name: 'import of a missing module',
    files: { 'services/api.ts': svc(`  image: 'a:1',`, `import './does-not-exist';`) },
    expect: [/services\/api\.ts/, /does-not-exist/],
  },
  {
    name: 'reserved label',
    files: { 'services/api.ts': svc(`  image: 'a:1',\n  labels: { 'dev.wafflemaker.project': 'other' },`) },
    expect: [/services\/api\.ts/, /service "api"/, /dev\.wafflemaker\./],
  },
  {
    name: 'image that cannot be pulled',
    files: { 'services/api.ts': svc(`  image: '127.0.0.1:9/waffle/missing:404',\n  port: 8080,`) },
    expect: [/127\.0\.0\.1:9\/waffle\/missing:404/, /api/],
  },
];

describe('bad input leaves Docker untouched', () => {
  for (const c of cases) {
    test(c.name, async () => {
      const files = { 'waffle.config.ts': config(), ...c.files };
      const repo = makeRepo(files, { git: true });
      dirs.push(repo);
      const r = await waffle([...(c.args ?? []), 'apply', '--yes'], { cwd: repo });
      assert.notEqual(r.code, 0, `exit code 0; stderr: ${r.stderr}`);
      for (const re of c.expect) assert.match(r.stderr, re);
      assert.deepEqual(await snapshot(docker, project), baseline, 'Docker changed');
      assert.deepEqual(fs.existsSync(`${repo}/.waffle/tmp`) ? fs.readdirSync(`${repo}/.waffle/tmp`) : [], [], 'temp files left');
    });
  }
  test('the suite covers at least 15 kinds of broken repository', () => {
    assert.ok(cases.length >= 15, `${cases.length} cases`);
  });
});

test('plan --json of a broken repository: stdout is NDJSON ending in a run-failed event that names each problem\'s file and service; exit 1', async () => {
  const repo = makeRepo(
    {
      'waffle.config.ts': config(),
      'services/api.ts': svc(`  image: 'a:1',\n  ports: ['127.0.0.1:8080:80'],`),
      'services/web.ts': svc(`  image: 'a:1',\n  ports: ['127.0.0.1:8080:80'],\n  dependsOn: ['nope' as never],`),
      'services/cache.ts': svc(`  image: '',`),
    },
    { git: true },
  );
  dirs.push(repo);
  const r = await waffle(['plan', '--json'], { cwd: repo });
  assert.equal(r.code, 1, r.stderr);
  const lines = parseNdjson(r.stdout);
  lines.forEach((e, i) => {
    assert.equal(typeof e.run, 'string');
    assert.equal(e.seq, i + 1);
  });
  const failed = lines.at(-1)!;
  assert.equal(failed.type, 'run-failed');
  assert.equal(failed.stage, 'validate');
  assert.equal(failed.project, project);
  const problems = failed.problems as Array<{ file: string; service?: string; message: string; fix?: string }>;
  assert.ok(problems.length >= 3, JSON.stringify(problems));
  for (const p of problems) {
    assert.match(p.file, /^services\/(api|web|cache)\.ts$/, JSON.stringify(p));
    assert.equal(p.service, p.file.slice('services/'.length, -'.ts'.length), JSON.stringify(p));
    assert.ok(p.message.length > 0);
  }
  assert.deepEqual([...new Set(problems.map((p) => p.service))].sort(), ['cache', 'web']);
  // The people reading stderr get the same problems as text.
  assert.match(r.stderr, /services\/web\.ts/);
  assert.deepEqual(await snapshot(docker, project), baseline, 'Docker changed');
});
