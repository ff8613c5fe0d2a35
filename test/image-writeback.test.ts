/**
 * Write-back: the image literal is edited through the TypeScript AST with the rest of the file kept byte
 * for byte; the commit lands in a real bare repository, a push refused because the branch moved is
 * retried on the new head (never forced); and end to end, after the agent deployed a pushed tag and wrote
 * it back, the deploy of that commit is a no-op.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { rewriteImage, WriteBack } from '../runtime/agent/write-back.ts';
import { cleanupProject, dockerClient, freePort, snapshot, uniqueProject } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { pushImage, removeLocalImage, startRegistry, type Registry } from './registry.ts';
import { config, git, makeRemote, startAgent, tempRoot, waitFor, type RunningAgent } from './agent-support.ts';

const DOCKER_HOST = process.env.DOCKER_HOST!;
const roots: string[] = [];

after(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

const SOURCE = `import { defineService } from 'wafflemaker';
// the api, pinned by CI
export default defineService({
  image:   "ghcr.io/acme/api:1.2.0" , // keep this comment
  env: { IMAGE_NOTE: 'ghcr.io/acme/api:1.2.0' },
  update: { tags: { semver: '^1.2' } },
});
`;

test('rewriteImage changes only the image literal, keeping quotes, spacing and comments', async () => {
  const r = await rewriteImage(SOURCE, 'services/api.ts', 'ghcr.io/acme/api:1.2.0', 'ghcr.io/acme/api:1.3.1');
  assert.ok('text' in r);
  assert.equal(r.text, SOURCE.replace('"ghcr.io/acme/api:1.2.0"', '"ghcr.io/acme/api:1.3.1"'));
  // The env value with the same text is not an `image` property: untouched.
  assert.match(r.text, /IMAGE_NOTE: 'ghcr\.io\/acme\/api:1\.2\.0'/);
  const viaConst = await rewriteImage("const IMG = 'a:1';\nexport default defineService({ image: IMG });\n", 'services/x.ts', 'a:1', 'a:2');
  assert.match('error' in viaConst ? viaConst.error : '', /services\/x\.ts has no `image: 'a:1'` written as a string literal/);
});

test('a push refused because the branch moved is retried on the new head, never forced', async () => {
  const root = tempRoot('waffle-wb-');
  roots.push(root);
  const remote = makeRemote(root, { 'services/api.ts': SOURCE, 'README.md': 'one\n' });
  const wb = new WriteBack({ repo: remote.bare, branch: 'main', dir: path.join(root, 'wb'), author: { name: 'waffle agent', email: 'agent@example.test' } });
  // Clone first, then make its next push race with someone else's: a pre-push hook pushes another commit
  // to the remote from a second clone, once, so the write-back's push is refused as non-fast-forward.
  const first = await wb.commit({ project: 'p', service: 'api', file: 'services/api.ts', from: 'ghcr.io/acme/api:1.2.0', to: 'ghcr.io/acme/api:1.2.1' });
  assert.equal(first.kind, 'committed');
  const other = path.join(root, 'other');
  git(root, 'clone', '-q', remote.bare, other);
  const marker = path.join(root, 'raced');
  fs.writeFileSync(
    path.join(root, 'wb', '.git', 'hooks', 'pre-push'),
    `#!/bin/sh\nif [ ! -e '${marker}' ]; then touch '${marker}'; cd '${other}' && git pull -q && echo two >> README.md && git -c user.email=o@example.test -c user.name=other commit -qam 'someone else' && git push -q origin HEAD:main; fi\nexit 0\n`,
    { mode: 0o755 },
  );
  const r = await wb.commit({ project: 'p', service: 'api', file: 'services/api.ts', from: 'ghcr.io/acme/api:1.2.1', to: 'ghcr.io/acme/api:1.3.0', digest: 'sha256:' + 'a'.repeat(64) });
  assert.ok(fs.existsSync(marker), 'the race happened');
  assert.equal(r.kind, 'committed');
  assert.equal(r.kind === 'committed' && r.attempts, 2);
  // Both commits are on the branch: the other one first, then ours on top of it.
  const log = git(remote.bare, 'log', '--format=%an|%s', 'main').split('\n');
  assert.deepEqual(log.slice(0, 3), ['waffle agent|waffle: api image 1.3.0', 'other|someone else', 'waffle agent|waffle: api image 1.2.1']);
  const body = git(remote.bare, 'log', '-1', '--format=%b', 'main');
  assert.match(body, /deployed ghcr\.io\/acme\/api:1\.3\.0 \(sha256:a{64}\) by the update policy of api in services\/api\.ts/);
  assert.equal(git(remote.bare, 'show', 'main:README.md'), 'one\ntwo');
  assert.equal(git(remote.bare, 'show', 'main:services/api.ts') + '\n', SOURCE.replace('"ghcr.io/acme/api:1.2.0"', '"ghcr.io/acme/api:1.3.0"'));
});

test('end to end: the agent deploys a pushed tag, writes it back, and the deploy of that commit is a no-op', async () => {
  const docker: Dockerode = await dockerClient();
  await ensureTestImages(DOCKER_HOST);
  const project = uniqueProject('imgwb');
  const root = tempRoot('waffle-imgwb-');
  roots.push(root);
  const agentPort = await freePort();
  const secret = `regsec-${Math.random().toString(36).slice(2)}`;
  let registry: Registry | undefined;
  let agent: RunningAgent | undefined;
  const refs: string[] = [];
  try {
    registry = await startRegistry({ notify: { url: `http://127.0.0.1:${agentPort}/hooks/registry`, headers: { Authorization: `Bearer ${secret}` } } });
    const image = (tag: string) => `${registry!.host}/waffle/${project}:${tag}`;
    const push = (tag: string, local: string) => {
      pushImage(DOCKER_HOST, local, image(tag));
      removeLocalImage(DOCKER_HOST, image(tag));
      refs.push(image(tag));
    };
    push('1.0.0', TEST_IMAGES.appV1);
    const file = `import { defineService } from 'wafflemaker';\n\nexport default defineService({\n  image: '${image('1.0.0')}',\n  command: ['sleep', '3600'],\n  stopGracePeriod: '1s',\n  update: { tags: { semver: '1.x' } },\n});\n`;
    const remote = makeRemote(root, { 'waffle.config.ts': config(project), 'services/app.ts': file });
    const secretFile = path.join(root, 'registry-secret');
    fs.writeFileSync(secretFile, secret + '\n', { mode: 0o600 });
    agent = await startAgent({ root, repo: remote.bare, stateDir: path.join(root, 'state'), port: agentPort, args: ['--registry-secret-file', secretFile, '--write-back', '--write-back-author', 'Deploy Bot <deploy-bot@example.test>'] });
    type Row = { id: string; state: string; trigger: string; commit?: string; error?: string };
    const rows = async () => (await agent!.api<{ deployments: Row[] }>('GET', '/deployments?limit=100')).json.deployments;
    await waitFor('the start-up deploy', async () => (await rows()).find((d) => d.trigger === 'startup' && d.state === 'applied'));

    push('1.1.0', TEST_IMAGES.appV2);
    const written = await waitFor('the write-back commit', () => {
      const head = git(remote.bare, 'log', '-1', '--format=%an <%ae>|%s', 'main');
      return head.startsWith('Deploy Bot <deploy-bot@example.test>|waffle: app image 1.1.0') && head;
    });
    assert.ok(written);
    // Only the tag changed in the file.
    assert.equal(git(remote.bare, 'show', 'main:services/app.ts') + '\n', file.replace(image('1.0.0'), image('1.1.0')));
    const running = (await snapshot(docker, project)).containers.find((c) => c.state === 'running')!;
    assert.equal(running.labels['dev.wafflemaker.image'], image('1.1.0'));

    // The next deploy (of the written-back commit) finds git and runtime in agreement.
    const q = await agent.api<{ deployment: string }>('POST', '/deployments', {});
    const row = await waitFor('the next deploy', async () => (await rows()).find((d) => d.id === q.json.deployment && d.state !== 'queued' && d.state !== 'running'));
    assert.equal(row.state, 'no-op', row.error);
    assert.equal(row.commit, git(remote.bare, 'rev-parse', 'main'));
    const after = (await snapshot(docker, project)).containers.find((c) => c.state === 'running')!;
    assert.equal(after.id, running.id);
  } finally {
    await agent?.stop().catch(() => undefined);
    await cleanupProject(docker, project);
    for (const r of refs) removeLocalImage(DOCKER_HOST, r);
    await registry?.stop();
  }
});
