/**
 * Validation of how a container is kept running: restart policy, resource limits and the stop grace
 * period. Used for a service's own fields and for the project's `defaults`.
 */
import type { ResourcesSpec, RestartSpec } from '../../model.ts';
import { isObject, parseMemory, show } from '../parse.ts';
import { durationField, has, unknownKeys, type Report } from '../report.ts';
import { suggest } from '../suggest.ts';

export const RESTART_NAMES = ['no', 'always', 'unless-stopped', 'on-failure'] as const;
export const RESOURCES_KEYS = ['memory', 'cpus'];
export const DEFAULT_RESTART: RestartSpec = { name: 'unless-stopped', maximumRetryCount: 0 };
export const DEFAULT_STOP_GRACE_NS = 10e9;

/** `restart`: a policy name or `{ policy: 'on-failure', maxRetries }`. Undefined (reported) when invalid. */
export function parseRestart(v: unknown, where: string, report: Report): RestartSpec | undefined {
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

/** `resources`: memory in bytes and CPUs in nano CPUs; only the valid fields are returned. */
export function parseResources(v: unknown, where: string, report: Report): { memory?: number; nanoCpus?: number } {
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

/** What a service inherits when it does not set these fields. */
export interface LifecycleDefaults {
  restart: RestartSpec;
  memory?: number;
  nanoCpus?: number;
  stopGraceNs: number;
}

/** A service's `restart`, `resources` and `stopGracePeriod`, each falling back to the project's defaults. */
export function checkLifecycle(
  d: { restart?: unknown; resources?: unknown; stopGracePeriod?: unknown },
  defaults: LifecycleDefaults,
  report: Report,
): { restart: RestartSpec; resources: ResourcesSpec; stopGraceNs: number } {
  const restart = d.restart === undefined ? defaults.restart : parseRestart(d.restart, 'restart', report) ?? defaults.restart;
  const res = d.resources === undefined ? {} : parseResources(d.resources, 'resources', report);
  const resources: ResourcesSpec = {
    memory: res.memory ?? defaults.memory ?? 0,
    nanoCpus: res.nanoCpus ?? defaults.nanoCpus ?? 0,
  };
  let stopGraceNs = defaults.stopGraceNs;
  if (d.stopGracePeriod !== undefined) stopGraceNs = durationField(d.stopGracePeriod, 'stopGracePeriod', report) ?? stopGraceNs;
  return { restart, resources, stopGraceNs };
}
