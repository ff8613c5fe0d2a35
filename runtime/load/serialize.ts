/**
 * Turns evaluated configuration values into plain, JSON-serialisable data.
 * Runs inside the evaluation child (see child.ts); pure, no I/O.
 *
 * Services made by defineService become `ServiceRefData`, `service.url()` becomes `ServiceUrlData`,
 * a secret reference (`secrets.db.url`) becomes `SecretRefData` (names only: there is no value to
 * serialise), a `secretString` template becomes `SecretStringData` (its text and references in order)
 * and the collection from `defineSecrets` becomes its declarations.
 * Anything that is not plain data (functions, symbols, bigint, class instances, NaN, circular
 * structures, `undefined` inside arrays) is reported with its field path. `undefined` object
 * properties are dropped.
 */
import { isService, isServiceUrl, type Service } from '../../define/index.ts';
import { isSecretCollection, isSecretRef, isSecretString, secretDecls, secretGroupName } from '../../define/secrets.ts';
import type { SecretRefData, SecretStringData, ServiceRefData, ServiceUrlData } from '../model.ts';

export interface SerializeIssue {
  /** Field path such as `env.BUILD` or `ports[1]`; empty for the value itself. */
  path: string;
  message: string;
}

export interface SerializeContext {
  /** Names of the project's services, by Service object. */
  names: Map<object, string>;
  /** `definedAt` of a service as it should appear in the data (relative to the root), or undefined. */
  definedAt(service: Service): string | undefined;
}

const DROP = Symbol('drop');
const IDENT = /^[A-Za-z_$][\w$]*$/;

export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  if (IDENT.test(key)) return base ? `${base}.${key}` : key;
  return `${base}[${JSON.stringify(key)}]`;
}

function describe(value: unknown): string {
  if (typeof value === 'function') return `a function${value.name ? ` (${value.name})` : ''}`;
  if (typeof value === 'symbol') return `a symbol (${String(value)})`;
  if (typeof value === 'bigint') return `a bigint (${String(value)}n)`;
  if (typeof value === 'object' && value !== null) {
    const ctor = (Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null)?.constructor?.name;
    return ctor ? `a ${ctor} object` : 'an object with a custom prototype';
  }
  return String(value);
}

export function serviceRef(service: Service, ctx: SerializeContext): ServiceRefData {
  const ref: ServiceRefData = { $ref: 'service', service: ctx.names.get(service) ?? null };
  const at = ctx.definedAt(service);
  if (at !== undefined) ref.definedAt = at;
  return ref;
}

/** Converts `value` to plain data, appending problems to `issues`. */
export function toPlainData(value: unknown, ctx: SerializeContext, issues: SerializeIssue[], path = ''): unknown {
  const out = walk(value, path, ctx, issues, new Set());
  return out === DROP ? undefined : out;
}

function walk(value: unknown, path: string, ctx: SerializeContext, issues: SerializeIssue[], seen: Set<object>): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'undefined':
      return DROP;
    case 'number':
      if (!Number.isFinite(value)) {
        issues.push({ path, message: `is ${String(value)}, which is not a finite number` });
        return DROP;
      }
      return value;
    case 'function':
    case 'symbol':
    case 'bigint':
      issues.push({ path, message: `is ${describe(value)}, which is not plain data` });
      return DROP;
  }
  if (value === null) return null;
  const obj = value as object;
  if (isSecretRef(obj)) {
    const ref: SecretRefData = { $ref: 'secret', secret: String(obj.secret), key: String(obj.key) };
    return ref;
  }
  if (isSecretString(obj)) {
    // Text and parts interleaved in order; empty text is dropped. The parts are checked by validation.
    const parts: unknown[] = [];
    const strings = Array.isArray(obj.strings) ? obj.strings : [];
    const values = Array.isArray(obj.values) ? obj.values : [];
    strings.forEach((text, i) => {
      if (typeof text === 'string' && text !== '') parts.push(text);
      if (i >= values.length) return;
      const p = joinPath(joinPath(path, 'secretString'), i);
      if (values[i] === undefined) {
        issues.push({ path: p, message: 'is undefined; interpolate a secret reference (secrets.<name>.<key>), a string, a number or a service url()' });
        return;
      }
      const v = walk(values[i], p, ctx, issues, seen);
      if (v !== DROP) parts.push(v);
    });
    const out: SecretStringData = { $ref: 'secret-string', parts };
    return out;
  }
  const group = secretGroupName(obj);
  if (group !== undefined) {
    issues.push({ path, message: `is the whole secret "${group}"; reference one of its keys, e.g. secrets.${group}.<key>` });
    return DROP;
  }
  if (isSecretCollection(obj)) return walk(secretDecls(obj) ?? {}, path, ctx, issues, seen);
  if (isService(obj)) return serviceRef(obj, ctx);
  if (isServiceUrl(obj)) {
    const target = (obj as { service?: unknown }).service;
    const url: ServiceUrlData = {
      $ref: 'service-url',
      service: isService(target) ? (ctx.names.get(target) ?? null) : null,
      path: String(obj.path),
      scheme: String(obj.scheme),
    };
    if (isService(target)) {
      const at = ctx.definedAt(target);
      if (at !== undefined) url.definedAt = at;
    }
    const port = (obj as { port?: unknown }).port;
    if (port !== undefined) url.port = port as number;
    return url;
  }
  if (seen.has(obj)) {
    issues.push({ path, message: 'refers back to an object that contains it (a circular structure)' });
    return DROP;
  }
  if (Array.isArray(obj)) {
    seen.add(obj);
    const arr: unknown[] = [];
    for (let i = 0; i < obj.length; i++) {
      const p = joinPath(path, i);
      if (!(i in obj) || obj[i] === undefined) {
        issues.push({
          path: p,
          message:
            'is undefined (an empty slot in an array; if it is an imported service, the two files import each other, ' +
            'and such a cycle cannot work: keep the reference on one side only, a link works in both directions)',
        });
        continue;
      }
      const v = walk(obj[i], p, ctx, issues, seen);
      if (v !== DROP) arr.push(v);
    }
    seen.delete(obj);
    return arr;
  }
  const proto = Object.getPrototypeOf(obj);
  if (proto !== Object.prototype && proto !== null) {
    issues.push({ path, message: `is ${describe(obj)}, which is not plain data` });
    return DROP;
  }
  seen.add(obj);
  const res: Record<string, unknown> = {};
  for (const key of Object.keys(obj)) {
    const v = walk((obj as Record<string, unknown>)[key], joinPath(path, key), ctx, issues, seen);
    if (v !== DROP) res[key] = v;
  }
  seen.delete(obj);
  return res;
}

/** `services/api.ts` → `api`: the default name of the service defined in a file. */
export { serviceNameFromFile } from '../naming.ts';
