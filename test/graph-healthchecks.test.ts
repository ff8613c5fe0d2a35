/** The healthcheck validator on its own: the three kinds, timing over the project default, and the port rules. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkHealthcheck, DEFAULT_TIMING, parseTiming } from '../runtime/graph/validate/healthchecks.ts';
import { none, only, recorder } from './graph-helpers.ts';

const ctx = { port: 8080, portWritten: true, timing: DEFAULT_TIMING };

test('http: probes the service port unless the check names one; timing over the default', () => {
  const r = recorder();
  const h = checkHealthcheck({ http: '/health', interval: '2s' }, ctx, r.report);
  none(r.list);
  assert.equal(h?.describe, 'http /health :8080');
  assert.equal(h?.test[0], 'CMD-SHELL');
  assert.match(h!.test[1], /wget -q -O \/dev\/null 'http:\/\/127\.0\.0\.1:8080\/health'/);
  assert.equal(h?.intervalNs, 2e9);
  assert.equal(h?.timeoutNs, DEFAULT_TIMING.timeoutNs);
  assert.equal(checkHealthcheck({ http: '/h', port: 9000 }, ctx, r.report)?.describe, 'http /h :9000');
});

test('http without any port: one problem; none when the service port is written but invalid (reported by the port check)', () => {
  const r = recorder();
  assert.equal(checkHealthcheck({ http: '/h' }, { port: undefined, portWritten: false, timing: DEFAULT_TIMING }, r.report), undefined);
  assert.equal(only(r.list, /http healthcheck needs a port/).where, 'healthcheck.port');
  const r2 = recorder();
  assert.equal(checkHealthcheck({ http: '/h' }, { port: undefined, portWritten: true, timing: DEFAULT_TIMING }, r2.report), undefined);
  none(r2.list);
});

test('tcp and command kinds', () => {
  const r = recorder();
  assert.equal(checkHealthcheck({ tcp: 5432 }, ctx, r.report)?.describe, 'tcp :5432');
  assert.deepEqual(checkHealthcheck({ command: ['pg_isready', '-q'] }, ctx, r.report)?.test, ['CMD', 'pg_isready', '-q']);
  assert.deepEqual(checkHealthcheck({ command: 'true' }, ctx, r.report)?.test, ['CMD-SHELL', 'true']);
  none(r.list);
});

test('problems: no kind, two kinds, port on tcp, bad path, unknown key', () => {
  const r = recorder();
  checkHealthcheck({ interval: '1s' }, ctx, r.report);
  checkHealthcheck({ http: '/a', command: 'x' }, ctx, r.report);
  checkHealthcheck({ tcp: 5432, port: 1 }, ctx, r.report);
  checkHealthcheck({ http: 'health' }, ctx, r.report);
  checkHealthcheck({ command: 'x', intervall: '1s' }, ctx, r.report);
  checkHealthcheck('curl localhost', ctx, r.report);
  only(r.list, /needs one of `http`, `tcp` or `command`/);
  only(r.list, /has `http` and `command`; only one/);
  assert.match(only(r.list, /`port` only applies to http/).fix!, /tcp: 5432/);
  assert.equal(only(r.list, /http "health" must be a path/).where, 'healthcheck.http');
  assert.match(only(r.list, /unknown key `intervall`/).message, /did you mean `interval`/);
  only(r.list, /healthcheck must be an object/);
  assert.equal(r.list.length, 6);
});

test('parseTiming: each field over the base; invalid ones reported and the base kept', () => {
  const r = recorder();
  const base = { intervalNs: 1, timeoutNs: 2, retries: 3, startPeriodNs: 4 };
  assert.deepEqual(parseTiming({ timeout: '1s', startPeriod: 0 }, 'x', r.report, base), { intervalNs: 1, timeoutNs: 1e9, retries: 3, startPeriodNs: 0 });
  assert.deepEqual(parseTiming({ interval: '0ms', retries: 0 }, 'x', r.report, base), base);
  assert.equal(only(r.list, /interval must be at least 1ms/).where, 'x.interval');
  assert.equal(only(r.list, /retries 0 must be a whole number ≥ 1/).where, 'x.retries');
});
