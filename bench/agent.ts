/**
 * `waffle agent` on its own figures, against a peer in the same run:
 * - memory: resident size of the agent process when idle after its start-up deploy, and again after
 *   500 signed webhook deliveries (pushes to another branch, which the agent records and ignores);
 * - reaction: from the webhook request to the new version answering on its published port, for 20
 *   pushes alternating waffle-test/app:1 and :2, against `docker run` of the same image with the same
 *   command plus its first answer (the least any deployer could do), interleaved with the pushes;
 * - registry push → new version answering (a tag the service's update policy allows, announced by the
 *   registry's notification), next to git push → answering in the same setting (bench/image-update.ts).
 *
 * Run: `npx tsx bench/agent.ts` (builds dist/, uses the test engine). BENCH_PUSHES (20), BENCH_DELIVERIES
 * (500). The last line is one JSON object of figures.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ensureEngine, ensureTestImages, TEST_IMAGES } from '../test/engine.ts';
import { cleanupProject, dockerClient, freePort, PKG_ROOT, uniqueProject } from '../test/helpers.ts';
import { config, deliver, makeRemote, pushPayload, secretFiles, startAgent, tempRoot, type RunningAgent } from '../test/agent-support.ts';
import { imageUpdateFigures } from './image-update.ts';

/** What the systemd unit and the docker run line set for the agent's process. */
const AGENT_ENV = { MALLOC_ARENA_MAX: '2', NODE_OPTIONS: '--max-semi-space-size=1' };
const PUSHES = Number(process.env.BENCH_PUSHES ?? 20);
const DELIVERIES = Number(process.env.BENCH_DELIVERIES ?? 500);
const log = (s: string) => process.stderr.write(s + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const round = (n: number) => Math.round(n);

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round((Number(m![1]) / 1024) * 10) / 10;
}

/** Polls `url` until its body contains `want`; resolves with the time it first did. */
async function answers(url: string, want: string, deadlineMs = 60_000): Promise<number> {
  const end = performance.now() + deadlineMs;
  for (;;) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(500) });
      const body = await r.text();
      if (body.includes(want)) return performance.now();
    } catch {
      /* not answering yet */
    }
    if (performance.now() > end) throw new Error(`${url} never answered ${want}`);
    await sleep(10);
  }
}

/** httpd under a shell that exits on SIGTERM (httpd as PID 1 ignores it): a stop takes no grace period, for both. */
const COMMAND = ['sh', '-c', 'trap "exit 0" TERM; httpd -f -p 8080 -h /www & wait'];

const service = (image: string, port: number) => `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${image}',
  command: ${JSON.stringify(COMMAND)},
  port: 8080,
  ports: ['127.0.0.1:${port}:8080'],
  healthcheck: { http: '/index.html', interval: '200ms', timeout: '2s', retries: 20 },
  stopGracePeriod: '1s',
});
`;

async function main(): Promise<void> {
  process.env.DOCKER_HOST = await ensureEngine();
  await ensureTestImages(process.env.DOCKER_HOST);
  log('building dist/ …');
  const b = spawnSync(process.execPath, ['scripts/build.mjs', '--no-types'], { cwd: PKG_ROOT, stdio: 'inherit' });
  if (b.status !== 0) throw new Error('build failed');
  const docker = await dockerClient();
  const project = uniqueProject('bag');
  const root = tempRoot('waffle-bench-agent-');
  const port = await freePort();
  const peerPort = await freePort();
  const url = `http://127.0.0.1:${port}/index.html`;
  const peerUrl = `http://127.0.0.1:${peerPort}/index.html`;
  let agent: RunningAgent | undefined;
  try {
    const remote = makeRemote(root, { 'waffle.config.ts': config(project), 'services/web.ts': service(TEST_IMAGES.appV1, port) });
    secretFiles(root);
    // Started as templates/agent/ starts it: glibc keeps two malloc arenas (not one per thread), V8 a
    // small young generation; both trade nothing measurable for a steadier resident size.
    agent = await startAgent({ root, repo: remote.bare, stateDir: path.join(root, 'state'), env: AGENT_ENV });
    await answers(url, 'waffle v1', 120_000);
    // Idle: the start-up deploy is over; let timers and the collector settle.
    while ((await agent.api('GET', '/deployments')).json.deployments.some((d: { state: string }) => d.state === 'running' || d.state === 'queued')) await sleep(100);
    await sleep(3000);
    const pid = agent.proc.pid!;
    const idle = rssMiB(pid);
    log(`idle RSS ${idle} MiB`);

    const t0 = performance.now();
    const other = remote.commit({ 'README.md': 'other' }, 'other branch', 'other');
    for (let i = 0; i < DELIVERIES; i++) {
      const r = await deliver(agent.url, { body: pushPayload(other, { ref: 'refs/heads/other' }) });
      if (r.status !== 202) throw new Error(`delivery ${i}: ${r.status}`);
    }
    const deliveriesMs = performance.now() - t0;
    await sleep(3000);
    const afterDeliveries = rssMiB(pid);
    log(`after ${DELIVERIES} deliveries: RSS ${afterDeliveries} MiB (${round(deliveriesMs)} ms for all)`);

    const agentMs: number[] = [];
    const peerMs: number[] = [];
    for (let i = 0; i < PUSHES; i++) {
      const v = i % 2 === 0 ? 2 : 1;
      const image = v === 2 ? TEST_IMAGES.appV2 : TEST_IMAGES.appV1;
      const commit = remote.commit({ 'services/web.ts': service(image, port) }, `v${v} #${i}`);
      const start = performance.now();
      const r = await deliver(agent.url, { body: pushPayload(commit) });
      if (r.status !== 202) throw new Error(`push ${i}: ${r.status} ${JSON.stringify(r.json)}`);
      const seenAt = await answers(url, `waffle v${v}`, 30_000).catch(async (e) => {
        const d = (await agent!.api('GET', `/deployments/${r.json.deployment}`)).json;
        throw new Error(`${(e as Error).message}; the deployment: ${JSON.stringify({ ...d, events: d.events?.slice(-8) })}`);
      });
      agentMs.push(seenAt - start);
      // Let the deploy finish (its last steps come after the new version answers) before the next push.
      for (;;) {
        const d = (await agent.api('GET', `/deployments/${r.json.deployment}`)).json;
        if (d.state !== 'queued' && d.state !== 'running') {
          if (d.state !== 'applied') throw new Error(`push ${i}: ${d.state} ${d.error ?? ''}`);
          break;
        }
        await sleep(50);
      }

      // The peer: docker run of the same image and command, until its first answer.
      const name = `${project}-peer`;
      const p0 = performance.now();
      const run = spawn('docker', ['run', '-d', '--rm', '--name', name, '-p', `127.0.0.1:${peerPort}:8080`, image, ...COMMAND], { stdio: 'ignore' });
      const ran = new Promise((r) => run.on('exit', r));
      const seen = await answers(peerUrl, `waffle v${v}`);
      peerMs.push(seen - p0);
      await ran;
      spawnSync('docker', ['rm', '-f', name], { stdio: 'ignore' });
      log(`push ${i + 1}/${PUSHES}: agent ${round(agentMs.at(-1)!)} ms, docker run ${round(peerMs.at(-1)!)} ms`);
    }
    const figures = {
      idleRssMiB: idle,
      rssAfterDeliveriesMiB: afterDeliveries,
      rssGrowthMiB: Math.round((afterDeliveries - idle) * 10) / 10,
      deliveries: DELIVERIES,
      deliveriesPerSecond: round(DELIVERIES / (deliveriesMs / 1000)),
      pushes: PUSHES,
      agentReactionMs: { p50: round(pct(agentMs, 50)), p95: round(pct(agentMs, 95)), max: round(Math.max(...agentMs)) },
      dockerRunMs: { p50: round(pct(peerMs, 50)), p95: round(pct(peerMs, 95)), max: round(Math.max(...peerMs)) },
      overheadMs: { p50: round(pct(agentMs, 50) - pct(peerMs, 50)), p95: round(pct(agentMs, 95) - pct(peerMs, 95)) },
      imageUpdate: await imageUpdateFigures(Number(process.env.BENCH_IMAGE_RUNS ?? 3)),
      agentEnv: AGENT_ENV,
      goals: { idleRssMiB: 80, rssGrowthMiB: 20, overheadMs: 1500 },
    };
    console.log(JSON.stringify(figures));
  } finally {
    await agent?.stop(10_000).catch(() => undefined);
    spawnSync('docker', ['rm', '-f', `${project}-peer`], { stdio: 'ignore' });
    await cleanupProject(docker, project);
    fs.rmSync(root, { recursive: true, force: true });
  }
}

await main();
