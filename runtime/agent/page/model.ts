/**
 * What the agent's page shows, as plain data: the services as they run, recent deploys and webhook
 * deliveries, pull-request previews. The history's rows fit these shapes as they are; the page reads
 * nothing else of the agent. Never a secret value: the history and Docker's labels hold none.
 */

export interface ServiceOutcomeView {
  service: string;
  action: string;
  outcome: string;
  message?: string;
}

export interface DeploymentView {
  id: string;
  trigger: string;
  delivery?: string;
  commit?: string;
  /** `queued` | `running` | `applied` | `no-op` | `failed` | `interrupted`. */
  state: string;
  planSummary?: string;
  services: ServiceOutcomeView[];
  error?: string;
  queuedAt: number;
  startedAt?: number;
  finishedAt?: number;
  durationMs?: number;
}

export interface DeliveryView {
  id: string;
  source: string;
  event: string;
  outcome: string;
  deployment?: string;
  receivedAt: number;
}

export interface ServiceView {
  service: string;
  /** Docker's container state, or `missing`. */
  state: string;
  /** `healthy` | `unhealthy` | `starting` | `none`. */
  health: string;
  image?: string;
  /** The image's repository digest (`sha256:…`) when it came from a registry, else its local ID. */
  digest?: string;
  commit?: string;
  container?: string;
  /** `example.com/api` routes of the service. */
  domains: string[];
  /** When the container started (ms), for its uptime. */
  startedAt?: number;
  /** Swarm target: the replicas asked for and the tasks running. */
  replicas?: { desired: number; running: number };
  lastDeploy?: { id: string; action: string; outcome: string; at?: number };
}

export interface PreviewView {
  number: number;
  sha: string;
  head: string;
  state: string;
  description: string;
  finishedAt: number;
}

export interface OverviewData {
  project?: string;
  /** `owner/name` on GitHub: commits and pull requests are linked. */
  repo?: string;
  /** GitHub's web address; default https://github.com. */
  webUrl?: string;
  branch: string;
  deployedCommit?: string;
  queue: { running?: string; pending?: string; previews?: number };
  services: ServiceView[];
  /** Why the services could not be read (Docker unreachable), shown instead of them. */
  servicesError?: string;
  deployments: DeploymentView[];
  deliveries: DeliveryView[];
  previews: PreviewView[];
  now: number;
}

export interface DeploymentPageData {
  deployment: DeploymentView;
  /** The engine's run events of the deploy, in order (as the history kept them). */
  events: object[];
  repo?: string;
  webUrl?: string;
  now: number;
}
