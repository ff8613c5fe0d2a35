/**
 * What the pull-request comment and the agent's page say, from plan and history data: the grouped
 * diff with causes, problems with file and line, secret causes without values, and everything that
 * comes from a repository or a webhook escaped. Access: tokens, the sign-in cookie, open pages. The
 * agent's event stream fed by the real history.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerCreateBody, Operation, Plan } from '../runtime/model.ts';
import { PREVIEW_MARKER, previewComment, previewStatus } from '../runtime/agent/preview/report.ts';
import { classifyPullRequest } from '../runtime/agent/preview/preview.ts';
import { deploymentPage, overviewPage } from '../runtime/agent/page/views.ts';
import { mayRead, safeNext, sessionValue, setCookie } from '../runtime/agent/page/access.ts';
import type { OverviewData } from '../runtime/agent/page/model.ts';

function body(image: string): ContainerCreateBody {
  return {
    Image: image,
    Env: ['LOG_LEVEL=info'],
    Labels: {},
    ExposedPorts: {},
    StopTimeout: 10,
    HostConfig: { RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 }, Memory: 0, NanoCpus: 0, PortBindings: {}, Mounts: [], NetworkMode: 'p_default' },
    NetworkingConfig: { EndpointsConfig: { p_default: { Aliases: ['web'] } } },
  };
}

function plan(...ops: Operation[]): Plan {
  return { project: 'shop', observedFingerprint: 'x', operations: ops, unchanged: ['db'] };
}

const replaceWeb = {
  id: 'replace:web',
  kind: 'replace-service',
  service: 'web',
  after: [],
  causes: [
    { kind: 'image', detail: 'waffle-test/app:1 → waffle-test/app:2' },
    { kind: 'secrets', detail: 'API_KEY=a secret value changed' },
  ],
  strategy: 'start-first',
  strategyReason: '',
  oldContainerId: 'c1',
  oldContainerName: 'shop-web',
  containerName: 'shop-web',
  tempName: 'shop-web-next-2',
  body: body('waffle-test/app:2'),
  waitHealthy: true,
  steps: [],
  rollback: [],
} as Operation;

const createApi = { id: 'create:api', kind: 'create-service', service: 'api', after: [], causes: [{ kind: 'new', detail: 'new' }], containerName: 'shop-api', body: body('waffle-test/app:1'), waitHealthy: true } as Operation;

const subject = { repo: 'acme/infra', number: 7, sha: 'a'.repeat(40) };

test('a planned pull request: status with the counts, a comment with the grouped diff and causes, no secret value', () => {
  const result = { kind: 'plan' as const, plan: plan(replaceWeb, createApi), notChecked: [] };
  const st = previewStatus(result);
  assert.equal(st.state, 'success');
  assert.equal(st.description, 'waffle plan: 1 to create, 1 to replace');
  const c = previewComment(subject, result);
  assert.ok(c.startsWith(`${PREVIEW_MARKER}\n`), c);
  assert.match(c, /\*\*replace\*\* `web` \(start-first\)/);
  assert.match(c, /image: `waffle-test\/app:1 → waffle-test\/app:2`/);
  assert.match(c, /\*\*create\*\* `api`/);
  assert.match(c, /secrets: `\(secret\) API_KEY`/);
  assert.doesNotMatch(c, /a secret value changed/);
  assert.match(c, /1 unchanged: `db`/);
  assert.match(c, /Nothing was applied/);
});

test('a broken pull request: problems with file and line, linked at the commit; nothing from the repository becomes markup', () => {
  const result = {
    kind: 'problems' as const,
    stage: 'validate',
    problems: [
      { file: 'services/web.ts', service: 'web', where: 'ports[0]', loc: '4:12', message: 'host port <b>80</b> is taken by `api` ![x](http://evil)', fix: 'pick another port' },
      { file: 'services/api.ts', where: '3:5', message: 'type error TS2322: no' },
    ],
  };
  const st = previewStatus(result);
  assert.equal(st.state, 'failure');
  assert.match(st.description, /^waffle plan: 2 problems: services\/web\.ts:4:12: host port/);
  assert.ok(st.description.length <= 140);
  const c = previewComment(subject, result);
  assert.match(c, /\[`services\/web\.ts:4:12`\]\(https:\/\/github\.com\/acme\/infra\/blob\/a{40}\/services\/web\.ts#L4\)/);
  assert.match(c, /\[`services\/api\.ts:3:5`\]\(https:\/\/github\.com\/acme\/infra\/blob\/a{40}\/services\/api\.ts#L3\)/);
  assert.doesNotMatch(c, /<b>/);
  assert.doesNotMatch(c, /!\[x\]\(http/);
  assert.match(c, /fix: pick another port/);
  assert.match(c, /does not validate/);
});

test('pull_request deliveries: only opened/synchronize/reopened into the branch of the repository; forks only when allowed', () => {
  const pr = (over: Record<string, unknown> = {}, head: Record<string, unknown> = {}) => ({
    action: 'synchronize',
    number: 7,
    repository: { full_name: 'acme/infra' },
    pull_request: { number: 7, head: { sha: 'b'.repeat(40), ref: 'feat', label: 'acme:feat', repo: { full_name: 'acme/infra' }, ...head }, base: { ref: 'main', repo: { full_name: 'acme/infra' } } },
    ...over,
  });
  const policy = { repo: 'acme/infra', branch: 'main', forks: false };
  const d = classifyPullRequest(pr(), policy);
  assert.equal(d.kind, 'preview');
  assert.deepEqual(d.kind === 'preview' && d.request, { repo: 'acme/infra', number: 7, sha: 'b'.repeat(40), head: 'acme:feat', fork: false });
  assert.equal(classifyPullRequest(pr({ action: 'labeled' }), policy).kind, 'ignored');
  assert.equal(classifyPullRequest(pr({ action: 'closed' }), policy).kind, 'close');
  assert.equal(classifyPullRequest(pr({ repository: { full_name: 'acme/other' } }), policy).kind, 'ignored');
  const intoOther = pr();
  (intoOther.pull_request.base as { ref: string }).ref = 'main-old';
  assert.equal(classifyPullRequest(intoOther, policy).kind, 'ignored');
  const fork = pr({}, { repo: { full_name: 'mallory/infra' } });
  const refused = classifyPullRequest(fork, policy);
  assert.equal(refused.kind, 'ignored');
  assert.match(refused.kind === 'ignored' ? refused.reason : '', /fork mallory\/infra/);
  const allowed = classifyPullRequest(fork, { ...policy, forks: true });
  assert.equal(allowed.kind === 'preview' && allowed.request.fork, true);
  assert.equal(classifyPullRequest(pr({}, { sha: 'nope' }), policy).kind, 'malformed');
});

function overview(over: Partial<OverviewData> = {}): OverviewData {
  return {
    project: 'shop',
    repo: 'acme/infra',
    branch: 'main',
    deployedCommit: 'c'.repeat(40),
    queue: {},
    services: [
      { service: 'web<script>alert(1)</script>', state: 'running', health: 'healthy', image: 'waffle-test/app:2', digest: 'sha256:' + 'd'.repeat(64), commit: 'c'.repeat(12), domains: ['shop.example.com/'], startedAt: 1_000, lastDeploy: { id: 'D1', action: 'replace', outcome: 'done' } },
    ],
    deployments: [
      { id: 'D1', trigger: 'push', commit: 'c'.repeat(40), state: 'failed', services: [{ service: 'web', action: 'replace', outcome: 'failed' }], error: 'health check failed: "><img src=x onerror=alert(1)>', queuedAt: 1, startedAt: 2, finishedAt: 3_002, durationMs: 3_000 },
    ],
    deliveries: [
      { id: 'abc', source: 'github', event: 'push', outcome: 'ignored: branch refs/heads/<x>', receivedAt: 5 },
      { id: 'def', source: 'github', event: 'push', outcome: 'deployed', deployment: 'D1', receivedAt: 6 },
    ],
    previews: [],
    now: 3_601_000,
    ...over,
  };
}

test('the overview: services with state, health, image, digest, commit link, domains, uptime; deploys and deliveries; all escaped', () => {
  const page = overviewPage(overview(), 'NONCE');
  assert.match(page, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
  assert.doesNotMatch(page, /<script>alert/);
  assert.match(page, /web&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  assert.doesNotMatch(page, /<img src=x/);
  assert.match(page, /health check failed: &quot;&gt;&lt;img src=x onerror=alert\(1\)&gt;/);
  assert.match(page, /waffle-test\/app:2/);
  assert.match(page, /sha256:dddddddddddd/);
  assert.match(page, /href="https:\/\/github\.com\/acme\/infra\/commit\/c{40}"/);
  assert.match(page, /shop\.example\.com\//);
  assert.match(page, /1 h 0 min/);
  assert.match(page, /href="\/deployments\/D1"/);
  assert.match(page, /branch refs\/heads\/&lt;x&gt;/);
  // A delivery shows where it led: the state of the deploy it queued.
  assert.match(page, /<a class="mono" href="\/deployments\/D1">D1<\/a> <span class="badge bad">failed<\/span>/);
  // The one script is this response's, allowed by its nonce.
  assert.equal(page.match(/<script/g)?.length, 1);
  assert.match(page, /<script nonce="NONCE">/);
});

test("a failed deploy's page: its plan, its events, the health output of the failure", () => {
  const p = plan(replaceWeb);
  const page = deploymentPage(
    {
      deployment: { id: 'D2', trigger: 'manual', commit: 'e'.repeat(40), state: 'failed', services: [{ service: 'web', action: 'replace', outcome: 'failed' }], queuedAt: 1, startedAt: 2, finishedAt: 5, durationMs: 3 },
      events: [
        { type: 'run-start', kind: 'apply', at: 10 },
        { type: 'plan-ready', plan: p, at: 20 },
        { type: 'op-failed', op: 'replace:web', kind: 'replace-service', service: 'web', ms: 5, at: 30, failure: { message: 'web did not become healthy', healthOutput: ['wget: server returned error: HTTP/1.1 500 <Internal>'], logTail: ['boom'] } },
        { type: 'run-failed', stage: 'validate', message: '1 problem', problems: [{ file: 'services/web.ts', service: 'web', where: 'ports[0]', loc: '4:12', message: 'host port 80 is taken', fix: 'pick another' }], at: 40 },
      ],
      repo: 'acme/infra',
      branch: 'main',
      now: 100,
    },
    'N',
  );
  assert.match(page, /<strong>replace<\/strong> <span class="mono">web<\/span>/);
  assert.match(page, /image: <span class="mono">waffle-test\/app:1 → waffle-test\/app:2<\/span>/);
  assert.match(page, /replace web: failed: web did not become healthy/);
  assert.match(page, /<pre aria-label="health check output">wget: server returned error: HTTP\/1\.1 500 &lt;Internal&gt;<\/pre>/);
  assert.match(page, /data-events="\/events\?deployment=D2"/);
  assert.match(page, /failed \(validate\): 1 problem/);
  assert.match(page, /<span class="mono">services\/web\.ts:4:12<\/span> service <span class="mono">web<\/span>: host port 80 is taken/);
  assert.doesNotMatch(page, /a secret value changed/);
});

test('page access: a token as bearer or as the sign-in cookie; the cookie holds no token; open when configured', () => {
  const a = { token: 'manage-secret', readToken: 'read-secret' };
  assert.equal(mayRead(a, {}), false);
  assert.equal(mayRead(a, { authorization: 'Bearer read-secret' }), true);
  assert.equal(mayRead(a, { authorization: 'Bearer manage-secret' }), true);
  assert.equal(mayRead(a, { authorization: 'Bearer nope' }), false);
  const cookie = setCookie('read-secret', true);
  assert.doesNotMatch(cookie, /read-secret/);
  assert.match(cookie, /HttpOnly; SameSite=Strict; Secure$/);
  assert.equal(mayRead(a, { cookie: `x=1; waffle_page=${sessionValue('read-secret')}` }), true);
  assert.equal(mayRead(a, { cookie: `waffle_page=${sessionValue('other')}` }), false);
  assert.equal(mayRead({ open: true }, {}), true);
  assert.equal(mayRead({}, { authorization: 'Bearer ' }), false);
  assert.equal(safeNext('/deployments/D1?partial=1'), '/deployments/D1?partial=1');
  assert.equal(safeNext('//evil.example'), '/');
  assert.equal(safeNext('https://evil.example'), '/');
  assert.equal(safeNext('/\\evil'), '/');
});

test("the agent's event stream hears every write to the real history, after it is written; reads pass through", async () => {
  const { History } = await import('../runtime/history/history.ts');
  const { AgentEvents, watchHistory } = await import('../runtime/agent/page/stream.ts');
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-stream-'));
  const events = new AgentEvents();
  const heard: Array<Record<string, unknown>> = [];
  const history = watchHistory(History.open(path.join(dir, 'history.sqlite')), events);
  try {
    const stop = events.subscribe((e) => {
      // The write is visible to a reader by the time the stream tells about it.
      if (e.type === 'deployment') assert.equal(history.get(e.id)?.state, e.state ?? history.get(e.id)?.state);
      heard.push(e);
    });
    events.subscribe(() => {
      throw new Error('a broken listener');
    });
    const row = history.createDeployment({ trigger: 'push', commit: 'a'.repeat(40) });
    history.update(row.id, { state: 'running', startedAt: Date.now() });
    history.appendEvent(row.id, { type: 'plan-ready', at: 1 });
    history.recordDelivery({ id: 'd1', source: 'github', event: 'push', outcome: 'deployed', deployment: row.id, receivedAt: Date.now() });
    assert.deepEqual(heard, [
      { type: 'deployment', id: row.id, state: 'queued' },
      { type: 'deployment', id: row.id, state: 'running' },
      { type: 'run-event', deployment: row.id, event: 'plan-ready' },
      { type: 'delivery', id: 'd1', outcome: 'deployed' },
    ]);
    assert.equal(history.list().length, 1);
    assert.deepEqual(history.events(row.id), [{ type: 'plan-ready', at: 1 }]);
    stop();
    history.update(row.id, { state: 'applied' });
    assert.equal(heard.length, 4);
    assert.equal(events.listeners, 1);
  } finally {
    history.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
