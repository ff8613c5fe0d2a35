/**
 * The agent's checkout against a real bare repository: a sync leaves the work tree exactly at the
 * commit (untracked and ignored files gone, files the commit deleted gone); a commit on the branch,
 * older than its head, is checked out; one that is no longer on the branch (a force-push rewrote it)
 * or was never fetched is refused, and the work tree stays where it was.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { Checkout, CheckoutError } from '../runtime/agent/checkout.ts';
import { git, makeRemote, tempRoot } from './agent-support.ts';

const root = tempRoot('waffle-checkout-');
after(() => fs.rmSync(root, { recursive: true, force: true }));

const remote = makeRemote(root, { '.gitignore': 'build/\n', 'a.txt': 'a1\n', 'gone.txt': 'here\n' });
const checkout = new Checkout({ repo: remote.bare, branch: 'main', dir: path.join(root, 'checkout'), hostEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
const read = (rel: string) => fs.readFileSync(path.join(checkout.dir, rel), 'utf8');
const exists = (rel: string) => fs.existsSync(path.join(checkout.dir, rel));

test('a sync leaves the work tree exactly at the commit', async () => {
  const first = git(remote.work, 'rev-parse', 'HEAD');
  assert.equal(await checkout.sync({ head: true }), first);
  assert.equal(read('a.txt'), 'a1\n');
  // Left behind by something else: an untracked file, an ignored one, a changed tracked one.
  fs.writeFileSync(path.join(checkout.dir, 'stray.txt'), 'x');
  fs.mkdirSync(path.join(checkout.dir, 'build'));
  fs.writeFileSync(path.join(checkout.dir, 'build', 'out.js'), 'x');
  fs.writeFileSync(path.join(checkout.dir, 'a.txt'), 'edited by hand\n');
  const second = remote.commit({ 'a.txt': 'a2\n', 'gone.txt': null, 'b.txt': 'b\n' }, 'second');
  assert.equal(await checkout.sync({ commit: second }), second);
  assert.equal(git(checkout.dir, 'rev-parse', 'HEAD'), second);
  assert.equal(read('a.txt'), 'a2\n');
  assert.equal(read('b.txt'), 'b\n');
  for (const f of ['gone.txt', 'stray.txt', 'build']) assert.equal(exists(f), false, f);
  assert.equal(git(checkout.dir, 'status', '--porcelain', '--ignored'), '');
});

test('an older commit on the branch is checked out by its full or short id', async () => {
  const older = git(remote.work, 'rev-parse', 'HEAD~1');
  remote.commit({ 'a.txt': 'a3\n' }, 'third');
  assert.equal(await checkout.sync({ commit: older.slice(0, 10) }), older);
  assert.equal(read('a.txt'), 'a1\n');
  assert.equal(git(checkout.dir, 'rev-parse', 'HEAD'), older);
});

test('a commit no longer on the branch, or never fetched, is refused and the work tree stays', async () => {
  const head = await checkout.sync({ head: true });
  // Rewrite the branch: the old head stays in the checkout's objects but is not on the branch any more.
  git(remote.work, 'reset', '-q', '--hard', 'HEAD~1');
  fs.writeFileSync(path.join(remote.work, 'c.txt'), 'c\n');
  git(remote.work, 'add', '-A');
  git(remote.work, 'commit', '-q', '-m', 'rewritten');
  git(remote.work, 'push', '-q', '--force', 'origin', 'HEAD:refs/heads/main');
  const rewritten = git(remote.work, 'rev-parse', 'HEAD');
  assert.equal(await checkout.sync({ head: true }), rewritten);
  const stranded = head;
  await assert.rejects(checkout.sync({ commit: stranded }), (e: Error) => e instanceof CheckoutError && e.message === `commit ${stranded.slice(0, 12)} is not on branch main`);
  assert.equal(git(checkout.dir, 'rev-parse', 'HEAD'), rewritten);
  const other = remote.commit({ 'd.txt': 'd\n' }, 'elsewhere', 'feature');
  await assert.rejects(checkout.sync({ commit: other }), (e: Error) => e instanceof CheckoutError && e.message === `commit ${other} is not on branch main`);
  await assert.rejects(checkout.sync({ commit: 'main' }), /"main" is not a commit id/);
  assert.equal(git(checkout.dir, 'rev-parse', 'HEAD'), rewritten);
});
