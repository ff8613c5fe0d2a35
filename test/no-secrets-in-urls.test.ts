/**
 * Secret values never appear in a Docker request line. A socket proxy that logs requests, or a dockerd
 * in debug mode, records method and URL; only bodies may carry configuration.
 *
 * A real `waffle apply` (the built CLI) of a repository with an embedded-store secret in a service's
 * environment runs through the recording proxy in front of the real engine. No request line holds the
 * canary value, raw or URL-encoded, while the body of `POST /containers/create` does hold it (so the
 * check would see a leak). Create calls carry only their query parameters in the URL: the container's
 * name, nothing for networks and volumes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import querystring from 'node:querystring';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, makeRepo, uniqueProject, waffle } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { startSocketProxy, type SocketProxy } from './doubles/socket-proxy.ts';
import { secretFilesRoot } from '../runtime/secrets/files.ts';

const project = uniqueProject('url');
const rand = () => Math.random().toString(36).slice(2, 10);
// Characters that URL encoding changes, so an encoded leak looks different from the raw value.
const CANARY = `canary/${rand()}+${rand()}=&x ${rand()}`;
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-urls-'));
const env = {
  WAFFLE_AGE_IDENTITY_FILE: path.join(home, 'id', 'age.key'),
  WAFFLE_AGE_IDENTITY: '',
  WAFFLE_STATE_DIR: path.join(home, 'state'),
};
let docker: Dockerode;
let proxy: SocketProxy;
let repo: string;

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!, { busybox: TEST_IMAGES.busybox });
  proxy = await startSocketProxy(process.env.DOCKER_HOST);
  repo = makeRepo(
    {
      'waffle.config.ts': `import { defineConfig, defineSecrets } from 'wafflemaker';
export const secrets = defineSecrets({ app: { provider: 'embedded', keys: ['token'] } });
export default defineConfig({ project: '${project}', secrets });
`,
      // A secret in env, a named volume and a link (a second network): every kind of create call.
      'services/api.ts': `import { defineService } from 'wafflemaker';
import { secrets } from '../waffle.config';
export default defineService({
  image: '${TEST_IMAGES.busybox}',
  command: 'sleep 3600',
  stopGracePeriod: '1s',
  env: { APP_TOKEN: secrets.app.token, MODE: 'prod' },
  volumes: [{ name: 'data', target: '/data' }],
});
`,
      'services/worker.ts': `import { defineService } from 'wafflemaker';
import api from './api';
export default defineService({ image: '${TEST_IMAGES.busybox}', command: 'sleep 3600', stopGracePeriod: '1s', connects: [api] });
`,
      '.gitignore': '.waffle/\n',
    },
    { git: true },
  );
  for (const [args, input] of [
    [['secrets', 'init'], undefined],
    [['secrets', 'set', 'app.token'], CANARY],
  ] as Array<[string[], string | undefined]>) {
    const r = await waffle(args, { cwd: repo, env, ...(input !== undefined ? { input } : {}) });
    assert.equal(r.code, 0, r.stderr);
  }
});

after(async () => {
  await proxy?.close();
  if (docker) await cleanupProject(docker, project);
  fs.rmSync(path.join(secretFilesRoot(), project), { recursive: true, force: true });
  if (repo) fs.rmSync(repo, { recursive: true, force: true });
  fs.rmSync(home, { recursive: true, force: true });
});

test('apply sends the secret only in request bodies, never in a request line', async () => {
  proxy.reset();
  const r = await waffle(['apply', '--yes', '--plain'], { cwd: repo, env: { ...env, DOCKER_HOST: proxy.host } });
  assert.equal(r.code, 0, r.stderr);

  const lines = proxy.requests.map((q) => `${q.method} ${q.url}`);
  const forms = [CANARY, encodeURIComponent(CANARY), querystring.escape(CANARY), CANARY.replace(/ /g, '+'), encodeURIComponent(CANARY).replace(/%20/g, '+')];
  for (const line of lines) {
    for (const f of forms) assert.ok(!line.includes(f), `a request line carries the secret value: ${line.split('?')[0]}`);
    // Neither any part of it (the random pieces).
    for (const piece of CANARY.split(/[^a-z0-9]+/).filter((p) => p.length >= 8)) {
      assert.ok(!line.includes(piece), `a request line carries part of the secret value: ${line.split('?')[0]}`);
    }
  }

  // The check can see a leak: the create body of the service that uses the secret does carry the value.
  const creates = proxy.requests.filter((q) => q.method === 'POST' && /\/containers\/create(\?|$)/.test(q.url));
  assert.equal(creates.length, 2, `expected two container creates, saw: ${lines.join('\n')}`);
  const withSecret = creates.filter((q) => q.body.includes(JSON.stringify(`APP_TOKEN=${CANARY}`).slice(1, -1)));
  assert.equal(withSecret.length, 1, 'the create body of api carries APP_TOKEN=<value>');

  // Create calls carry only their query parameters in the URL.
  for (const q of creates) {
    const query = new URLSearchParams(q.url.split('?')[1] ?? '');
    assert.deepEqual([...query.keys()], ['name'], `container create query: ${q.url}`);
    const body = JSON.parse(q.body) as Record<string, unknown>;
    assert.equal(body.name, undefined, 'the name goes in the query, not the body');
    assert.ok(Array.isArray(body.Env) && typeof body.Image === 'string', 'the configuration is in the body');
  }
  const otherCreates = proxy.requests.filter((q) => q.method === 'POST' && /\/(networks|volumes)\/create/.test(q.url));
  assert.ok(otherCreates.some((q) => q.url.includes('/networks/create')), `no network was created: ${lines.join('\n')}`);
  assert.ok(otherCreates.some((q) => q.url.includes('/volumes/create')), `no volume was created: ${lines.join('\n')}`);
  for (const q of otherCreates) {
    assert.ok(!q.url.includes('?'), `a create request line carries a query: ${q.url}`);
    const body = JSON.parse(q.body) as { Name?: string; Labels?: Record<string, string> };
    assert.ok(body.Name && body.Labels?.['dev.wafflemaker.project'] === project, `the configuration is in the body: ${q.body}`);
  }
});
