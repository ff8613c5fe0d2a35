/**
 * Wafflemaker's public authoring API.
 *
 * A source-of-truth repository writes `waffle.config.ts` with {@link defineConfig} and one
 * `services/<name>.ts` per service with {@link defineService}. Everything here is pure: no I/O.
 * Evaluated definitions become plain, serialisable data (see `runtime/load`).
 *
 * References between services are values, not strings: `import api from './api'` then
 * `dependsOn: [api]`, `connects: [api]` or `env: { API_URL: api.url('/v1') }`.
 */

import { WAFFLE_BRAND } from './brand.js';
import type { SecretCollection, SecretRef, SecretString, VaultSettings } from './secrets.js';

export { WAFFLE_BRAND };
export * from './secrets.js';

/** A duration: milliseconds as a number, or a string such as `'500ms'`, `'5s'`, `'2m'`, `'1h'`. */
export type Duration = number | `${number}ms` | `${number}s` | `${number}m` | `${number}h`;

/** A memory size: bytes as a number, or a string such as `'256m'`, `'1g'`, `'512k'`, `'64mb'`. */
export type MemorySize = number | `${number}${'b' | 'k' | 'kb' | 'm' | 'mb' | 'g' | 'gb'}`;

/** Restart policy of the container (Docker's `--restart`). */
export type RestartPolicy =
  | 'no'
  | 'always'
  | 'unless-stopped'
  | 'on-failure'
  | { policy: 'on-failure'; /** Give up after this many restarts. */ maxRetries: number };

/**
 * A published port.
 * - a number `8080`: container port 8080 published on the same host port;
 * - a string `'8080:80'`, `'127.0.0.1:8080:80'`, `'53:53/udp'` (Docker's short syntax);
 * - an object for the long form.
 */
export type PortSpec =
  | number
  | `${number}:${number}`
  | `${number}:${number}/${'tcp' | 'udp'}`
  | `${string}:${number}:${number}`
  | `${string}:${number}:${number}/${'tcp' | 'udp'}`
  | {
      /** Port inside the container. */
      container: number;
      /** Port on the host. Omit to publish on a random free host port. */
      host?: number;
      /** Host address to bind, for example `'127.0.0.1'`. Default: all addresses. */
      hostIp?: string;
      /** Default `'tcp'`. */
      protocol?: 'tcp' | 'udp';
    };

/** A volume mounted into the container. */
export type VolumeSpec =
  | {
      /** A named volume owned by the project (created on first apply, kept by `destroy` unless `--volumes`). */
      name: string;
      /** Absolute path inside the container. */
      target: string;
      /** Mount read-only. Default false. */
      readOnly?: boolean;
    }
  | {
      /** A host path; a relative path is resolved from the repository root. */
      bind: string;
      /** Absolute path inside the container. */
      target: string;
      /** Mount read-only. Default false. */
      readOnly?: boolean;
    };

/** Timing shared by every kind of healthcheck. */
export interface HealthTiming {
  /** Time between checks. Default `'5s'`. */
  interval?: Duration;
  /** Time one check may take. Default `'3s'`. */
  timeout?: Duration;
  /** Consecutive failures before the container is unhealthy. Default 3. */
  retries?: number;
  /** Grace period after start during which failures do not count. Default `'0s'`. */
  startPeriod?: Duration;
}

/**
 * How Docker decides the container is healthy. The check runs inside the container:
 * `http` and `tcp` need `wget`, `curl` or `nc` in the image (busybox has them).
 */
export type Healthcheck =
  | (HealthTiming & {
      /** HTTP GET this path; healthy on a 2xx/3xx answer. */
      http: `/${string}`;
      /** Container port to probe. Default: the service's `port`. */
      port?: number;
    })
  | (HealthTiming & {
      /** Healthy when this container port accepts a TCP connection. */
      tcp: number;
    })
  | (HealthTiming & {
      /** Run this command; exit code 0 means healthy. A string runs through `/bin/sh -c`. */
      command: string | string[];
    });

/** Resource limits; they change in place (no restart). */
export interface Resources {
  /** Memory limit, for example `'256m'`. */
  memory?: MemorySize;
  /** CPU limit in cores, for example `0.5`. */
  cpus?: number;
}

/**
 * When the image is fetched from its registry.
 * - `'missing'`: use the image already on the Docker host; pull it only when it is absent. A tag that
 *   was pushed again with new content is not noticed until the local copy is removed.
 * - `'always'`: resolve the tag against the registry on every plan, so a tag pushed again (same name,
 *   new content) redeploys the service. Needs the registry to be reachable when planning.
 */
export type PullPolicy = 'missing' | 'always';

/**
 * How `waffle.config.ts` and the service files are evaluated (in a separate, sandboxed process).
 *
 * @example
 * evaluation: { env: ['DEPLOY_ENV', 'API_REPLICAS'], memoryMb: 256 }
 */
export interface EvaluationSettings {
  /**
   * Names of the environment variables the configuration may read while it is evaluated
   * (`process.env.DEPLOY_ENV`). The evaluation process gets only these; every other variable of the
   * deployer (tokens, credentials) is absent. Names that look like credentials (`*_TOKEN`,
   * `*_PASSWORD`, the Vault token named in `vault.auth`…) are refused. Default: none.
   */
  env?: string[];
  /**
   * Heap limit of the evaluation process, in MiB (a whole number from 32 to 16384). A definition that
   * allocates more fails with a clear error instead of exhausting the deployer's memory. Default 256.
   */
  memoryMb?: number;
}

/**
 * What a replace keeps for `waffle rollback`.
 *
 * @example
 * rollback: { keep: 5 }
 */
export interface RollbackSettings {
  /**
   * How many earlier containers of each service are kept, stopped, after a replace (a whole number from
   * 0 to 20; 0 removes the old container as soon as the new one serves). Each keeps its image, so
   * `waffle rollback <service>` switches back without a pull; older ones are removed. Default 3.
   */
  keep?: number;
}

/** A reference to another service's URL, resolved by name on the links network. Create it with `service.url()`. */
export interface ServiceUrl {
  readonly [WAFFLE_BRAND]: 'service-url';
  readonly service: Service;
  readonly path: string;
  readonly scheme: string;
}

/** A dependency with a start condition. */
export interface Dependency {
  /** The service to wait for (imported from its file). */
  service: Service;
  /** `'started'` (default): wait until it runs. `'healthy'`: wait until its healthcheck passes (needs a healthcheck). */
  condition?: 'started' | 'healthy';
}

/**
 * A value an environment variable may take. A secret reference (`secrets.db.url`) or a value built
 * from references (`secretString\`postgres://${secrets.pg.username}:${secrets.pg.password}@db/app\``)
 * is filled in at apply time; the value never enters the plan, labels or logs.
 */
export type EnvValue = string | number | boolean | ServiceUrl | SecretRef | SecretString;

/**
 * A public route to a service through the project's reverse proxy (Caddy by default).
 *
 * @example
 * routes: [{ domain: 'api.example.com', path: '/registration', stripPrefix: true }]
 */
export interface Route {
  /** The host name clients use, for example `'api.example.com'` (lowercase, no scheme, no port). */
  domain: string;
  /**
   * Path prefix served by this service, starting with `/`. Default `'/'` (every path of the domain).
   * Several services may share a domain by prefix; the longest matching prefix wins, and a path no
   * service claims gets the proxy's 404.
   */
  path?: `/${string}`;
  /** Container port the proxy sends requests to. Default: the service's `port`. */
  port?: number;
  /** Remove `path` from the request before it reaches the service (`/registration/x` → `/x`). Default false. */
  stripPrefix?: boolean;
}

/**
 * A host path `waffle dev` watches for one service, and what it does when a file under it changes.
 * The names follow Compose's `develop.watch`; unlike Compose, it works for any image, not only for
 * services it builds.
 */
export interface DevelopWatch {
  /** A file or directory on the host, relative to the repository root (or absolute). */
  path: string;
  /**
   * - `'sync'`: copy each changed file into the running container, below `target` (no restart);
   * - `'restart'`: restart the container;
   * - `'sync+restart'`: copy, then restart.
   */
  action: 'sync' | 'restart' | 'sync+restart';
  /** Where `path` is in the container (an absolute path); needed by `'sync'` and `'sync+restart'`. */
  target?: `/${string}`;
  /** Names to leave alone below `path`, for example `['node_modules', '.git']` (a file or folder name at any depth). */
  ignore?: string[];
}

/** What `waffle dev` does for a service besides redeploying it when its definition changes. */
export interface DevelopSettings {
  /** Host paths to watch, each with its action. */
  watch: DevelopWatch[];
}

/**
 * Which tags of the service's image may be deployed automatically (by `waffle agent`), as they are pushed
 * to the registry. One of:
 * - `glob`: the tag matches a glob, `*` standing for any characters: `'sha-*'`, `'main-*'`;
 * - `regex`: the tag matches a regular expression (anchor it with `^…$` to match the whole tag);
 *   `sortBy` names a capture group (`(?<ts>\d+)`) whose value orders the candidates;
 * - `semver`: the tag is a semantic version (a leading `v` allowed) inside a range: `'^1.2'`, `'>=2 <3'`, `'1.x'`.
 */
export type TagFilter =
  | {
      /** Glob the tag must match, `*` for any characters, e.g. `'sha-*'`. */
      glob: string;
    }
  | {
      /** Regular expression the tag must match, e.g. `'^main-(?<ts>\\d+)$'`. */
      regex: string;
      /** A named capture group of `regex` whose value orders the candidates (with `order`, default `'numeric'`). */
      sortBy?: string;
    }
  | {
      /** A semver range the tag must satisfy, e.g. `'^1.2'`. Prereleases are left out unless the range names one. */
      semver: string;
    };

/**
 * How the agent picks the tag to deploy among those allowed:
 * - `'semver'`: the highest version (the tag, or the `sortBy` group, read as a semantic version);
 * - `'numeric'`: the highest number (the `sortBy` group, else the whole tag);
 * - `'newest'`: the most recently pushed.
 */
export type TagOrder = 'semver' | 'numeric' | 'newest';

/**
 * Automatic image updates: `waffle agent` deploys a newly pushed tag of this service's image when the tag
 * is allowed by `tags` and is the best one by `order`. The tag written in `image` is always allowed. The
 * deployed tag is kept across commits that change neither `image` nor `update` (with `writeBack` set on the
 * agent, it is also committed into this file).
 *
 * @example
 * update: { tags: { semver: '^1.2' } }
 * update: { tags: { glob: 'sha-*' }, order: 'newest', cooldown: '10m' }
 * update: { tags: { regex: '^main-(?<ts>\\d+)$', sortBy: 'ts' } }
 */
export interface ImageUpdatePolicy {
  /** Which tags may be deployed automatically. */
  tags: TagFilter;
  /** How candidates are ordered. Default: `'semver'` for a `semver` filter, `'numeric'` for a regex with `sortBy`, else `'newest'`. */
  order?: TagOrder;
  /** A tag must be at least this old (since its push) before it is deployed, e.g. `'10m'`. Default: none. */
  cooldown?: Duration;
}

/** Registry credentials for the agent's tag poll: values from the project's secrets. */
export interface RegistryCredentials {
  /** User name: text, or a secret reference. */
  username: string | SecretRef;
  /** Password or access token: a secret reference (`secrets.registry.password`). */
  password: SecretRef;
}

/**
 * How `waffle agent` learns about new tags for services with an `update` policy. Registry webhooks
 * (`POST /hooks/registry`) always work; the poll is for registries that cannot send them.
 *
 * @example
 * updates: { poll: '5m', registries: { 'ghcr.io': { username: 'acme-bot', password: secrets.ghcr.token } } }
 */
export interface ImageUpdateSettings {
  /** Ask each registry for the tags of the updated images this often (at least `'10s'`). Default: never (webhooks only). */
  poll?: Duration;
  /** Credentials per registry host (`'ghcr.io'`, `'registry.example.com:5000'`; `'docker.io'` for Docker Hub). */
  registries?: Record<string, RegistryCredentials>;
}

/** Everything a service can declare. Only `image` is required. */
export interface ServiceDefinition {
  /**
   * DNS-safe name (lowercase letters, digits and `-`, starting with a letter, at most 63 characters).
   * Default: the file's name without `.ts` (`services/api.ts` → `api`), also in a subfolder
   * (`services/portal/sync.ts` → `sync`); with `naming: 'path'` in the config, the path below the
   * services folder (`portal-sync`). A `name` written here always wins.
   */
  name?: string;
  /** Image reference: `repository[:tag]` or `repository@sha256:digest`, for example `'nginx:1.27'`. */
  image: string;
  /** Replaces the image's CMD. A string runs through `/bin/sh -c`. */
  command?: string | string[];
  /** Replaces the image's ENTRYPOINT. */
  entrypoint?: string | string[];
  /**
   * Environment variables. Values may be references such as `api.url('/v1')`, a secret
   * (`secrets.db.url`, declared with `defineSecrets` in waffle.config.ts), or a secret built from
   * parts with the `secretString` tag.
   */
  env?: Record<string, EnvValue>;
  /**
   * Secret files: absolute path inside the container → a secret reference. Each file is written at
   * apply time on the host's tmpfs (never on disk), mode 0400, owned by the service's numeric `user`
   * (root when unset), and mounted read-only.
   *
   * @example
   * files: { '/run/secrets/db_password': secrets.db.password }
   * files: { '/run/secrets/dsn': secretString`postgres://${secrets.pg.username}:${secrets.pg.password}@db/app` }
   */
  files?: Record<`/${string}`, SecretRef | SecretString>;
  /** The main container port: what `url()` points at and the default port of an `http` healthcheck. */
  port?: number;
  /**
   * Domains (and path prefixes) the reverse proxy routes to this service. A routed service needs no
   * published host port: a new version starts next to the old one, and the proxy moves to it once its
   * healthcheck passed. See {@link Route}.
   */
  routes?: Route[];
  /** Ports published on the host. A fixed host port forces stop-then-start replacement. */
  ports?: PortSpec[];
  /** Named volumes and bind mounts. */
  volumes?: VolumeSpec[];
  /** How Docker tells the container is healthy; deploys wait for it before switching. */
  healthcheck?: Healthcheck;
  /** Restart policy. Default `'unless-stopped'` (or the project's default). Changes in place. */
  restart?: RestartPolicy;
  /** Memory and CPU limits. Change in place. */
  resources?: Resources;
  /** Services that must be started (or healthy) before this one. */
  dependsOn?: Array<Service | Dependency>;
  /**
   * Services this one may reach, by name. Only linked services can reach each other; a link works in
   * both directions. `dependsOn` and `url()` references imply the link.
   */
  connects?: Service[];
  /** Extra container labels (keys under `dev.wafflemaker.` are reserved). */
  labels?: Record<string, string>;
  /** User (and group) the process runs as, for example `'1000:1000'` or `'nobody'`. */
  user?: string;
  /** Working directory inside the container. */
  workdir?: string;
  /** Time the process gets between SIGTERM and SIGKILL when stopped. Default `'10s'`. */
  stopGracePeriod?: Duration;
  /**
   * When to fetch the image from its registry. `'missing'` uses the local image when present;
   * `'always'` resolves the tag against the registry on every plan, so a re-pushed tag redeploys.
   * Default: the project's `pull`, else `'missing'`.
   */
  pull?: PullPolicy;
  /**
   * How many tasks of the service run (`target: 'swarm'`). Default 1. On the single-engine target
   * (`target: 'engine'`) a service runs one container, and a value above 1 is rejected.
   */
  replicas?: number;
  /** Which Swarm nodes may run the service's tasks (`target: 'swarm'` only). */
  placement?: Placement;
  /** How Swarm rolls out a change of the service (`target: 'swarm'` only). */
  rollout?: Rollout;
  /**
   * For `waffle dev` only (never part of a deploy): host files to watch and what to do when they
   * change, copy them into the container (`sync`) or restart it (`restart`).
   *
   * @example
   * develop: { watch: [{ path: './public', action: 'sync', target: '/www' }, { path: './app.conf', action: 'restart' }] }
   */
  develop?: DevelopSettings;
  /**
   * Let `waffle agent` deploy newly pushed tags of `image` by itself: which tags, in which order, after
   * which cooldown. See {@link ImageUpdatePolicy}.
   *
   * @example
   * update: { tags: { semver: '^1.2' }, cooldown: '10m' }
   */
  update?: ImageUpdatePolicy;
}

/**
 * Where the tasks of a Swarm service may run (`target: 'swarm'` only).
 *
 * @example
 * placement: { constraints: ['node.labels.disk == ssd', 'node.role == worker'], preferences: ['node.labels.zone'] }
 */
export interface Placement {
  /**
   * Swarm placement constraints, each `<attribute> == <value>` or `<attribute> != <value>`:
   * `node.role`, `node.hostname`, `node.id`, `node.platform.os`, `node.labels.<name>`, `engine.labels.<name>`.
   */
  constraints?: string[];
  /** Spread the tasks evenly over the values of these node attributes (for example `'node.labels.zone'`). */
  preferences?: string[];
}

/**
 * How Swarm replaces the tasks of a service when its definition changes (`target: 'swarm'` only).
 * Swarm itself runs the rolling update; waffle follows it and reports each task.
 */
export interface Rollout {
  /** Tasks replaced at once. Default 1. */
  parallelism?: number;
  /** Pause between two batches. Default `'0s'`. */
  delay?: Duration;
  /**
   * `'start-first'` (default): the new task starts and must be healthy before the old one stops.
   * `'stop-first'`: the old task stops first (needed when a fixed host port cannot be shared).
   */
  order?: 'start-first' | 'stop-first';
  /**
   * What Swarm does when a new task fails (exits or turns unhealthy) within `monitor`:
   * `'rollback'` (default) returns to the previous definition, `'pause'` stops the update there,
   * `'continue'` carries on. Waffle reports a rolled back or paused update as failed.
   */
  failureAction?: 'rollback' | 'pause' | 'continue';
  /** How long each new task is watched for a failure after it started. Default `'10s'`. */
  monitor?: Duration;
}

/** A service as returned by {@link defineService}: a value other services can reference. */
export interface Service {
  readonly [WAFFLE_BRAND]: 'service';
  /** The definition as written. */
  readonly definition: Readonly<ServiceDefinition>;
  /** Where `defineService` was called (`file:line:column`), for error messages. */
  readonly definedAt: string | undefined;
  /**
   * URL of this service as seen from a linked service: `http://<name>:<port><path>`.
   * Using it implies a link (`connects`) between the two services.
   */
  url(path?: `/${string}` | '', options?: { scheme?: string; port?: number }): ServiceUrl;
}

/** What a project deploys to: one Docker engine, or a Docker Swarm through one of its managers. */
export type Target = 'engine' | 'swarm';

/** Which Docker engine to talk to. */
export interface DockerTarget {
  /** `unix:///path/to/docker.sock` or `tcp://host:port`. Default: `DOCKER_HOST`, then `/var/run/docker.sock`. */
  host?: string;
}

/** Project-wide defaults applied to every service that does not set the field. */
export interface ServiceDefaults {
  restart?: RestartPolicy;
  resources?: Resources;
  stopGracePeriod?: Duration;
  /** Default timing for healthchecks. */
  healthcheck?: HealthTiming;
}

/** Certificates for routed domains: Caddy's own local authority, or ACME (Let's Encrypt). */
export type IngressTls =
  | 'internal'
  | {
      acme: {
        /** Contact address for the ACME account. */
        email: string;
        /** Use Let's Encrypt's staging directory (untrusted certificates, generous rate limits). Default false. */
        staging?: boolean;
      };
    };

/**
 * How routed services (`routes`) are reached from outside.
 *
 * @example
 * ingress: { tls: { acme: { email: 'ops@example.com' } }, drainSeconds: 5 }
 */
export interface IngressSettings {
  /**
   * `'caddy'` (default): waffle configures Caddy through its admin API and moves traffic only to
   * healthy containers. `'traefik'`: waffle writes Traefik's Docker labels on routed containers instead.
   */
  provider?: 'caddy' | 'traefik';
  caddy?: {
    /**
     * Caddy's admin API: `http://host:port`, or `unix:///path/to/admin.sock` for an admin API on a unix
     * socket (what Caddy in a container on a Swarm manager should use). Default `'http://127.0.0.1:2019'`.
     */
    admin?: string;
    /**
     * `target: 'swarm'` only (required there when a service has `routes`): the name of the Caddy
     * container on the manager waffle talks to. Tasks run on overlay networks that a Caddy on the host
     * cannot reach, so waffle attaches this container to each routed service's ingress network
     * (`<project>_ingress_<service>`) and detaches it when the service is no longer routed.
     *
     * @example
     * caddy: { admin: 'unix:///run/waffle-caddy/admin.sock', container: 'caddy' }
     */
    container?: string;
    /**
     * The Caddy server (under `apps.http.servers`) the project's routes go into. Default `'waffle'`;
     * created when missing, listening on Caddy's HTTPS port (`apps.http.https_port`, default 443).
     */
    server?: string;
  };
  traefik?: {
    /** Entry points of the routers. Default `['websecure']`. */
    entrypoints?: string[];
    /** Certificate resolver of the routers, when Traefik has one configured. */
    certResolver?: string;
  };
  /** Certificates: `'internal'` (Caddy's local authority, for tests and private networks) or ACME. Default `'internal'`. */
  tls?: IngressTls;
  /** Seconds the old container keeps serving requests in flight after traffic moved, before it is stopped. Default 2. */
  drainSeconds?: number;
  /**
   * `waffle maintenance on <service>` answers 503 with this page (a file relative to the repository
   * root). Default: a short built-in page.
   */
  maintenancePage?: string;
}

/** The project's configuration, in `waffle.config.ts`. */
export interface ProjectConfig {
  /** Project name: prefixes every container, network and volume, and labels them. DNS-safe. */
  project: string;
  /** Which Docker engine to deploy to. */
  docker?: DockerTarget;
  /**
   * What the services run on.
   * - `'engine'` (default): one Docker engine; each service is one container.
   * - `'swarm'`: a Docker Swarm (the `docker` host is a manager); each service is a Swarm service with
   *   `replicas`, `placement` and `rollout`, links become overlay networks and secret files Swarm secrets.
   */
  target?: Target;
  /** Defaults for every service. */
  defaults?: ServiceDefaults;
  /** Glob patterns, relative to the repository root, of the files that hold services. Default `['services/*.ts']`. */
  services?: string[];
  /**
   * How a service that sets no `name` is named.
   * - `'file'` (default): after its file only, wherever it is: `services/portal/sync.ts` → `sync`.
   *   Two files of the same name in different folders then collide.
   * - `'path'`: after its path below the folder the `services` glob starts from, `/` becoming `-`:
   *   `services/portal/sync.ts` → `portal-sync` (`services/api.ts` stays `api`).
   *
   * The default `services` glob finds no file in a subfolder: list the subfolders there too.
   *
   * @example
   * defineConfig({ project: 'acme', services: ['services/*.ts', 'services/portal/*.ts'], naming: 'path' })
   */
  naming?: 'file' | 'path';
  /** How many independent operations run at once during apply. Default 4. */
  parallelism?: number;
  /**
   * The project's secrets: `export const secrets = defineSecrets({...})` in waffle.config.ts, passed
   * here so waffle knows where to fetch them. Services import `secrets` and reference its keys.
   */
  secrets?: SecretCollection;
  /** Where Vault is and how to log in; needed when a secret uses `provider: 'vault'`. */
  vault?: VaultSettings;
  /**
   * Default image pull policy of every service that does not set `pull`. `'missing'` (default) uses
   * the local image when present; `'always'` resolves each tag against the registry on every plan,
   * so a re-pushed tag redeploys.
   */
  pull?: PullPolicy;
  /**
   * What the configuration may use while it is evaluated: the environment variables it may read
   * (the evaluation process gets only these) and a heap limit.
   */
  evaluation?: EvaluationSettings;
  /** Reverse proxy for services with `routes`: provider, Caddy admin address, TLS, drain time. */
  ingress?: IngressSettings;
  /** How `waffle agent` finds new tags for services with an `update` policy: a registry poll and its credentials. */
  updates?: ImageUpdateSettings;
  /** How many earlier containers of each service are kept for `waffle rollback` (`{ keep: 3 }` by default). */
  rollback?: RollbackSettings;
}

/**
 * Marks an `Error.prepareStackTrace` that formats a stack as the error's head line followed by one
 * line per frame, each frame on its own (the loader's evaluation process installs one that maps
 * frames back to the source files). With such a formatter, only the caller's frame is formatted.
 */
const FRAMEWISE = Symbol.for('wafflemaker.framewise-stack');

/** V8's stack hooks on `Error`, typed here without Node's types (user repositories may not have them). */
const V8Error = Error as unknown as {
  prepareStackTrace?: ((error: Error, sites: unknown[]) => unknown) & { [FRAMEWISE]?: unknown };
  stackTraceLimit?: unknown;
};

/** `file:line:column` of the call to defineService: the third frame from here. */
function captureCallSite(): string | undefined {
  // [0] captureCallSite, [1] defineService, [2] the user's call
  const format = V8Error.prepareStackTrace;
  let line: string | undefined;
  if (typeof format === 'function' && format[FRAMEWISE] === true) {
    // Collect the frames unformatted (no more than needed), then format only the user's call.
    let sites: unknown[] = [];
    const limit = V8Error.stackTraceLimit;
    const lower = typeof limit === 'number' && limit > 3;
    let err: Error;
    try {
      if (lower) V8Error.stackTraceLimit = 3;
      err = new Error(); // frames are collected here, formatted when `stack` is first read
      V8Error.prepareStackTrace = (_e: Error, s: unknown[]) => {
        sites = s;
        return '';
      };
      void err.stack;
    } finally {
      V8Error.prepareStackTrace = format;
      if (lower) V8Error.stackTraceLimit = limit;
    }
    line = sites.length > 2 ? String(format(err, [sites[2]])).split('\n')[1] : undefined;
  } else {
    // "Error", then one line per frame: [3] is the user's call.
    line = new Error().stack?.split('\n')[3];
  }
  if (!line) return undefined;
  const m = /\(?((?:file:\/\/)?[^()\s]+:\d+:\d+)\)?\s*$/.exec(line);
  return m?.[1];
}

/**
 * Declares a service. Export it as the default export of a file under `services/`.
 *
 * @example
 * export default defineService({
 *   image: 'ghcr.io/acme/api:1.4.2',
 *   port: 8080,
 *   healthcheck: { http: '/health' },
 *   dependsOn: [{ service: db, condition: 'healthy' }],
 * });
 */
export function defineService(definition: ServiceDefinition): Service {
  const service: Service = {
    [WAFFLE_BRAND]: 'service',
    definition,
    definedAt: captureCallSite(),
    url(path = '', options = {}) {
      return {
        [WAFFLE_BRAND]: 'service-url',
        service,
        path,
        scheme: options.scheme ?? 'http',
        ...(options.port !== undefined ? { port: options.port } : {}),
      } as ServiceUrl;
    },
  };
  return service;
}

/** Declares the project. The default export of `waffle.config.ts`. An identity helper for typing. */
export function defineConfig(config: ProjectConfig): ProjectConfig {
  return config;
}

/** True when `value` is a service made by {@link defineService} (in any copy of this module). */
export function isService(value: unknown): value is Service {
  return typeof value === 'object' && value !== null && (value as Service)[WAFFLE_BRAND] === 'service';
}

/** True when `value` is a URL reference made by `service.url()`. */
export function isServiceUrl(value: unknown): value is ServiceUrl {
  return typeof value === 'object' && value !== null && (value as ServiceUrl)[WAFFLE_BRAND] === 'service-url';
}
