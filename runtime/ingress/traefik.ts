/**
 * The Traefik alternative: a routed service's routes as Traefik's Docker provider labels (routers with
 * `Host` and `PathPrefix` rules, a load-balancer port, a `stripprefix` middleware, entry points and TLS).
 * Pure: the labels join the service's own, so a changed route changes the config hash and recreates the
 * container, and Traefik picks the new one up from Docker. Traefik gives a longer rule a higher priority
 * by default, so the longest path prefix wins as with Caddy. Traefik has no health-gated switch of ours:
 * it routes to a container once Docker reports it healthy (or started, without a healthcheck).
 */
import type { IngressSpec, RouteSpec } from '../model.ts';

/** `<project>-<service>-<n>`: a name Traefik accepts for a router, service or middleware. */
function objectName(project: string, service: string, i: number): string {
  return `${project}-${service}-${i}`;
}

/** The Traefik labels of one service's routes, sorted by key. */
export function traefikLabels(project: string, service: string, routes: RouteSpec[], ingress: Pick<IngressSpec, 'traefik'>, network = `${project}_ingress`): Record<string, string> {
  const labels: Record<string, string> = { 'traefik.enable': 'true', 'traefik.docker.network': network };
  routes.forEach((r, i) => {
    const name = objectName(project, service, i);
    const router = `traefik.http.routers.${name}`;
    labels[`${router}.rule`] = r.path === '/' ? `Host(\`${r.domain}\`)` : `Host(\`${r.domain}\`) && PathPrefix(\`${r.path}\`)`;
    labels[`${router}.entrypoints`] = ingress.traefik.entrypoints.join(',');
    labels[`${router}.tls`] = 'true';
    if (ingress.traefik.certResolver) labels[`${router}.tls.certresolver`] = ingress.traefik.certResolver;
    labels[`${router}.service`] = name;
    labels[`traefik.http.services.${name}.loadbalancer.server.port`] = String(r.port);
    if (r.stripPrefix && r.path !== '/') {
      labels[`traefik.http.middlewares.${name}-strip.stripprefix.prefixes`] = r.path;
      labels[`${router}.middlewares`] = `${name}-strip@docker`;
    }
  });
  const sorted: Record<string, string> = {};
  for (const k of Object.keys(labels).sort()) sorted[k] = labels[k]!;
  return sorted;
}
