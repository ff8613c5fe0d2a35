/**
 * `waffle dev` against docker-compose on the same change: a service's environment is edited and the
 * time until a container with the new value is healthy is measured, for `waffle dev` (the save in a
 * service file written by `waffle import compose` from the same Compose file; dev notices, plans and
 * replaces start-first) and for `docker-compose up -d` run right after the same edit of the Compose
 * file (it recreates the container). Same image, command, healthcheck (every second) and engine, in
 * the same run, interleaved.
 *
 * Run: `npx tsx bench/dev.ts` (starts the engine itself, builds dist/). BENCH_RUNS (5). The last line is
 * one JSON object of figures.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Docker from 'dockerode';
import { ensureEngine, ensureTestImages, TEST_IMAGES } from '../test/engine.ts';
import { PKG_ROOT, WAFFLE_BIN } from '../test/helpers.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const log = (line: string) => process.stderr.write(line + '\n');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function composeFile(v: number): string {
  return `services:
  web:
    image: ${TEST_IMAGES.busybox}
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    environment:
      V: "${v}"
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "-", "http://127.0.0.1:8080/"]
      interval: 1s
      timeout: 2s
      retries: 3
`;
}

/** Resolves when a container with `label` filters runs healthy with V=<v> in its environment. */
async function healthyWith(docker: Docker, labels: string[], v: number, limitMs = 120_000): Promise<void> {
  const until = Date.now() + limitMs;
  for (;;) {
    const list = await docker.listContainers({ filters: { label: labels, health: ['healthy'] } });
    for (const c of list) {
      const info = await docker.getContainer(c.Id).inspect();
      if (info.Config.Env.includes(`V=${v}`)) return;
    }
    if (Date.now() > until) throw new Error(`no healthy container with V=${v} (${labels.join(', ')})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function main(): Promise<void> {
  const host = await ensureEngine();
  process.env.DOCKER_HOST = host;
  await ensureTestImages(host, TEST_IMAGES);
  spawnSync(process.execPath, ['scripts/build.mjs', '--no-types'], { cwd: PKG_ROOT, stdio: 'ignore' });
  const docker = new Docker({ socketPath: host.replace(/^unix:\/\//, '') });
  const tag = `${Date.now().toString(36)}`;
  const project = `bdev${tag}`;
  const composeProject = `bdevc${tag}`;
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-bench-dev-'));
  const composeDir = path.join(base, 'compose');
  const repo = path.join(base, 'repo');
  fs.mkdirSync(composeDir);
  fs.writeFileSync(path.join(composeDir, 'docker-compose.yml'), composeFile(0));
  const env = { ...process.env, NO_COLOR: '1', WAFFLE_AGE_IDENTITY_FILE: path.join(base, 'age.key') };
  const compose = (...args: string[]) => {
    const r = spawnSync('docker-compose', ['-p', composeProject, ...args], { cwd: composeDir, env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`docker-compose ${args.join(' ')}: ${r.stderr}`);
  };
  const imported = spawnSync(process.execPath, [WAFFLE_BIN, 'import', 'compose', '--out', repo, '--project', project], { cwd: composeDir, env, encoding: 'utf8' });
  if (imported.status !== 0) throw new Error(`import failed: ${imported.stderr}`);
  const serviceFile = path.join(repo, 'services/web.ts');
  const serviceText = fs.readFileSync(serviceFile, 'utf8');

  const dev = spawn(process.execPath, [WAFFLE_BIN, 'dev', '--plain', '--debounce', '50'], { cwd: repo, env, stdio: ['pipe', 'ignore', 'pipe'] });
  let out = '';
  dev.stderr.on('data', (d) => (out += d));
  const figures: Record<string, unknown> = {};
  try {
    compose('up', '-d');
    await healthyWith(docker, [`com.docker.compose.project=${composeProject}`], 0);
    await healthyWith(docker, [`dev.wafflemaker.project=${project}`], 0);
    while (!out.includes('watching for changes')) await new Promise((r) => setTimeout(r, 50));
    const waffleMs: number[] = [];
    const composeMs: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
      // waffle dev: save, then wait for the healthy new container.
      let t0 = performance.now();
      fs.writeFileSync(serviceFile, serviceText.replace("V: '0'", `V: '${i}'`));
      await healthyWith(docker, [`dev.wafflemaker.project=${project}`], i);
      waffleMs.push(performance.now() - t0);
      // docker-compose: the same edit, `up -d`, then wait for the healthy new container.
      t0 = performance.now();
      fs.writeFileSync(path.join(composeDir, 'docker-compose.yml'), composeFile(i));
      compose('up', '-d');
      await healthyWith(docker, [`com.docker.compose.project=${composeProject}`], i);
      composeMs.push(performance.now() - t0);
      log(`run ${i}: waffle dev save → healthy ${Math.round(waffleMs.at(-1)!)} ms; docker-compose up -d → healthy ${Math.round(composeMs.at(-1)!)} ms`);
      // Let dev finish the replacement (rename, old container removed) before the next edit.
      const until = Date.now() + 60_000;
      while ((out.match(/watching for changes/g) ?? []).length < i + 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    }
    figures.runs = RUNS;
    figures.dev_save_to_healthy_median_ms = Math.round(median(waffleMs));
    figures.compose_up_to_healthy_median_ms = Math.round(median(composeMs));
    figures.ratio_dev_to_compose = Number((median(waffleMs) / median(composeMs)).toFixed(2));
    figures.dev_ms = waffleMs.map(Math.round);
    figures.compose_ms = composeMs.map(Math.round);
  } catch (e) {
    log(`waffle dev said:\n${out}`);
    throw e;
  } finally {
    dev.stdin.end('q\n');
    await new Promise((r) => dev.on('close', r));
    spawnSync('docker-compose', ['-p', composeProject, 'down', '-v'], { cwd: composeDir, env, stdio: 'ignore' });
    spawnSync(process.execPath, [WAFFLE_BIN, 'destroy', '--yes'], { cwd: repo, env, stdio: 'ignore' });
    fs.rmSync(base, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(figures) + '\n');
}

await main();
