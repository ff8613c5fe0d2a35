/**
 * No-op apply on Swarm: `waffle apply --yes` against `docker stack deploy` (Docker's own deployer of a
 * compose file to a Swarm) on an equivalent project, both on the same one-node swarm in the same run,
 * interleaved. Also: how many services each no-op updates (their spec version moves: waffle sends
 * nothing, a stack deploy sends an update of every service), and the Docker API calls of one waffle no-op at N and at
 * N/10 services (a recording proxy in front of the engine).
 *
 * Run: `npx tsx bench/swarm.ts` (starts the engine itself, builds dist/; puts the engine in swarm mode
 * when it is not, and leaves it again at the end). Environment: BENCH_SERVICES (50), BENCH_RUNS (5).
 * The last line is one JSON object of figures.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ensureEngine, ensureTestImages, TEST_IMAGES } from '../test/engine.ts';
import { dockerClient, PKG_ROOT, WAFFLE_BIN } from '../test/helpers.ts';
import { joinTestSwarm } from '../test/swarm-support.ts';
import { startSocketProxy } from '../test/doubles/socket-proxy.ts';

const SERVICES = Number(process.env.BENCH_SERVICES ?? 50);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const log = (s: string) => process.stderr.write(s + '\n');

function run(cmd: string, args: string[], opts: { cwd: string; env: Record<string, string> }): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}\n${r.stdout}`);
  return ms;
}

function waffleRepo(dir: string, project: string, n: number): void {
  fs.mkdirSync(path.join(dir, 'services'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'waffle.config.ts'), `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}', target: 'swarm', parallelism: 8 });\n`);
  for (let i = 0; i < n; i++) {
    fs.writeFileSync(
      path.join(dir, 'services', `s${i}.ts`),
      `import { defineService } from 'wafflemaker';\nexport default defineService({ image: '${TEST_IMAGES.busybox}', command: 'sleep 3600', env: { INDEX: '${i}' }, stopGracePeriod: '1s' });\n`,
    );
  }
  spawnSync('git', ['init', '-q'], { cwd: dir });
  spawnSync('git', ['-c', 'user.email=b@b', '-c', 'user.name=b', 'add', '-A'], { cwd: dir });
  spawnSync('git', ['-c', 'user.email=b@b', '-c', 'user.name=b', 'commit', '-qm', 'bench'], { cwd: dir });
}

function stackFile(dir: string, n: number): string {
  const lines = ['version: "3.8"', 'services:'];
  for (let i = 0; i < n; i++) {
    lines.push(`  s${i}:`, `    image: ${TEST_IMAGES.busybox}`, `    command: ["sh", "-c", "sleep 3600"]`, `    environment:`, `      INDEX: "${i}"`, `    stop_grace_period: 1s`);
  }
  const file = path.join(dir, 'stack.yml');
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

async function main(): Promise<void> {
  const host = await ensureEngine();
  await ensureTestImages(host, { busybox: TEST_IMAGES.busybox });
  run('npm', ['run', 'build'], { cwd: PKG_ROOT, env: {} });
  const env = { DOCKER_HOST: host };
  const docker = (args: string[]) => spawnSync('docker', args, { env: { ...process.env, ...env }, encoding: 'utf8' });
  process.env.DOCKER_HOST = host;
  const swarm = await joinTestSwarm(await dockerClient(), host);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-bench-swarm-'));
  const stamp = Date.now().toString(36);
  const project = `bsw${stamp}`;
  const small = `bss${stamp}`;
  const stack = `bsk${stamp}`;
  const wEnv = { ...env, WAFFLE_STATE_DIR: path.join(tmp, 'state'), NO_COLOR: '1' };
  /** Service ID → its spec version (Swarm's raft index of its last change). */
  const versions = (label: string): Map<string, string> =>
    new Map(
      docker(['service', 'ls', '--filter', `label=${label}`, '-q'])
        .stdout.trim()
        .split('\n')
        .filter(Boolean)
        .map((id) => [id, docker(['service', 'inspect', '--format', '{{.Version.Index}}', id]).stdout.trim()] as const),
    );
  const changed = (before: Map<string, string>, after: Map<string, string>) => [...before].filter(([id, v]) => after.get(id) !== v).length;
  try {
    const repo = path.join(tmp, 'repo');
    waffleRepo(repo, project, SERVICES);
    const smallRepo = path.join(tmp, 'small');
    waffleRepo(smallRepo, small, Math.max(1, Math.round(SERVICES / 10)));
    const file = stackFile(tmp, SERVICES);
    log(`deploying ${SERVICES} services with waffle and with docker stack deploy…`);
    run('node', [WAFFLE_BIN, 'apply', '--yes', '--plain'], { cwd: repo, env: wEnv });
    run('node', [WAFFLE_BIN, 'apply', '--yes', '--plain'], { cwd: smallRepo, env: wEnv });
    run('docker', ['stack', 'deploy', '--resolve-image', 'never', '-c', file, stack], { cwd: tmp, env });

    const waffleMs: number[] = [];
    const stackMs: number[] = [];
    const wChanged: number[] = [];
    const sChanged: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const w0 = versions(`dev.wafflemaker.project=${project}`);
      waffleMs.push(run('node', [WAFFLE_BIN, 'apply', '--yes', '--plain'], { cwd: repo, env: wEnv }));
      wChanged.push(changed(w0, versions(`dev.wafflemaker.project=${project}`)));
      const s0 = versions(`com.docker.stack.namespace=${stack}`);
      stackMs.push(run('docker', ['stack', 'deploy', '--resolve-image', 'never', '-c', file, stack], { cwd: tmp, env }));
      sChanged.push(changed(s0, versions(`com.docker.stack.namespace=${stack}`)));
      log(`run ${r + 1}/${RUNS}: waffle ${waffleMs.at(-1)!.toFixed(0)} ms, stack deploy ${stackMs.at(-1)!.toFixed(0)} ms`);
    }

    // Docker API calls of one no-op, at N and at N/10 services.
    const proxy = await startSocketProxy(host);
    // The proxy runs in this process: the CLI is spawned asynchronously so it can answer.
    const calls = async (dir: string) => {
      proxy.reset();
      const code = await new Promise<number>((resolve) =>
        spawn('node', [WAFFLE_BIN, 'apply', '--yes', '--plain'], { cwd: dir, env: { ...process.env, ...wEnv, DOCKER_HOST: proxy.host }, stdio: 'ignore' }).on('close', (c) => resolve(c ?? 1)),
      );
      if (code !== 0) throw new Error(`waffle apply through the proxy failed (${code})`);
      return proxy.requests.length;
    };
    const callsLarge = await calls(repo);
    const callsSmall = await calls(smallRepo);
    await proxy.close();

    run('node', [WAFFLE_BIN, 'destroy', '--yes', '--plain'], { cwd: repo, env: wEnv });
    run('node', [WAFFLE_BIN, 'destroy', '--yes', '--plain'], { cwd: smallRepo, env: wEnv });
    run('docker', ['stack', 'rm', stack], { cwd: tmp, env });
    const out = {
      services: SERVICES,
      runs: RUNS,
      waffleNoopMs: Math.round(median(waffleMs)),
      stackDeployNoopMs: Math.round(median(stackMs)),
      ratio: Number((median(waffleMs) / median(stackMs)).toFixed(2)),
      servicesUpdatedPerNoop: { waffle: median(wChanged), stackDeploy: median(sChanged) },
      dockerCallsPerNoop: { [`${SERVICES} services`]: callsLarge, [`${Math.max(1, Math.round(SERVICES / 10))} services`]: callsSmall },
    };
    console.log(JSON.stringify(out));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    await swarm.leave();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
