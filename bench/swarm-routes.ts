/**
 * When does Caddy send traffic only to the new version, on Swarm against on one engine, in the same run?
 *
 * - Swarm: a routed service with 2 replicas behind the Caddy container (routes to the tasks' DNS name,
 *   looked up every second). Figure: from the moment waffle sees Swarm's rolling update `completed` to
 *   the first request after which every answer comes from the new version (negative: Caddy had moved
 *   before Swarm declared the update complete, which is expected, since Swarm takes a task out of DNS
 *   2 s before it stops it and completes the update after the last old task stopped).
 * - One engine: the same service behind a Caddy on the host. Figure: from the routing step (waffle
 *   points the route at the new, healthy container) to the same "only new answers" moment.
 * Two requests are always in flight through each Caddy, each on a connection of its own.
 *
 * Run: `DOCKER_HOST=… npx tsx bench/swarm-routes.ts` (puts the engine in a one-node swarm when it is
 * not in one, and leaves it again; needs Debian's caddy). BENCH_RUNS sets the deploys per target
 * (default 4). The last stdout line is one JSON object.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Engine } from '../runtime/engine.ts';
import type { RunEvent } from '../runtime/model.ts';
import { ensureEngine, ensureTestImages, TEST_IMAGES } from '../test/engine.ts';
import { cleanupProject, dockerClient, gitCommitAll, makeRepo, uniqueProject, writeFiles } from '../test/helpers.ts';
import { requestThrough, startCaddy, startCaddyContainer, until, type Caddy } from '../test/caddy.ts';
import { joinTestSwarm, removeSwarmProject } from '../test/swarm-support.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 4);
const DOMAIN = 'bench.test';
const log = (s: string) => process.stderr.write(s + '\n');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function files(project: string, caddy: Caddy & { name?: string }, image: string, swarm: boolean): Record<string, string> {
  const ingress = swarm ? `{ caddy: { admin: '${caddy.admin}', container: '${caddy.name}' } }` : `{ caddy: { admin: '${caddy.admin}' }, drainSeconds: 1 }`;
  return {
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';
export default defineConfig({ project: '${project}', ${swarm ? "target: 'swarm', " : ''}ingress: ${ingress} });
`,
    'services/app.ts': `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${image}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  ${swarm ? "replicas: 2, rollout: { monitor: '1s' }," : ''}
  routes: [{ domain: '${DOMAIN}' }],
  healthcheck: { http: '/index.html', interval: '200ms', timeout: '2s', retries: 5 },
  stopGracePeriod: '1s',
});
`,
  };
}

interface Sample {
  start: number;
  version: string;
}

/** Two requests always in flight through `caddy` until stopped. */
function sampler(caddy: Caddy): { stop: () => Promise<Sample[]> } {
  const samples: Sample[] = [];
  let stopping = false;
  const worker = async () => {
    while (!stopping) {
      const start = Date.now();
      try {
        const r = await requestThrough(caddy, DOMAIN, '/', { timeoutMs: 10_000 });
        samples.push({ start, version: r.status === 200 ? r.body.trim() : `HTTP ${r.status}` });
      } catch (e) {
        samples.push({ start, version: `error ${(e as Error).message}` });
      }
    }
  };
  const workers = [worker(), worker()];
  return {
    async stop() {
      stopping = true;
      await Promise.all(workers);
      return samples.sort((a, b) => a.start - b.start);
    },
  };
}

/** The start of the first request after which every answer is `want` (undefined: never). */
function onlyNewFrom(samples: Sample[], want: string): number | undefined {
  let at: number | undefined;
  for (let i = samples.length - 1; i >= 0; i--) {
    if (samples[i]!.version !== want) break;
    at = samples[i]!.start;
  }
  return at;
}

async function deploys(engine: Engine, repo: string, project: string, caddy: Caddy & { name?: string }, swarm: boolean): Promise<{ ms: number[]; failed: number }> {
  const out: number[] = [];
  let failed = 0;
  for (let i = 0; i < RUNS; i++) {
    const version = i % 2 === 0 ? 'v2' : 'v1';
    writeFiles(repo, files(project, caddy, version === 'v2' ? TEST_IMAGES.appV2 : TEST_IMAGES.appV1, swarm));
    gitCommitAll(repo, version);
    const load = sampler(caddy);
    let ref: number | undefined;
    const r = await engine.apply(
      { dir: repo },
      {
        onEvent: (e: RunEvent) => {
          // Swarm: waffle saw the update `completed`; one engine: the route switches to the healthy container.
          if (swarm && e.type === 'op-done' && e.kind === 'update-swarm-service') ref = e.at;
          if (!swarm && e.type === 'step' && e.step === 'routing') ref ??= e.at;
        },
      },
    );
    // Long enough for the old tasks to be gone and Caddy's DNS lookups to follow.
    await new Promise((res) => setTimeout(res, 4000));
    const samples = await load.stop();
    const only = onlyNewFrom(samples, `waffle ${version}`);
    failed += samples.filter((s) => !/^waffle v\d$/.test(s.version)).length;
    if (!r.ok || ref === undefined || only === undefined) throw new Error(`${swarm ? 'swarm' : 'engine'} deploy ${version}: ok=${r.ok} ref=${ref} onlyNew=${only}`);
    out.push(only - ref);
    log(`${swarm ? 'swarm ' : 'engine'} deploy ${version}: only the new version answers ${only - ref} ms after ${swarm ? "Swarm's update completed" : 'the route switch'} (${samples.length} requests)`);
  }
  return { ms: out, failed };
}

async function main(): Promise<void> {
  const host = await ensureEngine();
  process.env.DOCKER_HOST = host;
  await ensureTestImages(host);
  const docker = await dockerClient();
  const swarmHandle = await joinTestSwarm(docker, host);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-bench-swarm-routes-'));
  const engine = new Engine({ env: { ...process.env, WAFFLE_STATE_DIR: path.join(home, 'state') }, dockerHost: host, stateDir: path.join(home, 'state') });
  const swarmProject = uniqueProject('bsr');
  const engineProject = uniqueProject('ber');
  const container = await startCaddyContainer(host, `${swarmProject}-caddy`);
  const hostCaddy = await startCaddy();
  const repos: string[] = [];
  try {
    const swarmRepo = makeRepo(files(swarmProject, container, TEST_IMAGES.appV1, true), { git: true });
    const engineRepo = makeRepo(files(engineProject, hostCaddy, TEST_IMAGES.appV1, false), { git: true });
    repos.push(swarmRepo, engineRepo);
    for (const [repo, caddy] of [[swarmRepo, container], [engineRepo, hostCaddy]] as const) {
      const r = await engine.apply({ dir: repo });
      if (!r.ok) throw new Error('first apply failed');
      await until(caddy, DOMAIN, '/', (x) => x.body === 'waffle v1\n', 60_000);
    }
    const swarm = await deploys(engine, swarmRepo, swarmProject, container, true);
    const single = await deploys(engine, engineRepo, engineProject, hostCaddy, false);
    console.log(
      JSON.stringify({
        runs: RUNS,
        swarmUpdateCompletedToOnlyNewMs: { median: median(swarm.ms), min: Math.min(...swarm.ms), max: Math.max(...swarm.ms) },
        engineRouteSwitchToOnlyNewMs: { median: median(single.ms), min: Math.min(...single.ms), max: Math.max(...single.ms) },
        failedRequests: { swarm: swarm.failed, engine: single.failed },
      }),
    );
  } finally {
    await engine.destroy({ dir: repos[0]! }).catch(() => undefined);
    await removeSwarmProject(docker, swarmProject).catch(() => undefined);
    await cleanupProject(docker, engineProject).catch(() => undefined);
    await container.stop();
    await hostCaddy.stop();
    for (const r of repos) fs.rmSync(r, { recursive: true, force: true });
    fs.rmSync(home, { recursive: true, force: true });
    await swarmHandle.leave();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
