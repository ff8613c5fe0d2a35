/** Networks and volumes: create (idempotent for our own), remove. */
import type Dockerode from 'dockerode';
import { LABEL } from '../labels.ts';
import type { NetworkCreateBody } from '../model.ts';
import { dockerErrorMessage, dockerStatus } from './client.ts';

/**
 * Creates a network. If one with that name exists and carries the same project label it is reused
 * (an earlier, interrupted apply); one that is not ours is an error with a fix.
 */
export async function createNetwork(docker: Dockerode, body: NetworkCreateBody): Promise<{ id: string; reused: boolean }> {
  const project = body.Labels[LABEL.project];
  const existing = await findNetworkByName(docker, body.Name);
  if (existing) return reuseOrRefuse(existing, body.Name, project);
  try {
    const net = await docker.createNetwork({ ...body, CheckDuplicate: true } as Dockerode.NetworkCreateOptions);
    return { id: net.id, reused: false };
  } catch (err) {
    if (dockerStatus(err) === 409) {
      const again = await findNetworkByName(docker, body.Name);
      if (again) return reuseOrRefuse(again, body.Name, project);
    }
    throw new Error(`could not create network ${body.Name}: ${dockerErrorMessage(err)}`);
  }
}

function reuseOrRefuse(net: Dockerode.NetworkInspectInfo, name: string, project: string | undefined): { id: string; reused: boolean } {
  if (project && net.Labels?.[LABEL.project] === project) return { id: net.Id, reused: true };
  throw new Error(
    `network ${name} already exists and does not belong to project "${project}". ` +
      `Fix: remove or rename that network (docker network rm ${name}), or rename the project in the configuration file (waffle.config.ts, or the one given with -c).`,
  );
}

/** Exact-name lookup (Docker's name filter matches substrings). */
async function findNetworkByName(docker: Dockerode, name: string): Promise<Dockerode.NetworkInspectInfo | undefined> {
  const list = await docker.listNetworks({ filters: { name: [name] } });
  return list.find((n) => n.Name === name);
}

/** Removes a network; an already-missing network is fine. */
export async function removeNetwork(docker: Dockerode, name: string): Promise<void> {
  // Right after its containers are removed, Docker can still count their endpoints for a moment: a few
  // retries, then endpoints whose container no longer exists are disconnected by force (never one of a
  // container that still exists: that is someone else's, and the error names the network).
  for (let attempt = 0; ; attempt++) {
    try {
      await docker.getNetwork(name).remove();
      return;
    } catch (err) {
      if (dockerStatus(err) === 404) return;
      const busy = /active endpoints/.test(dockerErrorMessage(err));
      if (!busy || attempt >= 6) throw new Error(`could not remove network ${name}: ${dockerErrorMessage(err)}`);
      if (attempt === 3) await disconnectStaleEndpoints(docker, name);
      await new Promise((r) => setTimeout(r, 250 * (attempt + 1)));
    }
  }
}

async function disconnectStaleEndpoints(docker: Dockerode, network: string): Promise<void> {
  const info = (await docker.getNetwork(network).inspect().catch(() => undefined)) as Dockerode.NetworkInspectInfo | undefined;
  for (const [id, ep] of Object.entries(info?.Containers ?? {})) {
    const exists = await docker
      .getContainer(id)
      .inspect()
      .then(() => true)
      .catch((e: unknown) => dockerStatus(e) !== 404);
    if (!exists) await docker.getNetwork(network).disconnect({ Container: ep.Name || id, Force: true }).catch(() => {});
  }
}

/** Creates a named volume with labels. Docker returns an existing local volume of that name as is. */
export async function createVolume(docker: Dockerode, name: string, labels: Record<string, string>): Promise<void> {
  try {
    await docker.createVolume({ Name: name, Labels: labels });
  } catch (err) {
    throw new Error(`could not create volume ${name}: ${dockerErrorMessage(err)}`);
  }
}

export async function removeVolume(docker: Dockerode, name: string): Promise<void> {
  try {
    await docker.getVolume(name).remove();
  } catch (err) {
    if (dockerStatus(err) === 404) return;
    throw new Error(`could not remove volume ${name}: ${dockerErrorMessage(err)}`);
  }
}

/** One endpoint of a container: whether it is on `network`, and with which aliases. */
async function endpointOf(docker: Dockerode, containerId: string, network: string): Promise<{ aliases: string[]; shortId: string } | undefined> {
  let info: Dockerode.ContainerInspectInfo;
  try {
    info = await docker.getContainer(containerId).inspect();
  } catch (err) {
    throw new Error(`could not inspect container ${containerId.slice(0, 12)}: ${dockerErrorMessage(err)}`);
  }
  const ep = info.NetworkSettings?.Networks?.[network];
  return ep ? { aliases: ep.Aliases ?? [], shortId: info.Id.slice(0, 12) } : undefined;
}

async function disconnect(docker: Dockerode, network: string, containerId: string): Promise<void> {
  try {
    await docker.getNetwork(network).disconnect({ Container: containerId, Force: false });
  } catch (err) {
    // Already gone from the network (an interrupted earlier attempt): that is what was wanted.
    if (/is not connected to/.test(dockerErrorMessage(err))) return;
    throw new Error(`could not disconnect container ${containerId.slice(0, 12)} from network ${network}: ${dockerErrorMessage(err)}`);
  }
}

async function connect(docker: Dockerode, network: string, containerId: string, aliases: string[]): Promise<void> {
  try {
    await docker.getNetwork(network).connect({ Container: containerId, EndpointConfig: { Aliases: aliases } });
  } catch (err) {
    throw new Error(`could not connect container ${containerId.slice(0, 12)} to network ${network}: ${dockerErrorMessage(err)}`);
  }
}

/**
 * Gives a container `aliases` on `network` (`POST /networks/{id}/connect` with `EndpointConfig.Aliases`).
 * Docker cannot add an alias to an existing endpoint, so a container on the network without them is
 * disconnected and connected again with them. One that has them already is left alone (no gap), one that
 * is not on the network (an interrupted earlier switch) is connected. Returns what was done.
 */
export async function ensureAliases(docker: Dockerode, containerId: string, network: string, aliases: string[]): Promise<'present' | 'moved'> {
  const ep = await endpointOf(docker, containerId, network);
  if (ep && aliases.every((a) => ep.aliases.includes(a))) return 'present';
  if (ep) await disconnect(docker, network, containerId);
  await connect(docker, network, containerId, [...new Set([...(ep?.aliases ?? []).filter((a) => a !== ep?.shortId), ...aliases])]);
  return 'moved';
}

/**
 * Takes `aliases` away from a container on `network`: disconnect, then connect again without them, so
 * Docker's DNS stops answering with its address while it stays on the network. Docker's address
 * allocation hands out the lowest free address, usually the one just released, so connections already
 * made to it resume after a TCP retransmit. A container not on the network, or without the aliases, is
 * left alone. Returns what was done.
 */
export async function dropAliases(docker: Dockerode, containerId: string, network: string, aliases: string[]): Promise<'absent' | 'dropped'> {
  const ep = await endpointOf(docker, containerId, network);
  if (!ep || !aliases.some((a) => ep.aliases.includes(a))) return 'absent';
  await disconnect(docker, network, containerId);
  await connect(docker, network, containerId, ep.aliases.filter((a) => a !== ep.shortId && !aliases.includes(a)));
  return 'dropped';
}
