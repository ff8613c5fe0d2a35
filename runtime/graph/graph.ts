/**
 * graph: LoadedRepo → ServiceGraph. Validates every field, fills every default, resolves references to
 * names, and orders services by dependency. Pure (only `path.resolve` for bind mounts), except that
 * on failure it reads the files that have problems to give each its line. Collects every problem of
 * one run and throws them together as a ProblemsError.
 *
 * Each concern is validated by a function of its own under `validate/` (config, names and references,
 * images, ports, volumes, healthchecks, lifecycle, env, labels, secrets); this file runs them per
 * service, then checks what spans services (host ports, dependency cycles) and assembles the graph.
 */
import type { LoadedRepo, Problem, ServiceGraph, ServiceSpec } from '../model.ts';
import { locateProblems, type Locator } from '../locate.ts';
import { ProblemsError } from '../problems.ts';
import { cmp, findCycles, topoOrder, type Edge } from './order.ts';
import { isObject } from './parse.ts';
import { reporterFor, unknownKeys } from './report.ts';
import { checkConfig } from './validate/config.ts';
import { checkDevelop } from './validate/develop.ts';
import { checkEnv } from './validate/env.ts';
import { checkHealthcheck } from './validate/healthchecks.ts';
import { checkImageField, checkPull } from './validate/images.ts';
import { checkLabels } from './validate/labels.ts';
import { checkLifecycle } from './validate/lifecycle.ts';
import { checkConnects, checkDependsOn, checkServiceName, indexServices, referenceResolver } from './validate/names.ts';
import { checkPort, checkPorts, hostPortConflicts, type HostBinding } from './validate/ports.ts';
import { checkCommand, checkUser, checkWorkdir } from './validate/process.ts';
import { checkIngress, checkRoutes, routeConflicts, type ClaimedRoute } from './validate/routes.ts';
import { checkSecretFiles } from './validate/secrets.ts';
import { checkSwarmFields } from './validate/swarm.ts';
import { traefikLabels } from '../ingress/traefik.ts';
import { checkUpdatePolicy } from './validate/updates.ts';
import { checkVolumes } from './validate/volumes.ts';

export { CONFIG_KEYS } from './validate/config.ts';

export const SERVICE_KEYS = [
  'name', 'image', 'command', 'entrypoint', 'env', 'port', 'ports', 'volumes', 'healthcheck', 'restart',
  'resources', 'dependsOn', 'connects', 'labels', 'user', 'workdir', 'stopGracePeriod', 'files', 'pull', 'routes',
  'develop', 'update',
  // Swarm: tasks, where they run, how a change rolls out (validate/swarm.ts).
  'replicas', 'placement', 'rollout',
];

/** Validates and normalises the loaded repository into a ServiceGraph; throws ProblemsError with every problem. */
export function buildGraph(repo: LoadedRepo, opts: { locate?: Locator } = {}): ServiceGraph {
  const problems: Problem[] = [];
  const cfg = checkConfig(repo, problems);
  const byName = indexServices(repo.services, problems, { naming: cfg.naming, globs: cfg.globs, configFile: repo.configFile });
  const scope = { byName, configFile: repo.configFile, globs: cfg.globs };

  const specs: Record<string, ServiceSpec> = {};
  const deps = new Map<string, Edge[]>();
  const linkPairs = new Set<string>();
  const hostBindings: HostBinding[] = [];
  const volumes = new Set<string>();
  const claims: ClaimedRoute[] = [];

  for (const svc of repo.services) {
    // A duplicate is validated too (its own problems are worth reporting) but does not enter the graph.
    const isPrimary = byName.get(svc.name) === svc;
    const file = svc.file;
    const service = svc.name;
    const report = reporterFor(problems, file, service);
    const d = isObject(svc.data) ? svc.data : {};
    if (!isObject(svc.data)) report(undefined, 'the default export is not a service definition', 'export default defineService({ image: ... })');

    checkServiceName(service, d.name, report);
    unknownKeys(d, SERVICE_KEYS, '', report, 'the service definition');
    const image = checkImageField(d.image, report);
    const command = checkCommand('command', d.command, report);
    const entrypoint = checkCommand('entrypoint', d.entrypoint, report);
    const pull = checkPull(d.pull, 'pull', report, cfg.defaults.pull);
    const update = checkUpdatePolicy(d.update, report);

    const port = checkPort(d.port, report);
    const ports = checkPorts(d.ports, report);
    if (isPrimary) for (const p of ports) if (p.binding.host !== undefined) hostBindings.push({ service, file, where: p.where, b: p.binding });

    const { mounts, volumes: named } = checkVolumes(d.volumes, { project: cfg.project, root: repo.root }, report);
    for (const v of named) volumes.add(v);

    const routes = checkRoutes(d.routes, { port, portWritten: d.port !== undefined }, report);
    if (isPrimary) for (const r of routes) claims.push({ ...r, service, file });

    const healthcheck = checkHealthcheck(d.healthcheck, { port, portWritten: d.port !== undefined, timing: cfg.defaults.timing }, report);
    const { restart, resources, stopGraceNs } = checkLifecycle(d, cfg.defaults, report);

    const resolve = referenceResolver(scope, report);
    const { dependsOn, edges, links: dependencyLinks } = checkDependsOn(d.dependsOn, { service, byName, resolve }, report);
    if (isPrimary) deps.set(service, edges);
    const connects = checkConnects(d.connects, { service, resolve }, report);
    const { env, secretEnv, links: urlLinks } = checkEnv(
      d.env,
      { service, byName, resolve, secrets: cfg.secrets, secretsDeclared: cfg.secretsDeclared, configFile: repo.configFile },
      report,
    );
    const labels = checkLabels(d.labels, report);
    const user = checkUser(d.user, report);
    const workdir = checkWorkdir(d.workdir, report);
    const swarm = checkSwarmFields(d, cfg.target, repo.configFile, report, ports);
    const secretFiles = checkSecretFiles(
      d.files,
      { decls: cfg.secrets, declared: cfg.secretsDeclared, configFile: repo.configFile, user: d.user, mountTargets: mounts.map((m) => m.target) },
      report,
    );

    const develop = checkDevelop(d.develop, { root: repo.root }, report);

    for (const l of new Set([...dependencyLinks, ...connects, ...urlLinks])) {
      if (l !== service) linkPairs.add(service < l ? `${service}\u0000${l}` : `${l}\u0000${service}`);
    }

    if (!isPrimary) continue;
    specs[service] = {
      name: service,
      file,
      ...(svc.definedAt !== undefined ? { definedAt: svc.definedAt } : {}),
      image,
      ...(command ? { command } : {}),
      ...(entrypoint ? { entrypoint } : {}),
      env,
      ...(port !== undefined ? { port } : {}),
      ports: ports.map((p) => p.binding),
      mounts,
      ...(healthcheck ? { healthcheck } : {}),
      restart,
      resources,
      dependsOn,
      links: [],
      labels,
      ...(user !== undefined ? { user } : {}),
      ...(workdir !== undefined ? { workdir } : {}),
      stopGraceSeconds: Math.ceil(stopGraceNs / 1e9),
      ...(Object.keys(secretEnv).length > 0 ? { secretEnv } : {}),
      ...(secretFiles.length > 0 ? { secretFiles } : {}),
      pull,
      ...swarm,
      ...(routes.length > 0 ? { routes: sortRoutes(routes.map((r) => r.route)) } : {}),
      ...(develop.length > 0 ? { develop } : {}),
      ...(update ? { update } : {}),
    };
  }

  const ingress = checkIngress(isObject(repo.config) ? repo.config.ingress : undefined, claims.length > 0, reporterFor(problems, repo.configFile), cfg.target, repo.configFile);
  problems.push(...routeConflicts(claims));

  problems.push(...hostPortConflicts(hostBindings));
  problems.push(...findCycles(deps, byName));
  if (problems.length > 0) {
    // Each problem names a field; point it at the field's line in its file (read only on failure).
    const definedAt = new Map(repo.services.map((s) => [s.file, s.definedAt] as const));
    throw new ProblemsError((opts.locate ?? locateProblems)(problems, { root: repo.root, configFile: repo.configFile, definedAt }));
  }

  const order = topoOrder(deps);
  const pairs = [...linkPairs].sort().map((p) => p.split('\u0000') as [string, string]);
  pairs.sort((x, y) => (x[0] === y[0] ? cmp(x[1], y[1]) : cmp(x[0], y[0])));
  for (const [a, b] of pairs) {
    specs[a].links.push(b);
    specs[b].links.push(a);
  }
  for (const s of Object.values(specs)) s.links.sort(cmp);
  // Traefik reads routes from container labels: they join the service's own (and its config hash).
  if (ingress?.provider === 'traefik') {
    for (const s of Object.values(specs)) if (s.routes) s.labels = { ...traefikLabels(cfg.project, s.name, s.routes, ingress), ...s.labels };
  }

  const sortedServices: Record<string, ServiceSpec> = {};
  for (const n of Object.keys(specs).sort(cmp)) sortedServices[n] = specs[n];

  return {
    project: cfg.project,
    root: repo.root,
    configFile: repo.configFile,
    ...(cfg.dockerHost !== undefined ? { dockerHost: cfg.dockerHost } : {}),
    ...(cfg.target === 'swarm' ? { target: cfg.target } : {}),
    parallelism: cfg.parallelism,
    services: sortedServices,
    order,
    links: pairs,
    volumes: [...volumes].sort(cmp),
    ...(Object.keys(cfg.secrets).length > 0 ? { secrets: cfg.secrets } : {}),
    ...(cfg.vault ? { vault: cfg.vault } : {}),
    ...(cfg.evaluation ? { evaluation: cfg.evaluation } : {}),
    ...(ingress ? { ingress } : {}),
    ...(cfg.updates ? { updates: cfg.updates } : {}),
    ...(cfg.rollback ? { rollback: cfg.rollback } : {}),
  };
}

/** Routes by domain, then path. */
function sortRoutes<T extends { domain: string; path: string }>(routes: T[]): T[] {
  return [...routes].sort((a, b) => cmp(a.domain, b.domain) || cmp(a.path, b.path));
}
