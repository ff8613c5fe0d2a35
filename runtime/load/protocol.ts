/** Messages between the loader (parent) and the evaluation child, over Node's IPC channel. */
import type { LoadedService, Problem } from '../model.ts';

export type ToChild =
  | { type: 'config'; root: string; bundle: string; configFile: string }
  | { type: 'services'; bundle: string; files: string[] };

/** A value thrown while evaluating user code, with its (source-mapped) stack. */
export interface ThrownInfo {
  /** File (relative to the root) that was being evaluated. */
  file: string;
  message: string;
  stack?: string;
  /** True when the user's code called process.exit/abort/kill. */
  exitCall?: boolean;
}

export type FromChild =
  | { type: 'ready' }
  | { type: 'mark'; file: string }
  | { type: 'thrown'; error: ThrownInfo }
  | { type: 'config-result'; config?: Record<string, unknown>; problems: Problem[] }
  | { type: 'services-result'; services: LoadedService[]; problems: Problem[] };
