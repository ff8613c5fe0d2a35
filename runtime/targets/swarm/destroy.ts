/**
 * `waffle destroy` on Swarm: the project's services (then waits until this node runs none of their
 * containers), its overlay networks (the Caddy container detached from its ingress networks first), every version of its secrets, and with `volumes` the named volumes
 * of this node. Volumes that tasks created on other nodes stay there (Docker cannot remove a volume
 * from another node); the command's report lists what was removed. Touches nothing without the label.
 */
import type Dockerode from 'dockerode';
import { dockerErrorMessage } from '../../docker/client.ts';
import type { DestroyItemEvent, DestroyResult, DestroySettings, DestroyWhat } from '../target.ts';
import { LABEL } from '../../labels.ts';
import { networkGone, swarmFilter } from './observe.ts';

export async function destroySwarm(docker: Dockerode, project: string, opts: DestroySettings, emit: (e: DestroyItemEvent) => void): Promise<DestroyResult> {
  const filters = swarmFilter(project);
  const result: DestroyResult = { containers: [], networks: [], volumes: [], services: [], secrets: [], errors: [] };
  const list: Record<DestroyWhat, string[]> = { container: result.containers, network: result.networks, volume: result.volumes, service: result.services!, secret: result.secrets! };
  const one = async (what: DestroyWhat, name: string, fn: () => Promise<unknown>) => {
    emit({ type: 'removing', what, name, at: Date.now() });
    try {
      await fn();
      list[what].push(name);
      emit({ type: 'removed', what, name, at: Date.now() });
    } catch (err) {
      const message = dockerErrorMessage(err);
      result.errors.push(`${what} ${name}: ${message}`);
      emit({ type: 'failed', what, name, message, at: Date.now() });
    }
  };

  const services = (await docker.listServices({ filters })) as unknown as Array<{ ID: string; Spec?: { Name?: string } }>;
  await Promise.all(services.map((s) => one('service', s.Spec?.Name ?? s.ID, () => docker.getService(s.ID).remove())));
  // Networks and secrets are in use until the tasks' containers are gone.
  const until = Date.now() + 60_000;
  for (const s of services) {
    while (Date.now() < until) {
      const left = await docker.listContainers({ all: true, filters: { label: [`com.docker.swarm.service.id=${s.ID}`] } });
      if (left.length === 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const retry = async (fn: () => Promise<unknown>) => {
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (i >= 20 || !/in use|active endpoints/i.test(dockerErrorMessage(err))) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  };
  const networks = await docker.listNetworks({ filters });
  // The Caddy container is attached to the routed services' ingress networks: detached first (the
  // project's routes left Caddy before its services were removed).
  if (opts.proxyContainer) {
    for (const n of networks) {
      if (n.Labels?.[LABEL.role] !== 'ingress') continue;
      await docker
        .getNetwork(n.Id)
        .disconnect({ Container: opts.proxyContainer, Force: true })
        .catch(() => undefined);
    }
  }
  await Promise.all(networks.map((n) => one('network', n.Name, () => retry(() => docker.getNetwork(n.Id).remove()).then(() => networkGone(docker, { id: n.Id })))));
  const secrets = (await docker.listSecrets({ filters })) as unknown as Array<{ ID: string; Spec?: { Name?: string } }>;
  await Promise.all(secrets.map((s) => one('secret', s.Spec?.Name ?? s.ID, () => retry(() => docker.getSecret(s.ID).remove()))));
  if (opts.volumes) {
    const volumes = (await docker.listVolumes({ filters })).Volumes ?? [];
    await Promise.all(volumes.map((v) => one('volume', v.Name, () => retry(() => docker.getVolume(v.Name).remove()))));
  }
  for (const k of ['containers', 'networks', 'volumes', 'services', 'secrets'] as const) result[k]!.sort();
  return result;
}
