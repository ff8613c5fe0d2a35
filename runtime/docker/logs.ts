/** `waffle logs <service>`: the service's container logs, stdout and stderr demultiplexed. */
import type Dockerode from 'dockerode';
import { LABEL, names } from '../labels.ts';
import { dockerErrorMessage, withCallLimits } from './client.ts';
import { demuxBuffer } from './container.ts';

/**
 * Writes a service's logs to `out`. Every call honours `opts.signal`; a followed stream has no time
 * limit (it lasts until the container stops or the signal aborts), the calls before it the ordinary one.
 */
export async function streamLogs(
  docker: Dockerode,
  project: string,
  service: string,
  opts: { follow?: boolean; tail?: number | 'all'; signal?: AbortSignal },
  out: NodeJS.WritableStream,
): Promise<void> {
  return withCallLimits({ streamTimeoutMs: 0, ...(opts.signal ? { signal: opts.signal } : {}) }, () => logsOf(docker, project, service, opts, out));
}

async function logsOf(
  docker: Dockerode,
  project: string,
  service: string,
  opts: { follow?: boolean; tail?: number | 'all'; signal?: AbortSignal },
  out: NodeJS.WritableStream,
): Promise<void> {
  const list = await docker.listContainers({
    all: true,
    filters: { label: [`${LABEL.project}=${project}`, `${LABEL.service}=${service}`] },
  });
  if (list.length === 0) {
    const all = await docker.listContainers({ all: true, filters: { label: [`${LABEL.project}=${project}`] } });
    const services = [...new Set(all.map((c) => c.Labels?.[LABEL.service]).filter(Boolean))].sort();
    throw new Error(
      `service "${service}" has no container in project "${project}". ` +
        (services.length ? `Fix: use one of: ${services.join(', ')}.` : 'Fix: run `waffle apply` first.'),
    );
  }
  // The container under the service's own name, else the newest (e.g. a temp container mid-replace).
  const wanted = names.container(project, service);
  const pick = list.find((c) => c.Names?.some((n) => n.replace(/^\//, '') === wanted)) ?? [...list].sort((a, b) => b.Created - a.Created)[0];
  const container = docker.getContainer(pick.Id);
  const tail = opts.tail ?? 'all';
  try {
    if (opts.follow) {
      const stream = (await container.logs({ stdout: true, stderr: true, follow: true, tail: tail as number })) as NodeJS.ReadableStream & {
        destroy?: () => void;
      };
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          stream.destroy?.();
          resolve();
        };
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        docker.modem.demuxStream(stream, out, out);
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', (err: Error) => (opts.signal?.aborted ? resolve() : reject(err)));
      });
    } else {
      const data = (await container.logs({ stdout: true, stderr: true, follow: false, tail: tail as number })) as unknown;
      const buf = Buffer.isBuffer(data) ? data : Buffer.from(String(data ?? ''));
      out.write(demuxBuffer(buf).combined);
    }
  } catch (err) {
    if (opts.signal?.aborted) return; // the caller stopped reading (Ctrl-C): not a failure
    throw new Error(`could not read logs of service "${service}": ${dockerErrorMessage(err)}`);
  }
}
