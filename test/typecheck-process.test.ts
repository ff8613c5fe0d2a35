/**
 * The type-check in a child process (what the agent's pull-request previews run): the same problems
 * as `waffle check`'s in-process type-check, with file and line; a child past its time or output
 * limit, or stopped by its signal, is killed (no process left) and the caller is told why.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';
import { typecheck } from '../runtime/check/typecheck.ts';
import { typecheckInChild, TypecheckProcessError } from '../runtime/check/typecheck-process.ts';
import { makeRepo } from './helpers.ts';

const broken = (n: number) =>
  `import { defineService } from 'wafflemaker';\nexport default defineService({\n  image: 'app:${n}',\n  command: ['sleep', '600'],\n  restart: 'sometimes',\n});\n`;

const files: Record<string, string> = {
  'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 'tcp' });\n`,
  'services/api.ts': broken(1),
};
// Enough wrong files that their problems make more output than a small bound allows.
for (let i = 0; i < 40; i++) files[`services/w${i}.ts`] = broken(i);
const repo = makeRepo(files);
const good = makeRepo({
  'waffle.config.ts': files['waffle.config.ts']!,
  'services/api.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: 'app:1' });\n`,
});

after(() => {
  fs.rmSync(repo, { recursive: true, force: true });
  fs.rmSync(good, { recursive: true, force: true });
});

/** Processes whose command line names `dir` (the child gets the repository's path as its argument). */
function processesFor(dir: string): number[] {
  const pids: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir)) pids.push(Number(p));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

test('a type error is reported with file, line and service, as the in-process type-check reports it', async () => {
  const inChild = await typecheckInChild(repo);
  const inProcess = await typecheck(repo);
  assert.deepEqual(inChild, inProcess);
  const api = inChild.find((p) => p.file === 'services/api.ts');
  assert.ok(api, JSON.stringify(inChild));
  assert.equal(api.where?.split(':')[0], '5');
  assert.equal(api.service, 'api');
  assert.match(api.message, /^type error TS2322: .*sometimes/);
  assert.deepEqual(await typecheckInChild(good), []);
});

test('more problems than the child keeps: the first ones, then one saying how many more', async () => {
  const all = await typecheck(repo);
  assert.ok(all.length > 10);
  const some = await typecheckInChild(repo, undefined, { maxProblems: 3 });
  assert.deepEqual(some.slice(0, 3), all.slice(0, 3));
  assert.equal(some.length, 4);
  assert.equal(some[3]!.message, `${all.length - 3} more type errors not shown`);
  assert.equal(some[3]!.file, 'waffle.config.ts');
});

test('a child that does not finish in time is killed and the error says so', async () => {
  // Starting the compiler alone takes longer than this.
  await assert.rejects(typecheckInChild(repo, undefined, { timeoutMs: 50 }), (e: Error) => {
    assert.ok(e instanceof TypecheckProcessError);
    assert.equal(e.message, 'the type-check did not finish within 50 ms and was stopped');
    return true;
  });
  assert.deepEqual(processesFor(repo), []);
});

test('a child that prints more than its bound is killed and the error says so', async () => {
  await assert.rejects(typecheckInChild(repo, undefined, { maxOutputBytes: 2048 }), (e: Error) => {
    assert.ok(e instanceof TypecheckProcessError);
    assert.equal(e.message, 'the type-check printed more than 2 KiB and was stopped');
    return true;
  });
  assert.deepEqual(processesFor(repo), []);
});

test('a child past its heap limit is reported as out of memory', async () => {
  await assert.rejects(typecheckInChild(repo, undefined, { memoryMb: 8 }), /^TypecheckProcessError: the type-check ran out of memory \(8 MiB\)$/);
});

test('its signal stops the child and rejects with the reason', async () => {
  const controller = new AbortController();
  const running = typecheckInChild(repo, undefined, { signal: controller.signal });
  setTimeout(() => controller.abort(new Error('superseded')), 100);
  await assert.rejects(running, /^Error: superseded$/);
  assert.deepEqual(processesFor(repo), []);
});
