/**
 * The Swarm planner: desired (ServiceGraph) × observed (Swarm's services, tasks, secrets, networks) →
 * Plan. PURE: no I/O, no clock; the same input gives the same plan.
 *
 * A service is updated when the config-hash label of its Swarm service differs from the hash of the
 * spec planned now; the per-part label names what changed and whether the tasks are replaced (a rolling
 * update run by Swarm) or kept (only the replica count or the rollout settings changed). The update
 * carries the spec version it was planned against (Swarm refuses an update of a newer spec). A replica
 * count changed by hand (the labels still match) is set back the same way, the tasks kept.
 */
import { LABEL } from '../../labels.ts';
import type { Cause, ObservedState, ObservedSwarm, Operation, PinLine, Plan, ServiceGraph } from '../../model.ts';
import { canonicalJson, sha256Hex } from '../../plan/canonical.ts';
import { parsePartsLabel } from '../../plan/container.ts';
import type { PlanInputs } from '../target.ts';
import { swarmPinState } from './pin.ts';
import { swarmProxyChange, swarmProxyTable, wantedIngressNetworks } from './proxy.ts';
import { KEPT_TASK_PARTS, labelledSpec, secretSource, secretVersionName, SWARM_LABEL, swarmHashes, swarmNames, swarmServiceBody } from './spec.ts';

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const EMPTY: ObservedSwarm = { services: [], tasks: [], secrets: [] };

/** What a changed part is now, as a plan line says it (never a value: secrets only say they changed). */
function describePart(part: string, svc: ServiceGraph['services'][string]): string {
  switch (part) {
    case 'healthcheck':
      return svc.healthcheck ? `now ${svc.healthcheck.describe}` : 'removed';
    case 'placement': {
      const p = [...(svc.placement?.constraints ?? []), ...(svc.placement?.preferences ?? []).map((x) => `spread ${x}`)];
      return `now ${p.length ? p.join(', ') : 'anywhere'}`;
    }
    case 'rollout':
      return `now ${svc.rollout!.order}, ${svc.rollout!.parallelism} at a time, on failure ${svc.rollout!.failureAction}`;
    case 'secrets':
      return 'a secret value or file changed';
    case 'networks':
      return `now linked with ${svc.links.length ? svc.links.join(', ') : 'nothing'}`;
    case 'stopGrace':
      return `now ${svc.stopGraceSeconds}s`;
    default:
      return 'changed';
  }
}

/** Hash of what the plan was made from: Swarm's spec versions, the secrets and networks. */
export function swarmFingerprint(observed: ObservedState): string {
  const s = observed.swarm ?? EMPTY;
  return sha256Hex(
    canonicalJson({
      services: s.services.map((x) => [x.id, x.version, x.configHash, x.replicas]).sort(),
      secrets: s.secrets.map((x) => x.name).sort(),
      networks: observed.networks.map((n) => n.name).sort(),
    }),
  );
}

export function reconcileSwarm(graph: ServiceGraph, observed: ObservedState, inputs: PlanInputs): Plan {
  const project = graph.project;
  const swarm = observed.swarm ?? EMPTY;
  const ours = (labels: Record<string, string> | undefined) => labels?.[LABEL.project] === project;
  const ops: Operation[] = [];
  const unchanged: string[] = [];
  const pinLines: PinLine[] = [];

  // ── networks: one overlay network per linked pair, one attachable overlay network per routed service ──
  const observedNetworks = new Map(observed.networks.filter((n) => ours(n.labels)).map((n) => [n.name, n] as const));
  const ingressNetworks = new Set(wantedIngressNetworks(graph));
  const wantedNetworks = [...graph.links.map(([a, b]) => swarmNames.link(project, a, b)), ...ingressNetworks];
  const networkOp = new Map<string, string>();
  for (const name of wantedNetworks) {
    if (observedNetworks.has(name)) continue;
    const id = `network:${name}`;
    networkOp.set(name, id);
    const ingress = ingressNetworks.has(name);
    ops.push({
      kind: 'create-network',
      id,
      after: [],
      causes: [{ kind: 'missing', detail: 'missing' }],
      network: name,
      body: {
        Name: name,
        Driver: 'overlay',
        Internal: false,
        ...(ingress ? { Attachable: true } : {}),
        Labels: { [LABEL.project]: project, [LABEL.role]: ingress ? 'ingress' : 'link' },
        Options: {},
      },
    });
  }

  // ── secret versions ──
  const observedSecrets = new Map(swarm.secrets.filter((s) => ours(s.labels)).map((s) => [s.name, s] as const));
  const secretOp = new Map<string, string>();
  const wantedSecrets = new Set<string>();

  // ── services ──
  const byService = new Map(swarm.services.filter((s) => ours(s.labels)).map((s) => [s.service, s] as const));
  const serviceOp = new Map<string, string>();
  const specs = new Map<string, ReturnType<typeof labelledSpec>>();
  for (const name of graph.order) {
    const svc = graph.services[name]!;
    const digests = inputs.secretFileDigests?.[name] ?? {};
    const inUse = new Set(byService.get(name)?.secrets ?? []);
    const versionOf = (target: string) => {
      const digest = digests[target];
      if (digest !== undefined) return secretVersionName(project, svc, target, digest);
      // A value that was not read (an offline plan leaves Vault unread): the version in use stays.
      const source = secretSource(svc, target);
      const kept = [...observedSecrets.values()].find((s) => s.labels[SWARM_LABEL.secretSource] === source && inUse.has(s.name));
      return kept?.name ?? secretVersionName(project, svc, target, 'unread');
    };
    for (const f of svc.secretFiles ?? []) {
      const secretName = versionOf(f.target);
      wantedSecrets.add(secretName);
      if (observedSecrets.has(secretName) || secretOp.has(secretName)) continue;
      const id = `secret:${secretName}`;
      secretOp.set(secretName, id);
      const replaces = [...observedSecrets.values()].some((s) => s.labels[SWARM_LABEL.secretSource] === secretSource(svc, f.target));
      ops.push({
        kind: 'create-swarm-secret',
        id,
        after: [],
        causes: [replaces ? { kind: 'secret-rotated', detail: 'a new version (the value changed)' } : { kind: 'new', detail: 'new' }],
        secret: secretName,
        labels: { [LABEL.project]: project, [LABEL.role]: 'secret', [SWARM_LABEL.secretSource]: secretSource(svc, f.target) },
        source: { service: name, target: f.target },
      });
    }
    const names = Object.fromEntries((svc.secretFiles ?? []).map((f) => [f.target, versionOf(f.target)]));
    specs.set(name, labelledSpec(swarmServiceBody(graph, svc, names), inputs.secretsDigests?.[name], inputs.commit));
  }

  for (const name of graph.order) {
    const svc = graph.services[name]!;
    const spec = specs.get(name)!;
    const existing = byService.get(name);
    const needs = [
      ...spec.TaskTemplate.Networks.map((n) => networkOp.get(n.Target)),
      ...spec.TaskTemplate.ContainerSpec.Secrets.map((s) => secretOp.get(s.SecretName)),
      ...svc.dependsOn.map((d) => serviceOp.get(d.service)),
    ].filter((x): x is string => x !== undefined);
    const after = [...new Set(needs)].sort(cmp);
    const replicas = spec.Mode.Replicated.Replicas;
    // A service rolled back by `waffle rollback` is left alone while its pin holds (its secret versions stay).
    const pin = swarmPinState(graph, svc, existing, inputs.pins?.[name]);
    if (pin) pinLines.push(pin.line);
    if (pin?.held) {
      for (const s of existing!.secrets) wantedSecrets.add(s);
      unchanged.push(name);
      continue;
    }
    const unpinned = pin ? [pin.cause] : [];
    if (!existing) {
      const id = `create:${name}`;
      serviceOp.set(name, id);
      ops.push({ kind: 'create-swarm-service', id, after, causes: [{ kind: 'new', detail: 'new' }, ...unpinned], service: name, name: spec.Name, spec, replicas });
      continue;
    }
    const { hash } = swarmHashes(spec, inputs.secretsDigests?.[name]);
    if (existing.configHash === hash && existing.replicas === replicas) {
      unchanged.push(name);
      continue;
    }
    let causes: Cause[];
    let rolls: boolean;
    if (existing.configHash === hash) {
      // Scaled by hand (`docker service scale`): the labels still match, the replica count does not.
      // It is set back without replacing the tasks.
      causes = [{ kind: 'replicas', detail: `${existing.replicas} → ${replicas} (scaled by hand)` }];
      rolls = false;
    } else {
      const was = parsePartsLabel(existing.labels[LABEL.configParts]);
      const now = parsePartsLabel(spec.Labels[LABEL.configParts])!;
      const changed = was ? Object.keys(now).filter((k) => was[k] !== now[k]).sort(cmp) : Object.keys(now).sort(cmp);
      causes = changed.map((k) =>
        k === 'replicas'
          ? { kind: 'replicas', detail: `${existing.replicas} → ${replicas}` }
          : k === 'image'
            ? { kind: 'image', detail: `${existing.image} → ${svc.image}` }
            : { kind: k, detail: describePart(k, svc) },
      );
      if (causes.length === 0) causes.push({ kind: 'config', detail: 'configuration changed' });
      causes.unshift(...unpinned);
      if (existing.updateState === 'rollback_completed' || existing.updateState === 'rollback_paused') {
        causes.push({ kind: 'rolled-back', detail: `Swarm rolled the last update back${existing.updateMessage ? `: ${existing.updateMessage}` : ''}` });
      }
      rolls = !was || changed.some((k) => !KEPT_TASK_PARTS.has(k));
    }
    const id = `update:${name}`;
    serviceOp.set(name, id);
    ops.push({
      kind: 'update-swarm-service',
      id,
      after,
      causes,
      service: name,
      name: spec.Name,
      serviceId: existing.id,
      version: existing.version,
      spec,
      replicas,
      rolls,
    });
  }

  // ── removals: services no longer defined, then what nothing uses any more ──
  const removals: string[] = [];
  for (const s of [...byService.values()].sort((a, b) => cmp(a.service, b.service))) {
    if (graph.services[s.service]) continue;
    const id = `remove:${s.name}`;
    removals.push(id);
    ops.push({ kind: 'remove-swarm-service', id, after: [], causes: [{ kind: 'removed', detail: 'no longer defined' }], service: s.service, name: s.name, serviceId: s.id });
  }
  const serviceChanges = [...serviceOp.values(), ...removals].sort(cmp);
  for (const s of [...observedSecrets.values()].sort((a, b) => cmp(a.name, b.name))) {
    if (wantedSecrets.has(s.name)) continue;
    // After every service that used it has moved to another version (or is gone).
    const users = swarm.services.filter((x) => x.secrets.includes(s.name)).map((x) => (graph.services[x.service] ? serviceOp.get(x.service) : `remove:${x.name}`));
    ops.push({
      kind: 'remove-swarm-secret',
      id: `remove-secret:${s.name}`,
      after: users.filter((x): x is string => x !== undefined).sort(cmp),
      causes: [{ kind: 'unused', detail: 'an old version, no longer used' }],
      secret: s.name,
      secretId: s.id,
    });
  }

  // ── the proxy: routes by the tasks' DNS name, and the Caddy container on the routed services' networks ──
  const table = swarmProxyTable(graph, inputs.maintenance ?? {});
  let proxyOp: string | undefined;
  if (table) {
    const change = swarmProxyChange(graph, table, observed);
    if (change.causes.length > 0) {
      proxyOp = `proxy:${project}`;
      // A route appears once its service runs (a create converges: its tasks are healthy) and is on its
      // ingress network; a rolling update of a routed service changes nothing in Caddy and is not waited for.
      const routed = new Set(Object.keys(table.tasks ?? {}));
      const waitFor = ops
        .filter((o) =>
          o.kind === 'create-network' ? change.attach.includes(o.network) : (o.kind === 'create-swarm-service' || (o.kind === 'update-swarm-service' && o.causes.some((c) => c.kind === 'networks'))) && routed.has(o.service),
        )
        .map((o) => o.id)
        .sort(cmp);
      ops.push({
        kind: 'configure-proxy',
        id: proxyOp,
        after: waitFor,
        causes: change.causes,
        provider: 'caddy',
        container: graph.ingress!.container ?? '',
        attach: change.attach,
        detach: change.detach,
      });
      // Routes leave Caddy before their service goes, or before it leaves its ingress network.
      for (const o of ops) {
        if (o.kind === 'remove-swarm-service' || (o.kind === 'update-swarm-service' && !routed.has(o.service) && o.causes.some((c) => c.kind === 'networks'))) o.after.push(proxyOp);
      }
    }
  }

  const wanted = new Set(wantedNetworks);
  for (const n of [...observedNetworks.values()].sort((a, b) => cmp(a.name, b.name))) {
    if (wanted.has(n.name)) continue;
    ops.push({
      kind: 'remove-network',
      id: `remove-network:${n.name}`,
      // An ingress network goes once Caddy is detached from it too.
      after: [...serviceChanges, ...(proxyOp ? [proxyOp] : [])].sort(cmp),
      causes: [{ kind: 'unused', detail: n.labels[LABEL.role] === 'ingress' ? 'no longer routed' : 'no longer linked' }],
      network: n.name,
    });
  }

  return {
    project,
    observedFingerprint: swarmFingerprint(observed),
    operations: ops,
    unchanged: unchanged.sort(cmp),
    ...(pinLines.length > 0 ? { pins: pinLines.sort((a, b) => cmp(a.service, b.service)) } : {}),
    ...(table ? { proxy: table } : {}),
  };
}
