/**
 * The project's networks, as data. No I/O.
 *
 * - `<project>_default`: every service joins it, with inter-container traffic OFF, so services on it
 *   cannot reach each other: it gives egress and published ports only.
 * - `<project>_link_<a>_<b>`: one per linked pair (`connects`, `dependsOn`, `url()`), ICC on: the two
 *   services reach each other by service name through Docker's embedded DNS. Nobody else is on it.
 * - `<project>_ingress`: only services with `routes` join it, with inter-container traffic OFF like the
 *   default network, so being routed does not let services reach each other. The reverse proxy on the
 *   host reaches each routed container at its address on this network (a bridge network is routable
 *   from the host on Linux; container-to-container traffic is what ICC off drops).
 */
import { LABEL, names } from '../labels.ts';
import type { NetworkCreateBody, ServiceGraph, ServiceSpec } from '../model.ts';

export function defaultNetworkBody(project: string): NetworkCreateBody {
  return {
    Name: names.defaultNetwork(project),
    Driver: 'bridge',
    Internal: false,
    Labels: { [LABEL.project]: project, [LABEL.role]: 'default' },
    Options: { 'com.docker.network.bridge.enable_icc': 'false' },
  };
}

export function ingressNetworkBody(project: string): NetworkCreateBody {
  return {
    Name: names.ingressNetwork(project),
    Driver: 'bridge',
    Internal: false,
    Labels: { [LABEL.project]: project, [LABEL.role]: 'ingress' },
    Options: { 'com.docker.network.bridge.enable_icc': 'false' },
  };
}

/** Whether the service joins the ingress network. */
export function isRouted(svc: ServiceSpec): boolean {
  return (svc.routes?.length ?? 0) > 0;
}

export function linkNetworkBody(project: string, a: string, b: string): NetworkCreateBody {
  return {
    Name: names.linkNetwork(project, a, b),
    Driver: 'bridge',
    Internal: false,
    Labels: { [LABEL.project]: project, [LABEL.role]: 'link' },
    Options: {},
  };
}

/**
 * Every network the graph wants: the default one first, then one per linked pair (graph order). A project
 * without services wants none (its default network goes with its last service).
 */
export function desiredNetworks(graph: ServiceGraph): NetworkCreateBody[] {
  if (graph.order.length === 0) return [];
  const routed = Object.values(graph.services).some(isRouted);
  return [
    defaultNetworkBody(graph.project),
    ...(routed ? [ingressNetworkBody(graph.project)] : []),
    ...graph.links.map(([a, b]) => linkNetworkBody(graph.project, a, b)),
  ];
}

/** Networks one service is attached to: the default network, the ingress network when routed, then its link networks sorted by name. */
export function serviceNetworks(graph: ServiceGraph, svc: ServiceSpec): string[] {
  const links = [...new Set(svc.links)].filter((o) => o !== svc.name).map((o) => names.linkNetwork(graph.project, svc.name, o));
  return [names.defaultNetwork(graph.project), ...(isRouted(svc) ? [names.ingressNetwork(graph.project)] : []), ...links.sort()];
}
