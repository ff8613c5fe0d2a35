/** Waiting for a started container to become healthy (polling inspect, ~every 250 ms). */
import type Dockerode from 'dockerode';
import type { ContainerCreateBody } from '../model.ts';
import { dockerErrorMessage, isDockerCallError } from './client.ts';

const NS_PER_MS = 1_000_000;
// Docker's defaults when a healthcheck leaves a field at 0.
const DEFAULT_INTERVAL_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 3;

/**
 * How long to wait for health: startPeriod + (interval + timeout) × (retries + 1) + 10 s, from the
 * body's healthcheck (Docker's defaults for zero fields). Without a healthcheck: 10 s to be running.
 */
export function healthDeadlineMs(body: Pick<ContainerCreateBody, 'Healthcheck'>): number {
  const hc = body.Healthcheck;
  if (!hc || (hc.Test.length > 0 && hc.Test[0] === 'NONE')) return 10_000;
  const interval = hc.Interval ? hc.Interval / NS_PER_MS : DEFAULT_INTERVAL_MS;
  const timeout = hc.Timeout ? hc.Timeout / NS_PER_MS : DEFAULT_TIMEOUT_MS;
  const retries = hc.Retries || DEFAULT_RETRIES;
  const start = hc.StartPeriod ? hc.StartPeriod / NS_PER_MS : 0;
  return Math.ceil(start + (interval + timeout) * (retries + 1) + 10_000);
}

export interface HealthResult {
  ok: boolean;
  /** healthy | unhealthy | starting | running (no healthcheck) | exited | timeout | aborted | gone */
  status: string;
  /** Why it is not healthy, for the failure message. */
  reason?: string;
}

/**
 * Polls `inspect` until the container is healthy (or, without a healthcheck, running for a moment).
 * Fails early when it turns unhealthy or exits. `onStatus` is called whenever the status changes.
 */
export async function waitHealthy(
  docker: Dockerode,
  id: string,
  opts: { timeoutMs: number; intervalMs?: number; onStatus?: (status: string, deadline: number) => void },
): Promise<HealthResult> {
  const interval = opts.intervalMs ?? 250;
  const deadline = Date.now() + opts.timeoutMs;
  let last = '';
  let runningSince = 0;
  let firstRestarts: number | undefined;
  const watchStart = Math.floor(Date.now() / 1000) - 1;
  let lastExit = 0;
  for (;;) {
    let info: Dockerode.ContainerInspectInfo;
    try {
      info = await docker.getContainer(id).inspect();
    } catch (err) {
      // An engine that stopped answering (or an aborted call) is not a vanished container: say which.
      if (isDockerCallError(err)) return { ok: false, status: err.reason, reason: err.message };
      return { ok: false, status: 'gone', reason: `the container disappeared: ${dockerErrorMessage(err)}` };
    }
    const state = info.State;
    // A container that dies and is restarted by its restart policy can look "running" at every poll:
    // a restart since we started watching is a failure, whatever the state right now.
    const restarts = info.RestartCount ?? 0;
    firstRestarts ??= restarts;
    if (state.ExitCode) lastExit = state.ExitCode;
    if (restarts > firstRestarts) {
      if (!lastExit) lastExit = (await lastDieExitCode(docker, id, watchStart)) ?? 0;
      return {
        ok: false,
        status: 'exited',
        reason: `the container exited${lastExit ? ` with code ${lastExit}` : ''} and was restarted by Docker (${restarts - firstRestarts}×)`,
      };
    }
    const health = (state as { Health?: { Status?: string } }).Health?.Status;
    const status = health ?? (state.Running ? 'running' : state.Status);
    if (status !== last) {
      last = status;
      opts.onStatus?.(status, deadline);
    }
    if (!state.Running || state.Restarting) {
      if (state.Status === 'exited' || state.Status === 'dead' || state.Restarting) {
        return {
          ok: false,
          status: 'exited',
          reason: `the container exited with code ${state.ExitCode}${state.Error ? ` (${state.Error})` : ''}`,
        };
      }
    }
    if (health === 'healthy') return { ok: true, status: 'healthy' };
    if (health === 'unhealthy') {
      return { ok: false, status: 'unhealthy', reason: 'the healthcheck failed (status unhealthy)' };
    }
    if (!health && state.Running) {
      // No healthcheck: running for a short settle time counts as started.
      if (!runningSince) runningSince = Date.now();
      if (Date.now() - runningSince >= 500) return { ok: true, status: 'running' };
    }
    if (Date.now() >= deadline) {
      return {
        ok: false,
        status: 'timeout',
        reason: `not healthy within ${Math.round(opts.timeoutMs / 1000)} s (last status: ${status})`,
      };
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** The exit code of the container's latest `die` event since `sinceSec` (Docker keeps no earlier exit codes). */
async function lastDieExitCode(docker: Dockerode, id: string, sinceSec: number): Promise<number | undefined> {
  try {
    const stream = (await docker.getEvents({
      since: sinceSec,
      until: Math.ceil(Date.now() / 1000),
      filters: { container: [id], event: ['die'] },
    })) as unknown as NodeJS.ReadableStream;
    let text = '';
    for await (const chunk of stream) text += chunk.toString();
    const codes = text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => Number((JSON.parse(l) as { Actor?: { Attributes?: { exitCode?: string } } }).Actor?.Attributes?.exitCode));
    return codes.filter((c) => Number.isFinite(c)).at(-1);
  } catch {
    return undefined;
  }
}
