/**
 * Which `develop.watch` actions a set of changed host files calls for: pure, from the graph and the
 * paths. A file under a sync entry's `path` is copied to the same place below its `target`; a restart
 * entry restarts its service once however many of its files changed. A deleted file is not removed
 * from the container (as with Compose's sync); its next redeploy starts clean.
 */
import path from 'node:path';
import type { DevelopWatchSpec, ServiceGraph } from '../model.ts';

export interface DevelopAction {
  service: string;
  /** Copy these files (host → container, absolute paths), then restart if `restart`. */
  sync: Array<{ host: string; container: string }>;
  restart: boolean;
}

/** True when `file` is `dir` itself or below it. */
function within(file: string, dir: string): boolean {
  const rel = path.relative(dir, file);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function ignored(file: string, w: DevelopWatchSpec): boolean {
  const rel = path.relative(w.path, file);
  return rel !== '' && rel.split(path.sep).some((part) => w.ignore.includes(part));
}

/** The actions for `changed` (absolute host paths of files that were added or changed), by service. */
export function developActions(graph: ServiceGraph, changed: string[], exists: (file: string) => boolean): DevelopAction[] {
  const out: DevelopAction[] = [];
  for (const svc of Object.values(graph.services)) {
    const sync = new Map<string, string>();
    let restart = false;
    for (const w of svc.develop ?? []) {
      for (const file of changed) {
        if (!within(file, w.path) || ignored(file, w)) continue;
        if (w.action === 'restart' || w.action === 'sync+restart') restart = true;
        if ((w.action === 'sync' || w.action === 'sync+restart') && w.target && exists(file)) {
          const rel = path.relative(w.path, file).split(path.sep).join('/');
          sync.set(file, rel === '' ? w.target : path.posix.join(w.target, rel));
        }
      }
    }
    if (sync.size > 0 || restart) out.push({ service: svc.name, sync: [...sync].map(([host, container]) => ({ host, container })), restart });
  }
  return out;
}

/** Every host path some service's `develop.watch` names (absolute, sorted, each once). */
export function developPaths(graph: ServiceGraph): string[] {
  return [...new Set(Object.values(graph.services).flatMap((s) => (s.develop ?? []).map((w) => w.path)))].sort();
}
