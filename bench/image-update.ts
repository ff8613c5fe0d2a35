/**
 * Registry push → new version answering, next to git push → new version answering, with the real
 * `waffle agent`, the real engine, a bare repository and Debian's docker-registry (notifications to the
 * agent's /hooks/registry), in the same run, alternated. Each round changes what the service answers
 * (the v1 and v2 test pages alternate), and the clock stops when its published port answers the new
 * page. The registry figure starts when `docker push` has returned (the tag is in the registry), the git
 * figure when `git push` has returned and the signed webhook is sent; both include pulling the image.
 *
 * Run: `npx tsx bench/image-update.ts` (starts the engine itself, builds dist/). BENCH_RUNS (3). The last
 * line is one JSON object of figures. bench/agent.ts runs the same measurement (`imageUpdateFigures`)
 * and reports it next to its git push figure.
 */
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ensureEngine, ensureTestImages, TEST_IMAGES } from '../test/engine.ts';
import { cleanupProject, dockerClient, freePort, PKG_ROOT, uniqueProject } from '../test/helpers.ts';
import { pushImage, removeLocalImage, startRegistry } from '../test/registry.ts';
import { config, deliver, makeRemote, pushPayload, startAgent, tempRoot, waitFor } from '../test/agent-support.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const log = (m: string) => process.stderr.write(m + '\n');

export interface ImageUpdateFigures {
  runs: number;
  registry_push_to_answer_median_ms: number;
  git_push_to_answer_median_ms: number;
  registry_over_git_ratio: number;
  registry_push_to_answer_ms: number[];
  git_push_to_answer_ms: number[];
}

/** Registry push → answering and git push → answering, `runs` times each, alternated (dist/ built, engine up). */
export async function imageUpdateFigures(runs = RUNS): Promise<ImageUpdateFigures> {
  const host = process.env.DOCKER_HOST!;
  await ensureTestImages(host);
  const docker = await dockerClient();
  const project = uniqueProject('benchimg');
  const root = tempRoot('waffle-bench-img-');
  const agentPort = await freePort();
  const webPort = await freePort();
  const secret = `regsec-${Math.random().toString(36).slice(2)}`;
  const registry = await startRegistry({ notify: { url: `http://127.0.0.1:${agentPort}/hooks/registry`, headers: { Authorization: `Bearer ${secret}` } } });
  const image = (tag: string) => `${registry.host}/waffle/${project}:${tag}`;
  const refs: string[] = [];
  const push = (tag: string, version: 1 | 2) => {
    pushImage(host, version === 1 ? TEST_IMAGES.appV1 : TEST_IMAGES.appV2, image(tag));
    removeLocalImage(host, image(tag));
    refs.push(image(tag));
  };
  const service = (tag: string) => `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${image(tag)}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  ports: ['127.0.0.1:${webPort}:8080'],
  healthcheck: { http: '/index.html', interval: '200ms', timeout: '3s', retries: 20 },
  stopGracePeriod: '1s',
  update: { tags: { semver: '^1' } },
});
`;
  const answers = async (page: string) => {
    try {
      const r = await fetch(`http://127.0.0.1:${webPort}/`, { signal: AbortSignal.timeout(1000) });
      return (await r.text()).trim() === page;
    } catch {
      return false;
    }
  };
  const waitPage = async (page: string) => {
    const deadline = Date.now() + 120_000;
    while (!(await answers(page))) {
      if (Date.now() > deadline) throw new Error(`the service never answered "${page}"`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const secretFile = path.join(root, 'registry-secret');
  fs.writeFileSync(secretFile, secret + '\n', { mode: 0o600 });
  push('1.0.0', 1);
  const remote = makeRemote(root, { 'waffle.config.ts': config(project), 'services/web.ts': service('1.0.0') });
  const agent = await startAgent({ root, repo: remote.bare, stateDir: path.join(root, 'state'), port: agentPort, args: ['--registry-secret-file', secretFile] });
  const idle = () => waitFor('the queue to be empty', async () => (await agent.api<{ queue: number }>('GET', '/healthz', undefined, null)).json.queue === 0, 120_000);
  const registryMs: number[] = [];
  const gitMs: number[] = [];
  try {
    await waitPage('waffle v1');
    await idle();
    let page: 1 | 2 = 1;
    for (let i = 1; i <= runs; i++) {
      // Registry: a new tag the policy allows.
      page = page === 1 ? 2 : 1;
      pushImage(host, page === 1 ? TEST_IMAGES.appV1 : TEST_IMAGES.appV2, image(`1.${i}.0`));
      removeLocalImage(host, image(`1.${i}.0`));
      refs.push(image(`1.${i}.0`));
      let t0 = performance.now();
      await waitPage(`waffle v${page}`);
      registryMs.push(performance.now() - t0);
      await idle();
      log(`registry push → answering: ${Math.round(registryMs.at(-1)!)} ms`);

      // Git: the file names another tag (pushed beforehand, outside the policy's range so only git moves
      // it, and below the next registry round's tag so that one is still an update).
      page = page === 1 ? 2 : 1;
      push(`0.${i}.0`, page);
      await idle();
      const commit = remote.commit({ 'services/web.ts': service(`0.${i}.0`) }, `web 0.${i}.0`);
      t0 = performance.now();
      const r = await deliver(agent.url, { body: pushPayload(commit) });
      if (r.status !== 202) throw new Error(`the push webhook answered ${r.status}`);
      await waitPage(`waffle v${page}`);
      gitMs.push(performance.now() - t0);
      await idle();
      log(`git push → answering: ${Math.round(gitMs.at(-1)!)} ms`);
    }
  } finally {
    await agent.stop().catch(() => undefined);
    await cleanupProject(docker, project);
    for (const r of refs) removeLocalImage(host, r);
    await registry.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
  return {
    runs,
    registry_push_to_answer_median_ms: Math.round(median(registryMs)),
    git_push_to_answer_median_ms: Math.round(median(gitMs)),
    registry_over_git_ratio: Number((median(registryMs) / median(gitMs)).toFixed(2)),
    registry_push_to_answer_ms: registryMs.map(Math.round),
    git_push_to_answer_ms: gitMs.map(Math.round),
  };
}

async function main(): Promise<void> {
  process.env.DOCKER_HOST = await ensureEngine();
  const b = spawnSync('npm', ['run', 'build'], { cwd: PKG_ROOT, encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`npm run build failed: ${b.stderr}`);
  process.stdout.write(JSON.stringify(await imageUpdateFigures()) + '\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
