/** Pure parsers for the value syntaxes of the authoring API (durations, memory sizes, images, ports). */
import net from 'node:net';
import type { PortBinding } from '../model.ts';

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string; fix?: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T = never>(message: string, fix?: string): Parsed<T> => ({ ok: false, message, ...(fix ? { fix } : {}) });

/** A short, safe rendering of a user value for messages. */
export function show(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  if (Array.isArray(v)) return 'an array';
  return 'an object';
}

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

// ───────────── durations ─────────────

const DURATION_UNITS: Record<string, number> = { ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** `'500ms'`, `'5s'`, `'2m'`, `'1h'` or a number of milliseconds → nanoseconds. */
export function parseDuration(v: unknown): Parsed<number> {
  const fix = "write a duration such as '500ms', '5s', '2m' or '1h', or a number of milliseconds";
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) return fail(`duration must be a non-negative number of milliseconds, got ${show(v)}`, fix);
    return ok(Math.round(v * 1e6));
  }
  if (typeof v === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(v);
    if (!m) return fail(`${show(v)} is not a duration`, fix);
    return ok(Math.round(Number(m[1]) * DURATION_UNITS[m[2]]));
  }
  return fail(`duration must be a string or a number, got ${show(v)}`, fix);
}

// ───────────── memory ─────────────

const MEMORY_UNITS: Record<string, number> = { b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };
/** Docker refuses memory limits below 6 MiB. */
export const MIN_MEMORY = 6 * 1024 * 1024;

/** `'256m'`, `'1g'`, `'512k'`, `'64mb'` or a number of bytes → bytes. 0 means unlimited. */
export function parseMemory(v: unknown): Parsed<number> {
  const fix = "write a size such as '256m', '1g' or '512mb', or a number of bytes (at least 6 MiB)";
  let bytes: number;
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0) return fail(`memory must be a non-negative whole number of bytes, got ${show(v)}`, fix);
    bytes = v;
  } else if (typeof v === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|m|mb|g|gb)\s*$/i.exec(v);
    if (!m) return fail(`${show(v)} is not a memory size`, fix);
    bytes = Math.floor(Number(m[1]) * MEMORY_UNITS[m[2].toLowerCase()]);
  } else {
    return fail(`memory must be a string or a number, got ${show(v)}`, fix);
  }
  if (bytes !== 0 && bytes < MIN_MEMORY) {
    return fail(`memory limit ${show(v)} is below the 6 MiB Docker requires`, "use at least '6m' (or leave the limit out)");
  }
  return ok(bytes);
}

// ───────────── image references ─────────────

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/**
 * Checks an image reference against Docker's grammar:
 * `[registry[:port]/]path[:tag][@sha256:<64 hex>]`, lowercase repository, tag `[\w][\w.-]{0,127}`.
 */
export function checkImage(ref: string): Parsed<string> {
  const fix = "write `repository[:tag]` or `repository@sha256:<digest>`, for example 'nginx:1.27' or 'ghcr.io/acme/api:1.4.2'";
  if (ref.length === 0) return fail('image is empty', fix);
  if (/\s/.test(ref)) return fail(`image ${show(ref)} contains whitespace`, fix);
  let rest = ref;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) {
      return fail(`image ${show(ref)} has an invalid digest ${show(digest)}`, 'a digest is `sha256:` followed by 64 lowercase hex digits');
    }
  }
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  let name = rest;
  if (colon > slash) {
    const tag = rest.slice(colon + 1);
    name = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) {
      return fail(
        `image ${show(ref)} has an invalid tag ${show(tag)}`,
        'a tag is at most 128 characters: letters, digits, `_`, `.` and `-`, not starting with `.` or `-`',
      );
    }
  }
  if (name.length === 0) return fail(`image ${show(ref)} has no repository`, fix);
  if (name.length > 255) return fail(`image ${show(ref)} is longer than 255 characters`, fix);
  const parts = name.split('/');
  const first = parts[0];
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!DOMAIN_RE.test(first)) return fail(`image ${show(ref)} has an invalid registry ${show(first)}`, fix);
    parts.shift();
  }
  for (const p of parts) {
    if (PATH_COMPONENT_RE.test(p)) continue;
    if (PATH_COMPONENT_RE.test(p.toLowerCase())) {
      return fail(`image ${show(ref)}: repository name must be lowercase`, `write ${show(ref.replace(name, name.toLowerCase()))}`);
    }
    return fail(`image ${show(ref)} has an invalid repository path component ${show(p)}`, fix);
  }
  return ok(ref);
}

// ───────────── ports ─────────────

const PORT_FIX =
  "write a port as 8080, '8080:80', '127.0.0.1:8080:80', '53:53/udp', '8000-8001:8000-8001' or { container: 80, host: 8080 }";

function isPortNumber(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;
}

function parseRange(s: string, what: string): Parsed<[number, number]> {
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) return fail(`${what} ${show(s)} is not a port or port range`, PORT_FIX);
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (!isPortNumber(a) || !isPortNumber(b)) return fail(`${what} ${show(s)} is outside 1..65535`, PORT_FIX);
  if (b < a) return fail(`${what} range ${show(s)} ends before it starts`, `write the range low-high, e.g. '${b}-${a}'`);
  return ok([a, b]);
}

const PORT_OBJECT_KEYS = ['container', 'host', 'hostIp', 'protocol'];

/** One entry of `ports` → one or more bindings (ranges expand). */
export function parsePort(v: unknown): Parsed<PortBinding[]> {
  if (typeof v === 'number') {
    if (!isPortNumber(v)) return fail(`port ${show(v)} must be a whole number in 1..65535`, PORT_FIX);
    return ok([{ container: v, host: v, hostIp: '0.0.0.0', protocol: 'tcp' }]);
  }
  if (typeof v === 'string') {
    let s = v.trim();
    let protocol: 'tcp' | 'udp' = 'tcp';
    const slash = s.lastIndexOf('/');
    if (slash >= 0) {
      const proto = s.slice(slash + 1).toLowerCase();
      if (proto !== 'tcp' && proto !== 'udp') return fail(`protocol ${show(s.slice(slash + 1))} must be tcp or udp`, PORT_FIX);
      protocol = proto;
      s = s.slice(0, slash);
    }
    let hostIp = '0.0.0.0';
    let hostPart: string | undefined;
    let containerPart: string;
    if (s.startsWith('[')) {
      const close = s.indexOf(']');
      if (close < 0 || s[close + 1] !== ':') return fail(`port ${show(v)} has a malformed IPv6 address`, PORT_FIX);
      hostIp = s.slice(1, close);
      const rest = s.slice(close + 2).split(':');
      if (rest.length !== 2) return fail(`port ${show(v)} must be '[ip]:host:container'`, PORT_FIX);
      [hostPart, containerPart] = rest;
      if (net.isIP(hostIp) !== 6) return fail(`${show(hostIp)} is not an IPv6 address`, PORT_FIX);
    } else {
      const parts = s.split(':');
      if (parts.length === 1) containerPart = parts[0];
      else if (parts.length === 2) [hostPart, containerPart] = parts;
      else if (parts.length === 3) {
        [hostIp, hostPart, containerPart] = parts;
        if (net.isIP(hostIp) === 0) return fail(`${show(hostIp)} is not an IP address`, PORT_FIX);
      } else return fail(`port ${show(v)} has too many ':'`, `${PORT_FIX} (IPv6 addresses go in brackets: '[::1]:8080:80')`);
    }
    const c = parseRange(containerPart, 'container port');
    if (!c.ok) return c;
    const [c1, c2] = c.value;
    if (hostPart === undefined || hostPart === '') {
      const out: PortBinding[] = [];
      for (let p = c1; p <= c2; p++) out.push({ container: p, hostIp, protocol });
      return ok(out);
    }
    const h = parseRange(hostPart, 'host port');
    if (!h.ok) return h;
    const [h1, h2] = h.value;
    if (h2 - h1 !== c2 - c1) {
      return fail(`host range ${show(hostPart)} and container range ${show(containerPart)} differ in size`, 'give both ranges the same number of ports');
    }
    const out: PortBinding[] = [];
    for (let i = 0; i <= c2 - c1; i++) out.push({ container: c1 + i, host: h1 + i, hostIp, protocol });
    return ok(out);
  }
  if (isObject(v)) {
    const unknown = Object.keys(v).filter((k) => !PORT_OBJECT_KEYS.includes(k));
    if (unknown.length) return fail(`unknown key ${show(unknown[0])} in port object`, `use only ${PORT_OBJECT_KEYS.join(', ')}`);
    if (!isPortNumber(v.container)) return fail(`container port ${show(v.container)} must be a whole number in 1..65535`, PORT_FIX);
    if (v.host !== undefined && !isPortNumber(v.host)) return fail(`host port ${show(v.host)} must be a whole number in 1..65535`, PORT_FIX);
    let hostIp = '0.0.0.0';
    if (v.hostIp !== undefined) {
      if (typeof v.hostIp !== 'string' || net.isIP(v.hostIp) === 0) return fail(`hostIp ${show(v.hostIp)} is not an IP address`, "for example '127.0.0.1'");
      hostIp = v.hostIp;
    }
    let protocol: 'tcp' | 'udp' = 'tcp';
    if (v.protocol !== undefined) {
      if (v.protocol !== 'tcp' && v.protocol !== 'udp') return fail(`protocol ${show(v.protocol)} must be 'tcp' or 'udp'`, PORT_FIX);
      protocol = v.protocol;
    }
    return ok([{ container: v.container, ...(v.host !== undefined ? { host: v.host as number } : {}), hostIp, protocol }]);
  }
  return fail(`port must be a number, a string or an object, got ${show(v)}`, PORT_FIX);
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/** True when two host addresses overlap (equal, or either binds all addresses). */
export function hostIpsOverlap(a: string, b: string): boolean {
  return a === b || WILDCARDS.has(a) || WILDCARDS.has(b);
}

// ───────────── shell ─────────────

/** Single-quotes a string for POSIX sh. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
