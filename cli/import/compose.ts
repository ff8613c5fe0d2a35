/**
 * Docker Compose → a Wafflemaker repository: one `services/<name>.ts` per Compose service and a
 * `waffle.config.ts`. Pure: the Compose files come in as text, every other file it needs (`.env`,
 * `env_file`s, the file an `extends` names) through `read`, and the result is file contents, the secret
 * values to store and a list of notes. Nothing is written here (cli/commands/import.ts does that).
 *
 * What Compose does, kept: variable interpolation (`${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?error}`, `${VAR:+alt}`, `$$`) from the environment and the project's `.env`; several files
 * merged in order; `extends` and YAML anchors and merge keys resolved; profiles (a service with
 * `profiles` is imported only when one of them is active); reachability: two services that share a
 * network (the implicit `default` one included) can reach each other, so they are linked.
 *
 * References are values: `depends_on` becomes `dependsOn: [db]` with `import db from './db'`, and a
 * shared network `connects: [db]`. A service imports only services before it (dependencies first, then
 * by name), so the imports never form a cycle.
 *
 * Values that look like secrets (names such as `*_PASSWORD`, `*_TOKEN`, `*_KEY`, `*SECRET*`, or a URL
 * with a password) become keys of embedded secrets (`secrets.<service>.<VAR>`), declared in
 * waffle.config.ts; their values are returned separately, for the encrypted store, never written in a
 * .ts file. The same value used by several services is one key.
 *
 * Whatever cannot be mapped is a note naming the service, the Compose key and what to do; nothing is
 * dropped silently.
 */
import path from 'node:path';
import { parse as parseYaml, parseDocument } from 'yaml';

export interface ComposeFile {
  /** The file's path (absolute, or relative to the directory relative paths in it count from). */
  path: string;
  text: string;
}

export interface ComposeImportInput {
  /** The Compose files, merged in this order (later ones override). */
  files: ComposeFile[];
  /** Reads another file (`.env`, an `env_file`, a file `extends` names); undefined when it does not exist. */
  read(file: string): string | undefined;
  /** The environment variables interpolation sees (they win over the project's `.env`). */
  env: Record<string, string | undefined>;
  /** Project name; default: the files' `name`, else their directory's name. */
  project?: string;
  /** Active profiles (Compose's `--profile`). */
  profiles?: string[];
  /** Where the repository is written (relative bind mounts are written relative to it); default: the first file's directory. */
  outDir?: string;
}

export interface ImportNote {
  /** The Compose service, when the note is about one. */
  service?: string;
  /** The Compose key, as written (`build`, `deploy.replicas`, `volumes[1]`). */
  key: string;
  /** `unsupported`: not mapped (what to do is in `fix`); `changed`: mapped differently than Compose would run it; `info`: worth knowing. */
  level: 'unsupported' | 'changed' | 'info';
  message: string;
  fix?: string;
}

export interface ComposeImportResult {
  project: string;
  /** Relative path → content: `waffle.config.ts` and `services/<name>.ts`. */
  files: Record<string, string>;
  /** Secret name → key → value, for the embedded store. Never in `files`. */
  secrets: Record<string, Record<string, string>>;
  /** Compose service name → Wafflemaker service name (only the imported ones). */
  services: Record<string, string>;
  notes: ImportNote[];
}

/** Raised when the input cannot be read at all (not YAML, no services, a required variable unset). */
export class ComposeImportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ComposeImportError';
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

// ───────────────────────────── interpolation ─────────────────────────────

/**
 * Compose's interpolation of one string: `$$` is a dollar; `${VAR}` and `$VAR` the variable (empty when
 * unset, with a note); `${VAR:-x}` x when unset or empty, `${VAR-x}` when unset; `${VAR:?msg}` /
 * `${VAR?msg}` an error; `${VAR:+x}` / `${VAR+x}` x when set (and non-empty). Defaults may nest.
 */
export function interpolate(text: string, env: Record<string, string | undefined>, onUnset: (name: string) => void): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch !== '$') {
      out += ch;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      let depth = 1;
      let j = i + 2;
      while (j < text.length && depth > 0) {
        if (text[j] === '{') depth++;
        else if (text[j] === '}') depth--;
        if (depth > 0) j++;
      }
      if (depth > 0) throw new ComposeImportError(`unterminated variable in ${JSON.stringify(text)}: a \`\${\` has no \`}\``);
      out += substitute(text.slice(i + 2, j), env, onUnset);
      i = j + 1;
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1));
    if (m) {
      const v = env[m[0]];
      if (v === undefined) onUnset(m[0]);
      out += v ?? '';
      i += 1 + m[0].length;
      continue;
    }
    out += '$';
    i++;
  }
  return out;
}

function substitute(expr: string, env: Record<string, string | undefined>, onUnset: (name: string) => void): string {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/.exec(expr);
  if (!m) throw new ComposeImportError(`invalid interpolation format for \${${expr}}`);
  const [, name, op, arg = ''] = m;
  const v = env[name!];
  const unset = v === undefined;
  const empty = unset || v === '';
  const more = () => interpolate(arg, env, onUnset);
  switch (op) {
    case ':-':
      return empty ? more() : v!;
    case '-':
      return unset ? more() : v!;
    case ':?':
    case '?':
      if (op === ':?' ? empty : unset) throw new ComposeImportError(`required variable ${name} is ${unset ? 'unset' : 'empty'}: ${more() || 'set it'}`);
      return v!;
    case ':+':
      return empty ? '' : more();
    case '+':
      return unset ? '' : more();
    default:
      if (unset) onUnset(name!);
      return v ?? '';
  }
}

function interpolateDeep(v: unknown, env: Record<string, string | undefined>, onUnset: (name: string) => void): unknown {
  if (typeof v === 'string') return interpolate(v, env, onUnset);
  if (Array.isArray(v)) return v.map((x) => interpolateDeep(x, env, onUnset));
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolateDeep(x, env, onUnset)]));
  return v;
}

/** `KEY=VALUE` lines (a `.env` or an `env_file`): comments and blank lines skipped, quotes removed. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const key = (eq === -1 ? line : line.slice(0, eq)).replace(/^export\s+/, '').trim();
    if (eq === -1) continue;
    let value = line.slice(eq + 1).trim();
    const q = value[0];
    if ((q === '"' || q === "'") && value.endsWith(q) && value.length >= 2) {
      value = value.slice(1, -1);
      if (q === '"') value = value.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    } else {
      value = value.replace(/\s+#.*$/, '');
    }
    out[key] = value;
  }
  return out;
}

/** Splits a command string as Compose does (shell words: quotes and backslashes, no shell). */
export function shellWords(s: string): string[] {
  const words: string[] = [];
  let cur = '';
  let has = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < s.length && '"\\$`'.includes(s[i + 1]!)) cur += s[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      has = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur) words.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (quote) throw new ComposeImportError(`unterminated quote in command ${JSON.stringify(s)}`);
  if (has || cur) words.push(cur);
  return words;
}

// ───────────────────────────── merging ─────────────────────────────

/** Keys whose lists add up across files and `extends` (Compose's merge rules), others are replaced. */
const APPENDED = new Set(['ports', 'expose', 'volumes', 'env_file', 'dns', 'dns_search', 'cap_add', 'cap_drop', 'devices', 'tmpfs', 'extra_hosts', 'external_links', 'links', 'secrets', 'configs', 'security_opt']);
/** Keys Compose accepts as a list or a mapping: merged as mappings. */
const MAPPINGS = new Set(['environment', 'labels', 'depends_on', 'networks', 'sysctls', 'extra_hosts', 'annotations']);

/** `[ 'A=1', 'B' ]` or `{ A: 1 }` → a mapping (a list item without `=` maps to null). */
function asMapping(v: unknown): Obj {
  if (Array.isArray(v)) {
    const out: Obj = {};
    for (const item of v) {
      const s = String(item);
      const eq = s.indexOf('=');
      if (eq === -1) out[s] = null;
      else out[s.slice(0, eq)] = s.slice(eq + 1);
    }
    return out;
  }
  return isObj(v) ? { ...v } : {};
}

function mergeService(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    if (MAPPINGS.has(k) && b !== undefined && v !== null) {
      const bm = k === 'depends_on' || k === 'networks' ? listOrMap(b) : asMapping(b);
      const vm = k === 'depends_on' || k === 'networks' ? listOrMap(v) : asMapping(v);
      out[k] = { ...bm, ...vm };
    } else if (APPENDED.has(k) && Array.isArray(b) && Array.isArray(v)) {
      const seen = new Set<string>();
      out[k] = [...b, ...v].filter((x) => {
        const key = JSON.stringify(x);
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      });
    } else if (isObj(b) && isObj(v) && !APPENDED.has(k)) {
      out[k] = mergeService(b, v);
    } else out[k] = v;
  }
  return out;
}

/** `depends_on` / `networks` as a mapping: a list of names → name → {}. */
function listOrMap(v: unknown): Obj {
  if (Array.isArray(v)) return Object.fromEntries(v.map((n) => [String(n), {}]));
  return isObj(v) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x ?? {}])) : {};
}

// ───────────────────────────── TypeScript output ─────────────────────────────

/** Code written as is in the output (an identifier, a reference). */
class Code {
  constructor(readonly code: string) {}
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const RESERVED = new Set(
  'break case catch class const continue debugger default delete do else enum export extends false finally for function if import in instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package private protected public await'.split(' '),
);

function str(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}'`;
}

function key(k: string): string {
  return IDENT.test(k) ? k : str(k);
}

/** A value as TypeScript source, short lists and objects on one line when they fit. */
function ts(v: unknown, indent = ''): string {
  if (v instanceof Code) return v.code;
  if (typeof v === 'string') return str(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return 'undefined';
  const inner = indent + '  ';
  if (Array.isArray(v)) {
    const items = v.map((x) => ts(x, inner));
    const one = `[${items.join(', ')}]`;
    if (one.length + indent.length <= 100 && !one.includes('\n')) return one;
    return `[\n${items.map((x) => `${inner}${x},`).join('\n')}\n${indent}]`;
  }
  const entries = Object.entries(v as Obj).filter(([, x]) => x !== undefined);
  if (entries.length === 0) return '{}';
  const items = entries.map(([k, x]) => `${key(k)}: ${ts(x, inner)}`);
  const one = `{ ${items.join(', ')} }`;
  if (one.length + indent.length <= 100 && !one.includes('\n')) return one;
  return `{\n${items.map((x) => `${inner}${x},`).join('\n')}\n${indent}}`;
}

// ───────────────────────────── naming ─────────────────────────────

/** A DNS-safe Wafflemaker name for a Compose name (`my_app` → `my-app`). */
export function serviceNameOf(name: string): string {
  let n = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .replace(/-{2,}/g, '-');
  if (!/^[a-z]/.test(n)) n = `s-${n}`;
  return n.slice(0, 63).replace(/-+$/, '');
}

/** An identifier for a service in the code that imports it (`my-app` → `myApp`). */
function identOf(name: string): string {
  let id = name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  if (RESERVED.has(id) || id === 'secrets' || id === 'defineService') id = `${id}Service`;
  return id;
}

const SECRET_NAME = /PASSW(OR)?D|SECRET|TOKEN|(^|_)(API_?|PRIVATE_?|ACCESS_?|SECRET_?|ENCRYPTION_?|SIGNING_?|MASTER_?)?KEY(S)?($|_)|CREDENTIAL|(^|_)AUTH($|_)|(^|_)PASS($|_)|(^|_)SALT($|_)|(^|_)DSN($|_)/i;
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/:@\s]+:[^@\s]+@/i;

/**
 * A value that looks like a secret: a name like `*_PASSWORD`, `*_TOKEN`, `*_KEY`, `*SECRET*` (not a
 * `*_FILE` path), or a URL with a password in it; never an empty value.
 */
export function looksSecret(name: string, value: string): boolean {
  if (value === '') return false;
  if (/_FILE$/i.test(name) || /_(ID|USER|USERNAME|NAME|HOST|PORT|PATH|URL_PATH)$/i.test(name)) return URL_WITH_PASSWORD.test(value);
  return SECRET_NAME.test(name) || URL_WITH_PASSWORD.test(value);
}

// ───────────────────────────── durations and sizes ─────────────────────────────

/** Compose's duration (`1m30s`, `10s`, `500ms`, `1h`) → a Wafflemaker Duration. */
function duration(v: unknown): string | number | undefined {
  if (typeof v === 'number') return Math.round(v / 1e6); // Compose reads a bare number as nanoseconds
  if (typeof v !== 'string') return undefined;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let ms = 0;
  let rest = v.trim();
  if (rest === '') return undefined;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!m) return undefined;
    ms += Number(m[1]) * units[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  ms = Math.round(ms);
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Compose's memory size (`512m`, `1g`, `1.5gb`, a number of bytes) → a Wafflemaker MemorySize. */
function memory(v: unknown): string | number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmg])b?\s*$/i.exec(v);
  if (!m) return undefined;
  return Number.isInteger(Number(m[1])) ? `${m[1]}${m[2]!.toLowerCase()}` : Math.floor(Number(m[1]) * { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as 'b']!);
}

// ───────────────────────────── the import ─────────────────────────────

/** Service keys that have no Wafflemaker equivalent, with what to do instead. */
const UNSUPPORTED: Record<string, string> = {
  build: 'build the image in CI (templates/ci/github-actions.yml pushes `<branch>-<sha>` tags) and set `image`',
  container_name: 'containers are named `<project>-<service>`; reach the service by its service name',
  hostname: 'the service is reached by its service name; a different hostname is not set',
  domainname: 'not set; the service is reached by its service name',
  expose: 'nothing to do: linked services reach every port of each other',
  network_mode: 'services run on the project network; host networking is not supported',
  ipc: 'not supported',
  pid: 'not supported',
  privileged: 'not supported: give the container the capabilities it needs in its image',
  cap_add: 'not supported',
  cap_drop: 'not supported',
  devices: 'not supported',
  tmpfs: 'not supported: use a named volume',
  shm_size: 'not supported',
  sysctls: 'not supported',
  ulimits: 'not supported',
  security_opt: 'not supported',
  extra_hosts: 'not supported: reach other services by their names',
  dns: 'not supported',
  dns_search: 'not supported',
  logging: 'containers log with the engine default driver (`waffle logs <service>`)',
  secrets: 'declare the secret with defineSecrets in waffle.config.ts and mount it with `files: { "/run/secrets/x": secrets.x.value }`',
  configs: 'mount the file with a bind volume, or put it in the image',
  stdin_open: 'not supported: services run detached',
  tty: 'not supported: services run detached',
  init: 'not supported: add an init (tini) to the image',
  platform: 'not supported: the image for the host platform is used',
  scale: 'one container per service',
  external_links: 'not supported: link services of this project with `connects`',
  isolation: 'not supported',
  cgroup_parent: 'not supported',
  userns_mode: 'not supported',
  oom_score_adj: 'not supported',
  mem_reservation: 'not supported: only limits (`resources.memory`)',
  memswap_limit: 'not supported',
  cpu_shares: 'not supported: use `resources.cpus`',
  cpuset: 'not supported',
  develop: 'rewrite as `develop.watch` in the service file (`waffle dev`); `rebuild` has no equivalent',
  runtime: 'not supported',
  annotations: 'not supported',
  attach: 'not supported',
  stop_signal: 'not supported: the image\'s STOPSIGNAL is used',
};

/** Service keys mapped below. */
const MAPPED = new Set([
  'image', 'command', 'entrypoint', 'environment', 'env_file', 'ports', 'volumes', 'healthcheck', 'depends_on', 'restart', 'labels', 'networks',
  'links', 'user', 'working_dir', 'stop_grace_period', 'deploy', 'mem_limit', 'cpus', 'pull_policy', 'profiles', 'extends',
]);

interface Service {
  compose: string;
  name: string;
  def: Obj;
}

export function importCompose(input: ComposeImportInput): ComposeImportResult {
  if (input.files.length === 0) throw new ComposeImportError('no Compose file given');
  const notes: ImportNote[] = [];
  const note = (n: ImportNote) => notes.push(n);
  const baseDir = path.dirname(input.files[0]!.path);

  // The environment interpolation sees: the project's .env, then the caller's environment on top.
  const dotenvText = input.read(path.join(baseDir, '.env'));
  const env: Record<string, string | undefined> = { ...(dotenvText ? parseEnvFile(dotenvText) : {}), ...input.env };
  const unset = new Set<string>();
  const onUnset = (n: string) => unset.add(n);

  const parsed = input.files.map((f) => {
    let doc: unknown;
    try {
      const d = parseDocument(f.text, { merge: true });
      if (d.errors.length) throw d.errors[0];
      doc = d.toJS({ maxAliasCount: 1000 });
    } catch (e) {
      throw new ComposeImportError(`${f.path}: not valid YAML: ${(e as Error).message}`);
    }
    if (!isObj(doc)) throw new ComposeImportError(`${f.path}: a Compose file is a mapping with \`services\``);
    return { file: f, doc: interpolateDeep(doc, env, onUnset) as Obj };
  });

  // Top level: merged services, networks and volumes; other keys noted.
  let services: Obj = {};
  let topNetworks: Obj = {};
  let topVolumes: Obj = {};
  let name: string | undefined;
  for (const { file, doc } of parsed) {
    for (const [k, v] of Object.entries(doc)) {
      if (k === 'services') {
        if (!isObj(v)) throw new ComposeImportError(`${file.path}: \`services\` must be a mapping of service names`);
        for (const [s, def] of Object.entries(v)) services[s] = services[s] && isObj(def) ? mergeService(services[s] as Obj, def) : def;
      } else if (k === 'networks' && isObj(v)) topNetworks = { ...topNetworks, ...v };
      else if (k === 'volumes' && isObj(v)) topVolumes = { ...topVolumes, ...v };
      else if (k === 'name' && typeof v === 'string') name = v;
      else if (k === 'version') note({ key: 'version', level: 'info', message: 'the `version` key is obsolete in Compose too; nothing to map' });
      else if (k.startsWith('x-')) note({ key: k, level: 'info', message: 'an extension field (used for YAML anchors); its anchors were resolved where they are used' });
      else if (k === 'secrets' || k === 'configs') {
        note({ key: k, level: 'unsupported', message: `top-level \`${k}\` are not imported`, fix: UNSUPPORTED[k]! });
      } else note({ key: k, level: 'unsupported', message: `top-level key \`${k}\` is not imported`, fix: 'remove it, or map it by hand' });
    }
  }
  if (Object.keys(services).length === 0) throw new ComposeImportError(`${input.files.map((f) => f.path).join(', ')}: no services`);

  // extends: within these files, or another file (its path relative to this one).
  const resolving = new Set<string>();
  const resolveExtends = (s: string, def: Obj, from: string, pool: Obj): Obj => {
    const ext = def.extends;
    if (ext === undefined) return def;
    const spec = typeof ext === 'string' ? { service: ext } : isObj(ext) ? ext : undefined;
    const { extends: _e, ...rest } = def;
    if (!spec || typeof spec.service !== 'string') {
      note({ service: s, key: 'extends', level: 'unsupported', message: 'extends must name a service', fix: 'write extends: { service: base } or { file: base.yml, service: base }' });
      return rest;
    }
    const id = `${from}#${spec.service}`;
    if (resolving.has(id)) throw new ComposeImportError(`service ${s}: extends cycle through ${spec.service}`);
    resolving.add(id);
    try {
      let basePool = pool;
      let baseFrom = from;
      if (typeof spec.file === 'string') {
        baseFrom = path.resolve(path.dirname(from), spec.file);
        const text = input.read(baseFrom);
        if (text === undefined) {
          note({ service: s, key: 'extends.file', level: 'unsupported', message: `${spec.file} does not exist`, fix: 'create it or remove `extends`' });
          return rest;
        }
        const doc = interpolateDeep(parseYaml(text, { merge: true }), env, onUnset);
        basePool = isObj(doc) && isObj(doc.services) ? doc.services : {};
      }
      const base = basePool[spec.service];
      if (!isObj(base)) {
        note({ service: s, key: 'extends', level: 'unsupported', message: `service ${spec.service} to extend was not found`, fix: 'name a service of that file' });
        return rest;
      }
      const resolvedBase = resolveExtends(spec.service, base, baseFrom, basePool);
      // depends_on, links and volumes_from of the base are not inherited (as in Compose).
      const { depends_on: _d, links: _l, volumes_from: _v, ...inherit } = resolvedBase;
      return mergeService(inherit, rest);
    } finally {
      resolving.delete(id);
    }
  };
  const mainPath = input.files[0]!.path;
  for (const [s, def] of Object.entries(services)) if (isObj(def)) services[s] = resolveExtends(s, def, mainPath, services);

  // Profiles: a service with profiles runs only when one is active.
  const active = new Set(input.profiles ?? []);
  const chosen: Service[] = [];
  const names = new Map<string, string>();
  for (const [s, def] of Object.entries(services)) {
    if (!isObj(def)) throw new ComposeImportError(`service ${s}: its definition must be a mapping`);
    const profiles = Array.isArray(def.profiles) ? def.profiles.map(String) : [];
    if (profiles.length && !profiles.some((p) => active.has(p))) {
      note({ service: s, key: 'profiles', level: 'info', message: `not imported: it belongs to profile ${profiles.join(', ')}, which is not active`, fix: `run the import with --profile ${profiles[0]} to import it` });
      continue;
    }
    const n = serviceNameOf(s);
    if ([...names.values()].includes(n)) throw new ComposeImportError(`services ${[...names].find(([, v]) => v === n)![0]} and ${s} both become "${n}": rename one`);
    names.set(s, n);
    if (n !== s) note({ service: s, key: 'services', level: 'changed', message: `named "${n}" (service names are DNS-safe: lowercase letters, digits and -)`, fix: `other services reach it as ${n}: update host names such as "${s}" in their environment` });
    chosen.push({ compose: s, name: n, def });
  }

  // Dependencies (for the import order), then every service in that order.
  const dependsOf = (svc: Service): Obj => listOrMap(svc.def.depends_on);
  for (const svc of chosen) {
    for (const dep of Object.keys(dependsOf(svc))) {
      if (!names.has(dep)) throw new ComposeImportError(`service ${svc.compose}: depends_on names ${dep}, which is ${services[dep] ? 'not imported (its profile is not active)' : 'not a service'}`);
    }
  }
  const order: Service[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (svc: Service, trail: string[]) => {
    const st = state.get(svc.compose);
    if (st === 'done') return;
    if (st === 'visiting') throw new ComposeImportError(`depends_on cycle: ${[...trail, svc.compose].join(' → ')}`);
    state.set(svc.compose, 'visiting');
    for (const dep of Object.keys(dependsOf(svc)).sort()) visit(chosen.find((c) => c.compose === dep)!, [...trail, svc.compose]);
    state.set(svc.compose, 'done');
    order.push(svc);
  };
  for (const svc of [...chosen].sort((a, b) => a.name.localeCompare(b.name))) visit(svc, []);
  const rank = new Map(order.map((s, i) => [s.compose, i]));

  // Networks each service is on (the implicit `default` when it names none); shared ones make links.
  const netsOf = new Map<string, string[]>();
  for (const svc of order) {
    const nets = svc.def.network_mode !== undefined ? [] : Object.keys(listOrMap(svc.def.networks));
    netsOf.set(svc.compose, nets.length ? nets : ['default']);
  }
  for (const [n, def] of Object.entries(topNetworks)) {
    if (isObj(def) && def.external) note({ key: `networks.${n}`, level: 'unsupported', message: `external network ${n} is not joined`, fix: 'services of this project reach each other through their links; reach other projects through published ports' });
    else if (isObj(def) && (def.driver || def.ipam || def.driver_opts)) note({ key: `networks.${n}`, level: 'changed', message: `its driver and IP settings are not kept: a link network per pair of services that share it`, });
  }

  const secrets: Record<string, Record<string, string>> = {};
  const secretByValue = new Map<string, { secret: string; key: string }>();
  const files: Record<string, string> = {};

  for (const svc of order) {
    const { compose: s, def } = svc;
    const out: Obj = {};
    const imports = new Map<string, string>(); // identifier → file
    let usesSecrets = false;
    const ref = (other: string) => {
      const o = chosen.find((c) => c.compose === other)!;
      const id = identOf(o.name);
      imports.set(id, `./${o.name}`);
      return new Code(id);
    };

    for (const k of Object.keys(def)) {
      if (MAPPED.has(k)) continue;
      // A build without an image is reported once, with the placeholder image below.
      if (k === 'build' && def.image === undefined) continue;
      if (UNSUPPORTED[k]) {
        note({ service: s, key: k, level: 'unsupported', message: k === 'build' ? `not used: the image ${String(def.image)} is deployed` : `\`${k}\` is not mapped`, fix: UNSUPPORTED[k] });
      } else note({ service: s, key: k, level: 'unsupported', message: `\`${k}\` is not mapped`, fix: 'remove it, or set it in the image' });
    }

    // image
    if (typeof def.image === 'string' && def.image !== '') out.image = def.image;
    else {
      out.image = `${svc.name}:latest`;
      note({
        service: s,
        key: def.build !== undefined ? 'build' : 'image',
        level: 'unsupported',
        message: `${def.build !== undefined ? 'waffle deploys images, it does not build them' : 'no image'}: the placeholder "${svc.name}:latest" was written`,
        fix: `build and push the image in CI (templates/ci/github-actions.yml), then set \`image\` in services/${svc.name}.ts`,
      });
    }

    // command, entrypoint: Compose splits a string into words (no shell)
    for (const [ck, wk] of [['entrypoint', 'entrypoint'], ['command', 'command']] as const) {
      const v = def[ck];
      if (v === undefined || v === null) continue;
      if (typeof v === 'string') out[wk] = shellWords(v);
      else if (Array.isArray(v)) out[wk] = v.map(String);
      if (Array.isArray(out[wk]) && (out[wk] as string[]).length === 0) delete out[wk];
    }

    // environment: env files first, then `environment` on top; a name alone takes the caller's value.
    const envVars: Record<string, string> = {};
    const envFiles = def.env_file === undefined ? [] : Array.isArray(def.env_file) ? def.env_file : [def.env_file];
    for (const ef of envFiles) {
      const spec: Obj = isObj(ef) ? ef : { path: ef };
      const p = path.resolve(baseDir, String(spec.path));
      const text = input.read(p);
      if (text === undefined) {
        if (spec.required === false) continue;
        note({ service: s, key: 'env_file', level: 'unsupported', message: `${String(spec.path)} does not exist`, fix: 'create it and import again, or remove env_file' });
        continue;
      }
      Object.assign(envVars, parseEnvFile(text));
    }
    if (envFiles.length) note({ service: s, key: 'env_file', level: 'info', message: `${envFiles.map((e) => (isObj(e) ? String(e.path) : String(e))).join(', ')}: its variables are written into env (secret-looking ones as secrets)` });
    for (const [k, v] of Object.entries(asMapping(def.environment))) {
      if (v === null || v === undefined) {
        const fromEnv = input.env[k] ?? env[k];
        if (fromEnv !== undefined) envVars[k] = fromEnv;
        else note({ service: s, key: `environment.${k}`, level: 'changed', message: `${k} takes its value from the environment, where it is unset: left out`, fix: `set ${k} in services/${svc.name}.ts` });
      } else envVars[k] = typeof v === 'string' ? v : String(v);
    }
    if (Object.keys(envVars).length) {
      const e: Obj = {};
      for (const [k, v] of Object.entries(envVars).sort(([a], [b]) => a.localeCompare(b))) {
        if (looksSecret(k, v)) {
          let r = secretByValue.get(v);
          if (!r) {
            const secret = identOf(svc.name);
            r = { secret, key: k };
            (secrets[secret] ??= {})[k] = v;
            secretByValue.set(v, r);
          }
          e[k] = new Code(`secrets.${r.secret}${IDENT.test(r.key) ? `.${r.key}` : `[${str(r.key)}]`}`);
          usesSecrets = true;
        } else e[k] = v;
      }
      out.env = e;
    }

    // ports
    if (Array.isArray(def.ports)) {
      const ports: unknown[] = [];
      def.ports.forEach((p, i) => {
        const mapped = portOf(p);
        if (mapped === undefined) note({ service: s, key: `ports[${i}]`, level: 'unsupported', message: `${JSON.stringify(p)} is not mapped (a port range or an unknown form)`, fix: 'list each port on its own: `8000:8000`' });
        else ports.push(...mapped);
      });
      if (ports.length) out.ports = ports;
    }

    // volumes: named and bind; anonymous and tmpfs noted
    if (Array.isArray(def.volumes)) {
      const vols: unknown[] = [];
      def.volumes.forEach((v, i) => {
        const m = volumeOf(v, baseDir, input.outDir ?? baseDir);
        if ('note' in m) note({ service: s, key: `volumes[${i}]`, ...m.note });
        else {
          vols.push(m.volume);
          if ('name' in m.volume) {
            const top = topVolumes[m.volume.name];
            if (isObj(top) && top.external) note({ service: s, key: `volumes[${i}]`, level: 'changed', message: `external volume ${m.volume.name} becomes the project's volume ${m.volume.name}`, fix: 'copy its data into the new volume (docker run --rm -v old:/from -v new:/to busybox cp -a /from/. /to)' });
          }
        }
      });
      if (vols.length) out.volumes = vols;
    }

    // healthcheck
    if (isObj(def.healthcheck)) {
      const h = def.healthcheck;
      const test = h.test;
      const disabled = h.disable === true || (Array.isArray(test) && test[0] === 'NONE');
      if (disabled) note({ service: s, key: 'healthcheck', level: 'changed', message: 'a disabled healthcheck is left out (the image\'s own healthcheck, if any, still runs)' });
      else {
        const hc: Obj = {};
        if (typeof test === 'string') hc.command = test;
        else if (Array.isArray(test) && test[0] === 'CMD-SHELL') hc.command = test.slice(1).map(String).join(' ');
        else if (Array.isArray(test) && test[0] === 'CMD') hc.command = test.slice(1).map(String);
        else if (Array.isArray(test)) hc.command = test.map(String);
        for (const [ck, wk] of [['interval', 'interval'], ['timeout', 'timeout'], ['start_period', 'startPeriod']] as const) {
          if (h[ck] === undefined) continue;
          const d = duration(h[ck]);
          if (d === undefined) note({ service: s, key: `healthcheck.${ck}`, level: 'unsupported', message: `${JSON.stringify(h[ck])} is not a duration`, fix: "write it as '10s'" });
          else hc[wk] = d;
        }
        if (typeof h.retries === 'number') hc.retries = h.retries;
        if (h.start_interval !== undefined) note({ service: s, key: 'healthcheck.start_interval', level: 'unsupported', message: 'not mapped', fix: 'remove it; interval applies from the start' });
        if (hc.command !== undefined) out.healthcheck = hc;
        else note({ service: s, key: 'healthcheck.test', level: 'unsupported', message: 'a healthcheck without a test (the image\'s own) is not mapped', fix: 'write healthcheck: { command: [...] }' });
      }
    }

    // depends_on, then shared networks (and links) as connects
    const deps = dependsOf(svc);
    const dependsOn: unknown[] = [];
    for (const [dep, spec] of Object.entries(deps).sort(([a], [b]) => (rank.get(a)! - rank.get(b)!))) {
      const cond = isObj(spec) ? spec.condition : undefined;
      if (cond === 'service_healthy') {
        const target = chosen.find((c) => c.compose === dep)!;
        if (!isObj(target.def.healthcheck)) note({ service: s, key: `depends_on.${dep}`, level: 'unsupported', message: `waits for ${dep} to be healthy, but ${dep} has no healthcheck here (maybe the image's own)`, fix: `add a healthcheck to services/${target.name}.ts; waffle check fails until then` });
        dependsOn.push({ service: ref(dep), condition: 'healthy' });
      } else {
        if (cond === 'service_completed_successfully') note({ service: s, key: `depends_on.${dep}.condition`, level: 'changed', message: 'service_completed_successfully: waits only until it started', fix: 'run one-off jobs (migrations) before `waffle apply`, or make the service wait for its dependency itself' });
        dependsOn.push(ref(dep));
      }
      if (isObj(spec) && spec.required === false) note({ service: s, key: `depends_on.${dep}.required`, level: 'changed', message: 'required: false is not kept: the dependency is required' });
      if (isObj(spec) && spec.restart === true) note({ service: s, key: `depends_on.${dep}.restart`, level: 'unsupported', message: 'restart: true is not mapped', fix: 'nothing restarts dependents; a redeploy of a dependency keeps its name' });
    }
    if (dependsOn.length) out.dependsOn = dependsOn;

    const connects = new Set<string>();
    const mine = new Set(netsOf.get(s));
    for (const other of order) {
      if (other.compose === s || rank.get(other.compose)! > rank.get(s)!) continue;
      if (deps[other.compose] !== undefined) continue; // a dependency already implies the link
      if (netsOf.get(other.compose)!.some((n) => mine.has(n))) connects.add(other.compose);
    }
    for (const l of Array.isArray(def.links) ? def.links : []) {
      const target = String(l).split(':')[0]!;
      if (!names.has(target)) continue;
      if (String(l).includes(':')) note({ service: s, key: 'links', level: 'changed', message: `the alias in ${String(l)} is not kept: reach it as ${names.get(target)}` });
      if (deps[target] === undefined && rank.get(target)! < rank.get(s)!) connects.add(target);
    }
    if (connects.size) out.connects = [...connects].sort((a, b) => rank.get(a)! - rank.get(b)!).map(ref);
    if (isObj(def.networks)) {
      for (const [n, spec] of Object.entries(def.networks)) {
        if (isObj(spec) && (spec.aliases || spec.ipv4_address || spec.ipv6_address)) note({ service: s, key: `networks.${n}`, level: 'unsupported', message: 'aliases and fixed addresses are not mapped', fix: `reach it by its service name, ${svc.name}` });
      }
    }

    // restart
    if (def.restart !== undefined) {
      const r = String(def.restart);
      const m = /^on-failure(?::(\d+))?$/.exec(r);
      if (m && m[1]) out.restart = { policy: 'on-failure', maxRetries: Number(m[1]) };
      else if (['no', 'always', 'unless-stopped', 'on-failure'].includes(r)) out.restart = r;
      else note({ service: s, key: 'restart', level: 'unsupported', message: `${r} is not a restart policy`, fix: "use 'no', 'always', 'unless-stopped' or 'on-failure'" });
    } else {
      // Compose's default is no restart; Wafflemaker's is unless-stopped. Keep what Compose did.
      out.restart = 'no';
    }

    if (def.labels !== undefined) {
      const labels = Object.fromEntries(Object.entries(asMapping(def.labels)).map(([k, v]) => [k, v === null ? '' : String(v)]));
      const reserved = Object.keys(labels).filter((k) => k.startsWith('dev.wafflemaker.') || k.startsWith('com.docker.compose.'));
      for (const k of reserved) {
        delete labels[k];
        note({ service: s, key: `labels.${k}`, level: 'unsupported', message: 'a reserved label is not copied' });
      }
      if (Object.keys(labels).length) out.labels = labels;
    }
    if (def.user !== undefined) out.user = String(def.user);
    if (typeof def.working_dir === 'string') out.workdir = def.working_dir;
    if (def.stop_grace_period !== undefined) {
      const d = duration(def.stop_grace_period);
      if (d === undefined) note({ service: s, key: 'stop_grace_period', level: 'unsupported', message: `${JSON.stringify(def.stop_grace_period)} is not a duration`, fix: "write it as '10s'" });
      else out.stopGracePeriod = d;
    }

    // resources: deploy.resources.limits, or the old mem_limit / cpus
    const resources: Obj = {};
    const deploy = isObj(def.deploy) ? def.deploy : {};
    const limits = isObj(deploy.resources) && isObj(deploy.resources.limits) ? deploy.resources.limits : {};
    const mem = limits.memory ?? def.mem_limit;
    const cpus = limits.cpus ?? def.cpus;
    if (mem !== undefined) {
      const m = memory(mem);
      if (m === undefined) note({ service: s, key: 'deploy.resources.limits.memory', level: 'unsupported', message: `${JSON.stringify(mem)} is not a size`, fix: "write it as '256m'" });
      else resources.memory = m;
    }
    if (cpus !== undefined) {
      const c = Number(cpus);
      if (Number.isFinite(c) && c > 0) resources.cpus = c;
      else note({ service: s, key: 'deploy.resources.limits.cpus', level: 'unsupported', message: `${JSON.stringify(cpus)} is not a number of CPUs`, fix: 'write it as 0.5' });
    }
    if (Object.keys(resources).length) out.resources = resources;
    for (const k of Object.keys(deploy)) {
      if (k === 'resources') {
        const res = deploy.resources as Obj;
        for (const rk of Object.keys(res)) {
          if (rk !== 'limits') note({ service: s, key: `deploy.resources.${rk}`, level: 'unsupported', message: 'only limits are mapped', fix: 'remove it; `resources` sets limits' });
          else for (const lk of Object.keys(limits)) if (lk !== 'memory' && lk !== 'cpus') note({ service: s, key: `deploy.resources.limits.${lk}`, level: 'unsupported', message: 'not mapped', fix: 'only memory and cpus are limited' });
        }
      } else if (k === 'restart_policy' && isObj(deploy.restart_policy) && def.restart === undefined) {
        const rp = deploy.restart_policy;
        const cond = rp.condition === 'none' ? 'no' : rp.condition === 'on-failure' ? 'on-failure' : 'always';
        out.restart = cond === 'on-failure' && typeof rp.max_attempts === 'number' ? { policy: 'on-failure', maxRetries: rp.max_attempts } : cond;
      } else if (k === 'replicas' && Number(deploy.replicas) === 1) {
        continue;
      } else note({ service: s, key: `deploy.${k}`, level: 'unsupported', message: k === 'replicas' ? `replicas: ${String(deploy.replicas)}; one container per service here` : 'not mapped', fix: k === 'replicas' ? 'run one container, or define one service per replica' : 'remove it' });
    }

    if (def.pull_policy !== undefined) {
      const p = String(def.pull_policy);
      if (p === 'always') out.pull = 'always';
      else if (p === 'missing' || p === 'if_not_present') out.pull = 'missing';
      else note({ service: s, key: 'pull_policy', level: 'unsupported', message: `${p} is not mapped`, fix: "pull: 'missing' (the default) uses the local image; 'always' asks the registry on every plan" });
    }

    files[`services/${svc.name}.ts`] = serviceFile(svc, out, imports, usesSecrets, input.files.map((f) => path.basename(f.path)));
  }

  for (const n of [...unset].sort()) note({ key: `\${${n}}`, level: 'changed', message: `${n} is not set: it was replaced by an empty string (as Compose does)`, fix: `set ${n} (in the environment or .env) and import again` });

  const project = serviceNameOf(input.project ?? name ?? path.basename(path.resolve(baseDir)));
  files['waffle.config.ts'] = configFile(project, secrets, input.files.map((f) => path.basename(f.path)));
  return { project, files, secrets, services: Object.fromEntries(chosen.map((c) => [c.compose, c.name])), notes };
}

/** A Compose port (short or long form) → Wafflemaker port specs; undefined when it cannot be mapped. */
function portOf(p: unknown): unknown[] | undefined {
  if (typeof p === 'number') return [{ container: p }];
  if (isObj(p)) {
    const target = Number(p.target);
    if (!Number.isInteger(target)) return undefined;
    const published = p.published === undefined ? undefined : String(p.published);
    if (published !== undefined && !/^\d+$/.test(published)) return undefined;
    const spec: Obj = { container: target };
    if (published !== undefined) spec.host = Number(published);
    if (typeof p.host_ip === 'string') spec.hostIp = p.host_ip;
    if (p.protocol === 'udp') spec.protocol = 'udp';
    return [spec];
  }
  if (typeof p !== 'string') return undefined;
  // [host IP:][host port[-end]:]container port[-end][/protocol]; the IP is IPv4 or a bracketed IPv6.
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):)?(?:(\d+)(?:-(\d+))?:)?(\d+)(?:-(\d+))?(?:\/(tcp|udp))?$/.exec(p);
  if (!m) return undefined;
  const [, ip, host, hostEnd, container, containerEnd, proto] = m;
  if (hostEnd || containerEnd) {
    const c0 = Number(container);
    const c1 = Number(containerEnd ?? container);
    const h0 = host === undefined ? undefined : Number(host);
    const h1 = hostEnd === undefined ? h0 : Number(hostEnd);
    if (h0 !== undefined && h1! - h0 !== c1 - c0) return undefined;
    if (c1 - c0 > 100 || c1 < c0) return undefined;
    const out: unknown[] = [];
    for (let i = 0; i <= c1 - c0; i++) out.push(...portOf(`${ip ? `${ip}:` : ''}${h0 !== undefined ? `${h0 + i}:` : ''}${c0 + i}${proto ? `/${proto}` : ''}`)!);
    return out;
  }
  if (host === undefined) {
    // Only the container port: Compose publishes it on a random host port.
    const spec: Obj = { container: Number(container) };
    if (ip) spec.hostIp = ip;
    if (proto === 'udp') spec.protocol = 'udp';
    return [spec];
  }
  return [`${ip ? `${ip}:` : ''}${host}:${container}${proto === 'udp' ? '/udp' : ''}`];
}

type VolumeOut = { volume: { name: string; target: string; readOnly?: boolean } | { bind: string; target: string; readOnly?: boolean } } | { note: Omit<ImportNote, 'service' | 'key'> };

/** A Compose volume (short or long form) → a named volume or a bind mount. */
function volumeOf(v: unknown, baseDir: string, outDir: string): VolumeOut {
  let type: string;
  let source: string | undefined;
  let target: string | undefined;
  let readOnly = false;
  if (typeof v === 'string') {
    const parts = v.split(':');
    // A Windows drive letter is not split off (C:\data:/data).
    if (parts.length > 1 && /^[A-Za-z]$/.test(parts[0]!) && parts[1]!.startsWith('\\')) parts.splice(0, 2, `${parts[0]}:${parts[1]}`);
    if (parts.length === 1) {
      target = parts[0];
      source = undefined;
    } else {
      source = parts[0];
      target = parts[1];
      const mode = parts[2] ?? '';
      readOnly = mode.split(',').includes('ro');
    }
    type = source === undefined ? 'volume' : /^[./~]/.test(source) ? 'bind' : 'volume';
  } else if (isObj(v)) {
    type = String(v.type ?? 'volume');
    source = typeof v.source === 'string' ? v.source : undefined;
    target = typeof v.target === 'string' ? v.target : undefined;
    readOnly = v.read_only === true;
  } else return { note: { level: 'unsupported', message: `${JSON.stringify(v)} is not a volume`, fix: "write 'name:/path' or './dir:/path'" } };
  if (!target || !target.startsWith('/')) return { note: { level: 'unsupported', message: `${JSON.stringify(v)} has no absolute target`, fix: 'name where it goes in the container' } };
  if (type === 'tmpfs') return { note: { level: 'unsupported', message: `tmpfs ${target} is not mapped`, fix: 'use a named volume, or write to the container\'s own file system' } };
  if (type === 'bind') {
    let src = source!;
    if (src.startsWith('~')) return { note: { level: 'unsupported', message: `${src}: a home-relative bind is not mapped`, fix: 'use a path relative to the repository or an absolute one' } };
    // Relative to the Compose file's directory; written relative to the repository root when inside it.
    const abs = path.resolve(baseDir, src);
    const rel = path.relative(path.resolve(outDir), abs);
    src = rel === '' ? '.' : rel.startsWith('..') || path.isAbsolute(rel) ? abs : `./${rel.split(path.sep).join('/')}`;
    return { volume: { bind: src, target, ...(readOnly ? { readOnly: true } : {}) } };
  }
  if (type !== 'volume') return { note: { level: 'unsupported', message: `a ${type} mount is not mapped`, fix: 'use a named volume or a bind mount' } };
  if (!source) {
    return { note: { level: 'unsupported', message: `anonymous volume ${target} is not mapped`, fix: `name it: { name: 'data', target: '${target}' } keeps its data across deploys` } };
  }
  return { volume: { name: source, target, ...(readOnly ? { readOnly: true } : {}) } };
}

function serviceFile(svc: Service, def: Obj, imports: Map<string, string>, usesSecrets: boolean, from: string[]): string {
  const lines = ["import { defineService } from 'wafflemaker';"];
  if (usesSecrets) lines.push("import { secrets } from '../waffle.config';");
  for (const [id, file] of [...imports].sort(([, a], [, b]) => a.localeCompare(b))) lines.push(`import ${id} from '${file}';`);
  lines.push('');
  lines.push(`/** Imported from ${from.join(' + ')}, service "${svc.compose}". */`);
  const ordered: Obj = {};
  for (const k of ['image', 'entrypoint', 'command', 'env', 'ports', 'volumes', 'healthcheck', 'dependsOn', 'connects', 'restart', 'resources', 'labels', 'user', 'workdir', 'stopGracePeriod', 'pull']) {
    if (def[k] !== undefined) ordered[k] = def[k];
  }
  lines.push(`export default defineService(${ts(ordered)});`);
  return lines.join('\n') + '\n';
}

function configFile(project: string, secrets: Record<string, Record<string, string>>, from: string[]): string {
  const names = Object.keys(secrets).sort();
  const lines = [`import { defineConfig${names.length ? ', defineSecrets' : ''} } from 'wafflemaker';`, ''];
  lines.push(`// Imported from ${from.join(' + ')} by \`waffle import compose\`.`);
  if (names.length) {
    lines.push('// Values that looked like secrets are in the embedded store (secrets/<name>.age, encrypted for');
    lines.push('// secrets/recipients.txt), not in these files: `waffle secrets list`, `waffle secrets set NAME.KEY`.');
    lines.push(`export const secrets = defineSecrets(${ts(Object.fromEntries(names.map((n) => [n, { provider: 'embedded', keys: Object.keys(secrets[n]!).sort() }])))});`);
    lines.push('');
  }
  lines.push(`export default defineConfig(${ts({ project, ...(names.length ? { secrets: new Code('secrets') } : {}) })});`);
  return lines.join('\n') + '\n';
}
