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
      `Fix: remove or rename that network (docker network rm ${name}), or rename the project in waffle.config.ts.`,
  );
}

/** Exact-name lookup (Docker's name filter matches substrings). */
async function findNetworkByName(docker: Dockerode, name: string): Promise<Dockerode.NetworkInspectInfo | undefined> {
  const list = await docker.listNetworks({ filters: { name: [name] } });
  return list.find((n) => n.Name === name);
}

/** Removes a network; an already-missing network is fine. */
export async function removeNetwork(docker: Dockerode, name: string): Promise<void> {
  try {
    await docker.getNetwork(name).remove();
  } catch (err) {
    if (dockerStatus(err) === 404) return;
    throw new Error(`could not remove network ${name}: ${dockerErrorMessage(err)}`);
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
