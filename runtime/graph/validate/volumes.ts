/** Validation of a service's `volumes`: named volumes owned by the project and bind mounts of host paths. */
import path from 'node:path';
import { names } from '../../labels.ts';
import type { Mount } from '../../model.ts';
import { isObject, show } from '../parse.ts';
import { has, unknownKeys, type Report } from '../report.ts';

export const VOLUME_KEYS = ['name', 'bind', 'target', 'readOnly'];
const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export interface VolumeContext {
  /** Prefixes the Docker name of a named volume. */
  project: string;
  /** Repository root: relative bind sources are resolved from it. */
  root: string;
}

/**
 * `volumes` → mounts (targets normalised, each container path mounted once) and the short names of the
 * named volumes used. Invalid entries are reported and left out.
 */
export function checkVolumes(value: unknown, ctx: VolumeContext, report: Report): { mounts: Mount[]; volumes: string[] } {
  const mounts: Mount[] = [];
  const volumes: string[] = [];
  if (value === undefined) return { mounts, volumes };
  if (!Array.isArray(value)) {
    report('volumes', `volumes must be a list, got ${show(value)}`, "for example volumes: [{ name: 'data', target: '/data' }]");
    return { mounts, volumes };
  }
  const targets = new Map<string, number>();
  value.forEach((v, i) => {
    const w = `volumes[${i}]`;
    if (!isObject(v)) {
      return report(w, `a volume must be an object, got ${show(v)}`, "write { name: 'data', target: '/data' } or { bind: './conf', target: '/etc/app' }");
    }
    unknownKeys(v, VOLUME_KEYS, `${w}.`, report, 'a volume');
    const readOnly = v.readOnly === undefined ? false : v.readOnly;
    if (typeof readOnly !== 'boolean') report(`${w}.readOnly`, `readOnly must be true or false, got ${show(readOnly)}`, 'readOnly: true');
    let target: string | undefined;
    if (typeof v.target !== 'string' || !v.target.startsWith('/')) {
      report(`${w}.target`, `target ${show(v.target)} must be an absolute path inside the container`, "for example target: '/data'");
    } else {
      target = path.posix.normalize(v.target);
      if (target.length > 1 && target.endsWith('/')) target = target.slice(0, -1);
      const prev = targets.get(target);
      if (prev !== undefined) {
        report(`${w}.target`, `target ${show(target)} is already mounted by volumes[${prev}]`, 'mount each container path once');
      } else targets.set(target, i);
    }
    const hasName = has(v, 'name');
    const hasBind = has(v, 'bind');
    if (hasName === hasBind) {
      return report(w, hasName ? 'a volume has both `name` and `bind`' : 'a volume needs `name` (named volume) or `bind` (host path)', 'keep exactly one of `name` and `bind`');
    }
    if (hasName) {
      if (typeof v.name !== 'string' || !VOLUME_NAME_RE.test(v.name)) {
        return report(`${w}.name`, `volume name ${show(v.name)} is not valid`, 'use letters, digits, `_`, `.` and `-`, starting with a letter or digit');
      }
      if (target !== undefined && typeof readOnly === 'boolean') {
        volumes.push(v.name);
        mounts.push({ type: 'volume', name: v.name, source: names.volume(ctx.project, v.name), target, readOnly });
      }
    } else {
      if (typeof v.bind !== 'string' || v.bind.length === 0) {
        return report(`${w}.bind`, `bind ${show(v.bind)} must be a host path`, "for example bind: './config' (relative to the repository root)");
      }
      if (target !== undefined && typeof readOnly === 'boolean') {
        mounts.push({ type: 'bind', source: path.resolve(ctx.root, v.bind), target, readOnly });
      }
    }
  });
  return { mounts, volumes };
}
