/**
 * Image automation and self-healing, put together for the agent: the image updates (registry hook, tag
 * poll, overrides, optional write-back) and the drift watcher, as trigger sources and deploy hooks of
 * the agent, with every repair recorded in the history (a delivery row naming what was seen and done,
 * and a deployment row for repairs that do not go through the queue), counted in the metrics, and a
 * service given up on reported once through the notifiers.
 */
import type Dockerode from 'dockerode';
import type { History } from '../history/history.ts';
import { newRunId } from '../engine.ts';
import type { ServiceGraph } from '../model.ts';
import type { AgentMetrics } from './metrics.ts';
import type { Logger, NotificationHub } from './notify/notifier.ts';
import type { DeployHook } from './deploy.ts';
import type { TriggerSource } from './trigger.ts';
import { ImageUpdates } from './image-updates.ts';
import { registryHook, type HookRequest, type HookResponse } from './registry-hook.ts';
import { WriteBack, type WriteBackOptions } from './write-back.ts';
import { DriftWatcher, type RepairRecord } from './drift.ts';
import type { BudgetSettings } from './restart-budget.ts';
import { registryCredentials } from '../images/credentials.ts';

export interface AutomationOptions {
  history: History;
  metrics: AgentMetrics;
  hub: NotificationHub;
  log: Logger;
  /** What the automation needs to know of the running agent (read when needed: the agent is made after). */
  agent: () => { readonly queue: { readonly length: number; idle(): Promise<void> }; readonly knownCommit: string | undefined; readonly branch: string; readonly repo?: string };
  /** The engine's environment: registry credentials are read from the project's secrets with it. */
  env: Record<string, string | undefined>;
  /** The shared secret of `POST /hooks/registry`; the hook is off without it. */
  registrySecret?: string;
  /** Commit deployed tags back to the repository. */
  writeBack?: WriteBackOptions;
  /** Docker, for the drift watcher; without it drift and crashes are not repaired. */
  docker?: Dockerode;
  budget?: Partial<BudgetSettings>;
  /** True when a rollback pinned the service (it is not updated automatically). */
  pinned?: (project: string, service: string) => boolean;
  /** Overrides the projects' poll interval (0 turns the poll off). */
  pollMs?: number;
}

export interface Automation {
  updates: ImageUpdates;
  drift?: DriftWatcher;
  sources: TriggerSource[];
  hooks: DeployHook[];
  registryHook?: (req: HookRequest) => HookResponse;
}

/** Metric label of a repair, by the Docker event that showed the drift. */
const METRIC: Record<string, string> = {
  destroy: 'removed',
  create: 'created',
  rename: 'renamed',
  update: 'changed',
  die: 'exited',
  'health_status: unhealthy': 'unhealthy',
};

export function createAutomation(o: AutomationOptions): Automation {
  const { history, metrics, log } = o;
  const writeBack = o.writeBack ? new WriteBack(o.writeBack) : undefined;
  const updates = new ImageUpdates({
    state: history,
    log,
    ...(o.pinned ? { pinned: o.pinned } : {}),
    ...(o.pollMs !== undefined ? { pollMs: o.pollMs } : {}),
    credentials: (graph: ServiceGraph, host: string) => registryCredentials(graph, host, o.env),
    ...(writeBack
      ? {
          onApplied: async (u) => {
            const r = await writeBack.commit(u);
            if (r.kind === 'committed') log.info('image update: written back', { service: u.service, file: r.file, commit: r.commit, image: u.to, attempts: r.attempts });
            else log.warn('image update: not written back', { service: u.service, reason: r.reason });
          },
        }
      : {}),
  });

  const sources: TriggerSource[] = [updates];
  const hooks: DeployHook[] = [
    {
      desired: (g) => updates.desired(g),
      deployed: (outcome) =>
        updates.deployed(
          outcome.result,
          outcome.graph,
          outcome.services.filter((s) => s.outcome === 'failed').map((s) => s.service),
        ),
    },
  ];

  let drift: DriftWatcher | undefined;
  if (o.docker) {
    const record = (r: RepairRecord) => {
      const at = Date.now();
      metrics.repair(r.kind === 'gave-up' ? 'gave-up' : (METRIC[r.event] ?? r.event));
      let deployment = r.deployment;
      // A restart (or giving up) does not go through the queue: it gets a deployment row of its own.
      if (!deployment) {
        try {
          const row = history.createDeployment({ trigger: 'repair', ...(o.agent().knownCommit ? { commit: o.agent().knownCommit! } : {}) });
          deployment = row.id;
          const failed = r.kind === 'gave-up' || r.kind === 'failed';
          history.update(row.id, {
            state: failed ? 'failed' : 'applied',
            startedAt: at,
            finishedAt: at,
            durationMs: 0,
            planSummary: r.outcome,
            services: [{ service: r.service, action: r.kind === 'updated' ? 'update' : 'restart', outcome: failed ? 'failed' : 'done', message: r.outcome }],
            ...(failed ? { error: `${r.service}: ${r.outcome}` } : {}),
          });
        } catch (e) {
          log.warn('history: could not record a repair', { error: String(e) });
        }
      }
      try {
        history.recordDelivery({ id: newRunId(), source: 'docker', event: `${r.event} ${r.container}`, outcome: r.outcome, receivedAt: at, ...(deployment ? { deployment } : {}) });
      } catch (e) {
        log.warn('history: could not record a repair', { error: String(e) });
      }
    };
    drift = new DriftWatcher({
      docker: o.docker,
      state: history,
      log,
      busy: () => o.agent().queue.length > 0,
      idle: () => o.agent().queue.idle(),
      ...(o.budget ? { budget: o.budget } : {}),
      ...(o.pinned ? { pinned: o.pinned } : {}),
      onRepair: record,
      onGaveUp: (g) => {
        const a = o.agent();
        o.hub.send({
          id: newRunId(),
          commit: a.knownCommit ?? 'unknown',
          branch: a.branch,
          ...(a.repo ? { repo: a.repo } : {}),
          state: 'failed',
          description: `waffle: ${g.message}`.slice(0, 400),
          problems: [{ service: g.service, message: g.message }],
        });
      },
    });
    const d = drift;
    sources.push(d);
    hooks.push({ desired: (g) => d.desired(g), deployed: () => d.deployed() });
  }

  return {
    updates,
    sources,
    hooks,
    ...(drift ? { drift } : {}),
    ...(o.registrySecret
      ? {
          registryHook: registryHook({
            secret: o.registrySecret,
            updates,
            record: (d) => {
              try {
                history.recordDelivery(d);
              } catch (e) {
                log.warn('history: could not record a delivery', { delivery: d.id, error: String(e) });
              }
              metrics.delivery('registry', d.outcome);
              log.info('registry delivery', { delivery: d.id, outcome: d.outcome, ...(d.deployment ? { deployment: d.deployment } : {}) });
            },
          }),
        }
      : {}),
  };
}
