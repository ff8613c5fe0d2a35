/**
 * Container calls the executor needs: create (with every network of the body), start, stop, remove,
 * rename, update, and the failure evidence (healthcheck outputs + log tail). No decisions here.
 */
import type Dockerode from 'dockerode';
import { LABEL } from '../labels.ts';
import type { ContainerCreateBody, FailureDetail } from '../model.ts';
import { dockerErrorMessage, dockerSettingsOf, dockerStatus, withCallLimits } from './client.ts';

/** Docker's stop grace period when a container sets none. */
const DOCKER_STOP_TIMEOUT_S = 10;

/**
 * Creates a container from a planner-computed body. Docker API 1.41 connects only one network at
 * create time, so the container is created on its `NetworkMode` network and then connected to every
 * other network of `body.NetworkingConfig.EndpointsConfig` (with its aliases) before it starts.
 *
 * `removeStale`: when the name is taken by a leftover container of the same project and service
 * (a temp container from an interrupted apply), remove it and retry once.
 */
export async function createContainer(
  docker: Dockerode,
  name: string,
  body: ContainerCreateBody,
  opts: { removeStale?: boolean; keepId?: string } = {},
): Promise<Dockerode.Container> {
  const endpoints = body.NetworkingConfig?.EndpointsConfig ?? {};
  const primary = body.HostConfig.NetworkMode;
  const first: Record<string, { Aliases: string[] }> = {};
  if (primary && endpoints[primary]) first[primary] = endpoints[primary];
  const createBody = { ...body, name, NetworkingConfig: { EndpointsConfig: first } } as unknown as Dockerode.ContainerCreateOptions;

  let container: Dockerode.Container;
  try {
    container = await docker.createContainer(createBody);
  } catch (err) {
    if (dockerStatus(err) === 409 && opts.removeStale && (await removeStaleByName(docker, name, body, opts.keepId))) {
      container = await docker.createContainer(createBody);
    } else {
      throw new Error(`could not create container ${name}: ${dockerErrorMessage(err)}`);
    }
  }

  try {
    for (const [net, cfg] of Object.entries(endpoints)) {
      if (net === primary) continue;
      await docker.getNetwork(net).connect({ Container: container.id, EndpointConfig: { Aliases: cfg.Aliases ?? [] } });
    }
  } catch (err) {
    await removeContainerQuiet(docker, container.id);
    throw new Error(`could not connect container ${name} to its networks: ${dockerErrorMessage(err)}`);
  }
  return container;
}

/** Removes a same-project, same-service container squatting `name` (never `keepId`). True if removed. */
async function removeStaleByName(docker: Dockerode, name: string, body: ContainerCreateBody, keepId?: string): Promise<boolean> {
  try {
    const info = await docker.getContainer(name).inspect();
    const labels = info.Config?.Labels ?? {};
    if (info.Id === keepId) return false;
    if (labels[LABEL.project] !== body.Labels[LABEL.project] || labels[LABEL.service] !== body.Labels[LABEL.service]) return false;
    await docker.getContainer(info.Id).remove({ force: true, v: false });
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops a container; `t` seconds before SIGKILL (undefined: the container's own StopTimeout, read
 * from inspect, Docker's 10 s when unset). The call's time limit is that grace period plus the
 * client's ordinary limit, so a slow but working stop is not cut short and a hung engine still ends
 * it. 304/404 are fine.
 */
export async function stopContainer(docker: Dockerode, id: string, t?: number): Promise<void> {
  try {
    const grace = t ?? ((await docker.getContainer(id).inspect()).Config as { StopTimeout?: number } | undefined)?.StopTimeout ?? DOCKER_STOP_TIMEOUT_S;
    const limit = Math.max(0, grace) * 1000 + dockerSettingsOf(docker).timeoutMs;
    await withCallLimits({ timeoutMs: limit }, () => docker.getContainer(id).stop(t === undefined ? {} : { t }));
  } catch (err) {
    const s = dockerStatus(err);
    if (s === 304 || s === 404) return;
    throw new Error(`could not stop container ${id.slice(0, 12)}: ${dockerErrorMessage(err)}`);
  }
}

/** Starts a container; 304 (already running) is fine. */
export async function startContainer(docker: Dockerode, id: string): Promise<void> {
  try {
    await docker.getContainer(id).start();
  } catch (err) {
    if (dockerStatus(err) === 304) return;
    throw new Error(`could not start container ${id.slice(0, 12)}: ${dockerErrorMessage(err)}`);
  }
}

/** Removes a container (anonymous volumes kept unless `v`); 404 is fine. */
export async function removeContainer(docker: Dockerode, id: string, opts: { force?: boolean; v?: boolean } = {}): Promise<void> {
  try {
    await docker.getContainer(id).remove({ force: opts.force ?? false, v: opts.v ?? false });
  } catch (err) {
    if (dockerStatus(err) === 404) return;
    throw new Error(`could not remove container ${id.slice(0, 12)}: ${dockerErrorMessage(err)}`);
  }
}

/** Force-removes a container and ignores every error (cleanup after a failure). */
export async function removeContainerQuiet(docker: Dockerode, id: string): Promise<void> {
  try {
    await docker.getContainer(id).remove({ force: true, v: false });
  } catch {
    /* already gone or engine trouble: nothing more to do */
  }
}

export async function renameContainer(docker: Dockerode, id: string, name: string): Promise<void> {
  try {
    await docker.getContainer(id).rename({ name });
  } catch (err) {
    throw new Error(`could not rename container ${id.slice(0, 12)} to ${name}: ${dockerErrorMessage(err)}`);
  }
}

export interface ContainerUpdate {
  RestartPolicy?: { Name: string; MaximumRetryCount: number };
  Memory?: number;
  MemorySwap?: number;
  NanoCpus?: number;
}

/**
 * `POST /containers/{id}/update`. When Memory changes without MemorySwap, MemorySwap is set to
 * 2×Memory (Docker's own default at create) so Docker accepts a limit above the current swap limit.
 */
export async function updateContainer(docker: Dockerode, id: string, update: ContainerUpdate): Promise<void> {
  const body: ContainerUpdate = { ...update };
  if (body.Memory !== undefined && body.Memory > 0 && body.MemorySwap === undefined) body.MemorySwap = body.Memory * 2;
  try {
    await docker.getContainer(id).update(body);
  } catch (err) {
    throw new Error(`could not update container ${id.slice(0, 12)}: ${dockerErrorMessage(err)}`);
  }
}

/** Splits Docker's multiplexed log stream (8-byte frame headers) held in a buffer; raw text for TTY output. */
export function demuxBuffer(buf: Buffer): { stdout: string; stderr: string; combined: string } {
  const out: Buffer[] = [];
  const errs: Buffer[] = [];
  const all: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const type = buf[i];
    const len = buf.readUInt32BE(i + 4);
    if ((type !== 0 && type !== 1 && type !== 2) || buf[i + 1] !== 0 || buf[i + 2] !== 0 || buf[i + 3] !== 0) {
      // Not multiplexed (TTY) or misaligned: the rest is plain output.
      const rest = buf.subarray(i);
      out.push(rest);
      all.push(rest);
      i = buf.length;
      break;
    }
    const chunk = buf.subarray(i + 8, Math.min(buf.length, i + 8 + len));
    (type === 2 ? errs : out).push(chunk);
    all.push(chunk);
    i += 8 + len;
  }
  if (i < buf.length && i === 0) {
    out.push(buf);
    all.push(buf);
  }
  return {
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(errs).toString('utf8'),
    combined: Buffer.concat(all).toString('utf8'),
  };
}

/** The last `lines` log lines (stdout and stderr interleaved as written). Never throws. */
export async function logTail(docker: Dockerode, id: string, lines = 20): Promise<string[]> {
  try {
    const data = (await docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false, tail: lines })) as unknown;
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(String(data ?? ''));
    return demuxBuffer(buf)
      .combined.split('\n')
      .map((l) => l.replace(/\r$/, '').trimEnd())
      .filter((l) => l.length > 0)
      .slice(-lines);
  } catch {
    return [];
  }
}

/** The last `n` healthcheck outputs (trimmed, newest last). Never throws. */
export async function healthOutputs(docker: Dockerode, id: string, n = 5): Promise<string[]> {
  try {
    const info = await docker.getContainer(id).inspect();
    return healthOutputsOf(info, n);
  } catch {
    return [];
  }
}

export function healthOutputsOf(info: Dockerode.ContainerInspectInfo, n = 5): string[] {
  const log = (info.State as { Health?: { Log?: Array<{ Output?: string; ExitCode?: number }> } }).Health?.Log ?? [];
  return log
    .slice(-n)
    .map((entry) => {
      const text = (entry.Output ?? '').trim();
      return text || `exit code ${entry.ExitCode ?? '?'}`;
    });
}

/** Health outputs + log tail of a failed container, for an op-failed event. */
export async function failureEvidence(
  docker: Dockerode,
  id: string,
  message: string,
  definedAt?: string,
): Promise<FailureDetail> {
  const [healthOutput, tail] = await Promise.all([healthOutputs(docker, id), logTail(docker, id)]);
  const detail: FailureDetail = { message };
  if (healthOutput.length) detail.healthOutput = healthOutput;
  if (tail.length) detail.logTail = tail;
  if (definedAt) detail.definedAt = definedAt;
  return detail;
}
