/** The volumes validator on its own: named volumes, bind mounts, targets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { checkVolumes } from '../runtime/graph/validate/volumes.ts';
import { none, only, recorder } from './graph-helpers.ts';

const ctx = { project: 'demo', root: '/srv/repo' };

test('checkVolumes: named volumes get the project prefix; binds resolve from the root; targets are normalised', () => {
  const r = recorder();
  const got = checkVolumes(
    [
      { name: 'data', target: '/var/lib/data/' },
      { bind: './conf', target: '/etc/app//', readOnly: true },
      { bind: '/abs/logs', target: '/logs' },
    ],
    ctx,
    r.report,
  );
  none(r.list);
  assert.deepEqual(got.volumes, ['data']);
  assert.deepEqual(got.mounts, [
    { type: 'volume', name: 'data', source: 'demo_data', target: '/var/lib/data', readOnly: false },
    { type: 'bind', source: path.join('/srv/repo', 'conf'), target: '/etc/app', readOnly: true },
    { type: 'bind', source: '/abs/logs', target: '/logs', readOnly: false },
  ]);
});

test('checkVolumes: each problem where it is written, invalid entries left out', () => {
  const r = recorder();
  const got = checkVolumes(
    [
      { name: 'ok', target: '/a' },
      { name: 'ok2', target: '/a/' },
      { target: '/b' },
      { bind: '', target: '/c' },
      { name: 'x', target: '/d', readOnly: 'yes' },
      { name: 'y', target: '/e', mode: 'ro' },
    ],
    ctx,
    r.report,
  );
  assert.equal(only(r.list, /"\/a" is already mounted by volumes\[0\]/).where, 'volumes[1].target');
  assert.equal(only(r.list, /needs `name` \(named volume\) or `bind`/).where, 'volumes[2]');
  assert.equal(only(r.list, /bind "" must be a host path/).where, 'volumes[3].bind');
  assert.equal(only(r.list, /readOnly must be true or false/).where, 'volumes[4].readOnly');
  assert.equal(only(r.list, /unknown key `mode` in a volume/).where, 'volumes[5].mode');
  assert.equal(r.list.length, 5);
  const targets = got.mounts.map((m) => m.target);
  for (const bad of ['/b', '/c', '/d']) assert.ok(!targets.includes(bad), `${bad} is left out`);
  assert.deepEqual(got.volumes, ['ok', 'ok2', 'y']);
});

test('checkVolumes: not a list', () => {
  const r = recorder();
  assert.deepEqual(checkVolumes({ name: 'data' }, ctx, r.report), { mounts: [], volumes: [] });
  assert.equal(only(r.list, /volumes must be a list/).where, 'volumes');
});
