/**
 * No-op apply of 100 services: `waffle apply --yes` against Debian's `docker-compose up -d` on an
 * equivalent compose file, both on the same engine in the same run. Also load+validate of 500 files.
 * Run: `npx tsx bench/noop.ts` (starts the engine itself). The last line is one JSON object of figures.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ensureEngine, ensureTestImages, TEST_IMAGES } from '../test/engine.ts';
import { loadGraph } from '../runtime/pipeline.ts';
import { PKG_ROOT, WAFFLE_BIN } from '../test/helpers.ts';

const SERVICES = Number(process.env.BENCH_SERVICES ?? 100);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const LOAD_FILES = 500;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const log = (s: string) => process.stderr.write(s + '\n');

function run(cmd: string, args: string[], opts: { cwd: string; env?: Record<string, string> }): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}\n${r.stdout}`);
  return ms;
}

function serviceRepo(dir: string, project: string, n: number, image: string): void {
  fs.mkdirSync(path.join(dir, 'services'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'waffle.config.ts'),
    `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}', parallelism: 8 });\n`,
  );
  for (let i = 0; i < n; i++) {
    fs.writeFileSync(
      path.join(dir, 'services', `svc${i}.ts`),
      `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${image}',
  command: ['sleep', '3600'],
  env: { INDEX: '${i}', ROLE: 'bench' },
  restart: 'unless-stopped',
  stopGracePeriod: '1s',
});
`,
    );
  }
}

function composeFile(n: number, image: string): string {
  const lines = ["version: '2.4'", 'services:'];
  for (let i = 0; i < n; i++) {
    lines.push(
      `  svc${i}:`,
      `    image: ${image}`,
      `    command: ["sleep", "3600"]`,
      `    environment:`,
      `      INDEX: "${i}"`,
      `      ROLE: bench`,
      `    restart: unless-stopped`,
      `    stop_grace_period: 1s`,
    );
  }
  return lines.join('\n') + '\n';
}

async function main() {
  const host = await ensureEngine();
  process.env.DOCKER_HOST = host;
  await ensureTestImages(host);
  if (!fs.existsSync(path.join(PKG_ROOT, 'dist/cli/main.js'))) run(process.execPath, ['scripts/build.mjs'], { cwd: PKG_ROOT });
  const image = TEST_IMAGES.busybox;
  const tag = `${Date.now().toString(36)}`;
  const wafProject = `bw${tag}`;
  const composeProject = `bc${tag}`;
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-bench-'));
  const wafDir = path.join(base, 'waffle');
  const composeDir = path.join(base, 'compose');
  const loadDir = path.join(base, 'load');
  fs.mkdirSync(composeDir, { recursive: true });
  serviceRepo(wafDir, wafProject, SERVICES, image);
  serviceRepo(loadDir, `bl${tag}`, LOAD_FILES, image);
  fs.writeFileSync(path.join(composeDir, 'docker-compose.yml'), composeFile(SERVICES, image));
  const waffle = (...args: string[]) => run(process.execPath, [WAFFLE_BIN, ...args], { cwd: wafDir });
  const compose = (...args: string[]) =>
    run('docker-compose', ['-p', composeProject, ...args], { cwd: composeDir });

  const figures: Record<string, number> = {};
  try {
    log(`bench: ${SERVICES} services, ${RUNS} runs each`);
    figures.waffle_first_apply_ms = Math.round(waffle('apply', '--yes', '--plain'));
    // Debian's docker-compose 1.29.2 stalls when it creates more than about 30 containers at once
    // on this machine, so its first `up` goes in batches of 20 services; the no-op runs are whole.
    let composeFirst = 0;
    for (let b = 0; b < SERVICES; b += 20) {
      const batch = Array.from({ length: Math.min(20, SERVICES - b) }, (_, i) => `svc${b + i}`);
      composeFirst += compose('up', '-d', ...batch);
    }
    figures.compose_first_up_ms = Math.round(composeFirst);
    log(`first apply: waffle ${figures.waffle_first_apply_ms} ms, compose ${figures.compose_first_up_ms} ms`);

    const wafRuns: number[] = [];
    const composeRuns: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // Interleave so both see the same machine state.
      wafRuns.push(waffle('apply', '--yes', '--plain'));
      composeRuns.push(compose('up', '-d'));
    }
    figures.waffle_noop_median_ms = Math.round(median(wafRuns));
    figures.compose_noop_median_ms = Math.round(median(composeRuns));
    figures.noop_ratio_to_compose = Number((median(wafRuns) / median(composeRuns)).toFixed(3));
    log(`no-op: waffle ${wafRuns.map(Math.round).join(', ')} ms; compose ${composeRuns.map(Math.round).join(', ')} ms`);

    const loads: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      const graph = await loadGraph({ root: loadDir });
      loads.push(performance.now() - t0);
      if (Object.keys(graph.services).length !== LOAD_FILES) throw new Error('load returned the wrong number of services');
    }
    figures.load_validate_500_median_ms = Math.round(median(loads));
    const cliChecks: number[] = [];
    for (let i = 0; i < 3; i++) cliChecks.push(run(process.execPath, [WAFFLE_BIN, 'check', '--no-types'], { cwd: loadDir }));
    figures.cli_check_500_median_ms = Math.round(median(cliChecks));
    log(`load+validate of ${LOAD_FILES} files: ${loads.map(Math.round).join(', ')} ms (in process); CLI check ${cliChecks.map(Math.round).join(', ')} ms`);
  } finally {
    try {
      waffle('destroy', '--yes');
    } catch (e) {
      log(`cleanup: ${(e as Error).message}`);
    }
    try {
      compose('down', '-t', '1');
    } catch (e) {
      log(`cleanup: ${(e as Error).message}`);
    }
    fs.rmSync(base, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(figures) + '\n');
}

await main();
