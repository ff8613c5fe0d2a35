/**
 * The README's examples are checked like user code: each ```ts block starts with a `// path` comment;
 * blocks are written into a repository (missing services they import get a minimal stand-in) and
 * `waffle check` type-checks and validates them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeRepo, PKG_ROOT, waffle } from './helpers.ts';

function examples(): Array<Record<string, string>> {
  const text = fs.readFileSync(path.join(PKG_ROOT, 'README.md'), 'utf8');
  const blocks = [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
  const repos: Array<Record<string, string>> = [];
  for (const block of blocks) {
    const files: Record<string, string> = {};
    let current: string | undefined;
    for (const line of block.split('\n')) {
      const m = /^\/\/ ([\w./-]+\.ts)$/.exec(line);
      if (m) {
        current = m[1];
        files[current] = '';
      } else if (current) files[current] += line + '\n';
    }
    repos.push(files);
  }
  return repos;
}

test('every README example type-checks and validates with waffle check', async () => {
  const repos = examples();
  assert.ok(repos.length >= 2, `${repos.length} examples`);
  for (const files of repos) {
    assert.ok(Object.keys(files).length > 0, 'each example names its file');
    const all: Record<string, string> = { ...files };
    // An example with one configuration per environment (waffle.prod.ts…) is checked with each of them.
    const configs = Object.keys(files).filter((f) => /^waffle\.[\w-]+\.ts$/.test(f) && f !== 'waffle.config.ts');
    if (configs.length === 0) all['waffle.config.ts'] ??= `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 'readme' });\n`;
    // Services an example imports but does not show get a minimal stand-in.
    for (const text of Object.values(files)) {
      for (const m of text.matchAll(/import \w+ from '\.\/(\w+)'/g)) {
        all[`services/${m[1]}.ts`] ??= `import { defineService } from 'wafflemaker';\nexport default defineService({ image: 'example/${m[1]}:1', healthcheck: { command: 'true' } });\n`;
      }
    }
    const repo = makeRepo(all);
    try {
      for (const config of configs.length ? configs : [undefined]) {
        // Examples show configuration, not stored secret values.
        const r = await waffle(['check', '--no-secrets', ...(config ? ['-c', config] : [])], { cwd: repo });
        assert.equal(r.code, 0, `${Object.keys(files).join(', ')}${config ? ` (-c ${config})` : ''}:\n${r.stderr}`);
      }
    } finally {
      fs.rmSync(repo, { recursive: true, force: true });
    }
  }
});
