/**
 * The host policy on graphs the engine loads from real repositories: bind mounts outside the checkout
 * (`..`, absolute paths, committed symlinks), the Docker socket, the checkout's .git, and host ports.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Engine } from '../runtime/engine.ts';
import type { Problem, ServiceGraph } from '../runtime/model.ts';
import { formatProblem, ProblemsError } from '../runtime/problems.ts';
import { checkHostPolicy, DEFAULT_HOST_POLICY, parseHostPolicy, resolveHostPath, type HostPolicy } from '../runtime/agent/policy.ts';
import { makeRepo, uniqueProject } from './helpers.ts';

const made: string[] = [];
after(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-policy-state-'));
made.push(stateDir);
const engine = new Engine({ env: {}, stateDir });

/** A real repository (git) with these service files; returns its directory. */
function repoWith(services: Record<string, string>, extra: Record<string, string> = {}): string {
  const files: Record<string, string> = {
    'waffle.config.ts': `import { defineConfig } from 'wafflemaker';\nexport default defineConfig({ project: '${uniqueProject('pol')}' });\n`,
    ...extra,
  };
  for (const [name, body] of Object.entries(services)) {
    files[`services/${name}.ts`] = `import { defineService } from 'wafflemaker';\nexport default defineService(${body});\n`;
  }
  const dir = makeRepo(files, { git: true });
  made.push(dir);
  return dir;
}

/** The graph the engine builds from `dir` (loaded and validated as a deploy would). */
const load = (dir: string): Promise<ServiceGraph> => engine.load({ dir });

/** The one problem whose message matches `re`; checks it names the file, service, field and a fix. */
function one(problems: Problem[], re: RegExp, service: string): Problem {
  const hits = problems.filter((p) => re.test(p.message));
  assert.equal(hits.length, 1, `expected one problem matching ${re}, got:\n${problems.map(formatProblem).join('\n')}`);
  const p = hits[0]!;
  assert.equal(p.service, service);
  assert.equal(p.file, `services/${service}.ts`);
  assert.match(p.message, /^host policy: /);
  assert.ok(p.fix && p.fix.length > 10, `a fix: ${JSON.stringify(p)}`);
  return p;
}

test('policy: the demo-like repository with named volumes, binds inside the checkout and high ports passes the default policy', async () => {
  const dir = repoWith(
    {
      web: `{ image: 'waffle-test/app:1', port: 8080, ports: ['127.0.0.1:8088:8080', '9090'], volumes: [{ bind: './config', target: '/etc/app', readOnly: true }, { name: 'data', target: '/data' }] }`,
      worker: `{ image: 'waffle-test/app:1', volumes: [{ bind: 'config/worker', target: '/conf' }] }`,
    },
    { 'config/app.conf': 'x=1\n', 'config/worker/w.conf': 'y=2\n' },
  );
  const g = await load(dir);
  assert.deepEqual(checkHostPolicy(g, DEFAULT_HOST_POLICY, dir), []);
});

test('policy: binds outside the checkout are refused, whether written with .., as an absolute path or through a committed symlink', async () => {
  const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-policy-outside-'));
  made.push(outside);
  const dir = repoWith({
    dots: `{ image: 'waffle-test/app:1', volumes: [{ bind: '../../../../../../etc', target: '/host-etc' }] }`,
    abs: `{ image: 'waffle-test/app:1', volumes: [{ bind: './ok', target: '/ok' }, { bind: ${JSON.stringify(outside)}, target: '/srv' }] }`,
    link: `{ image: 'waffle-test/app:1', volumes: [{ bind: './data/escape/passwd', target: '/pw', readOnly: true }] }`,
  });
  // A symlink committed into the repository that leads out of it.
  fs.mkdirSync(path.join(dir, 'data'));
  fs.symlinkSync('/etc', path.join(dir, 'data', 'escape'));
  const g = await load(dir);
  const problems = checkHostPolicy(g, DEFAULT_HOST_POLICY, dir);
  assert.equal(problems.length, 3, problems.map(formatProblem).join('\n'));

  const dots = one(problems, /"\/etc" is outside the directories bind mounts may use/, 'dots');
  assert.equal(dots.where, 'volumes[0].bind');
  assert.match(dots.message, new RegExp(`the checkout \\(${resolveHostPath(dir).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\)`));
  assert.match(dots.fix!, /named volume .*target: '\/host-etc'.*bindRoots in the agent's host policy/);

  const abs = one(problems, new RegExp(`"${outside}" is outside`), 'abs');
  assert.equal(abs.where, 'volumes[1].bind', 'the entry that breaks the rule, not the one before it');

  const link = one(problems, /which leads to "\/etc\/passwd"\) is outside/, 'link');
  assert.equal(link.where, 'volumes[0].bind');

  // An allowed root admits the absolute bind, not the others.
  const allowed = checkHostPolicy(g, { ...DEFAULT_HOST_POLICY, bindRoots: [outside] }, dir);
  assert.deepEqual(allowed.map((p) => p.service).sort(), ['dots', 'link']);
  // A root written through a symlink counts as where it leads.
  const viaLink = path.join(dir, 'data', 'outside-link');
  fs.symlinkSync(outside, viaLink);
  assert.deepEqual(checkHostPolicy(g, { ...DEFAULT_HOST_POLICY, bindRoots: [viaLink] }, dir).map((p) => p.service).sort(), ['dots', 'link']);
});

test('policy: the Docker socket is refused, as a file, as a directory holding it, by name or through a symlink, unless allowed', async (t) => {
  const sockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-policy-sock-'));
  made.push(sockDir);
  // A real unix socket standing for this host's Docker engine at a path only the agent knows.
  const enginePath = path.join(sockDir, 'engine.sock');
  const server = net.createServer().listen(enginePath);
  await new Promise((r) => server.once('listening', r));
  t.after(() => server.close());

  const dir = repoWith({
    sock: `{ image: 'waffle-test/app:1', volumes: [{ bind: '/var/run/docker.sock', target: '/var/run/docker.sock' }] }`,
    run: `{ image: 'waffle-test/app:1', volumes: [{ bind: '/run', target: '/hostrun' }] }`,
    root: `{ image: 'waffle-test/app:1', volumes: [{ bind: '/', target: '/host' }] }`,
    named: `{ image: 'waffle-test/app:1', volumes: [{ bind: ${JSON.stringify(path.join(sockDir, 'docker-rootless.sock'))}, target: '/d.sock' }] }`,
    custom: `{ image: 'waffle-test/app:1', volumes: [{ bind: ${JSON.stringify(sockDir)}, target: '/s' }] }`,
    linked: `{ image: 'waffle-test/app:1', volumes: [{ bind: './sock', target: '/x.sock' }] }`,
    holder: `{ image: 'waffle-test/app:1', volumes: [{ bind: './run', target: '/r' }] }`,
  });
  fs.symlinkSync('/var/run/docker.sock', path.join(dir, 'sock'));
  // A directory of the checkout with a Docker socket in it (a rootless engine's, say).
  fs.mkdirSync(path.join(dir, 'run'));
  const inRepo = net.createServer().listen(path.join(dir, 'run', 'docker.sock'));
  await new Promise((r) => inRepo.once('listening', r));
  t.after(() => inRepo.close());
  const g = await load(dir);
  const policy: HostPolicy = { ...DEFAULT_HOST_POLICY, dockerSockets: [enginePath], source: '/etc/waffle/agent.json' };
  const problems = checkHostPolicy(g, policy, dir);
  for (const service of ['sock', 'run', 'root', 'named', 'custom', 'linked', 'holder']) {
    const p = one(problems.filter((x) => x.service === service), /would give the container the Docker socket/, service);
    assert.match(p.message, /root on this host/);
    assert.match(p.fix!, /"dockerSocket": true in the agent's host policy \(\/etc\/waffle\/agent\.json\)/);
  }
  assert.equal(problems.length, 7, problems.map(formatProblem).join('\n'));
  assert.match(one(problems, /"\/run"/, 'run').message, /\("\/run\/docker\.sock"\)/, 'names the socket a directory holds');

  // Allowing the socket leaves the other rules: outside the checkout a bind still needs a root, and
  // `/` holds the checkout's .git.
  assert.deepEqual(checkHostPolicy(g, { ...policy, dockerSocket: true }, dir).map((p) => p.service).sort(), ['custom', 'linked', 'named', 'root', 'run', 'sock']);
  const withRoot = checkHostPolicy(g, { ...policy, dockerSocket: true, bindRoots: ['/'] }, dir);
  assert.deepEqual(withRoot.map((p) => p.service), ['root']);
  assert.match(withRoot[0]!.message, /checkout's \.git/);
});

test("policy: the checkout's .git is never mounted, nor the checkout root holding it", async () => {
  const dir = repoWith({
    git: `{ image: 'waffle-test/app:1', volumes: [{ bind: './.git', target: '/g' }] }`,
    whole: `{ image: 'waffle-test/app:1', volumes: [{ bind: '.', target: '/repo' }] }`,
    sub: `{ image: 'waffle-test/app:1', volumes: [{ bind: './services', target: '/s' }] }`,
  });
  const problems = checkHostPolicy(await load(dir), DEFAULT_HOST_POLICY, dir);
  assert.equal(problems.length, 2, problems.map(formatProblem).join('\n'));
  for (const service of ['git', 'whole']) one(problems.filter((p) => p.service === service), /\.git.*holds how the agent fetches/, service);
});

test('policy: fixed host ports outside the allowed ranges are refused; random host ports are always allowed', async () => {
  const dir = repoWith({
    web: `{ image: 'waffle-test/app:1', port: 80, ports: ['80:80', '443:443/tcp', '8080:8080'] }`,
    ssh: `{ image: 'waffle-test/app:1', ports: ['0.0.0.0:22:2222', '53:53/udp'] }`,
    rnd: `{ image: 'waffle-test/app:1', ports: ['80', '9000-9002:9000-9002'] }`,
  });
  const g = await load(dir);
  const problems = checkHostPolicy(g, DEFAULT_HOST_POLICY, dir);
  assert.deepEqual(
    problems.map((p) => `${p.service} ${p.where} ${/host port (\S+)/.exec(p.message)![1]}`),
    ['ssh ports 22/tcp', 'ssh ports 53/udp', 'web ports 80/tcp', 'web ports 443/tcp'],
  );
  const p80 = one(problems, /host port 80\/tcp/, 'web');
  assert.match(p80.message, /outside the host ports services may publish: 1024-65535/);
  assert.match(p80.fix!, /publish a host port in 1024-65535, or add 80 to hostPorts/);

  const web = parseHostPolicy({ hostPorts: [80, '443', [8000, 8999]] }, '/etc/waffle/agent.json');
  assert.deepEqual(
    checkHostPolicy(g, web, dir).map((p) => `${p.service} ${/host port (\S+)/.exec(p.message)![1]}`),
    ['rnd 9000/tcp', 'rnd 9001/tcp', 'rnd 9002/tcp', 'ssh 22/tcp', 'ssh 53/udp'],
  );
});

test('policy: parseHostPolicy fills defaults and names the file, the key and the fix for every mistake', () => {
  const file = '/etc/waffle/agent.json';
  assert.deepEqual(parseHostPolicy({}, file), { bindRoots: [], dockerSocket: false, hostPorts: [[1024, 65535]], source: file });
  assert.deepEqual(parseHostPolicy({ bindRoots: ['/srv/data/', '/srv/x/../y'], dockerSocket: true, hostPorts: ['8000-8010', 443], dockerSockets: ['/run/user/1000/docker.sock'] }, file), {
    bindRoots: ['/srv/data', '/srv/y'],
    dockerSocket: true,
    hostPorts: [[8000, 8010], [443, 443]],
    dockerSockets: ['/run/user/1000/docker.sock'],
    source: file,
  });
  assert.deepEqual(parseHostPolicy({ hostPorts: [] }, file).hostPorts, [], 'no fixed host ports at all');

  let err: unknown;
  try {
    parseHostPolicy({ bindRoots: ['relative/dir', 5], dockerSocket: 'yes', hostPorts: ['9000-8000', 70000, 'http'], bindroot: [] }, file);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ProblemsError, String(err));
  const ps = err.problems;
  assert.deepEqual(ps.map((p) => p.where), ['bindroot', 'bindRoots[0]', 'bindRoots[1]', 'dockerSocket', 'hostPorts[0]', 'hostPorts[1]', 'hostPorts[2]']);
  for (const p of ps) {
    assert.equal(p.file, file);
    assert.ok(p.fix, JSON.stringify(p));
  }
  assert.match(err.message, /\/etc\/waffle\/agent\.json: bindRoots\[0\]: "relative\/dir" is not an absolute path/);
  assert.throws(() => parseHostPolicy([1], file), (e: Error) => e instanceof ProblemsError && /agent\.json: the host policy must be an object/.test(e.message));
});
