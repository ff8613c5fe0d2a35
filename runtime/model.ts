/**
 * The plain data that flows through the pipeline:
 * load → LoadedRepo → graph → ServiceGraph → observe → ObservedState → plan → Plan → apply → events.
 * Everything here is JSON-serialisable. Secret values never appear in any of it.
 * Imports nothing of ours but `define/` types (the bottom of the dependency order).
 */
import type { SecretDeclData } from '../define/secrets.ts';

/** A declared secret as evaluated from `defineSecrets({...})` (plain data, never a value). The one declaration type, define's. */
export type SecretDecl = SecretDeclData;

// ───────────────────────────── load ─────────────────────────────

/** A reference to another service inside evaluated data. */
export interface ServiceRefData {
  $ref: 'service';
  /** The referenced service's name, or null when the object is not one of the project's services. */
  service: string | null;
  /** Where the referenced service was defined (`file:line:col`), when known. */
  definedAt?: string;
}

/** `api.url('/v1')` inside evaluated data. */
export interface ServiceUrlData {
  $ref: 'service-url';
  service: string | null;
  definedAt?: string;
  path: string;
  scheme: string;
  port?: number;
}

/** `secrets.db.url` inside evaluated data: which secret and key, never a value. */
export interface SecretRefData {
  $ref: 'secret';
  secret: string;
  key: string;
}

/**
 * `secretString\`…\`` inside evaluated data: the literal text and the interpolated parts in order
 * (empty text dropped). Parts are not validated yet: validation accepts strings, numbers, secret
 * references and service URLs.
 */
export interface SecretStringData {
  $ref: 'secret-string';
  parts: unknown[];
}

export type EnvValueData = string | number | boolean | ServiceUrlData | SecretRefData | SecretStringData;

/** A service definition after evaluation: the user's object with references replaced by data. */
export interface ServiceData {
  name?: unknown;
  image?: unknown;
  command?: unknown;
  entrypoint?: unknown;
  env?: Record<string, unknown>;
  port?: unknown;
  ports?: unknown;
  volumes?: unknown;
  healthcheck?: unknown;
  restart?: unknown;
  resources?: unknown;
  dependsOn?: unknown;
  connects?: unknown;
  labels?: unknown;
  user?: unknown;
  workdir?: unknown;
  stopGracePeriod?: unknown;
  files?: unknown;
  pull?: unknown;
  routes?: unknown;
  develop?: unknown;
  [key: string]: unknown;
}

export interface LoadedService {
  /** Name as written or derived from the file name. Not yet validated. */
  name: string;
  /** File relative to the repository root, with forward slashes. */
  file: string;
  /** `file:line:col` of the `defineService` call, relative to the root, when known. */
  definedAt?: string;
  data: ServiceData;
}

export interface LoadedRepo {
  /** Absolute path of the repository root. */
  root: string;
  /** `waffle.config.ts` relative to the root. */
  configFile: string;
  /** The evaluated config object (not yet validated). */
  config: Record<string, unknown>;
  services: LoadedService[];
  /** Every file the bundle read, relative to the root (for watching). */
  inputs: string[];
}

// ───────────────────────────── graph ─────────────────────────────

export interface PortBinding {
  container: number;
  /** Undefined: a random host port. */
  host?: number;
  hostIp: string;
  protocol: 'tcp' | 'udp';
}

export type Mount =
  | { type: 'volume'; name: string; /** Docker name: `<project>_<name>` */ source: string; target: string; readOnly: boolean }
  | { type: 'bind'; /** Absolute host path. */ source: string; target: string; readOnly: boolean };

/** Docker's healthcheck, in Docker's units (nanoseconds). */
export interface HealthcheckSpec {
  test: string[];
  intervalNs: number;
  timeoutNs: number;
  retries: number;
  startPeriodNs: number;
  /** What was written, for display: `http /health :8080`, `tcp :5432`, `command ...`. */
  describe: string;
}

export interface RestartSpec {
  name: 'no' | 'always' | 'unless-stopped' | 'on-failure';
  maximumRetryCount: number;
}

export interface ResourcesSpec {
  /** Bytes; 0 means unlimited. */
  memory: number;
  /** Nano CPUs; 0 means unlimited. */
  nanoCpus: number;
}

export interface DependencySpec {
  service: string;
  condition: 'started' | 'healthy';
}

/** Where a Swarm service's tasks may run. */
export interface PlacementSpec {
  /** `node.labels.disk == ssd`, as written (spaces normalised). */
  constraints: string[];
  /** Node attributes to spread the tasks over (`node.labels.zone`). */
  preferences: string[];
}

/** How Swarm rolls out a change of a service (Docker's `UpdateConfig`), in Docker's units. */
export interface RolloutSpec {
  parallelism: number;
  delayNs: number;
  order: 'start-first' | 'stop-first';
  failureAction: 'rollback' | 'pause' | 'continue';
  monitorNs: number;
}

/** One public route of a service, normalised: path always set (`/` for the whole domain), port resolved. */
export interface RouteSpec {
  domain: string;
  /** `/` or a prefix without a trailing slash. */
  path: string;
  port: number;
  stripPrefix: boolean;
}

/** `defineConfig({ ingress })`, validated, defaults filled. */
export interface IngressSpec {
  provider: 'caddy' | 'traefik';
  /** Caddy's admin API base URL (`http(s)://host:port` or `unix:///path`), without a trailing slash. */
  admin: string;
  /** The Caddy server the project's routes go into. */
  server: string;
  /** Swarm: the Caddy container waffle attaches to the routed services' ingress networks. */
  container?: string;
  tls: 'internal' | { acme: { email: string; staging: boolean } };
  drainSeconds: number;
  /** Maintenance page file, relative to the repository root, when set. */
  maintenancePage?: string;
  traefik: { entrypoints: string[]; certResolver?: string };
}

/** A service after validation and normalisation: every default filled, every reference a name. */
export interface ServiceSpec {
  name: string;
  file: string;
  definedAt?: string;
  image: string;
  command?: string[];
  entrypoint?: string[];
  /** Resolved environment (service URLs become strings). Sorted by key. */
  env: Record<string, string>;
  port?: number;
  ports: PortBinding[];
  mounts: Mount[];
  healthcheck?: HealthcheckSpec;
  restart: RestartSpec;
  resources: ResourcesSpec;
  dependsOn: DependencySpec[];
  /** Services this one is linked with (both directions merged), sorted. */
  links: string[];
  labels: Record<string, string>;
  user?: string;
  workdir?: string;
  stopGraceSeconds: number;
  /**
   * Environment variables filled from secrets at apply time: name → which secret and key, or a
   * template (`secretString`) of text and references. Present only when used.
   */
  secretEnv?: Record<string, SecretValueSpec>;
  /** Files written from secrets at apply time (tmpfs, 0400, read-only mount), sorted by target. Present only when used. */
  secretFiles?: Array<{ target: string } & SecretValueSpec>;
  /**
   * When the image is fetched: `'missing'` uses the local image when present; `'always'` resolves the
   * tag against the registry on every plan (a re-pushed tag redeploys). The service's `pull`, else the
   * project's, else `'missing'`.
   */
  pull: 'missing' | 'always';
  /** Swarm target only (absent on the engine target, where a service is one container): tasks to run. */
  replicas?: number;
  /** Swarm target only: placement constraints and preferences. */
  placement?: PlacementSpec;
  /** Swarm target only: how a change rolls out. */
  rollout?: RolloutSpec;
  /** Public routes through the project's proxy, sorted by domain and path. Present only when used. */
  routes?: RouteSpec[];
  /** Host paths `waffle dev` watches for this service (absolute), with their action. Not part of the config hash. */
  develop?: DevelopWatchSpec[];
  /** Automatic image updates (the agent deploys newly pushed tags it allows). Present only when written. */
  update?: UpdatePolicySpec;
}

/** One `develop.watch` entry, normalised: an absolute host path. */
export interface DevelopWatchSpec {
  path: string;
  action: 'sync' | 'restart' | 'sync+restart';
  /** Absolute path in the container (sync). */
  target?: string;
  /** File or folder names left alone below `path`. */
  ignore: string[];
}

/** Which tags of a service's image the agent may deploy by itself, validated (see define's `ImageUpdatePolicy`). */
export interface UpdatePolicySpec {
  tags: { glob: string } | { regex: string; sortBy?: string } | { semver: string };
  order: 'semver' | 'numeric' | 'newest';
  /** Milliseconds a tag must have existed (since its push) before it is deployed; 0 for none. */
  cooldownMs: number;
}

/** The project's `updates` settings, validated: the agent's tag poll and the registries' credentials. */
export interface UpdateSettingsSpec {
  /** Poll interval in milliseconds; absent: no poll (webhooks only). */
  pollMs?: number;
  /** Credentials per registry host: a user name (text or a secret key) and a password (a secret key). Never values. */
  registries: Record<string, { username: string | SecretKeySpec; password: SecretKeySpec }>;
}

/** One key of one declared secret. */
export interface SecretKeySpec {
  secret: string;
  key: string;
}

/**
 * A secret value built from parts (`secretString`): plain text (non-secret, from the repository) and
 * references, joined in order at apply time. Holds at least one reference; never a value.
 */
export interface SecretTemplateSpec {
  template: Array<string | SecretKeySpec>;
}

/** What a secret variable or file holds: one key, or a template of text and keys. */
export type SecretValueSpec = SecretKeySpec | SecretTemplateSpec;

/** Vault connection settings from `defineConfig({ vault })` (no credentials: those come from the environment). */
export interface VaultSettingsSpec {
  address: string;
  namespace?: string;
  auth: { method: 'token'; tokenEnv: string } | { method: 'approle'; roleId: string; secretIdEnv: string; mount: string };
  /** Fraction of a lease's TTL after which it is renewed (0 < f < 1). */
  renewFraction: number;
}

export interface ServiceGraph {
  project: string;
  root: string;
  configFile: string;
  /** Docker host from the config, if set. */
  dockerHost?: string;
  /** What the services run on; absent means the single engine (`'engine'`). */
  target?: 'engine' | 'swarm';
  parallelism: number;
  /** Services by name. */
  services: Record<string, ServiceSpec>;
  /** Names in a dependency order (dependencies first), ties broken by name. */
  order: string[];
  /** Linked pairs `[a, b]` with a < b, sorted. */
  links: Array<[string, string]>;
  /** Named volumes (short names), sorted. */
  volumes: string[];
  /** Declared secrets by name (declarations only, never values). Present only when declared. */
  secrets?: Record<string, SecretDecl>;
  /** Vault settings, when configured. */
  vault?: VaultSettingsSpec;
  /**
   * `defineConfig({ evaluation })`, validated: the environment variable names the configuration may
   * read while it is evaluated (sorted, without duplicates) and the evaluation heap limit in MiB.
   * Present only when configured.
   */
  evaluation?: { env: string[]; memoryMb?: number };
  /** Reverse proxy settings: present when the config sets `ingress` or a service has `routes`. */
  ingress?: IngressSpec;
  /** `defineConfig({ updates })`, validated. Present only when configured. */
  updates?: UpdateSettingsSpec;
  /**
   * `defineConfig({ rollback })`, validated: how many stopped containers of each service a replace keeps
   * for `waffle rollback` (0: none, the old container is removed). Present only when configured (default 3).
   */
  rollback?: { keep: number };
}

/** One problem found while loading or validating. */
export interface Problem {
  file: string;
  /** Service name, when the problem belongs to one. */
  service?: string;
  /** `line:col` or a field path such as `ports[1]`. */
  where?: string;
  /** `line:col` in `file` of the field `where` names (or of the `defineService` call), when `where` is a field path. */
  loc?: string;
  message: string;
  /** How to fix it. */
  fix?: string;
}

// ───────────────────────────── observe ─────────────────────────────

export interface ObservedContainer {
  id: string;
  /** Without the leading slash. */
  name: string;
  service: string;
  configHash: string;
  commit: string;
  generation: number;
  image: string;
  imageId: string;
  /** created | running | paused | restarting | removing | exited | dead */
  state: string;
  /** healthy | unhealthy | starting | none */
  health: string;
  labels: Record<string, string>;
  restart: RestartSpec;
  resources: ResourcesSpec;
  createdAt: number;
  ports: Array<{ container: number; host?: number; hostIp?: string; protocol: string }>;
  /** Its address on each network it is attached to (network name → IPv4), when Docker lists one. */
  addresses?: Record<string, string>;
}

export interface ObservedNetwork {
  id: string;
  name: string;
  labels: Record<string, string>;
}

export interface ObservedVolume {
  name: string;
  labels: Record<string, string>;
}

/**
 * The project's part of the reverse proxy's configuration, as read on every plan. `current` is the
 * provider's own JSON of what it holds for the project (null: nothing, e.g. a proxy restarted empty).
 */
export interface ObservedProxy {
  /** The project's routes object as the proxy returned it; null when absent. */
  current: unknown;
  /** The project's TLS policy as the proxy returned it; null when absent. */
  currentTls: unknown;
}

export interface ObservedState {
  project: string;
  /** The proxy's configuration for the project, when the project has an ingress. */
  proxy?: ObservedProxy;
  containers: ObservedContainer[];
  networks: ObservedNetwork[];
  volumes: ObservedVolume[];
  /** Image references present in the engine (repo:tag and repo@digest). */
  images: string[];
  /** Each of `images` → the image ID it names now; the plan compares it with a container's `imageId`. */
  imageIds?: Record<string, string>;
  /** Swarm target only: the project's services, tasks and secrets as the Swarm managers report them. */
  swarm?: ObservedSwarm;
}

/** A Swarm service of the project (from the service list: its spec version, labels and update status). */
export interface ObservedSwarmService {
  id: string;
  /** Swarm's name, `<project>_<service>`. */
  name: string;
  service: string;
  /** The spec's `Version.Index`: an update must name it (Swarm refuses an update of a newer spec). */
  version: number;
  configHash: string;
  labels: Record<string, string>;
  replicas: number;
  image: string;
  /** Swarm secrets the tasks get, by name. */
  secrets: string[];
  /** `updating`, `paused`, `completed`, `rollback_started`, `rollback_paused`, `rollback_completed`, when an update ran. */
  updateState?: string;
  updateMessage?: string;
}

/** One task (a replica's container on some node). */
export interface ObservedSwarmTask {
  id: string;
  serviceId: string;
  service: string;
  slot?: number;
  node?: string;
  /** Swarm's task state: new, pending, assigned, preparing, starting, running, complete, failed, shutdown, rejected… */
  state: string;
  desiredState: string;
  /** Swarm's error text for a failed task (`task: non-zero exit (1)`, `unhealthy container`). */
  error?: string;
  message?: string;
  containerId?: string;
  image?: string;
  /** The task object's own version (Swarm's `Version.Index` of the task). */
  version?: number;
  createdAt: number;
}

export interface ObservedSwarmSecret {
  id: string;
  name: string;
  labels: Record<string, string>;
}

export interface ObservedSwarm {
  services: ObservedSwarmService[];
  tasks: ObservedSwarmTask[];
  secrets: ObservedSwarmSecret[];
  /** The Caddy container of `ingress.caddy.container` (read when planning): the networks it is attached to, sorted. */
  caddy?: { container: string; networks: string[] };
}

// ───────────────────────────── plan ─────────────────────────────

/** The body of Docker's `POST /containers/create`, fully computed by the planner. */
export interface ContainerCreateBody {
  Image: string;
  Cmd?: string[];
  Entrypoint?: string[];
  Env: string[];
  Labels: Record<string, string>;
  User?: string;
  WorkingDir?: string;
  ExposedPorts: Record<string, Record<string, never>>;
  Healthcheck?: { Test: string[]; Interval: number; Timeout: number; Retries: number; StartPeriod: number };
  StopTimeout: number;
  HostConfig: {
    RestartPolicy: { Name: string; MaximumRetryCount: number };
    Memory: number;
    NanoCpus: number;
    PortBindings: Record<string, Array<{ HostIp: string; HostPort: string }>>;
    Mounts: Array<{ Type: 'volume' | 'bind'; Source: string; Target: string; ReadOnly: boolean }>;
    NetworkMode: string;
  };
  NetworkingConfig: { EndpointsConfig: Record<string, { Aliases: string[] }> };
}

export interface NetworkCreateBody {
  Name: string;
  /** `bridge` on the engine target, `overlay` on Swarm. */
  Driver: 'bridge' | 'overlay';
  Internal: boolean;
  /** Swarm: a standalone container (the Caddy container) may join this overlay network. */
  Attachable?: boolean;
  Labels: Record<string, string>;
  Options: Record<string, string>;
}

/** Why an operation is in the plan. */
export interface Cause {
  /** Short machine-readable kind: `new`, `image`, `env`, `ports`, `restart`, `resources`, `removed`, ... */
  kind: string;
  /** Human text, never containing a secret value. */
  detail: string;
}

interface OpBase {
  /** Stable id, unique in the plan, e.g. `create:api`. */
  id: string;
  /** Ids of operations that must finish first. */
  after: string[];
  causes: Cause[];
}

export type Operation =
  | (OpBase & { kind: 'pull-image'; image: string })
  | (OpBase & { kind: 'create-network'; network: string; body: NetworkCreateBody })
  | (OpBase & { kind: 'remove-network'; network: string })
  | (OpBase & { kind: 'create-volume'; volume: string; labels: Record<string, string> })
  | (OpBase & {
      kind: 'create-service';
      service: string;
      containerName: string;
      body: ContainerCreateBody;
      /** Wait for this health before the operation counts as done. */
      waitHealthy: boolean;
      /** A routed service: once healthy, the proxy's routes point at the container's address on this network. */
      route?: { network: string };
    })
  | (OpBase & {
      kind: 'replace-service';
      service: string;
      strategy: 'start-first' | 'stop-first';
      /** Why the strategy: e.g. `fixed host port 8080`. */
      strategyReason: string;
      oldContainerId: string;
      oldContainerName: string;
      containerName: string;
      tempName: string;
      /** The new container's body: on every network, but without the service alias (it gets it in the switch). */
      body: ContainerCreateBody;
      waitHealthy: boolean;
      /** What the replace does, in order (see {@link ServiceStep}). */
      steps: ServiceStep[];
      /**
       * Run when a step fails before the old container is let go (up to and including the switch), after the
       * new container is removed: stop-first starts the old one again. A later failure (taking the alias from
       * the old one, draining, stopping, removing, renaming) rolls nothing back: both containers stay, and the
       * next apply finishes the job with a `rename-service`.
       */
      rollback: ServiceStep[];
    })
  | (OpBase & {
      kind: 'rename-service';
      service: string;
      /** The container kept: it already has the desired configuration (a replace interrupted after its create). */
      containerId: string;
      /** Its name now (a temporary one, or the canonical one when only stale duplicates go). */
      currentName: string;
      /** The canonical name. */
      containerName: string;
      /** Health gate, switch of the alias, stale duplicates out, rename (see {@link ServiceStep}). */
      steps: ServiceStep[];
    })
  | (OpBase & {
      kind: 'update-service';
      service: string;
      containerId: string;
      update: { RestartPolicy?: { Name: string; MaximumRetryCount: number }; Memory?: number; MemorySwap?: number; NanoCpus?: number };
    })
  /** Swarm target: a new Swarm service (`spec` is Docker's ServiceSpec; secret values are bound at apply). */
  | (OpBase & { kind: 'create-swarm-service'; service: string; name: string; spec: SwarmServiceSpec; replicas: number })
  /**
   * Swarm target: a new spec for an existing service, sent with the version it was planned against.
   * `rolls`: the task template changed, so Swarm replaces the tasks (a rolling update); otherwise only
   * the replica count or service settings change.
   */
  | (OpBase & {
      kind: 'update-swarm-service';
      service: string;
      name: string;
      serviceId: string;
      version: number;
      spec: SwarmServiceSpec;
      replicas: number;
      rolls: boolean;
    })
  | (OpBase & { kind: 'remove-swarm-service'; service: string; name: string; serviceId: string })
  /**
   * Swarm target, `waffle rollback`: Swarm's own rollback of the service to its previous spec (server-side,
   * `rollback=previous`), sent with the spec version it was planned against. `to` and `from` say what the
   * previous and the current spec run; `deadlineMs` bounds the wait for Swarm's `rollback_completed`.
   */
  | (OpBase & {
      kind: 'rollback-swarm-service';
      service: string;
      name: string;
      serviceId: string;
      version: number;
      replicas: number;
      to: SwarmSpecSummary;
      from: SwarmSpecSummary;
      deadlineMs: number;
      definedAt?: string;
    })
  /** Swarm target: one version of a secret file's content (its value is bound at apply, never in the plan). */
  | (OpBase & { kind: 'create-swarm-secret'; secret: string; labels: Record<string, string>; source: { service: string; target: string } })
  | (OpBase & { kind: 'remove-swarm-secret'; secret: string; secretId: string })
  | (OpBase & {
      kind: 'rollback-service';
      service: string;
      strategy: 'start-first' | 'stop-first';
      /** Why the strategy: e.g. `fixed host port 8080`. */
      strategyReason: string;
      /** The kept container that serves again, and its generation. */
      targetId: string;
      targetName: string;
      generation: number;
      /** The container serving now (kept in its turn), when the service has one. */
      currentId?: string;
      currentName?: string;
      currentGeneration?: number;
      /** The canonical name the target takes. */
      containerName: string;
      /** The replace sequence with an existing container as the new one (see {@link ServiceStep}). */
      steps: ServiceStep[];
      /** Run when a step fails before the current container is let go: the target is stopped and kept again. */
      rollback: ServiceStep[];
    })
  | (OpBase & {
      kind: 'start-service';
      service: string;
      containerId: string;
      waitHealthy: boolean;
      /** A routed service: once started (and healthy), the proxy's routes point at the container's address on this network. */
      route?: { network: string };
    })
  | (OpBase & { kind: 'remove-service'; service: string; containerId: string; containerName: string; stopTimeout: number })
  /**
   * Puts the project's routes in the proxy back to what the plan's `proxy` table says (drift, removed
   * services, maintenance). Swarm: first attaches the Caddy `container` to the networks in `attach`, then
   * pushes the table, then detaches it from those in `detach`.
   */
  | (OpBase & { kind: 'configure-proxy'; provider: 'caddy'; container?: string; attach?: string[]; detach?: string[] });

export type OperationKind = Operation['kind'];

/**
 * Docker's ServiceSpec (`POST /services/create`), as the Swarm planner computes it. Secrets are named
 * (their IDs are looked up at apply); environment values from secrets are added at apply.
 */
export interface SwarmServiceSpec {
  Name: string;
  Labels: Record<string, string>;
  TaskTemplate: {
    ContainerSpec: {
      Image: string;
      Labels: Record<string, string>;
      Command?: string[];
      Args?: string[];
      Env: string[];
      User?: string;
      Dir?: string;
      Mounts: Array<{
        Type: 'volume' | 'bind';
        Source: string;
        Target: string;
        ReadOnly: boolean;
        VolumeOptions?: { Labels: Record<string, string> };
      }>;
      Healthcheck?: { Test: string[]; Interval: number; Timeout: number; Retries: number; StartPeriod: number };
      StopGracePeriod: number;
      Secrets: Array<{ SecretName: string; SecretID?: string; File: { Name: string; UID: string; GID: string; Mode: number } }>;
    };
    Resources: { Limits: { NanoCPUs: number; MemoryBytes: number } };
    RestartPolicy: { Condition: 'none' | 'on-failure' | 'any'; MaxAttempts: number };
    Placement: { Constraints: string[]; Preferences: Array<{ Spread: { SpreadDescriptor: string } }> };
    Networks: Array<{ Target: string; Aliases: string[] }>;
    ForceUpdate: number;
  };
  Mode: { Replicated: { Replicas: number } };
  UpdateConfig: { Parallelism: number; Delay: number; FailureAction: string; Monitor: number; MaxFailureRatio: number; Order: string };
  RollbackConfig: { Parallelism: number; Delay: number; FailureAction: string; Monitor: number; MaxFailureRatio: number; Order: string };
  EndpointSpec: { Mode: 'dnsrr'; Ports: Array<{ Protocol: 'tcp' | 'udp'; TargetPort: number; PublishedPort: number; PublishMode: 'host' }> };
}

/** What a Swarm rollback pinned: the spec it went back to and the one it left (labels, never a value). */
export interface SwarmPin {
  /** The config-hash label of the spec rolled back to: the pin holds while the service carries it. */
  configHash: string;
  image: string;
  commit: string;
  /** The spec it left. */
  fromImage: string;
  fromCommit: string;
}

/** What a Swarm service spec runs, as a rollback names it: image, commit label and config-hash label (never a value). */
export interface SwarmSpecSummary {
  image: string;
  /** The spec's commit label ('' when it has none). */
  commit: string;
  /** The spec's config-hash label ('' when it has none). */
  configHash: string;
}

/** A container a step acts on: an existing one (id and name), or `new`, the one the operation creates. */
export type StepTarget = 'new' | { id: string; name: string };

/**
 * One step of a replace or rename, as planned: one Docker call or one wait. The executor runs them in
 * order and emits one `step` event per step (same name as `step`).
 * - `creating`: create the new container under `name` (the body's networks, without the service alias);
 * - `starting`, `waiting-health`: start it, wait until it is healthy (running, without a healthcheck);
 * - `switching`: give `target` the service alias on one link network (Docker cannot add an alias to an
 *   endpoint, so it is disconnected and connected again with it; nothing is done when it has the alias).
 *   The place where traffic moves;
 * - `unaliasing-old`: take the alias away from an old container on one network (disconnect, connect again
 *   without it): clients stop resolving it, and it usually gets its address back, so requests in flight
 *   finish after a retransmit;
 * - `routing`: point the proxy's routes of the service at `target`'s address on the ingress `network`
 *   (one atomic change of the proxy's configuration). Comes after the health gate: a route never points
 *   at a container that has not passed its healthcheck;
 * - `draining`: wait while the old container finishes what it was sent before;
 * - `stopping-old` (its own stop grace period), `removing-old`, `renaming`;
 * - `retaining-old`: keep a stopped old container for `waffle rollback`: its restart policy becomes `no`
 *   (a restarted engine does not bring it back) and it is renamed to `to` (its kept name);
 * - `restoring`: give a kept container its restart policy back before it serves again.
 */
export type ServiceStep =
  | { step: 'creating'; name: string }
  | { step: 'starting'; target: StepTarget }
  | { step: 'waiting-health'; target: StepTarget }
  | { step: 'switching'; target: StepTarget; network: string; aliases: string[] }
  | { step: 'unaliasing-old'; target: { id: string; name: string }; network: string; aliases: string[] }
  | { step: 'routing'; target: StepTarget; network: string }
  | { step: 'draining'; seconds: number }
  | { step: 'stopping-old'; target: { id: string; name: string } }
  | { step: 'removing-old'; target: { id: string; name: string } }
  | { step: 'renaming'; target: StepTarget; from: string; to: string }
  | { step: 'retaining-old'; target: { id: string; name: string }; to: string }
  | { step: 'restoring'; target: { id: string; name: string }; restart: RestartSpec };

/**
 * A service pinned by `waffle rollback`: left alone by the plan (`held`), or released because its
 * definition in the repository changed or its pinned container is gone (`dropped`; apply forgets the pin).
 */
export interface PinLine {
  service: string;
  generation: number;
  state: 'held' | 'dropped';
  /** Human text: why held or dropped. */
  detail: string;
}

export interface Plan {
  project: string;
  /** Hash of the observed state the plan was made from; apply refuses a stale plan. */
  observedFingerprint: string;
  operations: Operation[];
  /** Services that need nothing. */
  unchanged: string[];
  /** Services pinned by a rollback: held or dropped. Present only when a pin exists. */
  pins?: PinLine[];
  /** The proxy's desired routes for the project, when it has an ingress: what apply pushes and switches. */
  proxy?: ProxyTable;
}

/** One route of the proxy table. */
export interface ProxyRoute {
  domain: string;
  path: string;
  service: string;
  port: number;
  stripPrefix: boolean;
}

/**
 * What the project's proxy configuration should be: the routes, which address each service is reached
 * at (null: no container has passed its healthcheck yet, so its routes are left out), and which services
 * answer with a maintenance page. Plain data; the provider's adapter renders it.
 */
export interface ProxyTable {
  provider: 'caddy';
  project: string;
  admin: string;
  server: string;
  tls: IngressSpec['tls'];
  /** Sorted by domain, then longest path first. */
  routes: ProxyRoute[];
  /** Service → the container's address (IPv4) on the ingress network, or null. */
  upstreams: Record<string, string | null>;
  /**
   * Swarm: service → the DNS name whose A records are its tasks' addresses (`tasks.<project>_<service>`),
   * which the proxy looks up again every second, so it follows Swarm's tasks with no change of its
   * configuration. A service here is routed whatever `upstreams` says.
   */
  tasks?: Record<string, string>;
  /** Service → the page it answers with 503 while in maintenance. */
  maintenance: Record<string, string>;
}

// ───────────────────────────── apply events ─────────────────────────────

export type Step =
  | 'pulling'
  | 'creating'
  | 'starting'
  | 'waiting-health'
  | 'switching'
  | 'routing'
  | 'unaliasing-old'
  | 'draining'
  | 'stopping-old'
  | 'removing-old'
  | 'renaming'
  | 'retaining-old'
  | 'restoring'
  | 'updating'
  | 'stopping'
  | 'removing'
  | 'rolling-back';

export interface FailureDetail {
  message: string;
  /** Last healthcheck outputs, newest last. */
  healthOutput?: string[];
  /** Last log lines of the failed container. */
  logTail?: string[];
  /** Where the service is defined. */
  definedAt?: string;
}

export type ApplyEvent =
  | { type: 'apply-start'; project: string; operations: number; at: number }
  | { type: 'op-start'; op: string; kind: OperationKind; service?: string; at: number }
  | { type: 'step'; op: string; service?: string; step: Step; detail?: string; at: number }
  | { type: 'pull-progress'; op: string; image: string; layers: number; layersDone: number; current: number; total: number; at: number }
  | { type: 'health-wait'; op: string; service: string; status: string; deadline: number; at: number }
  /**
   * Swarm target: one task of a service changed state while an operation waits for it (a rolling
   * update, a scale, a create). `slot` is the replica number; `error` is Swarm's text for a failed task.
   */
  | {
      type: 'task-progress';
      op: string;
      service: string;
      task: string;
      slot?: number;
      node?: string;
      state: string;
      desiredState: string;
      /** Whether the task runs the spec this operation sent (false: an old task, or one of a rollback). */
      current: boolean;
      error?: string;
      /** Swarm's update state of the service, when an update runs (`updating`, `rollback_started`…). */
      update?: string;
      /** The replicas the operation asked for (how many new tasks make it done). */
      replicas?: number;
      at: number;
    }
  | { type: 'op-done'; op: string; kind: OperationKind; service?: string; containerId?: string; ms: number; at: number }
  | { type: 'op-failed'; op: string; kind: OperationKind; service?: string; failure: FailureDetail; ms: number; at: number }
  | { type: 'op-skipped'; op: string; kind: OperationKind; service?: string; reason: string; at: number }
  | {
      type: 'apply-done';
      ok: boolean;
      summary: { created: number; replaced: number; updated: number; removed: number; failed: number; skipped: number };
      ms: number;
      at: number;
    };

// ───────────────────────────── engine events ─────────────────────────────

/** What a run of the engine does. */
export type RunKind = 'plan' | 'apply' | 'destroy' | 'status' | 'check' | 'rollback' | 'maintenance' | 'develop';

/** Where a run failed before (or instead of) changing anything. */
export type FailureStage = 'load' | 'validate' | 'secrets' | 'docker' | 'proxy' | 'lock' | 'stale' | 'apply' | 'destroy' | 'rollback' | 'interrupted';

/** Operation counts of a plan, by what happens to services. */
export interface PlanOpCounts {
  create: number;
  replace: number;
  update: number;
  start: number;
  remove: number;
  unchanged: number;
  /** Image, network and volume operations. */
  infra: number;
}

/** Planning reports its progress and its failures as events, like apply does. */
export type PlanningEvent =
  | { type: 'run-start'; kind: RunKind; source: 'dir' | 'graph'; root: string; offline: boolean; at: number }
  | { type: 'load-start'; root: string; at: number }
  | {
      type: 'load-done';
      files: number;
      services: number;
      /** Every file the bundles read, relative to the root (what `waffle dev` watches); absent for a stored graph. */
      inputs?: string[];
      /** The configuration's service globs (new files matching them are services). */
      serviceGlobs?: string[];
      ms: number;
      at: number;
    }
  /** Waiting for earlier runs of the same project in this process (`ahead` of them). */
  | { type: 'queued'; ahead: number; at: number }
  | { type: 'dequeued'; waitedMs: number; at: number }
  /** Something worth knowing that changes nothing (e.g. a lock left by a dead waffle was taken over). */
  | { type: 'notice'; message: string; at: number }
  | { type: 'secrets-checked'; providers: string[]; /** Services whose secrets were not checked (offline). */ notChecked: string[]; ms: number; at: number }
  | { type: 'observe-start'; at: number }
  | { type: 'observe-done'; containers: number; networks: number; volumes: number; ms: number; at: number }
  | {
      type: 'plan-ready';
      operations: number;
      counts: PlanOpCounts;
      /** Services whose secrets were not checked (offline plan): their secret-caused changes are unknown. */
      notChecked: string[];
      offline: boolean;
      commit: string;
      plan: Plan;
      ms: number;
      at: number;
    }
  /** The run stopped before or instead of its change; every problem with file, service, message and fix. */
  | { type: 'run-failed'; stage: FailureStage; message: string; problems: Problem[]; at: number }
  /** The caller said no (a prompt): nothing was changed. */
  | { type: 'run-cancelled'; reason: string; at: number };

export type DestroyRunEvent =
  | { type: 'destroy-start'; volumes: boolean; at: number }
  | {
      type: 'destroy-item';
      state: 'removing' | 'removed' | 'failed';
      /** `service` and `secret`: Swarm services and secrets (the Swarm target). */
      what: 'container' | 'network' | 'volume' | 'service' | 'secret';
      name: string;
      message?: string;
      at: number;
    }
  | {
      type: 'destroy-done';
      ok: boolean;
      removed: { containers: string[]; networks: string[]; volumes: string[]; services?: string[]; secrets?: string[] };
      errors: string[];
      revokedLeases: number;
      leaseErrors: string[];
      ms: number;
      at: number;
    };

/** `waffle dev`'s own actions on a running service (`develop.watch`): files copied in, a restart. */
export type DevelopRunEvent = {
  type: 'develop-done';
  service: string;
  container: string;
  /** Container paths of the files copied in. */
  synced: string[];
  restarted: boolean;
  ms: number;
  at: number;
};

/** Everything an engine run emits. */
export type EngineEvent = PlanningEvent | ApplyEvent | DestroyRunEvent | DevelopRunEvent;

/** Stamped on every event by the engine: which run, its order in the run, and the project. */
export interface RunStamp {
  /** Unique id of this plan/apply/destroy run. */
  run: string;
  /** 1, 2, 3… within the run. */
  seq: number;
  /** Null only before the configuration named the project (load-start, a load failure). */
  project: string | null;
}

export type RunEvent = EngineEvent & RunStamp;
