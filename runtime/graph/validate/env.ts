/**
 * Validation of a service's `env`: names, plain values, `url()` references to other services (resolved
 * to `scheme://name:port/path`), secret references and `secretString` templates of text, references
 * and URLs (filled in at apply time, never here).
 */
import { envEntryBytes, MAX_ARG_STRLEN } from '../../limits.ts';
import type { LoadedService, SecretDecl, SecretValueSpec } from '../../model.ts';
import { isObject, show } from '../parse.ts';
import { isPort, type Report } from '../report.ts';
import type { Resolve } from './names.ts';
import { checkSecretRef, checkSecretTemplate, isSecretStringData } from './secrets.ts';

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SCHEME_RE = /^[a-z][a-z0-9+.-]*$/;


export interface EnvContext {
  service: string;
  byName: Map<string, LoadedService>;
  resolve: Resolve;
  /** Valid secret declarations, and whether `secrets` was declared at all (for the fix). */
  secrets: Record<string, SecretDecl>;
  secretsDeclared: boolean;
  configFile: string;
}

export interface EnvResult {
  /** Resolved plain values, by name (in name order). */
  env: Record<string, string>;
  /** Variables filled from secrets at apply time: name → which secret and key, or a template of text and keys. */
  secretEnv: Record<string, SecretValueSpec>;
  /** Services this one links to through `url()`. */
  links: string[];
}

export function checkEnv(value: unknown, ctx: EnvContext, report: Report): EnvResult {
  const env: Record<string, string> = {};
  const secretEnv: Record<string, SecretValueSpec> = {};
  const links: string[] = [];
  if (value === undefined) return { env, secretEnv, links };
  if (!isObject(value)) {
    report('env', `env must be an object, got ${show(value)}`, "for example env: { LOG_LEVEL: 'info' }");
    return { env, secretEnv, links };
  }
  /** `X.url()` as text (`scheme://name:port/path`), adding the link; undefined after reporting a problem. */
  const resolveUrl = (v: Record<string, unknown>, w: string): string | undefined => {
    const target = ctx.resolve({ ...v, $ref: 'service' }, w, 'X.url()');
    if (target === undefined) return undefined;
    if (target !== ctx.service) links.push(target);
    const scheme = v.scheme ?? 'http';
    if (typeof scheme !== 'string' || !SCHEME_RE.test(scheme)) {
      report(w, `scheme ${show(scheme)} is not a URL scheme`, "for example { scheme: 'postgres' }");
      return undefined;
    }
    const p = v.path ?? '';
    if (typeof p !== 'string' || (p !== '' && !p.startsWith('/'))) {
      report(w, `url path ${show(p)} must be empty or start with /`, "for example url('/v1')");
      return undefined;
    }
    let tp: number | undefined;
    if (v.port !== undefined) {
      if (isPort(v.port)) tp = v.port;
      else {
        report(w, `url port ${show(v.port)} must be a whole number in 1..65535`, "for example url('/', { port: 8080 })");
        return undefined;
      }
    } else {
      const t = ctx.byName.get(target)!;
      const tport = isObject(t.data) ? t.data.port : undefined;
      if (isPort(tport)) tp = tport;
      else {
        report(
          w,
          `url of "${target}" needs a port, and "${target}" (${t.file}) has no valid \`port\``,
          `set \`port\` in ${t.file}, or pass one: ${target}.url('${p}', { port: 8080 })`,
        );
        return undefined;
      }
    }
    return `${scheme}://${target}:${tp}${p}`;
  };
  for (const key of Object.keys(value).sort()) {
    const v = value[key];
    const w = `env.${key}`;
    if (!ENV_NAME_RE.test(key)) report(w, `${show(key)} is not a valid environment variable name`, 'use letters, digits and _, not starting with a digit');
    if (typeof v === 'string') env[key] = v;
    else if (typeof v === 'number' && Number.isFinite(v)) env[key] = String(v);
    else if (typeof v === 'boolean') env[key] = String(v);
    else if (isObject(v) && v.$ref === 'service-url') {
      const url = resolveUrl(v, w);
      if (url !== undefined) env[key] = url;
    } else if (isObject(v) && v.$ref === 'secret') {
      const ref = checkSecretRef(v, w, ctx.secrets, ctx.configFile, report, ctx.secretsDeclared);
      if (ref) secretEnv[key] = ref;
    } else if (isSecretStringData(v)) {
      const t = checkSecretTemplate(v, w, { decls: ctx.secrets, declared: ctx.secretsDeclared, configFile: ctx.configFile, resolveUrl }, report);
      if (t) secretEnv[key] = t;
    } else if (isObject(v) && v.$ref === 'service') {
      report(w, `the value is a service, not a string`, `write ${v.service ?? 'svc'}.url() to get its URL`);
    } else {
      report(w, `value ${show(v)} must be a string, number, boolean, a service's url(), a secret (secrets.<name>.<key>) or a secretString\`…\``, `for example ${key}: 'value'`);
    }
    const resolved = env[key];
    // One variable longer than the kernel takes would let the container be created but never start.
    if (resolved !== undefined && envEntryBytes(key, resolved) > MAX_ARG_STRLEN) {
      delete env[key];
      report(
        w,
        `the variable is ${envEntryBytes(key, resolved) - 1} bytes as ${key}=…; Linux allows one environment variable at most ` +
          `${MAX_ARG_STRLEN - 1} bytes (128 KiB, MAX_ARG_STRLEN), so the container could not start`,
        `put the content in a file (a bind mount under \`volumes\`, or a secret under \`files\`) and pass the file's path in ${key} instead`,
      );
    }
  }
  return { env, secretEnv, links };
}
