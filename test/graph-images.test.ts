/** The image validators on their own: the `image` field and the pull policy (service and project default). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkImageField, checkPull } from '../runtime/graph/validate/images.ts';
import { none, only, recorder } from './graph-helpers.ts';

test('checkImageField: required, a string, in Docker grammar', () => {
  const r = recorder();
  assert.equal(checkImageField('ghcr.io/acme/api:1.4.2', r.report), 'ghcr.io/acme/api:1.4.2');
  none(r.list);
  assert.equal(checkImageField(undefined, r.report), '');
  assert.equal(checkImageField(7, r.report), '');
  assert.equal(checkImageField('Acme/Api', r.report), '');
  only(r.list, /image is required/);
  only(r.list, /image must be a string, got 7/);
  assert.match(only(r.list, /must be lowercase/).fix!, /"acme\/api"/);
  assert.ok(r.list.every((p) => p.where === 'image'));
});

test('checkPull: absent takes the fallback; both policies pass', () => {
  const r = recorder();
  assert.equal(checkPull(undefined, 'pull', r.report, 'always'), 'always');
  assert.equal(checkPull(undefined, 'pull', r.report, 'missing'), 'missing');
  assert.equal(checkPull('always', 'pull', r.report, 'missing'), 'always');
  assert.equal(checkPull('missing', 'pull', r.report, 'always'), 'missing');
  none(r.list);
});

test('checkPull: anything else is reported where written, with a suggestion and what each policy does', () => {
  const r = recorder();
  assert.equal(checkPull('Always', 'pull', r.report, 'missing'), 'missing');
  assert.equal(checkPull('if-not-present', 'defaults.pull', r.report, 'missing'), 'missing');
  assert.equal(checkPull(false, 'pull', r.report, 'missing'), 'missing');
  assert.match(only(r.list, /pull "Always"/).message, /did you mean 'always'\?/);
  const odd = only(r.list, /pull "if-not-present"/);
  assert.equal(odd.where, 'defaults.pull');
  assert.doesNotMatch(odd.message, /did you mean/);
  assert.match(odd.fix!, /'missing' \(use the local image when present\).*'always' \(check the registry on every plan/);
  only(r.list, /pull false must be 'missing' or 'always'/);
});
