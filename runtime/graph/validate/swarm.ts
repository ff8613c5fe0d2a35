/**
 * Validation of what a project deploys to (`target`) and of the per-service fields of a Swarm service:
 * `replicas`, `placement` and `rollout`. On the single-engine target a service is one container, so
 * `replicas` above 1 is a problem there; `placement` and `rollout` are accepted and have no effect (the
 * same files then deploy to either target).
 */
import type { PlacementSpec, PortBinding, RolloutSpec } from '../../model.ts';
import { isObject, show } from '../parse.ts';
import { durationField, has, unknownKeys, type Report } from '../report.ts';
import { suggest } from '../suggest.ts';

export const TARGETS = ['engine', 'swarm'] as const;
export type TargetName = (typeof TARGETS)[number];
export const PLACEMENT_KEYS = ['constraints', 'preferences'];
export const ROLLOUT_KEYS = ['parallelism', 'delay', 'order', 'failureAction', 'monitor'];
const ORDERS = ['start-first', 'stop-first'] as const;
const FAILURE_ACTIONS = ['rollback', 'pause', 'continue'] as const;

export const DEFAULT_ROLLOUT: RolloutSpec = { parallelism: 1, delayNs: 0, order: 'start-first', failureAction: 'rollback', monitorNs: 10e9 };

/** `target` of the project config: `'engine'` (default) or `'swarm'`. */
export function checkTarget(v: unknown, report: Report): TargetName {
  if (v === undefined) return 'engine';
  if (v === 'engine' || v === 'swarm') return v;
  const guess = typeof v === 'string' ? suggest(v, [...TARGETS]) : undefined;
  report(
    'target',
    `target ${show(v)} must be 'engine' or 'swarm'` + (guess ? `; did you mean '${guess}'?` : ''),
    "write target: 'engine' (one Docker engine, the default) or target: 'swarm' (a Docker Swarm, through a manager)",
  );
  return 'engine';
}

/** `node.labels.zone == eu`, `node.role!=manager`: an attribute, `==` or `!=`, a value. */
const CONSTRAINT_RE = /^\s*((?:node|engine)\.[A-Za-z0-9_.-]+)\s*(==|!=)\s*(\S(?:.*\S)?)\s*$/;
const PREFERENCE_RE = /^(?:node|engine)\.[A-Za-z0-9_.-]+$/;

function stringList(v: unknown, where: string, report: Report, example: string): string[] | undefined {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    report(where, `${where} must be a list of strings, got ${show(v)}`, `for example ${where.split('.').pop()}: [${example}]`);
    return undefined;
  }
  return v as string[];
}

function checkPlacement(v: unknown, report: Report): PlacementSpec {
  const out: PlacementSpec = { constraints: [], preferences: [] };
  if (!isObject(v)) {
    report('placement', `placement must be an object, got ${show(v)}`, "for example placement: { constraints: ['node.labels.disk == ssd'] }");
    return out;
  }
  unknownKeys(v, PLACEMENT_KEYS, 'placement.', report, 'placement');
  const constraints = has(v, 'constraints') ? stringList(v.constraints, 'placement.constraints', report, "'node.labels.disk == ssd'") : [];
  (constraints ?? []).forEach((c, i) => {
    const m = CONSTRAINT_RE.exec(c);
    if (!m) {
      report(
        `placement.constraints[${i}]`,
        `placement constraint ${show(c)} is not \`<attribute> == <value>\` or \`<attribute> != <value>\``,
        "write for example 'node.role == worker', 'node.hostname != db-1' or 'node.labels.disk == ssd'",
      );
    } else out.constraints.push(`${m[1]}${m[2]}${m[3]}`);
  });
  const preferences = has(v, 'preferences') ? stringList(v.preferences, 'placement.preferences', report, "'node.labels.zone'") : [];
  (preferences ?? []).forEach((p, i) => {
    if (!PREFERENCE_RE.test(p)) {
      report(`placement.preferences[${i}]`, `placement preference ${show(p)} is not a node attribute`, "write the attribute to spread over, for example 'node.labels.zone'");
    } else out.preferences.push(p);
  });
  return out;
}

function checkRollout(v: unknown, report: Report, defaults: RolloutSpec): RolloutSpec {
  const out: RolloutSpec = { ...defaults };
  if (!isObject(v)) {
    report('rollout', `rollout must be an object, got ${show(v)}`, "for example rollout: { parallelism: 1, order: 'start-first' }");
    return out;
  }
  unknownKeys(v, ROLLOUT_KEYS, 'rollout.', report, 'rollout');
  if (has(v, 'parallelism')) {
    const p = v.parallelism;
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 1) report('rollout.parallelism', `rollout.parallelism ${show(p)} must be a whole number ≥ 1`, 'for example parallelism: 1');
    else out.parallelism = p;
  }
  if (has(v, 'delay')) out.delayNs = durationField(v.delay, 'rollout.delay', report) ?? out.delayNs;
  if (has(v, 'monitor')) out.monitorNs = durationField(v.monitor, 'rollout.monitor', report) ?? out.monitorNs;
  if (has(v, 'order')) {
    if ((ORDERS as readonly unknown[]).includes(v.order)) out.order = v.order as RolloutSpec['order'];
    else report('rollout.order', `rollout.order ${show(v.order)} must be 'start-first' or 'stop-first'`, "write order: 'start-first' (new task healthy before the old stops) or 'stop-first'");
  }
  if (has(v, 'failureAction')) {
    if ((FAILURE_ACTIONS as readonly unknown[]).includes(v.failureAction)) out.failureAction = v.failureAction as RolloutSpec['failureAction'];
    else report('rollout.failureAction', `rollout.failureAction ${show(v.failureAction)} must be 'rollback', 'pause' or 'continue'`, "write failureAction: 'rollback' (the default)");
  }
  return out;
}

/**
 * A service's `replicas`, `placement` and `rollout` for `target`. On Swarm every field is filled (with
 * defaults); on the engine target nothing is returned (a service is one container) and `replicas`
 * above 1 is reported with the two ways out.
 */
export function checkSwarmFields(
  d: Record<string, unknown>,
  target: TargetName,
  configFile: string,
  report: Report,
  ports: Array<{ where: string; binding: PortBinding }> = [],
): { replicas?: number; placement?: PlacementSpec; rollout?: RolloutSpec } {
  let replicas = 1;
  if (d.replicas !== undefined) {
    const r = d.replicas;
    if (typeof r !== 'number' || !Number.isInteger(r) || r < 0) {
      report('replicas', `replicas ${show(r)} must be a whole number ≥ 0`, 'for example replicas: 3');
    } else replicas = r;
  }
  const placement = d.placement === undefined ? { constraints: [], preferences: [] } : checkPlacement(d.placement, report);
  // A fixed host port cannot be held by the old and the new task at once on one node: such a service
  // rolls out stop-first unless its rollout says otherwise (the engine target decides the same way).
  const fixedHostPort = ports.some((p) => p.binding.host !== undefined);
  const defaults: RolloutSpec = { ...DEFAULT_ROLLOUT, ...(fixedHostPort ? { order: 'stop-first' as const } : {}) };
  const rollout = d.rollout === undefined ? defaults : checkRollout(d.rollout, report, defaults);
  if (target === 'engine') {
    if (replicas > 1) {
      report(
        'replicas',
        `replicas: ${replicas} needs a Docker Swarm: on the single-engine target a service runs one container`,
        `set target: 'swarm' in ${configFile} (deploy to a Swarm manager), or remove replicas (or set replicas: 1)`,
      );
    }
    if (replicas === 0) report('replicas', 'replicas: 0 is not supported on the single-engine target', `remove the service's file to stop it, or set target: 'swarm' in ${configFile}`);
    return {};
  }
  for (const p of ports) {
    // Swarm publishes a port on every address of the node: an address written here cannot be kept, and
    // silently widening `127.0.0.1:8088:8080` to all addresses would expose what was meant to be local.
    if (p.binding.host !== undefined && p.binding.hostIp !== '0.0.0.0' && p.binding.hostIp !== '::') {
      report(
        p.where,
        `Swarm publishes ports on every address of the node, so the address ${p.binding.hostIp} of this port cannot be kept`,
        `publish on all addresses ('${p.binding.host}:${p.binding.container}') behind the node's firewall, or leave the port unpublished and reach the service through a linked service`,
      );
    }
    if (p.binding.host === undefined) {
      report(p.where, 'Swarm cannot publish a port on a random host port with DNS round-robin endpoints', `give the host port, for example '${p.binding.container}:${p.binding.container}'`);
    }
  }
  return { replicas, placement, rollout };
}
