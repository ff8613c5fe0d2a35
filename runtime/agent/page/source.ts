/**
 * Gathers what the page shows from the agent's parts: its status (each service of the deployed graph
 * as it runs, with its last deploy), the history (deploys, their events, deliveries), the previews,
 * and from Docker what the status leaves out — when each container started (uptime) and its image's
 * digest. Read-only: nothing here changes the agent or Docker.
 */
import type Dockerode from 'dockerode';
import type { DeliveryView, DeploymentPageData, DeploymentView, OverviewData, PreviewView, ServiceView } from './model.ts';

/** The agent's `status()` answer, as far as the page reads it. */
export interface AgentStatusView {
  project?: string;
  branch: string;
  repo?: string;
  deployedCommit?: string;
  queue: { running?: string; pending?: string };
  services: Array<{ service: string; state: string; health: string; image?: string; commit?: string; container?: string; replicas?: ServiceView['replicas']; lastDeploy?: ServiceView['lastDeploy'] }>;
}

export interface HistoryReader {
  list(opts?: { limit?: number }): DeploymentView[];
  get(id: string): DeploymentView | undefined;
  events(id: string): object[];
  deliveries(opts?: { limit?: number }): DeliveryView[];
}

export interface PageSourceOptions {
  status(): Promise<AgentStatusView>;
  history: HistoryReader;
  /** The Docker client of the agent's engine: container start times and image digests. */
  docker?: () => Promise<Dockerode>;
  /** Each service's public routes (`api.example.com/v1`) from the deployed graph. */
  domains?: (service: string) => string[];
  previews?: { records(): Array<Omit<PreviewView, 'finishedAt'> & { finishedAt: number }>; length: number };
  /** GitHub's web address; default https://github.com. */
  webUrl?: string;
  /** Rows shown; default 20 deploys, 30 deliveries. */
  deploys?: number;
  deliveries?: number;
}

export interface PageSource {
  overview(): Promise<OverviewData>;
  deployment(id: string): Promise<(DeploymentPageData & { project?: string; branch: string }) | undefined>;
}

/** Start time and image digest of each named container (a container gone meanwhile is left out). */
export async function containerDetails(docker: Dockerode, containers: string[]): Promise<Map<string, { startedAt?: number; digest?: string }>> {
  const out = new Map<string, { startedAt?: number; digest?: string }>();
  const images = new Map<string, Promise<string | undefined>>();
  const digestOf = (id: string) => {
    let p = images.get(id);
    if (!p) {
      p = docker
        .getImage(id)
        .inspect()
        .then((i) => (i.RepoDigests?.[0] as string | undefined) ?? i.Id)
        .catch(() => undefined);
      images.set(id, p);
    }
    return p;
  };
  await Promise.all(
    containers.map(async (name) => {
      try {
        const c = await docker.getContainer(name).inspect();
        const started = Date.parse(c.State?.StartedAt ?? '');
        const digest = await digestOf(c.Image);
        out.set(name, { ...(Number.isFinite(started) && started > 0 ? { startedAt: started } : {}), ...(digest ? { digest } : {}) });
      } catch {
        /* removed between the list and the inspect: shown without details */
      }
    }),
  );
  return out;
}

export function pageSource(o: PageSourceOptions): PageSource {
  return {
    async overview() {
      let status: AgentStatusView | undefined;
      let servicesError: string | undefined;
      try {
        status = await o.status();
      } catch (e) {
        servicesError = `The services could not be read: ${(e as Error).message}`;
      }
      let services: ServiceView[] = [];
      if (status) {
        const names = status.services.map((s) => s.container).filter((c): c is string => !!c);
        let details = new Map<string, { startedAt?: number; digest?: string }>();
        if (o.docker && names.length) {
          try {
            details = await containerDetails(await o.docker(), names);
          } catch {
            /* Docker unreachable: the status already says what it could */
          }
        }
        services = status.services.map((s) => {
          const d = s.container ? details.get(s.container) : undefined;
          return {
            service: s.service,
            state: s.state,
            health: s.health,
            ...(s.image ? { image: s.image } : {}),
            ...(d?.digest ? { digest: d.digest } : {}),
            ...(s.commit ? { commit: s.commit } : {}),
            ...(s.container ? { container: s.container } : {}),
            domains: o.domains?.(s.service) ?? [],
            ...(d?.startedAt ? { startedAt: d.startedAt } : {}),
            ...(s.replicas ? { replicas: s.replicas } : {}),
            ...(s.lastDeploy ? { lastDeploy: s.lastDeploy } : {}),
          };
        });
      }
      return {
        ...(status?.project ? { project: status.project } : {}),
        ...(status?.repo ? { repo: status.repo } : {}),
        ...(o.webUrl ? { webUrl: o.webUrl } : {}),
        branch: status?.branch ?? '?',
        ...(status?.deployedCommit ? { deployedCommit: status.deployedCommit } : {}),
        queue: { ...(status?.queue ?? {}), ...(o.previews?.length ? { previews: o.previews.length } : {}) },
        services,
        ...(servicesError ? { servicesError } : {}),
        deployments: o.history.list({ limit: o.deploys ?? 20 }),
        deliveries: o.history.deliveries({ limit: o.deliveries ?? 30 }),
        previews: (o.previews?.records() ?? []).slice(0, 10),
        now: Date.now(),
      };
    },

    async deployment(id) {
      const deployment = o.history.get(id);
      if (!deployment) return undefined;
      let status: AgentStatusView | undefined;
      try {
        status = await o.status();
      } catch {
        /* the heading goes without the project */
      }
      return {
        deployment,
        events: o.history.events(id),
        ...(status?.repo ? { repo: status.repo } : {}),
        ...(status?.project ? { project: status.project } : {}),
        ...(o.webUrl ? { webUrl: o.webUrl } : {}),
        branch: status?.branch ?? '?',
        now: Date.now(),
      };
    },
  };
}
