import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadRepo } from '../runtime/load/load.ts';

// Where each service's defineService call is (`definedAt`), as the evaluation process reports it.

const made: string[] = [];
after(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

const CONFIG = `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 'demo' });\n`;

function repo(parentName: string, files: Record<string, string>): string {
  const parent = mkdtempSync(path.join(os.tmpdir(), 'waffle-defined-at-'));
  made.push(parent);
  const root = path.join(parent, parentName);
  for (const [rel, text] of Object.entries({ 'waffle.config.ts': CONFIG, ...files })) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  }
  return root;
}

test('definedAt is the call relative to the root, in a root whose path a file URL percent-encodes, and through a helper', async () => {
  const root = repo('my repo ä', {
    'services/web.ts': `import { defineService } from 'wafflemaker';\n\nexport default defineService({ image: 'web:1' });\n`,
    'services/api-v2.ts': `import { make } from '../lib/make.ts';\nexport default make('api:2');\n`,
    'lib/make.ts': `import { defineService } from 'wafflemaker';\nexport function make(image: string) {\n  return   defineService({ image });\n}\n`,
    'services/db.ts': `import { defineService } from 'wafflemaker';\nimport web from './web.ts';\nexport default defineService({ image: 'db:1', env: { WEB: web.url() } });\n`,
  });
  const loaded = await loadRepo(root);
  const at = Object.fromEntries(loaded.services.map((s) => [s.name, s.definedAt]));
  assert.deepEqual(at, { 'api-v2': 'lib/make.ts:3:12', db: 'services/db.ts:3:16', web: 'services/web.ts:3:16' });
  const db = loaded.services.find((s) => s.name === 'db')!;
  assert.deepEqual((db.data.env as Record<string, unknown>).WEB, { $ref: 'service-url', service: 'web', definedAt: 'services/web.ts:3:16', path: '', scheme: 'http' });
});

test("a file that lowers Error.stackTraceLimit below the caller's frame, or formats stacks itself, gets what that stack says", async () => {
  const root = repo('repo', {
    // Two frames only (capture, defineService): the call is not in the stack.
    'services/a.ts':
      `import { defineService } from 'wafflemaker';\nError.stackTraceLimit = 2;\nconst s = defineService({ image: 'a:1' });\nError.stackTraceLimit = 10;\nexport default s;\n`,
    // Its own formatter: the call site is read from what it returns.
    'services/b.ts':
      `import { defineService } from 'wafflemaker';\nconst before = Error.prepareStackTrace;\n` +
      `Error.prepareStackTrace = (e, sites) => 'Error\\n' + sites.map((s, i) => '    at ' + (i === 2 ? process.cwd() + '/lib/elsewhere.ts:7:9' : 'x')).join('\\n');\n` +
      `const s = defineService({ image: 'b:1' });\nError.prepareStackTrace = before;\nexport default s;\n`,
    'services/c.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: 'c:1' });\n`,
  });
  const loaded = await loadRepo(root);
  const at = Object.fromEntries(loaded.services.map((s) => [s.name, s.definedAt]));
  assert.deepEqual(at, { a: undefined, b: 'lib/elsewhere.ts:7:9', c: 'services/c.ts:2:16' });
});
