/**
 * Validation of a service's healthcheck (`http`, `tcp` or `command`, plus timing) into Docker's form.
 * The check runs inside the container, so `http` and `tcp` become shell commands that need busybox-like
 * tools (`wget`/`curl`, `nc`) in the image.
 */
import type { HealthcheckSpec } from '../../model.ts';
import { isObject, shQuote, show } from '../parse.ts';
import { durationField, has, isPort, unknownKeys, type Report } from '../report.ts';

export const TIMING_KEYS = ['interval', 'timeout', 'retries', 'startPeriod'];
export const HEALTH_KEYS = ['http', 'port', 'tcp', 'command', ...TIMING_KEYS];
export const DEFAULT_TIMING = { intervalNs: 5e9, timeoutNs: 3e9, retries: 3, startPeriodNs: 0 };
export type Timing = typeof DEFAULT_TIMING;

/** The timing fields of `obj` over `base` (the project's default timing). */
export function parseTiming(obj: Record<string, unknown>, where: string, report: Report, base: Timing): Timing {
  const t = { ...base };
  const positive = (key: 'interval' | 'timeout', field: 'intervalNs' | 'timeoutNs') => {
    if (!has(obj, key)) return;
    const ns = durationField(obj[key], `${where}.${key}`, report);
    if (ns === undefined) return;
    if (ns < 1e6) report(`${where}.${key}`, `${key} must be at least 1ms`, `for example ${key}: '5s'`);
    else t[field] = ns;
  };
  positive('interval', 'intervalNs');
  positive('timeout', 'timeoutNs');
  if (has(obj, 'startPeriod')) {
    const ns = durationField(obj.startPeriod, `${where}.startPeriod`, report);
    if (ns !== undefined) t.startPeriodNs = ns;
  }
  if (has(obj, 'retries')) {
    const r = obj.retries;
    if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) {
      report(`${where}.retries`, `retries ${show(r)} must be a whole number ≥ 1`, 'for example retries: 3');
    } else t.retries = r;
  }
  return t;
}

export interface HealthcheckContext {
  /** The service's valid `port`, the default port of an `http` check. */
  port: number | undefined;
  /** True when the service wrote a `port` (valid or not): an invalid one is reported once, by the port check. */
  portWritten: boolean;
  /** The project's default timing. */
  timing: Timing;
}

/** `healthcheck` → Docker's healthcheck, or undefined (absent, or reported). */
export function checkHealthcheck(h: unknown, ctx: HealthcheckContext, report: Report): HealthcheckSpec | undefined {
  if (h === undefined) return undefined;
  if (!isObject(h)) {
    report('healthcheck', `healthcheck must be an object, got ${show(h)}`, "for example healthcheck: { http: '/health' }");
    return undefined;
  }
  unknownKeys(h, HEALTH_KEYS, 'healthcheck.', report, 'the healthcheck');
  const kinds = (['http', 'tcp', 'command'] as const).filter((k) => has(h, k));
  const timing = parseTiming(h, 'healthcheck', report, ctx.timing);
  let test: string[] | undefined;
  let describe = '';
  if (kinds.length !== 1) {
    report(
      'healthcheck',
      kinds.length === 0 ? 'healthcheck needs one of `http`, `tcp` or `command`' : `healthcheck has ${kinds.map((k) => `\`${k}\``).join(' and ')}; only one is allowed`,
      "write exactly one, e.g. { http: '/health' }, { tcp: 5432 } or { command: 'pg_isready' }",
    );
  } else if (kinds[0] === 'http') {
    const p = h.http;
    let hp: number | undefined;
    if (h.port !== undefined) {
      if (isPort(h.port)) hp = h.port;
      else report('healthcheck.port', `port ${show(h.port)} must be a whole number in 1..65535`, 'for example port: 8080');
    } else if (ctx.port !== undefined) hp = ctx.port;
    else if (!ctx.portWritten) {
      report('healthcheck.port', 'an http healthcheck needs a port, and the service has no `port`', 'set `port` on the service or `port` in the healthcheck');
    }
    if (typeof p !== 'string' || !p.startsWith('/') || /[\s\x00-\x1f]/.test(p)) {
      report('healthcheck.http', `http ${show(p)} must be a path starting with / (no spaces)`, "for example http: '/health'");
    } else if (hp !== undefined) {
      const url = shQuote(`http://127.0.0.1:${hp}${p}`);
      test = [
        'CMD-SHELL',
        `if command -v wget >/dev/null 2>&1; then wget -q -O /dev/null ${url}; else curl -fsS -o /dev/null ${url}; fi`,
      ];
      describe = `http ${p} :${hp}`;
    }
  } else if (kinds[0] === 'tcp') {
    if (h.port !== undefined) report('healthcheck.port', '`port` only applies to http healthchecks', 'put the port in `tcp`: { tcp: 5432 }');
    if (!isPort(h.tcp)) report('healthcheck.tcp', `tcp ${show(h.tcp)} must be a port number in 1..65535`, 'for example tcp: 5432');
    else {
      const tp = h.tcp;
      // Debian's busybox nc has no -z: fall back to connecting with empty stdin.
      test = ['CMD-SHELL', `nc -z 127.0.0.1 ${tp} 2>/dev/null || nc -w 2 127.0.0.1 ${tp} </dev/null >/dev/null 2>&1`];
      describe = `tcp :${tp}`;
    }
  } else {
    if (h.port !== undefined) report('healthcheck.port', '`port` only applies to http healthchecks', 'remove `port`');
    const c = h.command;
    if (typeof c === 'string' && c.trim() !== '') {
      test = ['CMD-SHELL', c];
      describe = `command ${c}`;
    } else if (Array.isArray(c) && c.length > 0 && c.every((x) => typeof x === 'string')) {
      test = ['CMD', ...(c as string[])];
      describe = `command ${c.join(' ')}`;
    } else {
      report('healthcheck.command', `command must be a non-empty string or list of strings, got ${show(c)}`, "for example command: 'pg_isready -U postgres'");
    }
  }
  return test ? { test, ...timing, describe } : undefined;
}
