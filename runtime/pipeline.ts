/**
 * The engine facade every interface drives (CLI, TUI, agent):
 * load → graph → observe → plan → apply, with events out. No rendering here.
 */
import type Dockerode from 'dockerode';
import { loadRepo } from './load/load.ts';
import { buildGraph } from './graph/graph.ts';
import { reconcile } from './plan/reconcile.ts';
import { connectDocker, type DockerSettings } from './docker/client.ts';
import { observe } from './docker/observe.ts';
import { execute } from './apply/executor.ts';
import { bindSecrets } from './apply/bind.ts';
import { SecretsSession } from './secrets/session.ts';
import { renewProjectLeases, revokeProjectLeases } from './secrets/renewer.ts';
import { removeSecretFiles } from './secrets/files.ts';
import { destroyProject, type DestroyResult } from './docker/destroy.ts';
import { currentCommit } from './source/git.ts';
import { withProjectLock } from './lock.ts';
import { stateDir } from './secrets/state.ts';
import type { ApplyEvent, ObservedState, Plan, ServiceGraph } from './model.ts';

export interface ProjectOptions {
  /** Repository root (holds waffle.config.ts). */
  root: string;
  /** Time limit for evaluating the configuration. */
  loadTimeoutMs?: number;
  /** Overrides the config's docker.host and DOCKER_HOST. */
  dockerHost?: string;
  /** How to talk to Docker: time limits, TLS, a signal that aborts calls in flight (see DockerSettings). */
  docker?: DockerSettings;
}

/** Load and validate: the desired-state graph. Throws ProblemsError on bad input. */
export async function loadGraph(opts: ProjectOptions): Promise<ServiceGraph> {
  const repo = await loadRepo(opts.root, { timeoutMs: opts.loadTimeoutMs });
  return buildGraph(repo);
}

export interface Prepared {
  graph: ServiceGraph;
  observed: ObservedState;
  plan: Plan;
  commit: string;
  docker: Dockerode;
  /**
   * The secrets of this plan (values in memory only, never serialised), when a service uses any. Its
   * `digests` entered the config hashes.
   */
  secrets?: SecretsSession;
}

export async function openDocker(graph: ServiceGraph, opts: ProjectOptions): Promise<Dockerode> {
  return connectDocker(opts.dockerHost ?? process.env.DOCKER_HOST ?? graph.dockerHost, opts.docker);
}

/** Everything `plan` shows: desired × observed → operations. Makes no change. */
export async function prepare(opts: ProjectOptions): Promise<Prepared> {
  // While the configuration evaluates in its child process: read the commit, and load the Docker client.
  const commitP = currentCommit(opts.root);
  const warm = import('dockerode').catch(() => undefined);
  const graph = await loadGraph(opts).catch(async (e) => {
    await Promise.allSettled([commitP, warm]);
    throw e;
  });
  const [docker, commit] = await Promise.all([openDocker(graph, opts), commitP]);
  // [vault, part B] Renew due leases first: one that can no longer be renewed is marked expiring, and its new
  // lease marker makes this plan replace the service with fresh credentials (cause `credentials`). Never fails
  // the command: when Vault is down, the session's check below says so, naming the address.
  if (graph.vault) await renewProjectLeases(graph).catch(() => undefined);
  // Secrets first: a backend that cannot be reached fails the command here, before any change.
  const secrets = await SecretsSession.open(graph);
  // The desired graph lets observe inspect only containers whose labelled restart policy or limits disagree.
  const observed = await observe(docker, graph.project, { desired: graph, stateDir: stateDir(graph.project) });
  const plan = reconcile(graph, observed, { commit, ...(secrets ? { secretsDigests: secrets.digests, credentialsDigests: secrets.credentialsDigests } : {}) });
  return { graph, observed, plan, commit, docker, ...(secrets ? { secrets } : {}) };
}

/** Raised when Docker changed between plan and apply (Terraform's stale plan). */
export class StalePlanError extends Error {
  constructor(project: string) {
    super(`the plan for project "${project}" is stale: Docker changed since it was made. Run the command again to plan anew.`);
    this.name = 'StalePlanError';
  }
}

/**
 * Applies a prepared plan. Refuses a stale plan (the observed state changed since planning).
 * Returns ok=false when any operation failed; details arrive as events.
 */
export async function applyPrepared(
  prepared: Prepared,
  emit: (e: ApplyEvent) => void,
  opts: { signal?: AbortSignal; checkStale?: boolean } = {},
): Promise<{ ok: boolean }> {
  const { docker, graph, plan } = prepared;
  return withProjectLock(graph.project, 'apply', async () => {
    if (opts.checkStale) {
      const now = await observe(docker, graph.project);
      const again = reconcile(graph, now, {
        commit: prepared.commit,
        ...(prepared.secrets ? { secretsDigests: prepared.secrets.digests, credentialsDigests: prepared.secrets.credentialsDigests } : {}),
      });
      if (again.observedFingerprint !== plan.observedFingerprint) throw new StalePlanError(graph.project);
    }
    // Values go into a copy of the plan, only now (generated secrets are stored, dynamic ones issued).
    const bound = await bindSecrets(graph, plan, prepared.observed, prepared.secrets);
    try {
      return await execute(docker, bound.plan, bound.listen(emit), { parallelism: graph.parallelism, signal: opts.signal });
    } catch (e) {
      // Docker's own error texts can quote a request body (environment included): never show a value.
      throw bound.redactError(e);
    } finally {
      // Clean-up never fails an apply: what it could not do now, the next apply does.
      await bound.finish(docker).catch(() => undefined);
    }
  });
}

export interface DestroyReport {
  removed: DestroyResult;
  /** Vault leases revoked (their credentials stop working). */
  revokedLeases: number;
  /** Leases that could not be revoked now (Vault unreachable): a later destroy retries them. */
  leaseErrors: string[];
}

/**
 * Removes everything of the project (and nothing else): containers, networks, volumes if asked, then the
 * credentials that went with them — Vault leases revoked, secret files on the tmpfs removed.
 */
export async function destroy(graph: ServiceGraph, docker: Dockerode, opts: { volumes?: boolean } = {}): Promise<DestroyReport> {
  return withProjectLock(graph.project, 'destroy', async () => {
    const removed = await destroyProject(docker, graph.project, { volumes: !!opts.volumes });
    removeSecretFiles(graph.project);
    const revoked = await revokeProjectLeases(graph, 'all').catch((e: Error) => ({ revoked: [], failed: [{ error: e.message }] }));
    return {
      removed,
      revokedLeases: revoked?.revoked.length ?? 0,
      leaseErrors: (revoked?.failed ?? []).map((f) => (f as { error: string }).error),
    };
  });
}
