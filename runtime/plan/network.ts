/**
 * The project's networks, as data. No I/O.
 *
 * - `<project>_default`: every service joins it, with inter-container traffic OFF, so services on it
 *   cannot reach each other: it gives egress and published ports only.
 * - `<project>_link_<a>_<b>`: one per linked pair (`connects`, `dependsOn`, `url()`), ICC on: the two
 *   services reach each other by service name through Docker's embedded DNS. Nobody else is on it.
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
  return [defaultNetworkBody(graph.project), ...graph.links.map(([a, b]) => linkNetworkBody(graph.project, a, b))];
}

/** Networks one service is attached to: the default network, then its link networks sorted by name. */
export function serviceNetworks(graph: ServiceGraph, svc: ServiceSpec): string[] {
  const links = [...new Set(svc.links)].filter((o) => o !== svc.name).map((o) => names.linkNetwork(graph.project, svc.name, o));
  return [names.defaultNetwork(graph.project), ...links.sort()];
}
