/**
 * A one-node swarm on the test engine, shared by test files that run at the same time.
 *
 * `joinTestSwarm()` puts the engine into swarm mode when it is not in a swarm yet and records that a
 * test did it; `leave()` takes the engine out of swarm mode again only when the last process that
 * joined is done and a test (not the operator) made the swarm. The users are files in a directory of
 * the machine's temp dir, one per process; every join and leave holds a lock (an atomic `mkdir`). A
 * swarm that was there before any test is never left.
 *
 * Leaving a swarm breaks name resolution inside the engine's running containers on ordinary bridge
 * networks (dockerd 20.10: every lookup fails from then on), so no test may leave while tests of the
 * single engine still run. `npm test` (scripts/test.sh) therefore holds the swarm for the whole run
 * (`hold <pid>` before the tests, `release <pid>` after them, run as a script): the files' own
 * `leave()` then never leaves mid-run, and the swarm is left once, when nothing runs any more.
 * The swarm listens on 127.0.0.1 only: a test never opens a manager port to the network.
 *
 * `removeSwarmProject()` removes what a test project left, independently of the code under test.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type Dockerode from 'dockerode';
import { dockerClient } from './helpers.ts';

const DIR = path.join(os.tmpdir(), 'waffle-test-swarm');
const LOCK = path.join(DIR, 'lock');
/** Present while the swarm is one a test made. */
const MADE_BY_TEST = path.join(DIR, 'made-by-test');
const user = (pid: number) => path.join(DIR, `user-${pid}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function withLock<T>(fn: () => Promise<T> | T): Promise<T> {
  fs.mkdirSync(DIR, { recursive: true });
  for (let i = 0; ; i++) {
    try {
      fs.mkdirSync(LOCK);
      fs.writeFileSync(path.join(LOCK, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // A lock whose holder died (a test killed mid-join) is taken over.
      const holder = Number(fs.readFileSync(path.join(LOCK, 'pid'), 'utf8').trim() || 0);
      if ((holder && !alive(holder)) || i > 1200) fs.rmSync(LOCK, { recursive: true, force: true });
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(LOCK, { recursive: true, force: true });
  }
}

function otherUsers(self: number): number[] {
  return fs
    .readdirSync(DIR)
    .filter((f) => f.startsWith('user-'))
    .map((f) => Number(f.slice(5)))
    .filter((pid) => pid !== self && alive(pid));
}

export interface TestSwarm {
  /** Takes the engine out of swarm mode when this is the last test process using a swarm a test made. */
  leave(): Promise<void>;
}

const dockerCli = (host: string, args: string[]) => spawnSync('docker', args, { env: { ...process.env, DOCKER_HOST: host }, encoding: 'utf8' });

/** Puts the engine at `host` into a one-node swarm (on 127.0.0.1) unless it is in one already; `holder` is the process using it. */
export async function joinTestSwarm(docker: Dockerode, host: string, holder = process.pid): Promise<TestSwarm> {
  await withLock(async () => {
    fs.writeFileSync(user(holder), '');
    const info = (await docker.info()) as { Swarm?: { LocalNodeState?: string } };
    if (info.Swarm?.LocalNodeState === 'inactive') {
      const r = dockerCli(host, ['swarm', 'init', '--advertise-addr', '127.0.0.1', '--listen-addr', '127.0.0.1:2377']);
      if (r.status !== 0) throw new Error(`docker swarm init: ${r.stderr}`);
      fs.writeFileSync(MADE_BY_TEST, '');
    }
  });
  let left = false;
  return {
    leave: async () => {
      if (left) return;
      left = true;
      await releaseTestSwarm(host, holder);
    },
  };
}

/** `holder` is done with the swarm: the swarm is left when a test made it and no other holder is alive. */
export async function releaseTestSwarm(host: string, holder: number): Promise<void> {
  await withLock(() => {
    fs.rmSync(user(holder), { force: true });
    if (otherUsers(holder).length > 0 || !fs.existsSync(MADE_BY_TEST)) return;
    // Docker keeps its `docker_gwbridge` (no label of ours); the next `swarm init` uses it again.
    dockerCli(host, ['swarm', 'leave', '--force']);
    fs.rmSync(MADE_BY_TEST, { force: true });
  });
}

/** Removes what a test project left on the swarm: services, then (once their tasks are gone) networks, secrets and volumes. */
export async function removeSwarmProject(docker: Dockerode, project: string): Promise<void> {
  const filters = { label: [`dev.wafflemaker.project=${project}`] };
  for (const s of await docker.listServices({ filters })) await docker.getService(s.ID!).remove().catch(() => {});
  for (let i = 0; i < 60; i++) {
    const left = await docker.listContainers({ all: true, filters: { label: [`dev.wafflemaker.task-of`] } });
    if (!left.some((c) => c.Labels['dev.wafflemaker.task-of']?.startsWith(`${project}/`))) break;
    await sleep(500);
  }
  for (const n of await docker.listNetworks({ filters })) await docker.getNetwork(n.Id).remove().catch(() => {});
  for (const s of (await docker.listSecrets({ filters })) as unknown as Array<{ ID: string }>) await docker.getSecret(s.ID).remove().catch(() => {});
  for (const v of (await docker.listVolumes({ filters })).Volumes ?? []) await docker.getVolume(v.Name).remove().catch(() => {});
}

/**
 * As a script: `hold <pid>` joins on behalf of process <pid> (the test runner's shell), `release <pid>`
 * takes its user away and leaves when it was the last. DOCKER_HOST names the engine.
 */
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const [verb, pidText] = process.argv.slice(2);
  const pid = Number(pidText);
  const host = process.env.DOCKER_HOST;
  if ((verb !== 'hold' && verb !== 'release') || !Number.isInteger(pid) || !host) {
    console.error('usage: DOCKER_HOST=… tsx test/swarm-support.ts hold|release <pid>');
    process.exit(2);
  }
  if (verb === 'release') await releaseTestSwarm(host, pid);
  else await joinTestSwarm(await dockerClient(), host, pid);
}
