/**
 * The reverse proxy's part of a Swarm plan, as data. Pure: no I/O.
 *
 * On Swarm, Caddy runs as a container on a manager (`ingress.caddy.container`): a Caddy on the host
 * cannot reach tasks on overlay networks. Each routed service has its own attachable overlay network
 * `<project>_ingress_<service>`, which the Caddy container joins; Caddy sends a route's requests to
 * the addresses of `tasks.<project>_<service>`, which it looks up again every second. Swarm puts a
 * task into that name once it is healthy and takes it out before stopping it, so a rolling update,
 * a rescheduled task or a scale needs no change of Caddy's configuration: the table below does not
 * depend on the tasks, only on the routes, maintenance, and which networks Caddy is attached to.
 */
import type { Cause, ObservedState, ProxyTable, ServiceGraph } from '../../model.ts';
import { LABEL } from '../../labels.ts';
import { proxyCauses, routesTable } from '../../plan/proxy.ts';
import { isSwarmRouted, swarmNames } from './spec.ts';

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The table the plan wants on Swarm: every routed service by its tasks' DNS name, and the services in maintenance. */
export function swarmProxyTable(graph: ServiceGraph, maintenance: Record<string, string>): ProxyTable | undefined {
  const ingress = graph.ingress;
  if (!ingress || ingress.provider !== 'caddy') return undefined;
  const routed = Object.keys(graph.services)
    .sort(cmp)
    .filter((name) => isSwarmRouted(graph, graph.services[name]!));
  const tasks = Object.fromEntries(routed.map((name) => [name, swarmNames.tasks(graph.project, name)]));
  return routesTable(graph, ingress, routed, maintenance, { upstreams: {}, tasks });
}

/** The ingress networks the Caddy container must be attached to: one per routed service. Sorted. */
export function wantedIngressNetworks(graph: ServiceGraph): string[] {
  return Object.values(graph.services)
    .filter((s) => isSwarmRouted(graph, s))
    .map((s) => swarmNames.ingress(graph.project, s.name))
    .sort(cmp);
}

export interface SwarmProxyChange {
  causes: Cause[];
  /** Ingress networks to attach the Caddy container to (before the routes are pushed). */
  attach: string[];
  /** The project's ingress networks to detach it from (after the routes are pushed). */
  detach: string[];
}

/**
 * What differs between the table and what Caddy holds, and between the networks the Caddy container
 * should be on and those it is on. Empty causes: nothing to do.
 */
export function swarmProxyChange(graph: ServiceGraph, table: ProxyTable, observed: ObservedState): SwarmProxyChange {
  const causes = proxyCauses(table, observed.proxy);
  const caddy = observed.swarm?.caddy;
  const wanted = wantedIngressNetworks(graph);
  const attachedTo = new Set(caddy?.networks ?? []);
  const attach = wanted.filter((n) => !attachedTo.has(n));
  // Only networks of this project (by label) are ever detached: Caddy's other networks are the operator's.
  const ours = new Set(
    observed.networks.filter((n) => n.labels[LABEL.project] === graph.project && n.labels[LABEL.role] === 'ingress').map((n) => n.name),
  );
  const want = new Set(wanted);
  const detach = [...attachedTo].filter((n) => ours.has(n) && !want.has(n)).sort(cmp);
  const container = graph.ingress?.container ?? '?';
  for (const n of attach) causes.push({ kind: 'proxy-network', detail: `Caddy (container ${container}) not attached to ${n}` });
  for (const n of detach) causes.push({ kind: 'proxy-network', detail: `Caddy (container ${container}) still attached to ${n}, no longer routed` });
  return { causes, attach, detach };
}
