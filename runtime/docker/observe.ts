/**
 * Observed state: what Docker has for a project, found by our project label only.
 *
 * List-based, as docker/compose decides: one call each for containers, networks, volumes and images,
 * whatever the number of services. Everything the plan needs comes from the container list entry:
 * - name (`Names`), state (`State`), ports, creation time, image ID (`ImageID`), our labels;
 * - health from the `Status` text: `Up 3 seconds (healthy)`, `(unhealthy)`, `(health: starting)`;
 * - the image reference from `LABEL.image` (the list shows an image ID instead once the tag has moved);
 * - restart policy and limits, which the list does not show, from `LABEL.inPlace` (written at create).
 *
 * Docker cannot change a label after create, so after an in-place `container.update` the label still
 * holds the create-time values. With `desired` given, a container whose recorded values disagree with
 * the desired ones is inspected (only then does the answer matter: it decides an update), and what the
 * inspect found is remembered per container ID in `stateDir` (`in-place.json`), so the plans after an
 * update inspect that container once, not forever. A container without the label (created by an older
 * version or by hand with our labels) is inspected too.
 *
 * Not seen without an inspect: a hand-made `docker update` of the restart policy or limits of a
 * container whose recorded values match the desired ones (the plan believes our record). Everything else
 * done by hand is seen from the list: stopped, removed, restarting or dead containers, renamed ones,
 * health changes, a container started from another image.
 */
import fs from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { isKept, LABEL, parseInPlaceLabel, type InPlaceValues } from '../labels.ts';
import type { ObservedContainer, ObservedNetwork, ObservedState, ObservedVolume, RestartSpec, ServiceGraph, ServiceSpec } from '../model.ts';
import { dockerStatus } from './client.ts';
import { listLocalImages, refreshImages, type PullProgress } from './image.ts';

export function projectFilter(project: string): { label: string[] } {
  return { label: [`${LABEL.project}=${project}`] };
}

/** `missing`: use the local image, pull only when absent. `always`: pull before planning, so a re-pushed tag is seen. */
export type PullPolicy = 'missing' | 'always';

export interface ObserveOptions {
  /**
   * The desired graph. With it, a container is inspected only when its recorded restart policy or limits
   * disagree with the desired ones, and the images of services with pull policy `always` are pulled
   * before the image list is read. Without it (status, stale-plan check) nothing is inspected or pulled
   * except containers whose labels cannot answer at all.
   */
  desired?: ServiceGraph;
  /** Overrides every service's pull policy (the CLI's `--pull`). */
  pull?: PullPolicy;
  /** The project's state directory: where in-place values found by inspect are remembered (`in-place.json`). */
  stateDir?: string;
  /** Progress of the pulls that pull policy `always` makes. */
  onPullProgress?: (image: string, p: PullProgress) => void;
}

/** A service's pull policy: the override, else the service's own (`pull`, default `missing`). */
export function pullPolicyOf(svc: ServiceSpec, override?: PullPolicy): PullPolicy {
  if (override) return override;
  return (svc as { pull?: string }).pull === 'always' ? 'always' : 'missing';
}

/** Images that must be pulled before planning: those of services whose pull policy is `always`. */
export function imagesToRefresh(graph: ServiceGraph, override?: PullPolicy): string[] {
  const out = new Set<string>();
  for (const svc of Object.values(graph.services)) if (pullPolicyOf(svc, override) === 'always') out.add(svc.image);
  return [...out].sort();
}

/** `a.localeCompare(b)` (the same order), with one collator for a whole sort instead of one per comparison. */
const localeCmp = new Intl.Collator().compare;

const RESTART_NAMES = new Set(['no', 'always', 'unless-stopped', 'on-failure']);
const RECORD_FILE = 'in-place.json';

export async function observe(docker: Dockerode, project: string, opts: ObserveOptions = {}): Promise<ObservedState> {
  const filters = projectFilter(project);
  const refresh = opts.desired ? imagesToRefresh(opts.desired, opts.pull) : [];
  const [list, networks, volumes, images] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listNetworks({ filters }),
    docker.listVolumes({ filters }),
    // Pulls first, so the image list shows what the tags name after them.
    (refresh.length > 0 ? refreshImages(docker, refresh, opts.onPullProgress) : Promise.resolve()).then(() => listLocalImages(docker)),
  ]);

  const record = readRecord(opts.stateDir);
  const listed = new Set(list.map((c) => c.Id));
  let recordChanged = false;
  for (const id of Object.keys(record)) {
    if (listed.has(id)) continue;
    delete record[id];
    recordChanged = true;
  }

  const containers = await Promise.all(
    list.map(async (c): Promise<ObservedContainer | undefined> => {
      const base = fromList(c);
      const labelled = parseInPlaceLabel(base.labels[LABEL.inPlace]);
      const known = record[c.Id] ?? labelled;
      const svc = opts.desired?.services[base.service];
      // A container kept for rollback is not compared with the desired values (its restart policy is set to
      // `no` while kept; what it had before, from the label or the record, is what a rollback restores).
      if (known && (isKept(base, project) || !(svc && disagrees(known, svc)))) return { ...base, ...known };
      let info: Dockerode.ContainerInspectInfo;
      try {
        info = await docker.getContainer(c.Id).inspect();
      } catch (err) {
        if (dockerStatus(err) === 404) return undefined; // removed between list and inspect
        throw err;
      }
      const actual = inPlaceOf(info);
      if (labelled && sameInPlace(actual, labelled)) {
        if (record[c.Id]) {
          delete record[c.Id];
          recordChanged = true;
        }
      } else if (!record[c.Id] || !sameInPlace(record[c.Id]!, actual)) {
        record[c.Id] = actual;
        recordChanged = true;
      }
      return { ...base, ...actual };
    }),
  );
  if (recordChanged) writeRecord(opts.stateDir, record);

  const observedContainers = containers.filter((c): c is ObservedContainer => c !== undefined);
  observedContainers.sort((a, b) => localeCmp(a.service, b.service) || localeCmp(a.name, b.name));

  const observedNetworks: ObservedNetwork[] = networks
    .map((n) => ({ id: n.Id, name: n.Name, labels: n.Labels ?? {} }))
    .sort((a, b) => localeCmp(a.name, b.name));
  const observedVolumes: ObservedVolume[] = (volumes.Volumes ?? [])
    .map((v) => ({ name: v.Name, labels: (v.Labels as Record<string, string> | null) ?? {} }))
    .sort((a, b) => localeCmp(a.name, b.name));

  return { project, containers: observedContainers, networks: observedNetworks, volumes: observedVolumes, images: images.refs, imageIds: images.ids };
}

/** Health from the list entry's `Status` text (Docker appends it only for containers with a healthcheck). */
export function healthFromStatus(status: string | undefined): string {
  const m = /\((healthy|unhealthy|health: starting)\)\s*$/.exec(status ?? '');
  if (!m) return 'none';
  return m[1] === 'health: starting' ? 'starting' : m[1]!;
}

function fromList(c: Dockerode.ContainerInfo): Omit<ObservedContainer, 'restart' | 'resources'> {
  const labels = c.Labels ?? {};
  const generation = Number(labels[LABEL.generation] ?? 0);
  return {
    id: c.Id,
    name: (c.Names?.[0] ?? '').replace(/^\//, ''),
    service: labels[LABEL.service] ?? '',
    configHash: labels[LABEL.configHash] ?? '',
    commit: labels[LABEL.commit] ?? '',
    generation: Number.isFinite(generation) ? generation : 0,
    image: labels[LABEL.image] ?? c.Image,
    imageId: c.ImageID,
    state: c.State,
    health: healthFromStatus(c.Status),
    labels,
    createdAt: c.Created * 1000,
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

function inPlaceOf(info: Dockerode.ContainerInspectInfo): InPlaceValues {
  const rp = info.HostConfig?.RestartPolicy;
  const name = rp?.Name && RESTART_NAMES.has(rp.Name) ? (rp.Name as RestartSpec['name']) : 'no';
  return {
    restart: { name, maximumRetryCount: rp?.MaximumRetryCount ?? 0 },
    resources: { memory: info.HostConfig?.Memory ?? 0, nanoCpus: info.HostConfig?.NanoCpus ?? 0 },
  };
}

function sameInPlace(a: InPlaceValues, b: InPlaceValues): boolean {
  return (
    a.restart.name === b.restart.name &&
    a.restart.maximumRetryCount === b.restart.maximumRetryCount &&
    a.resources.memory === b.resources.memory &&
    a.resources.nanoCpus === b.resources.nanoCpus
  );
}

/** Whether the recorded values would make the plan update (or replace) the container. */
function disagrees(known: InPlaceValues, svc: ServiceSpec): boolean {
  return !sameInPlace(known, { restart: svc.restart, resources: svc.resources });
}

type InPlaceRecord = Record<string, InPlaceValues>;

function readRecord(dir: string | undefined): InPlaceRecord {
  if (!dir) return {};
  try {
    const data = JSON.parse(fs.readFileSync(path.join(dir, RECORD_FILE), 'utf8')) as unknown;
    if (!data || typeof data !== 'object' || Array.isArray(data)) return {};
    const out: InPlaceRecord = {};
    for (const [id, v] of Object.entries(data as Record<string, unknown>)) {
      const r = v as InPlaceValues;
      if (r && RESTART_NAMES.has(r.restart?.name) && Number.isFinite(r.resources?.memory) && Number.isFinite(r.resources?.nanoCpus)) out[id] = r;
    }
    return out;
  } catch {
    // Absent or unreadable: containers whose labels disagree with the desired values are inspected.
    return {};
  }
}

/** Best effort, atomic (temporary file + rename): a lost record only costs an inspect on the next plan. */
function writeRecord(dir: string | undefined, record: InPlaceRecord): void {
  if (!dir) return;
  const file = path.join(dir, RECORD_FILE);
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`;
  try {
    fs.writeFileSync(tmp, JSON.stringify(record) + '\n', { mode: 0o600 });
    fs.renameSync(tmp, file);
  } catch {
    fs.rmSync(tmp, { force: true });
  }
}
