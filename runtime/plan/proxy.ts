/**
 * The reverse proxy's part of a plan, as data. No I/O.
 *
 * The desired table comes from the desired state on every plan: each routed service's routes, the
 * address of the container that serves it now (only one that runs and has passed its healthcheck; a
 * service whose container the plan creates has none yet, and its routes appear in the proxy only at
 * its `routing` step, after the health gate), and the services in maintenance. It is compared with what
 * the proxy holds (read on every plan): a proxy that restarted empty, a route edited by hand, routes of
 * removed services all become a `configure-proxy` operation with its causes.
 */
import { canonicalJson } from './canonical.ts';
import { isKept, LABEL, names } from '../labels.ts';
import type { Cause, ObservedContainer, ObservedState, Operation, ProxyTable, ServiceGraph } from '../model.ts';
import { describeRoutes, renderRoutes, renderTls } from '../ingress/caddy.ts';

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A container the proxy may send requests to: it runs and is not still waiting for its first healthy check. */
function serves(c: ObservedContainer): boolean {
  return c.state === 'running' && c.health !== 'starting';
}

/**
 * The table of `graph`'s Caddy ingress for the routed services `routed` (in service order): their
 * routes (longest prefix first within a domain), the services in maintenance, and where each sends
 * requests (`upstreams` or, on Swarm, `tasks`), filled in by the target's planner.
 */
export function routesTable(
  graph: ServiceGraph,
  ingress: NonNullable<ServiceGraph['ingress']>,
  routed: string[],
  maintenance: Record<string, string>,
  where: Pick<ProxyTable, 'upstreams' | 'tasks'>,
): ProxyTable {
  const routes: ProxyTable['routes'] = [];
  const inMaintenance: Record<string, string> = {};
  for (const name of routed) {
    for (const r of graph.services[name]!.routes ?? []) routes.push({ domain: r.domain, path: r.path, service: name, port: r.port, stripPrefix: r.stripPrefix });
    if (maintenance[name] !== undefined) inMaintenance[name] = maintenance[name]!;
  }
  routes.sort((a, b) => cmp(a.domain, b.domain) || b.path.length - a.path.length || cmp(a.path, b.path));
  return { provider: 'caddy', project: graph.project, admin: ingress.admin, server: ingress.server, tls: ingress.tls, routes, ...where, maintenance: inMaintenance };
}

/**
 * The table the plan wants, given its service operations (`ops`) and the services in maintenance
 * (service → page). Each routed service's address is that of the container the plan keeps: the old
 * one of a replace (until the switch), the one a rename keeps, the only one of an unchanged service.
 */
export function proxyTable(graph: ServiceGraph, observed: ObservedState, ops: Operation[], maintenance: Record<string, string>): ProxyTable | undefined {
  const ingress = graph.ingress;
  if (!ingress || ingress.provider !== 'caddy') return undefined;
  const network = names.ingressNetwork(graph.project);
  const removed = new Set(ops.filter((o) => o.kind === 'remove-service').map((o) => (o as { containerId: string }).containerId));
  const upstreams: Record<string, string | null> = {};
  const routed = Object.keys(graph.services)
    .sort(cmp)
    .filter((name) => !!graph.services[name]!.routes?.length);
  for (const name of routed) {
    const op = ops.find((o) => 'service' in o && o.service === name && o.kind !== 'remove-service');
    let keep: ObservedContainer | undefined;
    if (op?.kind === 'create-service') keep = undefined;
    else if (op?.kind === 'replace-service') keep = observed.containers.find((c) => c.id === op.oldContainerId);
    else if (op?.kind === 'rename-service') keep = observed.containers.find((c) => c.id === op.containerId);
    else if (op?.kind === 'rollback-service') keep = observed.containers.find((c) => c.id === op.currentId);
    else {
      // Containers kept for rollback never serve until a rollback makes one the service's container again.
      const mine = observed.containers.filter((c) => c.service === name && !removed.has(c.id) && !isKept(c, graph.project) && c.labels?.[LABEL.project] === graph.project);
      keep = mine.find((c) => c.name === names.container(graph.project, name)) ?? mine.find(serves) ?? mine[0];
    }
    const address = keep && serves(keep) ? keep.addresses?.[network] : undefined;
    upstreams[name] = address ?? null;
  }
  return routesTable(graph, ingress, routed, maintenance, { upstreams });
}

const list = (items: string[], max = 4) => (items.length > max ? `${items.slice(0, max).join(', ')} and ${items.length - max} more` : items.join(', '));

/** Why the proxy must be configured: what differs between the table and what the proxy holds. Empty: nothing. */
export function proxyCauses(table: ProxyTable, observed: ObservedState['proxy']): Cause[] {
  const causes: Cause[] = [];
  const want = renderRoutes(table);
  const have = observed?.current ?? null;
  if (canonicalJson(want) !== canonicalJson(have)) {
    const w = want ? describeRoutes(want, table.project) : new Map<string, string>();
    const h = have ? describeRoutes(have, table.project) : new Map<string, string>();
    const missing = [...w.keys()].filter((k) => !h.has(k)).sort(cmp);
    const extra = [...h.keys()].filter((k) => !w.has(k)).sort(cmp);
    const changed = [...w.keys()].filter((k) => h.has(k) && h.get(k) !== w.get(k)).sort(cmp);
    if (have === null) causes.push({ kind: 'proxy-missing', detail: `not in Caddy: ${list(missing.map((k) => `${k} (${w.get(k)})`))}` });
    else {
      if (missing.length) causes.push({ kind: 'proxy-missing', detail: `missing in Caddy: ${list(missing.map((k) => `${k} (${w.get(k)})`))}` });
      if (changed.length) causes.push({ kind: 'proxy-changed', detail: `changed outside waffle: ${list(changed.map((k) => `${k} is ${h.get(k)}, should be ${w.get(k)}`))}` });
      if (extra.length) causes.push({ kind: 'proxy-removed', detail: `no longer routed: ${list(extra)}` });
      if (!missing.length && !changed.length && !extra.length) {
        causes.push({ kind: want === null ? 'proxy-removed' : 'proxy-changed', detail: want === null ? 'the project has no live route any more' : "the project's Caddy route was changed outside waffle" });
      }
    }
  }
  if (canonicalJson(renderTls(table)) !== canonicalJson(observed?.currentTls ?? null)) {
    causes.push({ kind: 'proxy-tls', detail: observed?.currentTls ? 'TLS policy differs' : `TLS policy ${renderTls(table) ? 'missing' : 'no longer needed'}` });
  }
  return causes;
}
