/** Messages between the loader (parent) and the evaluation child, over Node's IPC channel. */
import type { LoadedService, Problem } from '../model.ts';

/**
 * A bundle handed to the child as text (it is never written to disk; the child reads no files of
 * ours). `url` is the name its stack frames carry (`file://<root>/.waffle/eval/<tag>.mjs`, a path that
 * does not exist); `map` is esbuild's source map with absolute `file://` sources, which the child
 * applies to stack traces itself (node does not source-map `data:` modules).
 */
export interface BundleText {
  url: string;
  code: string;
  map: SourceMapPayload;
}

export interface SourceMapPayload {
  version: number;
  sources: string[];
  names: string[];
  mappings: string;
  file?: string;
  sourceRoot?: string;
}

export type ToChild =
  | { type: 'config'; root: string; bundle: BundleText; configFile: string }
  | {
      type: 'services';
      root: string;
      bundle: BundleText;
      files: string[];
      /** Each file's service name when its definition sets none (see `defaultServiceName`). */
      names?: string[];
    };

/** A value thrown while evaluating user code, with its (source-mapped) stack. */
export interface ThrownInfo {
  /** File (relative to the root) that was being evaluated. */
  file: string;
  message: string;
  stack?: string;
  /** True when the user's code called process.exit/abort/kill. */
  exitCall?: boolean;
  /** Node's error code (`ERR_ACCESS_DENIED`, `EACCES`, `ENETUNREACH`…), when there is one. */
  code?: string;
  /** For ERR_ACCESS_DENIED: the permission refused (`FileSystemWrite`, `ChildProcess`…) and its resource. */
  permission?: string;
  resource?: string;
}

export type FromChild =
  | { type: 'ready' }
  | { type: 'mark'; file: string }
  | { type: 'thrown'; error: ThrownInfo }
  | { type: 'config-result'; config?: Record<string, unknown>; problems: Problem[] }
  | { type: 'services-result'; services: LoadedService[]; problems: Problem[] };
