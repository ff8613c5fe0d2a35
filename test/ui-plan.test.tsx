/** The plan view (Ink): grouped diff, field-level changes, secrets, 80 columns, and the y/N/d prompt. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { render } from 'ink-testing-library';
import type { Operation, Plan } from '../runtime/model.ts';
import { PlanView } from '../cli/ui/PlanView.tsx';
import { ApplyApp, type ApplyUiState } from '../cli/ui/ApplyApp.tsx';
import { createStore } from '../cli/ui/store.ts';
import { initialProgress } from '../cli/render/progress.ts';
import { planText } from '../cli/render/plan.ts';
import { eventually, inputReady, maxLineWidth, recordedPlan, setupUi } from './ui-helpers.ts';

before(setupUi);

/** The recorded plan of a real change, plus an in-place update, a removal and an image/secret replace. */
function richPlan(): Plan {
  const plan = recordedPlan('demo-change.plan.json');
  const api = plan.operations.find((o) => o.id === 'replace:api') as Extract<Operation, { kind: 'replace-service' }>;
  const web: Operation = {
    ...api,
    id: 'replace:web',
    service: 'web',
    strategy: 'stop-first',
    strategyReason: 'fixed host port 8088/tcp',
    causes: [
      { kind: 'image', detail: 'waffle-demo/web:1 → waffle-demo/web:2' },
      { kind: 'ports', detail: 'now 127.0.0.1:8089:8080/tcp' },
      { kind: 'env', detail: 'API_URL changed, DB_PASSWORD added' },
      { kind: 'secrets', detail: 'a secret value changed' },
    ],
    body: { ...api.body, Image: 'waffle-demo/web:2', Env: ['API_URL=http://api:8080/', 'DB_PASSWORD=hunter2-very-secret'] },
  };
  const update: Operation = {
    id: 'update:worker',
    kind: 'update-service',
    service: 'worker',
    containerId: 'abc',
    after: [],
    causes: [{ kind: 'restart', detail: 'always → unless-stopped' }, { kind: 'resources', detail: 'memory unlimited → 64m' }],
    update: { RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 } },
  };
  const remove: Operation = {
    id: 'remove:old',
    kind: 'remove-service',
    service: 'old',
    containerId: 'def',
    containerName: `${plan.project}-old`,
    stopTimeout: 10,
    after: [],
    causes: [{ kind: 'removed', detail: 'removed' }],
  };
  return { ...plan, operations: [...plan.operations, web, update, remove], unchanged: ['zeta'] };
}

test('plan view: a recorded plan as a grouped diff with causes and strategy, unchanged folded', () => {
  const plan = recordedPlan('demo-change.plan.json');
  const { lastFrame } = render(<PlanView plan={plan} width={80} />);
  const frame = lastFrame()!;
  assert.match(frame, /Plan for rec\w+: 1 to create, 2 to replace, 2 unchanged/);
  const lines = frame.split('\n');
  const create = lines.findIndex((l) => /^\+\s+create\s+extra/.test(l));
  const replaceApi = lines.findIndex((l) => /^-\/\+\s+replace\s+api\s+\(start-first\)/.test(l));
  assert.ok(create >= 0 && replaceApi >= 0, frame);
  assert.ok(create < replaceApi, 'creates are grouped before replaces');
  assert.match(frame, /healthcheck\s+now http \/missing-health :8080/);
  assert.match(frame, /env\s+CACHE_MODE added/);
  assert.match(frame, /=\s+2 unchanged: web, worker/);
  assert.doesNotMatch(frame, /\blru\b/, 'env values are never shown');
});

test('plan view: image old → new, ports, env keys, (secret), update in place and removal; values never shown', () => {
  const { lastFrame } = render(<PlanView plan={richPlan()} width={80} />);
  const frame = lastFrame()!;
  assert.match(frame, /-\/\+\s+replace\s+web\s+\(stop-first: fixed host port 8088\/tcp\)/);
  assert.match(frame, /image\s+waffle-demo\/web:1 → waffle-demo\/web:2/);
  assert.match(frame, /ports\s+now 127\.0\.0\.1:8089:8080\/tcp/);
  assert.match(frame, /env\s+API_URL changed, DB_PASSWORD added/);
  assert.match(frame, /secrets\s+\(secret\) a secret value changed/);
  assert.match(frame, /^~\s+update\s+worker\s+\(in place\)/m);
  assert.match(frame, /restart\s+always → unless-stopped/);
  assert.match(frame, /^-\s+remove\s+old\s+\(removed\)/m);
  assert.doesNotMatch(frame, /hunter2/);
  // Order of groups: create, replace, update, remove.
  const at = (re: RegExp) => frame.split('\n').findIndex((l) => re.test(l));
  assert.ok(at(/create\s+extra/) < at(/replace\s+api/) && at(/replace\s+web/) < at(/update\s+worker/) && at(/update\s+worker/) < at(/remove\s+old/));
});

test('plan view: the full diff adds env keys of the new container (never values), networks and the old container', () => {
  const plan = richPlan();
  const short = render(<PlanView plan={plan} width={80} />).lastFrame()!;
  const full = render(<PlanView plan={plan} full width={80} />).lastFrame()!;
  assert.ok(full.split('\n').length > short.split('\n').length);
  assert.match(full, /env keys\s+API_URL, DB_PASSWORD/);
  assert.match(full, /env keys\s+CACHE_ADDR, GREETING/);
  assert.match(full, /container\s+rec\w+-old/);
  assert.doesNotMatch(full, /hunter2/);
  // The same text in plain mode.
  assert.doesNotMatch(planText(plan, { full: true }), /hunter2/);
});

test('plan view: 80 columns and less, long names truncated with …, never wrapped', () => {
  const plan = richPlan();
  const long = 'a-service-with-a-really-remarkably-long-name-that-goes-on';
  const op = plan.operations.find((o) => o.id === 'create:extra') as Extract<Operation, { kind: 'create-service' }>;
  op.service = long;
  op.body = { ...op.body, Image: `registry.example.com/${'very-long-path/'.repeat(6)}image:tag` };
  for (const width of [80, 50]) {
    const frame = render(<PlanView plan={plan} full width={width} />).lastFrame()!;
    assert.ok(maxLineWidth(frame) <= width, `a line is wider than ${width}:\n${frame}`);
    assert.match(frame, /…/);
    assert.ok(!frame.includes(long), 'the long name is truncated');
  }
});

test('apply prompt: (y/N), d toggles the full diff, y answers yes', async () => {
  const plan = richPlan();
  const store = createStore<ApplyUiState>({ phase: 'review', full: false, progress: initialProgress(), interrupts: 0 });
  const answers: boolean[] = [];
  const r = render(<ApplyApp store={store} plan={plan} onAnswer={(y) => answers.push(y)} onInterrupt={() => {}} interactive width={80} now={0} />);
  try {
    await eventually(() => assert.match(r.lastFrame()!, /Apply these changes\? \(y\/N\)\s+d: full diff/));
    assert.doesNotMatch(r.lastFrame()!, /networks\s+default/);
    await inputReady(r.stdin);
    r.stdin.write('d');
    await eventually(() => assert.match(r.lastFrame()!, /d: short diff/));
    assert.match(r.lastFrame()!, /networks\s+default/);
    await inputReady(r.stdin);
    r.stdin.write('y');
    await eventually(() => assert.deepEqual(answers, [true]));
  } finally {
    r.unmount();
  }
});

test('apply prompt: `y` and Enter arriving in one chunk (as a terminal may send them) answer yes', async () => {
  const store = createStore<ApplyUiState>({ phase: 'review', full: false, progress: initialProgress(), interrupts: 0 });
  const answers: boolean[] = [];
  const r = render(<ApplyApp store={store} plan={richPlan()} onAnswer={(y) => answers.push(y)} onInterrupt={() => {}} interactive width={80} now={0} />);
  try {
    await eventually(() => assert.match(r.lastFrame()!, /Apply these changes/));
    await inputReady(r.stdin);
    r.stdin.write('y\r');
    await eventually(() => assert.deepEqual(answers, [true]));
  } finally {
    r.unmount();
  }
});

test('apply prompt: Enter means no (the default), and Ctrl-C cancels', async () => {
  for (const key of ['\r', 'n']) {
    const store = createStore<ApplyUiState>({ phase: 'review', full: false, progress: initialProgress(), interrupts: 0 });
    const answers: boolean[] = [];
    const r = render(<ApplyApp store={store} plan={richPlan()} onAnswer={(y) => answers.push(y)} onInterrupt={() => {}} interactive width={80} now={0} />);
    try {
      await eventually(() => assert.match(r.lastFrame()!, /Apply these changes/));
      await inputReady(r.stdin);
      r.stdin.write(key);
      await eventually(() => assert.deepEqual(answers, [false], JSON.stringify(key)));
    } finally {
      r.unmount();
    }
  }
  const store = createStore<ApplyUiState>({ phase: 'review', full: false, progress: initialProgress(), interrupts: 0 });
  let interrupted = 0;
  const r = render(<ApplyApp store={store} plan={richPlan()} onAnswer={() => {}} onInterrupt={() => interrupted++} interactive width={80} now={0} />);
  try {
    await eventually(() => assert.match(r.lastFrame()!, /Apply these changes/));
    await inputReady(r.stdin);
    r.stdin.write('\x03');
    await eventually(() => assert.equal(interrupted, 1));
  } finally {
    r.unmount();
  }
});
