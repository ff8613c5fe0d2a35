/** The status table (Ink and plain): columns, states, uptime, ports/domains, 80 columns without wrapping. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { render } from 'ink-testing-library';
import { StatusTable } from '../cli/ui/StatusTable.tsx';
import { pollStatus, StatusWatch } from '../cli/ui/status.tsx';
import { formatStatus, statusRows, type StatusRow } from '../cli/status.ts';
import type { ObservedContainer, ServiceGraph } from '../runtime/model.ts';
import { eventually, inputReady, maxLineWidth, setupUi } from './ui-helpers.ts';

before(setupUi);

const now = Date.UTC(2025, 0, 1, 12, 0, 0);

function container(service: string, over: Partial<ObservedContainer> = {}): ObservedContainer {
  return {
    id: `id-${service}`,
    name: `demo-${service}`,
    service,
    configHash: 'h',
    commit: '0123456789abcdef0123456789abcdef01234567',
    generation: 1,
    image: `waffle-demo/${service}:1`,
    imageId: 'sha256:x',
    state: 'running',
    health: 'healthy',
    labels: {},
    restart: { name: 'no', maximumRetryCount: 0 },
    resources: { memory: 0, nanoCpus: 0 },
    createdAt: now - 3725_000,
    ports: [],
    ...over,
  };
}

function rows(): StatusRow[] {
  const long = 'service-with-an-extraordinarily-long-name-for-a-table';
  const graph = { services: { api: {}, web: {}, db: {}, [long]: {} } } as unknown as ServiceGraph;
  const observed = {
    project: 'demo',
    containers: [
      container('api'),
      container('web', { ports: [{ container: 8080, host: 8088, hostIp: '127.0.0.1', protocol: 'tcp' }], health: 'starting', createdAt: now - 42_000 }),
      container(long, { image: `registry.example.com/${'deep/'.repeat(8)}image:1.2.3`, state: 'exited', health: 'none' }),
      container('gone', { createdAt: now - 3 * 86400_000 }),
    ],
    networks: [],
    volumes: [],
    images: [],
  };
  const r = statusRows(graph, observed, now);
  r.find((x) => x.service === 'api')!.domains = ['api.example.com'];
  return r;
}

test('status table: one row per service with state, health, image, short commit, uptime, ports/domains', () => {
  const frame = render(<StatusTable project="demo" rows={rows()} width={100} />).lastFrame()!;
  const lines = frame.split('\n');
  assert.match(lines[0], /project demo/);
  assert.match(lines[1], /^SERVICE\s+STATE\s+HEALTH\s+IMAGE\s+COMMIT\s+UPTIME\s+PORTS\/DOMAINS$/);
  assert.match(frame, /^api\s+running\s+healthy\s+waffle-demo\/api:1\s+0123456\s+1h2m\s+api\.example\.com$/m);
  assert.match(frame, /^web\s+running\s+starting\s+waffle-demo\/web:1\s+0123456\s+42s\s+127\.0\.0\.1:8088->8080\/tcp$/m);
  assert.match(frame, /^db\s+missing\s+-\s+-\s+-\s+-\s+-$/m);
  assert.match(frame, /^gone \(orphan\)\s+running\s+healthy\s+.*3d0h/m);
  assert.match(frame, /^1 container out of the ordinary:$/m);
  assert.match(frame, /^  demo-gone: removed by the next apply \(service "gone" is no longer defined\)$/m);
});

test('status rows: every container, duplicates, temporary names and containers without a service marked with the fix', () => {
  const graph = { services: { api: {}, web: {} } } as unknown as ServiceGraph;
  const observed = {
    project: 'demo',
    containers: [
      container('api', { id: 'a1', name: 'demo-api', createdAt: now - 600_000 }),
      container('api', { id: 'a2', name: 'demo-api-next-3', createdAt: now - 60_000, state: 'exited', health: 'none' }),
      container('api', { id: 'a3', name: 'demo-api-copy', createdAt: now - 30_000 }),
      // No container under the usual name: the newest running one is shown first, even with a temporary name.
      container('web', { id: 'w0', name: 'demo-web-next-4', createdAt: now - 5_000, state: 'exited', health: 'none' }),
      container('web', { id: 'w1', name: 'demo-web-next-2', createdAt: now - 10_000 }),
      container('web', { id: 'w2', name: 'demo-web-old', createdAt: now - 900_000 }),
      container('', { id: 's1', name: 'stray', commit: '' }),
    ],
    networks: [],
    volumes: [],
    images: [],
  };
  const r = statusRows(graph, observed, now);
  assert.deepEqual(
    r.map((x) => [x.service, x.container, x.marks.join('+')]),
    [
      ['api', 'demo-api', ''],
      ['api', 'demo-api-copy', 'duplicate'],
      ['api', 'demo-api-next-3', 'temporary+duplicate'],
      ['web', 'demo-web-next-2', 'temporary'],
      ['web', 'demo-web-next-4', 'temporary+duplicate'],
      ['web', 'demo-web-old', 'duplicate'],
      [null, 'stray', 'no-service'],
    ],
  );
  assert.equal(r[0].note, undefined);
  assert.match(r[2].note!, /^demo-api-next-3: the next apply keeps one of the 3 containers of "api" and removes the others \(temporary name left by an interrupted replacement; another container of "api" besides demo-api\)$/);
  assert.match(r[3].note!, /^demo-web-next-2: the next apply keeps one of the 3 containers of "web" and removes the others \(temporary name left by an interrupted replacement\)$/);
  assert.match(r[6].note!, /^stray: removed by the next apply \(our project label but no service label\)$/);
  const lone = statusRows(graph, { ...observed, containers: [container('api', { name: 'demo-api-next-5' })] }, now);
  assert.equal(lone[0].note, 'demo-api-next-5: the next apply renames it to demo-api (or replaces it, unless it runs with the current configuration) (temporary name left by an interrupted replacement)');
  const text = formatStatus(r, 200);
  assert.match(text, /^api \(temporary, duplicate\)\s+exited\s+none/m);
  assert.match(text, /^\(no service\)\s+running/m);
  assert.match(text, /^6 containers out of the ordinary:$/m);
  for (const name of ['demo-api-copy', 'demo-api-next-3', 'demo-web-next-2', 'demo-web-next-4', 'demo-web-old', 'stray']) assert.match(text, new RegExp(`^  ${name}: `, 'm'));
  const ink = render(<StatusTable project="demo" rows={r} width={80} />).lastFrame()!;
  assert.ok(maxLineWidth(ink) <= 80);
  assert.match(ink, /^\(no service\)\s+running/m);
  assert.match(ink, /^  stray: removed by the next apply \(our project label but no service label\)$/m);
});

test('status table: 80 columns, long names and images truncated with …, never wrapped', () => {
  const r = rows();
  for (const width of [80, 60]) {
    const frame = render(<StatusTable project="demo" rows={r} width={width} updatedAt={now} footer="every 2s · q to quit" />).lastFrame()!;
    assert.ok(maxLineWidth(frame) <= width, `wider than ${width}:\n${frame}`);
    // header, one line per row, then a blank line, the notes heading and one note (the orphan), and the footer
    assert.equal(frame.split('\n').length, 2 + r.length + 3 + 1, 'one line per row and note, nothing wrapped');
    assert.match(frame, /^servic\S*…\s+exited/m);
    assert.match(frame, /regist\S*…/);
  }
  // The plain table obeys the same width.
  assert.ok(maxLineWidth(formatStatus(r, 80)) <= 80);
});

test('status --watch: polling reads rows on the interval and hands each snapshot over', async () => {
  let reads = 0;
  const seen: string[] = [];
  const stop = pollStatus(
    async () => {
      reads++;
      const r = rows();
      r[0].state = reads === 1 ? 'running' : 'restarting';
      if (reads === 3) throw new Error('engine went away');
      return r;
    },
    20,
    (s) => seen.push(s.error ? `error:${s.error}:${s.rows[0]?.state}` : s.rows[0].state),
  );
  try {
    await eventually(() => assert.ok(seen.length >= 3, String(seen)));
    assert.deepEqual(seen.slice(0, 3), ['running', 'restarting', 'error:engine went away:restarting']);
  } finally {
    stop();
  }
  const after = reads;
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(reads, after, 'no read after stop');
});

test('status --watch: the view shows each snapshot it is given, and q quits', async () => {
  let quit = 0;
  const first = rows();
  const second = rows();
  second[0].state = 'restarting';
  const view = (snapshot: { rows: ReturnType<typeof rows>; at?: number }) => (
    <StatusWatch project="demo" snapshot={snapshot} intervalMs={50} interactive onQuit={() => quit++} />
  );
  const ui = render(view({ rows: first, at: Date.now() }));
  try {
    await eventually(() => assert.match(ui.lastFrame()!, /^api\s+running/m));
    assert.match(ui.lastFrame()!, /every 0\.05s · q to quit/);
    ui.rerender(view({ rows: second, at: Date.now() }));
    await eventually(() => assert.match(ui.lastFrame()!, /^api\s+restarting/m));
    await inputReady(ui.stdin);
    ui.stdin.write('q');
    await eventually(() => assert.equal(quit, 1));
  } finally {
    ui.unmount();
  }
});
