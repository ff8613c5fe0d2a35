/**
 * The steps of a replace and of a rename, as data. No I/O.
 *
 * A new container is created without the service alias: until it is healthy, linked clients resolve
 * the service name to the old container only (the new one is reachable under its temporary name, and
 * reaches its own dependencies). The alias moves in the switch. The old container then loses the alias
 * (its endpoint is re-created without it, and Docker's address allocation usually gives it the same
 * address back, so a request caught in that moment completes after a TCP retransmit), drains, and only
 * then is stopped: no client is sent to a stopping container.
 */
import type { ContainerCreateBody, RestartSpec, ServiceStep } from '../model.ts';

/**
 * How long an old container keeps serving after it lost the alias, before it is stopped (seconds).
 * Clients no longer resolve it; this covers requests already sent to it, including one whose first
 * SYN was lost while its endpoint was re-created (TCP retransmits it after 1 s).
 */
export const DRAIN_SECONDS = 2;

/** How many earlier containers of each service a replace keeps for rollback when the project does not say. */
export const DEFAULT_KEEP = 3;

/** Networks on which `body` gives the container an alias, with those aliases, sorted by network. */
export function aliasNetworks(body: ContainerCreateBody): Array<{ network: string; aliases: string[] }> {
  return Object.entries(body.NetworkingConfig?.EndpointsConfig ?? {})
    .filter(([, cfg]) => (cfg.Aliases ?? []).length > 0)
    .map(([network, cfg]) => ({ network, aliases: [...cfg.Aliases] }))
    .sort((a, b) => (a.network < b.network ? -1 : a.network > b.network ? 1 : 0));
}

/** `body` with no alias on any network: how a replacement is created. */
export function withoutAliases(body: ContainerCreateBody): ContainerCreateBody {
  const endpoints: Record<string, { Aliases: string[] }> = {};
  for (const n of Object.keys(body.NetworkingConfig?.EndpointsConfig ?? {})) endpoints[n] = { Aliases: [] };
  return { ...body, NetworkingConfig: { EndpointsConfig: endpoints } };
}

/** A container that may be serving (stopping it is a Docker call that does something). */
export function isUp(state: string): boolean {
  return state !== 'exited' && state !== 'created' && state !== 'dead';
}

export interface ReplaceStepsInput {
  strategy: 'start-first' | 'stop-first';
  old: { id: string; name: string; state: string };
  tempName: string;
  containerName: string;
  /** The desired body, aliases included. */
  body: ContainerCreateBody;
  waitHealthy: boolean;
  /** Keep the old container, stopped, under this name (for rollback) instead of removing it. */
  keepAs?: string;
  /** Kept containers beyond the number to keep: removed once the new one has its name. */
  prune?: Array<{ id: string; name: string }>;
}

/** The body to create (without aliases), the steps and the rollback of a replace. */
export function replaceSteps(input: ReplaceStepsInput): { body: ContainerCreateBody; steps: ServiceStep[]; rollback: ServiceStep[] } {
  const old = { id: input.old.id, name: input.old.name };
  const oldUp = isUp(input.old.state);
  const nets = aliasNetworks(input.body);
  const bringUp: ServiceStep[] = [
    { step: 'creating', name: input.tempName },
    { step: 'starting', target: 'new' },
    ...(input.waitHealthy ? [{ step: 'waiting-health' as const, target: 'new' as const }] : []),
    ...nets.map((n) => ({ step: 'switching' as const, target: 'new' as const, network: n.network, aliases: n.aliases })),
  ];
  // A kept container must not attract traffic when it is started again: one that still has the alias
  // (it was not serving, or was stopped first) loses it before it is kept.
  const unaliasStopped = (done: boolean): ServiceStep[] =>
    done ? [] : nets.map((n) => ({ step: 'unaliasing-old' as const, target: old, network: n.network, aliases: n.aliases }));
  const finish = (unaliased: boolean): ServiceStep[] => [
    ...(input.keepAs
      ? [...unaliasStopped(unaliased), { step: 'retaining-old' as const, target: old, to: input.keepAs }]
      : [{ step: 'removing-old' as const, target: old }]),
    { step: 'renaming', target: 'new', from: input.tempName, to: input.containerName },
    ...(input.prune ?? []).map((p) => ({ step: 'removing-old' as const, target: { id: p.id, name: p.name } })),
  ];
  if (input.strategy === 'stop-first') {
    return {
      body: withoutAliases(input.body),
      steps: [...(oldUp ? [{ step: 'stopping-old' as const, target: old }] : []), ...bringUp, ...finish(false)],
      rollback: oldUp ? [{ step: 'starting', target: old }] : [],
    };
  }
  const leave: ServiceStep[] = oldUp
    ? [
        ...nets.map((n) => ({ step: 'unaliasing-old' as const, target: old, network: n.network, aliases: n.aliases })),
        ...(nets.length > 0 ? [{ step: 'draining' as const, seconds: DRAIN_SECONDS }] : []),
        { step: 'stopping-old' as const, target: old },
      ]
    : [];
  return { body: withoutAliases(input.body), steps: [...bringUp, ...leave, ...finish(oldUp)], rollback: [] };
}

export interface RenameStepsInput {
  /** The container kept: it has the desired configuration. */
  keep: { id: string; name: string; health: string };
  containerName: string;
  /** The desired body (for the networks that carry the alias). */
  body: ContainerCreateBody;
  /** The other containers of the service: they go. */
  stale: Array<{ id: string; name: string; state: string }>;
  /** Stale containers kept for rollback instead of removed: id → kept name. */
  keepAs?: Record<string, string>;
}

/**
 * Finishing an interrupted replace: wait for the kept container's health if it is still starting, give
 * it the alias, take the alias from stale containers that may serve, drain them, stop and remove them,
 * and rename the kept one.
 */
export function renameSteps(input: RenameStepsInput): ServiceStep[] {
  const keep = { id: input.keep.id, name: input.keep.name };
  const nets = aliasNetworks(input.body);
  const up = input.stale.filter((s) => isUp(s.state)).map((s) => ({ id: s.id, name: s.name }));
  const steps: ServiceStep[] = [];
  if (input.keep.health === 'starting') steps.push({ step: 'waiting-health', target: keep });
  for (const n of nets) steps.push({ step: 'switching', target: keep, network: n.network, aliases: n.aliases });
  for (const s of up) for (const n of nets) steps.push({ step: 'unaliasing-old', target: s, network: n.network, aliases: n.aliases });
  if (up.length > 0 && nets.length > 0) steps.push({ step: 'draining', seconds: DRAIN_SECONDS });
  for (const s of up) steps.push({ step: 'stopping-old', target: s });
  for (const s of input.stale) {
    const to = input.keepAs?.[s.id];
    if (to === undefined) steps.push({ step: 'removing-old', target: { id: s.id, name: s.name } });
    else {
      // A stale container that was not serving still has the alias: it loses it before it is kept.
      if (!isUp(s.state)) for (const n of nets) steps.push({ step: 'unaliasing-old', target: { id: s.id, name: s.name }, network: n.network, aliases: n.aliases });
      steps.push({ step: 'retaining-old', target: { id: s.id, name: s.name }, to });
    }
  }
  if (input.keep.name !== input.containerName) steps.push({ step: 'renaming', target: keep, from: input.keep.name, to: input.containerName });
  return steps;
}

export interface RollbackStepsInput {
  strategy: 'start-first' | 'stop-first';
  /** The kept container that serves again, with the restart policy it had before it was kept. */
  target: { id: string; name: string; restart: RestartSpec };
  /** The container serving now, if any: kept in its turn under `keepAs`. */
  current?: { id: string; name: string; state: string };
  keepAs?: string;
  containerName: string;
  /** Link networks on which the service has its alias, with the aliases (from the target's endpoints). */
  networks: Array<{ network: string; aliases: string[] }>;
  /** Kept containers beyond the number to keep afterwards: removed at the end. */
  prune?: Array<{ id: string; name: string }>;
}

/**
 * The steps of a rollback: the replace sequence with a kept container as the new one. Its restart policy
 * comes back, it starts and must become healthy, takes the service alias (the switch), the current one
 * leaves the alias, drains, stops and is kept in its turn, and the target takes the canonical name. No
 * create, so no pull. On a failure up to the switch the target is stopped and kept again (stop-first:
 * the current one is started again).
 */
export function rollbackSteps(input: RollbackStepsInput): { steps: ServiceStep[]; rollback: ServiceStep[] } {
  const target = { id: input.target.id, name: input.target.name };
  const cur = input.current ? { id: input.current.id, name: input.current.name } : undefined;
  const curUp = !!input.current && isUp(input.current.state);
  const nets = [...input.networks].sort((a, b) => (a.network < b.network ? -1 : a.network > b.network ? 1 : 0));
  const bringUp: ServiceStep[] = [
    ...(input.target.restart.name !== 'no' ? [{ step: 'restoring' as const, target, restart: input.target.restart }] : []),
    { step: 'starting', target },
    { step: 'waiting-health', target },
    ...nets.map((n) => ({ step: 'switching' as const, target, network: n.network, aliases: n.aliases })),
  ];
  const undo: ServiceStep[] = [
    { step: 'stopping-old', target },
    { step: 'retaining-old', target, to: input.target.name },
  ];
  const keepCurrent = (unaliased: boolean): ServiceStep[] => {
    if (!cur) return [];
    const unalias = unaliased ? [] : nets.map((n) => ({ step: 'unaliasing-old' as const, target: cur, network: n.network, aliases: n.aliases }));
    return input.keepAs ? [...unalias, { step: 'retaining-old' as const, target: cur, to: input.keepAs }] : [{ step: 'removing-old' as const, target: cur }];
  };
  const finish = (unaliased: boolean): ServiceStep[] => [
    ...keepCurrent(unaliased),
    { step: 'renaming', target, from: input.target.name, to: input.containerName },
    ...(input.prune ?? []).map((p) => ({ step: 'removing-old' as const, target: { id: p.id, name: p.name } })),
  ];
  if (input.strategy === 'stop-first' && cur) {
    return {
      steps: [...(curUp ? [{ step: 'stopping-old' as const, target: cur }] : []), ...bringUp, ...finish(false)],
      rollback: [...undo, ...(curUp ? [{ step: 'starting' as const, target: cur }] : [])],
    };
  }
  const leave: ServiceStep[] = curUp
    ? [
        ...nets.map((n) => ({ step: 'unaliasing-old' as const, target: cur!, network: n.network, aliases: n.aliases })),
        ...(nets.length > 0 ? [{ step: 'draining' as const, seconds: DRAIN_SECONDS }] : []),
        { step: 'stopping-old' as const, target: cur! },
      ]
    : [];
  return { steps: [...bringUp, ...leave, ...finish(curUp)], rollback: undo };
}
