/**
 * The registry side of image updates against the real registry (Debian's docker-registry on 127.0.0.1):
 * its push notifications reach the hook (shared secret in the header the registry is configured to send),
 * pushed tags are matched to the services' policies, a bad secret is refused; the v2 API client lists
 * tags and reads the same digests the notifications carried; the poll finds tags pushed while no
 * notification could arrive.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { History } from '../runtime/history/history.ts';
import { ImageUpdates } from '../runtime/agent/image-updates.ts';
import type { Trigger } from '../runtime/agent/trigger.ts';
import { registryHook } from '../runtime/agent/registry-hook.ts';
import { RegistryClient } from '../runtime/images/registry-client.ts';
import { Engine } from '../runtime/engine.ts';
import type { ServiceGraph } from '../runtime/model.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { freePort, makeRepo, uniqueProject } from './helpers.ts';
import { pushImage, removeLocalImage, startRegistry, type Registry } from './registry.ts';

const DOCKER_HOST = process.env.DOCKER_HOST!;
const SECRET = 'registry-hook-secret-' + Math.random().toString(36).slice(2);
const project = uniqueProject('imgreg');
let registry: Registry;
let server: http.Server;
let history: History;
let updates: ImageUpdates;
let graph: ServiceGraph;
const triggers: Trigger[] = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-imgreg-'));
const pushed: string[] = [];
const log = { info() {}, warn() {}, error() {} };

/** Resolves once `check` holds, polling; fails with `what` after a generous deadline. */
async function eventually<T>(what: string, check: () => T | undefined | false, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function push(tag: string): void {
  const ref = `${registry.host}/waffle/${project}:${tag}`;
  pushImage(DOCKER_HOST, TEST_IMAGES.appV1, ref);
  removeLocalImage(DOCKER_HOST, ref);
  pushed.push(ref);
}

before(async () => {
  await ensureTestImages(DOCKER_HOST);
  history = History.open(path.join(tmp, 'history.db'));
  let n = 0;
  updates = new ImageUpdates({ state: history, log });
  updates.start((t) => {
    triggers.push(t);
    return { deployment: `d${++n}`, outcome: 'deployed' as const };
  });
  const handle = registryHook({
    secret: SECRET,
    updates,
    record: (d) => history.recordDelivery(d),
  });
  const port = await freePort();
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const r = req.method === 'POST' && req.url?.startsWith('/hooks/registry') ? handle({ headers: req.headers, url: req.url, body: Buffer.concat(chunks) }) : { status: 404, body: {} };
      res.writeHead(r.status, { 'content-type': 'application/json' }).end(JSON.stringify(r.body));
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  registry = await startRegistry({ notify: { url: `http://127.0.0.1:${port}/hooks/registry`, headers: { Authorization: `Bearer ${SECRET}` } } });
  const repo = makeRepo({
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${project}' });\n`,
    'services/api.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: '${registry.host}/waffle/${project}:1.2.0', update: { tags: { semver: '^1.2' } } });\n`,
    'services/web.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: '${registry.host}/waffle/${project}-web:sha-aaa', update: { tags: { glob: 'sha-*' } } });\n`,
  });
  graph = await new Engine({ env: { PATH: process.env.PATH } }).load({ dir: repo });
  fs.rmSync(repo, { recursive: true, force: true });
  // What a deploy does with the graph: the updates learn the project's policies.
  updates.desired(graph);
});

after(async () => {
  await updates?.stop();
  await registry?.stop();
  await new Promise((r) => server?.close(r));
  history?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('pushes reach the hook; semver picks the highest allowed version and records its digest', async () => {
  push('1.2.0');
  push('1.3.0');
  push('2.0.0');
  push('1.10.1');
  push('latest');
  const rec = await eventually('1.10.1 chosen', () => updates.overrides(project).api?.tag === '1.10.1' && updates.overrides(project).api);
  assert.equal(rec.image, `${registry.host}/waffle/${project}:1.10.1`);
  assert.match(rec.digest ?? '', /^sha256:[0-9a-f]{64}$/);
  // 2.0.0 is outside the range; nothing chose it, and the web service (another repository) is untouched.
  await eventually('every push delivered', () => history.deliveries({ limit: 50 }).filter((d) => d.source === 'registry').length >= 5);
  assert.notEqual(updates.overrides(project).api?.tag, '2.0.0');
  assert.equal(updates.overrides(project).web, undefined);
  const outcomes = history.deliveries({ limit: 50 }).map((d) => d.outcome);
  assert.ok(outcomes.some((o) => /ignored: .*:2\.0\.0: api: .*not allowed by its policy/.test(o)), outcomes.join('\n'));
  assert.ok(outcomes.some((o) => /ignored: .*:latest: api: .*not allowed by its policy/.test(o)), outcomes.join('\n'));
  assert.ok(triggers.every((t) => t.kind === 'registry' && /image update: api /.test(t.reason ?? '')), JSON.stringify(triggers));
  assert.ok(triggers.some((t) => /api 1\.2\.0 → 1\.3\.0|→ 1\.10\.1/.test(t.reason ?? '')));

  // The API client reads the same digest the notification carried.
  const client = new RegistryClient({ host: registry.host });
  const tags = await client.listTags(`waffle/${project}`);
  assert.deepEqual([...tags].sort(), ['1.10.1', '1.2.0', '1.3.0', '2.0.0', 'latest']);
  assert.equal(await client.manifestDigest(`waffle/${project}`, '1.10.1'), rec.digest);
  assert.equal(await client.manifestDigest(`waffle/${project}`, 'nope'), undefined);
});

test('a non-matching tag of a followed repository changes nothing', async () => {
  const before = triggers.length;
  push('feature-x');
  await eventually('feature-x delivered', () => history.deliveries({ limit: 50 }).some((d) => d.outcome.includes(':feature-x')));
  assert.equal(triggers.length, before);
  assert.equal(updates.overrides(project).api?.tag, '1.10.1');
});

test('a bad or missing shared secret is refused and recorded; nothing is remembered', async () => {
  const url = (server.address() as { port: number }).port;
  const body = JSON.stringify({ events: [{ id: 'forged-1', action: 'push', timestamp: new Date().toISOString(), target: { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', repository: `waffle/${project}`, tag: '1.99.0', digest: 'sha256:' + 'f'.repeat(64) }, request: { host: registry.host } }] });
  for (const headers of [{ authorization: 'Bearer wrong-secret' }, {} as Record<string, string>]) {
    const res = await fetch(`http://127.0.0.1:${url}/hooks/registry`, { method: 'POST', headers: { 'content-type': 'application/vnd.docker.distribution.events.v1+json', ...headers }, body });
    assert.equal(res.status, 401);
  }
  assert.equal(history.deliveries({ limit: 100 }).filter((d) => d.outcome === 'refused: bad secret').length, 2);
  assert.ok(!updates.candidates(`${registry.host}/waffle/${project}`).some((c) => c.tag === '1.99.0'));
  assert.equal(updates.overrides(project).api?.tag, '1.10.1');
  // The same body with the secret in the query (Docker Hub's way) is accepted.
  const ok = await fetch(`http://127.0.0.1:${url}/hooks/registry?secret=${encodeURIComponent(SECRET)}`, { method: 'POST', body });
  assert.equal(ok.status, 202);
  assert.equal(updates.overrides(project).api?.tag, '1.99.0');
});

test('the poll finds tags the registry could not notify (v2 tag list and manifest digests)', async () => {
  // A separate registry without notifications: only the poll can see its tags.
  const quiet = await startRegistry();
  const pollProject = uniqueProject('imgpoll');
  const state = History.open(path.join(tmp, 'poll.db'));
  try {
    const seen: Trigger[] = [];
    const u = new ImageUpdates({ state, log });
    u.start((t) => (seen.push(t), { deployment: 'p1', outcome: 'deployed' as const }));
    const image = `${quiet.host}/waffle/${pollProject}`;
    for (const tag of ['main-7', 'main-12', 'main-9', 'other-99']) {
      pushImage(DOCKER_HOST, TEST_IMAGES.appV1, `${image}:${tag}`);
      removeLocalImage(DOCKER_HOST, `${image}:${tag}`);
    }
    const repo = makeRepo({
      'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${pollProject}', updates: { poll: '10s' } });\n`,
      'services/api.ts': `import { defineService } from 'wafflemaker';\nexport default defineService({ image: '${image}:main-1', update: { tags: { regex: '^main-(?<n>\\\\d+)$', sortBy: 'n' } } });\n`,
    });
    const g = await new Engine({ env: { PATH: process.env.PATH } }).load({ dir: repo });
    fs.rmSync(repo, { recursive: true, force: true });
    assert.equal(g.updates?.pollMs, 10_000);
    u.desired(g);
    const r = await u.poll();
    const client = new RegistryClient({ host: quiet.host });
    assert.deepEqual(r?.updates, [{ service: 'api', from: 'main-1', to: 'main-12', digest: await client.manifestDigest(`waffle/${pollProject}`, 'main-12') }]);
    assert.match(r?.updates[0]?.digest ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.equal(seen[0]?.kind, 'registry-poll');
    assert.deepEqual(u.candidates(`${quiet.host}/waffle/${pollProject}`).map((c) => c.tag).sort(), ['main-12', 'main-7', 'main-9']);
    // Nothing new: the next poll queues nothing.
    assert.equal(await u.poll(), undefined);
    await u.stop();
  } finally {
    state.close();
    await quiet.stop();
  }
});
