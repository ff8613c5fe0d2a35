/**
 * Observed state on Swarm: the project's services, tasks, secrets and networks, as the managers report
 * them, found by the project label. Four list calls whatever the number of services (the task list's
 * label filter matches the labels of the task's service), and, when planning routes, one inspect of the
 * Caddy container for the networks it is attached to.
 *
 * From each service: its spec version (an update must name it), our hash labels, the replica count and
 * Swarm's update status (a rolled back update shows there). From each task: its slot, node, state,
 * desired state and error. Environment values are never kept (a secret variable's value is in the spec).
 *
 * For `status` and the UI, every task Swarm wants running is also listed as a container
 * (`<project>_<service>.<slot>`), with its state and health as Swarm sees them.
 */
import type Dockerode from 'dockerode';
import { LABEL } from '../../labels.ts';
import type { ObservedContainer, ObservedState, ObservedSwarmService, ObservedSwarmTask } from '../../model.ts';

/** The parts of Docker's answers this file reads. */
interface ServiceInfo {
  ID: string;
  Version?: { Index?: number };
  Spec?: {
    Name?: string;
    Labels?: Record<string, string>;
    Mode?: { Replicated?: { Replicas?: number } };
    TaskTemplate?: { ContainerSpec?: { Image?: string; Secrets?: Array<{ SecretName?: string }>; Healthcheck?: { Test?: string[] } } };
  };
  UpdateStatus?: { State?: string; Message?: string };
}

interface TaskInfo {
  ID: string;
  ServiceID: string;
  Slot?: number;
  NodeID?: string;
  CreatedAt?: string;
  Version?: { Index?: number };
  Spec?: { ContainerSpec?: { Image?: string } };
  Status?: { State?: string; Message?: string; Err?: string; ContainerStatus?: { ContainerID?: string } };
  DesiredState?: string;
}

export function swarmFilter(project: string): { label: string[] } {
  return { label: [`${LABEL.project}=${project}`] };
}

/** Tasks Swarm keeps as part of the service now (not the history of replaced ones). */
export const isLiveTask = (t: ObservedSwarmTask) => t.desiredState === 'running' || t.desiredState === 'ready';

/**
 * The networks the Caddy container is attached to (one inspect). A container that does not exist is a
 * setup error, named with the way out.
 */
async function observeCaddy(docker: Dockerode, container: string, configFile: string): Promise<{ container: string; networks: string[] }> {
  try {
    const info = (await docker.getContainer(container).inspect()) as { NetworkSettings?: { Networks?: Record<string, unknown> } };
    return { container, networks: Object.keys(info.NetworkSettings?.Networks ?? {}).sort() };
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    throw new Error(
      `the Caddy container "${container}" (ingress.caddy.container in ${configFile}) does not exist on this Swarm manager. ` +
        `Fix: start Caddy as a container on the manager (the \`docker run\` line in "From one host to a Swarm" in the README), or set ingress.caddy.container to its name`,
    );
  }
}

/** `caddy`: with routes on Swarm, the Caddy container to read the networks of (planning only). */
export async function observeSwarm(docker: Dockerode, project: string, caddy?: { container: string; configFile: string }): Promise<ObservedState> {
  const filters = swarmFilter(project);
  const [services, tasks, secrets, networks, caddyNetworks] = await Promise.all([
    docker.listServices({ filters }) as unknown as Promise<ServiceInfo[]>,
    docker.listTasks({ filters }) as Promise<TaskInfo[]>,
    docker.listSecrets({ filters }) as unknown as Promise<Array<{ ID: string; Spec?: { Name?: string; Labels?: Record<string, string> } }>>,
    docker.listNetworks({ filters }),
    caddy ? observeCaddy(docker, caddy.container, caddy.configFile) : Promise.resolve(undefined),
  ]);
  const observedServices: ObservedSwarmService[] = services
    .filter((s) => s.Spec?.Labels?.[LABEL.project] === project && s.Spec?.Labels?.[LABEL.service])
    .map((s) => {
      const labels = { ...(s.Spec?.Labels ?? {}) };
      const out: ObservedSwarmService = {
        id: s.ID,
        name: s.Spec?.Name ?? s.ID,
        service: labels[LABEL.service]!,
        version: s.Version?.Index ?? 0,
        configHash: labels[LABEL.configHash] ?? '',
        labels,
        replicas: s.Spec?.Mode?.Replicated?.Replicas ?? 0,
        image: s.Spec?.TaskTemplate?.ContainerSpec?.Image ?? '',
        secrets: (s.Spec?.TaskTemplate?.ContainerSpec?.Secrets ?? []).map((x) => x.SecretName ?? '').filter(Boolean).sort(),
      };
      if (s.UpdateStatus?.State) out.updateState = s.UpdateStatus.State;
      if (s.UpdateStatus?.Message) out.updateMessage = s.UpdateStatus.Message;
      return out;
    })
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const serviceOf = new Map(observedServices.map((s) => [s.id, s] as const));
  const observedTasks = tasks.filter((t) => serviceOf.has(t.ServiceID)).map((t) => taskOf(t, serviceOf.get(t.ServiceID)!.service));
  observedTasks.sort((a, b) => (a.service !== b.service ? (a.service < b.service ? -1 : 1) : (a.slot ?? 0) - (b.slot ?? 0) || a.createdAt - b.createdAt));

  const checked = new Set(services.filter((s) => (s.Spec?.TaskTemplate?.ContainerSpec?.Healthcheck?.Test?.[0] ?? 'NONE') !== 'NONE').map((s) => s.ID));
  const containers: ObservedContainer[] = observedTasks.filter(isLiveTask).map((t) => {
    const svc = serviceOf.get(t.serviceId)!;
    const health = !checked.has(t.serviceId) ? 'none' : t.state === 'running' ? 'healthy' : t.state === 'starting' ? 'starting' : 'unhealthy';
    return {
      id: t.containerId ?? t.id,
      name: `${svc.name}.${t.slot ?? t.id.slice(0, 12)}`,
      service: t.service,
      configHash: svc.configHash,
      commit: svc.labels[LABEL.commit] ?? '',
      generation: t.version ?? 0,
      image: t.image ?? svc.image,
      imageId: '',
      state: t.state,
      // A Swarm task with a healthcheck stays `starting` until it is healthy.
      health,
      labels: { [LABEL.project]: project, [LABEL.service]: t.service },
      restart: { name: 'always', maximumRetryCount: 0 },
      resources: { memory: 0, nanoCpus: 0 },
      createdAt: t.createdAt,
      ports: [],
    };
  });

  return {
    project,
    containers,
    networks: networks.map((n) => ({ id: n.Id, name: n.Name, labels: n.Labels ?? {} })),
    volumes: [],
    images: [],
    swarm: {
      services: observedServices,
      tasks: observedTasks,
      secrets: secrets.map((s) => ({ id: s.ID, name: s.Spec?.Name ?? s.ID, labels: s.Spec?.Labels ?? {} })).sort((a, b) => (a.name < b.name ? -1 : 1)),
      ...(caddyNetworks ? { caddy: caddyNetworks } : {}),
    },
  };
}

/**
 * Waits (up to 30 s) until the network is no longer listed. An overlay network that a standalone
 * container (the Caddy container) was attached to stays listed for a moment after its removal was
 * accepted, while the node cleans up the attachment.
 */
export async function networkGone(docker: Dockerode, network: { id: string } | { name: string }): Promise<void> {
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    const left = await docker.listNetworks({ filters: 'id' in network ? { id: [network.id] } : { name: [network.name] } });
    if (!left.some((n) => ('id' in network ? n.Id === network.id : n.Name === network.name))) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

export function taskOf(t: TaskInfo, service: string): ObservedSwarmTask {
  const out: ObservedSwarmTask = {
    id: t.ID,
    serviceId: t.ServiceID,
    service,
    state: t.Status?.State ?? 'unknown',
    desiredState: t.DesiredState ?? 'unknown',
    createdAt: t.CreatedAt ? Date.parse(t.CreatedAt) : 0,
  };
  if (t.Slot !== undefined) out.slot = t.Slot;
  if (t.NodeID) out.node = t.NodeID;
  if (t.Status?.Err) out.error = t.Status.Err;
  if (t.Status?.Message) out.message = t.Status.Message;
  if (t.Status?.ContainerStatus?.ContainerID) out.containerId = t.Status.ContainerStatus.ContainerID;
  if (t.Spec?.ContainerSpec?.Image) out.image = t.Spec.ContainerSpec.Image;
  if (t.Version?.Index !== undefined) out.version = t.Version.Index;
  return out;
}

export type { TaskInfo };
