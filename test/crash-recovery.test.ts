/**
 * `kill -9` of a real `waffle apply` (bin/waffle.js, its NDJSON event stream watched to kill it at a
 * chosen step) in the middle of replacing several services, then `waffle apply` again. During the
 * whole second apply every service always has a running container, the running candidate that already
 * has the desired configuration is kept (same container id: renamed, not recreated), and linked
 * clients reach the new version by service name afterwards.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, execIn, gitCommitAll, makeRepo, parseNdjson, snapshot, uniqueProject, waffle, WAFFLE_BIN, writeFiles } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';

let docker: Dockerode;
const projects: string[] = [];
const dirs: string[] = [];
const SERVICES = ['s1', 's2', 's3'];

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
});

after(async () => {
  for (const p of projects) await cleanupProject(docker, p);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function files(project: string, image: string): Record<string, string> {
  const out: Record<string, string> = {
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
    'services/client.ts': `import { defineService } from 'wafflemaker';
${SERVICES.map((s) => `import ${s} from './${s}';`).join('\n')}
export default defineService({
  image: '${TEST_IMAGES.busybox}',
  command: 'sleep 100000',
  connects: [${SERVICES.join(', ')}],
  stopGracePeriod: '1s',
});
`,
  };
  for (const s of SERVICES) {
    out[`services/${s}.ts`] = `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${image}',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  healthcheck: { http: '/index.html', interval: '300ms', timeout: '1s', retries: 2 },
  stopGracePeriod: '1s',
});
`;
  }
  return out;
}

/** Runs `waffle apply --yes --plain --json` and SIGKILLs it at the `nth` step event named `killAt`. */
function applyKilledAt(cwd: string, killAt: string, nth: number): Promise<{ killed: boolean; events: Array<Record<string, unknown>> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WAFFLE_BIN, 'apply', '--yes', '--plain', '--json'], {
      cwd,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buf = '';
    let killed = false;
    let seen = 0;
    const events: Array<Record<string, unknown>> = [];
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no ${killAt} step within 60 s: ${JSON.stringify(events)}`));
    }, 60_000);
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const e = JSON.parse(line) as Record<string, unknown>;
        events.push(e);
        if (!killed && e.type === 'step' && e.step === killAt && ++seen === nth) {
          killed = true;
          child.kill('SIGKILL');
        }
      }
    });
    child.on('close', () => {
      clearTimeout(timer);
      resolve({ killed, events });
    });
  });
}

/** Polls the project's running containers until stopped; records every poll where a service had none. */
function watchRunning(project: string, services: string[]): { stop: () => Promise<{ polls: number; gaps: Array<{ at: number; missing: string[] }> }> } {
  let running = true;
  let polls = 0;
  const gaps: Array<{ at: number; missing: string[] }> = [];
  const loop = (async () => {
    while (running) {
      const list = await docker.listContainers({ filters: { label: [`dev.wafflemaker.project=${project}`], status: ['running'] } });
      polls++;
      const have = new Set(list.map((c) => c.Labels['dev.wafflemaker.service']));
      const missing = services.filter((s) => !have.has(s));
      if (missing.length > 0) gaps.push({ at: Date.now(), missing });
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { polls, gaps };
    },
  };
}

// At the first old container's stop (Docker finishes that stop: the old one ends Exited), and at the last
// service's switch (one candidate mid-switch, the others serving with the alias while their old ones drain).
for (const [killAt, nth] of [['stopping-old', 1], ['switching', SERVICES.length]] as const) {
  test(`kill -9 at ${killAt} #${nth} while replacing ${SERVICES.length} services: the next apply keeps the candidates and never leaves a service without a running container`, async () => {
    const project = uniqueProject('cr');
    projects.push(project);
    const repo = makeRepo(files(project, TEST_IMAGES.appV1), { git: true });
    dirs.push(repo);
    const first = await waffle(['apply', '--yes', '--plain'], { cwd: repo });
    assert.equal(first.code, 0, first.stderr + first.stdout);

    writeFiles(repo, files(project, TEST_IMAGES.appV2));
    gitCommitAll(repo, 'v2 everywhere');
    const killed = await applyKilledAt(repo, killAt, nth);
    assert.ok(killed.killed, `killed at ${killAt}`);
    const candidates = new Map<string, string>();
    for (const c of (await snapshot(docker, project)).containers) {
      if (c.name.includes('-next-') && c.state === 'running') candidates.set(c.labels['dev.wafflemaker.service']!, c.id);
    }
    assert.ok(candidates.size >= 2, `running candidates after the kill: ${JSON.stringify([...candidates])}`);

    const watch = watchRunning(project, [...SERVICES, 'client']);
    const t0 = Date.now();
    const second = await waffle(['apply', '--yes', '--plain', '--json'], { cwd: repo });
    const ms = Date.now() - t0;
    const seen = await watch.stop();
    assert.equal(second.code, 0, second.stderr + second.stdout);
    const events = parseNdjson(second.stdout);
    const kinds = events.filter((e) => e.type === 'op-start').map((e) => `${e.kind}:${e.service}`);
    console.log(`# kill at ${killAt}: second apply ${ms} ms, ${seen.polls} polls, gaps ${JSON.stringify(seen.gaps)}, ops ${kinds.join(' ')}`);
    assert.ok(seen.polls > 20, `polled often enough: ${seen.polls}`);
    assert.deepEqual(seen.gaps, [], 'every service had a running container at every poll');

    const snap = await snapshot(docker, project);
    for (const s of SERVICES) {
      const mine = snap.containers.filter((c) => c.labels['dev.wafflemaker.service'] === s);
      assert.equal(mine.length, 1, `${s}: ${JSON.stringify(mine.map((c) => [c.name, c.state]))}`);
      assert.equal(mine[0]!.name, `${project}-${s}`);
      assert.equal(mine[0]!.state, 'running');
      assert.equal(mine[0]!.image, TEST_IMAGES.appV2);
      const cand = candidates.get(s);
      if (cand) {
        assert.equal(mine[0]!.id, cand, `${s}: the candidate was kept, not recreated`);
        assert.ok(kinds.includes(`rename-service:${s}`), `${s} finished by a rename: ${kinds.join(' ')}`);
        assert.ok(!kinds.includes(`replace-service:${s}`) && !kinds.includes(`create-service:${s}`), kinds.join(' '));
      }
    }
    // Linked clients reach every service by name, served by the new version.
    const client = snap.containers.find((c) => c.name === `${project}-client`)!;
    for (const s of SERVICES) {
      const r = await execIn(docker, client.id, ['timeout', '3', 'wget', '-q', '-O-', `http://${s}:8080/`]);
      assert.match(r.output, /waffle v2/, `${s} by name: ${r.output}`);
    }
    // Nothing left to do.
    const again = await waffle(['plan', '--detailed-exitcode'], { cwd: repo });
    assert.equal(again.code, 0, again.stderr + again.stdout);
  });
}
