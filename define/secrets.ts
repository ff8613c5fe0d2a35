/**
 * Secrets in the authoring API: declared once in `waffle.config.ts`, referenced as values in services.
 *
 * @example
 * // waffle.config.ts
 * import { defineConfig, defineSecrets, generate } from 'wafflemaker';
 * export const secrets = defineSecrets({
 *   db: { provider: 'embedded', keys: ['url', 'password'] },
 *   session: { provider: 'embedded', keys: ['key'], generate: { key: generate({ format: 'base64', length: 32 }) } },
 *   pg: { provider: 'vault', engine: 'database', role: 'api', keys: ['username', 'password'] },
 * });
 * export default defineConfig({ project: 'acme', secrets });
 *
 * // services/api.ts
 * import { secrets } from '../waffle.config';
 * export default defineService({
 *   image: 'ghcr.io/acme/api:1',
 *   env: { DATABASE_URL: secrets.db.url },
 *   files: { '/run/secrets/session_key': secrets.session.key },
 * });
 *
 * A reference is an object, not a string: the value is fetched only at apply time, so turning a
 * reference into text while the configuration is evaluated (template literal, `+`, `String()`,
 * `JSON.stringify`) throws with a message saying how to use it. Pure: no I/O.
 */
import { WAFFLE_BRAND } from './brand.js';

/** Symbol under which a secret collection keeps its declarations (plain data, no values). */
export const SECRET_DECLS: unique symbol = Symbol.for('wafflemaker.secret-decls') as never;

/** Alphabet of a generated value. */
export type SecretFormat = 'alphanumeric' | 'base64' | 'hex';

/** How to generate a value: created once (first apply or `waffle secrets generate`), stored, never regenerated unless asked. */
export interface GenerateOptions {
  format: SecretFormat;
  /** Characters of the value (1–4096). */
  length: number;
}

/** Declares a generated key: `generate: { key: generate({ format: 'base64', length: 32 }) }`. */
export function generate(options: GenerateOptions): GenerateOptions {
  return { format: options.format, length: options.length };
}

/** A secret kept in the repository, age-encrypted (`secrets/<name>.age`); set values with `waffle secrets set`. */
export interface EmbeddedSecretInput {
  provider: 'embedded';
  /** The keys this secret provides: what `secrets.<name>.<key>` may name. */
  keys: readonly string[];
  /** Keys whose value waffle generates on first apply and stores encrypted. */
  generate?: { readonly [key: string]: GenerateOptions };
}

/** A Vault KV v2 secret: `<mount>/data/<path>`. */
export interface VaultKvSecretInput {
  provider: 'vault';
  engine: 'kv';
  /** The secret's path under the mount, for example `'app/config'`. */
  path: string;
  /** KV v2 mount. Default `'secret'`. */
  mount?: string;
  keys: readonly string[];
  /** Keys generated on first apply and written to Vault. */
  generate?: { readonly [key: string]: GenerateOptions };
}

/** Dynamic database credentials (Vault's database secrets engine): one lease per service. */
export interface VaultDatabaseSecretInput {
  provider: 'vault';
  engine: 'database';
  /** The database engine's role. */
  role: string;
  /** Mount of the database engine. Default `'database'`. */
  mount?: string;
  /** Vault issues a username and a password. */
  keys: readonly ('username' | 'password')[];
  /** Create the role when it is missing, with these parameters (Vault's role API: `db_name`, `creation_statements`, ...). */
  createRole?: { readonly [param: string]: unknown };
}

/** Dynamic AWS credentials (Vault's AWS secrets engine): one pair per role per service. */
export interface VaultAwsSecretInput {
  provider: 'vault';
  engine: 'aws';
  /** The AWS engine's role. */
  role: string;
  /** Mount of the AWS engine. Default `'aws'`. */
  mount?: string;
  keys: readonly ('accessKeyId' | 'secretAccessKey' | 'sessionToken')[];
}

export type SecretInput = EmbeddedSecretInput | VaultKvSecretInput | VaultDatabaseSecretInput | VaultAwsSecretInput;

/** A reference to one key of one declared secret. Use it as a whole value in `env` or `files`. */
export interface SecretRef<Name extends string = string, Key extends string = string> {
  readonly [WAFFLE_BRAND]: 'secret';
  /** The secret's name (`db` in `secrets.db.url`). */
  readonly secret: Name;
  /** The key (`url` in `secrets.db.url`). */
  readonly key: Key;
}

/** What `service.url()` returns, as far as {@link secretString} is concerned (the full type is `ServiceUrl`). */
export interface ServiceUrlLike {
  readonly [WAFFLE_BRAND]: 'service-url';
}

/** What {@link secretString} may interpolate: secret references, plain text and numbers, and service URLs. */
export type SecretStringPart = SecretRef | string | number | ServiceUrlLike;

/**
 * A secret value built from secret references and plain text, made with the {@link secretString} tag.
 * Like a reference, it holds no value: the parts are filled in at apply time, and the whole string is
 * secret (never in plans, events, labels or logs).
 */
export interface SecretString {
  readonly [WAFFLE_BRAND]: 'secret-string';
  /** The literal text between the interpolations (one more than `values`). */
  readonly strings: readonly string[];
  /** The interpolated parts, in order. */
  readonly values: readonly SecretStringPart[];
}

/** The keys of one secret, each a {@link SecretRef}. */
export type SecretGroup<Name extends string, Keys extends string> = { readonly [K in Keys]: SecretRef<Name, K> };

/** What {@link defineSecrets} returns: every declared secret with its keys. Pass it to `defineConfig({ secrets })`. */
export interface SecretCollection {
  readonly [WAFFLE_BRAND]: 'secrets';
}

type KeysOf<D> = D extends { keys: readonly (infer K)[] } ? K & string : never;

/** Typed secrets: `secrets.db.url` type-checks, `secrets.db.pasword` and `secrets.dbb` do not. */
export type Secrets<T> = SecretCollection & { readonly [N in keyof T & string]: SecretGroup<N, KeysOf<T[N]>> };

type FieldsOf<D> = D extends { provider: 'embedded' }
  ? keyof EmbeddedSecretInput
  : D extends { engine: 'kv' }
    ? keyof VaultKvSecretInput
    : D extends { engine: 'database' }
      ? keyof VaultDatabaseSecretInput
      : D extends { engine: 'aws' }
        ? keyof VaultAwsSecretInput
        : string;

/** Rejects misspelt fields and generated keys that are not among `keys`. */
type CheckDecls<T> = {
  [N in keyof T]: {
    [F in keyof T[N]]: F extends FieldsOf<T[N]>
      ? F extends 'generate'
        ? { [G in keyof T[N][F]]: G extends KeysOf<T[N]> ? GenerateOptions : never }
        : T[N][F]
      : never;
  };
};

/** Vault's address and login, in `defineConfig({ vault })`. Secrets themselves are never written here. */
export interface VaultSettings {
  /** For example `'https://vault.example.com:8200'`. */
  address: string;
  /** Vault Enterprise namespace. */
  namespace?: string;
  /** How waffle logs in. The credentials come from the environment of `waffle`, never from the repository. */
  auth:
    | {
        /** A token from an environment variable; renewed with renew-self. */
        token: { env: string };
      }
    | {
        /** AppRole login: the role id (not secret) and the environment variable holding the secret id. */
        approle: { roleId: string; secretIdEnv: string; mount?: string };
      };
  /** Renew leases when this fraction of their TTL has passed. Default 0.5. */
  renewFraction?: number;
}

/** A declared secret as plain data (what `waffle check --json` shows). */
export interface SecretDeclData {
  name: string;
  provider: 'embedded' | 'vault';
  engine?: 'kv' | 'database' | 'aws';
  role?: string;
  mount?: string;
  path?: string;
  keys: string[];
  generate?: Record<string, GenerateOptions>;
  createRole?: Record<string, unknown>;
}

function usage(what: string, example: string): string {
  return (
    `${what} is a secret reference, not a string: its value is fetched only at apply time, so it cannot be ` +
    `turned into text while the configuration is evaluated (no template literals, +, String() or JSON). ` +
    `Use it as a whole value: env: { NAME: ${example} } or files: { '/run/secrets/name': ${example} }. ` +
    `To build a longer string (a URL with a password inside), use the secretString tag: ` +
    `secretString\`postgres://app:\${${example}}@db:5432/app\` (import { secretString } from 'wafflemaker').`
  );
}

const SECRET_NAME = Symbol.for('wafflemaker.secret-name');

const PASSIVE = new Set(['then', 'constructor', 'nodeType', 'asymmetricMatch', 'toJSON', 'inspect']);

function passive(prop: string): boolean {
  return PASSIVE.has(prop) || prop.startsWith('@@') || prop.startsWith('$$') || prop.startsWith('__');
}

function thrower(message: string): () => never {
  return () => {
    throw new TypeError(message);
  };
}

function makeRef(secret: string, key: string): SecretRef {
  const label = `secrets.${secret}.${key}`;
  const fail = thrower(usage(label, label));
  const ref = Object.create(null) as Record<PropertyKey, unknown>;
  Object.defineProperties(ref, {
    [WAFFLE_BRAND]: { value: 'secret', enumerable: false },
    secret: { value: secret, enumerable: true },
    key: { value: key, enumerable: true },
    toString: { value: fail },
    valueOf: { value: fail },
    toJSON: { value: fail },
    [Symbol.toPrimitive]: { value: fail },
    [Symbol.for('nodejs.util.inspect.custom')]: { value: () => `[SecretRef ${label}]` },
  });
  return Object.freeze(ref) as unknown as SecretRef;
}

function makeGroup(name: string, keys: string[]): object {
  const label = `secrets.${name}`;
  const target = Object.create(null) as Record<PropertyKey, unknown>;
  for (const k of keys) target[k] = makeRef(name, k);
  const fail = thrower(usage(label, `${label}.${keys[0] ?? 'key'}`).replace('is a secret reference', `is a whole secret (keys: ${keys.join(', ')})`));
  Object.defineProperty(target, WAFFLE_BRAND, { value: 'secret-group' });
  Object.defineProperty(target, SECRET_NAME, { value: name });
  Object.defineProperty(target, Symbol.toPrimitive, { value: fail });
  Object.defineProperty(target, 'toJSON', { value: fail });
  Object.defineProperty(target, Symbol.for('nodejs.util.inspect.custom'), { value: () => `[Secret ${label}: ${keys.join(', ')}]` });
  Object.freeze(target);
  return new Proxy(target, {
    get(t, prop) {
      if (typeof prop === 'symbol' || prop in t) return Reflect.get(t, prop);
      if (passive(prop)) return undefined;
      throw new TypeError(
        `secrets.${name} has no key "${prop}"; its keys are ${keys.map((k) => `"${k}"`).join(', ')}. ` +
          `Add "${prop}" to keys of "${name}" in defineSecrets (waffle.config.ts), or use one of those keys.`,
      );
    },
  });
}

/**
 * Declares the project's secrets: name → where it comes from and which keys it provides. Export the
 * result from waffle.config.ts (`export const secrets = defineSecrets({...})`), pass it to
 * `defineConfig({ secrets })`, and import it in services to reference keys as values.
 */
export function defineSecrets<const T extends { readonly [name: string]: SecretInput }>(decls: T & CheckDecls<T>): Secrets<T> {
  const data: Record<string, SecretDeclData> = {};
  const groups: Record<string, object> = Object.create(null);
  for (const name of Object.keys(decls)) {
    const input = (decls as Record<string, unknown>)[name];
    const d: SecretDeclData = { ...(typeof input === 'object' && input !== null ? (input as object) : {}), name } as SecretDeclData;
    if (Array.isArray(d.keys)) d.keys = [...d.keys];
    data[name] = d;
    const keys = Array.isArray(d.keys) ? d.keys.filter((k): k is string => typeof k === 'string') : [];
    groups[name] = makeGroup(name, keys);
  }
  const names = Object.keys(data);
  const target = groups;
  Object.defineProperty(target, WAFFLE_BRAND, { value: 'secrets' });
  Object.defineProperty(target, SECRET_DECLS, { value: data });
  Object.defineProperty(target, Symbol.toPrimitive, {
    value: thrower('`secrets` is the collection of declared secrets; reference one key as a value, e.g. secrets.db.url'),
  });
  Object.freeze(target);
  return new Proxy(target, {
    get(t, prop) {
      if (typeof prop === 'symbol' || prop in t) return Reflect.get(t, prop);
      if (passive(prop)) return undefined;
      throw new TypeError(
        `no secret named "${prop}" is declared; declared: ${names.length ? names.map((n) => `"${n}"`).join(', ') : 'none'}. ` +
          `Declare it in defineSecrets in waffle.config.ts, or use one of those names.`,
      );
    },
  }) as unknown as Secrets<T>;
}

/**
 * Builds a secret value from secret references and plain text: a tagged template. Use the result
 * wherever a secret reference goes (`env`, `files`). Each reference is filled in at apply time, as a
 * reference on its own would be; the whole string and each part stay out of plans, events, labels and
 * logs. Only secret references, strings, numbers and service URLs (`api.url()`) may be interpolated,
 * so a misspelt key is a compile error. Parts from one dynamic secret (a Vault database role's
 * `username` and `password`) come from one lease.
 *
 * @example
 * env: { DATABASE_URL: secretString`postgres://${secrets.pg.username}:${secrets.pg.password}@postgres:5432/portal` }
 */
export function secretString(strings: TemplateStringsArray, ...values: SecretStringPart[]): SecretString {
  const label = 'a secretString`…` value';
  const fail = thrower(
    `${label} is a secret value built at apply time, not a string: it cannot be turned into text while the ` +
      `configuration is evaluated (no template literals, +, String() or JSON). Use it as a whole value: ` +
      `env: { NAME: secretString\`…\` } or files: { '/run/secrets/name': secretString\`…\` }.`,
  );
  const out = Object.create(null) as Record<PropertyKey, unknown>;
  Object.defineProperties(out, {
    [WAFFLE_BRAND]: { value: 'secret-string', enumerable: false },
    strings: { value: Object.freeze([...strings]), enumerable: true },
    values: { value: Object.freeze([...values]), enumerable: true },
    toString: { value: fail },
    valueOf: { value: fail },
    toJSON: { value: fail },
    [Symbol.toPrimitive]: { value: fail },
    [Symbol.for('nodejs.util.inspect.custom')]: { value: () => `[SecretString ${values.length} part${values.length === 1 ? '' : 's'}]` },
  });
  return Object.freeze(out) as unknown as SecretString;
}

/** True when `value` was made by {@link secretString} (in any copy of this module). */
export function isSecretString(value: unknown): value is SecretString {
  return typeof value === 'object' && value !== null && (value as SecretString)[WAFFLE_BRAND] === 'secret-string';
}

/** True when `value` is a reference like `secrets.db.url` (in any copy of this module). */
export function isSecretRef(value: unknown): value is SecretRef {
  return typeof value === 'object' && value !== null && (value as SecretRef)[WAFFLE_BRAND] === 'secret';
}

/** True when `value` is a whole secret such as `secrets.db` (a mistake where a key is expected). */
export function isSecretGroup(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[WAFFLE_BRAND] === 'secret-group';
}

/** The name of a whole secret (`db` for `secrets.db`), or undefined. */
export function secretGroupName(value: unknown): string | undefined {
  return isSecretGroup(value) ? String((value as Record<symbol, unknown>)[SECRET_NAME]) : undefined;
}

/** True when `value` is what {@link defineSecrets} returned. */
export function isSecretCollection(value: unknown): value is SecretCollection {
  return typeof value === 'object' && value !== null && (value as SecretCollection)[WAFFLE_BRAND] === 'secrets';
}

/** The declarations of a collection (plain data), or undefined when `value` is not one. */
export function secretDecls(value: unknown): Record<string, SecretDeclData> | undefined {
  return isSecretCollection(value) ? ((value as unknown as Record<symbol, Record<string, SecretDeclData>>)[SECRET_DECLS] ?? undefined) : undefined;
}
