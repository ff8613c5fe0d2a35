/** `waffle destroy`: remove every container and network (and volumes if asked) with our project label. */
import type Dockerode from 'dockerode';
import { dockerErrorMessage } from './client.ts';
import { removeContainer, stopContainer } from './container.ts';
import { removeNetwork, removeVolume } from './network.ts';
import { projectFilter } from './observe.ts';

export type DestroyEvent =
  | { type: 'removing'; what: 'container' | 'network' | 'volume'; name: string; at: number }
  | { type: 'removed'; what: 'container' | 'network' | 'volume'; name: string; at: number }
  | { type: 'failed'; what: 'container' | 'network' | 'volume'; name: string; message: string; at: number };

export interface DestroyResult {
  containers: string[];
  networks: string[];
  volumes: string[];
  /** Objects that could not be removed, with Docker's reason. */
  errors: string[];
}

/**
 * Removes the project's containers (stopped with their own StopTimeout, in parallel), then its
 * networks, then (only with `volumes: true`) its volumes. Touches nothing without the project label.
 */
export async function destroyProject(
  docker: Dockerode,
  project: string,
  opts: { volumes?: boolean } = {},
  emit?: (e: DestroyEvent) => void,
): Promise<DestroyResult> {
  const filters = projectFilter(project);
  const result: DestroyResult = { containers: [], networks: [], volumes: [], errors: [] };
  const one = async (what: 'container' | 'network' | 'volume', name: string, fn: () => Promise<void>) => {
    emit?.({ type: 'removing', what, name, at: Date.now() });
    try {
      await fn();
      result[`${what}s`].push(name);
      emit?.({ type: 'removed', what, name, at: Date.now() });
    } catch (err) {
      const message = dockerErrorMessage(err);
      result.errors.push(`${what} ${name}: ${message}`);
      emit?.({ type: 'failed', what, name, message, at: Date.now() });
    }
  };

  const containers = await docker.listContainers({ all: true, filters });
  await Promise.all(
    containers.map((c) =>
      one('container', (c.Names?.[0] ?? c.Id).replace(/^\//, ''), async () => {
        if (c.State === 'running' || c.State === 'restarting' || c.State === 'paused') await stopContainer(docker, c.Id);
        await removeContainer(docker, c.Id, { force: true, v: false });
      }),
    ),
  );

  const networks = await docker.listNetworks({ filters });
  await Promise.all(networks.map((n) => one('network', n.Name, () => removeNetwork(docker, n.Id))));

  if (opts.volumes) {
    const volumes = (await docker.listVolumes({ filters })).Volumes ?? [];
    await Promise.all(volumes.map((v) => one('volume', v.Name, () => removeVolume(docker, v.Name))));
  }
  for (const k of ['containers', 'networks', 'volumes'] as const) result[k].sort();
  return result;
}
