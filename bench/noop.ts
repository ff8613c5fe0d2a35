/**
 * No-op apply: `waffle apply --yes` against Debian's `docker-compose up -d` on an equivalent compose
 * file, both on the same engine in the same run, interleaved. Three scenarios:
 * - plain: 100 services (`sleep`), restart policy, env;
 * - health: 100 services with an http healthcheck every 2 s, every 4th linked with the one before it;
 * - large: 1000 services without healthchecks, waffle alone (compose 1.29 takes minutes there), to show
 *   that a no-op's cost hardly grows with the number of services.
 * Also load+validate of 500 service files.
 *
 * Run: `npx tsx bench/noop.ts` (starts the engine itself, builds dist/). Environment: BENCH_SERVICES
 * (100), BENCH_LARGE (1000; 0 skips it), BENCH_RUNS (5), BENCH_PARTS (plain,health,large,load). The last
 * line is one JSON object of figures. For the large scenario it also splits an in-process plan into its
 * phases (load+validate, observe, the rest), to show where a no-op's time goes.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ensureEngine, ensureTestImages, TEST_IMAGES } from '../test/engine.ts';
import { Engine } from '../runtime/engine.ts';
import { PKG_ROOT, WAFFLE_BIN } from '../test/helpers.ts';

const SERVICES = Number(process.env.BENCH_SERVICES ?? 100);
const LARGE = Number(process.env.BENCH_LARGE ?? 1000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
/** Which parts run (comma-separated): plain, health, large, load. */
const PARTS = new Set((process.env.BENCH_PARTS ?? 'plain,health,large,load').split(',').map((x) => x.trim()));
const LOAD_FILES = 500;
/**
 * The large scenario's default network, created by the bench before waffle's first apply (waffle adopts
 * a network with its name and labels): the engine's address pool hands out /24 networks, and 1000
 * containers do not fit in 254 addresses.
 */
const LARGE_SUBNET = '10.214.0.0/20';

type Kind = 'plain' | 'health';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const log = (s: string) => process.stderr.write(s + '\n');

function run(cmd: string, args: string[], opts: { cwd: string; env?: Record<string, string> }): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}\n${r.stdout}`);
  return ms;
}

/** Service i links with service i-1 when i % 4 === 3 (health scenario). */
const linkedToPrevious = (kind: Kind, i: number) => kind === 'health' && i % 4 === 3;

function serviceRepo(dir: string, project: string, n: number, kind: Kind): void {
  fs.mkdirSync(path.join(dir, 'services'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'waffle.config.ts'),
    `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}', parallelism: 8 });\n`,
  );
  for (let i = 0; i < n; i++) {
    const lines = [`import { defineService } from 'wafflemaker';`];
    if (linkedToPrevious(kind, i)) lines.push(`import prev from './svc${i - 1}';`);
    lines.push('export default defineService({');
    if (kind === 'plain') {
      lines.push(`  image: '${TEST_IMAGES.busybox}',`, `  command: ['sleep', '3600'],`);
    } else {
      lines.push(
        `  image: '${TEST_IMAGES.appV1}',`,
        `  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],`,
        '  port: 8080,',
        `  healthcheck: { http: '/', interval: '2s' },`,
      );
    }
    lines.push(`  env: { INDEX: '${i}', ROLE: 'bench' },`, `  restart: 'unless-stopped',`, `  stopGracePeriod: '1s',`);
    if (linkedToPrevious(kind, i)) lines.push('  connects: [prev],');
    lines.push('});', '');
    fs.writeFileSync(path.join(dir, 'services', `svc${i}.ts`), lines.join('\n'));
  }
}

/** The same services for docker-compose: the same image, command, env, policy, healthcheck and networks. */
function composeFile(n: number, kind: Kind): string {
  const lines = ["version: '2.4'", 'services:'];
  const links: string[] = [];
  for (let i = 0; i < n; i++) {
    lines.push(`  svc${i}:`);
    if (kind === 'plain') {
      lines.push(`    image: ${TEST_IMAGES.busybox}`, `    command: ["sleep", "3600"]`);
    } else {
      lines.push(
        `    image: ${TEST_IMAGES.appV1}`,
        `    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]`,
        '    healthcheck:',
        `      test: ["CMD-SHELL", "if command -v wget >/dev/null 2>&1; then wget -q -O /dev/null 'http://127.0.0.1:8080/'; else curl -fsS -o /dev/null 'http://127.0.0.1:8080/'; fi"]`,
        '      interval: 2s',
        '      timeout: 3s',
        '      retries: 3',
      );
    }
    lines.push('    environment:', `      INDEX: "${i}"`, '      ROLE: bench', '    restart: unless-stopped', '    stop_grace_period: 1s');
    const nets = ['default'];
    if (linkedToPrevious(kind, i)) nets.push(`link${i}`);
    if (linkedToPrevious(kind, i + 1)) nets.push(`link${i + 1}`);
    if (nets.length > 1) lines.push('    networks:', ...nets.map((x) => `      - ${x}`));
    if (linkedToPrevious(kind, i)) links.push(`link${i}`);
  }
  if (links.length > 0) lines.push('networks:', '  default: {}', ...links.map((l) => `  ${l}: {}`));
  return lines.join('\n') + '\n';
}

interface Scenario {
  waffle: (...args: string[]) => number;
  cleanup: () => void;
}

function setUp(base: string, name: string, project: string, n: number, kind: Kind, withCompose: boolean): Scenario & { compose?: (...args: string[]) => number } {
  const wafDir = path.join(base, `${name}-waffle`);
  serviceRepo(wafDir, project, n, kind);
  const waffle = (...args: string[]) => run(process.execPath, [WAFFLE_BIN, ...args], { cwd: wafDir });
  let compose: ((...args: string[]) => number) | undefined;
  if (withCompose) {
    const composeDir = path.join(base, `${name}-compose`);
    fs.mkdirSync(composeDir, { recursive: true });
    fs.writeFileSync(path.join(composeDir, 'docker-compose.yml'), composeFile(n, kind));
    compose = (...args: string[]) => run('docker-compose', ['-p', `${project}c`, ...args], { cwd: composeDir });
  }
  return {
    waffle,
    ...(compose ? { compose } : {}),
    cleanup: () => {
      try {
        waffle('destroy', '--yes');
      } catch (e) {
        log(`cleanup: ${(e as Error).message}`);
      }
      try {
        compose?.('down', '-t', '1');
      } catch (e) {
        log(`cleanup: ${(e as Error).message}`);
      }
      // What a destroy left (an engine too busy to answer in time), removed a batch at a time.
      for (const label of [`dev.wafflemaker.project=${project}`, `com.docker.compose.project=${project}c`]) {
        const left = spawnSync('docker', ['ps', '-aq', '--filter', `label=${label}`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
        for (let i = 0; i < left.length; i += 25) spawnSync('docker', ['rm', '-f', ...left.slice(i, i + 25)], { encoding: 'utf8' });
        const nets = spawnSync('docker', ['network', 'ls', '-q', '--filter', `label=${label}`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
        if (nets.length) spawnSync('docker', ['network', 'rm', ...nets], { encoding: 'utf8' });
      }
    },
  };
}

/** First apply / up, then RUNS interleaved no-ops; figures prefixed with `name`. */
function compare(name: string, s: Scenario & { compose?: (...args: string[]) => number }, n: number, figures: Record<string, number>): void {
  log(`${name}: ${n} services, ${RUNS} runs each`);
  figures[`${name}_waffle_first_apply_ms`] = Math.round(s.waffle('apply', '--yes', '--plain'));
  if (s.compose) {
    // Debian's docker-compose 1.29.2 stalls when it creates more than about 30 containers at once on this
    // machine, so its first `up` goes in batches of 20 services; the no-op runs are whole.
    let composeFirst = 0;
    for (let b = 0; b < n; b += 20) {
      const batch = Array.from({ length: Math.min(20, n - b) }, (_, i) => `svc${b + i}`);
      composeFirst += s.compose('up', '-d', ...batch);
    }
    figures[`${name}_compose_first_up_ms`] = Math.round(composeFirst);
  }
  log(`${name} first apply: waffle ${figures[`${name}_waffle_first_apply_ms`]} ms, compose ${figures[`${name}_compose_first_up_ms`] ?? '-'} ms`);
  const wafRuns: number[] = [];
  const composeRuns: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // Interleaved so both see the same machine state.
    wafRuns.push(s.waffle('apply', '--yes', '--plain'));
    if (s.compose) composeRuns.push(s.compose('up', '-d'));
  }
  figures[`${name}_waffle_noop_median_ms`] = Math.round(median(wafRuns));
  if (s.compose) {
    figures[`${name}_compose_noop_median_ms`] = Math.round(median(composeRuns));
    figures[`${name}_noop_ratio_to_compose`] = Number((median(wafRuns) / median(composeRuns)).toFixed(3));
  }
  log(`${name} no-op: waffle ${wafRuns.map(Math.round).join(', ')} ms; compose ${composeRuns.map(Math.round).join(', ') || '-'} ms`);
}

async function main() {
  const host = await ensureEngine();
  process.env.DOCKER_HOST = host;
  await ensureTestImages(host);
  // The CLI runs from dist/: build it from the sources being measured.
  run(process.execPath, ['scripts/build.mjs', '--no-types'], { cwd: PKG_ROOT });
  const tag = `${Date.now().toString(36)}`;
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-bench-'));
  const figures: Record<string, number> = { services: SERVICES, large_services: LARGE, runs: RUNS };
  const docker = (...args: string[]) => run('docker', args, { cwd: base });
  try {
    for (const kind of (['plain', 'health'] as const).filter((k) => PARTS.has(k))) {
      const s = setUp(base, kind, `b${kind[0]}${tag}`, SERVICES, kind, true);
      try {
        compare(kind, s, SERVICES, figures);
      } finally {
        // One scenario at a time: 200 health-checked containers would measure the machine, not the tools.
        s.cleanup();
      }
    }

    if (LARGE > 0 && PARTS.has('large')) {
      const project = `bx${tag}`;
      docker(
        'network', 'create', '--subnet', LARGE_SUBNET,
        '-o', 'com.docker.network.bridge.enable_icc=false',
        '--label', `dev.wafflemaker.project=${project}`, '--label', 'dev.wafflemaker.role=default',
        `${project}_default`,
      );
      const s = setUp(base, 'large', project, LARGE, 'plain', false);
      try {
        compare('large', s, LARGE, figures);
        // The same no-op in process, by phase (the engine's events carry each phase's duration).
        const phases: Record<'load' | 'observe' | 'total', number[]> = { load: [], observe: [], total: [] };
        for (let i = 0; i < RUNS; i++) {
          const engine = new Engine({ env: { ...process.env } });
          await engine.plan(
            { dir: path.join(base, 'large-waffle') },
            {
              onEvent: (e) => {
                if (e.type === 'load-done') phases.load.push(e.ms);
                if (e.type === 'observe-done') phases.observe.push(e.ms);
                if (e.type === 'plan-ready') phases.total.push(e.ms);
              },
            },
          );
        }
        figures.large_inprocess_plan_median_ms = Math.round(median(phases.total));
        figures.large_inprocess_load_validate_median_ms = Math.round(median(phases.load));
        figures.large_inprocess_observe_median_ms = Math.round(median(phases.observe));
        log(`large in process: plan ${phases.total.join(', ')} ms; of which load+validate ${phases.load.join(', ')} ms, observe ${phases.observe.join(', ')} ms`);
      } finally {
        s.cleanup();
        try {
          docker('network', 'rm', `${project}_default`);
        } catch {
          /* destroy removed it */
        }
      }
    }

    if (PARTS.has('load')) {
      const loadDir = path.join(base, 'load');
      serviceRepo(loadDir, `bl${tag}`, LOAD_FILES, 'plain');
      const loads: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const t0 = performance.now();
        const graph = await new Engine({ env: process.env }).load({ dir: loadDir });
        loads.push(performance.now() - t0);
        if (Object.keys(graph.services).length !== LOAD_FILES) throw new Error('load returned the wrong number of services');
      }
      figures.load_validate_500_median_ms = Math.round(median(loads));
      const cliChecks: number[] = [];
      for (let i = 0; i < 3; i++) cliChecks.push(run(process.execPath, [WAFFLE_BIN, 'check', '--no-types'], { cwd: loadDir }));
      figures.cli_check_500_median_ms = Math.round(median(cliChecks));
      log(`load+validate of ${LOAD_FILES} files: ${loads.map(Math.round).join(', ')} ms (in process); CLI check ${cliChecks.map(Math.round).join(', ')} ms`);
    }
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(figures) + '\n');
}

await main();
