/**
 * Rollback against a deploy of the same change, in the same run on the same engine: a service with an
 * http healthcheck alternates between two versions; each round deploys the other version (`apply`: create,
 * health gate, switch, drain, keep the old one) and then rolls back to the version before (`rollback`:
 * restore, start, health gate, switch, drain, keep; no create, no pull), then releases the pin. Both go
 * through the engine in this process, so the figures compare the operations, not process start-up.
 *
 * Run: `npx tsx bench/rollback.ts` (starts the engine itself if none answers). BENCH_RUNS (5) rounds. The
 * last line is one JSON object: median milliseconds of each, and their ratio.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import { ensureEngine, ensureTestImages, TEST_IMAGES } from '../test/engine.ts';
import { Engine } from '../runtime/engine.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const log = (s: string) => process.stderr.write(s + '\n');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function writeRepo(dir: string, project: string, version: number): void {
  fs.mkdirSync(path.join(dir, 'services'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'waffle.config.ts'), `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`);
  fs.writeFileSync(
    path.join(dir, 'services/api.ts'),
    `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${version === 1 ? TEST_IMAGES.appV1 : TEST_IMAGES.appV2}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  healthcheck: { http: '/index.html', interval: '300ms', timeout: '3s', retries: 5 },
  stopGracePeriod: '1s',
});
`,
  );
  execFileSync('git', ['add', '-A'], { cwd: dir });
  execFileSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@example.invalid', 'commit', '-qm', `v${version}`, '--allow-empty'], { cwd: dir });
}

const host = await ensureEngine();
await ensureTestImages(host);
const project = `bench-rb-${Date.now().toString(36)}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-bench-rollback-'));
const state = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-bench-rollback-state-'));
execFileSync('git', ['init', '-q'], { cwd: dir });
const engine = new Engine({ env: { ...process.env }, dockerHost: host, stateDir: state });
const source = { dir };
const deploys: number[] = [];
const rollbacks: number[] = [];
try {
  writeRepo(dir, project, 1);
  if (!(await engine.apply(source)).ok) throw new Error('first apply failed');
  let version = 1;
  for (let i = 0; i < RUNS; i++) {
    version = version === 1 ? 2 : 1;
    writeRepo(dir, project, version);
    let t0 = performance.now();
    if (!(await engine.apply(source)).ok) throw new Error(`deploy ${i} failed`);
    deploys.push(performance.now() - t0);
    t0 = performance.now();
    if (!(await engine.rollback(source, 'api')).ok) throw new Error(`rollback ${i} failed`);
    rollbacks.push(performance.now() - t0);
    await engine.releasePin(source, 'api');
    // Back to the repository's version for the next round (not measured).
    if (!(await engine.apply(source)).ok) throw new Error(`apply after release ${i} failed`);
    log(`round ${i + 1}: deploy ${deploys.at(-1)!.toFixed(0)} ms, rollback ${rollbacks.at(-1)!.toFixed(0)} ms`);
  }
} finally {
  await engine.destroy(source, { volumes: true }).catch((e) => log(`destroy failed: ${(e as Error).message}`));
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(state, { recursive: true, force: true });
}
const deployMs = Math.round(median(deploys));
const rollbackMs = Math.round(median(rollbacks));
console.log(JSON.stringify({ runs: RUNS, deployMedianMs: deployMs, rollbackMedianMs: rollbackMs, rollbackToDeploy: Number((rollbackMs / deployMs).toFixed(2)) }));
