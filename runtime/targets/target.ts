/**
 * What the services of a project run on, behind one interface: the single Docker engine (`engine/`) or
 * a Docker Swarm (`swarm/`). The engine facade (runtime/engine.ts) picks one by `graph.target` and drives
 * it through the same pipeline: observe → plan (pure) → bind secrets → execute → events; destroy and
 * status likewise. The CLI, the UI and the agent know only the facade and the events.
 */
import type Dockerode from 'dockerode';
import type { ApplyEvent, ObservedState, Plan, ServiceGraph } from '../model.ts';
import type { SecretsSession } from '../secrets/session.ts';
import type { BoundPlan } from '../apply/bind.ts';
import type { ExecuteOptions } from '../apply/executor.ts';
import type { ReconcileOptions } from '../plan/reconcile.ts';

export type TargetName = 'engine' | 'swarm';

export interface ObserveSettings {
  /** Plan with this desired graph (inspect what labels cannot answer, pull what policy says); absent for status. */
  desired?: ServiceGraph;
  /** The project's state directory. */
  stateDir?: string;
  /** Overrides every service's pull policy. */
  pull?: 'missing' | 'always';
}

/**
 * What the pure planner gets besides desired and observed: the commit, keyed digests (never a value),
 * and the single engine's own inputs (rollback pins, services in maintenance).
 */
export interface PlanInputs extends ReconcileOptions {
  /** Swarm: per service, per secret file target, the keyed digest of the file's content (names its Swarm secret version). */
  secretFileDigests?: Record<string, Record<string, string>>;
}

/** How to run a plan; `proxy`: the adapter of the reverse proxy a plan with a proxy table configures. */
export type ExecuteSettings = Pick<ExecuteOptions, 'parallelism' | 'signal' | 'proxy'>;

export interface DestroySettings {
  volumes?: boolean;
  /** Swarm: the Caddy container, detached from the project's networks before they are removed. */
  proxyContainer?: string;
}

export type DestroyItemEvent =
  | { type: 'removing' | 'removed'; what: DestroyWhat; name: string; at: number }
  | { type: 'failed'; what: DestroyWhat; name: string; message: string; at: number };
export type DestroyWhat = 'container' | 'network' | 'volume' | 'service' | 'secret';

export interface DestroyResult {
  containers: string[];
  networks: string[];
  volumes: string[];
  /** Swarm services (the Swarm target). */
  services?: string[];
  /** Swarm secrets, every version (the Swarm target). */
  secrets?: string[];
  errors: string[];
}

export interface Target {
  readonly name: TargetName;
  /** What runs for the project now, found by its label (list calls: their number does not grow with the services). */
  observe(docker: Dockerode, graph: ServiceGraph, opts: ObserveSettings): Promise<ObservedState>;
  /** The digests the planner needs from the secrets session (keyed hashes only). */
  planInputs(graph: ServiceGraph, secrets: SecretsSession | undefined, commit: string, opts: { env: Record<string, string | undefined> }): Promise<PlanInputs>;
  /** Desired × observed → operations with causes. Pure: no I/O, no clock. */
  plan(graph: ServiceGraph, observed: ObservedState, inputs: PlanInputs): Plan;
  /** Puts secret values into a copy of the plan, for `execute` only (see apply/bind.ts). */
  bind(graph: ServiceGraph, plan: Plan, observed: ObservedState, secrets: SecretsSession | undefined, opts: { env: Record<string, string | undefined> }): Promise<BoundPlan>;
  /** Runs the (bound) plan's operations and reports them as events. Makes no decisions. */
  execute(docker: Dockerode, plan: Plan, emit: (e: ApplyEvent) => void, opts: ExecuteSettings): Promise<{ ok: boolean }>;
  /** Removes everything of the project (and nothing else). */
  destroy(docker: Dockerode, project: string, opts: DestroySettings, emit: (e: DestroyItemEvent) => void): Promise<DestroyResult>;
  /** What runs now, for `waffle status` (no pulls, no inspections beyond the lists). */
  status(docker: Dockerode, graph: ServiceGraph): Promise<ObservedState>;
}
