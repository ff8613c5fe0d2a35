/**
 * Drift and health: the agent follows Docker's events for its project's containers only (filtered by the
 * project label at the source, and checked again here) and puts things back.
 * - A container that exits or turns unhealthy is restarted, within the restart budget (restart-budget.ts;
 *   restarts Docker's own restart policy makes count too). Past it the agent stops the container, marks
 *   the service failed and reports it once.
 * - A container removed, renamed or created by hand queues a reconcile (a `repair` deploy): the planner
 *   creates what is missing and removes what is not desired. A restart policy or limit changed by hand
 *   (`docker update`) is set back to the desired values in place.
 * A project on Swarm is left to Swarm, which repairs its tasks itself (see `desired`).
 * Events the agent's own deploys cause are not drift: while a deploy runs or waits nothing is judged,
 * and afterwards only containers known from the snapshot taken after it (and events stamped after it)
 * count. Every repair is recorded and counted.
 */
import type Dockerode from 'dockerode';
import { withCallLimits } from '../docker/client.ts';
import { isKept, LABEL } from '../labels.ts';
import type { ServiceGraph } from '../model.ts';
import type { StateStore, Submit } from './image-updates.ts';
import type { Logger } from './notify/notifier.ts';
import type { TriggerSource } from './trigger.ts';
import { DEFAULT_BUDGET, RestartBudget, type BudgetSettings } from './restart-budget.ts';

export interface RepairRecord {
  /** The Docker event that showed it: `die`, `destroy`, `create`, `health_status: unhealthy`, `update`, `rename`. */
  event: string;
  service: string;
  container: string;
  /** `restarted` | `reconcile` | `gave-up` | `updated` | `failed`. */
  kind: string;
  /** One line for the history: `repaired: container removed by hand`. */
  outcome: string;
  /** The deploy queued for it, when one was. */
  deployment?: string;
}

export interface DriftOptions {
  docker: Dockerode;
  state: StateStore;
  log: Logger;
  /** True while a deploy runs or waits in the queue. */
  busy: () => boolean;
  /** Resolves when the queue has nothing running or waiting. */
  idle: () => Promise<void>;
  budget?: Partial<BudgetSettings>;
  /** Every repair (history rows, metrics). */
  onRepair?: (r: RepairRecord) => void;
  /** The budget of a service ran out (reported once, also across agent restarts). */
  onGaveUp?: (r: { project: string; service: string; container: string; restarts: number; windowMs: number; message: string }) => void;
  /** True when `waffle rollback` pinned the service: its containers are the rollback's to start and stop. */
  pinned?: (project: string, service: string) => boolean;
  /** How long an exited container is left to Docker's own restart policy before the agent starts it. Default 1.5 s. */
  settleMs?: number;
  now?: () => number;
}

interface Known {
  id: string;
  name: string;
  service: string;
}

type DockerEvent = {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
};

export class DriftWatcher implements TriggerSource {
  readonly name = 'drift';
  readonly budget: RestartBudget;
  readonly #o: DriftOptions;
  #submit: Submit | undefined;
  #graph: ServiceGraph | undefined;
  #project: string | undefined;
  #stream: NodeJS.ReadableStream | undefined;
  #known = new Map<string, Known>();
  /** Events stamped before this (ms) belong to the agent's own deploys. */
  #quietUntil = 0;
  #stopped = true;
  #resnap: Promise<void> | undefined;
  /** Containers the agent itself is acting on (restart, stop, update): their events until `until` are its own. */
  #acting = new Map<string, number>();
  #pending = new Set<Promise<unknown>>();
  #reconnect: NodeJS.Timeout | undefined;
  #since = 0;

  constructor(opts: DriftOptions) {
    this.#o = opts;
    this.budget = new RestartBudget(opts.state, { ...DEFAULT_BUDGET, ...opts.budget }, opts.now ?? Date.now);
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  start(submit: Submit): void {
    this.#submit = submit;
    this.#stopped = false;
    if (this.#project) void this.#follow();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconnect);
    this.#closeStream();
    await Promise.allSettled([...this.#pending, this.#resnap]);
  }

  #closeStream(): void {
    const s = this.#stream as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    this.#stream = undefined;
    s?.destroy?.();
  }

  /**
   * Each deploy's graph: the project and services to watch. A project on Swarm is not watched: Swarm's
   * own orchestrator replaces a task that exits, turns unhealthy or is removed (with its restart policy
   * and backoff), and a second repairer would compete with it; its task containers carry no project
   * label either, so the stream would only hear containers that are not Swarm's.
   */
  desired(graph: ServiceGraph): ServiceGraph {
    this.#graph = graph;
    const project = graph.target === 'swarm' ? undefined : graph.project;
    if (project !== this.#project) {
      this.#project = project;
      this.#known.clear();
      this.#closeStream();
      if (!this.#stopped) void this.#follow();
    }
    return graph;
  }

  /** A deploy finished: what runs now is the reference (snapshot); a service with a new container gets a fresh budget. */
  async deployed(): Promise<void> {
    await this.#snapshot();
  }

  /** Waits until the queue is idle, then lists the project's containers as the known, desired ones. */
  #snapshot(): Promise<void> {
    this.#resnap ??= (async () => {
      try {
        await this.#o.idle();
        const project = this.#project;
        if (!project) return;
        this.#quietUntil = this.#now();
        const list = await this.#o.docker.listContainers({ all: true, filters: { label: [`${LABEL.project}=${project}`] } });
        this.#known.clear();
        const exited: Array<Known & { code: string }> = [];
        for (const c of list) {
          const service = c.Labels?.[LABEL.service] ?? '';
          const known = { id: c.Id, name: (c.Names?.[0] ?? c.Id).replace(/^\//, ''), service };
          this.#known.set(c.Id, known);
          const gave = this.budget.gaveUp(project, service);
          if (gave && gave.container !== c.Id && service) this.budget.reset(project, service);
          else if (c.State === 'exited' && service && this.#graph?.services[service] && !gave && !this.#leftAlone(project, service, known.name, c.Labels)) exited.push({ ...known, code: /\((-?\d+)\)/.exec(c.Status ?? '')?.[1] ?? '?' });
        }
        // A container that exited while a deploy ran (its event was not judged then) is judged now.
        for (const k of exited) this.#track(this.#crashed(k.id, k.service, k.name, `exited (code ${k.code})`, 'die'));
      } catch (e) {
        this.#o.log.warn('drift: could not list the project containers', { error: (e as Error).message });
      } finally {
        this.#resnap = undefined;
      }
    })();
    return this.#resnap;
  }

  /** Containers kept for `waffle rollback`, and every container of a service a rollback pinned, are not the agent's to restart. */
  #leftAlone(project: string, service: string, name: string, labels: Record<string, string> | undefined): boolean {
    if (isKept({ name, service, generation: Number(labels?.[LABEL.generation] ?? 0) }, project)) return true;
    try {
      return !!this.#o.pinned?.(project, service);
    } catch {
      return false;
    }
  }

  async #follow(): Promise<void> {
    const project = this.#project;
    if (!project || this.#stopped || this.#stream) return;
    try {
      const since = this.#since ? Math.floor(this.#since / 1000) : undefined;
      // The stream stays open for as long as the agent runs: no time limit on its body.
      const stream = (await withCallLimits({ streamTimeoutMs: 0 }, () =>
        this.#o.docker.getEvents({
          ...(since ? { since } : {}),
          filters: { type: ['container'], label: [`${LABEL.project}=${project}`] },
        }),
      )) as unknown as NodeJS.ReadableStream;
      if (this.#stopped || project !== this.#project) {
        (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
        return;
      }
      this.#stream = stream;
      let buf = '';
      stream.on('data', (chunk: Buffer) => {
        buf += chunk.toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          try {
            this.#hear(JSON.parse(line) as DockerEvent);
          } catch (e) {
            this.#o.log.warn('drift: an event could not be handled', { error: (e as Error).message });
          }
        }
      });
      const again = () => {
        if (this.#stream !== stream) return;
        this.#stream = undefined;
        if (this.#stopped) return;
        this.#o.log.warn('drift: the Docker event stream ended; following again');
        this.#reconnect = setTimeout(() => void this.#follow(), 1000);
        this.#reconnect.unref();
      };
      stream.on('end', again);
      stream.on('error', again);
      if (this.#known.size === 0) void this.#snapshot();
    } catch (e) {
      this.#o.log.warn('drift: cannot follow Docker events; trying again', { error: (e as Error).message });
      this.#reconnect = setTimeout(() => void this.#follow(), 2000);
      this.#reconnect.unref();
    }
  }

  #track<T>(p: Promise<T>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  #hear(e: DockerEvent): void {
    const project = this.#project;
    const attrs = e.Actor?.Attributes ?? {};
    const id = e.Actor?.ID ?? '';
    // Only the project's containers, whatever the stream's filter let through.
    if (e.Type !== 'container' || !project || attrs[LABEL.project] !== project || !id) return;
    const at = e.timeNano ? e.timeNano / 1e6 : (e.time ?? 0) * 1000;
    this.#since = Math.max(this.#since, at);
    const action = e.Action ?? '';
    if (this.#o.busy() || this.#resnap) {
      // The agent's own deploy: judged by the snapshot after it.
      void this.#snapshot();
      return;
    }
    if (at < this.#quietUntil) return;
    const acting = this.#acting.get(id);
    if (acting !== undefined && at <= acting) return;
    const known = this.#known.get(id);
    const service = attrs[LABEL.service] ?? known?.service ?? '';
    const name = attrs.name ?? known?.name ?? id.slice(0, 12);

    if (action === 'destroy' && known) {
      this.#known.delete(id);
      this.#reconcile({ event: 'destroy', service, container: name, kind: 'reconcile', outcome: 'repaired: container removed by hand' });
    } else if (action === 'create' && !known) {
      this.#reconcile({ event: 'create', service, container: name, kind: 'reconcile', outcome: 'repaired: container created by hand' });
    } else if (action.startsWith('rename') && known && !this.#leftAlone(project, service, name, attrs)) {
      this.#reconcile({ event: 'rename', service, container: name, kind: 'reconcile', outcome: `repaired: container renamed by hand (was ${attrs.oldName?.replace(/^\//, '') ?? known.name})` });
    } else if (action === 'update' && known) {
      this.#track(this.#restoreInPlace(id, service, name));
    } else if ((action === 'die' || action === 'health_status: unhealthy') && known && service) {
      this.#track(this.#crashed(id, service, name, action === 'die' ? `exited (code ${attrs.exitCode ?? '?'})` : 'unhealthy', action));
    }
  }

  #reconcile(r: Omit<RepairRecord, 'deployment'>): void {
    this.#o.log.info(`drift: ${r.outcome}`, { service: r.service, container: r.container });
    let deployment: string | undefined;
    try {
      deployment = this.#submit?.({ kind: 'repair', target: { head: true }, reason: `${r.outcome}: ${r.container}` }).deployment;
    } catch (e) {
      this.#o.log.warn('drift: the repair could not be queued', { error: (e as Error).message });
    }
    this.#o.onRepair?.({ ...r, ...(deployment ? { deployment } : {}) });
  }

  /** Sets a restart policy or limits changed by hand back to the desired values, in place. */
  async #restoreInPlace(id: string, service: string, name: string): Promise<void> {
    const svc = this.#graph?.services[service];
    if (!svc) return;
    const info = await this.#o.docker.getContainer(id).inspect().catch(() => undefined);
    if (!info) return;
    const hc = info.HostConfig;
    const changed: string[] = [];
    if (hc.RestartPolicy?.Name !== svc.restart.name || (svc.restart.name === 'on-failure' && hc.RestartPolicy?.MaximumRetryCount !== svc.restart.maximumRetryCount)) changed.push('restart policy');
    if ((hc.Memory ?? 0) !== svc.resources.memory) changed.push('memory');
    if ((hc.NanoCpus ?? 0) !== svc.resources.nanoCpus) changed.push('cpus');
    if (!changed.length) return;
    this.#acting.set(id, this.#now() + 5_000);
    await this.#o.docker.getContainer(id).update({
      RestartPolicy: { Name: svc.restart.name, MaximumRetryCount: svc.restart.maximumRetryCount },
      Memory: svc.resources.memory,
      ...(svc.resources.memory ? { MemorySwap: svc.resources.memory * 2 } : {}),
      NanoCpus: svc.resources.nanoCpus,
    });
    const outcome = `repaired: ${changed.join(', ')} changed by hand, set back`;
    this.#o.log.info(`drift: ${outcome}`, { service, container: name });
    this.#o.onRepair?.({ event: 'update', service, container: name, kind: 'updated', outcome });
  }

  /** A container exited or turned unhealthy: restart it within the budget, else stop trying and report once. */
  async #crashed(id: string, service: string, name: string, what: string, event: string): Promise<void> {
    const project = this.#project!;
    const c = this.#o.docker.getContainer(id);
    if (event === 'die') {
      // Docker's own restart policy may bring it back by itself: that restart counts as well.
      await new Promise((r) => setTimeout(r, this.#o.settleMs ?? 1500));
      if (this.#stopped || this.#o.busy() || !this.#known.has(id)) return;
    }
    const info = await c.inspect().catch(() => undefined);
    if (!info) return;
    // A rollback stops the serving container and keeps it: not a crash.
    if (this.#leftAlone(project, service, info.Name.replace(/^\//, ''), info.Config.Labels ?? {})) return;
    const spend = this.budget.spend(project, service, id);
    const { max, windowMs } = this.budget.settings;
    const window = `${Math.round(windowMs / 1000)}s`;
    if (!spend.ok) {
      // Out of budget: make sure nothing restarts it (stop also cancels Docker's own restarts).
      this.#acting.set(id, this.#now() + 15_000);
      if (info.State.Running || info.State.Restarting) await c.stop({ t: 1 }).catch(() => undefined);
      // Reported once: the first time (or the first time after an agent restart that came before the report).
      const report = this.budget.markReported(project, service);
      this.#o.onRepair?.({
        event,
        service,
        container: name,
        kind: 'gave-up',
        outcome: report ? `failed: restart budget spent (${spend.used} in ${window}), stopped trying` : `failed: ${what} again; restart budget spent, left stopped`,
      });
      if (report) {
        const message = `${service} keeps failing (${what}): restarted ${spend.used} times in ${window}; the agent stopped trying. Fix the service and deploy again.`;
        this.#o.log.error(`drift: ${message}`, { service, container: name });
        this.#o.onGaveUp?.({ project, service, container: name, restarts: spend.used, windowMs, message });
      }
      return;
    }
    const running = info.State.Running || info.State.Restarting;
    if (running && event === 'die') {
      this.#o.onRepair?.({ event, service, container: name, kind: 'restarted', outcome: `repaired: container ${what}, restarted by its restart policy (${spend.used} of ${max} in ${window})` });
      return;
    }
    this.#acting.set(id, this.#now() + 30_000);
    try {
      if (running) await c.restart({ t: 2 });
      else await c.start();
    } catch (e) {
      const msg = (e as Error).message;
      if (!/already started|304/.test(msg)) {
        this.#o.onRepair?.({ event, service, container: name, kind: 'failed', outcome: `failed: restarting the ${what} container: ${msg.split('\n')[0]}` });
        return;
      }
    } finally {
      this.#acting.set(id, this.#now());
    }
    this.#o.log.info('drift: container restarted', { service, container: name, what, used: spend.used, max });
    this.#o.onRepair?.({ event, service, container: name, kind: 'restarted', outcome: `repaired: container ${what}, restarted (${spend.used} of ${max} in ${window})` });
  }
}
