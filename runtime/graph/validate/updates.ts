/**
 * Validation of automatic image updates: a service's `update` policy (which tags, their order, a cooldown)
 * and the project's `updates` settings (the agent's tag poll and the registries' credentials).
 */
import { createRequire } from 'node:module';
import type Semver from 'semver';
import picomatch from 'picomatch';
import type { SecretDecl, SecretKeySpec, UpdatePolicySpec, UpdateSettingsSpec } from '../../model.ts';
import { isObject, show } from '../parse.ts';
import { durationField, has, unknownKeys, type Report } from '../report.ts';
import { checkSecretRef, isSecretRefData } from './secrets.ts';

/** semver, loaded when a version is first compared (most configurations have no semver policy; a long-running agent keeps its ~1 MiB). */
let semverLib: typeof Semver | undefined;
const semver = (): typeof Semver => (semverLib ??= createRequire(import.meta.url)('semver') as typeof Semver);

export const UPDATE_KEYS = ['tags', 'order', 'cooldown'];
export const TAG_ORDERS = ['semver', 'numeric', 'newest'] as const;
export const UPDATES_KEYS = ['poll', 'registries'];
const MIN_POLL_MS = 10_000;
/** Characters a tag may hold (Docker's grammar), plus the glob's own `*?[]{}!,`. */
const GLOB_CHARS_RE = /^[\w.\-*?[\]{}!,]+$/;
const HOST_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?$/;

const EXAMPLES = "update: { tags: { glob: 'sha-*' } }, { tags: { semver: '^1.2' } } or { tags: { regex: '^main-(?<ts>\\\\d+)$', sortBy: 'ts' } }";

/** The names of the capture groups of a valid regular expression. */
export function groupNames(re: RegExp): string[] {
  // An alternative that matches the empty string makes exec return every group (undefined values).
  const m = new RegExp(`(?:${re.source})|`).exec('');
  return Object.keys(m?.groups ?? {});
}

/** A service's `update` policy; undefined when absent or invalid (problems reported). */
export function checkUpdatePolicy(value: unknown, report: Report): UpdatePolicySpec | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) {
    report('update', `update must be an object, got ${show(value)}`, `for example ${EXAMPLES}`);
    return undefined;
  }
  unknownKeys(value, UPDATE_KEYS, 'update.', report, 'update');
  const before = { ok: true };
  const bad = (where: string, message: string, fix: string) => {
    before.ok = false;
    report(where, message, fix);
  };

  let tags: UpdatePolicySpec['tags'] | undefined;
  let defaultOrder: UpdatePolicySpec['order'] = 'newest';
  const t = value.tags;
  if (t === undefined) bad('update.tags', 'update.tags is required: which tags may be deployed automatically', `for example ${EXAMPLES}`);
  else if (!isObject(t)) bad('update.tags', `update.tags must be an object, got ${show(t)}`, `for example ${EXAMPLES}`);
  else {
    const kinds = ['glob', 'regex', 'semver'].filter((k) => has(t, k));
    unknownKeys(t, kinds.includes('regex') ? ['regex', 'sortBy'] : ['glob', 'regex', 'semver'], 'update.tags.', report, 'update.tags');
    if (kinds.length !== 1) {
      bad(
        'update.tags',
        kinds.length === 0 ? 'update.tags names no filter' : `update.tags has ${kinds.map((k) => `\`${k}\``).join(' and ')}; it takes exactly one`,
        "write one of { glob: 'sha-*' }, { regex: '^main-(?<ts>\\\\d+)$', sortBy: 'ts' }, { semver: '^1.2' }",
      );
    } else if (kinds[0] === 'glob') {
      const g = t.glob;
      if (typeof g !== 'string' || g.length === 0) bad('update.tags.glob', `update.tags.glob must be a non-empty string, got ${show(g)}`, "for example glob: 'sha-*'");
      else if (!GLOB_CHARS_RE.test(g)) {
        bad(
          'update.tags.glob',
          `glob ${show(g)} can never match a tag: a tag holds only letters, digits, \`_\`, \`.\` and \`-\``,
          g.includes(':') || g.includes('/') ? `write only the tag's pattern, e.g. ${show(g.slice(Math.max(g.lastIndexOf(':'), g.lastIndexOf('/')) + 1) || '*')}` : "for example glob: 'sha-*'",
        );
      } else {
        try {
          picomatch.makeRe(g, { strictBrackets: true });
          tags = { glob: g };
        } catch (e) {
          bad('update.tags.glob', `glob ${show(g)} is invalid: ${(e as Error).message}`, "close every bracket and brace, e.g. 'sha-*' or 'v[0-9]*'");
        }
      }
    } else if (kinds[0] === 'regex') {
      const r = t.regex;
      if (typeof r !== 'string' || r.length === 0) bad('update.tags.regex', `update.tags.regex must be a non-empty string, got ${show(r)}`, "for example regex: '^main-(?<ts>\\\\d+)$'");
      else {
        let re: RegExp | undefined;
        try {
          re = new RegExp(r);
        } catch (e) {
          bad('update.tags.regex', `regular expression ${show(r)} is invalid: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}`, "write a JavaScript regular expression, e.g. '^main-(?<ts>\\\\d+)$' (backslashes doubled in a string)");
        }
        const sortBy = t.sortBy;
        if (re) {
          if (sortBy !== undefined) {
            const groups = groupNames(re);
            if (typeof sortBy !== 'string' || !groups.includes(sortBy)) {
              bad(
                'update.tags.sortBy',
                `sortBy ${show(sortBy)} is not a named group of ${show(r)}` + (groups.length ? ` (groups: ${groups.join(', ')})` : ' (it has none)'),
                groups.length ? `write sortBy: '${groups[0]}'` : `name the part to sort by in the expression, e.g. '^main-(?<ts>\\\\d+)$' with sortBy: 'ts'`,
              );
            } else {
              tags = { regex: r, sortBy };
              defaultOrder = 'numeric';
            }
          } else tags = { regex: r };
        }
      }
    } else {
      const r = t.semver;
      if (typeof r !== 'string' || r.trim().length === 0) bad('update.tags.semver', `update.tags.semver must be a non-empty string, got ${show(r)}`, "for example semver: '^1.2'");
      else if (semver().validRange(r) === null) {
        bad('update.tags.semver', `semver range ${show(r)} is invalid`, "write a range such as '^1.2', '~1.4.0', '>=2.0.0 <3' or '1.x'");
      } else {
        tags = { semver: r };
        defaultOrder = 'semver';
      }
    }
  }

  let order = defaultOrder;
  if (has(value, 'order')) {
    if (!TAG_ORDERS.includes(value.order as UpdatePolicySpec['order'])) {
      bad('update.order', `order ${show(value.order)} must be 'semver', 'numeric' or 'newest'`, "order: 'semver' (highest version), 'numeric' (highest number) or 'newest' (last pushed)");
    } else order = value.order as UpdatePolicySpec['order'];
  }

  let cooldownMs = 0;
  if (has(value, 'cooldown')) {
    const ns = durationField(value.cooldown, 'update.cooldown', report);
    if (ns === undefined) before.ok = false;
    else cooldownMs = Math.round(ns / 1e6);
  }
  if (!before.ok || !tags) return undefined;
  return { tags, order, cooldownMs };
}

/** A username: text, or a secret reference checked against the declarations. */
function checkCredential(
  v: unknown,
  where: string,
  allowText: boolean,
  ctx: { secrets: Record<string, SecretDecl>; declared: boolean; configFile: string },
  report: Report,
): string | SecretKeySpec | undefined {
  if (allowText && typeof v === 'string' && v.length > 0) return v;
  if (isSecretRefData(v)) return checkSecretRef(v, where, ctx.secrets, ctx.configFile, report, ctx.declared);
  report(
    where,
    `${where} must be ${allowText ? 'text or ' : ''}a secret reference, got ${show(v)}`,
    `declare it in defineSecrets and write ${where.endsWith('username') ? 'username: secrets.registry.username' : 'password: secrets.registry.password'} (a password is never written as text)`,
  );
  return undefined;
}

/** The project's `updates` settings; undefined when absent. */
export function checkUpdateSettings(
  value: unknown,
  ctx: { secrets: Record<string, SecretDecl>; declared: boolean; configFile: string },
  report: Report,
): UpdateSettingsSpec | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) {
    report('updates', `updates must be an object, got ${show(value)}`, "for example updates: { poll: '5m' }");
    return undefined;
  }
  unknownKeys(value, UPDATES_KEYS, 'updates.', report, 'updates');
  const out: UpdateSettingsSpec = { registries: {} };
  if (has(value, 'poll')) {
    const ns = durationField(value.poll, 'updates.poll', report);
    if (ns !== undefined) {
      const ms = Math.round(ns / 1e6);
      if (ms < MIN_POLL_MS) report('updates.poll', `updates.poll ${show(value.poll)} is shorter than 10s`, "poll at most every 10 seconds, e.g. poll: '1m' (registries rate-limit tag lists)");
      else out.pollMs = ms;
    }
  }
  if (has(value, 'registries')) {
    const r = value.registries;
    if (!isObject(r)) report('updates.registries', `updates.registries must be an object keyed by registry host, got ${show(r)}`, "for example registries: { 'ghcr.io': { username: 'bot', password: secrets.ghcr.token } }");
    else {
      for (const [host, cred] of Object.entries(r)) {
        const where = `updates.registries.${host}`;
        if (!HOST_RE.test(host)) {
          report(where, `${show(host)} is not a registry host`, "use the host (and port) as in image references, e.g. 'ghcr.io' or '127.0.0.1:5000'; 'docker.io' for Docker Hub");
          continue;
        }
        if (!isObject(cred)) {
          report(where, `the credentials of ${host} must be an object, got ${show(cred)}`, '{ username: ..., password: secrets.<name>.<key> }');
          continue;
        }
        unknownKeys(cred, ['username', 'password'], `${where}.`, report, `the credentials of ${host}`);
        const username = checkCredential(cred.username, `${where}.username`, true, ctx, report);
        const password = checkCredential(cred.password, `${where}.password`, false, ctx, report);
        if (username !== undefined && password !== undefined && typeof password !== 'string') out.registries[host] = { username, password };
      }
    }
  }
  return out;
}
