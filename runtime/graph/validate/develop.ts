/**
 * Validation of a service's `develop` settings: the host paths `waffle dev` watches for it and what it
 * does when one changes. They never reach the container's configuration (nor its config hash).
 */
import path from 'node:path';
import type { DevelopWatchSpec } from '../../model.ts';
import { isObject, show } from '../parse.ts';
import { unknownKeys, type Report } from '../report.ts';

export const DEVELOP_KEYS = ['watch'];
export const DEVELOP_WATCH_KEYS = ['path', 'action', 'target', 'ignore'];
const ACTIONS = ['sync', 'restart', 'sync+restart'];

/** `develop` → its watch entries with absolute host paths; invalid entries are reported and left out. */
export function checkDevelop(value: unknown, ctx: { root: string }, report: Report): DevelopWatchSpec[] {
  if (value === undefined) return [];
  if (!isObject(value)) {
    report('develop', `develop must be an object, got ${show(value)}`, "for example develop: { watch: [{ path: './public', action: 'sync', target: '/www' }] }");
    return [];
  }
  unknownKeys(value, DEVELOP_KEYS, 'develop.', report, 'develop');
  const watch = value.watch;
  if (!Array.isArray(watch)) {
    report('develop.watch', `develop.watch must be a list, got ${show(watch)}`, "for example watch: [{ path: './app.conf', action: 'restart' }]");
    return [];
  }
  const out: DevelopWatchSpec[] = [];
  watch.forEach((w, i) => {
    const at = `develop.watch[${i}]`;
    if (!isObject(w)) return report(at, `a watch entry must be an object, got ${show(w)}`, "write { path: './public', action: 'sync', target: '/www' }");
    unknownKeys(w, DEVELOP_WATCH_KEYS, `${at}.`, report, 'a watch entry');
    let ok = true;
    if (typeof w.path !== 'string' || w.path.trim() === '') {
      report(`${at}.path`, `path must be a host path (a non-empty string), got ${show(w.path)}`, "for example path: './public' (relative to the repository root)");
      ok = false;
    }
    if (typeof w.action !== 'string' || !ACTIONS.includes(w.action)) {
      report(`${at}.action`, `action must be 'sync', 'restart' or 'sync+restart', got ${show(w.action)}`, "action: 'sync' copies changed files into the container; 'restart' restarts it");
      ok = false;
    }
    const syncs = w.action === 'sync' || w.action === 'sync+restart';
    if (w.target !== undefined && (typeof w.target !== 'string' || !w.target.startsWith('/'))) {
      report(`${at}.target`, `target must be an absolute path in the container, got ${show(w.target)}`, "for example target: '/www'");
      ok = false;
    } else if (syncs && w.target === undefined) {
      report(`${at}.target`, `action '${String(w.action)}' needs a target: where the files go in the container`, "add target: '/path/in/the/container'");
      ok = false;
    }
    const ignore = w.ignore ?? [];
    if (!Array.isArray(ignore) || ignore.some((x) => typeof x !== 'string' || x === '')) {
      report(`${at}.ignore`, `ignore must be a list of file or folder names, got ${show(w.ignore)}`, "for example ignore: ['node_modules']");
      ok = false;
    }
    if (!ok) return;
    out.push({
      path: path.resolve(ctx.root, w.path as string),
      action: w.action as DevelopWatchSpec['action'],
      ...(w.target !== undefined ? { target: path.posix.normalize(w.target as string) } : {}),
      ignore: [...(ignore as string[])],
    });
  });
  return out;
}
