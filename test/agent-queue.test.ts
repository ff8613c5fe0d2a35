/**
 * The agent's pure parts: the coalescing queue (one deploy at a time, a burst becomes one follow-up
 * of the newest target, a failing run does not block the next), the webhook signature check and the
 * classification of deliveries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeployQueue, type Job } from '../runtime/agent/queue.ts';
import { classify, githubRepoOf, sign, verifySignature } from '../runtime/agent/github-webhook.ts';

function gate() {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}

test('queue: one at a time; a burst collapses into one follow-up of the newest target; a failure does not block', async () => {
  const ran: Array<{ id: string; target: unknown; triggers: number }> = [];
  const gates: Array<ReturnType<typeof gate>> = [];
  let n = 0;
  let running = 0;
  let maxRunning = 0;
  const errors: string[] = [];
  const q = new DeployQueue({
    create: () => `d${++n}`,
    run: async (job: Job) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      ran.push({ id: job.id, target: job.target, triggers: job.triggers.length });
      const g = gate();
      gates.push(g);
      await g.p;
      running--;
      if (job.id === 'd1') throw new Error('first deploy failed');
    },
    onError: (_job, e) => errors.push((e as Error).message),
  });
  const first = q.submit({ kind: 'push', target: { head: true } });
  assert.deepEqual(first, { deployment: 'd1', outcome: 'deployed' });
  const burst = Array.from({ length: 49 }, (_, i) => q.submit({ kind: 'push', target: { commit: `c${i}` } }));
  assert.equal(burst[0]!.outcome, 'deployed');
  assert.equal(burst[0]!.deployment, 'd2');
  assert.ok(burst.slice(1).every((r) => r.outcome === 'coalesced' && r.deployment === 'd2'));
  assert.equal(q.length, 2);
  gates[0]!.open();
  await new Promise((r) => setImmediate(r));
  assert.equal(ran.length, 2, 'the follow-up starts after the failed one');
  assert.deepEqual(ran[1], { id: 'd2', target: { commit: 'c48' }, triggers: 49 });
  gates[1]!.open();
  await q.idle();
  assert.equal(maxRunning, 1);
  assert.deepEqual(errors, ['first deploy failed']);
  assert.equal(q.length, 0);
});

test('queue: close lets the running job finish, returns the waiting one and refuses new triggers', async () => {
  const g = gate();
  let finished = false;
  let n = 0;
  const q = new DeployQueue({ create: () => `d${++n}`, run: async () => { await g.p; finished = true; } });
  q.submit({ kind: 'push', target: { head: true } });
  q.submit({ kind: 'poll', target: { head: true } });
  const closing = q.close();
  assert.throws(() => q.submit({ kind: 'push', target: { head: true } }), /shutting down/);
  g.open();
  const dropped = await closing;
  assert.ok(finished);
  assert.equal(dropped?.id, 'd2');
});

test('signature: HMAC-SHA256 of the exact bytes; anything else is refused', () => {
  const body = Buffer.from('{"ref":"refs/heads/main"}');
  assert.ok(verifySignature('s3cret', body, sign('s3cret', body)));
  assert.ok(!verifySignature('s3cret', Buffer.from(body.toString() + ' '), sign('s3cret', body)));
  assert.ok(!verifySignature('other', body, sign('s3cret', body)));
  assert.ok(!verifySignature('s3cret', body, undefined));
  assert.ok(!verifySignature('s3cret', body, 'sha1=' + 'a'.repeat(40)));
  assert.ok(!verifySignature('s3cret', body, 'sha256=abc'), 'short hex');
  assert.ok(!verifySignature('s3cret', body, 'sha256=' + 'zz'.repeat(32)), 'not hex');
});

test('classify: only an exact push to the branch of the repository deploys', () => {
  const want = { repo: 'Acme/Infra', branch: 'main' };
  const sha = 'a'.repeat(40);
  const push = (p: object) => Buffer.from(JSON.stringify({ ref: 'refs/heads/main', after: sha, repository: { full_name: 'acme/infra' }, ...p }));
  assert.deepEqual(classify('push', push({}), 'application/json', want), { kind: 'push', commit: sha, ref: 'refs/heads/main', repo: 'acme/infra' });
  assert.deepEqual(classify('push', push({ ref: 'refs/heads/feature-main' }), 'application/json', want), { kind: 'ignored', reason: 'branch refs/heads/feature-main' });
  assert.deepEqual(classify('push', push({ ref: 'refs/heads/main/x' }), 'application/json', want), { kind: 'ignored', reason: 'branch refs/heads/main/x' });
  assert.deepEqual(classify('push', push({ repository: { full_name: 'acme/infra2' } }), 'application/json', want), { kind: 'ignored', reason: 'repository acme/infra2' });
  assert.deepEqual(classify('push', push({ deleted: true, after: '0'.repeat(40) }), 'application/json', want), { kind: 'ignored', reason: 'branch refs/heads/main deleted' });
  assert.equal(classify('push', Buffer.from('[1]'), 'application/json', want).kind, 'malformed');
  assert.equal(classify('push', Buffer.from('nope'), 'application/json', want).kind, 'malformed');
  assert.equal(classify('push', push({ after: 'HEAD' }), 'application/json', want).kind, 'malformed');
  assert.deepEqual(classify('ping', Buffer.from('{}'), 'application/json', want), { kind: 'ping' });
  assert.deepEqual(classify('release', Buffer.from('{}'), 'application/json', want), { kind: 'ignored', reason: 'event release' });
  // The form content type GitHub can also send: the JSON is in its `payload` field.
  const form = Buffer.from('payload=' + encodeURIComponent(push({}).toString()));
  assert.equal(classify('push', form, 'application/x-www-form-urlencoded', want).kind, 'push');
});

test('githubRepoOf: owner/name from GitHub clone URLs only', () => {
  assert.equal(githubRepoOf('https://github.com/acme/infra.git'), 'acme/infra');
  assert.equal(githubRepoOf('https://x-access-token:t@github.com/acme/infra'), 'acme/infra');
  assert.equal(githubRepoOf('git@github.com:acme/infra.git'), 'acme/infra');
  assert.equal(githubRepoOf('ssh://git@github.com/acme/infra.git'), 'acme/infra');
  assert.equal(githubRepoOf('https://gitlab.com/acme/infra.git'), undefined);
  assert.equal(githubRepoOf('/srv/git/infra.git'), undefined);
});
