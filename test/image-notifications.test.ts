/**
 * Registry notifications parsed into pushes: the distribution registry's envelope as its documentation
 * shows it (manifest pushes with tag and digest, layer pushes and pulls skipped, the host the client
 * pushed to) and Docker Hub's webhook (repo_name, push_data.tag, pushed_at in seconds); the restart
 * budget's sliding window and its one report.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNotification } from '../runtime/images/notifications.ts';
import { presentedSecret, secretMatches } from '../runtime/agent/registry-hook.ts';
import { RestartBudget } from '../runtime/agent/restart-budget.ts';

const manifestPush = {
  id: 'asdf-asdf-asdf-asdf-0',
  timestamp: '2006-01-02T15:04:05Z',
  action: 'push',
  target: {
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    size: 1,
    digest: 'sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf',
    length: 1,
    repository: 'library/test',
    url: 'https://example.com/v2/library/test/manifests/sha256:c3b3692957d439ac1928219a83fac91e7bf96c153725526874673ae1f2023f8d5',
    tag: 'latest',
  },
  request: { id: 'asdfasdf', addr: 'client.local', host: 'registrycluster.local', method: 'PUT', useragent: 'test/0.1' },
  actor: { name: 'test-actor' },
  source: { addr: 'hostname.local:port' },
};

test('the distribution envelope: manifest pushes with a tag become pushes; layers and pulls are skipped', () => {
  const body = JSON.stringify({
    events: [
      manifestPush,
      { ...manifestPush, id: 'layer', target: { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', repository: 'library/test', digest: 'sha256:1' } },
      { ...manifestPush, id: 'pull', action: 'pull' },
      { ...manifestPush, id: 'by-digest', target: { ...manifestPush.target, tag: undefined } },
    ],
  });
  const r = parseNotification(body, { now: 1 });
  assert.deepEqual(r, {
    kind: 'distribution',
    skipped: 3,
    pushes: [{ registry: 'registrycluster.local', repository: 'library/test', tag: 'latest', digest: manifestPush.target.digest, pushedAt: Date.parse('2006-01-02T15:04:05Z'), id: 'asdf-asdf-asdf-asdf-0' }],
  });
});

test("Docker Hub's webhook: repository and tag, push time in seconds, official images under library/", () => {
  const body = JSON.stringify({
    callback_url: 'https://registry.hub.docker.com/u/svendowideit/testhook/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/',
    push_data: { pushed_at: 1417566161, pusher: 'trustedbuilder', tag: 'latest' },
    repository: { name: 'testhook', namespace: 'svendowideit', owner: 'svendowideit', repo_name: 'svendowideit/testhook', repo_url: 'https://registry.hub.docker.com/u/svendowideit/testhook/', status: 'Active' },
  });
  assert.deepEqual(parseNotification(body, { now: 1 }), { kind: 'dockerhub', skipped: 0, pushes: [{ registry: 'docker.io', repository: 'svendowideit/testhook', tag: 'latest', pushedAt: 1417566161000 }] });
  const official = JSON.parse(body);
  official.repository.repo_name = 'nginx';
  assert.equal((parseNotification(JSON.stringify(official), { now: 1 }) as { pushes: Array<{ repository: string }> }).pushes[0]!.repository, 'library/nginx');
});

test('malformed bodies are named', () => {
  assert.deepEqual(parseNotification('{', { now: 1 }), { kind: 'malformed', reason: 'the body is not JSON' });
  assert.equal(parseNotification('{"hello":1}', { now: 1 }).kind, 'malformed');
  assert.equal(parseNotification('{"push_data":{},"repository":{}}', { now: 1 }).kind, 'malformed');
});

test('the hook secret: header, Docker Hub query parameter, constant-time comparison', () => {
  assert.equal(presentedSecret({ headers: { authorization: 'Bearer s3cret' }, url: '/hooks/registry' }), 's3cret');
  assert.equal(presentedSecret({ headers: {}, url: '/hooks/registry?secret=q%20s' }), 'q s');
  assert.equal(presentedSecret({ headers: {}, url: '/hooks/registry' }), undefined);
  assert.ok(secretMatches('s3cret', 's3cret'));
  assert.ok(!secretMatches('s3cre', 's3cret'));
  assert.ok(!secretMatches(undefined, 's3cret'));
});

test('restart budget: a sliding window, then given up and reported once, until reset', () => {
  const store = new Map<string, unknown>();
  const state = { getState: <T>(k: string) => store.get(k) as T | undefined, setState: (k: string, v: unknown) => void (v === undefined ? store.delete(k) : store.set(k, v)) };
  let now = 0;
  const budget = new RestartBudget(state, { max: 2, windowMs: 1000 }, () => now);
  assert.deepEqual(budget.spend('p', 'api', 'c1'), { ok: true, used: 1, max: 2 });
  now = 600;
  assert.deepEqual(budget.spend('p', 'api', 'c1'), { ok: true, used: 2, max: 2 });
  now = 1100; // the first restart left the window
  assert.deepEqual(budget.spend('p', 'api', 'c1'), { ok: true, used: 2, max: 2 });
  now = 1200;
  assert.deepEqual(budget.spend('p', 'api', 'c1'), { ok: false, first: true, used: 2, max: 2 });
  assert.equal(budget.markReported('p', 'api'), true);
  assert.equal(budget.markReported('p', 'api'), false);
  // Given up stays given up, even once the window has passed, and a new budget object (an agent restart) knows it.
  now = 10_000;
  assert.deepEqual(new RestartBudget(state, { max: 2, windowMs: 1000 }, () => now).spend('p', 'api', 'c1'), { ok: false, first: false, used: 0, max: 2 });
  budget.reset('p', 'api');
  assert.deepEqual(budget.spend('p', 'api', 'c2'), { ok: true, used: 1, max: 2 });
  assert.equal(budget.used('p', 'other'), 0);
});
