/**
 * Validation of the project configuration (`waffle.config.ts`): project name, Docker target,
 * parallelism, service globs and naming, defaults for every service, pull policy, evaluation settings, secrets
 * and Vault settings. Problems are reported on the config file.
 */
import type { LoadedRepo, Problem, SecretDecl, UpdateSettingsSpec, VaultSettingsSpec } from '../../model.ts';
import { isObject, show } from '../parse.ts';
import { durationField, has, reporterFor, unknownKeys } from '../report.ts';
import { checkEvaluation, type EvaluationSpec } from './evaluation.ts';
import { DEFAULT_TIMING, parseTiming, TIMING_KEYS, type Timing } from './healthchecks.ts';
import { checkPull, DEFAULT_PULL, type PullPolicy } from './images.ts';
import { DEFAULT_RESTART, DEFAULT_STOP_GRACE_NS, parseResources, parseRestart, type LifecycleDefaults } from './lifecycle.ts';
import { checkSecretDecls, checkVaultConfigured, checkVaultSettings } from './secrets.ts';
import { checkTarget, type TargetName } from './swarm.ts';
import { checkUpdateSettings } from './updates.ts';

export const CONFIG_KEYS = ['project', 'docker', 'defaults', 'services', 'naming', 'parallelism', 'secrets', 'vault', 'pull', 'evaluation', 'rollback', 'ingress', 'updates', 'target'];
const ROLLBACK_KEYS = ['keep'];
/** At most this many kept containers per service: each holds its writable layer on the host's disk. */
export const MAX_KEEP = 20;
export const NAMINGS = ['file', 'path'] as const;
export type Naming = (typeof NAMINGS)[number];
export const DEFAULTS_KEYS = ['restart', 'resources', 'stopGracePeriod', 'healthcheck'];
const DOCKER_KEYS = ['host'];
const PROJECT_NAME_RE = /^[a-z](?:[a-z0-9-]{0,39})$/;
const DEFAULT_PARALLELISM = 4;
const DEFAULT_SERVICE_GLOBS = ['services/*.ts'];

/** What every service inherits when it does not set the field. */
export interface Defaults extends LifecycleDefaults {
  timing: Timing;
  pull: PullPolicy;
}

export interface ConfigResult {
  project: string;
  dockerHost?: string;
  /** What the services run on: one engine (default) or a Swarm. */
  target: TargetName;
  parallelism: number;
  defaults: Defaults;
  globs: string[];
  /** How a service without `name` is named: after its file (`'file'`) or its path below the services folder (`'path'`). */
  naming: Naming;
  /** Declared secrets (valid ones); `secretsDeclared` tells "none declared" from "declared, but not this one". */
  secrets: Record<string, SecretDecl>;
  secretsDeclared: boolean;
  vault?: VaultSettingsSpec;
  evaluation?: EvaluationSpec;
  updates?: UpdateSettingsSpec;
  /** `rollback.keep`, when configured. */
  rollback?: { keep: number };
}

/** Validates `repo.config`; every problem is pushed onto `problems`, valid parts are returned with defaults filled. */
export function checkConfig(repo: LoadedRepo, problems: Problem[]): ConfigResult {
  const file = repo.configFile;
  const report = reporterFor(problems, file);
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

  const target = checkTarget(c.target, report);

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

  let naming: Naming = 'file';
  if (has(c, 'naming')) {
    if (!NAMINGS.includes(c.naming as Naming)) {
      report(
        'naming',
        `naming ${show(c.naming)} must be 'file' or 'path'`,
        "naming: 'path' names services/portal/sync.ts `portal-sync` (its path below services/); 'file' (the default) names it `sync`",
      );
    } else naming = c.naming as Naming;
  }

  const defaults: Defaults = { restart: { ...DEFAULT_RESTART }, stopGraceNs: DEFAULT_STOP_GRACE_NS, timing: { ...DEFAULT_TIMING }, pull: DEFAULT_PULL };
  if (has(c, 'defaults')) {
    const d = c.defaults;
    if (!isObject(d)) report('defaults', `defaults must be an object, got ${show(d)}`, "for example defaults: { restart: 'always' }");
    else {
      // The project's pull policy is a top-level field; a default under `defaults` is an easy mistake.
      const { pull: misplacedPull, ...rest } = d;
      if (misplacedPull !== undefined) {
        report('defaults.pull', 'the project-wide pull policy is set at the top level, not under `defaults`', `move it: defineConfig({ ..., pull: ${show(misplacedPull).replace(/"/g, "'")} })`);
      }
      unknownKeys(rest, DEFAULTS_KEYS, 'defaults.', report, 'defaults');
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
  checkVaultConfigured(c.secrets, c.vault, report);
  defaults.pull = checkPull(c.pull, 'pull', report, DEFAULT_PULL);

  // The deployer's own credentials must stay out of the sandbox that evaluates the configuration.
  const credentials: Record<string, string> = { WAFFLE_AGE_IDENTITY: 'the age identity that decrypts the embedded secrets' };
  if (vault?.auth.method === 'token') credentials[vault.auth.tokenEnv] = 'the Vault token (vault.auth.token.env)';
  if (vault?.auth.method === 'approle') credentials[vault.auth.secretIdEnv] = 'the Vault AppRole secret id (vault.auth.approle.secretIdEnv)';
  const evaluation = checkEvaluation(c.evaluation, report, credentials);
  const updates = checkUpdateSettings(c.updates, { secrets, declared: c.secrets !== undefined, configFile: file }, report);

  let rollback: { keep: number } | undefined;
  if (has(c, 'rollback')) {
    const r = c.rollback;
    if (!isObject(r)) report('rollback', `rollback must be an object, got ${show(r)}`, 'for example rollback: { keep: 3 }');
    else {
      unknownKeys(r, ROLLBACK_KEYS, 'rollback.', report, 'rollback');
      if (has(r, 'keep')) {
        const k = r.keep;
        if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k > MAX_KEEP) {
          report('rollback.keep', `rollback.keep ${show(k)} must be a whole number from 0 to ${MAX_KEEP}`, 'for example rollback: { keep: 3 } (0 keeps no earlier container)');
        } else rollback = { keep: k };
      }
    }
  }

  return {
    project,
    ...(dockerHost !== undefined ? { dockerHost } : {}),
    target,
    parallelism,
    defaults,
    globs,
    naming,
    secrets,
    secretsDeclared: c.secrets !== undefined,
    ...(vault ? { vault } : {}),
    ...(evaluation ? { evaluation } : {}),
    ...(updates ? { updates } : {}),
    ...(rollback ? { rollback } : {}),
  };
}
