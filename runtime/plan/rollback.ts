/**
 * `waffle rollback` as a plan: which kept container serves a service again, and the one operation that
 * switches to it. PURE: observed data and the target's endpoints in, a Plan out (or a RollbackError that
 * says why not and what to run instead).
 *
 * The operation is the replace sequence with an existing container in the place of a new one (see
 * steps.ts `rollbackSteps`): no create, so no image pull; the same health gate and switch.
 */
import { isKept, names } from '../labels.ts';
import type { ObservedContainer, ObservedState, Operation, Plan, ServiceGraph } from '../model.ts';
import { observedFingerprint } from './reconcile.ts';
import { DEFAULT_KEEP, rollbackSteps } from './steps.ts';

/** A rollback that cannot be made: the message names the service, the reason and the fix. */
export class RollbackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RollbackError';
  }
}

export interface Generations {
  /** The container that serves the service now (canonical name), if any. */
  current?: ObservedContainer;
  /** Containers kept for rollback, newest generation first. */
  kept: ObservedContainer[];
}

/** A service's current container and its kept ones, from observed state. */
export function generationsOf(observed: ObservedState, service: string): Generations {
  const project = observed.project;
  const mine = observed.containers.filter((c) => c.service === service);
  const kept = mine.filter((c) => isKept(c, project)).sort((a, b) => b.generation - a.generation);
  const current = mine.find((c) => c.name === names.container(project, service));
  return { ...(current ? { current } : {}), kept };
}

/**
 * The kept container to switch to: generation `to`, else the newest one older than the current one.
 * Throws a RollbackError naming what is kept.
 */
export function rollbackTarget(observed: ObservedState, service: string, to?: number): ObservedContainer {
  const { current, kept } = generationsOf(observed, service);
  const list = kept.length ? kept.map((c) => c.generation).join(', ') : 'none';
  const fixList = `see them with \`waffle rollback --list ${service}\``;
  if (to !== undefined) {
    if (current && current.generation === to) throw new RollbackError(`generation ${to} already serves ${service}: nothing to roll back to. Fix: choose another generation (kept: ${list}); ${fixList}`);
    const hit = kept.find((c) => c.generation === to);
    if (!hit) throw new RollbackError(`generation ${to} of ${service} is not kept (kept: ${list}). Fix: choose a kept generation; ${fixList}`);
    return hit;
  }
  if (kept.length === 0) {
    throw new RollbackError(
      `${service} has no kept container to roll back to: a replace keeps the earlier ones (rollback.keep in the project configuration, default ${DEFAULT_KEEP}). Fix: deploy a new version first, or set rollback.keep above 0`,
    );
  }
  const older = current ? kept.find((c) => c.generation < current.generation) : kept[0];
  if (!older) {
    throw new RollbackError(`${service} has no kept generation older than the current one (${current!.generation}); kept: ${list}. Fix: name one with --to, e.g. \`waffle rollback ${service} --to ${kept[0]!.generation}\``);
  }
  return older;
}

export interface RollbackPlanInput {
  graph: Pick<ServiceGraph, 'project' | 'rollback'>;
  observed: ObservedState;
  service: string;
  target: ObservedContainer;
  /** The target's networks, from its endpoints (inspect): the service alias goes on each but the default one. */
  targetNetworks: string[];
  /** Host ports the target publishes (inspect `HostConfig.PortBindings`): when the current container holds one, it is stopped first. */
  targetHostPorts: Array<{ host: number; protocol: string }>;
}

/** The plan of one rollback: one `rollback-service` operation. */
export function planRollback(input: RollbackPlanInput): Plan {
  const { graph, observed, service, target } = input;
  const project = graph.project;
  const { current, kept } = generationsOf(observed, service);
  const keepN = graph.rollback?.keep ?? DEFAULT_KEEP;
  const canonical = names.container(project, service);

  // What is kept afterwards: the newest `keepN` of the other kept containers and the current one.
  const others = kept.filter((c) => c.id !== target.id);
  const candidates = current && current.generation > 0 ? [current] : [];
  const ranked = [...others, ...candidates].sort((a, b) => b.generation - a.generation);
  const stays = new Set(ranked.slice(0, keepN));
  const keepAs = current && stays.has(current) ? names.keptContainer(project, service, current.generation) : undefined;
  const prune = others.filter((c) => !stays.has(c)).map((c) => ({ id: c.id, name: c.name }));

  const held = input.targetHostPorts.filter((w) => current?.ports.some((p) => p.host === w.host && (p.protocol ?? 'tcp') === w.protocol));
  const stopFirst = held.length > 0 && current !== undefined;
  const strategyReason = stopFirst ? `fixed host port${held.length > 1 ? 's' : ''} ${held.map((p) => `${p.host}/${p.protocol}`).join(', ')}` : 'no fixed host port held by the current container';

  const defaultNet = names.defaultNetwork(project);
  const networks = [...input.targetNetworks]
    .filter((n) => n !== defaultNet)
    .sort()
    .map((network) => ({ network, aliases: [service] }));
  const planned = rollbackSteps({
    strategy: stopFirst ? 'stop-first' : 'start-first',
    target: { id: target.id, name: target.name, restart: target.restart },
    ...(current ? { current: { id: current.id, name: current.name, state: current.state } } : {}),
    ...(keepAs ? { keepAs } : {}),
    containerName: canonical,
    networks,
    prune,
  });
  const op: Operation = {
    kind: 'rollback-service',
    id: `rollback:${service}`,
    after: [],
    causes: [
      {
        kind: 'rollback',
        detail: `back to generation ${target.generation} (${target.image}, commit ${target.commit || 'unknown'})${current ? ` from generation ${current.generation} (${current.image})` : ''}`,
      },
    ],
    service,
    strategy: stopFirst ? 'stop-first' : 'start-first',
    strategyReason,
    targetId: target.id,
    targetName: target.name,
    generation: target.generation,
    ...(current ? { currentId: current.id, currentName: current.name, currentGeneration: current.generation } : {}),
    containerName: canonical,
    steps: planned.steps,
    rollback: planned.rollback,
  };
  return { project, observedFingerprint: observedFingerprint(observed, project), operations: [op], unchanged: [] };
}
