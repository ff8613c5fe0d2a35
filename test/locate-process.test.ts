/**
 * Problems placed at their field's line by a child process (what the agent's engine does, so it never
 * loads the TypeScript parser): the same positions as in this process, through the real loader and
 * graph, and for problems handed over directly.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, test } from 'node:test';
import { buildGraph } from '../runtime/graph/graph.ts';
import { loadRepo } from '../runtime/load/load.ts';
import { locateProblems } from '../runtime/locate.ts';
import { locateProblemsInChild } from '../runtime/locate-process.ts';
import type { Problem } from '../runtime/model.ts';
import { ProblemsError } from '../runtime/problems.ts';
import { makeRepo } from './helpers.ts';

const repo = makeRepo({
  'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({\n  project: 'locchild',\n});\n`,
  'services/api.ts': `import { defineService } from 'wafflemaker';\n\nexport default defineService({\n  image: 'app:1',\n  ports: ['8080:80'],\n  restart: 'sometimes' as any,\n  healthcheck: { http: '/health', interval: 'often' as any },\n});\n`,
  'services/web.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({\n  image: 'web:1',\n  ports: ['8080:80'],\n});\n`,
});
after(() => fs.rmSync(repo, { recursive: true, force: true }));

const copy = (ps: Problem[]) => ps.map((p) => ({ ...p }));
const typescriptLoaded = () => Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes(`${path.sep}node_modules${path.sep}typescript${path.sep}`));

test('the graph of a repository with problems: each placed at its line, as in this process', async () => {
  const loaded = await loadRepo(repo);
  let inChild: Problem[] = [];
  assert.throws(
    () => buildGraph(loaded, { locate: locateProblemsInChild }),
    (e: unknown) => {
      inChild = (e as ProblemsError).problems;
      return e instanceof ProblemsError;
    },
  );
  // The child placed them: this process has not loaded the TypeScript parser.
  assert.equal(typescriptLoaded(), false);
  const inProcess = (() => {
    try {
      buildGraph(loaded);
    } catch (e) {
      return (e as ProblemsError).problems;
    }
    assert.fail('the graph was built');
  })();
  assert.equal(typescriptLoaded(), true);
  assert.deepEqual(inChild, inProcess);
  const restart = inChild.find((p) => p.where === 'restart');
  assert.equal(restart?.loc, '6:3');
  assert.equal(inChild.find((p) => p.where === 'healthcheck.interval')?.loc, '7:35');
});

test('problems handed over: config and service fields, a field not written out, one already placed', () => {
  const definedAt = new Map([['services/api.ts', 'services/api.ts:3:16']]);
  const problems: Problem[] = [
    { file: 'waffle.config.ts', where: 'project', message: 'bad project' },
    { file: 'services/api.ts', where: 'image', message: 'bad image' },
    { file: 'services/api.ts', where: 'volumes', message: 'not written: the call' },
    { file: 'services/api.ts', message: 'the whole definition' },
    { file: 'services/api.ts', where: '4:3', message: 'already placed' },
    { file: 'services/gone.ts', where: 'image', message: 'no such file' },
  ];
  const scope = { root: repo, configFile: 'waffle.config.ts', definedAt };
  const expected = locateProblems(copy(problems), scope);
  const got = locateProblemsInChild(copy(problems), scope);
  assert.deepEqual(got, expected);
  assert.deepEqual(
    got.map((p) => p.loc),
    ['3:3', '4:3', '3:16', '3:16', undefined, undefined],
  );
});
