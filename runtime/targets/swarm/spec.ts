/**
 * What a service is on Swarm, as data: Docker's ServiceSpec, the names of what the project owns there,
 * and the config hash that decides an update. Pure.
 *
 * - A service is the Swarm service `<project>_<service>`; its tasks reach linked services by name.
 * - Links become overlay networks (`<project>_link_<a>_<b>`, as on the engine target), one per linked
 *   pair, so only linked services reach each other. A routed service also joins its own attachable
 *   overlay network `<project>_ingress_<service>`, which only the Caddy container joins besides it: one
 *   network shared by all routed services would let them reach each other (an overlay network cannot
 *   drop traffic between its members). There is no project-wide network: an overlay network
 *   cannot switch off traffic between its members the way the engine's default bridge does, and a task
 *   gets its way out (egress) through the node's `docker_gwbridge` anyway.
 * - Endpoints use DNS round robin (`dnsrr`): a service name resolves to its tasks' addresses, with no
 *   virtual IP (which needs IPVS in the node's kernel) and no routing mesh; published ports are
 *   published on the node that runs the task (`PublishMode: host`).
 * - A secret file becomes a Swarm secret. Swarm secrets are immutable, so each content is a version of
 *   its own, `<project>_<secret>_<key>_<digest>` (or `<project>_<service>_<file>_<digest>` for a
 *   `secretString`), the digest a keyed hash (HMAC) of the content: a rotation creates a new version,
 *   rolls the services using it, and the old version is removed after.
 * - Named volumes are created by each node when a task first mounts them, with the project's labels.
 */
import { LABEL, names } from '../../labels.ts';
import type { ServiceGraph, ServiceSpec, SwarmServiceSpec } from '../../model.ts';
import { canonicalJson, sha256Hex } from '../../plan/canonical.ts';
import { formatPartsLabel } from '../../plan/container.ts';

/** Labels only the Swarm target writes. */
export const SWARM_LABEL = {
  /** On task containers: `<project>/<service>` (not the project label: the engine target never sees them as its own). */
  taskOf: 'dev.wafflemaker.task-of',
  /** On Swarm secrets: which secret and key (`db.password`) or which service file (`api:/run/secrets/dsn`) a version holds. */
  secretSource: 'dev.wafflemaker.secret-source',
} as const;

export const swarmNames = {
  service: (project: string, service: string) => `${project}_${service}`,
  link: (project: string, a: string, b: string) => names.linkNetwork(project, a, b),
  /** The attachable overlay network a routed service shares with the Caddy container only. */
  ingress: (project: string, service: string) => `${project}_ingress_${service}`,
  /** Swarm's DNS name of a service's tasks (one A record per task that runs and passed its healthcheck). */
  tasks: (project: string, service: string) => `tasks.${project}_${service}`,
};

/** Whether the service is routed through the Caddy container (Swarm). */
export function isSwarmRouted(graph: ServiceGraph, svc: ServiceSpec): boolean {
  return graph.ingress?.provider === 'caddy' && (svc.routes?.length ?? 0) > 0;
}

/** Docker limits secret names to 64 characters of `[a-zA-Z0-9_.-]`. */
const SECRET_NAME_MAX = 64;

/** The Swarm secret that holds one version of a secret file's content. */
export function secretVersionName(project: string, svc: ServiceSpec, target: string, digest: string): string {
  const f = (svc.secretFiles ?? []).find((x) => x.target === target);
  const base = f && !('template' in f) ? `${project}_${f.secret}_${f.key}` : `${project}_${svc.name}_${target.replace(/^\/+/, '').replace(/[^A-Za-z0-9_.-]+/g, '-')}`;
  const version = digest.slice(0, 12);
  const room = SECRET_NAME_MAX - version.length - 1;
  const head = base.length > room ? `${base.slice(0, room - 9)}-${sha256Hex(base).slice(0, 8)}` : base;
  return `${head}_${version}`;
}

/** What a secret version holds, as its label says (never a value). */
export function secretSource(svc: ServiceSpec, target: string): string {
  const f = (svc.secretFiles ?? []).find((x) => x.target === target);
  return f && !('template' in f) ? `${f.secret}.${f.key}` : `${svc.name}:${target}`;
}

/** Link networks of one service, and its ingress network when it is routed, sorted. */
export function swarmServiceNetworks(graph: ServiceGraph, svc: ServiceSpec): string[] {
  const links = [...new Set(svc.links)].filter((o) => o !== svc.name).map((o) => swarmNames.link(graph.project, svc.name, o));
  return [...links, ...(isSwarmRouted(graph, svc) ? [swarmNames.ingress(graph.project, svc.name)] : [])].sort();
}

const RESTART: Record<ServiceSpec['restart']['name'], 'none' | 'on-failure' | 'any'> = {
  no: 'none',
  'on-failure': 'on-failure',
  always: 'any',
  'unless-stopped': 'any',
};

/** Spec parts that change without replacing the tasks (everything else is in the task template). */
export const KEPT_TASK_PARTS = new Set(['replicas', 'rollout']);

/**
 * The service spec without secret values (secret env values and secret IDs are added at apply), and
 * without the labels that describe it (hash, parts, commit).
 */
export function swarmServiceBody(
  graph: ServiceGraph,
  svc: ServiceSpec,
  /** Secret file target → the Swarm secret (version) that holds its content. */
  secretVersions: Record<string, string> = {},
): SwarmServiceSpec {
  const project = graph.project;
  const rollout = svc.rollout!;
  const update = {
    Parallelism: rollout.parallelism,
    Delay: rollout.delayNs,
    FailureAction: rollout.failureAction,
    Monitor: rollout.monitorNs,
    MaxFailureRatio: 0,
    Order: rollout.order,
  };
  const uid = /^\d+/.exec(svc.user ?? '')?.[0] ?? '0';
  const gid = /^\d+:(\d+)$/.exec(svc.user ?? '')?.[1] ?? uid;
  const secrets = (svc.secretFiles ?? [])
    .map((f) => ({
      SecretName: secretVersions[f.target] ?? secretVersionName(project, svc, f.target, 'unread'),
      File: { Name: f.target, UID: uid, GID: gid, Mode: 0o400 },
    }))
    .sort((a, b) => (a.File.Name < b.File.Name ? -1 : 1));
  const spec: SwarmServiceSpec = {
    Name: swarmNames.service(project, svc.name),
    Labels: { ...svc.labels, [LABEL.project]: project, [LABEL.service]: svc.name, [LABEL.image]: svc.image, ...(svc.definedAt ? { [LABEL.definedAt]: svc.definedAt } : {}) },
    TaskTemplate: {
      ContainerSpec: {
        Image: svc.image,
        Labels: { ...svc.labels, [SWARM_LABEL.taskOf]: `${project}/${svc.name}` },
        Env: Object.keys(svc.env)
          .sort()
          .map((k) => `${k}=${svc.env[k]}`),
        Mounts: svc.mounts.map((m) =>
          m.type === 'volume'
            ? { Type: 'volume' as const, Source: m.source, Target: m.target, ReadOnly: m.readOnly, VolumeOptions: { Labels: { [LABEL.project]: project, [LABEL.role]: 'volume' } } }
            : { Type: 'bind' as const, Source: m.source, Target: m.target, ReadOnly: m.readOnly },
        ),
        StopGracePeriod: svc.stopGraceSeconds * 1e9,
        Secrets: secrets,
      },
      Resources: { Limits: { NanoCPUs: svc.resources.nanoCpus, MemoryBytes: svc.resources.memory } },
      RestartPolicy: { Condition: RESTART[svc.restart.name], MaxAttempts: svc.restart.maximumRetryCount },
      Placement: {
        Constraints: [...(svc.placement?.constraints ?? [])],
        Preferences: (svc.placement?.preferences ?? []).map((p) => ({ Spread: { SpreadDescriptor: p } })),
      },
      Networks: swarmServiceNetworks(graph, svc).map((n) => ({ Target: n, Aliases: [svc.name] })),
      ForceUpdate: 0,
    },
    Mode: { Replicated: { Replicas: svc.replicas ?? 1 } },
    UpdateConfig: update,
    // Going back uses the same pace and order; a rollback that fails pauses (nothing left to go back to).
    RollbackConfig: { ...update, FailureAction: 'pause' },
    EndpointSpec: {
      Mode: 'dnsrr',
      Ports: svc.ports
        .filter((p) => p.host !== undefined)
        .map((p) => ({ Protocol: p.protocol, TargetPort: p.container, PublishedPort: p.host!, PublishMode: 'host' as const })),
    },
  };
  const cs = spec.TaskTemplate.ContainerSpec;
  // Swarm's Command is the image's ENTRYPOINT and Args its CMD.
  if (svc.entrypoint) cs.Command = [...svc.entrypoint];
  if (svc.command) cs.Args = [...svc.command];
  if (svc.user !== undefined) cs.User = svc.user;
  if (svc.workdir !== undefined) cs.Dir = svc.workdir;
  if (svc.healthcheck) {
    cs.Healthcheck = {
      Test: [...svc.healthcheck.test],
      Interval: svc.healthcheck.intervalNs,
      Timeout: svc.healthcheck.timeoutNs,
      Retries: svc.healthcheck.retries,
      StartPeriod: svc.healthcheck.startPeriodNs,
    };
  }
  return spec;
}

/**
 * The parts of a spec whose change the plan names. The service's own labels are not among them: they
 * repeat the user's labels (in `labels`, on the tasks), the image, and where the service is defined,
 * which moves when lines are added above it and must not update anything.
 */
export function swarmParts(spec: SwarmServiceSpec, secretsDigest: string | undefined): Record<string, unknown> {
  const t = spec.TaskTemplate;
  const c = t.ContainerSpec;
  return {
    image: c.Image,
    command: [c.Command ?? null, c.Args ?? null],
    env: c.Env,
    // Values of secret variables enter through the keyed digest only.
    secrets: [secretsDigest ?? null, c.Secrets.map((s) => [s.SecretName, s.File])],
    mounts: c.Mounts,
    healthcheck: c.Healthcheck ?? null,
    labels: c.Labels,
    user: [c.User ?? null, c.Dir ?? null],
    stopGrace: c.StopGracePeriod,
    resources: t.Resources,
    restart: t.RestartPolicy,
    placement: t.Placement,
    networks: t.Networks,
    ports: spec.EndpointSpec,
    replicas: spec.Mode.Replicated.Replicas,
    rollout: [spec.UpdateConfig, spec.RollbackConfig],
  };
}

const short = (v: unknown) => sha256Hex(canonicalJson(v)).slice(0, 8);

/** The config hash and the per-part label of a spec (hashes only). */
export function swarmHashes(spec: SwarmServiceSpec, secretsDigest: string | undefined): { hash: string; parts: string } {
  const parts = swarmParts(spec, secretsDigest);
  const hashes: Record<string, string> = {};
  for (const [k, v] of Object.entries(parts)) hashes[k] = short(v);
  return { hash: sha256Hex(canonicalJson(parts)), parts: formatPartsLabel(hashes) };
}

/** The spec with its describing labels: hash, parts, commit. */
export function labelledSpec(spec: SwarmServiceSpec, secretsDigest: string | undefined, commit: string): SwarmServiceSpec {
  const { hash, parts } = swarmHashes(spec, secretsDigest);
  return { ...spec, Labels: { ...spec.Labels, [LABEL.configHash]: hash, [LABEL.configParts]: parts, [LABEL.commit]: commit } };
}
