/**
 * graph: LoadedRepo → ServiceGraph. Validates every field, fills every default, resolves references to
 * names, and orders services by dependency. Pure (only `path.resolve` for bind mounts). Collects every
 * problem of one run and throws them together as a ProblemsError.
 */
import path from 'node:path';
import { names, RESERVED_LABEL_PREFIX } from '../labels.ts';
import type {
  DependencySpec,
  HealthcheckSpec,
  LoadedRepo,
  LoadedService,
  Mount,
  PortBinding,
  Problem,
  ResourcesSpec,
  RestartSpec,
  ServiceGraph,
  ServiceSpec,
} from '../model.ts';
import { ProblemsError } from '../problems.ts';
import { checkImage, hostIpsOverlap, isObject, parseDuration, parseMemory, parsePort, shQuote, show } from './parse.ts';
import { suggest } from './suggest.ts';
import type { SecretDecl } from '../secrets/provider.ts';
import { checkSecretDecls, checkSecretFiles, checkSecretRef, checkVaultSettings } from '../secrets/validate.ts';
import { checkPull, DEFAULT_PULL, type PullPolicy } from './validate/images.ts';
import { checkEvaluation, type EvaluationSpec } from './validate/evaluation.ts';

export const SERVICE_KEYS = [
  'name', 'image', 'command', 'entrypoint', 'env', 'port', 'ports', 'volumes', 'healthcheck', 'restart',
  'resources', 'dependsOn', 'connects', 'labels', 'user', 'workdir', 'stopGracePeriod', 'files', 'pull',
];
export const CONFIG_KEYS = ['project', 'docker', 'defaults', 'services', 'parallelism', 'secrets', 'vault', 'pull', 'evaluation'];
const DEFAULTS_KEYS = ['restart', 'resources', 'stopGracePeriod', 'healthcheck'];
const DOCKER_KEYS = ['host'];
const TIMING_KEYS = ['interval', 'timeout', 'retries', 'startPeriod'];
const HEALTH_KEYS = ['http', 'port', 'tcp', 'command', ...TIMING_KEYS];
const RESOURCES_KEYS = ['memory', 'cpus'];
const VOLUME_KEYS = ['name', 'bind', 'target', 'readOnly'];
const DEPENDENCY_KEYS = ['service', 'condition'];
const RESTART_NAMES = ['no', 'always', 'unless-stopped', 'on-failure'] as const;

/** Keys people bring from docker-compose, mapped to ours. */
const ALIASES: Record<string, string> = {
  environment: 'env',
  depends_on: 'dependsOn',
  working_dir: 'workdir',
  links: 'connects',
  networks: 'connects',
  stop_grace_period: 'stopGracePeriod',
  deploy: 'resources',
  mem_limit: 'resources',
  container_name: 'name',
  volume: 'volumes',
  pull_policy: 'pull',
};

const SERVICE_NAME_RE = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const PROJECT_NAME_RE = /^[a-z](?:[a-z0-9-]{0,39})$/;
const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SCHEME_RE = /^[a-z][a-z0-9+.-]*$/;

const DEFAULT_TIMING = { intervalNs: 5e9, timeoutNs: 3e9, retries: 3, startPeriodNs: 0 };
const DEFAULT_STOP_GRACE_NS = 10e9;
const DEFAULT_PARALLELISM = 4;
const DEFAULT_SERVICE_GLOBS = ['services/*.ts'];

type Report = (where: string | undefined, message: string, fix?: string) => void;
type Timing = typeof DEFAULT_TIMING;

interface Defaults {
  restart: RestartSpec;
  memory?: number;
  nanoCpus?: number;
  stopGraceNs: number;
  timing: Timing;
}

const has = (o: Record<string, unknown>, k: string) => o[k] !== undefined;
const isPort = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;

function unknownKeys(obj: Record<string, unknown>, known: string[], prefix: string, report: Report, context: string) {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    const alias = prefix === '' ? ALIASES[key] : undefined;
    const guess = alias && known.includes(alias) ? alias : suggest(key, known);
    report(
      `${prefix}${key}`,
      `unknown key \`${key}\` in ${context}` + (guess ? `; did you mean \`${guess}\`?` : ''),
      guess ? `rename \`${key}\` to \`${guess}\`` : `remove it; known keys are ${known.map((k) => `\`${k}\``).join(', ')}`,
    );
  }
}

// ───────────── shared field parsers (used for service fields and project defaults) ─────────────

function parseRestart(v: unknown, where: string, report: Report): RestartSpec | undefined {
  const fix = "use 'no', 'always', 'unless-stopped', 'on-failure' or { policy: 'on-failure', maxRetries: 5 }";
  if (typeof v === 'string') {
    if ((RESTART_NAMES as readonly string[]).includes(v)) return { name: v as RestartSpec['name'], maximumRetryCount: 0 };
    const guess = suggest(v, [...RESTART_NAMES]);
    report(where, `restart policy ${show(v)} is not valid` + (guess ? `; did you mean '${guess}'?` : ''), fix);
    return undefined;
  }
  if (isObject(v)) {
    const bad = Object.keys(v).filter((k) => k !== 'policy' && k !== 'maxRetries');
    if (bad.length || v.policy !== 'on-failure') {
      report(where, `restart object must be { policy: 'on-failure', maxRetries }`, fix);
      return undefined;
    }
    const n = v.maxRetries ?? 0;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
      report(`${where}.maxRetries`, `maxRetries ${show(n)} must be a whole number ≥ 0`, 'for example maxRetries: 5');
      return undefined;
    }
    return { name: 'on-failure', maximumRetryCount: n };
  }
  report(where, `restart must be a string or an object, got ${show(v)}`, fix);
  return undefined;
}

function parseResources(v: unknown, where: string, report: Report): { memory?: number; nanoCpus?: number } {
  if (!isObject(v)) {
    report(where, `resources must be an object, got ${show(v)}`, "for example resources: { memory: '256m', cpus: 0.5 }");
    return {};
  }
  unknownKeys(v, RESOURCES_KEYS, `${where}.`, report, 'resources');
  const out: { memory?: number; nanoCpus?: number } = {};
  if (has(v, 'memory')) {
    const m = parseMemory(v.memory);
    if (m.ok) out.memory = m.value;
    else report(`${where}.memory`, m.message, m.fix);
  }
  if (has(v, 'cpus')) {
    if (typeof v.cpus !== 'number' || !Number.isFinite(v.cpus) || v.cpus <= 0) {
      report(`${where}.cpus`, `cpus ${show(v.cpus)} must be a number greater than 0`, 'for example cpus: 0.5 (half a core)');
    } else out.nanoCpus = Math.round(v.cpus * 1e9);
  }
  return out;
}

function durationField(v: unknown, where: string, report: Report): number | undefined {
  const d = parseDuration(v);
  if (d.ok) return d.value;
  report(where, d.message, d.fix);
  return undefined;
}

function parseTiming(obj: Record<string, unknown>, where: string, report: Report, base: Timing): Timing {
  const t = { ...base };
  const positive = (key: 'interval' | 'timeout', field: 'intervalNs' | 'timeoutNs') => {
    if (!has(obj, key)) return;
    const ns = durationField(obj[key], `${where}.${key}`, report);
    if (ns === undefined) return;
    if (ns < 1e6) report(`${where}.${key}`, `${key} must be at least 1ms`, `for example ${key}: '5s'`);
    else t[field] = ns;
  };
  positive('interval', 'intervalNs');
  positive('timeout', 'timeoutNs');
  if (has(obj, 'startPeriod')) {
    const ns = durationField(obj.startPeriod, `${where}.startPeriod`, report);
    if (ns !== undefined) t.startPeriodNs = ns;
  }
  if (has(obj, 'retries')) {
    const r = obj.retries;
    if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) {
      report(`${where}.retries`, `retries ${show(r)} must be a whole number ≥ 1`, 'for example retries: 3');
    } else t.retries = r;
  }
  return t;
}

// ───────────── config ─────────────

interface ConfigResult {
  project: string;
  dockerHost?: string;
  parallelism: number;
  defaults: Defaults;
  globs: string[];
  /** Declared secrets (valid ones); `secretsDeclared` tells "none declared" from "declared, but not this one". */
  secrets: Record<string, SecretDecl>;
  secretsDeclared: boolean;
  vault?: import('../model.ts').VaultSettingsSpec;
  /** The project's default pull policy. */
  pull: PullPolicy;
  evaluation?: EvaluationSpec;
}

function checkConfig(repo: LoadedRepo, problems: Problem[]): ConfigResult {
  const file = repo.configFile;
  const report: Report = (where, message, fix) => problems.push({ file, ...(where ? { where } : {}), message, ...(fix ? { fix } : {}) });
  const c = isObject(repo.config) ? repo.config : {};
  if (!isObject(repo.config)) report(undefined, 'the config is not an object', `export default defineConfig({ project: 'my-app' }) from ${file}`);
  unknownKeys(c, CONFIG_KEYS, '', report, 'the project config');

  let project = '';
  if (c.project === undefined) {
    report('project', 'the project name is missing', "add project: 'my-app' (lowercase letters, digits and -)");
  } else if (typeof c.project !== 'string' || !PROJECT_NAME_RE.test(c.project)) {
    report(
      'project',
      `project name ${show(c.project)} is not DNS-safe`,
      'use lowercase letters, digits and -, starting with a letter, at most 40 characters, e.g. ' +
        (typeof c.project === 'string' ? `'${c.project.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^[^a-z]+/, '').slice(0, 40) || 'my-app'}'` : "'my-app'"),
    );
  } else project = c.project;

  let dockerHost: string | undefined;
  if (has(c, 'docker')) {
    if (!isObject(c.docker)) report('docker', `docker must be an object, got ${show(c.docker)}`, "for example docker: { host: 'unix:///var/run/docker.sock' }");
    else {
      unknownKeys(c.docker, DOCKER_KEYS, 'docker.', report, 'docker');
      const h = c.docker.host;
      if (h !== undefined) {
        if (typeof h !== 'string' || !/^(unix|tcp|ssh):\/\/./.test(h)) {
          report('docker.host', `docker host ${show(h)} must start with unix://, tcp:// or ssh://`, "for example 'unix:///var/run/docker.sock' or 'tcp://10.0.0.5:2375'");
        } else dockerHost = h;
      }
    }
  }

  let parallelism = DEFAULT_PARALLELISM;
  if (has(c, 'parallelism')) {
    const p = c.parallelism;
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 1) report('parallelism', `parallelism ${show(p)} must be a whole number ≥ 1`, 'for example parallelism: 4');
    else parallelism = p;
  }

  let globs = DEFAULT_SERVICE_GLOBS;
  if (has(c, 'services')) {
    const s = c.services;
    if (!Array.isArray(s) || s.some((g) => typeof g !== 'string' || g.length === 0)) {
      report('services', 'services must be a list of glob patterns', "for example services: ['services/*.ts']");
    } else globs = s as string[];
  }

  const defaults: Defaults = { restart: { name: 'unless-stopped', maximumRetryCount: 0 }, stopGraceNs: DEFAULT_STOP_GRACE_NS, timing: { ...DEFAULT_TIMING } };
  if (has(c, 'defaults')) {
    const d = c.defaults;
    if (!isObject(d)) report('defaults', `defaults must be an object, got ${show(d)}`, "for example defaults: { restart: 'always' }");
    else {
      unknownKeys(d, DEFAULTS_KEYS, 'defaults.', report, 'defaults');
      if (has(d, 'restart')) {
        const r = parseRestart(d.restart, 'defaults.restart', report);
        if (r) defaults.restart = r;
      }
      if (has(d, 'resources')) Object.assign(defaults, parseResources(d.resources, 'defaults.resources', report));
      if (has(d, 'stopGracePeriod')) {
        const ns = durationField(d.stopGracePeriod, 'defaults.stopGracePeriod', report);
        if (ns !== undefined) defaults.stopGraceNs = ns;
      }
      if (has(d, 'healthcheck')) {
        const h = d.healthcheck;
        if (!isObject(h)) report('defaults.healthcheck', `defaults.healthcheck must be an object, got ${show(h)}`, "for example { interval: '10s', retries: 5 }");
        else {
          unknownKeys(h, TIMING_KEYS, 'defaults.healthcheck.', report, 'defaults.healthcheck (only timing can have a default)');
          defaults.timing = parseTiming(h, 'defaults.healthcheck', report, defaults.timing);
        }
      }
    }
  }
  const secrets = checkSecretDecls(c.secrets, report);
  const vault = checkVaultSettings(c.vault, report);
  const rawSecrets = isObject(c.secrets) ? (c.secrets as Record<string, unknown>) : {};
  const vaultUsers = Object.keys(rawSecrets).filter((n) => {
    const d = rawSecrets[n];
    return isObject(d) && d.provider === 'vault';
  });
  if (vaultUsers.length > 0 && c.vault === undefined) {
    report(
      'vault',
      `secret${vaultUsers.length > 1 ? 's' : ''} ${vaultUsers.map((n) => `"${n}"`).join(', ')} come${vaultUsers.length > 1 ? '' : 's'} from Vault, but no vault is configured`,
      "add vault: { address: 'https://vault.example.com:8200', auth: { token: { env: 'VAULT_TOKEN' } } } to defineConfig",
    );
  }
  const pull = checkPull(c.pull, 'pull', report, DEFAULT_PULL);
  const credentials: Record<string, string> = { WAFFLE_AGE_IDENTITY: 'the age identity that decrypts the embedded secrets' };
  if (vault?.auth.method === 'token') credentials[vault.auth.tokenEnv] = 'the Vault token (vault.auth.token.env)';
  if (vault?.auth.method === 'approle') credentials[vault.auth.secretIdEnv] = 'the Vault AppRole secret id (vault.auth.approle.secretIdEnv)';
  const evaluation = checkEvaluation(c.evaluation, report, credentials);
  return {
    project, dockerHost, parallelism, defaults, globs, secrets, secretsDeclared: c.secrets !== undefined,
    ...(vault ? { vault } : {}), pull, ...(evaluation ? { evaluation } : {}),
  };
}

// ───────────── graph ─────────────

interface Edge {
  to: string;
  where: string;
}

/** Validates and normalises the loaded repository into a ServiceGraph; throws ProblemsError with every problem. */
export function buildGraph(repo: LoadedRepo): ServiceGraph {
  const problems: Problem[] = [];
  const cfg = checkConfig(repo, problems);

  // First occurrence of each name wins; duplicates are reported with both files.
  const byName = new Map<string, LoadedService>();
  for (const svc of repo.services) {
    const first = byName.get(svc.name);
    if (first) {
      problems.push({
        file: svc.file,
        service: svc.name,
        where: 'name',
        message: `service name "${svc.name}" is used twice: in ${first.file} and in ${svc.file}`,
        fix: `give one of them another name (set \`name\` in ${svc.file}, or rename the file)`,
      });
    } else byName.set(svc.name, svc);
  }

  const notInProject = (what: string, definedAt: string | undefined) => ({
    message: `${what} is not part of the project${definedAt ? ` (defined at ${definedAt})` : ''}`,
    fix:
      `add its file to the \`services\` globs in ${repo.configFile} (now ${cfg.globs.map((g) => `'${g}'`).join(', ')}), ` +
      'or export the service as its file\'s default export',
  });

  const specs: Record<string, ServiceSpec> = {};
  const deps = new Map<string, Edge[]>();
  const linkPairs = new Set<string>();
  const allBindings: Array<{ service: string; file: string; where: string; b: PortBinding }> = [];
  const volumes = new Set<string>();

  for (const svc of repo.services) {
    const isPrimary = byName.get(svc.name) === svc;
    const file = svc.file;
    const service = svc.name;
    const report: Report = (where, message, fix) =>
      problems.push({ file, service, ...(where ? { where } : {}), message, ...(fix ? { fix } : {}) });
    const d = isObject(svc.data) ? svc.data : {};
    if (!isObject(svc.data)) report(undefined, 'the default export is not a service definition', 'export default defineService({ image: ... })');

    // name
    if (typeof service !== 'string' || !SERVICE_NAME_RE.test(service)) {
      report(
        'name',
        `service name ${show(service)} is not DNS-safe`,
        'use lowercase letters, digits and -, starting with a letter and not ending with -, at most 63 characters (set `name` or rename the file)',
      );
    }
    if (d.name !== undefined && typeof d.name !== 'string') report('name', `name must be a string, got ${show(d.name)}`, "for example name: 'api'");

    unknownKeys(d, SERVICE_KEYS, '', report, 'the service definition');

    // image
    let image = '';
    if (d.image === undefined) report('image', 'image is required', "add image: 'nginx:1.27' (or your own image reference)");
    else if (typeof d.image !== 'string') report('image', `image must be a string, got ${show(d.image)}`, "for example image: 'nginx:1.27'");
    else {
      const r = checkImage(d.image);
      if (r.ok) image = r.value;
      else report('image', r.message, r.fix);
    }

    const commandField = (key: 'command' | 'entrypoint'): string[] | undefined => {
      const v = d[key];
      if (v === undefined) return undefined;
      if (typeof v === 'string') {
        if (v.trim() === '') report(key, `${key} is empty`, `remove \`${key}\` to keep the image's default`);
        return ['/bin/sh', '-c', v];
      }
      if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')) return [...v];
      report(key, `${key} must be a string or a non-empty list of strings, got ${show(v)}`, `for example ${key}: ['node', 'server.js']`);
      return undefined;
    };
    const command = commandField('command');
    const entrypoint = commandField('entrypoint');

    const pull = checkPull(d.pull, 'pull', report, cfg.pull);

    // port
    let port: number | undefined;
    if (d.port !== undefined) {
      if (isPort(d.port)) port = d.port;
      else report('port', `port ${show(d.port)} must be a whole number in 1..65535`, 'for example port: 8080');
    }

    // ports
    const ports: PortBinding[] = [];
    if (d.ports !== undefined) {
      if (!Array.isArray(d.ports)) report('ports', `ports must be a list, got ${show(d.ports)}`, "for example ports: ['8080:80']");
      else
        d.ports.forEach((p, i) => {
          const r = parsePort(p);
          if (!r.ok) return report(`ports[${i}]`, r.message, r.fix);
          for (const b of r.value) {
            ports.push(b);
            if (b.host !== undefined && isPrimary) allBindings.push({ service, file, where: `ports[${i}]`, b });
          }
        });
    }

    // volumes
    const mounts: Mount[] = [];
    if (d.volumes !== undefined) {
      if (!Array.isArray(d.volumes)) report('volumes', `volumes must be a list, got ${show(d.volumes)}`, "for example volumes: [{ name: 'data', target: '/data' }]");
      else {
        const targets = new Map<string, number>();
        d.volumes.forEach((v, i) => {
          const w = `volumes[${i}]`;
          if (!isObject(v)) {
            return report(w, `a volume must be an object, got ${show(v)}`, "write { name: 'data', target: '/data' } or { bind: './conf', target: '/etc/app' }");
          }
          unknownKeys(v, VOLUME_KEYS, `${w}.`, report, 'a volume');
          const readOnly = v.readOnly === undefined ? false : v.readOnly;
          if (typeof readOnly !== 'boolean') report(`${w}.readOnly`, `readOnly must be true or false, got ${show(readOnly)}`, 'readOnly: true');
          let target: string | undefined;
          if (typeof v.target !== 'string' || !v.target.startsWith('/')) {
            report(`${w}.target`, `target ${show(v.target)} must be an absolute path inside the container`, "for example target: '/data'");
          } else {
            target = path.posix.normalize(v.target);
            if (target.length > 1 && target.endsWith('/')) target = target.slice(0, -1);
            const prev = targets.get(target);
            if (prev !== undefined) {
              report(`${w}.target`, `target ${show(target)} is already mounted by volumes[${prev}]`, 'mount each container path once');
            } else targets.set(target, i);
          }
          const hasName = has(v, 'name');
          const hasBind = has(v, 'bind');
          if (hasName === hasBind) {
            return report(w, hasName ? 'a volume has both `name` and `bind`' : 'a volume needs `name` (named volume) or `bind` (host path)', 'keep exactly one of `name` and `bind`');
          }
          if (hasName) {
            if (typeof v.name !== 'string' || !VOLUME_NAME_RE.test(v.name)) {
              return report(`${w}.name`, `volume name ${show(v.name)} is not valid`, 'use letters, digits, `_`, `.` and `-`, starting with a letter or digit');
            }
            if (target !== undefined && typeof readOnly === 'boolean') {
              volumes.add(v.name);
              mounts.push({ type: 'volume', name: v.name, source: names.volume(cfg.project, v.name), target, readOnly });
            }
          } else {
            if (typeof v.bind !== 'string' || v.bind.length === 0) {
              return report(`${w}.bind`, `bind ${show(v.bind)} must be a host path`, "for example bind: './config' (relative to the repository root)");
            }
            if (target !== undefined && typeof readOnly === 'boolean') {
              mounts.push({ type: 'bind', source: path.resolve(repo.root, v.bind), target, readOnly });
            }
          }
        });
      }
    }

    // healthcheck
    let healthcheck: HealthcheckSpec | undefined;
    if (d.healthcheck !== undefined) {
      const h = d.healthcheck;
      if (!isObject(h)) report('healthcheck', `healthcheck must be an object, got ${show(h)}`, "for example healthcheck: { http: '/health' }");
      else {
        unknownKeys(h, HEALTH_KEYS, 'healthcheck.', report, 'the healthcheck');
        const kinds = (['http', 'tcp', 'command'] as const).filter((k) => has(h, k));
        const timing = parseTiming(h, 'healthcheck', report, cfg.defaults.timing);
        let test: string[] | undefined;
        let describe = '';
        if (kinds.length !== 1) {
          report(
            'healthcheck',
            kinds.length === 0 ? 'healthcheck needs one of `http`, `tcp` or `command`' : `healthcheck has ${kinds.map((k) => `\`${k}\``).join(' and ')}; only one is allowed`,
            "write exactly one, e.g. { http: '/health' }, { tcp: 5432 } or { command: 'pg_isready' }",
          );
        } else if (kinds[0] === 'http') {
          const p = h.http;
          let hp: number | undefined;
          if (h.port !== undefined) {
            if (isPort(h.port)) hp = h.port;
            else report('healthcheck.port', `port ${show(h.port)} must be a whole number in 1..65535`, 'for example port: 8080');
          } else if (port !== undefined) hp = port;
          else if (d.port === undefined) {
            report('healthcheck.port', 'an http healthcheck needs a port, and the service has no `port`', 'set `port` on the service or `port` in the healthcheck');
          }
          if (typeof p !== 'string' || !p.startsWith('/') || /[\s\x00-\x1f]/.test(p)) {
            report('healthcheck.http', `http ${show(p)} must be a path starting with / (no spaces)`, "for example http: '/health'");
          } else if (hp !== undefined) {
            const url = shQuote(`http://127.0.0.1:${hp}${p}`);
            test = [
              'CMD-SHELL',
              `if command -v wget >/dev/null 2>&1; then wget -q -O /dev/null ${url}; else curl -fsS -o /dev/null ${url}; fi`,
            ];
            describe = `http ${p} :${hp}`;
          }
        } else if (kinds[0] === 'tcp') {
          if (h.port !== undefined) report('healthcheck.port', '`port` only applies to http healthchecks', 'put the port in `tcp`: { tcp: 5432 }');
          if (!isPort(h.tcp)) report('healthcheck.tcp', `tcp ${show(h.tcp)} must be a port number in 1..65535`, 'for example tcp: 5432');
          else {
            const tp = h.tcp;
            // Debian's busybox nc has no -z: fall back to connecting with empty stdin.
            test = ['CMD-SHELL', `nc -z 127.0.0.1 ${tp} 2>/dev/null || nc -w 2 127.0.0.1 ${tp} </dev/null >/dev/null 2>&1`];
            describe = `tcp :${tp}`;
          }
        } else {
          if (h.port !== undefined) report('healthcheck.port', '`port` only applies to http healthchecks', 'remove `port`');
          const c = h.command;
          if (typeof c === 'string' && c.trim() !== '') {
            test = ['CMD-SHELL', c];
            describe = `command ${c}`;
          } else if (Array.isArray(c) && c.length > 0 && c.every((x) => typeof x === 'string')) {
            test = ['CMD', ...(c as string[])];
            describe = `command ${c.join(' ')}`;
          } else {
            report('healthcheck.command', `command must be a non-empty string or list of strings, got ${show(c)}`, "for example command: 'pg_isready -U postgres'");
          }
        }
        if (test) healthcheck = { test, ...timing, describe };
      }
    }

    // restart, resources, stop grace
    const restart = d.restart === undefined ? cfg.defaults.restart : parseRestart(d.restart, 'restart', report) ?? cfg.defaults.restart;
    const res = d.resources === undefined ? {} : parseResources(d.resources, 'resources', report);
    const resources: ResourcesSpec = {
      memory: res.memory ?? cfg.defaults.memory ?? 0,
      nanoCpus: res.nanoCpus ?? cfg.defaults.nanoCpus ?? 0,
    };
    let stopGraceNs = cfg.defaults.stopGraceNs;
    if (d.stopGracePeriod !== undefined) stopGraceNs = durationField(d.stopGracePeriod, 'stopGracePeriod', report) ?? stopGraceNs;

    // references
    const links = new Set<string>();
    const resolveRef = (v: unknown, where: string, example: string): string | undefined => {
      if (typeof v === 'string') {
        report(where, `${show(v)} is a string; services are referenced as values`, `import the service (import ${v.replace(/[^A-Za-z0-9_$]/g, '_')} from './${v}') and write ${example.replace('X', v.replace(/[^A-Za-z0-9_$]/g, '_'))}`);
        return undefined;
      }
      if (!isObject(v) || v.$ref !== 'service') {
        report(where, `expected a service imported from its file, got ${show(v)}`, `import the service and write ${example.replace('X', 'db')}`);
        return undefined;
      }
      const target = v.service;
      const definedAt = typeof v.definedAt === 'string' ? v.definedAt : undefined;
      if (typeof target !== 'string') {
        const p = notInProject('the referenced service', definedAt);
        report(where, p.message, p.fix);
        return undefined;
      }
      if (!byName.has(target)) {
        const p = notInProject(`the referenced service "${target}"`, definedAt);
        report(where, p.message, p.fix);
        return undefined;
      }
      return target;
    };

    // dependsOn
    const dependsOn: DependencySpec[] = [];
    const edges: Edge[] = [];
    if (d.dependsOn !== undefined) {
      if (!Array.isArray(d.dependsOn)) report('dependsOn', `dependsOn must be a list, got ${show(d.dependsOn)}`, 'for example dependsOn: [db]');
      else
        d.dependsOn.forEach((entry, i) => {
          const w = `dependsOn[${i}]`;
          let ref: unknown = entry;
          let condition: 'started' | 'healthy' = 'started';
          if (isObject(entry) && entry.$ref === undefined) {
            unknownKeys(entry, DEPENDENCY_KEYS, `${w}.`, report, 'a dependency');
            ref = entry.service;
            if (entry.condition !== undefined) {
              if (entry.condition !== 'started' && entry.condition !== 'healthy') {
                report(`${w}.condition`, `condition ${show(entry.condition)} must be 'started' or 'healthy'`, "condition: 'healthy'");
              } else condition = entry.condition;
            }
            if (ref === undefined) return report(`${w}.service`, 'a dependency needs `service`', "write { service: db, condition: 'healthy' }");
          }
          const target = resolveRef(ref, w, 'dependsOn: [X]');
          if (target === undefined) return;
          if (target === service) return report(w, `service "${service}" depends on itself`, 'remove this entry');
          if (dependsOn.some((x) => x.service === target)) return report(w, `"${target}" is listed twice in dependsOn`, 'keep one entry');
          if (condition === 'healthy') {
            const t = byName.get(target)!;
            if (!isObject(t.data) || t.data.healthcheck === undefined) {
              report(`${w}.condition`, `condition 'healthy' needs a healthcheck on "${target}" (${t.file}), which has none`, `add a healthcheck to ${t.file}, or use condition 'started'`);
            }
          }
          dependsOn.push({ service: target, condition });
          edges.push({ to: target, where: w });
          links.add(target);
        });
    }
    if (isPrimary) deps.set(service, edges);

    // connects
    if (d.connects !== undefined) {
      if (!Array.isArray(d.connects)) report('connects', `connects must be a list, got ${show(d.connects)}`, 'for example connects: [cache]');
      else
        d.connects.forEach((entry, i) => {
          const target = resolveRef(entry, `connects[${i}]`, 'connects: [X]');
          if (target === undefined) return;
          if (target === service) return report(`connects[${i}]`, `service "${service}" connects to itself`, 'remove this entry');
          links.add(target);
        });
    }

    // env
    const env: Record<string, string> = {};
    const secretEnv: Record<string, { secret: string; key: string }> = {};
    if (d.env !== undefined) {
      if (!isObject(d.env)) report('env', `env must be an object, got ${show(d.env)}`, "for example env: { LOG_LEVEL: 'info' }");
      else
        for (const key of Object.keys(d.env).sort()) {
          const v = d.env[key];
          const w = `env.${key}`;
          if (!ENV_NAME_RE.test(key)) report(w, `${show(key)} is not a valid environment variable name`, 'use letters, digits and _, not starting with a digit');
          if (typeof v === 'string') env[key] = v;
          else if (typeof v === 'number' && Number.isFinite(v)) env[key] = String(v);
          else if (typeof v === 'boolean') env[key] = String(v);
          else if (isObject(v) && v.$ref === 'service-url') {
            const target = resolveRef({ ...v, $ref: 'service' }, w, 'X.url()');
            if (target === undefined) continue;
            if (target !== service) links.add(target);
            const scheme = v.scheme ?? 'http';
            if (typeof scheme !== 'string' || !SCHEME_RE.test(scheme)) {
              report(w, `scheme ${show(scheme)} is not a URL scheme`, "for example { scheme: 'postgres' }");
              continue;
            }
            const p = v.path ?? '';
            if (typeof p !== 'string' || (p !== '' && !p.startsWith('/'))) {
              report(w, `url path ${show(p)} must be empty or start with /`, "for example url('/v1')");
              continue;
            }
            let tp: number | undefined;
            if (v.port !== undefined) {
              if (isPort(v.port)) tp = v.port;
              else {
                report(w, `url port ${show(v.port)} must be a whole number in 1..65535`, "for example url('/', { port: 8080 })");
                continue;
              }
            } else {
              const t = byName.get(target)!;
              const tport = isObject(t.data) ? t.data.port : undefined;
              if (isPort(tport)) tp = tport;
              else {
                report(
                  w,
                  `url of "${target}" needs a port, and "${target}" (${t.file}) has no valid \`port\``,
                  `set \`port\` in ${t.file}, or pass one: ${target}.url('${p}', { port: 8080 })`,
                );
                continue;
              }
            }
            env[key] = `${scheme}://${target}:${tp}${p}`;
          } else if (isObject(v) && v.$ref === 'secret') {
            const ref = checkSecretRef(v, w, cfg.secrets, repo.configFile, report, cfg.secretsDeclared);
            if (ref) secretEnv[key] = ref;
          } else if (isObject(v) && v.$ref === 'service') {
            report(w, `the value is a service, not a string`, `write ${v.service ?? 'svc'}.url() to get its URL`);
          } else {
            report(w, `value ${show(v)} must be a string, number, boolean, a service's url() or a secret (secrets.<name>.<key>)`, `for example ${key}: 'value'`);
          }
        }
    }

    // labels
    const labels: Record<string, string> = {};
    if (d.labels !== undefined) {
      if (!isObject(d.labels)) report('labels', `labels must be an object, got ${show(d.labels)}`, "for example labels: { team: 'web' }");
      else
        for (const key of Object.keys(d.labels).sort()) {
          const v = d.labels[key];
          const w = `labels.${key}`;
          if (key.length === 0) report(w, 'a label key is empty', 'give the label a name');
          else if (key.toLowerCase().startsWith(RESERVED_LABEL_PREFIX)) {
            report(w, `label ${show(key)} uses the reserved prefix ${RESERVED_LABEL_PREFIX}`, 'use your own prefix, e.g. com.example.team');
          } else if (typeof v !== 'string') report(w, `label value ${show(v)} must be a string`, `quote it: '${String(v)}'`);
          else labels[key] = v;
        }
    }

    let user: string | undefined;
    if (d.user !== undefined) {
      if (typeof d.user !== 'string' || d.user.trim() === '') report('user', `user ${show(d.user)} must be a non-empty string`, "for example user: '1000:1000'");
      else user = d.user;
    }
    let workdir: string | undefined;
    if (d.workdir !== undefined) {
      if (typeof d.workdir !== 'string' || !d.workdir.startsWith('/')) report('workdir', `workdir ${show(d.workdir)} must be an absolute path`, "for example workdir: '/app'");
      else workdir = d.workdir;
    }

    // secret files
    const secretFiles = checkSecretFiles(
      d.files,
      { decls: cfg.secrets, declared: cfg.secretsDeclared, configFile: repo.configFile, user: d.user, mountTargets: mounts.map((m) => m.target) },
      report,
    );

    for (const l of links) if (l !== service) linkPairs.add(service < l ? `${service}\u0000${l}` : `${l}\u0000${service}`);

    if (!isPrimary) continue;
    const spec: ServiceSpec = {
      name: service,
      file,
      ...(svc.definedAt !== undefined ? { definedAt: svc.definedAt } : {}),
      image,
      ...(command ? { command } : {}),
      ...(entrypoint ? { entrypoint } : {}),
      env,
      ...(port !== undefined ? { port } : {}),
      ports,
      mounts,
      ...(healthcheck ? { healthcheck } : {}),
      restart,
      resources,
      dependsOn,
      links: [],
      labels,
      ...(user !== undefined ? { user } : {}),
      ...(workdir !== undefined ? { workdir } : {}),
      stopGraceSeconds: Math.ceil(stopGraceNs / 1e9),
      ...(Object.keys(secretEnv).length > 0 ? { secretEnv } : {}),
      ...(secretFiles.length > 0 ? { secretFiles } : {}),
      pull,
    };
    specs[service] = spec;
  }

  // host port conflicts (within and across services)
  for (let j = 0; j < allBindings.length; j++) {
    const b = allBindings[j];
    for (let i = 0; i < j; i++) {
      const a = allBindings[i];
      if (a.b.protocol !== b.b.protocol || a.b.host !== b.b.host || !hostIpsOverlap(a.b.hostIp, b.b.hostIp)) continue;
      if (a.service === b.service && a.where === b.where) continue;
      const what = `host port ${b.b.host}/${b.b.protocol} on ${b.b.hostIp}`;
      problems.push({
        file: b.file,
        service: b.service,
        where: b.where,
        message:
          a.service === b.service
            ? `${what} is bound twice by service "${b.service}" (${b.file}): ${a.where} and ${b.where}`
            : `${what} is also bound by service "${a.service}" (${a.file}, ${a.where}); service "${b.service}" (${b.file}) cannot bind it too`,
        fix: 'use a different host port, or bind different host addresses with hostIp (0.0.0.0 overlaps every address)',
      });
      break;
    }
  }

  // dependency cycles and order
  const cycleProblems = findCycles(deps, byName);
  problems.push(...cycleProblems);

  if (problems.length > 0) throw new ProblemsError(problems);

  const order = topoOrder(deps);
  const pairs = [...linkPairs].sort().map((p) => p.split('\u0000') as [string, string]);
  pairs.sort((x, y) => (x[0] === y[0] ? cmp(x[1], y[1]) : cmp(x[0], y[0])));
  for (const [a, b] of pairs) {
    specs[a].links.push(b);
    specs[b].links.push(a);
  }
  for (const s of Object.values(specs)) s.links.sort(cmp);

  const sortedServices: Record<string, ServiceSpec> = {};
  for (const n of Object.keys(specs).sort(cmp)) sortedServices[n] = specs[n];

  return {
    project: cfg.project,
    root: repo.root,
    configFile: repo.configFile,
    ...(cfg.dockerHost !== undefined ? { dockerHost: cfg.dockerHost } : {}),
    parallelism: cfg.parallelism,
    services: sortedServices,
    order,
    links: pairs,
    volumes: [...volumes].sort(cmp),
    ...(Object.keys(cfg.secrets).length > 0 ? { secrets: cfg.secrets } : {}),
    ...(cfg.vault ? { vault: cfg.vault } : {}),
    ...(cfg.evaluation ? { evaluation: cfg.evaluation } : {}),
  };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Dependencies first; among services that are ready at the same time, by name. */
function topoOrder(deps: Map<string, Edge[]>): string[] {
  const remaining = new Map<string, Set<string>>();
  for (const [n, es] of deps) remaining.set(n, new Set(es.map((e) => e.to)));
  const order: string[] = [];
  while (remaining.size > 0) {
    const ready = [...remaining].filter(([, ds]) => ds.size === 0).map(([n]) => n).sort(cmp);
    if (ready.length === 0) break; // cycles are reported before this runs
    const next = ready[0];
    order.push(next);
    remaining.delete(next);
    for (const ds of remaining.values()) ds.delete(next);
  }
  return order;
}

/** Each dependency cycle once (Tarjan's strongly connected components), listed from its smallest name. */
function findCycles(deps: Map<string, Edge[]>, byName: Map<string, LoadedService>): Problem[] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const sccs: string[][] = [];
  const strong = (v: string) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const e of deps.get(v) ?? []) {
      if (!deps.has(e.to)) continue;
      if (!idx.has(e.to)) {
        strong(e.to);
        low.set(v, Math.min(low.get(v)!, low.get(e.to)!));
      } else if (onStack.has(e.to)) low.set(v, Math.min(low.get(v)!, idx.get(e.to)!));
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) sccs.push(comp);
    }
  };
  for (const n of [...deps.keys()].sort(cmp)) if (!idx.has(n)) strong(n);

  const problems: Problem[] = [];
  for (const comp of sccs.sort((a, b) => cmp([...a].sort(cmp)[0], [...b].sort(cmp)[0]))) {
    const inComp = new Set(comp);
    const start = [...comp].sort(cmp)[0];
    // Shortest path start → … → start inside the component (BFS, neighbours by name).
    const parent = new Map<string, string>();
    const queue = [start];
    const seen = new Set([start]);
    let last: string | undefined;
    while (queue.length && last === undefined) {
      const v = queue.shift()!;
      const next = (deps.get(v) ?? []).map((e) => e.to).filter((t) => inComp.has(t)).sort(cmp);
      for (const t of next) {
        if (t === start) {
          last = v;
          break;
        }
        if (!seen.has(t)) {
          seen.add(t);
          parent.set(t, v);
          queue.push(t);
        }
      }
    }
    const cycle: string[] = [];
    for (let v: string | undefined = last; v !== undefined; v = parent.get(v)) cycle.unshift(v);
    cycle.push(start);
    const firstEdge = (deps.get(start) ?? []).find((e) => e.to === cycle[1]);
    const files = cycle.slice(0, -1).map((n) => `${n} in ${byName.get(n)?.file}`).join(', ');
    problems.push({
      file: byName.get(start)!.file,
      service: start,
      ...(firstEdge ? { where: firstEdge.where } : {}),
      message: `dependency cycle: ${cycle.join(' → ')} (${files})`,
      fix: 'remove one of these dependsOn entries; to let services reach each other without a start order, use `connects`',
    });
  }
  return problems;
}
