/**
 * The CI template (templates/ci/github-actions.yml): it parses; it runs `waffle check` on pull requests
 * and pushes and builds images only on pushes; its tag step, run with bash as GitHub runs it, names
 * the image `sha-<short sha>` and `<branch>-<short sha>` (tags Docker accepts); and its check steps,
 * run verbatim in a repository made by `waffle init` with the template's service, pass — and fail,
 * naming the file, when a service is broken.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { PKG_ROOT, typeDiagnostics, waffle, WAFFLE_BIN } from './helpers.ts';
import { TEST_IMAGES } from './engine.ts';

const TEMPLATE = path.join(PKG_ROOT, 'templates/ci/github-actions.yml');
const temps: string[] = [];
after(() => {
  for (const d of temps) fs.rmSync(d, { recursive: true, force: true });
});
const tempDir = (prefix: string) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temps.push(d);
  return d;
};

interface Step {
  id?: string;
  name?: string;
  if?: string;
  run?: string;
  uses?: string;
  'working-directory'?: string;
  with?: Record<string, unknown>;
}
interface Workflow {
  on: Record<string, unknown>;
  env: Record<string, string>;
  jobs: Record<string, { if?: string; needs?: string; steps: Step[] }>;
}

const workflow = () => parse(fs.readFileSync(TEMPLATE, 'utf8')) as Workflow;

/** Runs one step's `run` script with bash, as GitHub does, with `env` and a fresh GITHUB_OUTPUT; returns its outputs. */
function runStep(step: Step, env: Record<string, string>, cwd: string): { code: number; output: Record<string, string>; text: string } {
  const outFile = path.join(tempDir('waffle-gh-out-'), 'output');
  fs.writeFileSync(outFile, '');
  const r = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', step.run!], {
    cwd: step['working-directory'] ? path.join(cwd, env.WAFFLE_DIR ?? '.') : cwd,
    env: { ...process.env, NO_COLOR: '1', CI: 'true', GITHUB_OUTPUT: outFile, ...env },
    encoding: 'utf8',
  });
  const output = Object.fromEntries(
    fs.readFileSync(outFile, 'utf8').split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  return { code: r.status ?? 1, output, text: `${r.stdout}${r.stderr}` };
}

test('the workflow checks on pull requests and pushes, and builds and pushes only on pushes, after the check', () => {
  const wf = workflow();
  assert.ok('push' in wf.on && 'pull_request' in wf.on);
  const check = wf.jobs.check!;
  assert.equal(check.if, undefined);
  assert.ok(check.steps.some((s) => s.run?.trim() === 'npx waffle check --plain'));
  const image = wf.jobs.image!;
  assert.equal(image.if, "github.event_name == 'push'");
  assert.equal(image.needs, 'check');
  const build = image.steps.find((s) => s.uses?.startsWith('docker/build-push-action'))!;
  assert.equal(build.with!.push, true);
  assert.equal(build.with!.tags, '${{ steps.tags.outputs.tags }}');
});

test('the tag step names the image sha-<short sha> and <branch>-<short sha>, and Docker accepts the tags', () => {
  const step = workflow().jobs.image!.steps.find((s) => s.id === 'tags')!;
  const sha = '3f2a1b9c0d4e5f60718293a4b5c6d7e8f9012345';
  const run = (ref: string) => runStep(step, { REGISTRY: 'ghcr.io', IMAGE_NAME: 'Acme/Shop', GITHUB_SHA: sha, GITHUB_REF_NAME: ref }, tempDir('waffle-gh-'));
  const main = run('main');
  assert.equal(main.code, 0, main.text);
  assert.deepEqual(main.output, {
    image: 'ghcr.io/acme/shop',
    'sha-tag': 'sha-3f2a1b9',
    'branch-tag': 'main-3f2a1b9',
    tags: 'ghcr.io/acme/shop:sha-3f2a1b9,ghcr.io/acme/shop:main-3f2a1b9',
  });
  const feature = run('feature/Login+SSO');
  assert.equal(feature.output['branch-tag'], 'feature-Login-SSO-3f2a1b9');
  // Every tag is a valid reference for the real engine.
  const docker = (...args: string[]) => spawnSync('docker', args, { encoding: 'utf8' });
  for (const ref of [...main.output.tags!.split(','), ...feature.output.tags!.split(',')]) {
    const local = ref.replace(/^ghcr\.io\//, 'waffle-ci-test/');
    const r = docker('tag', TEST_IMAGES.busybox, local);
    assert.equal(r.status, 0, `docker tag ${local}: ${r.stderr}`);
    docker('rmi', local);
  }
});

test('the check steps pass on a repository with the template service, and fail naming the file when a service is broken', async () => {
  const repo = tempDir('waffle-gh-repo-');
  const init = await waffle(['init', repo, '--project', 'shop'], { cwd: repo });
  assert.equal(init.code, 0, init.stderr);
  fs.rmSync(path.join(repo, 'services/web.ts'));
  fs.copyFileSync(path.join(PKG_ROOT, 'templates/ci/service.ts'), path.join(repo, 'services/shop.ts'));
  assert.deepEqual(await typeDiagnostics(path.join(PKG_ROOT, 'templates/ci/service.ts')), []);

  // `npx waffle` runs this checkout's binary (the registry cannot be reached here; `npm ci` is skipped).
  const shim = tempDir('waffle-gh-bin-');
  fs.writeFileSync(path.join(shim, 'npx'), `#!/bin/sh\n[ "$1" = waffle ] && shift\nexec "${process.execPath}" "${WAFFLE_BIN}" "$@"\n`, { mode: 0o755 });
  const steps = workflow().jobs.check!.steps;
  const env = { WAFFLE_DIR: '.', PATH: `${shim}:${process.env.PATH}` };
  const has = runStep(steps.find((s) => s.id === 'has-config')!, env, repo);
  assert.equal(has.output.found, 'true');
  const checkStep = steps.find((s) => s.name === 'waffle check')!;
  const ok = runStep(checkStep, env, repo);
  assert.equal(ok.code, 0, ok.text);
  assert.match(ok.text, /ok: project shop, 1 service\b/);

  fs.writeFileSync(path.join(repo, 'services/shop.ts'), fs.readFileSync(path.join(repo, 'services/shop.ts'), 'utf8').replace('port: 3000,', "port: '3000',"));
  const broken = runStep(checkStep, env, repo);
  assert.equal(broken.code, 1, broken.text);
  assert.match(broken.text, /services\/shop\.ts:\d+:\d+/);

  // Without a configuration the check job does nothing (an application repository before it has one).
  const empty = tempDir('waffle-gh-empty-');
  assert.equal(runStep(steps.find((s) => s.id === 'has-config')!, env, empty).output.found, 'false');
});
