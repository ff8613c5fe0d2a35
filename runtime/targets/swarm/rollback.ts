/**
 * `waffle rollback` on Swarm, as a plan: Swarm keeps one previous spec per service (`PreviousSpec`) and
 * rolls back to it server-side; this file decides whether that can be done and what it means. PURE:
 * Docker's inspect answer is read into plain data here, but nothing here calls Docker or reads a clock.
 *
 * - One step back only: there are no generations to pick (`--to` is refused with the way out).
 * - Refused before anything changes when the service has no previous spec, when its last change was
 *   itself a rollback (the previous spec is then the newer one: a second rollback would go forward),
 *   when it is pinned already (same reason), while Swarm is still updating it, when the previous spec
 *   names a Swarm secret version or a network that is gone (a rotation removes the old secret version,
 *   so Swarm's rollback would fail), and for leased credentials (refused on Swarm at apply too).
 * - The pin: the service's definition hash as the repository states it (without secret values, so a
 *   rotation keeps the pin) and the config-hash label of the spec rolled back to. The Swarm planner
 *   holds a pinned service while both still match (pin.ts).
 */
import { LABEL } from '../../labels.ts';
import type { ObservedState, Operation, Plan, ServiceGraph, SwarmPin, SwarmSpecSummary } from '../../model.ts';
import { RollbackError } from '../../plan/rollback.ts';
import { specText } from './pin.ts';
import { swarmFingerprint } from './reconcile.ts';

/** The parts of a spec (Docker's inspect answer) a rollback reads. */
interface RawSpec {
  Labels?: Record<string, string>;
  Mode?: { Replicated?: { Replicas?: number } };
  TaskTemplate?: {
    ContainerSpec?: {
      Image?: string;
      Secrets?: Array<{ SecretID?: string; SecretName?: string }>;
      Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number };
      StopGracePeriod?: number;
    };
    Networks?: Array<{ Target?: string }>;
  };
  RollbackConfig?: { Parallelism?: number; Delay?: number; Monitor?: number };
}

/** A spec as a rollback needs it: what it runs, and what it needs to exist. */
export interface SwarmSpecInfo extends SwarmSpecSummary {
  replicas: number;
  /** The Swarm secrets it mounts (ID and name). */
  secrets: Array<{ id: string; name: string }>;
  /** The networks it joins, as Swarm stores them (IDs). */
  networks: string[];
  definedAt?: string;
  /** How long Swarm may take to go back to this spec (its health gate and the rollout pace, per batch). */
  deadlineMs: number;
}

/** A Swarm service's current and previous spec, from `GET /services/{id}`. */
export interface SwarmServiceHistory {
  id: string;
  name: string;
  service: string;
  version: number;
  /** ISO time of the service's last change. */
  updatedAt?: string;
  updateState?: string;
  updateMessage?: string;
  current: SwarmSpecInfo;
  previous?: SwarmSpecInfo;
}

/** Time for one batch of tasks to go back: health gate, monitor and delay, stop grace, and some slack. */
function deadlineOf(spec: RawSpec): number {
  const hc = spec.TaskTemplate?.ContainerSpec?.Healthcheck;
  const ns = (v: number | undefined) => (v ?? 0) / 1e6;
  const health = hc && hc.Test?.[0] !== 'NONE' ? ns(hc.StartPeriod) + ns(hc.Interval) * ((hc.Retries ?? 3) + 1) + ns(hc.Timeout) : 0;
  const replicas = spec.Mode?.Replicated?.Replicas ?? 1;
  const rc = spec.RollbackConfig ?? {};
  const batches = rc.Parallelism ? Math.ceil(replicas / rc.Parallelism) : 1;
  const perBatch = health + ns(rc.Delay) + ns(rc.Monitor) + ns(spec.TaskTemplate?.ContainerSpec?.StopGracePeriod) + 30_000;
  return Math.max(120_000, batches * perBatch) * 2;
}

function specInfo(spec: RawSpec): SwarmSpecInfo {
  const labels = spec.Labels ?? {};
  const cs = spec.TaskTemplate?.ContainerSpec ?? {};
  return {
    image: cs.Image ?? '',
    commit: labels[LABEL.commit] ?? '',
    configHash: labels[LABEL.configHash] ?? '',
    replicas: spec.Mode?.Replicated?.Replicas ?? 1,
    secrets: (cs.Secrets ?? []).map((s) => ({ id: s.SecretID ?? '', name: s.SecretName ?? '' })),
    networks: (spec.TaskTemplate?.Networks ?? []).map((n) => n.Target ?? '').filter(Boolean),
    ...(labels[LABEL.definedAt] ? { definedAt: labels[LABEL.definedAt] } : {}),
    deadlineMs: deadlineOf(spec),
  };
}

/** Reads Docker's answer to `GET /services/{id}` (environment values are not kept). */
export function serviceHistoryOf(info: unknown, service: string): SwarmServiceHistory {
  const s = info as { ID: string; Version?: { Index?: number }; UpdatedAt?: string; Spec?: RawSpec & { Name?: string }; PreviousSpec?: RawSpec; UpdateStatus?: { State?: string; Message?: string } };
  return {
    id: s.ID,
    name: s.Spec?.Name ?? s.ID,
    service,
    version: s.Version?.Index ?? 0,
    ...(s.UpdatedAt ? { updatedAt: s.UpdatedAt } : {}),
    ...(s.UpdateStatus?.State ? { updateState: s.UpdateStatus.State } : {}),
    ...(s.UpdateStatus?.Message ? { updateMessage: s.UpdateStatus.Message } : {}),
    current: specInfo(s.Spec ?? {}),
    ...(s.PreviousSpec ? { previous: specInfo(s.PreviousSpec) } : {}),
  };
}

const REVERT = 'deploy the earlier definition: git revert, then waffle apply';

export interface SwarmRollbackInput {
  graph: Pick<ServiceGraph, 'project' | 'configFile'>;
  observed: ObservedState;
  service: string;
  /** The service's inspect answer, read by {@link serviceHistoryOf}; absent when Swarm has no such service. */
  history?: SwarmServiceHistory;
  /** `--to`: generations are the single engine's. */
  to?: number;
  /** The service's pin, when it has one. */
  pin?: { at: string; swarm?: SwarmPin };
  /** Leased credentials (Vault database, aws) the service uses, by secret name. */
  leased: string[];
}

/** The plan of one Swarm rollback (one `rollback-swarm-service` operation), or a RollbackError saying why not and what to do. */
export function planSwarmRollback(input: SwarmRollbackInput): Plan {
  const { graph, observed, service, history } = input;
  const project = graph.project;
  if (input.to !== undefined) {
    throw new RollbackError(
      `${service} runs on a Swarm (target: 'swarm' in ${graph.configFile}), which keeps one previous spec of a service, not generations: --to ${input.to} picks a kept container of the single engine. ` +
        `Fix: \`waffle rollback ${service}\` goes one step back; for an older version, ${REVERT}`,
    );
  }
  if (input.leased.length > 0) {
    throw new RollbackError(
      `${service} uses leased credentials (${input.leased.join(', ')}), which are issued per container: the Swarm target cannot do that (apply refuses them too), so there is no spec of it to go back to. ` +
        `Fix: use a kv or embedded secret for this service, or deploy it with target: 'engine' in ${graph.configFile}`,
    );
  }
  if (!history) throw new RollbackError(`${service} is not deployed on the Swarm (no service ${project}_${service}): nothing to roll back. Fix: waffle apply deploys it`);
  if (input.pin) {
    throw new RollbackError(
      `${service} is rolled back already (pinned since ${input.pin.at}${input.pin.swarm ? ` to ${specText(input.pin.swarm)}` : ''}): Swarm's previous spec is now the newer one it left, so a second rollback would undo the first. ` +
        `Fix: \`waffle rollback --release ${service}\`, then waffle apply, goes forward to the repository's version; for an older version, ${REVERT}`,
    );
  }
  const state = history.updateState;
  if (state === 'updating' || state === 'rollback_started') {
    throw new RollbackError(`Swarm is still ${state === 'updating' ? 'updating' : 'rolling back'} ${service} (${history.name}). Fix: wait until it is done (waffle status), then roll back`);
  }
  if (state === 'rollback_completed' || state === 'rollback_paused') {
    throw new RollbackError(
      `the last change of ${service} was a rollback (Swarm: ${state}${history.updateMessage ? `, ${history.updateMessage}` : ''}): its previous spec is the newer one it left, so rolling back would go forward again. ` +
        `Fix: waffle apply deploys the repository's version; for an older version, ${REVERT}`,
    );
  }
  const previous = history.previous;
  if (!previous) {
    throw new RollbackError(
      `${service} has no previous spec: Swarm keeps one once a service has been updated, and ${history.name} has not been since it was created. Fix: nothing to go back to; to run another version, change its definition and waffle apply`,
    );
  }
  const secrets = observed.swarm?.secrets ?? [];
  const gone = previous.secrets.filter((s) => !secrets.some((o) => o.id === s.id || o.name === s.name)).map((s) => s.name || s.id);
  if (gone.length > 0) {
    throw new RollbackError(
      `the previous spec of ${service} mounts the Swarm secret${gone.length > 1 ? 's' : ''} ${gone.join(', ')}, which no longer exist${gone.length > 1 ? '' : 's'} (a secret rotation removes the old version once the services moved), so Swarm's rollback would fail. ` +
        `Fix: ${REVERT} (the secret's current version is mounted)`,
    );
  }
  const lost = previous.networks.filter((n) => !observed.networks.some((o) => o.id === n || o.name === n));
  if (lost.length > 0) {
    throw new RollbackError(
      `the previous spec of ${service} joins network${lost.length > 1 ? 's' : ''} ${lost.map((n) => n.slice(0, 12)).join(', ')}, which no longer exist${lost.length > 1 ? '' : 's'} (a link was removed since), so Swarm's rollback would fail. Fix: ${REVERT}`,
    );
  }
  const summary = (s: SwarmSpecInfo): SwarmSpecSummary => ({ image: s.image, commit: s.commit, configHash: s.configHash });
  const op: Operation = {
    kind: 'rollback-swarm-service',
    id: `rollback:${service}`,
    after: [],
    causes: [{ kind: 'rollback', detail: `back to the previous spec (${specText(previous)}) from the current one (${specText(history.current)})` }],
    service,
    name: history.name,
    serviceId: history.id,
    version: history.version,
    replicas: previous.replicas,
    to: summary(previous),
    from: summary(history.current),
    deadlineMs: previous.deadlineMs,
    ...(previous.definedAt ? { definedAt: previous.definedAt } : {}),
  };
  return { project, observedFingerprint: swarmFingerprint(observed), operations: [op], unchanged: [] };
}

/** The pin a Swarm rollback records, from its operation. */
export function swarmPinOf(op: Extract<Operation, { kind: 'rollback-swarm-service' }>): SwarmPin {
  return { configHash: op.to.configHash, image: op.to.image, commit: op.to.commit, fromImage: op.from.image, fromCommit: op.from.commit };
}

/** `waffle rollback --list` on Swarm: the current and previous spec (labels only) and when the service last changed. */
export interface SwarmSpecsReport {
  name: string;
  version: number;
  updatedAt?: string;
  updateState?: string;
  current: SwarmSpecSummary;
  previous?: SwarmSpecSummary;
}

export function swarmSpecsReport(h: SwarmServiceHistory): SwarmSpecsReport {
  const summary = (s: SwarmSpecInfo): SwarmSpecSummary => ({ image: s.image, commit: s.commit, configHash: s.configHash });
  return {
    name: h.name,
    version: h.version,
    ...(h.updatedAt ? { updatedAt: h.updatedAt } : {}),
    ...(h.updateState ? { updateState: h.updateState } : {}),
    current: summary(h.current),
    ...(h.previous ? { previous: summary(h.previous) } : {}),
  };
}
