/**
 * Startup: median wall time of `waffle --version` (goal < 150 ms) and of `waffle plan --json` on a copy
 * of the demo repository, and whether Ink or React were loaded by either. A module loader hook
 * (`module.register`, passed with `--import`) records every module URL the process resolves; the Ink UI
 * must not be among them. A positive control (`import('ink')` under the same hook) shows the detector
 * sees Ink when it is loaded.
 * Run: `npx tsx bench/startup.ts` (builds dist/ if missing, starts the engine). The last stdout line is
 * one JSON object of figures.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { DEMO_IMAGES, ensureEngine, ensureTestImages, TEST_IMAGES } from '../test/engine.ts';
import { PKG_ROOT, WAFFLE_BIN, copyDemoRepo, uniqueProject } from '../test/helpers.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const PLAN_RUNS = Number(process.env.BENCH_PLAN_RUNS ?? 7);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const log = (s: string) => process.stderr.write(s + '\n');
const round = (n: number) => Math.round(n * 10) / 10;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-startup-'));

/** An `--import` script that registers resolve hooks appending each resolved URL to $WAFFLE_MODULE_LOG. */
function writeHook(): string {
  const hooks = path.join(tmp, 'hooks.mjs');
  fs.writeFileSync(
    hooks,
    `import fs from 'node:fs';
let out;
export function initialize(data) { out = data.out; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (out) fs.appendFileSync(out, r.url + '\\n');
  return r;
}
`,
  );
  const register = path.join(tmp, 'register.mjs');
  fs.writeFileSync(
    register,
    `import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
if (process.env.WAFFLE_MODULE_LOG) register(${JSON.stringify(new URL(`file://${hooks}`).href)}, { data: { out: process.env.WAFFLE_MODULE_LOG } });
`,
  );
  return register;
}

function timed(args: string[], cwd: string, env: Record<string, string> = {}): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return ms;
}

/** The module URLs a run resolved. */
function modulesOf(register: string, args: string[], cwd: string): string[] {
  const out = path.join(tmp, `modules-${Math.random().toString(36).slice(2)}.txt`);
  timed(['--import', register, ...args], cwd, { WAFFLE_MODULE_LOG: out });
  return fs.existsSync(out) ? fs.readFileSync(out, 'utf8').split('\n').filter(Boolean) : [];
}

const packagesOf = (urls: string[]) =>
  [...new Set(urls.map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u)?.[1]).filter((p): p is string => !!p))].sort();

const isUi = (url: string) => /\/node_modules\/(ink|react|react-reconciler|yoga-layout)\//.test(url);

async function main() {
  if (!fs.existsSync(path.join(PKG_ROOT, 'dist', 'cli', 'main.js'))) {
    log('building dist/ ...');
    const b = spawnSync(process.execPath, [path.join(PKG_ROOT, 'scripts', 'build.mjs')], { cwd: PKG_ROOT, stdio: 'inherit' });
    if (b.status !== 0) throw new Error('build failed');
  }
  const host = await ensureEngine();
  process.env.DOCKER_HOST = host;
  await ensureTestImages(host, { ...TEST_IMAGES, ...DEMO_IMAGES });
  const project = uniqueProject('start');
  const repo = copyDemoRepo(project);
  const register = writeHook();
  try {
    // Warm the file cache once.
    timed([WAFFLE_BIN, '--version'], repo);
    const version: number[] = [];
    for (let i = 0; i < RUNS; i++) version.push(timed([WAFFLE_BIN, '--version'], repo));
    // A bare `node -e 0` in the same conditions: the floor any CLI start pays on this machine.
    const bare: number[] = [];
    for (let i = 0; i < RUNS; i++) bare.push(timed(['-e', '0'], repo));
    const plan: number[] = [];
    for (let i = 0; i < PLAN_RUNS; i++) plan.push(timed([WAFFLE_BIN, 'plan', '--json'], repo));

    const versionModules = modulesOf(register, [WAFFLE_BIN, '--version'], repo);
    const planModules = modulesOf(register, [WAFFLE_BIN, 'plan', '--json'], repo);
    const control = modulesOf(register, ['--input-type=module', '-e', "await import('ink'); await import('react');"], PKG_ROOT);
    if (!planModules.some((u) => u.includes('/dist/cli/main.js'))) throw new Error('the hook did not see the CLI: the detector is broken');
    if (!control.some(isUi)) throw new Error('the hook did not see Ink in the positive control: the detector is broken');

    const figures = {
      runs: RUNS,
      version_median_ms: round(median(version)),
      version_min_ms: round(Math.min(...version)),
      node_bare_median_ms: round(median(bare)),
      version_goal_ms: 150,
      version_under_goal: median(version) < 150,
      plan_json_runs: PLAN_RUNS,
      plan_json_median_ms: round(median(plan)),
      version_loads_ink: versionModules.some(isUi),
      plan_json_loads_ink: planModules.some(isUi),
      plan_json_modules: planModules.length,
      // Packages `--version` loads (ESM resolutions): anything beyond commander and kleur costs startup.
      version_packages: packagesOf(versionModules),
      detector_sees_ink_when_loaded: control.some(isUi),
    };
    log(`waffle --version: median ${figures.version_median_ms} ms over ${RUNS} runs (goal < 150 ms)`);
    log(`waffle plan --json: median ${figures.plan_json_median_ms} ms over ${PLAN_RUNS} runs; Ink loaded: ${figures.plan_json_loads_ink}`);
    process.stdout.write(JSON.stringify(figures) + '\n');
    if (figures.version_loads_ink || figures.plan_json_loads_ink) process.exitCode = 1;
  } finally {
    fs.rmSync(repo, { recursive: true, force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
