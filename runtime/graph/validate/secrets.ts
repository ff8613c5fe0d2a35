/**
 * Validation of the secret parts of the configuration: the declarations
 * (`defineConfig({ secrets })`), the Vault settings, and each service's secret references and
 * `secretString` templates in `env` and `files`. Pure. A JavaScript user (or a stale type-check) can still name an undeclared secret or
 * key: that is a Problem naming the file, the service and the fix, before anything runs.
 */
import path from 'node:path';
import type { SecretDecl, SecretKeySpec, SecretTemplateSpec, SecretValueSpec, VaultSettingsSpec } from '../../model.ts';
import { isObject, show } from '../parse.ts';
import type { Report } from '../report.ts';
import { suggest } from '../suggest.ts';

const NAME_RE = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
const KEY_RE = /^[A-Za-z_][A-Za-z0-9_-]{0,127}$/;
/** Keys that would clash with how JavaScript treats objects (`then` makes a value look like a promise). */
const RESERVED_KEYS = new Set(['then', 'toJSON', 'toString', 'valueOf', 'constructor', 'inspect']);
const FORMATS = ['alphanumeric', 'base64', 'hex'];
const DB_KEYS = ['username', 'password'];
const AWS_KEYS = ['accessKeyId', 'secretAccessKey', 'sessionToken'];
const FIELDS: Record<string, string[]> = {
  embedded: ['name', 'provider', 'keys', 'generate'],
  kv: ['name', 'provider', 'engine', 'path', 'mount', 'keys', 'generate'],
  database: ['name', 'provider', 'engine', 'role', 'mount', 'keys', 'createRole'],
  aws: ['name', 'provider', 'engine', 'role', 'mount', 'keys'],
};

const list = (xs: string[]) => xs.map((x) => `"${x}"`).join(', ');

function unknownFields(obj: Record<string, unknown>, known: string[], where: string, report: Report, what: string): void {
  for (const k of Object.keys(obj)) {
    if (known.includes(k)) continue;
    const guess = suggest(k, known);
    report(`${where}.${k}`, `unknown field \`${k}\` in ${what}` + (guess ? `; did you mean \`${guess}\`?` : ''), guess ? `rename it to \`${guess}\`` : `remove it; known fields: ${known.filter((f) => f !== 'name').join(', ')}`);
  }
}

/** Validates `config.secrets` into declarations by name. */
export function checkSecretDecls(value: unknown, report: Report): Record<string, SecretDecl> {
  const out: Record<string, SecretDecl> = {};
  if (value === undefined) return out;
  if (!isObject(value)) {
    report('secrets', `secrets must be what defineSecrets returns, got ${show(value)}`, "export const secrets = defineSecrets({ db: { provider: 'embedded', keys: ['url'] } }) and pass it: defineConfig({ ..., secrets })");
    return out;
  }
  for (const name of Object.keys(value)) {
    const w = `secrets.${name}`;
    const d = value[name];
    if (!NAME_RE.test(name)) {
      report(w, `secret name ${show(name)} is not valid`, 'use letters, digits, _ and -, starting with a letter (it names the file secrets/<name>.age)');
      continue;
    }
    if (!isObject(d)) {
      report(w, `a secret declaration must be an object, got ${show(d)}`, "for example db: { provider: 'embedded', keys: ['url'] }");
      continue;
    }
    const provider = d.provider;
    if (provider !== 'embedded' && provider !== 'vault') {
      report(`${w}.provider`, `provider ${show(provider)} must be 'embedded' or 'vault'`, "provider: 'embedded' keeps the secret age-encrypted in the repository");
      continue;
    }
    let ok = true;
    const bad: Report = (...args) => {
      ok = false;
      report(...args);
    };
    const decl: SecretDecl = { name, provider, keys: [] };
    let kind: string = 'embedded';
    if (provider === 'vault') {
      const engine = d.engine;
      if (engine !== 'kv' && engine !== 'database' && engine !== 'aws') {
        bad(`${w}.engine`, `engine ${show(engine)} must be 'kv', 'database' or 'aws'`, "for example engine: 'kv', path: 'app/config'");
        continue;
      }
      decl.engine = engine;
      kind = engine;
      if (engine === 'kv') {
        if (typeof d.path !== 'string' || d.path.trim() === '' || d.path.startsWith('/')) {
          bad(`${w}.path`, d.path === undefined ? 'a kv secret needs `path`' : `path ${show(d.path)} must be the secret's path under the KV mount (no leading /)`, "for example path: 'app/config'");
        }
        else decl.path = d.path;
      } else if (typeof d.role !== 'string' || d.role.trim() === '') {
        bad(`${w}.role`, d.role === undefined ? `a ${engine} secret needs \`role\`` : `role ${show(d.role)} must name the ${engine} engine's role`, "for example role: 'api'");
      } else decl.role = d.role;
      if (d.mount !== undefined) {
        if (typeof d.mount !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_./-]*$/.test(d.mount)) bad(`${w}.mount`, `mount ${show(d.mount)} is not a Vault mount path`, `for example mount: '${engine === 'kv' ? 'secret' : engine}'`);
        else decl.mount = d.mount.replace(/\/+$/, '');
      }
      if (d.createRole !== undefined && engine === 'database') {
        if (!isObject(d.createRole)) bad(`${w}.createRole`, 'createRole must be an object of role parameters', "for example createRole: { db_name: 'pg', creation_statements: ['...'] }");
        else decl.createRole = d.createRole;
      }
    }
    unknownFields(d, FIELDS[kind]!, w, bad, `the declaration of secret "${name}"`);

    const keys = d.keys;
    if (!Array.isArray(keys) || keys.length === 0) {
      bad(`${w}.keys`, 'keys must be a non-empty list of key names', "for example keys: ['url', 'password']");
    } else {
      const seen = new Set<string>();
      keys.forEach((k, i) => {
        if (typeof k !== 'string' || !KEY_RE.test(k)) return bad(`${w}.keys[${i}]`, `key ${show(k)} is not valid`, 'use letters, digits, _ and -, not starting with a digit');
        if (RESERVED_KEYS.has(k)) return bad(`${w}.keys[${i}]`, `key "${k}" is reserved`, 'choose another name');
        if (seen.has(k)) return bad(`${w}.keys[${i}]`, `key "${k}" is listed twice`, 'keep one');
        const allowed = kind === 'database' ? DB_KEYS : kind === 'aws' ? AWS_KEYS : undefined;
        if (allowed && !allowed.includes(k)) return bad(`${w}.keys[${i}]`, `the ${kind} engine provides ${list(allowed)}, not "${k}"`, `use keys among ${list(allowed)}`);
        seen.add(k);
        decl.keys.push(k);
      });
    }

    if (d.generate !== undefined && (kind === 'embedded' || kind === 'kv')) {
      if (!isObject(d.generate)) bad(`${w}.generate`, `generate must be an object: key → generate({...})`, "generate: { key: generate({ format: 'base64', length: 32 }) }");
      else {
        const gen: NonNullable<SecretDecl['generate']> = {};
        for (const [k, g] of Object.entries(d.generate)) {
          const gw = `${w}.generate.${k}`;
          if (Array.isArray(keys) && !keys.includes(k)) {
            bad(gw, `"${k}" is generated but is not among the keys of "${name}" (${list(keys.filter((x): x is string => typeof x === 'string'))})`, `add "${k}" to keys, or remove it from generate`);
            continue;
          }
          if (!isObject(g) || !FORMATS.includes(g.format as string)) {
            bad(gw, `format ${show(isObject(g) ? g.format : g)} must be ${FORMATS.map((f) => `'${f}'`).join(', ')}`, "generate({ format: 'base64', length: 32 })");
            continue;
          }
          if (typeof g.length !== 'number' || !Number.isInteger(g.length) || g.length < 1 || g.length > 4096) {
            bad(`${gw}.length`, `length ${show(g.length)} must be a whole number in 1..4096`, 'for example length: 32');
            continue;
          }
          gen[k] = { format: g.format as 'alphanumeric' | 'base64' | 'hex', length: g.length };
        }
        if (Object.keys(gen).length > 0) decl.generate = gen;
      }
    }
    if (ok) out[name] = decl;
  }
  return out;
}

/** Validates `config.vault`. */
export function checkVaultSettings(value: unknown, report: Report): VaultSettingsSpec | undefined {
  if (value === undefined) return undefined;
  const example = "vault: { address: 'https://vault.example.com:8200', auth: { token: { env: 'VAULT_TOKEN' } } }";
  if (!isObject(value)) {
    report('vault', `vault must be an object, got ${show(value)}`, example);
    return undefined;
  }
  unknownFields(value, ['address', 'namespace', 'auth', 'renewFraction'], 'vault', report, 'vault');
  let ok = true;
  const bad: Report = (...a) => {
    ok = false;
    report(...a);
  };
  const address = value.address;
  if (typeof address !== 'string' || !/^https?:\/\/[^\s/]+/.test(address)) bad('vault.address', `address ${show(address)} must be an http(s) URL`, example);
  if (value.namespace !== undefined && (typeof value.namespace !== 'string' || value.namespace === '')) bad('vault.namespace', 'namespace must be a non-empty string', "namespace: 'team-a'");
  let renewFraction = 0.5;
  if (value.renewFraction !== undefined) {
    const f = value.renewFraction;
    if (typeof f !== 'number' || !(f > 0 && f < 1)) bad('vault.renewFraction', `renewFraction ${show(f)} must be a number between 0 and 1`, 'for example renewFraction: 0.5 (renew at half the TTL)');
    else renewFraction = f;
  }
  let auth: VaultSettingsSpec['auth'] | undefined;
  const a = value.auth;
  const envRe = /^[A-Za-z_][A-Za-z0-9_]*$/;
  if (!isObject(a) || (a.token === undefined) === (a.approle === undefined)) {
    bad('vault.auth', 'auth needs exactly one of `token` or `approle`', "auth: { token: { env: 'VAULT_TOKEN' } } or auth: { approle: { roleId: '...', secretIdEnv: 'VAULT_SECRET_ID' } }");
  } else if (a.token !== undefined) {
    const t = a.token;
    if (!isObject(t) || typeof t.env !== 'string' || !envRe.test(t.env)) bad('vault.auth.token', 'token must name the environment variable that holds it', "token: { env: 'VAULT_TOKEN' } (never the token itself)");
    else auth = { method: 'token', tokenEnv: t.env };
  } else {
    const r = a.approle;
    if (!isObject(r) || typeof r.roleId !== 'string' || r.roleId === '' || typeof r.secretIdEnv !== 'string' || !envRe.test(r.secretIdEnv)) {
      bad('vault.auth.approle', 'approle needs roleId and secretIdEnv (the environment variable holding the secret id)', "approle: { roleId: 'b5b9…', secretIdEnv: 'VAULT_SECRET_ID' }");
    } else auth = { method: 'approle', roleId: r.roleId, secretIdEnv: r.secretIdEnv, mount: typeof r.mount === 'string' && r.mount ? r.mount : 'approle' };
  }
  if (!ok || !auth || typeof address !== 'string') return undefined;
  const out: VaultSettingsSpec = { address: address.replace(/\/+$/, ''), auth, renewFraction };
  if (typeof value.namespace === 'string') out.namespace = value.namespace;
  return out;
}

/** Secrets from Vault need `vault` settings: names the secrets that come from Vault when none are configured. */
export function checkVaultConfigured(secrets: unknown, vault: unknown, report: Report): void {
  const raw = isObject(secrets) ? secrets : {};
  const vaultUsers = Object.keys(raw).filter((n) => {
    const d = raw[n];
    return isObject(d) && d.provider === 'vault';
  });
  if (vaultUsers.length > 0 && vault === undefined) {
    report(
      'vault',
      `secret${vaultUsers.length > 1 ? 's' : ''} ${vaultUsers.map((n) => `"${n}"`).join(', ')} come${vaultUsers.length > 1 ? '' : 's'} from Vault, but no vault is configured`,
      "add vault: { address: 'https://vault.example.com:8200', auth: { token: { env: 'VAULT_TOKEN' } } } to defineConfig",
    );
  }
}

export function isSecretRefData(v: unknown): v is { $ref: 'secret'; secret: string; key: string } {
  return isObject(v) && v.$ref === 'secret';
}

/**
 * Checks one reference against the declarations; returns it when valid. `configFile` names where
 * secrets are declared (for the fix).
 */
export function checkSecretRef(
  v: { secret?: unknown; key?: unknown },
  where: string,
  decls: Record<string, SecretDecl>,
  configFile: string,
  report: Report,
  declared: boolean,
): { secret: string; key: string } | undefined {
  const secret = String(v.secret);
  const key = String(v.key);
  const decl = decls[secret];
  if (!decl) {
    const names = Object.keys(decls);
    if (!declared) {
      report(where, `secret "${secret}" is used, but ${configFile} declares no secrets`, `export const secrets = defineSecrets({ ${secret}: { provider: 'embedded', keys: ['${key}'] } }) in ${configFile} and pass it: defineConfig({ ..., secrets })`);
      return undefined;
    }
    const guess = suggest(secret, names);
    report(
      where,
      `secret "${secret}" is not declared in ${configFile} (declared: ${names.length ? list(names) : 'none'})` + (guess ? `; did you mean "${guess}"?` : ''),
      guess ? `write secrets.${guess}.${key}` : `declare "${secret}" in defineSecrets in ${configFile}`,
    );
    return undefined;
  }
  if (!decl.keys.includes(key)) {
    const guess = suggest(key, decl.keys);
    report(
      where,
      `secret "${secret}" has no key "${key}" (keys: ${list(decl.keys)})` + (guess ? `; did you mean "${guess}"?` : ''),
      guess ? `write secrets.${secret}.${guess}` : `add "${key}" to keys of "${secret}" in ${configFile}`,
    );
    return undefined;
  }
  return { secret, key };
}

export function isSecretStringData(v: unknown): v is { $ref: 'secret-string'; parts: unknown } {
  return isObject(v) && v.$ref === 'secret-string';
}

/** What a template needs to check its parts; `resolveUrl` turns a service URL into text (absent: not allowed there). */
export interface TemplateContext {
  decls: Record<string, SecretDecl>;
  declared: boolean;
  configFile: string;
  resolveUrl?: (part: Record<string, unknown>, where: string) => string | undefined;
}

/**
 * Checks a `secretString` template: each part a string, a number, a declared secret key or (where
 * `resolveUrl` is given) a service URL, and at least one secret reference. Adjacent text is merged.
 */
export function checkSecretTemplate(v: { parts?: unknown }, where: string, ctx: TemplateContext, report: Report): SecretTemplateSpec | undefined {
  const parts = Array.isArray(v.parts) ? v.parts : [];
  const out: Array<string | SecretKeySpec> = [];
  let ok = true;
  const text = (t: string) => {
    const last = out[out.length - 1];
    if (typeof last === 'string') out[out.length - 1] = last + t;
    else if (t !== '') out.push(t);
  };
  parts.forEach((p, i) => {
    const w = `${where}.secretString[${i}]`;
    if (typeof p === 'string') return text(p);
    if (typeof p === 'number' && Number.isFinite(p)) return text(String(p));
    if (isSecretRefData(p)) {
      const ref = checkSecretRef(p, w, ctx.decls, ctx.configFile, report, ctx.declared);
      if (ref) out.push(ref);
      else ok = false;
      return;
    }
    if (isObject(p) && p.$ref === 'service-url' && ctx.resolveUrl) {
      const url = ctx.resolveUrl(p, w);
      if (url === undefined) ok = false;
      else text(url);
      return;
    }
    ok = false;
    if (isObject(p) && p.$ref === 'service-url') {
      report(w, 'a service url() cannot go into a secret file', "write the URL's text into the template, or pass the URL in env instead");
    } else if (isObject(p) && p.$ref === 'secret-string') {
      report(w, 'a secretString cannot go inside another one', 'write its parts into this template directly');
    } else {
      report(w, `${show(p)} cannot be interpolated into a secretString: only secret references (secrets.<name>.<key>), strings, numbers and service urls`, 'interpolate one of those, or write the text into the template');
    }
  });
  if (!ok) return undefined;
  if (!out.some((p) => typeof p !== 'string')) {
    report(where, 'this secretString holds no secret reference, so nothing in it is secret', 'write it as a plain string, or interpolate a secret: secretString`…${secrets.<name>.<key>}…`');
    return undefined;
  }
  return { template: out };
}

/** Validates a service's `files`; returns the secret files sorted by target. */
export function checkSecretFiles(
  value: unknown,
  ctx: { decls: Record<string, SecretDecl>; declared: boolean; configFile: string; user: unknown; mountTargets: string[] },
  report: Report,
): Array<{ target: string } & SecretValueSpec> {
  const out: Array<{ target: string } & SecretValueSpec> = [];
  if (value === undefined) return out;
  if (!isObject(value)) {
    report('files', `files must be an object: container path → secret reference, got ${show(value)}`, "for example files: { '/run/secrets/db_password': secrets.db.password }");
    return out;
  }
  const seen = new Set<string>();
  for (const raw of Object.keys(value)) {
    const w = `files[${JSON.stringify(raw)}]`;
    const v = value[raw];
    if (!raw.startsWith('/') || raw.endsWith('/') || /[\0\n]/.test(raw)) {
      report(w, `target ${show(raw)} must be an absolute file path inside the container`, "for example '/run/secrets/db_password'");
      continue;
    }
    const target = path.posix.normalize(raw);
    if (target === '/' || seen.has(target)) {
      report(w, target === '/' ? 'target cannot be /' : `target ${show(target)} is written twice`, 'give each file its own path');
      continue;
    }
    if (ctx.mountTargets.some((m) => m === target || target.startsWith(m === '/' ? '/' : `${m}/`))) {
      report(w, `target ${show(target)} lies inside a volume mounted by this service`, 'put secret files in a directory of their own, e.g. /run/secrets/');
      continue;
    }
    seen.add(target);
    if (isSecretStringData(v)) {
      const t = checkSecretTemplate(v, w, { decls: ctx.decls, declared: ctx.declared, configFile: ctx.configFile }, report);
      if (t) out.push({ target, ...t });
      continue;
    }
    if (!isSecretRefData(v)) {
      report(w, `the value of a file must be a secret reference or a secretString, got ${show(v)}`, "write files: { '/run/secrets/x': secrets.<name>.<key> } (plain files belong in a bind mount under `volumes`)");
      continue;
    }
    const ref = checkSecretRef(v, w, ctx.decls, ctx.configFile, report, ctx.declared);
    if (ref) out.push({ target, ...ref });
  }
  if (out.length > 0 && ctx.user !== undefined && typeof ctx.user === 'string' && !/^\d+(:\d+)?$/.test(ctx.user)) {
    report(
      'user',
      `user ${show(ctx.user)} is a name; secret files are mode 0400 and owned by the service's user, so it must be numeric`,
      "give the numeric uid[:gid], e.g. user: '1000:1000' (look it up with `docker run --rm IMAGE id`)",
    );
  }
  return out.sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
}
