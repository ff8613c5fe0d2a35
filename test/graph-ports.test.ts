/** The port validators on their own: `port`, `ports` and host port conflicts across the project. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPort, checkPorts, hostPortConflicts, type HostBinding } from '../runtime/graph/validate/ports.ts';
import type { PortBinding } from '../runtime/model.ts';
import { none, only, recorder } from './graph-helpers.ts';

test('checkPort: absent, valid, and each invalid form reported on `port`', () => {
  const r = recorder();
  assert.equal(checkPort(undefined, r.report), undefined);
  assert.equal(checkPort(8080, r.report), 8080);
  assert.equal(checkPort(65535, r.report), 65535);
  none(r.list);
  for (const bad of [0, 65536, 80.5, '80', -1]) assert.equal(checkPort(bad, r.report), undefined);
  assert.equal(r.list.length, 5);
  assert.ok(r.list.every((p) => p.where === 'port' && /must be a whole number in 1\.\.65535/.test(p.message)));
});

test('checkPorts: bindings in order with the entry they came from; ranges expand; bad entries left out', () => {
  const r = recorder();
  const got = checkPorts([80, '9000-9001:9000-9001/udp', 'nope', { container: 53, protocol: 'udp' }], r.report);
  assert.deepEqual(got, [
    { where: 'ports[0]', binding: { container: 80, host: 80, hostIp: '0.0.0.0', protocol: 'tcp' } },
    { where: 'ports[1]', binding: { container: 9000, host: 9000, hostIp: '0.0.0.0', protocol: 'udp' } },
    { where: 'ports[1]', binding: { container: 9001, host: 9001, hostIp: '0.0.0.0', protocol: 'udp' } },
    { where: 'ports[3]', binding: { container: 53, hostIp: '0.0.0.0', protocol: 'udp' } },
  ]);
  assert.equal(only(r.list, /container port "nope"/).where, 'ports[2]');
  assert.equal(r.list.length, 1);
});

test('checkPorts: not a list', () => {
  const r = recorder();
  assert.deepEqual(checkPorts('8080:80', r.report), []);
  assert.equal(only(r.list, /ports must be a list/).where, 'ports');
});

const hb = (service: string, where: string, b: Partial<PortBinding> & { host: number }): HostBinding => ({
  service,
  file: `services/${service}.ts`,
  where,
  b: { container: 80, hostIp: '0.0.0.0', protocol: 'tcp', ...b },
});

test('hostPortConflicts: same port across services, reported once on the later binding', () => {
  const ps = hostPortConflicts([hb('web', 'ports[0]', { host: 8080 }), hb('api', 'ports[2]', { host: 8080, hostIp: '127.0.0.1' })]);
  assert.equal(ps.length, 1);
  assert.equal(ps[0].file, 'services/api.ts');
  assert.equal(ps[0].service, 'api');
  assert.equal(ps[0].where, 'ports[2]');
  assert.match(ps[0].message, /host port 8080\/tcp on 127\.0\.0\.1 is also bound by service "web" \(services\/web\.ts, ports\[0\]\)/);
  assert.match(ps[0].fix!, /different host port/);
});

test('hostPortConflicts: within one service; a range entry does not conflict with itself', () => {
  const ps = hostPortConflicts([hb('web', 'ports[0]', { host: 80 }), hb('web', 'ports[1]', { host: 80 }), hb('web', 'ports[2]', { host: 81 }), hb('web', 'ports[2]', { host: 82 })]);
  assert.equal(ps.length, 1);
  assert.match(ps[0].message, /bound twice by service "web" \(services\/web\.ts\): ports\[0\] and ports\[1\]/);
});

test('hostPortConflicts: different protocols or distinct specific addresses do not conflict', () => {
  assert.deepEqual(
    hostPortConflicts([
      hb('a', 'ports[0]', { host: 53, protocol: 'udp' }),
      hb('b', 'ports[0]', { host: 53, protocol: 'tcp' }),
      hb('c', 'ports[0]', { host: 443, hostIp: '10.0.0.1' }),
      hb('d', 'ports[0]', { host: 443, hostIp: '10.0.0.2' }),
    ]),
    [],
  );
  // the wildcard address overlaps a specific one
  assert.equal(hostPortConflicts([hb('c', 'ports[0]', { host: 443, hostIp: '10.0.0.1' }), hb('e', 'ports[0]', { host: 443, hostIp: '::' })]).length, 1);
});
