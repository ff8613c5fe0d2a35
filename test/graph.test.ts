import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { buildGraph } from '../runtime/graph/graph.ts';
import { suggest } from '../runtime/graph/suggest.ts';
import { checkImage, parseDuration, parseMemory, parsePort } from '../runtime/graph/parse.ts';
import { ProblemsError, formatProblem } from '../runtime/problems.ts';
import type { LoadedRepo, LoadedService, Problem, ServiceData, ServiceRefData, ServiceUrlData } from '../runtime/model.ts';

const ROOT = '/srv/repo';

function svc(name: string, data: ServiceData, file = `services/${name}.ts`): LoadedService {
  return { name, file, definedAt: `${file}:3:16`, data };
}
function repo(services: LoadedService[], config: Record<string, unknown> = { project: 'demo' }): LoadedRepo {
  return { root: ROOT, configFile: 'waffle.config.ts', config, services, inputs: [] };
}
const ref = (service: string | null): ServiceRefData => ({ $ref: 'service', service, definedAt: service ? `services/${service}.ts:3:16` : 'lib/x.ts:1:1' });
const url = (service: string | null, p = '', extra: Partial<ServiceUrlData> = {}): ServiceUrlData => ({
  $ref: 'service-url',
  service,
  path: p,
  scheme: 'http',
  ...extra,
});

function problemsOf(r: LoadedRepo): Problem[] {
  try {
    buildGraph(r);
  } catch (e) {
    assert.ok(e instanceof ProblemsError, `expected ProblemsError, got ${e}`);
    return e.problems;
  }
  assert.fail('expected buildGraph to throw');
}

/** The single problem whose message matches; asserts file, service and a fix are present. */
function one(problems: Problem[], re: RegExp, file: string, service?: string): Problem {
  const hits = problems.filter((p) => re.test(p.message));
  assert.equal(hits.length, 1, `expected one problem matching ${re}, got:\n${problems.map(formatProblem).join('\n')}`);
  const p = hits[0];
  assert.equal(p.file, file);
  assert.equal(p.service, service);
  assert.ok(p.fix && p.fix.length > 5, `problem has a fix: ${formatProblem(p)}`);
  const text = formatProblem(p);
  assert.ok(text.includes(file), text);
  if (service) assert.ok(text.includes(`service "${service}"`), text);
  assert.ok(text.includes('fix: '), text);
  return p;
}

const base = () => ({ image: 'waffle-test/app:1' });

// ───────────── a valid project ─────────────

function validRepo(): LoadedRepo {
  return repo(
    [
      svc('web', { image: 'nginx:1.27', ports: [80, '127.0.0.1:8443:443'], dependsOn: [ref('api')], connects: [ref('cache')] }),
      svc('api', {
        image: 'ghcr.io/acme/api:1.4.2',
        port: 8080,
        command: 'node server.js --port 8080',
        ports: ['9000-9001:9000-9001/udp', { container: 8080, host: 8080, hostIp: '127.0.0.1' }],
        volumes: [
          { name: 'uploads', target: '/data/uploads/' },
          { bind: './config', target: '/etc/api', readOnly: true },
          { bind: '/var/log/api', target: '/logs' },
        ],
        env: { ZED: 1, DEBUG: false, DB_URL: url('db', '/app', { scheme: 'postgres' }), CACHE: url('cache', '', { port: 6380 }), NAME: 'api' },
        healthcheck: { http: '/health?deep=1', interval: '2s', retries: 5 },
        restart: { policy: 'on-failure', maxRetries: 4 },
        resources: { memory: '256m', cpus: 0.5 },
        dependsOn: [{ service: ref('db'), condition: 'healthy' }, ref('cache')],
        labels: { team: 'core' },
        user: '1000:1000',
        workdir: '/app',
        stopGracePeriod: '1500ms',
      }),
      svc('db', { image: 'postgres@sha256:' + 'a'.repeat(64), port: 5432, healthcheck: { tcp: 5432 }, volumes: [{ name: 'pgdata', target: '/var/lib/postgresql/data' }] }),
      svc('cache', { image: 'localhost:5000/cache', port: 6379, healthcheck: { command: ['redis-cli', 'ping'], timeout: 500 } }),
      svc('worker', { image: 'waffle-test/app:2', entrypoint: ['/bin/worker'], command: ['run'], connects: [ref('api')], volumes: [{ name: 'uploads', target: '/uploads', readOnly: true }] }),
    ],
    {
      project: 'demo',
      docker: { host: 'unix:///var/run/docker.sock' },
      parallelism: 2,
      defaults: { restart: 'always', resources: { memory: '1g' }, stopGracePeriod: '20s', healthcheck: { timeout: '4s' } },
    },
  );
}

test('valid repo: full normalised spec for api', () => {
  const g = buildGraph(validRepo());
  assert.deepEqual(g.services.api, {
    name: 'api',
    file: 'services/api.ts',
    definedAt: 'services/api.ts:3:16',
    image: 'ghcr.io/acme/api:1.4.2',
    command: ['/bin/sh', '-c', 'node server.js --port 8080'],
    env: {
      CACHE: 'http://cache:6380',
      DB_URL: 'postgres://db:5432/app',
      DEBUG: 'false',
      NAME: 'api',
      ZED: '1',
    },
    port: 8080,
    ports: [
      { container: 9000, host: 9000, hostIp: '0.0.0.0', protocol: 'udp' },
      { container: 9001, host: 9001, hostIp: '0.0.0.0', protocol: 'udp' },
      { container: 8080, host: 8080, hostIp: '127.0.0.1', protocol: 'tcp' },
    ],
    mounts: [
      { type: 'volume', name: 'uploads', source: 'demo_uploads', target: '/data/uploads', readOnly: false },
      { type: 'bind', source: path.join(ROOT, 'config'), target: '/etc/api', readOnly: true },
      { type: 'bind', source: '/var/log/api', target: '/logs', readOnly: false },
    ],
    healthcheck: {
      test: [
        'CMD-SHELL',
        "if command -v wget >/dev/null 2>&1; then wget -q -O /dev/null 'http://127.0.0.1:8080/health?deep=1'; " +
          "else curl -fsS -o /dev/null 'http://127.0.0.1:8080/health?deep=1'; fi",
      ],
      intervalNs: 2_000_000_000,
      timeoutNs: 4_000_000_000, // project default
      retries: 5,
      startPeriodNs: 0,
      describe: 'http /health?deep=1 :8080',
    },
    restart: { name: 'on-failure', maximumRetryCount: 4 },
    resources: { memory: 256 * 1024 * 1024, nanoCpus: 500_000_000 },
    dependsOn: [
      { service: 'db', condition: 'healthy' },
      { service: 'cache', condition: 'started' },
    ],
    links: ['cache', 'db', 'web', 'worker'],
    labels: { team: 'core' },
    user: '1000:1000',
    workdir: '/app',
    stopGraceSeconds: 2,
    pull: 'missing',
  });
  assert.deepEqual(Object.keys(g.services.api.env), ['CACHE', 'DB_URL', 'DEBUG', 'NAME', 'ZED']);
});

test('valid repo: graph-level order, links, volumes, defaults and healthcheck kinds', () => {
  const g = buildGraph(validRepo());
  assert.equal(g.project, 'demo');
  assert.equal(g.root, ROOT);
  assert.equal(g.configFile, 'waffle.config.ts');
  assert.equal(g.dockerHost, 'unix:///var/run/docker.sock');
  assert.equal(g.parallelism, 2);
  assert.deepEqual(Object.keys(g.services), ['api', 'cache', 'db', 'web', 'worker']);
  // dependencies first, ties by name: cache and db are ready first, then api, then web; worker anytime (by name)
  assert.deepEqual(g.order, ['cache', 'db', 'api', 'web', 'worker']);
  assert.deepEqual(g.links, [
    ['api', 'cache'],
    ['api', 'db'],
    ['api', 'web'],
    ['api', 'worker'],
    ['cache', 'web'],
  ]);
  assert.deepEqual(g.volumes, ['pgdata', 'uploads']);
  assert.deepEqual(g.services.cache.links, ['api', 'web']);

  const db = g.services.db;
  assert.equal(db.image, 'postgres@sha256:' + 'a'.repeat(64));
  assert.deepEqual(db.healthcheck?.test, ['CMD-SHELL', 'nc -z 127.0.0.1 5432 2>/dev/null || nc -w 2 127.0.0.1 5432 </dev/null >/dev/null 2>&1']);
  assert.equal(db.healthcheck?.describe, 'tcp :5432');
  assert.equal(db.healthcheck?.intervalNs, 5e9);
  assert.equal(db.healthcheck?.timeoutNs, 4e9);
  assert.equal(db.healthcheck?.retries, 3);
  // project defaults
  assert.deepEqual(db.restart, { name: 'always', maximumRetryCount: 0 });
  assert.deepEqual(db.resources, { memory: 1024 ** 3, nanoCpus: 0 });
  assert.equal(db.stopGraceSeconds, 20);
  assert.deepEqual(db.mounts, [{ type: 'volume', name: 'pgdata', source: 'demo_pgdata', target: '/var/lib/postgresql/data', readOnly: false }]);

  const cache = g.services.cache;
  assert.deepEqual(cache.healthcheck?.test, ['CMD', 'redis-cli', 'ping']);
  assert.equal(cache.healthcheck?.timeoutNs, 500_000_000);
  assert.equal(cache.healthcheck?.describe, 'command redis-cli ping');

  const web = g.services.web;
  assert.deepEqual(web.ports, [
    { container: 80, host: 80, hostIp: '0.0.0.0', protocol: 'tcp' },
    { container: 443, host: 8443, hostIp: '127.0.0.1', protocol: 'tcp' },
  ]);
  assert.equal(web.healthcheck, undefined);
  assert.equal('command' in web, false);

  const worker = g.services.worker;
  assert.deepEqual(worker.entrypoint, ['/bin/worker']);
  assert.deepEqual(worker.command, ['run']);
});

test('built-in defaults without project defaults', () => {
  const g = buildGraph(repo([svc('a', { image: 'busybox', healthcheck: { command: 'true' } })]));
  const a = g.services.a;
  assert.deepEqual(a.restart, { name: 'unless-stopped', maximumRetryCount: 0 });
  assert.deepEqual(a.resources, { memory: 0, nanoCpus: 0 });
  assert.equal(a.stopGraceSeconds, 10);
  assert.deepEqual(a.healthcheck, {
    test: ['CMD-SHELL', 'true'],
    intervalNs: 5e9,
    timeoutNs: 3e9,
    retries: 3,
    startPeriodNs: 0,
    describe: 'command true',
  });
  assert.equal(g.parallelism, 4);
  assert.equal(g.dockerHost, undefined);
  assert.deepEqual(g.links, []);
  assert.deepEqual(g.order, ['a']);
});

// ───────────── problems ─────────────

test('config problems: missing project, unknown key with suggestion, parallelism, docker host, defaults', () => {
  const ps = problemsOf(
    repo([svc('a', base())], {
      paralelism: 2,
      parallelism: 0,
      docker: { host: 'http://x' },
      defaults: { restart: 'sometimes', resources: { memory: '1m' }, healthcheck: { retries: 0 } },
    }),
  );
  const f = 'waffle.config.ts';
  one(ps, /project name is missing/, f);
  const typo = one(ps, /unknown key `paralelism`/, f);
  assert.match(typo.message, /did you mean `parallelism`\?/);
  assert.equal(typo.where, 'paralelism');
  assert.equal(one(ps, /parallelism 0 must be a whole number/, f).where, 'parallelism');
  one(ps, /must start with unix:\/\/, tcp:\/\/ or ssh:\/\//, f);
  assert.equal(one(ps, /restart policy "sometimes"/, f).where, 'defaults.restart');
  assert.equal(one(ps, /below the 6 MiB/, f).where, 'defaults.resources.memory');
  assert.equal(one(ps, /retries 0/, f).where, 'defaults.healthcheck.retries');
  assert.equal(ps.length, 7);
});

test('config: project name must be DNS-safe and at most 40 characters', () => {
  for (const bad of ['My_App', '1app', 'a'.repeat(41)]) {
    const ps = problemsOf(repo([svc('a', base())], { project: bad }));
    one(ps, /project name .* is not DNS-safe/, 'waffle.config.ts');
  }
  assert.equal(buildGraph(repo([svc('a', base())], { project: 'a'.repeat(40) })).project, 'a'.repeat(40));
});

test('service names: DNS-safe and unique (both files named)', () => {
  const ps = problemsOf(
    repo([svc('Api_1', base()), svc('web-', base()), svc('api', base(), 'services/api.ts'), svc('api', base(), 'services/other.ts')]),
  );
  one(ps, /"Api_1" is not DNS-safe/, 'services/Api_1.ts', 'Api_1');
  one(ps, /"web-" is not DNS-safe/, 'services/web-.ts', 'web-');
  const dup = one(ps, /used twice/, 'services/other.ts', 'api');
  assert.match(dup.message, /services\/api\.ts/);
  assert.match(dup.message, /services\/other\.ts/);
});

test('unknown service keys suggest the closest key', () => {
  const ps = problemsOf(repo([svc('a', { imgae: 'x', environment: {}, depends_on: [], zzzzzz: 1 })]));
  const f = 'services/a.ts';
  assert.match(one(ps, /unknown key `imgae`/, f, 'a').message, /did you mean `image`\?/);
  assert.match(one(ps, /unknown key `environment`/, f, 'a').message, /did you mean `env`\?/);
  assert.match(one(ps, /unknown key `depends_on`/, f, 'a').message, /did you mean `dependsOn`\?/);
  assert.doesNotMatch(one(ps, /unknown key `zzzzzz`/, f, 'a').message, /did you mean/);
  one(ps, /image is required/, f, 'a');
});

test('image references follow Docker grammar', () => {
  const good = ['nginx', 'nginx:1.27', 'library/nginx:latest', 'ghcr.io/acme/api:1.4.2', 'localhost:5000/a/b_c__d-e', 'registry.example.com:443/x@sha256:' + 'f'.repeat(64), 'a.b:tag_1.0-rc'];
  for (const g of good) assert.ok(checkImage(g).ok, g);
  const bad: Array<[string, RegExp]> = [
    ['Nginx:1', /must be lowercase/],
    ['nginx:-bad', /invalid tag/],
    ['nginx:' + 'x'.repeat(129), /invalid tag/],
    ['nginx@sha256:abc', /invalid digest/],
    ['ngi nx', /whitespace/],
    ['-nginx', /invalid repository/],
    ['acme//api', /invalid repository/],
  ];
  for (const [b, re] of bad) {
    const r = checkImage(b);
    assert.ok(!r.ok && re.test(r.message), `${b}: ${JSON.stringify(r)}`);
  }
  const ps = problemsOf(repo([svc('a', { image: 'Acme/API:1' }), svc('b', { image: 42 })]));
  assert.equal(one(ps, /must be lowercase/, 'services/a.ts', 'a').where, 'image');
  one(ps, /image must be a string/, 'services/b.ts', 'b');
});

test('command, env, port, labels, user and workdir problems', () => {
  const ps = problemsOf(
    repo([
      svc('a', {
        ...base(),
        command: [1, 2],
        entrypoint: '',
        port: 70000,
        env: { 'BAD-NAME': 'x', OBJ: { a: 1 }, NUL: null, SVC: ref('a') },
        labels: { 'dev.wafflemaker.project': 'x', n: 5 },
        user: '',
        workdir: 'relative',
      }),
    ]),
  );
  const f = 'services/a.ts';
  assert.equal(one(ps, /command must be a string or a non-empty list/, f, 'a').where, 'command');
  assert.equal(one(ps, /entrypoint is empty/, f, 'a').where, 'entrypoint');
  assert.equal(one(ps, /port 70000/, f, 'a').where, 'port');
  assert.equal(one(ps, /not a valid environment variable name/, f, 'a').where, 'env.BAD-NAME');
  assert.equal(one(ps, /value an object must be/, f, 'a').where, 'env.OBJ');
  assert.equal(one(ps, /value null must be/, f, 'a').where, 'env.NUL');
  assert.match(one(ps, /is a service, not a string/, f, 'a').fix!, /a\.url\(\)/);
  assert.equal(one(ps, /reserved prefix/, f, 'a').where, 'labels.dev.wafflemaker.project');
  assert.equal(one(ps, /label value 5 must be a string/, f, 'a').where, 'labels.n');
  assert.equal(one(ps, /user "" must be/, f, 'a').where, 'user');
  assert.equal(one(ps, /workdir "relative" must be an absolute path/, f, 'a').where, 'workdir');
  assert.equal(ps.length, 11);
});

test('ports: parse errors, ranges, and host port conflicts within and across services', () => {
  const ps = problemsOf(
    repo([
      svc('web', { ...base(), ports: ['8080:80', '8080:81', '53:53/udp', 'x:80', '9000-9002:9000-9001', '80/sctp', { container: 80, hostIp: 'nope' }] }),
      svc('api', { ...base(), ports: [{ container: 8080, host: 8080, hostIp: '127.0.0.1' }, '53:5353/udp', '127.0.0.1:5353:53/udp', '10.0.0.1:443:443'] }),
      svc('other', { ...base(), ports: ['127.0.0.2:5353:53/udp', '10.0.0.2:443:443'] }),
    ]),
  );
  const within = one(ps, /bound twice by service "web"/, 'services/web.ts', 'web');
  assert.equal(within.where, 'ports[1]');
  const across = one(ps, /host port 8080\/tcp on 127\.0\.0\.1 is also bound/, 'services/api.ts', 'api');
  assert.match(across.message, /service "web" \(services\/web\.ts, ports\[0\]\)/);
  assert.equal(across.where, 'ports[0]');
  const udp = one(ps, /host port 53\/udp/, 'services/api.ts', 'api');
  assert.equal(udp.where, 'ports[1]');
  assert.equal(one(ps, /host port "x"/, 'services/web.ts', 'web').where, 'ports[3]');
  one(ps, /differ in size/, 'services/web.ts', 'web');
  one(ps, /protocol "sctp"/, 'services/web.ts', 'web');
  one(ps, /hostIp "nope"/, 'services/web.ts', 'web');
  // different specific IPs don't conflict; 127.0.0.1:5353 vs 127.0.0.2:5353 fine; 10.0.0.1 vs 10.0.0.2 fine
  assert.equal(ps.length, 7);
});

test('parsePort forms', () => {
  const p = (v: unknown) => {
    const r = parsePort(v);
    assert.ok(r.ok, JSON.stringify(r));
    return r.value;
  };
  assert.deepEqual(p('80'), [{ container: 80, hostIp: '0.0.0.0', protocol: 'tcp' }]);
  assert.deepEqual(p('127.0.0.1::80'), [{ container: 80, hostIp: '127.0.0.1', protocol: 'tcp' }]);
  assert.deepEqual(p('[::1]:8080:80'), [{ container: 80, host: 8080, hostIp: '::1', protocol: 'tcp' }]);
  assert.deepEqual(p({ container: 53, protocol: 'udp' }), [{ container: 53, hostIp: '0.0.0.0', protocol: 'udp' }]);
  assert.ok(!parsePort(0).ok);
  assert.ok(!parsePort('9002-9000:1-3').ok);
  assert.ok(!parsePort('1:2:3:4').ok);
});

test('volumes: names, bind resolution, absolute targets, duplicates', () => {
  const ps = problemsOf(
    repo([
      svc('a', {
        ...base(),
        volumes: [
          { name: '_bad', target: '/x' },
          { bind: './ok', target: 'relative' },
          { name: 'v', bind: './b', target: '/y' },
          { name: 'data', target: '/data/' },
          { bind: '/abs', target: '/data' },
          'data:/z',
        ],
      }),
    ]),
  );
  const f = 'services/a.ts';
  assert.equal(one(ps, /volume name "_bad" is not valid/, f, 'a').where, 'volumes[0].name');
  assert.equal(one(ps, /target "relative" must be an absolute path/, f, 'a').where, 'volumes[1].target');
  assert.equal(one(ps, /both `name` and `bind`/, f, 'a').where, 'volumes[2]');
  assert.equal(one(ps, /"\/data" is already mounted by volumes\[3\]/, f, 'a').where, 'volumes[4].target');
  assert.equal(one(ps, /a volume must be an object/, f, 'a').where, 'volumes[5]');
  assert.equal(ps.length, 5);
});

test('healthcheck problems', () => {
  const ps = problemsOf(
    repo([
      svc('none', { ...base(), healthcheck: { interval: '5s' } }),
      svc('two', { ...base(), healthcheck: { http: '/h', tcp: 80, port: 80 } }),
      svc('noport', { ...base(), healthcheck: { http: '/health' } }),
      svc('timing', { ...base(), port: 80, healthcheck: { http: 'health', interval: '5 minutes', retries: 1.5, timeout: 0, startPeriod: -1 } }),
      svc('cmd', { ...base(), healthcheck: { command: [], tcpp: 1 } }),
    ]),
  );
  one(ps, /needs one of `http`, `tcp` or `command`/, 'services/none.ts', 'none');
  one(ps, /has `http` and `tcp`; only one/, 'services/two.ts', 'two');
  const np = one(ps, /http healthcheck needs a port/, 'services/noport.ts', 'noport');
  assert.equal(np.where, 'healthcheck.port');
  assert.equal(one(ps, /must be a path starting with \//, 'services/timing.ts', 'timing').where, 'healthcheck.http');
  assert.equal(one(ps, /"5 minutes" is not a duration/, 'services/timing.ts', 'timing').where, 'healthcheck.interval');
  one(ps, /retries 1\.5/, 'services/timing.ts', 'timing');
  one(ps, /timeout must be at least 1ms/, 'services/timing.ts', 'timing');
  one(ps, /non-negative number of milliseconds, got -1/, 'services/timing.ts', 'timing');
  one(ps, /command must be a non-empty/, 'services/cmd.ts', 'cmd');
  assert.match(one(ps, /unknown key `tcpp`/, 'services/cmd.ts', 'cmd').message, /did you mean `tcp`/);
  assert.equal(ps.length, 10);
});

test('restart, resources and stopGracePeriod problems', () => {
  const ps = problemsOf(
    repo([
      svc('a', { ...base(), restart: 'unless_stopped', resources: { memory: '5m', cpus: 0, mem: 1 }, stopGracePeriod: '10' }),
      svc('b', { ...base(), restart: { policy: 'always' }, resources: { memory: '12 parsecs' } }),
      svc('c', { ...base(), restart: { policy: 'on-failure', maxRetries: -1 } }),
    ]),
  );
  assert.match(one(ps, /restart policy "unless_stopped"/, 'services/a.ts', 'a').message, /did you mean 'unless-stopped'/);
  assert.equal(one(ps, /below the 6 MiB/, 'services/a.ts', 'a').where, 'resources.memory');
  assert.equal(one(ps, /cpus 0 must be a number greater than 0/, 'services/a.ts', 'a').where, 'resources.cpus');
  assert.match(one(ps, /unknown key `mem`/, 'services/a.ts', 'a').message, /did you mean `memory`/);
  assert.equal(one(ps, /"10" is not a duration/, 'services/a.ts', 'a').where, 'stopGracePeriod');
  one(ps, /restart object must be/, 'services/b.ts', 'b');
  one(ps, /"12 parsecs" is not a memory size/, 'services/b.ts', 'b');
  assert.equal(one(ps, /maxRetries -1/, 'services/c.ts', 'c').where, 'restart.maxRetries');
  assert.equal(ps.length, 8);
});

test('references: not part of the project, strings, self, healthy without healthcheck, url without port', () => {
  const ps = problemsOf(
    repo([
      svc('api', {
        ...base(),
        dependsOn: [ref(null), ref('ghost'), 'db', ref('api'), { service: ref('db'), condition: 'healthy' }, { service: ref('db'), condition: 'ready' }],
        connects: [ref(null)],
        env: { A: url('db'), B: url('ghost'), C: url('db', '', { port: 5432 }) },
      }),
      svc('db', base()),
    ]),
  );
  const f = 'services/api.ts';
  const np = ps.filter((p) => /not part of the project/.test(p.message));
  assert.deepEqual(np.map((p) => p.where), ['dependsOn[0]', 'dependsOn[1]', 'connects[0]', 'env.B']);
  for (const p of np) {
    assert.equal(p.file, f);
    assert.equal(p.service, 'api');
    assert.match(p.fix!, /add its file to the `services` globs in waffle\.config\.ts \(now 'services\/\*\.ts'\)/);
    assert.match(p.fix!, /default export/);
  }
  assert.match(np[0].message, /defined at lib\/x\.ts:1:1/);
  assert.match(np[1].message, /"ghost"/);
  assert.match(one(ps, /"db" is a string/, f, 'api').fix!, /import db from '\.\/db'/);
  assert.equal(one(ps, /depends on itself/, f, 'api').where, 'dependsOn[3]');
  const healthy = one(ps, /condition 'healthy' needs a healthcheck on "db"/, f, 'api');
  assert.match(healthy.message, /services\/db\.ts/);
  assert.equal(healthy.where, 'dependsOn[4].condition');
  assert.equal(one(ps, /condition "ready"/, f, 'api').where, 'dependsOn[5].condition');
  assert.equal(one(ps, /"db" is listed twice in dependsOn/, f, 'api').where, 'dependsOn[5]');
  const noPort = one(ps, /url of "db" needs a port/, f, 'api');
  assert.equal(noPort.where, 'env.A');
  assert.match(noPort.fix!, /set `port` in services\/db\.ts/);
  assert.equal(ps.length, 10);
});

test('dependency cycles are reported once with the cycle and files', () => {
  const ps = problemsOf(
    repo([
      svc('c', { ...base(), dependsOn: [ref('a')] }),
      svc('a', { ...base(), dependsOn: [ref('b')] }),
      svc('b', { ...base(), dependsOn: [ref('c'), ref('d')] }),
      svc('d', base()),
      svc('x', { ...base(), dependsOn: [ref('y')] }),
      svc('y', { ...base(), dependsOn: [ref('x')] }),
    ]),
  );
  assert.equal(ps.length, 2);
  const abc = one(ps, /a → b → c → a/, 'services/a.ts', 'a');
  assert.equal(abc.where, 'dependsOn[0]');
  assert.match(abc.message, /a in services\/a\.ts, b in services\/b\.ts, c in services\/c\.ts/);
  one(ps, /dependency cycle: x → y → x/, 'services/x.ts', 'x');
});

test('many problems from many files come back together in one error', () => {
  let err: unknown;
  try {
    buildGraph(
      repo(
        [
          svc('api', { image: 'nginx:1', ports: [8080], imgae: 'x' }),
          svc('web', { image: 'BAD', ports: ['8080:80'] }),
          svc('db', { image: 'postgres:16', dependsOn: [ref(null)] }),
        ],
        { project: 'Demo' },
      ),
    );
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ProblemsError);
  const files = new Set(err.problems.map((p) => p.file));
  assert.deepEqual([...files].sort(), ['services/api.ts', 'services/db.ts', 'services/web.ts', 'waffle.config.ts']);
  assert.equal(err.problems.length, 5);
  assert.match(err.message, /^5 problems found:/);
  // No file to read under ROOT: the line is the defineService call's (definedAt).
  assert.match(err.message, /services\/web\.ts:3:16: service "web": ports\[0\]: host port 8080\/tcp on 0\.0\.0\.0 is also bound by service "api" \(services\/api\.ts, ports\[0\]\)/);
  assert.match(err.message, /did you mean `image`/);
});

test('parsers: durations, memory', () => {
  assert.deepEqual(parseDuration('500ms'), { ok: true, value: 5e8 });
  assert.deepEqual(parseDuration('2m'), { ok: true, value: 120e9 });
  assert.deepEqual(parseDuration('1h'), { ok: true, value: 3600e9 });
  assert.deepEqual(parseDuration(250), { ok: true, value: 2.5e8 });
  assert.ok(!parseDuration('5d').ok);
  assert.deepEqual(parseMemory('512k'), { ok: false, message: 'memory limit "512k" is below the 6 MiB Docker requires', fix: "use at least '6m' (or leave the limit out)" });
  assert.deepEqual(parseMemory('64mb'), { ok: true, value: 64 * 1024 ** 2 });
  assert.deepEqual(parseMemory('1G'), { ok: true, value: 1024 ** 3 });
  assert.deepEqual(parseMemory(8 * 1024 * 1024), { ok: true, value: 8 * 1024 * 1024 });
  assert.ok(!parseMemory(1.5).ok);
});

test("pull: a service's policy, else the project default, else missing", () => {
  const g = buildGraph(repo([svc('a', base()), svc('b', { ...base(), pull: 'missing' }), svc('c', { ...base(), pull: 'always' })], { project: 'demo', pull: 'always' }));
  assert.equal(g.services.a.pull, 'always', 'the project default applies');
  assert.equal(g.services.b.pull, 'missing', "the service's own policy wins");
  assert.equal(g.services.c.pull, 'always');
  assert.equal(buildGraph(repo([svc('a', base())])).services.a.pull, 'missing', 'built-in default');
});

test('pull: bad values name the file, the service and both policies', () => {
  const ps = problemsOf(repo([svc('a', { ...base(), pull: 'alwyas' }), svc('b', { ...base(), pull: true }), svc('c', { ...base(), pull_policy: 'always' })], { project: 'demo', pull: 'never' }));
  const a = one(ps, /pull "alwyas" must be 'missing' or 'always'/, 'services/a.ts', 'a');
  assert.equal(a.where, 'pull');
  assert.match(a.message, /did you mean 'always'\?/);
  assert.match(a.fix!, /re-pushed tag redeploys/);
  one(ps, /pull true must be/, 'services/b.ts', 'b');
  assert.match(one(ps, /unknown key `pull_policy`/, 'services/c.ts', 'c').message, /did you mean `pull`\?/);
  assert.equal(one(ps, /pull "never" must be/, 'waffle.config.ts').where, 'pull');
  assert.equal(ps.length, 4);
});

test('evaluation: env names sorted without duplicates, memoryMb kept; absent when not configured', () => {
  const g = buildGraph(repo([svc('a', base())], { project: 'demo', evaluation: { env: ['REGION', 'DEPLOY_ENV', 'REGION'], memoryMb: 256 } }));
  assert.deepEqual(g.evaluation, { env: ['DEPLOY_ENV', 'REGION'], memoryMb: 256 });
  assert.deepEqual(buildGraph(repo([svc('a', base())], { project: 'demo', evaluation: {} })).evaluation, { env: [] });
  assert.equal(buildGraph(repo([svc('a', base())])).evaluation, undefined);
});

test('evaluation: invalid names, memory out of bounds, credentials and unknown keys are problems of the config file', () => {
  const ps = problemsOf(
    repo([svc('a', base())], {
      project: 'demo',
      vault: { address: 'http://127.0.0.1:8200', auth: { token: { env: 'VAULT_TOKEN' } } },
      evaluation: { env: ['OK_NAME', '1BAD', 'A=b', 7, 'VAULT_TOKEN', 'WAFFLE_AGE_IDENTITY'], memoryMb: 0.5, memory: 1 },
    }),
  );
  const f = 'waffle.config.ts';
  assert.equal(one(ps, /"1BAD" is not a valid environment variable name/, f).where, 'evaluation.env[1]');
  assert.match(one(ps, /"A=b" is not a valid/, f).fix!, /list only the name: 'A'/);
  assert.equal(one(ps, /^7 is not a valid/, f).where, 'evaluation.env[3]');
  assert.match(one(ps, /VAULT_TOKEN holds the Vault token/, f).fix!, /remove 'VAULT_TOKEN' from evaluation\.env/);
  one(ps, /WAFFLE_AGE_IDENTITY holds the age identity/, f);
  assert.equal(one(ps, /memoryMb 0\.5 must be a whole number of MiB from 32 to 16384/, f).where, 'evaluation.memoryMb');
  assert.match(one(ps, /unknown key `memory` in evaluation/, f).message, /did you mean `memoryMb`/);
  assert.equal(ps.length, 7);
  for (const bad of [{ env: 'HOME' }, 'HOME', { memoryMb: 31 }, { memoryMb: 16385 }, { memoryMb: 268435456 }]) {
    const p = problemsOf(repo([svc('a', base())], { project: 'demo', evaluation: bad }));
    assert.equal(p.length, 1, JSON.stringify(bad));
    assert.equal(p[0].file, f);
    assert.match(p[0].where!, /^evaluation/);
  }
});

test('suggest', () => {
  assert.equal(suggest('imgae', ['image', 'name']), 'image');
  assert.equal(suggest('helthcheck', ['healthcheck', 'env']), 'healthcheck');
  assert.equal(suggest('DEPENDS_ON', ['dependsOn']), 'dependsOn');
  assert.equal(suggest('xyz', ['image', 'env']), undefined);
  assert.equal(suggest('mem', ['memory', 'cpus']), 'memory');
});
