/** Validation of what runs in the container and as whom: `command`, `entrypoint`, `user`, `workdir`. */
import { show } from '../parse.ts';
import type { Report } from '../report.ts';

/** `command` or `entrypoint`: a string runs through `/bin/sh -c`; a list is used as is. */
export function checkCommand(key: 'command' | 'entrypoint', v: unknown, report: Report): string[] | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string') {
    if (v.trim() === '') report(key, `${key} is empty`, `remove \`${key}\` to keep the image's default`);
    return ['/bin/sh', '-c', v];
  }
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')) return [...v];
  report(key, `${key} must be a string or a non-empty list of strings, got ${show(v)}`, `for example ${key}: ['node', 'server.js']`);
  return undefined;
}

/** `user`: a non-empty string (`'1000:1000'`, `'nobody'`). */
export function checkUser(v: unknown, report: Report): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.trim() === '') {
    report('user', `user ${show(v)} must be a non-empty string`, "for example user: '1000:1000'");
    return undefined;
  }
  return v;
}

/** `workdir`: an absolute path inside the container. */
export function checkWorkdir(v: unknown, report: Report): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !v.startsWith('/')) {
    report('workdir', `workdir ${show(v)} must be an absolute path`, "for example workdir: '/app'");
    return undefined;
  }
  return v;
}
