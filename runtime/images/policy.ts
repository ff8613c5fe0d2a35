/**
 * Image update policy: which of a repository's tags a service may run, and which one it should run now.
 * A pure function of plain data (the policy, the tags known with their digests and push times, the
 * clock), as the planner is: the agent gathers candidates from registry notifications and polls, and
 * deploys what this chooses.
 */
import { createRequire } from 'node:module';
import type Semver from 'semver';
import picomatch from 'picomatch';
import type { UpdatePolicySpec } from '../model.ts';

/** semver, loaded when a version is first compared (most configurations have no semver policy; a long-running agent keeps its ~1 MiB). */
let semverLib: typeof Semver | undefined;
const semver = (): typeof Semver => (semverLib ??= createRequire(import.meta.url)('semver') as typeof Semver);

/** A tag of the service's repository, as a registry reported it. */
export interface TagCandidate {
  tag: string;
  /** Manifest digest (`sha256:…`), when known. */
  digest?: string;
  /** When it was pushed (ms since the epoch): the notification's time, or when a poll first saw it. */
  pushedAt?: number;
}

export interface SelectInput {
  policy: UpdatePolicySpec;
  /** The tag written in the service's file: always allowed, whatever the filter says. */
  written: string;
  /** The tag running now when it differs from the written one (an earlier automatic update). */
  current?: string;
  candidates: TagCandidate[];
  now: number;
}

export interface Selection {
  /** The tag to run. */
  tag: string;
  digest?: string;
  /** Why: `'written'` (the file's tag is best), `'current'` (the earlier automatic update stays), `'newer'` (a better tag is allowed and ready). */
  why: 'written' | 'current' | 'newer';
  /** A better allowed tag still in its cooldown, and when it is ready: ask again then. */
  pending?: { tag: string; readyAt: number };
}

/** A compiled filter: true when `tag` may be deployed automatically. */
export function tagMatcher(policy: Pick<UpdatePolicySpec, 'tags'>): (tag: string) => boolean {
  const t = policy.tags;
  if ('glob' in t) {
    const isMatch = picomatch(t.glob, { dot: true });
    return (tag) => isMatch(tag);
  }
  if ('regex' in t) {
    const re = new RegExp(t.regex);
    return (tag) => re.test(tag);
  }
  const range = t.semver;
  return (tag) => {
    const v = parseVersion(tag);
    return v !== null && semver().satisfies(v, range);
  };
}

/** A tag as a semantic version (`1.2.3`, `v1.2.3`), or null. */
export function parseVersion(s: string): Semver.SemVer | null {
  return semver().parse(s, { loose: true });
}

/** The value a tag is ordered by: the regex's `sortBy` group, else the whole tag. */
function sortValue(policy: UpdatePolicySpec, tag: string): string | undefined {
  const t = policy.tags;
  if ('regex' in t && t.sortBy) return new RegExp(t.regex).exec(tag)?.groups?.[t.sortBy];
  return tag;
}

type Key = { rank: 0 } | { rank: 1; v: Semver.SemVer | number };

/** Compares two candidates by the policy's order; tags that cannot be ordered (no version, no number, no push time) rank lowest. */
function keyOf(policy: UpdatePolicySpec, c: TagCandidate): Key {
  if (policy.order === 'newest') return c.pushedAt === undefined ? { rank: 0 } : { rank: 1, v: c.pushedAt };
  const value = sortValue(policy, c.tag);
  if (value === undefined) return { rank: 0 };
  if (policy.order === 'semver') {
    const v = parseVersion(value);
    return v ? { rank: 1, v } : { rank: 0 };
  }
  if (!/^\d+(?:\.\d+)?$/.test(value)) return { rank: 0 };
  return { rank: 1, v: Number(value) };
}

function compareKeys(a: Key, b: Key): number {
  if (a.rank !== b.rank) return a.rank - b.rank;
  if (a.rank === 0 || b.rank === 0) return 0;
  if (typeof a.v === 'number' && typeof b.v === 'number') return a.v - b.v;
  return semver().compare(a.v as Semver.SemVer, b.v as Semver.SemVer);
}

/**
 * Chooses the tag to run. Allowed: the written tag, the current one, and every candidate the filter
 * matches. The best by the policy's order wins among those ready (a candidate is ready once its cooldown
 * since `pushedAt` has passed; one without a push time is ready); ties keep the current tag, then the
 * written one, then the greater tag name. A better candidate still cooling down is reported as `pending`.
 */
export function selectTag(input: SelectInput): Selection {
  const { policy, written, now } = input;
  const current = input.current ?? written;
  const allowed = tagMatcher(policy);
  const byTag = new Map<string, TagCandidate>();
  for (const c of input.candidates) {
    const prev = byTag.get(c.tag);
    // The latest report of a tag wins (a tag pushed again points at its new digest).
    if (!prev || (c.pushedAt ?? 0) >= (prev.pushedAt ?? 0)) byTag.set(c.tag, c);
  }
  const pool: TagCandidate[] = [];
  for (const c of byTag.values()) if (c.tag === written || c.tag === current || allowed(c.tag)) pool.push(c);
  for (const t of new Set([written, current])) if (!byTag.has(t)) pool.push({ tag: t });

  const preference = (tag: string) => (tag === current ? 2 : tag === written ? 1 : 0);
  const keys = new Map(pool.map((c) => [c.tag, keyOf(policy, c)] as const));
  const better = (a: TagCandidate, b: TagCandidate) => {
    const k = compareKeys(keys.get(a.tag)!, keys.get(b.tag)!);
    if (k !== 0) return k > 0;
    const p = preference(a.tag) - preference(b.tag);
    if (p !== 0) return p > 0;
    return a.tag > b.tag;
  };
  const readyAt = (c: TagCandidate) =>
    c.tag === written || c.tag === current || policy.cooldownMs <= 0 || c.pushedAt === undefined ? -Infinity : c.pushedAt + policy.cooldownMs;

  let best: TagCandidate | undefined;
  for (const c of pool) if (readyAt(c) <= now && (!best || better(c, best))) best = c;
  const chosen = best!;
  let pending: Selection['pending'];
  for (const c of pool) {
    const at = readyAt(c);
    if (at > now && better(c, chosen) && (!pending || at < pending.readyAt)) pending = { tag: c.tag, readyAt: at };
  }
  return {
    tag: chosen.tag,
    ...(chosen.digest ? { digest: chosen.digest } : {}),
    why: chosen.tag === written ? 'written' : chosen.tag === current ? 'current' : 'newer',
    ...(pending ? { pending } : {}),
  };
}
