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
  healthcheck: { http: '/index.html', interval: '300ms', timeout: '3s', retries: 5 },
  stopGracePeriod: '1s',
});
`;
  }
  return out;
}

type Trigger =
  /** The `nth` step event named `step` in waffle's NDJSON stream. */
  | { step: string; nth: number }
  /** Docker's `kill` event (signal 15: the stop has begun) of one of the project's old containers. */
  | { oldStopping: true };

/** Runs `waffle apply --yes --plain --json` and SIGKILLs it at `trigger`. */
async function applyKilledAt(cwd: string, project: string, trigger: Trigger): Promise<{ killed: boolean; events: Array<Record<string, unknown>> }> {
  const dockerEvents =
    'oldStopping' in trigger
      ? ((await docker.getEvents({ filters: { label: [`dev.wafflemaker.project=${project}`], event: ['kill'] } })) as unknown as NodeJS.ReadableStream & { destroy(): void })
      : undefined;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WAFFLE_BIN, 'apply', '--yes', '--plain', '--json'], {
      cwd,
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let killed = false;
    let seen = 0;
    const events: Array<Record<string, unknown>> = [];
    const kill = () => {
      if (killed) return;
      killed = true;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => {
      kill();
      reject(new Error(`no trigger ${JSON.stringify(trigger)} within 120 s: ${JSON.stringify(events)}`));
    }, 120_000);
    let dockerBuf = '';
    dockerEvents?.on('data', (d: Buffer) => {
      dockerBuf += d.toString();
      let nl: number;
      while ((nl = dockerBuf.indexOf('\n')) >= 0) {
        const e = JSON.parse(dockerBuf.slice(0, nl)) as { Actor?: { Attributes?: Record<string, string> } };
        dockerBuf = dockerBuf.slice(nl + 1);
        const a = e.Actor?.Attributes ?? {};
        if (a.signal === '15' && !(a.name ?? '').includes('-next-')) kill();
      }
    });
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const e = JSON.parse(line) as Record<string, unknown>;
        events.push(e);
        if ('step' in trigger && e.type === 'step' && e.step === trigger.step && ++seen === trigger.nth) kill();
      }
    });
    child.on('close', () => {
      clearTimeout(timer);
      dockerEvents?.destroy();
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

// While Docker stops the first old container (waffle asked, Docker finishes the stop without it: the old
// one ends Exited 137 while its candidate runs), and at the last service's switch (one candidate
// mid-switch, the others serving with the alias while their old ones drain).
const SCENARIOS: Array<{ name: string; trigger: Trigger; oldExits: boolean }> = [
  { name: 'while Docker stops an old container', trigger: { oldStopping: true }, oldExits: true },
  { name: `at switching #${SERVICES.length}`, trigger: { step: 'switching', nth: SERVICES.length }, oldExits: false },
];
for (const { name, trigger, oldExits } of SCENARIOS) {
  test(`kill -9 ${name} while replacing ${SERVICES.length} services: the next apply keeps the candidates and never leaves a service without a running container`, async () => {
    const project = uniqueProject('cr');
    projects.push(project);
    const repo = makeRepo(files(project, TEST_IMAGES.appV1), { git: true });
    dirs.push(repo);
    const first = await waffle(['apply', '--yes', '--plain'], { cwd: repo });
    assert.equal(first.code, 0, first.stderr + first.stdout);

    writeFiles(repo, files(project, TEST_IMAGES.appV2));
    gitCommitAll(repo, 'v2 everywhere');
    const killed = await applyKilledAt(repo, project, trigger);
    assert.ok(killed.killed, `killed ${name}`);
    if (oldExits) {
      // The stop waffle asked for completes without it: the old container ends Exited (137: its httpd, PID 1,
      // ignores SIGTERM and is killed after the 1 s grace).
      const deadline = Date.now() + 30_000;
      let exited: string[] = [];
      while (Date.now() < deadline) {
        exited = (await snapshot(docker, project)).containers.filter((c) => c.state === 'exited').map((c) => c.name);
        if (exited.length > 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(exited.length > 0 && exited.every((n) => !n.includes('-next-')), `an old container exited: ${exited}`);
      const info = await docker.getContainer(exited[0]!).inspect();
      assert.equal(info.State.ExitCode, 137);
    }
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
    const gapText = seen.gaps.length
      ? `${seen.gaps.length} polls (${seen.gaps.at(-1)!.at - seen.gaps[0]!.at} ms from first to last) without a running ${[...new Set(seen.gaps.flatMap((g) => g.missing))].join(', ')}`
      : 'none';
    console.log(`# kill ${name}: second apply ${ms} ms, ${seen.polls} polls, gaps: ${gapText}, ops ${kinds.join(' ')}`);
    assert.ok(seen.polls > 20, `polled often enough: ${seen.polls}`);
    assert.equal(gapText, 'none', 'every service had a running container at every poll');

    const snap = await snapshot(docker, project);
    for (const s of SERVICES) {
      // Besides at most one container kept stopped for rollback (the one the replace let go).
      const all = snap.containers.filter((c) => c.labels['dev.wafflemaker.service'] === s);
      const kept = all.filter((c) => c.name === `${project}-${s}-kept-${c.labels['dev.wafflemaker.generation']}`);
      assert.ok(kept.length <= 1 && kept.every((c) => c.state !== 'running'), `${s}: ${JSON.stringify(kept.map((c) => [c.name, c.state]))}`);
      const mine = all.filter((c) => !kept.includes(c));
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
