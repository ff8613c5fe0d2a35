/** Docker labels and names Wafflemaker puts on what it creates. One place, used by plan and observe. */
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
} as const;

/** Prefix reserved for our labels: user labels may not use it. */
export const RESERVED_LABEL_PREFIX = 'dev.wafflemaker.';

export const names = {
  container: (project: string, service: string) => `${project}-${service}`,
  tempContainer: (project: string, service: string, generation: number) => `${project}-${service}-next-${generation}`,
  defaultNetwork: (project: string) => `${project}_default`,
  linkNetwork: (project: string, a: string, b: string) => `${project}_link_${a < b ? `${a}_${b}` : `${b}_${a}`}`,
  volume: (project: string, name: string) => `${project}_${name}`,
};
