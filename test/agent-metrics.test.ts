/** The agent's Prometheus metrics, read back through a strict parser of the text format. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentMetrics, DEPLOY_DURATION_BUCKETS, outcomeLabel } from '../runtime/agent/metrics.ts';
import { parsePrometheusText } from './prom-text.ts';

test('metrics: a fresh agent exposes every family, deploy results at 0, and process metrics', async () => {
  const m = new AgentMetrics();
  assert.match(m.contentType, /^text\/plain; version=0\.0\.4/);
  const x = parsePrometheusText(await m.text());
  assert.equal(x.types.get('waffle_deploys_total'), 'counter');
  assert.equal(x.types.get('waffle_deploy_duration_seconds'), 'histogram');
  assert.equal(x.types.get('waffle_last_successful_deploy_timestamp_seconds'), 'gauge');
  assert.equal(x.types.get('waffle_deploy_queue_length'), 'gauge');
  assert.equal(x.types.get('waffle_webhook_deliveries_total'), 'counter');
  assert.equal(x.types.get('waffle_repairs_total'), 'counter');
  for (const result of ['applied', 'no-op', 'failed', 'interrupted']) assert.equal(x.value('waffle_deploys_total', { result }), 0, result);
  assert.equal(x.value('waffle_deploy_duration_seconds_count'), 0);
  assert.equal(x.value('waffle_last_successful_deploy_timestamp_seconds'), 0);
  assert.equal(x.value('waffle_deploy_queue_length'), 0);
  // Node's own process metrics on the same registry.
  assert.ok(x.value('process_resident_memory_bytes')! > 0);
  assert.ok(x.types.has('nodejs_eventloop_lag_seconds'));
});

test('metrics: deploys, durations, the last success, queue length, deliveries and repairs are counted', async () => {
  const m = new AgentMetrics({ processMetrics: false });
  const t0 = 1_700_000_000_000;
  m.deployFinished('applied', 3.2, t0);
  m.deployFinished('failed', 0.4, t0 + 60_000);
  m.deployFinished('no-op', 0.1, t0 + 120_000);
  m.deployFinished('failed', 45, t0 + 180_000);
  m.deployFinished('interrupted', 700, t0 + 240_000);
  m.queueLength(3);
  m.queueLength(1);
  m.delivery('github', 'deployed');
  m.delivery('github', 'ignored: branch refs/heads/feature');
  m.delivery('github', 'ignored: event issues');
  m.delivery('github', 'refused: bad signature');
  m.delivery('registry', 'coalesced');
  m.repair('container-removed');

  const x = parsePrometheusText(await m.text());
  assert.equal(x.value('waffle_deploys_total', { result: 'applied' }), 1);
  assert.equal(x.value('waffle_deploys_total', { result: 'failed' }), 2);
  assert.equal(x.value('waffle_deploys_total', { result: 'no-op' }), 1);
  assert.equal(x.value('waffle_deploys_total', { result: 'interrupted' }), 1);
  assert.equal(x.value('waffle_deploy_duration_seconds_count'), 5);
  assert.ok(Math.abs(x.value('waffle_deploy_duration_seconds_sum')! - 748.7) < 1e-9);
  // Cumulative buckets: 0.1 and 0.4 ≤ 0.5; 3.2 ≤ 5; 45 ≤ 60; 700 only in +Inf.
  assert.equal(x.value('waffle_deploy_duration_seconds_bucket', { le: '0.25' }), 1);
  assert.equal(x.value('waffle_deploy_duration_seconds_bucket', { le: '0.5' }), 2);
  assert.equal(x.value('waffle_deploy_duration_seconds_bucket', { le: '5' }), 3);
  assert.equal(x.value('waffle_deploy_duration_seconds_bucket', { le: '60' }), 4);
  assert.equal(x.value('waffle_deploy_duration_seconds_bucket', { le: String(DEPLOY_DURATION_BUCKETS.at(-1)) }), 4);
  assert.equal(x.value('waffle_deploy_duration_seconds_bucket', { le: '+Inf' }), 5);
  // The last success is the no-op at t0 + 120 s: the failures and the interruption after it do not move it.
  assert.equal(x.value('waffle_last_successful_deploy_timestamp_seconds'), (t0 + 120_000) / 1000);
  assert.equal(x.value('waffle_deploy_queue_length'), 1);
  assert.equal(x.value('waffle_webhook_deliveries_total', { source: 'github', outcome: 'deployed' }), 1);
  assert.equal(x.value('waffle_webhook_deliveries_total', { source: 'github', outcome: 'ignored' }), 2);
  assert.equal(x.value('waffle_webhook_deliveries_total', { source: 'github', outcome: 'refused' }), 1);
  assert.equal(x.value('waffle_webhook_deliveries_total', { source: 'registry', outcome: 'coalesced' }), 1);
  assert.equal(x.value('waffle_repairs_total', { kind: 'container-removed' }), 1);
  assert.equal(x.types.has('process_resident_memory_bytes'), false, 'process metrics can be left out');
});

test('metrics: two agents in one process keep separate registries', async () => {
  const a = new AgentMetrics();
  const b = new AgentMetrics();
  a.deployFinished('applied', 1, Date.now());
  const xa = parsePrometheusText(await a.text());
  const xb = parsePrometheusText(await b.text());
  assert.equal(xa.value('waffle_deploys_total', { result: 'applied' }), 1);
  assert.equal(xb.value('waffle_deploys_total', { result: 'applied' }), 0);
});

test('metrics: the outcome label is the first word of the outcome', () => {
  assert.equal(outcomeLabel('ignored: branch refs/heads/x'), 'ignored');
  assert.equal(outcomeLabel('deployed'), 'deployed');
  assert.equal(outcomeLabel(' refused : bad signature'), 'refused');
  assert.equal(outcomeLabel(''), 'unknown');
});

test('metrics: the strict reader rejects what is not the text format', () => {
  assert.throws(() => parsePrometheusText('foo 1\n'), /has no TYPE/);
  assert.throws(() => parsePrometheusText('# TYPE foo gauge\nfoo{a="1" 1\n'), /not a sample line|bad labels/);
  assert.throws(() => parsePrometheusText('# TYPE foo gauge\nfoo one\n'), /bad sample value/);
});
