/** Docker labels and names Wafflemaker puts on what it creates. One place, used by plan and observe. */
import type { ResourcesSpec, RestartSpec } from './model.ts';

export const LABEL = {
  project: 'dev.wafflemaker.project',
  service: 'dev.wafflemaker.service',
  configHash: 'dev.wafflemaker.config-hash',
  commit: 'dev.wafflemaker.commit',
  generation: 'dev.wafflemaker.generation',
  /** On networks: `default` or `link`. On volumes: `volume`. */
  role: 'dev.wafflemaker.role',
  /** Where the service is defined (`services/api.ts:3:16`), for status and failure reports. */
  definedAt: 'dev.wafflemaker.defined-at',
  /**
   * Short hashes of each part of the config hash (`image=1a2b3c4d,env=…,env.FOO=…`), so the planner can
   * name what changed. Hashes only: never a value.
   */
  configParts: 'dev.wafflemaker.config-parts',
  /**
   * Restart policy and limits as set at create (`restart=on-failure:3,memory=268435456,nanocpus=500000000`),
   * so observation reads them from the container list instead of inspecting every container.
   */
  inPlace: 'dev.wafflemaker.in-place',
  /** The image reference the container was created from (the list shows an image ID once the tag moves). */
  image: 'dev.wafflemaker.image',
} as const;

/** Prefix reserved for our labels: user labels may not use it. */
export const RESERVED_LABEL_PREFIX = 'dev.wafflemaker.';

export const names = {
  container: (project: string, service: string) => `${project}-${service}`,
  tempContainer: (project: string, service: string, generation: number) => `${project}-${service}-next-${generation}`,
  /** A container kept stopped after a replace, for `waffle rollback`: its generation in its name. */
  keptContainer: (project: string, service: string, generation: number) => `${project}-${service}-kept-${generation}`,
  defaultNetwork: (project: string) => `${project}_default`,
  linkNetwork: (project: string, a: string, b: string) => `${project}_link_${a < b ? `${a}_${b}` : `${b}_${a}`}`,
  volume: (project: string, name: string) => `${project}_${name}`,
};

/** Restart policy and limits that change in place, as one label value (see `LABEL.inPlace`). */
export interface InPlaceValues {
  restart: RestartSpec;
  resources: ResourcesSpec;
}

const RESTART_NAMES = new Set<string>(['no', 'always', 'unless-stopped', 'on-failure']);

export function formatInPlaceLabel(v: InPlaceValues): string {
  return `restart=${v.restart.name}:${v.restart.maximumRetryCount},memory=${v.resources.memory},nanocpus=${v.resources.nanoCpus}`;
}

/** Parses {@link formatInPlaceLabel}; `undefined` when absent or unreadable (then only an inspect can tell). */
export function parseInPlaceLabel(label: string | undefined): InPlaceValues | undefined {
  if (!label) return undefined;
  const m = /^restart=([a-z-]+):(\d+),memory=(\d+),nanocpus=(\d+)$/.exec(label);
  if (!m || !RESTART_NAMES.has(m[1]!)) return undefined;
  return {
    restart: { name: m[1] as RestartSpec['name'], maximumRetryCount: Number(m[2]) },
    resources: { memory: Number(m[3]), nanoCpus: Number(m[4]) },
  };
}

/**
 * Whether a container is one kept for rollback (not the service's current one). Docker cannot change a
 * label after create, so a kept container is told by its name: `<project>-<service>-kept-<generation>`,
 * made of its own service and generation labels (a service named `api-kept-3` cannot be mistaken for it).
 */
export function isKept(c: { name: string; service: string; generation: number }, project: string): boolean {
  return c.service !== '' && c.generation > 0 && c.name === names.keptContainer(project, c.service, c.generation);
}
