/**
 * The planner: desired (ServiceGraph) × observed (ObservedState) → Plan. PURE: no I/O, no clock, no
 * randomness; the same input always gives the same plan. Modelled on docker/compose `reconcile.go`.
 *
 * Recreation is decided by the config-hash label alone; the per-part label only explains WHY.
 */
import { isKept, LABEL, names } from '../labels.ts';
import type {
  Cause,
  ObservedContainer,
  ObservedState,
  Operation,
  PinLine,
  Plan,
  PortBinding,
  ResourcesSpec,
  RestartSpec,
  ServiceGraph,
  ServiceSpec,
  SwarmPin,
} from '../model.ts';
import { canonicalJson, sha256Hex } from './canonical.ts';
import { changedSecretStrings, configHash, configPartHashes, containerBody, definitionHash, parsePartsLabel, secretValueLabel, type HashExtra } from './container.ts';
import { desiredNetworks, isRouted, serviceNetworks } from './network.ts';
import { proxyCauses, proxyTable } from './proxy.ts';
import { DEFAULT_KEEP, renameSteps, replaceSteps } from './steps.ts';

export interface ReconcileOptions {
  /** Commit the desired state comes from (labelled on new containers). */
  commit: string;
  /** Per service: keyed hash of its secret values (never the values). */
  secretsDigests?: Record<string, string>;
  /** Per service: keyed hash of its dynamic-credential lease markers (secrets/leases.ts). */
  credentialsDigests?: Record<string, string>;
  /** Per service, per `secretString` variable: keyed hash of its parts' values (container.ts `envDigests`). */
  secretEnvDigests?: Record<string, Record<string, string>>;
  /** Services in maintenance → the page the proxy answers with (503). */
  maintenance?: Record<string, string>;
  /**
   * Rollback pins (runtime/pins.ts), per service: the generation `waffle rollback` switched to and the
   * service's definition hash at that time. Read like observed state; the plan holds or drops each.
   */
  pins?: Record<string, PinInput>;
}

/** What the planner needs of a rollback pin. */
export interface PinInput {
  generation: number;
  /** {@link definitionHash} of the service when it was pinned. */
  definitionHash: string;
  /** A pin of the Swarm target (the spec Swarm's rollback went back to); read by the Swarm planner only. */
  swarm?: SwarmPin;
}

/** Default grace for containers whose spec we no longer have (removed services). */
const DEFAULT_STOP_TIMEOUT = 10;

/** Short part hash of "no secrets" (what the label holds when a service used none). */
const NO_SECRETS = sha256Hex(canonicalJson(null)).slice(0, 8);

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function reconcile(graph: ServiceGraph, observed: ObservedState, opts: ReconcileOptions): Plan {
  const project = graph.project;
  const ops: Operation[] = [];
  const unchanged: string[] = [];
  const pinLines: PinLine[] = [];
  const keepN = graph.rollback?.keep ?? DEFAULT_KEEP;

  // Only what carries our project label is ours to touch.
  const ours = <T extends { labels: Record<string, string> }>(x: T) => x.labels?.[LABEL.project] === project;
  const containers = observed.containers.filter(ours);

  // ── images ──
  const imageIds = normalisedImageIds(observed.imageIds);
  const pullOp = new Map<string, string>();
  for (const image of [...new Set(graph.order.map((n) => graph.services[n]!.image))].sort(cmp)) {
    if (imagePresent(image, observed.images)) continue;
    const id = `pull:${image}`;
    pullOp.set(image, id);
    ops.push({ kind: 'pull-image', id, after: [], causes: [{ kind: 'missing-image', detail: 'not present on the host' }], image });
  }

  // ── networks and volumes ──
  const observedNetworkNames = new Set(observed.networks.map((n) => n.name));
  const networkOp = new Map<string, string>();
  const wantedNetworks = desiredNetworks(graph);
  for (const body of wantedNetworks) {
    if (observedNetworkNames.has(body.Name)) continue;
    const id = `network:${body.Name}`;
    networkOp.set(body.Name, id);
    ops.push({ kind: 'create-network', id, after: [], causes: [{ kind: 'missing', detail: 'missing' }], network: body.Name, body });
  }
  const observedVolumeNames = new Set(observed.volumes.map((v) => v.name));
  const volumeOp = new Map<string, string>();
  for (const short of graph.volumes) {
    const name = names.volume(project, short);
    if (observedVolumeNames.has(name)) continue;
    const id = `volume:${name}`;
    volumeOp.set(name, id);
    ops.push({
      kind: 'create-volume',
      id,
      after: [],
      causes: [{ kind: 'missing', detail: 'missing' }],
      volume: name,
      labels: { [LABEL.project]: project, [LABEL.role]: 'volume' },
    });
  }

  // ── services ──
  // Containers kept for rollback are never a service's current container: they are only counted for the
  // next generation number, pruned beyond the number to keep, and switched to by `waffle rollback`.
  const byService = new Map<string, ObservedContainer[]>();
  const keptOf = new Map<string, ObservedContainer[]>();
  for (const c of containers) {
    const into = isKept(c, project) ? keptOf : byService;
    const list = into.get(c.service) ?? [];
    list.push(c);
    into.set(c.service, list);
  }

  /** Service → ids of its ops that bring it up (what dependants wait for). */
  const serviceOps = new Map<string, string[]>();
  const removalOps: Array<{ id: string; container: ObservedContainer }> = [];
  /** Replacements, with the container they take away. */
  const replaceOps: Array<{ id: string; container: ObservedContainer; svc: ServiceSpec }> = [];
  /** Ops that start a container, with the ids they must wait for besides infrastructure. */
  const startingOps: Array<{ op: Operation & { service: string }; svc: ServiceSpec }> = [];
  /** Services with nothing to do → the container kept for them. */
  const idle = new Map<string, ObservedContainer>();

  const removeOp = (c: ObservedContainer, cause: Cause, stopTimeout: number): Operation & { kind: 'remove-service' } => {
    const op = {
      kind: 'remove-service' as const,
      id: `remove:${c.name}`,
      after: [],
      causes: [cause],
      service: c.service,
      containerId: c.id,
      containerName: c.name,
      stopTimeout,
    };
    removalOps.push({ id: op.id, container: c });
    return op;
  };

  /**
   * Which kept containers stay when `candidates` (containers this plan is about to keep) join `kept`:
   * the `keepN` of highest generation. Returns the kept name of each candidate that stays, and the
   * kept containers that go.
   */
  const retention = (service: string, kept: ObservedContainer[], candidates: ObservedContainer[]) => {
    const keptNames = new Set(kept.map((c) => c.name));
    const eligible = candidates.filter((c) => c.generation > 0 && c.state !== 'dead' && !keptNames.has(names.keptContainer(project, service, c.generation)));
    const ranked = [...kept, ...eligible].sort((a, b) => b.generation - a.generation || cmp(a.name, b.name));
    const stays = new Set(ranked.slice(0, keepN));
    const keepAs: Record<string, string> = {};
    for (const c of eligible) if (stays.has(c)) keepAs[c.id] = names.keptContainer(project, service, c.generation);
    return { keepAs, prune: kept.filter((c) => !stays.has(c)) };
  };
  /** Kept containers beyond the number to keep, when no replace of their service prunes them. */
  const pruneOps = (service: string, prune: ObservedContainer[], after: string[]) => {
    for (const c of prune) {
      const op = removeOp(c, { kind: 'retention', detail: `kept generation ${c.generation}: beyond the ${keepN} kept for rollback` }, 0);
      op.after = [...after];
      ops.push(op);
    }
  };

  for (const name of graph.order) {
    const svc = graph.services[name]!;
    const kept = keptOf.get(name) ?? [];
    const extra: HashExtra = {
      ...(opts.secretsDigests?.[name] !== undefined ? { secretsDigest: opts.secretsDigests[name] } : {}),
      ...(opts.credentialsDigests?.[name] !== undefined ? { credentialsDigest: opts.credentialsDigests[name] } : {}),
      ...(opts.secretEnvDigests?.[name] !== undefined ? { envDigests: opts.secretEnvDigests[name] } : {}),
    };
    const canonicalName = names.container(project, name);
    const existing = byService.get(name) ?? [];
    const waitHealthy = svc.healthcheck !== undefined;
    // A service behind the Caddy proxy: its container is routed to once it passed its health gate.
    const route = graph.ingress?.provider === 'caddy' && isRouted(svc) ? { network: names.ingressNetwork(project) } : undefined;

    // ── a service pinned by a rollback: left alone while its definition is the one it was pinned under ──
    const pin = opts.pins?.[name];
    let unpinned: Cause | undefined;
    if (pin) {
      const pinned = [...existing, ...kept].find((c) => c.generation === pin.generation);
      const why =
        definitionHash(graph, svc) !== pin.definitionHash
          ? 'the definition changed since the rollback'
          : !pinned
            ? `generation ${pin.generation} has no container any more`
            : isKept(pinned, project) && pinned.state !== 'running'
              ? `generation ${pin.generation} is not running (an interrupted rollback)`
              : undefined;
      if (why) {
        unpinned = { kind: 'pin', detail: `pin to generation ${pin.generation} dropped: ${why}` };
        pinLines.push({ service: name, generation: pin.generation, state: 'dropped', detail: unpinned.detail });
      } else {
        pinLines.push({ service: name, generation: pin.generation, state: 'held', detail: `pinned by rollback to generation ${pin.generation} (waffle rollback --release ${name})` });
        const held = pinned!;
        const others = existing.filter((c) => c !== held);
        const ids: string[] = [];
        if (held.name !== canonicalName && held.state === 'running') {
          // A rollback interrupted after its switch: finish it (alias, the others out, the canonical name).
          const { keepAs, prune } = retention(name, kept.filter((c) => c !== held), others);
          const op = {
            kind: 'rename-service' as const,
            id: `rename:${name}`,
            after: [] as string[],
            causes: [
              { kind: 'pin', detail: `running as ${held.name}, pinned to generation ${pin.generation} by a rollback` },
              ...others.map((c) => ({ kind: 'duplicate', detail: `stale ${c.name} (${c.state})` })),
            ],
            service: name,
            containerId: held.id,
            currentName: held.name,
            containerName: canonicalName,
            steps: renameSteps({
              keep: held,
              containerName: canonicalName,
              body: containerBody(graph, svc, { commit: opts.commit, generation: held.generation, ...extra }),
              stale: others,
              keepAs,
              ...(route ? { route, drainSeconds: graph.ingress!.drainSeconds } : {}),
            }),
          };
          ops.push(op);
          ids.push(op.id);
          for (const c of others) removalOps.push({ id: op.id, container: c });
          pruneOps(name, prune, [op.id]);
        } else {
          for (const c of others) {
            const op = removeOp(c, { kind: 'duplicate', detail: `duplicate ${c.name}` }, svc.stopGraceSeconds);
            ops.push(op);
            ids.push(op.id);
          }
          pruneOps(name, retention(name, kept, []).prune, []);
          if (held.state === 'created' || held.state === 'exited') {
            const op = {
              kind: 'start-service' as const,
              id: `start:${name}`,
              after: [...ids],
              causes: [{ kind: 'stopped', detail: `stopped: ${held.state} (pinned to generation ${pin.generation})` }],
              service: name,
              containerId: held.id,
              waitHealthy: false,
              ...(route ? { route } : {}),
            };
            ops.push(op);
            ids.push(op.id);
          }
        }
        if (ids.length > 0) serviceOps.set(name, ids);
        else {
          idle.set(name, held);
          unchanged.push(name);
        }
        continue;
      }
    }

    // Kept containers count: a new generation never takes the number (and kept name) of one of them.
    const generation = Math.max(0, ...existing.map((c) => c.generation || 0), ...kept.map((c) => c.generation)) + 1;

    if (existing.length === 0) {
      const op = {
        kind: 'create-service' as const,
        id: `create:${name}`,
        after: [] as string[],
        causes: [{ kind: 'new', detail: 'new' }, ...(unpinned ? [unpinned] : [])],
        service: name,
        containerName: canonicalName,
        body: containerBody(graph, svc, { commit: opts.commit, generation, ...extra }),
        waitHealthy,
        ...(route ? { route } : {}),
      };
      ops.push(op);
      pruneOps(name, retention(name, kept, []).prune, []);
      startingOps.push({ op, svc });
      serviceOps.set(name, [op.id]);
      continue;
    }

    // Which container to keep when a crash left several: see keepRank. A kept container that already has the
    // desired configuration but not the canonical name (a replace interrupted after its create) is finished
    // by a rename-service, which also takes the others away in a safe order; otherwise the others go first.
    const desiredHash = configHash(graph, svc, extra);
    const sorted = [...existing].sort((a, b) => keepRank(b, canonicalName, desiredHash) - keepRank(a, canonicalName, desiredHash) || b.createdAt - a.createdAt || cmp(a.name, b.name));
    const keep = sorted[0]!;
    let finishes = keep.name !== canonicalName && keepRank(keep, canonicalName, desiredHash) >= KEEP_MATCHING;
    const duplicateIds: string[] = [];
    const removeDuplicates = () => {
      for (const c of sorted) {
        if (c === keep) continue;
        const op = removeOp(c, { kind: 'duplicate', detail: `duplicate ${c.name}` }, svc.stopGraceSeconds);
        ops.push(op);
        duplicateIds.push(op.id);
      }
    };
    if (!finishes) removeDuplicates();

    const inPlace = inPlaceDiff(keep, svc);
    const causes: Cause[] = [];
    if (keep.configHash !== desiredHash) causes.push(...changedParts(graph, svc, extra, keep));
    const imageMoved = imageIdCause(svc, keep, imageIds);
    if (imageMoved && !causes.some((c) => c.kind === 'image')) causes.push(imageMoved);
    if (keep.name !== canonicalName && !finishes) causes.push({ kind: 'name', detail: `running as ${keep.name}` });
    if (keep.state === 'dead') causes.push({ kind: 'state', detail: 'container is dead' });
    if (inPlace.unsettable) causes.push(...inPlace.causes.map((c) => ({ ...c, detail: `${c.detail} (cannot be unset in place)` })));

    if (finishes && causes.length > 0) {
      // The kept container must be recreated after all: the others go first, as for any replace.
      finishes = false;
      causes.push({ kind: 'name', detail: `running as ${keep.name}` });
      removeDuplicates();
    }

    if (causes.length > 0) {
      if (!inPlace.unsettable) causes.push(...inPlace.causes);
      if (unpinned) causes.unshift(unpinned);
      // The new container cannot overlap the old one only when the old one holds a host port the new one
      // wants (a service that gains a fixed port, or moves to another one, still replaces start-first). A
      // restarting container lists no ports between its restarts, but gets them back: treat it as holding them.
      const fixed = svc.ports.filter((p) => p.host !== undefined);
      const fixedText = `fixed host port${fixed.length > 1 ? 's' : ''} ${fixed.map((p) => `${p.host}/${p.protocol}`).join(', ')}`;
      const stopFirst = fixed.length > 0 && (holdsHostPort(keep, fixed) || keep.state === 'restarting');
      const tempName = names.tempContainer(project, name, generation);
      // The old container is kept, stopped, for rollback (when it is among the newest to keep).
      const { keepAs, prune } = retention(name, kept, [keep]);
      const planned = replaceSteps({
        strategy: stopFirst ? 'stop-first' : 'start-first',
        old: keep,
        tempName,
        containerName: canonicalName,
        body: containerBody(graph, svc, { commit: opts.commit, generation, ...extra }),
        waitHealthy,
        ...(keepAs[keep.id] ? { keepAs: keepAs[keep.id] } : {}),
        prune,
        ...(route ? { route, drainSeconds: graph.ingress!.drainSeconds } : {}),
      });
      const op = {
        kind: 'replace-service' as const,
        id: `replace:${name}`,
        after: [...duplicateIds],
        causes,
        service: name,
        strategy: stopFirst ? ('stop-first' as const) : ('start-first' as const),
        strategyReason: stopFirst
          ? fixedText
          : fixed.length > 0
            ? `${fixedText} not held by ${keep.name}`
            : 'no fixed host port',
        oldContainerId: keep.id,
        oldContainerName: keep.name,
        containerName: canonicalName,
        tempName,
        body: planned.body,
        waitHealthy,
        steps: planned.steps,
        rollback: planned.rollback,
      };
      ops.push(op);
      startingOps.push({ op, svc });
      replaceOps.push({ id: op.id, container: keep, svc });
      serviceOps.set(name, [op.id]);
      continue;
    }

    const ids: string[] = [];
    if (finishes) {
      const stale = sorted.filter((c) => c !== keep);
      const { keepAs, prune } = retention(name, kept, stale);
      const op = {
        kind: 'rename-service' as const,
        id: `rename:${name}`,
        after: [] as string[],
        causes: [
          { kind: 'name', detail: `running as ${keep.name}, already with the desired configuration` },
          ...stale.map((c) => ({ kind: 'duplicate', detail: `stale ${c.name} (${c.state})` })),
        ],
        service: name,
        containerId: keep.id,
        currentName: keep.name,
        containerName: canonicalName,
        steps: renameSteps({
          keep,
          containerName: canonicalName,
          body: containerBody(graph, svc, { commit: opts.commit, generation, ...extra }),
          stale,
          keepAs,
          ...(route ? { route, drainSeconds: graph.ingress!.drainSeconds } : {}),
        }),
      };
      ops.push(op);
      ids.push(op.id);
      pruneOps(name, prune, [op.id]);
      duplicateIds.push(op.id);
      for (const c of stale) removalOps.push({ id: op.id, container: c });
    } else pruneOps(name, retention(name, kept, []).prune, []);
    if (inPlace.causes.length > 0) {
      const op = {
        kind: 'update-service' as const,
        id: `update:${name}`,
        after: [...duplicateIds],
        causes: inPlace.causes,
        service: name,
        containerId: keep.id,
        update: inPlace.update,
      };
      ops.push(op);
      ids.push(op.id);
    }
    if (keep.state === 'created' || keep.state === 'exited') {
      const op = {
        kind: 'start-service' as const,
        id: `start:${name}`,
        after: [...duplicateIds, ...ids],
        causes: [{ kind: 'stopped', detail: `stopped: ${keep.state}` }],
        service: name,
        containerId: keep.id,
        waitHealthy,
        ...(route ? { route } : {}),
      };
      ops.push(op);
      startingOps.push({ op, svc });
      ids.push(op.id);
    }
    if (ids.length > 0) serviceOps.set(name, ids);
    else {
      idle.set(name, keep);
      if (duplicateIds.length === 0) unchanged.push(name);
    }
  }

  // ── dependencies that must be healthy, have nothing to do, and are not healthy now ──
  // A service that (re)starts waits for them as compose does: a start-service of the running container
  // (Docker answers 304) gated on its health. Only for services that (re)start, so a no-op stays a no-op.
  const gated = new Set<string>();
  for (const { svc } of [...startingOps]) {
    for (const dep of svc.dependsOn) {
      const c = idle.get(dep.service);
      const depSvc = graph.services[dep.service];
      if (dep.condition !== 'healthy' || !c || !depSvc?.healthcheck || c.health === 'healthy' || gated.has(dep.service)) continue;
      if (c.state !== 'running') continue;
      gated.add(dep.service);
      const op = {
        kind: 'start-service' as const,
        id: `start:${dep.service}`,
        after: [] as string[],
        causes: [{ kind: 'dependency-health', detail: `${c.health === 'none' ? 'health unknown' : c.health}; ${svc.name} waits until it is healthy` }],
        service: dep.service,
        containerId: c.id,
        waitHealthy: true,
      };
      ops.push(op);
      startingOps.push({ op, svc: depSvc });
      serviceOps.set(dep.service, [op.id]);
      const u = unchanged.indexOf(dep.service);
      if (u >= 0) unchanged.splice(u, 1);
    }
  }

  // ── removed services ──
  for (const c of [...containers].sort((a, b) => cmp(a.service, b.service) || cmp(a.name, b.name))) {
    if (graph.services[c.service]) continue;
    ops.push(removeOp(c, { kind: 'removed', detail: 'removed' }, DEFAULT_STOP_TIMEOUT));
  }

  // ── the proxy: the project's routes as the desired state says, checked against what the proxy holds ──
  const table = proxyTable(graph, observed, ops, opts.maintenance ?? {});
  if (table) {
    const causes = proxyCauses(table, observed.proxy);
    if (causes.length > 0) {
      const id = `proxy:${project}`;
      ops.push({ kind: 'configure-proxy', id, after: [], causes, provider: 'caddy' });
      // Routes of removed services leave the proxy before their containers go.
      for (const r of removalOps) if (!graph.services[r.container.service]) ops.find((o) => o.id === r.id)?.after.push(id);
    }
  }

  // ── ordering: infrastructure, freed host ports, dependencies ──
  for (const { op, svc } of startingOps) {
    const after = new Set(op.after);
    const pull = pullOp.get(svc.image);
    if (pull) after.add(pull);
    for (const n of serviceNetworks(graph, svc)) {
      const id = networkOp.get(n);
      if (id) after.add(id);
    }
    for (const m of svc.mounts) {
      const id = m.type === 'volume' ? volumeOp.get(m.source) : undefined;
      if (id) after.add(id);
    }
    for (const r of removalOps) {
      if (r.container.service !== svc.name && holdsHostPort(r.container, svc.ports)) after.add(r.id);
    }
    // A host port another service gives up by its replacement: wait until its old container is gone. (Two
    // services swapping ports would wait for each other; that cannot be ordered, and is left to fail at start.)
    const mine = containers.filter((c) => c.service === svc.name);
    for (const r of replaceOps) {
      if (r.svc.name === svc.name || !holdsHostPort(r.container, svc.ports)) continue;
      if (mine.some((c) => holdsHostPort(c, r.svc.ports))) continue;
      after.add(r.id);
    }
    for (const id of dependencyOps(graph, svc.name, serviceOps)) after.add(id);
    op.after = [...after].filter((id) => id !== op.id);
  }

  // Unwanted project networks go last, after every container that might still use them is gone.
  const wantedNames = new Set(wantedNetworks.map((n) => n.Name));
  const containerGone = ops.filter((o) => o.kind === 'remove-service' || o.kind === 'replace-service' || o.kind === 'rename-service').map((o) => o.id);
  for (const n of [...observed.networks].filter(ours).sort((a, b) => cmp(a.name, b.name))) {
    if (wantedNames.has(n.name)) continue;
    ops.push({
      kind: 'remove-network',
      id: `remove-network:${n.name}`,
      after: [...containerGone],
      causes: [{ kind: 'removed', detail: 'no longer used' }],
      network: n.name,
    });
  }

  // ── deterministic order: phase, then graph order, then id ──
  const orderIndex = new Map(graph.order.map((n, i) => [n, i]));
  const rank = (o: Operation): [number, number, string] => {
    switch (o.kind) {
      case 'pull-image':
        return [0, 0, o.id];
      case 'create-volume':
      case 'create-network':
      case 'configure-proxy':
        return [1, 0, o.id];
      case 'remove-service':
        return graph.services[o.service] ? [2, orderIndex.get(o.service)!, o.id] : [4, 0, `${o.service}\0${o.id}`];
      case 'remove-network':
        return [5, 0, o.id];
      default:
        // Only this planner's own service operations reach here (the Swarm target plans its own kinds).
        return [3, orderIndex.get((o as { service: string }).service)!, `${o.kind === 'start-service' ? 1 : 0}${o.id}`];
    }
  };
  ops.sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    return ra[0] - rb[0] || ra[1] - rb[1] || cmp(ra[2], rb[2]);
  });
  for (const o of ops) o.after.sort(cmp);

  return {
    project,
    observedFingerprint: observedFingerprint(observed, project),
    operations: ops,
    unchanged: unchanged.sort(cmp),
    ...(pinLines.length > 0 ? { pins: pinLines.sort((a, b) => cmp(a.service, b.service)) } : {}),
    ...(table ? { proxy: table } : {}),
  };
}

/** sha256 over what the plan's decisions rest on: our containers (id, hash, state, name), networks, volumes. */
export function observedFingerprint(observed: ObservedState, project: string = observed.project): string {
  const containers = observed.containers
    .filter((c) => c.labels?.[LABEL.project] === project)
    .map((c) => [c.id, c.configHash, c.state, c.name])
    .sort((a, b) => cmp(a.join('\0'), b.join('\0')));
  return sha256Hex(
    canonicalJson({
      project,
      containers,
      networks: observed.networks.map((n) => n.name).sort(cmp),
      volumes: observed.volumes.map((v) => v.name).sort(cmp),
    }),
  );
}

/** Whether `image` is among the engine's references (Docker shortens `docker.io/library/x` to `x`, and `x` means `x:latest`). */
export function imagePresent(image: string, images: readonly string[]): boolean {
  const have = new Set(images.map(normaliseImage));
  return have.has(normaliseImage(image));
}

/** Observed image IDs keyed by normalised reference (see {@link normaliseImage}). */
function normalisedImageIds(ids: Record<string, string> | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const [ref, id] of Object.entries(ids ?? {})) out.set(normaliseImage(ref), id);
  return out;
}

/**
 * The reference now names another image than the one the container was created from (a tag re-pushed and
 * pulled): the config hash covers the reference only, so this is what redeploys it. Unknown either way
 * (image not present, no image ID listed): no cause, the config hash decides alone.
 */
function imageIdCause(svc: ServiceSpec, c: ObservedContainer, imageIds: Map<string, string>): Cause | undefined {
  const now = imageIds.get(normaliseImage(svc.image));
  if (!now || !c.imageId || now === c.imageId) return undefined;
  return { kind: 'image', detail: `${svc.image} ${shortImageId(c.imageId)} → ${shortImageId(now)}` };
}

/** `sha256:1a2b3c4d…`: the algorithm and the first 8 hex digits. */
function shortImageId(id: string): string {
  const [algo, hex] = id.includes(':') ? id.split(':', 2) : ['sha256', id];
  return `${algo}:${hex!.slice(0, 8)}…`;
}

function normaliseImage(ref: string): string {
  let r = ref.replace(/^docker\.io\/library\//, '').replace(/^docker\.io\//, '').replace(/^index\.docker\.io\/library\//, '');
  if (!r.includes('@')) {
    const last = r.slice(r.lastIndexOf('/') + 1);
    if (!last.includes(':')) r += ':latest';
  }
  return r;
}

/** Op ids of the services `name` depends on; through services without ops to their own dependencies. */
function dependencyOps(graph: ServiceGraph, name: string, serviceOps: Map<string, string[]>): string[] {
  const out = new Set<string>();
  const seen = new Set<string>([name]);
  const visit = (svcName: string) => {
    for (const dep of graph.services[svcName]?.dependsOn ?? []) {
      if (seen.has(dep.service)) continue;
      seen.add(dep.service);
      const ids = serviceOps.get(dep.service);
      if (ids) ids.forEach((id) => out.add(id));
      else visit(dep.service);
    }
  };
  visit(name);
  return [...out];
}

/** keepRank at or above this: the container has the desired configuration and is running (healthy or getting there). */
const KEEP_MATCHING = 8;

/**
 * Which of a service's containers to keep, highest first (ties: the newest). A replace interrupted by a
 * crash leaves the old container (canonical name, maybe stopped: Docker finishes a stop it was asked
 * for) and the new one (temporary name, running, with the desired config hash): keep the one that is
 * already what is wanted and running, not merely the one with the canonical name. Then: running, then
 * the canonical name.
 */
function keepRank(c: ObservedContainer, canonicalName: string, desiredHash: string): number {
  const running = c.state === 'running';
  const matching = running && c.configHash === desiredHash && c.health !== 'unhealthy';
  return (matching ? KEEP_MATCHING : 0) + (running ? 4 : 0) + (c.name === canonicalName ? 2 : 0);
}

function holdsHostPort(c: ObservedContainer, wanted: PortBinding[]): boolean {
  return wanted.some(
    (w) => w.host !== undefined && c.ports.some((p) => p.host === w.host && (p.protocol ?? 'tcp') === w.protocol),
  );
}

// ── in-place changes (restart policy, resources) ──

interface InPlace {
  causes: Cause[];
  update: { RestartPolicy?: { Name: string; MaximumRetryCount: number }; Memory?: number; MemorySwap?: number; NanoCpus?: number };
  /** A limit would go back to unlimited: Docker's update treats 0 as "unchanged", so only recreation can do it. */
  unsettable: boolean;
}

function inPlaceDiff(c: ObservedContainer, svc: ServiceSpec): InPlace {
  const out: InPlace = { causes: [], update: {}, unsettable: false };
  const oldR = c.restart ?? { name: 'no', maximumRetryCount: 0 };
  if (oldR.name !== svc.restart.name || (svc.restart.name === 'on-failure' && oldR.maximumRetryCount !== svc.restart.maximumRetryCount)) {
    out.causes.push({ kind: 'restart', detail: `${fmtRestart(oldR)} → ${fmtRestart(svc.restart)}` });
    out.update.RestartPolicy = { Name: svc.restart.name, MaximumRetryCount: svc.restart.maximumRetryCount };
  }
  const oldRes: ResourcesSpec = c.resources ?? { memory: 0, nanoCpus: 0 };
  const parts: string[] = [];
  if (oldRes.memory !== svc.resources.memory) {
    parts.push(`memory ${fmtMemory(oldRes.memory)} → ${fmtMemory(svc.resources.memory)}`);
    if (svc.resources.memory === 0) out.unsettable = true;
    out.update.Memory = svc.resources.memory;
    out.update.MemorySwap = svc.resources.memory * 2;
  }
  if (oldRes.nanoCpus !== svc.resources.nanoCpus) {
    parts.push(`cpus ${fmtCpus(oldRes.nanoCpus)} → ${fmtCpus(svc.resources.nanoCpus)}`);
    if (svc.resources.nanoCpus === 0) out.unsettable = true;
    out.update.NanoCpus = svc.resources.nanoCpus;
  }
  if (parts.length > 0) out.causes.push({ kind: 'resources', detail: parts.join(', ') });
  return out;
}

function fmtRestart(r: RestartSpec): string {
  return r.name === 'on-failure' && r.maximumRetryCount > 0 ? `on-failure:${r.maximumRetryCount}` : r.name;
}

export function fmtMemory(bytes: number): string {
  if (!bytes) return 'unlimited';
  const units: Array<[number, string]> = [
    [1024 ** 3, 'g'],
    [1024 ** 2, 'm'],
    [1024, 'k'],
  ];
  for (const [size, unit] of units) if (bytes % size === 0) return `${bytes / size}${unit}`;
  return `${bytes}b`;
}

function fmtCpus(nano: number): string {
  return nano ? `${nano / 1e9}` : 'unlimited';
}

// ── why a replacement: compare per-part hashes ──

function changedParts(graph: ServiceGraph, svc: ServiceSpec, extra: HashExtra, c: ObservedContainer): Cause[] {
  const old = parsePartsLabel(c.labels?.[LABEL.configParts]);
  if (!old) return [{ kind: 'config', detail: 'configuration changed' }];
  const now = configPartHashes(graph, svc, extra);
  const top = (r: Record<string, string>) => Object.keys(r).filter((k) => !k.startsWith('env.'));
  const partNames = [...new Set([...top(now), ...top(old)])];
  const causes: Cause[] = [];
  for (const part of partNames) {
    if (old[part] === now[part]) continue;
    causes.push({ kind: causeKind(part), detail: describePart(part, svc, extra, c, old, now) });
  }
  return causes.length > 0 ? causes : [{ kind: 'config', detail: 'configuration changed' }];
}

function causeKind(part: string): string {
  return part === 'stopGrace' ? 'stop-grace' : part;
}

function describePart(part: string, svc: ServiceSpec, extra: HashExtra, c: ObservedContainer, old: Record<string, string>, now: Record<string, string>): string {
  switch (part) {
    case 'image':
      return c.image && c.image !== svc.image ? `${c.image} → ${svc.image}` : `now ${svc.image}`;
    case 'env':
      return describeEnv(old, now);
    case 'ports': {
      const list = svc.ports.map((p) => `${p.hostIp && p.hostIp !== '0.0.0.0' ? `${p.hostIp}:` : ''}${p.host ?? ''}${p.host !== undefined ? ':' : ''}${p.container}/${p.protocol}`);
      return `now ${list.length ? list.join(', ') : 'none published'}`;
    }
    case 'mounts': {
      const list = [
        ...svc.mounts.map((m) => `${m.type === 'volume' ? m.name : m.source}:${m.target}${m.readOnly ? ':ro' : ''}`),
        ...(svc.secretFiles ?? []).map((f) => `secret ${secretValueLabel(f)}:${f.target}:ro`),
      ];
      return `now ${list.length ? list.join(', ') : 'none'}`;
    }
    case 'healthcheck':
      return svc.healthcheck ? `now ${svc.healthcheck.describe}` : 'removed';
    case 'user':
      return svc.user !== undefined ? `now ${svc.user}` : 'unset';
    case 'workdir':
      return svc.workdir !== undefined ? `now ${svc.workdir}` : 'unset';
    case 'stopGrace':
      return `now ${svc.stopGraceSeconds}s`;
    case 'networks': {
      const links = [...svc.links].sort(cmp);
      return links.length ? `now linked with ${links.join(', ')}` : 'no links';
    }
    case 'secrets':
      return extra.secretsDigest === undefined ? 'no longer used' : old.secrets === undefined || old.secrets === NO_SECRETS ? 'now used' : `a secret value changed${inVars(svc, old, now)}`;
    case 'credentials':
      return extra.credentialsDigest === undefined
        ? 'dynamic credentials no longer used'
        : old.credentials === undefined
          ? 'dynamic credentials now used'
          : `fresh dynamic credentials: a lease can no longer be renewed${inVars(svc, old, now)}`;
    default:
      return old[part] === undefined ? 'added' : now[part] === undefined ? 'removed' : 'changed';
  }
}

/** ` (in DATABASE_URL)`: the `secretString` variables whose value changed, by name; empty when none. */
function inVars(svc: ServiceSpec, old: Record<string, string>, now: Record<string, string>): string {
  const vars = changedSecretStrings(svc, old, now);
  return vars.length ? ` (in ${vars.join(', ')})` : '';
}

/** Names changed keys only (never values): `FOO changed, BAR added, OLD removed`. */
function describeEnv(old: Record<string, string>, now: Record<string, string>): string {
  const keys = (r: Record<string, string>) =>
    new Map(Object.keys(r).filter((k) => k.startsWith('env.')).map((k) => [decodeURIComponent(k.slice(4)), r[k]!]));
  const o = keys(old);
  const n = keys(now);
  const changed: string[] = [];
  const added: string[] = [];
  const removed: string[] = [];
  for (const [k, v] of n) {
    if (!o.has(k)) added.push(k);
    // The first 8 hex are the variable as configured; a secretString's value digest after them is named by the secrets cause.
    else if (o.get(k)!.slice(0, 8) !== v.slice(0, 8)) changed.push(k);
  }
  for (const k of o.keys()) if (!n.has(k)) removed.push(k);
  const out = [
    ...changed.sort(cmp).map((k) => `${k} changed`),
    ...added.sort(cmp).map((k) => `${k} added`),
    ...removed.sort(cmp).map((k) => `${k} removed`),
  ];
  return out.length ? out.join(', ') : 'changed';
}
