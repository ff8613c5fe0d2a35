/**
 * What `waffle dev` does to a running service besides redeploying it: copy changed host files into its
 * container (one tar archive through `PUT /containers/{id}/archive`, as `docker cp` does) or restart
 * it. The container is the project's own, found by its labels. No decisions here.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { LABEL, names } from '../labels.ts';
import { dockerErrorMessage } from './client.ts';

/** One file to copy: where it is on the host and where it goes in the container (absolute paths). */
export interface SyncFile {
  host: string;
  container: string;
}

/**
 * The running container of `service`: the one under the service's own name, else (mid-replace) the
 * newest running one with its labels. Throws when none runs.
 */
export async function serviceContainer(docker: Dockerode, project: string, service: string): Promise<{ id: string; name: string }> {
  const list = await docker.listContainers({
    all: false,
    filters: { label: [`${LABEL.project}=${project}`, `${LABEL.service}=${service}`] },
  });
  const own = names.container(project, service);
  const pick = list.find((c) => c.Names.some((n) => n.replace(/^\//, '') === own)) ?? [...list].sort((a, b) => b.Created - a.Created)[0];
  if (!pick) throw new Error(`service ${service} has no running container; it is started by the next successful apply`);
  return { id: pick.Id, name: (pick.Names[0] ?? own).replace(/^\//, '') };
}

/** The files as one tar archive, each under its container path (relative to `/`), with its mode. */
export async function tarOf(files: SyncFile[]): Promise<Buffer> {
  const tar = await import('tar-stream');
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const f of files) {
    const st = statSync(f.host);
    const body = readFileSync(f.host);
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name: f.container.replace(/^\/+/, ''), size: body.length, mode: st.mode & 0o7777, mtime: st.mtime }, body, (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Copies `files` into the container (parents are created by the archive's extraction). */
export async function syncIntoContainer(docker: Dockerode, containerId: string, files: SyncFile[]): Promise<void> {
  if (files.length === 0) return;
  const archive = await tarOf(files);
  try {
    await docker.getContainer(containerId).putArchive(archive, { path: '/' });
  } catch (err) {
    throw new Error(`could not copy ${files.map((f) => path.posix.basename(f.container)).join(', ')} into the container: ${dockerErrorMessage(err)}`);
  }
}

/** Restarts the container, giving its process `graceSeconds` between SIGTERM and SIGKILL. */
export async function restartContainer(docker: Dockerode, containerId: string, graceSeconds: number): Promise<void> {
  try {
    await docker.getContainer(containerId).restart({ t: graceSeconds });
  } catch (err) {
    throw new Error(`could not restart the container: ${dockerErrorMessage(err)}`);
  }
}
