/** Image update policies: validation of `update` and `updates`, and the pure choice of the tag to run. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkUpdatePolicy, checkUpdateSettings } from '../runtime/graph/validate/updates.ts';
import { selectTag, tagMatcher } from '../runtime/images/policy.ts';
import { parseImageRef, repositoryKey, withTag } from '../runtime/images/reference.ts';
import type { UpdatePolicySpec } from '../runtime/model.ts';
import { none, only, recorder } from './graph-helpers.ts';

test('checkUpdatePolicy: each filter with its default order and cooldown', () => {
  const r = recorder();
  assert.deepEqual(checkUpdatePolicy({ tags: { glob: 'sha-*' } }, r.report), { tags: { glob: 'sha-*' }, order: 'newest', cooldownMs: 0 });
  assert.deepEqual(checkUpdatePolicy({ tags: { semver: '^1.2' }, cooldown: '10m' }, r.report), { tags: { semver: '^1.2' }, order: 'semver', cooldownMs: 600_000 });
  assert.deepEqual(checkUpdatePolicy({ tags: { regex: '^main-(?<ts>\\d+)$', sortBy: 'ts' } }, r.report), {
    tags: { regex: '^main-(?<ts>\\d+)$', sortBy: 'ts' },
    order: 'numeric',
    cooldownMs: 0,
  });
  assert.deepEqual(checkUpdatePolicy({ tags: { regex: '^rc-' }, order: 'newest' }, r.report), { tags: { regex: '^rc-' }, order: 'newest', cooldownMs: 0 });
  assert.equal(checkUpdatePolicy(undefined, r.report), undefined);
  none(r.list);
});

test('checkUpdatePolicy: an invalid glob, regex, range, group, order or cooldown is reported where written, with a fix', () => {
  const r = recorder();
  assert.equal(checkUpdatePolicy({ tags: { glob: 'sha-[a' } }, r.report), undefined);
  assert.equal(checkUpdatePolicy({ tags: { glob: 'ghcr.io/acme/api:sha-*' } }, r.report), undefined);
  assert.equal(checkUpdatePolicy({ tags: { regex: '^main-(?<ts>\\d+$' } }, r.report), undefined);
  assert.equal(checkUpdatePolicy({ tags: { regex: '^main-(?<ts>\\d+)$', sortBy: 'time' } }, r.report), undefined);
  assert.equal(checkUpdatePolicy({ tags: { semver: 'one point two' } }, r.report), undefined);
  assert.equal(checkUpdatePolicy({ tags: { glob: '*', semver: '^1' } }, r.report), undefined);
  assert.equal(checkUpdatePolicy({ tags: { semver: '^1' }, order: 'alphabetical' }, r.report), undefined);
  assert.equal(checkUpdatePolicy({ tags: { semver: '^1' }, cooldown: 'soon' }, r.report), undefined);
  assert.equal(checkUpdatePolicy({ tag: { semver: '^1' } }, r.report), undefined);
  assert.equal(only(r.list, /glob "sha-\[a" is invalid/).where, 'update.tags.glob');
  assert.match(only(r.list, /can never match a tag/).fix!, /"sha-\*"/);
  assert.equal(only(r.list, /regular expression .* is invalid/).where, 'update.tags.regex');
  const group = only(r.list, /sortBy "time" is not a named group/);
  assert.equal(group.where, 'update.tags.sortBy');
  assert.match(group.message, /groups: ts/);
  assert.equal(only(r.list, /semver range "one point two" is invalid/).where, 'update.tags.semver');
  only(r.list, /has `glob` and `semver`; it takes exactly one/);
  only(r.list, /order "alphabetical" must be/);
  assert.equal(only(r.list, /"soon" is not a duration/).where, 'update.cooldown');
  assert.match(only(r.list, /unknown key `tag` in update; did you mean `tags`/).fix!, /rename/);
});

test('checkUpdateSettings: poll interval and credentials from declared secrets, never text passwords', () => {
  const secrets = { reg: { name: 'reg', provider: 'embedded', keys: ['user', 'token'] } } as never;
  const ctx = { secrets, declared: true, configFile: 'waffle.config.ts' };
  const r = recorder();
  const ok = checkUpdateSettings(
    { poll: '1m', registries: { '127.0.0.1:5000': { username: 'bot', password: { $ref: 'secret', secret: 'reg', key: 'token' } } } },
    ctx,
    r.report,
  );
  none(r.list);
  assert.deepEqual(ok, { pollMs: 60_000, registries: { '127.0.0.1:5000': { username: 'bot', password: { secret: 'reg', key: 'token' } } } });
  const bad = checkUpdateSettings(
    { poll: '1s', registries: { 'https://ghcr.io': {}, 'ghcr.io': { username: 'bot', password: 'hunter2' }, 'quay.io': { username: 'x', password: { $ref: 'secret', secret: 'reg', key: 'pass' } } } },
    ctx,
    r.report,
  );
  assert.deepEqual(bad, { registries: {} });
  only(r.list, /shorter than 10s/);
  only(r.list, /"https:\/\/ghcr.io" is not a registry host/);
  const text = only(r.list, /password must be a secret reference, got "hunter2"/);
  assert.doesNotMatch(text.fix!, /hunter2/);
  only(r.list, /secret "reg" has no key "pass"/);
});

test('image references: registry, repository (Docker Hub library), tag', () => {
  assert.deepEqual(parseImageRef('nginx'), { registry: 'docker.io', repository: 'library/nginx', name: 'nginx' });
  assert.deepEqual(parseImageRef('127.0.0.1:5000/waffle/app:1.2.0'), { registry: '127.0.0.1:5000', repository: 'waffle/app', name: '127.0.0.1:5000/waffle/app', tag: '1.2.0' });
  assert.equal(repositoryKey(parseImageRef('acme/api:1')), 'docker.io/acme/api');
  assert.equal(repositoryKey({ registry: 'registry-1.docker.io', repository: 'acme/api' }), 'docker.io/acme/api');
  assert.equal(withTag('ghcr.io/acme/api:1.4.2@sha256:' + 'a'.repeat(64), '1.5.0'), 'ghcr.io/acme/api:1.5.0');
});

const semverPolicy: UpdatePolicySpec = { tags: { semver: '^1.2' }, order: 'semver', cooldownMs: 0 };

test('tagMatcher: glob, regex and semver filters', () => {
  const glob = tagMatcher({ tags: { glob: 'sha-*' } });
  assert.deepEqual(['sha-abc', 'main-1', 'sha-', 'xsha-1'].map(glob), [true, false, true, false]);
  const re = tagMatcher({ tags: { regex: '^main-(?<ts>\\d+)$' } });
  assert.deepEqual(['main-12', 'main-x', 'feature-main-1'].map(re), [true, false, false]);
  const sv = tagMatcher(semverPolicy);
  assert.deepEqual(['1.2.0', 'v1.9.3', '1.1.9', '2.0.0', '1.3.0-rc.1', 'latest'].map(sv), [true, true, false, false, false, false]);
});

test('selectTag: semver picks the highest allowed version, never one outside the range', () => {
  const s = selectTag({
    policy: semverPolicy,
    written: '1.2.0',
    candidates: [{ tag: '1.2.5' }, { tag: '1.10.1', digest: 'sha256:x' }, { tag: '1.9.0' }, { tag: '2.0.0' }, { tag: 'latest' }],
    now: 0,
  });
  assert.deepEqual(s, { tag: '1.10.1', digest: 'sha256:x', why: 'newer' });
  // A lower push after a higher one does not go back.
  assert.equal(selectTag({ policy: semverPolicy, written: '1.2.0', current: '1.10.1', candidates: [{ tag: '1.3.0' }], now: 0 }).why, 'current');
});

test('selectTag: the written tag is always allowed, even outside the filter', () => {
  const s = selectTag({ policy: { tags: { glob: 'sha-*' }, order: 'newest', cooldownMs: 0 }, written: 'stable', candidates: [{ tag: 'main-9', pushedAt: 9 }], now: 10 });
  assert.deepEqual(s, { tag: 'stable', why: 'written' });
});

test('selectTag: newest push wins for a glob; numeric orders by the regex group', () => {
  const glob: UpdatePolicySpec = { tags: { glob: 'sha-*' }, order: 'newest', cooldownMs: 0 };
  assert.equal(selectTag({ policy: glob, written: 'sha-aaa', candidates: [{ tag: 'sha-ccc', pushedAt: 5 }, { tag: 'sha-bbb', pushedAt: 7 }], now: 10 }).tag, 'sha-bbb');
  const numeric: UpdatePolicySpec = { tags: { regex: '^main-(?<ts>\\d+)$', sortBy: 'ts' }, order: 'numeric', cooldownMs: 0 };
  // 10 > 9 as numbers although '9' > '10' as text.
  assert.equal(selectTag({ policy: numeric, written: 'main-1', candidates: [{ tag: 'main-9' }, { tag: 'main-10' }, { tag: 'main-x' }], now: 0 }).tag, 'main-10');
});

test('selectTag: a cooldown delays a fresh tag and says when it is ready', () => {
  const policy: UpdatePolicySpec = { ...semverPolicy, cooldownMs: 60_000 };
  const input = { policy, written: '1.2.0', candidates: [{ tag: '1.4.0', pushedAt: 1_000 }, { tag: '1.3.0', pushedAt: 0 }] };
  assert.deepEqual(selectTag({ ...input, now: 30_000 }), { tag: '1.2.0', why: 'written', pending: { tag: '1.3.0', readyAt: 60_000 } });
  assert.deepEqual(selectTag({ ...input, now: 60_500 }), { tag: '1.3.0', why: 'newer', pending: { tag: '1.4.0', readyAt: 61_000 } });
  assert.deepEqual(selectTag({ ...input, now: 61_000 }), { tag: '1.4.0', why: 'newer' });
});

test('a repository with a bad policy fails to load with the file, the service, the line and the fix', async () => {
  const { Engine } = await import('../runtime/engine.ts');
  const { makeRepo } = await import('./helpers.ts');
  const fs = await import('node:fs');
  const dir = makeRepo({
    'waffle.config.ts': "import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 'badpolicy', updates: { poll: '1s' } });\n",
    'services/api.ts': "import { defineService } from 'wafflemaker';\nexport default defineService({\n  image: 'acme/api:1.2.0',\n  update: { tags: { semver: 'one point two' } },\n});\n",
  });
  try {
    const err = await new Engine({ env: { PATH: process.env.PATH } }).load({ dir }).then(
      () => assert.fail('the load should fail'),
      (e: { problems?: Array<{ file: string; service?: string; where?: string; loc?: string; message: string; fix?: string }> }) => e,
    );
    const semverProblem = err.problems?.find((p) => /semver range "one point two" is invalid/.test(p.message));
    assert.ok(semverProblem, JSON.stringify(err.problems));
    assert.equal(semverProblem.file, 'services/api.ts');
    assert.equal(semverProblem.service, 'api');
    assert.equal(semverProblem.where, 'update.tags.semver');
    assert.match(semverProblem.loc ?? '', /^4:/);
    assert.match(semverProblem.fix ?? '', /'\^1\.2'/);
    const poll = err.problems?.find((p) => /updates\.poll "1s" is shorter than 10s/.test(p.message));
    assert.equal(poll?.file, 'waffle.config.ts');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a tag still in its cooldown when the agent restarts is deployed once ready', async () => {
  const { Engine } = await import('../runtime/engine.ts');
  const { makeRepo } = await import('./helpers.ts');
  const { History } = await import('../runtime/history/history.ts');
  const { ImageUpdates } = await import('../runtime/agent/image-updates.ts');
  const fs = await import('node:fs');
  const path = await import('node:path');
  const dir = makeRepo({
    'waffle.config.ts': "import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: 'cooldownrestart' });\n",
    'services/api.ts': "import { defineService } from 'wafflemaker';\nexport default defineService({ image: '127.0.0.1:5999/acme/api:sha-0', update: { tags: { glob: 'sha-*' }, cooldown: '2s' } });\n",
  });
  const history = History.open(path.join(dir, '..', `${path.basename(dir)}-history.db`));
  const log = { info() {}, warn() {}, error() {} };
  try {
    const graph = await new Engine({ env: { PATH: process.env.PATH } }).load({ dir });
    const first = new ImageUpdates({ state: history, log });
    first.start(() => assert.fail('nothing is ready yet'));
    first.desired(graph);
    const r = first.pushed([{ registry: '127.0.0.1:5999', repository: 'acme/api', tag: 'sha-1', digest: 'sha256:' + '1'.repeat(64), pushedAt: Date.now() }]);
    assert.equal(r.outcome, 'ignored');
    assert.match(r.reason ?? '', /api: sha-1 waits for its cooldown until/);
    await first.stop();

    // A new process: the pushes are in the history; its first deploy's graph schedules the check.
    const second = new ImageUpdates({ state: history, log });
    const queued: string[] = [];
    second.start((t) => (queued.push(t.reason ?? ''), { deployment: 'd', outcome: 'deployed' }));
    second.desired(graph);
    const deadline = Date.now() + 30_000;
    while (queued.length === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    assert.deepEqual(queued, ['image update: api sha-0 → sha-1']);
    assert.equal(second.overrides('cooldownrestart').api?.digest, 'sha256:' + '1'.repeat(64));
    await second.stop();
  } finally {
    history.close();
    fs.rmSync(dir, { recursive: true, force: true });
    for (const f of fs.readdirSync(path.dirname(dir))) if (f.startsWith(`${path.basename(dir)}-history.db`)) fs.rmSync(path.join(path.dirname(dir), f), { force: true });
  }
});
