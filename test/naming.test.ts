/**
 * Service names of files in subfolders. By default a service is named after its file only
 * (`services/application-portal/sync.ts` → `sync`), so two files of one name in different folders
 * collide, and the problem says why and offers `naming: 'path'`; with it, a service is named by its
 * path below the services folder (`application-portal-sync`). An explicit `name` always wins.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { typecheck } from '../runtime/check/typecheck.ts';
import { buildGraph } from '../runtime/graph/graph.ts';
import { loadRepo } from '../runtime/load/load.ts';
import type { Problem, ServiceGraph } from '../runtime/model.ts';
import { defaultServiceName, globBase, serviceNameFromPath } from '../runtime/naming.ts';
import { formatProblem, ProblemsError } from '../runtime/problems.ts';
import { cleanupProject, dockerClient, makeRepo, planFromJson, uniqueProject, waffle } from './helpers.ts';

const made: string[] = [];
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

function repo(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'waffle-naming-'));
  made.push(root);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  }
  return root;
}

async function graphOf(root: string): Promise<ServiceGraph> {
  return buildGraph(await loadRepo(root));
}

async function problemsOf(root: string): Promise<{ problems: Problem[]; text: string }> {
  try {
    await graphOf(root);
  } catch (e) {
    assert.ok(e instanceof ProblemsError, `expected ProblemsError, got ${String(e)}`);
    return { problems: e.problems, text: e.message };
  }
  assert.fail('expected problems');
}

const config = (extra: string, project = 'naming') =>
  `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({\n  project: '${project}',\n  services: ['services/**/*.ts'],\n${extra}});\n`;
const service = (body: string, imports = '') => `import { defineService } from 'wafflemaker';\n${imports}\nexport default defineService({\n${body}\n});\n`;

/** The application of a team: two applications with a `sync` worker each, one depending on the api. */
const files = {
  'services/api.ts': service(`  image: 'waffle-test/app:1',`),
  'services/application-portal/sync.ts': service(`  image: 'waffle-test/app:1',\n  dependsOn: [api],`, `import api from '../api';`),
  'services/billing/sync.ts': service(`  image: 'waffle-test/app:1',`),
  'services/billing/invoices/render.ts': service(`  image: 'waffle-test/app:1',\n  connects: [sync],`, `import sync from '../../application-portal/sync';`),
};

describe('the name of a file below the services folder', () => {
  test('by file (the default) and by path', () => {
    const globs = ['services/**/*.ts'];
    assert.equal(defaultServiceName('services/application-portal/sync.ts', undefined, globs), 'sync');
    assert.equal(defaultServiceName('services/application-portal/sync.ts', 'file', globs), 'sync');
    assert.equal(defaultServiceName('services/application-portal/sync.ts', 'path', globs), 'application-portal-sync');
    assert.equal(defaultServiceName('services/api.ts', 'path', globs), 'api');
    assert.equal(defaultServiceName('services/a/b/c.mts', 'path', globs), 'a-b-c');
  });
  test('the path is taken below the deepest folder a glob starts from', () => {
    assert.equal(globBase('services/**/*.ts'), 'services');
    assert.equal(globBase('./apps/*/service.ts'), 'apps');
    assert.equal(globBase('**/*.ts'), '');
    assert.equal(serviceNameFromPath('apps/portal/service.ts', ['apps/*/service.ts']), 'portal-service');
    assert.equal(serviceNameFromPath('deploy/services/web.ts', ['deploy/*.ts', 'deploy/services/*.ts']), 'web');
    assert.equal(serviceNameFromPath('infra/db.ts', ['**/*.ts']), 'infra-db');
  });
});

describe('a repository with services in subfolders', () => {
  test('by file: two sync.ts collide, and the problem says why and how to fix it (at the defineService call)', async () => {
    const root = repo({ 'waffle.config.ts': config(''), ...files });
    const { problems, text } = await problemsOf(root);
    const twice = problems.filter((p) => /is used twice/.test(p.message));
    assert.equal(twice.length, 1, text);
    const p = twice[0]!;
    assert.equal(p.file, 'services/billing/sync.ts');
    assert.equal(p.service, 'sync');
    assert.match(p.message, /service name "sync" is used twice: in services\/application-portal\/sync\.ts and in services\/billing\/sync\.ts/);
    assert.match(p.message, /two files in different folders got the same name: a service without `name` is named after its file only, not its folder/);
    assert.equal(
      p.fix,
      "set `name` in one of them, or name services by their path: naming: 'path' in waffle.config.ts " +
        '(services/application-portal/sync.ts → application-portal-sync, services/billing/sync.ts → billing-sync)',
    );
    assert.equal(p.loc, '3:16', formatProblem(p));
  });

  test("naming: 'path': every service by its path, references resolved to those names", async () => {
    const root = repo({ 'waffle.config.ts': config("  naming: 'path',\n"), ...files });
    const g = await graphOf(root);
    assert.deepEqual(Object.keys(g.services), ['api', 'application-portal-sync', 'billing-invoices-render', 'billing-sync']);
    assert.deepEqual(g.services['application-portal-sync']!.dependsOn, [{ service: 'api', condition: 'started' }]);
    assert.deepEqual(g.services['billing-invoices-render']!.links, ['application-portal-sync']);
    assert.equal(g.services['billing-sync']!.file, 'services/billing/sync.ts');
  });

  test('an explicit name still wins', async () => {
    const root = repo({
      'waffle.config.ts': config("  naming: 'path',\n"),
      ...files,
      'services/billing/sync.ts': service(`  name: 'ledger',\n  image: 'waffle-test/app:1',`),
    });
    const g = await graphOf(root);
    assert.deepEqual(Object.keys(g.services), ['api', 'application-portal-sync', 'billing-invoices-render', 'ledger']);
  });

  test('with names by path, problems found while loading carry the path name too', async () => {
    const root = repo({
      'waffle.config.ts': config("  naming: 'path',\n"),
      ...files,
      'services/billing/sync.ts': `import { defineService } from 'wafflemaker';\nthrow new Error('broken');\nexport default defineService({ image: 'a:1' });\n`,
    });
    const { problems } = await problemsOf(root);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.service, 'billing-sync');
  });

  test('naming must be file or path: the graph says so at its line in the config', async () => {
    const cfg = config("  naming: 'folder' as never,\n");
    const root = repo({ 'waffle.config.ts': cfg, 'services/api.ts': files['services/api.ts'] });
    const { problems } = await problemsOf(root);
    assert.equal(problems.length, 1, problems.map(formatProblem).join('\n'));
    const p = problems[0]!;
    assert.equal(p.file, 'waffle.config.ts');
    assert.equal(p.where, 'naming');
    assert.match(p.message, /naming "folder" must be 'file' or 'path'/);
    assert.match(p.fix!, /naming: 'path' names services\/portal\/sync\.ts `portal-sync`/);
    assert.equal(p.loc, '5:3');
  });

  test("the type-check labels a file's errors with the name the loader gives it", async () => {
    const broken = service(`  image: 42,`);
    const byPath = await typecheck(repo({ 'waffle.config.ts': config("  naming: 'path',\n"), 'services/billing/sync.ts': broken }));
    assert.ok(byPath.length > 0);
    assert.ok(byPath.every((p) => p.service === 'billing-sync'), byPath.map(formatProblem).join('\n'));
    const byFile = await typecheck(repo({ 'waffle.config.ts': config(''), 'services/billing/sync.ts': broken }));
    assert.ok(byFile.length > 0 && byFile.every((p) => p.service === 'sync'), byFile.map(formatProblem).join('\n'));
  });
});

describe('the CLI on a real repository (waffle check, waffle plan)', () => {
  const project = uniqueProject('naming');
  let root: string;
  before(() => {
    root = makeRepo({ 'waffle.config.ts': config("  naming: 'path',\n", project), ...files }, { git: true });
    made.push(root);
  });
  after(async () => {
    await cleanupProject(await dockerClient(), project);
  });

  test('check --json: the graph has the path names', async () => {
    const r = await waffle(['check', '--json'], { cwd: root });
    assert.equal(r.code, 0, r.stderr);
    const g = JSON.parse(r.stdout) as ServiceGraph;
    assert.deepEqual(Object.keys(g.services), ['api', 'application-portal-sync', 'billing-invoices-render', 'billing-sync']);
    assert.match(r.stderr, /ok: project .*, 4 services/);
  });

  test('plan --json: it would create containers named by path', async () => {
    const r = await waffle(['plan', '--json'], { cwd: root });
    assert.equal(r.code, 0, r.stderr);
    const created = planFromJson(r.stdout)
      .operations.filter((o) => o.kind === 'create-service')
      .map((o) => (o as { service: string }).service)
      .sort();
    assert.deepEqual(created, ['api', 'application-portal-sync', 'billing-invoices-render', 'billing-sync']);
  });

  test('without naming: check fails with the collision, its line and the fix', async () => {
    const other = makeRepo({ 'waffle.config.ts': config('', project), ...files }, { git: true });
    made.push(other);
    const r = await waffle(['check'], { cwd: other });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /services\/billing\/sync\.ts:3:16: service "sync": name: service name "sync" is used twice/);
    assert.match(r.stderr, /fix: set `name` in one of them, or name services by their path: naming: 'path' in waffle\.config\.ts/);
  });
});
