/**
 * Observed state: what Docker has for a project, found by our project label only.
 * The list endpoint lacks restart policy, limits and health, so containers are inspected in parallel.
 */
import type Dockerode from 'dockerode';
import { LABEL } from '../labels.ts';
import type { ObservedContainer, ObservedNetwork, ObservedState, ObservedVolume, RestartSpec } from '../model.ts';
import { dockerStatus } from './client.ts';
import { listImageRefs } from './image.ts';

export function projectFilter(project: string): { label: string[] } {
  return { label: [`${LABEL.project}=${project}`] };
}

const RESTART_NAMES = new Set(['no', 'always', 'unless-stopped', 'on-failure']);

export async function observe(docker: Dockerode, project: string): Promise<ObservedState> {
  const filters = projectFilter(project);
  const [list, networks, volumes, images] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listNetworks({ filters }),
    docker.listVolumes({ filters }),
    listImageRefs(docker),
  ]);

  const inspected = await Promise.all(
    list.map(async (c) => {
      try {
        return await docker.getContainer(c.Id).inspect();
      } catch (err) {
        if (dockerStatus(err) === 404) return undefined; // removed between list and inspect
        throw err;
      }
    }),
  );

  const containers: ObservedContainer[] = [];
  list.forEach((c, i) => {
    const info = inspected[i];
    if (!info) return;
    containers.push(toObserved(c, info));
  });
  containers.sort((a, b) => a.service.localeCompare(b.service) || a.name.localeCompare(b.name));

  const observedNetworks: ObservedNetwork[] = networks
    .map((n) => ({ id: n.Id, name: n.Name, labels: n.Labels ?? {} }))
    .sort((a, b) => a.name.localeCompare(b.name));
  const observedVolumes: ObservedVolume[] = (volumes.Volumes ?? [])
    .map((v) => ({ name: v.Name, labels: (v.Labels as Record<string, string> | null) ?? {} }))
    .sort((a, b) => a.name.localeCompare(b.name));

  return { project, containers, networks: observedNetworks, volumes: observedVolumes, images };
}

function toObserved(c: Dockerode.ContainerInfo, info: Dockerode.ContainerInspectInfo): ObservedContainer {
  const labels = c.Labels ?? info.Config?.Labels ?? {};
  const name = (c.Names?.[0] ?? info.Name ?? '').replace(/^\//, '');
  const rp = info.HostConfig?.RestartPolicy;
  const rpName = rp?.Name && RESTART_NAMES.has(rp.Name) ? (rp.Name as RestartSpec['name']) : 'no';
  const health = (info.State as { Health?: { Status?: string } }).Health?.Status ?? 'none';
  const generation = Number(labels[LABEL.generation] ?? 0);
  return {
    id: c.Id,
    name,
    service: labels[LABEL.service] ?? '',
    configHash: labels[LABEL.configHash] ?? '',
    commit: labels[LABEL.commit] ?? '',
    generation: Number.isFinite(generation) ? generation : 0,
    image: info.Config?.Image ?? c.Image,
    imageId: c.ImageID ?? info.Image,
    state: info.State?.Status ?? c.State,
    health,
    labels,
    restart: { name: rpName, maximumRetryCount: rp?.MaximumRetryCount ?? 0 },
    resources: { memory: info.HostConfig?.Memory ?? 0, nanoCpus: info.HostConfig?.NanoCpus ?? 0 },
    createdAt: c.Created ? c.Created * 1000 : Date.parse(info.Created),
    ports: (c.Ports ?? [])
      .map((p) => {
        const port: ObservedContainer['ports'][number] = { container: p.PrivatePort, protocol: p.Type };
        if (p.PublicPort) port.host = p.PublicPort;
        if (p.IP) port.hostIp = p.IP;
        return port;
      })
      .sort((a, b) => a.container - b.container || (a.hostIp ?? '').localeCompare(b.hostIp ?? '') || (a.host ?? 0) - (b.host ?? 0)),
  };
}
