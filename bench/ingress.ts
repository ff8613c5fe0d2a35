/**
 * Deploying a routed service through Caddy: the time from `apply` start to the new version answering
 * through the proxy, against the health-gated time of the container alone (apply start → the new
 * container passed its healthcheck, from the same apply's events), in the same runs. The difference is
 * what the proxy adds (pushing the route, Caddy loading its new configuration, the first answer); goal
 * under 0.5 s. Then what a long-lived streaming response sees when a deploy switches the route in its
 * middle (a CGI writing a line every 100 ms for 8 s, started with the apply), with a drain shorter
 * than what is left of it and one longer. Last, what Caddy's configuration loads alone do to requests in
 * flight (no Docker): 60 route switches with four requests always in flight.
 *
 * Run: `DOCKER_HOST=… npx tsx bench/ingress.ts` (starts its own Caddy on free ports, needs Debian's
 * `caddy`). BENCH_RUNS sets the number of deploys (default 8). The last stdout line is one JSON object.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { Engine } from '../runtime/engine.ts';
import type { RunEvent } from '../runtime/model.ts';
import { ensureEngine, ensureTestImages, TEST_IMAGES } from '../test/engine.ts';
import { cleanupProject, dockerClient, gitCommitAll, makeRepo, uniqueProject, writeFiles } from '../test/helpers.ts';
import { requestThrough, startCaddy, until, type Caddy } from '../test/caddy.ts';
import { CaddyAdmin } from '../runtime/ingress/caddy.ts';
import type { ProxyTable } from '../runtime/model.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 8);
const DOMAIN = 'bench.test';
const log = (s: string) => process.stderr.write(s + '\n');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const round = (n: number) => Math.round(n);

function files(project: string, caddy: Caddy, version: string, drainSeconds: number): Record<string, string> {
  // A streaming endpoint: /cgi-bin/stream writes 80 lines, one every 100 ms (8 s).
  const cgi = '#!/bin/sh\\necho Content-Type: text/plain\\necho\\ni=0; while [ $i -lt 80 ]; do echo "$V line $i"; i=$((i+1)); sleep 0.1; done\\n';
  return {
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';
export default defineConfig({ project: '${project}', ingress: { caddy: { admin: '${caddy.admin}' }, drainSeconds: ${drainSeconds} } });
`,
    'services/app.ts': `import { defineService } from 'wafflemaker';
export default defineService({
  image: '${TEST_IMAGES.appV1}',
  env: { V: '${version}' },
  command: ['sh', '-c', 'mkdir -p /w/cgi-bin && echo "$V" > /w/index.html && printf \\'${cgi}\\' > /w/cgi-bin/stream && chmod +x /w/cgi-bin/stream && exec httpd -f -p 8080 -h /w'],
  port: 8080,
  routes: [{ domain: '${DOMAIN}' }],
  healthcheck: { http: '/', interval: '100ms', timeout: '2s', retries: 20 },
  stopGracePeriod: '1s',
});
`,
  };
}

/** Polls the proxy until it answers `want`; resolves with the time it first did. */
function firstAnswer(caddy: Caddy, want: string, stop: { done: boolean }): Promise<number | undefined> {
  return (async () => {
    while (!stop.done) {
      try {
        const r = await requestThrough(caddy, DOMAIN, '/', { timeoutMs: 2000 });
        if (r.body === `${want}\n`) return Date.now();
      } catch {
        /* between configurations: try again */
      }
      await new Promise((res) => setTimeout(res, 5));
    }
    return undefined;
  })();
}

/** One streaming request through the proxy: its lines, whether it ended cleanly, and when each line came. */
function stream(caddy: Caddy): Promise<{ lines: string[]; complete: boolean; error?: string; times: number[] }> {
  return new Promise((resolve) => {
    const lines: string[] = [];
    const times: number[] = [];
    let buf = '';
    const req = https.request(
      { host: '127.0.0.1', port: caddy.httpsPort, path: '/cgi-bin/stream', servername: DOMAIN, headers: { Host: DOMAIN }, rejectUnauthorized: false, agent: false },
      (res) => {
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          buf += d;
          let i;
          while ((i = buf.indexOf('\n')) >= 0) {
            lines.push(buf.slice(0, i));
            times.push(Date.now());
            buf = buf.slice(i + 1);
          }
        });
        res.on('end', () => resolve({ lines, times, complete: res.complete && lines.length === 80 }));
        res.on('error', (e) => resolve({ lines, times, complete: false, error: e.message }));
        res.on('aborted', () => resolve({ lines, times, complete: false, error: 'aborted' }));
      },
    );
    req.on('error', (e) => resolve({ lines, times, complete: false, error: e.message }));
    req.end();
  });
}

/**
 * What a Caddy configuration load does to requests in flight, without Docker: two local upstreams, four
 * requests always in flight through Caddy (each on its own connection), and `loads` route switches
 * between the upstreams through the admin API. Counts the requests whose connection was reset.
 */
async function reloadResets(caddy: Caddy, loads: number): Promise<{ loads: number; requests: number; connectionResets: number; httpErrors: number }> {
  const upstream = (v: string) =>
    new Promise<http.Server>((res) => {
      const srv = http.createServer((_q, r) => r.end(`${v}\n`));
      srv.listen(0, '127.0.0.1', () => res(srv));
    });
  const servers = [await upstream('r1'), await upstream('r2')];
  const port = (i: number) => (servers[i]!.address() as { port: number }).port;
  const admin = new CaddyAdmin(caddy.admin);
  const table: ProxyTable = {
    provider: 'caddy',
    project: 'reloads',
    admin: caddy.admin,
    server: 'waffle',
    tls: 'internal',
    routes: [{ domain: 'reloads.test', path: '/', service: 'r', port: port(0), stripPrefix: false }],
    upstreams: { r: '127.0.0.1' },
    maintenance: {},
  };
  await admin.push(table);
  await until(caddy, 'reloads.test', '/', (r) => r.status === 200);
  let stop = false;
  let requests = 0;
  let resets = 0;
  let httpErrors = 0;
  const worker = async () => {
    while (!stop) {
      try {
        const r = await requestThrough(caddy, 'reloads.test', '/');
        requests++;
        if (r.status !== 200) httpErrors++;
      } catch {
        requests++;
        resets++;
      }
    }
  };
  const workers = [worker(), worker(), worker(), worker()];
  for (let i = 1; i <= loads; i++) {
    table.routes[0]!.port = port(i % 2);
    await admin.push(table);
    await new Promise((r) => setTimeout(r, 300));
  }
  stop = true;
  await Promise.all(workers);
  await admin.push({ ...table, routes: [] });
  for (const s of servers) s.close();
  return { loads, requests, connectionResets: resets, httpErrors };
}

async function main(): Promise<void> {
  const host = await ensureEngine();
  process.env.DOCKER_HOST = host;
  await ensureTestImages(host);
  const docker = await dockerClient();
  const caddy = await startCaddy();
  const project = uniqueProject('bi');
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-bench-state-'));
  const engine = new Engine({ env: { ...process.env, DOCKER_HOST: host }, stateDir });
  let repo = '';
  try {
    repo = makeRepo(files(project, caddy, 'v0', 0.5), { git: true });
    const first = await engine.apply({ dir: repo });
    if (!first.ok) throw new Error('the first apply failed');
    await until(caddy, DOMAIN, '/', (r) => r.body === 'v0\n');

    const proxied: number[] = [];
    const healthy: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
      const version = `v${i}`;
      writeFiles(repo, files(project, caddy, version, 0.5));
      gitCommitAll(repo, version);
      let healthyAt: number | undefined;
      let started: number | undefined;
      const onEvent = (e: RunEvent) => {
        // The health gate passed: the next step of the replace (the proxy's routing step) starts.
        if (e.type === 'step' && e.step === 'routing' && e.service === 'app' && healthyAt === undefined) healthyAt = e.at;
        if (e.type === 'run-start') started = e.at;
      };
      const stop = { done: false };
      const t0 = Date.now();
      const answered = firstAnswer(caddy, version, stop);
      const r = await engine.apply({ dir: repo }, { onEvent });
      const at = await Promise.race([answered, new Promise<undefined>((res) => setTimeout(() => res(undefined), 5000))]);
      stop.done = true;
      if (!r.ok || at === undefined || healthyAt === undefined) throw new Error(`deploy ${version}: ok=${r.ok} answered=${at} healthy=${healthyAt}`);
      const start = started ?? t0;
      proxied.push(at - start);
      healthy.push(healthyAt - start);
      log(`deploy ${version}: healthy after ${healthyAt - start} ms, answering through Caddy after ${at - start} ms (+${at - healthyAt} ms)`);
    }

    // A streaming response across a switch: with a drain shorter than the stream, and with a longer one.
    const streaming: Record<string, unknown> = {};
    for (const drain of [1, 8]) {
      const version = `s${drain}`;
      writeFiles(repo, files(project, caddy, version, drain));
      gitCommitAll(repo, `${version} (drain ${drain} s)`);
      // The drain setting itself is part of the next replace's steps: apply it first, then stream across a deploy.
      await engine.apply({ dir: repo });
      const next = `${version}b`;
      writeFiles(repo, files(project, caddy, next, drain));
      gitCommitAll(repo, next);
      const s = stream(caddy);
      let switchedAt = 0;
      await engine.apply({ dir: repo }, { onEvent: (e) => void (e.type === 'step' && e.step === 'routing' && (switchedAt = e.at)) });
      const got = await s;
      const afterSwitch = got.times.filter((t) => t > switchedAt).length;
      streaming[`drain${drain}s`] = {
        lines: got.lines.length,
        of: 80,
        complete: got.complete,
        linesAfterSwitch: afterSwitch,
        fromVersions: [...new Set(got.lines.map((l) => l.split(' ')[0]))],
        lastLineMsAfterSwitch: got.times.length ? got.times[got.times.length - 1]! - switchedAt : null,
        ...(got.error ? { error: got.error } : {}),
      };
      log(`streaming across a switch, drain ${drain} s: ${JSON.stringify(streaming[`drain${drain}s`])}`);
    }

    const reloads = await reloadResets(caddy, 60);
    log(`Caddy configuration loads under load: ${JSON.stringify(reloads)}`);

    const overhead = proxied.map((p, i) => p - healthy[i]!);
    const figures = {
      bench: 'ingress',
      runs: RUNS,
      healthGatedMs: { median: round(median(healthy)), max: Math.max(...healthy) },
      answeringThroughProxyMs: { median: round(median(proxied)), max: Math.max(...proxied) },
      proxyOverheadMs: { median: round(median(overhead)), max: Math.max(...overhead) },
      goalOverheadMs: 500,
      goalMet: median(overhead) < 500,
      streaming,
      caddyReloads: reloads,
    };
    process.stdout.write(JSON.stringify(figures) + '\n');
  } finally {
    await cleanupProject(docker, project);
    await caddy.stop();
    if (repo) fs.rmSync(repo, { recursive: true, force: true });
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

await main();
