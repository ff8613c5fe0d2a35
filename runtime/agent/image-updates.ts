/**
 * Automatic image updates in the agent. Registry pushes (notifications or the poll) are remembered per
 * repository; for every service whose `update` policy allows a pushed tag, the policy chooses the tag
 * to run (runtime/images/policy.ts) and, when it changed, an override is recorded and a deploy queued.
 * Every deploy's graph passes through `desired()`, which puts the overridden tags in: a chosen tag
 * survives commits that change neither the service's image nor its policy, and is dropped when they do
 * (the file decides again). A service pinned by a rollback is left alone. All records live in the
 * agent's state store (the history), so an agent restart keeps them.
 */
import type { ServiceGraph, ServiceSpec } from '../model.ts';
import { canonicalJson } from '../plan/canonical.ts';
import type { PushEvent } from '../images/notifications.ts';
import { selectTag, tagMatcher, type TagCandidate } from '../images/policy.ts';
import { parseImageRef, repositoryKey, tagOf, withTag } from '../images/reference.ts';
import { RegistryClient } from '../images/registry-client.ts';
import type { Enqueued, Trigger, TriggerSource } from './trigger.ts';
import type { Logger } from './notify/notifier.ts';

/** The key/value part of the history the agent's parts keep their records in. */
export interface StateStore {
  getState<T>(key: string): T | undefined;
  setState(key: string, value: unknown): void;
}


/** Hands a trigger to the agent's queue. */
export type Submit = (t: Trigger) => Enqueued;

/** An automatic update in force for one service. */
export interface OverrideRecord {
  service: string;
  /** What the file said when the tag was chosen: the override holds while both stay the same. */
  base: { image: string; policy: string };
  /** The image deployed instead (same repository, the chosen tag). */
  image: string;
  tag: string;
  digest?: string;
  /** When it was chosen. */
  at: number;
  /** Set once a deploy ran it successfully (write-back happens then, once). */
  deployed?: boolean;
}

interface TagRecord {
  digest?: string;
  pushedAt: number;
}

/** A tag change the deploy of which succeeded: what write-back commits. */
export interface AppliedUpdate {
  project: string;
  service: string;
  file: string;
  from: string;
  to: string;
  digest?: string;
}

export interface ImageUpdatesOptions {
  state: StateStore;
  log: Logger;
  now?: () => number;
  /** True when a rollback pinned the service: it is not updated automatically. */
  pinned?: (project: string, service: string) => boolean;
  /** Registry credentials for the poll (from the project's secrets), by registry host. */
  credentials?: (graph: ServiceGraph, host: string) => Promise<{ username: string; password: string } | undefined>;
  /** Called after a deploy ran an updated tag successfully (write-back). Errors are logged. */
  onApplied?: (u: AppliedUpdate) => Promise<void>;
  /** Overrides the poll interval of the project's `updates.poll` (tests); 0 turns the poll off. */
  pollMs?: number;
  /** Tags remembered per repository (oldest pushes forgotten first). Default 500. */
  keepTags?: number;
  fetch?: typeof fetch;
}

/** The policy as compared across commits (a changed policy drops the override). */
const policyKey = (svc: ServiceSpec) => canonicalJson(svc.update ?? null);
const overridesKey = (project: string) => `images:overrides:${project}`;
const tagsKey = (repo: string) => `images:tags:${repo}`;

export interface PushOutcome {
  /** Services whose tag changes, with the tag. */
  updates: Array<{ service: string; from: string; to: string; digest?: string }>;
  /** Services that follow the repository but stay (no better tag, a cooldown, a pin). */
  unchanged: Array<{ service: string; why: string }>;
  deployment?: string;
  outcome: 'deployed' | 'coalesced' | 'ignored';
  /** Why nothing was queued. */
  reason?: string;
}

export class ImageUpdates implements TriggerSource {
  readonly name = 'registry';
  readonly #o: ImageUpdatesOptions;
  #submit: Submit | undefined;
  /** The last graph loaded from the repository, before overrides: the file's tags and policies. */
  #base: ServiceGraph | undefined;
  #cooldownTimer: NodeJS.Timeout | undefined;
  #cooldownAt: number | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #pollEvery = 0;
  #polling: Promise<void> | undefined;
  #stopped = false;
  /** Updates queued (override written), waiting for a deploy to run them: service → override. */
  #inFlight = new Map<string, OverrideRecord>();

  constructor(opts: ImageUpdatesOptions) {
    this.#o = opts;
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  start(submit: Submit): void {
    this.#submit = submit;
    this.#stopped = false;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#cooldownTimer);
    clearInterval(this.#pollTimer);
    await this.#polling;
  }

  /** The overrides in force for a project (status, tests). */
  overrides(project: string): Record<string, OverrideRecord> {
    return this.#o.state.getState<Record<string, OverrideRecord>>(overridesKey(project)) ?? {};
  }

  #saveOverrides(project: string, o: Record<string, OverrideRecord>): void {
    this.#o.state.setState(overridesKey(project), Object.keys(o).length ? o : undefined);
  }

  /**
   * The graph a deploy runs: the repository's graph with each automatic update in force. Drops an
   * override whose service's image or policy changed in the file, or that is pinned by a rollback.
   */
  desired(graph: ServiceGraph): ServiceGraph {
    const first = this.#base === undefined;
    this.#base = graph;
    // After an agent restart: a tag still in its cooldown is looked at again when it is ready.
    if (first) this.#scheduleCooldown(this.#nextReady(graph));
    this.#schedulePoll(graph);
    const records = this.overrides(graph.project);
    if (Object.keys(records).length === 0) return graph;
    const services = { ...graph.services };
    let dropped = false;
    for (const [name, rec] of Object.entries(records)) {
      const svc = graph.services[name];
      const why = !svc
        ? 'the service is gone'
        : !svc.update
          ? 'the service has no update policy any more'
          : svc.image !== rec.base.image
            ? `its image changed in ${svc.file} (${rec.base.image} → ${svc.image})`
            : policyKey(svc) !== rec.base.policy
              ? `its update policy changed in ${svc.file}`
              : this.#o.pinned?.(graph.project, name)
                ? 'it is pinned by a rollback'
                : undefined;
      if (why) {
        delete records[name];
        dropped = true;
        this.#o.log.info('image update: override dropped', { service: name, image: rec.image, why });
        continue;
      }
      services[name] = { ...svc!, image: rec.image };
    }
    if (dropped) this.#saveOverrides(graph.project, records);
    return { ...graph, services };
  }

  /**
   * A deploy finished. When it applied or found nothing to do, the updates it carried are in force:
   * write-back runs once for each (outside the deploy's path: its failure is only logged).
   */
  async deployed(result: string, graph: ServiceGraph | undefined, failedServices: string[] = []): Promise<void> {
    if (!graph || this.#inFlight.size === 0) return;
    const records = this.overrides(graph.project);
    const done: AppliedUpdate[] = [];
    for (const [name, pending] of [...this.#inFlight]) {
      const rec = records[name];
      if (!rec || rec.image !== pending.image) {
        this.#inFlight.delete(name);
        continue;
      }
      if (result !== 'applied' && result !== 'no-op') {
        if (failedServices.includes(name)) {
          this.#o.log.warn('image update: the deploy of the new tag failed; the previous version keeps serving', { service: name, image: rec.image });
          this.#inFlight.delete(name);
        }
        continue;
      }
      this.#inFlight.delete(name);
      rec.deployed = true;
      const svc = this.#base?.services[name];
      if (svc) done.push({ project: graph.project, service: name, file: svc.file, from: rec.base.image, to: rec.image, ...(rec.digest ? { digest: rec.digest } : {}) });
    }
    this.#saveOverrides(graph.project, records);
    for (const u of done) {
      try {
        await this.#o.onApplied?.(u);
      } catch (e) {
        this.#o.log.warn('image update: write-back failed; the deployed tag stays in force', { service: u.service, image: u.to, error: (e as Error).message });
      }
    }
  }

  #remember(pushes: PushEvent[]): void {
    const byRepo = new Map<string, PushEvent[]>();
    for (const p of pushes) {
      const k = repositoryKey(p);
      byRepo.set(k, [...(byRepo.get(k) ?? []), p]);
    }
    for (const [repo, list] of byRepo) {
      const tags = this.#o.state.getState<Record<string, TagRecord>>(tagsKey(repo)) ?? {};
      for (const p of list) {
        const prev = tags[p.tag];
        // A tag pushed again with the same content keeps its first push time (its age).
        if (prev && prev.digest && prev.digest === p.digest) continue;
        tags[p.tag] = { ...(p.digest ? { digest: p.digest } : {}), pushedAt: p.pushedAt };
      }
      const keep = this.#o.keepTags ?? 500;
      const entries = Object.entries(tags).sort((a, b) => b[1].pushedAt - a[1].pushedAt).slice(0, keep);
      this.#o.state.setState(tagsKey(repo), Object.fromEntries(entries));
    }
  }

  /** Tags known for a repository. */
  candidates(repo: string): TagCandidate[] {
    const tags = this.#o.state.getState<Record<string, TagRecord>>(tagsKey(repo)) ?? {};
    return Object.entries(tags).map(([tag, r]) => ({ tag, pushedAt: r.pushedAt, ...(r.digest ? { digest: r.digest } : {}) }));
  }

  /**
   * Pushes seen (a registry notification or the poll): remembered, then every service that follows one
   * of the repositories is evaluated; a changed tag queues one deploy.
   */
  pushed(pushes: PushEvent[], opts: { kind?: string; delivery?: string } = {}): PushOutcome {
    this.#remember(pushes);
    const repos = new Set(pushes.map(repositoryKey));
    return this.#evaluate((svc) => repos.has(repositoryKey(parseImageRef(svc.image))), opts.kind ?? 'registry', opts.delivery, pushes);
  }

  /** Evaluates the services `which` selects against the tags known; records overrides and queues a deploy. */
  #evaluate(which: (svc: ServiceSpec) => boolean, kind: string, delivery?: string, pushes: PushEvent[] = []): PushOutcome {
    const graph = this.#base;
    const out: PushOutcome = { updates: [], unchanged: [], outcome: 'ignored' };
    if (!graph) {
      out.reason = 'no deploy has loaded the repository yet';
      return out;
    }
    const now = this.#now();
    const records = this.overrides(graph.project);
    let nextCheck: number | undefined;
    for (const svc of Object.values(graph.services)) {
      if (!svc.update || !which(svc)) continue;
      const written = tagOf(svc.image);
      if (written === undefined) {
        out.unchanged.push({ service: svc.name, why: `its image is pinned by digest in ${svc.file}` });
        continue;
      }
      if (this.#o.pinned?.(graph.project, svc.name)) {
        out.unchanged.push({ service: svc.name, why: 'pinned by a rollback' });
        continue;
      }
      const rec = records[svc.name];
      const current = rec?.tag ?? written;
      const repo = repositoryKey(parseImageRef(svc.image));
      const sel = selectTag({ policy: svc.update, written, ...(rec ? { current: rec.tag } : {}), candidates: this.candidates(repo), now });
      if (sel.pending) nextCheck = Math.min(nextCheck ?? Infinity, sel.pending.readyAt);
      if (sel.tag === current) {
        const why = sel.pending
          ? `${sel.pending.tag} waits for its cooldown until ${new Date(sel.pending.readyAt).toISOString()}`
          : pushes.some((p) => repositoryKey(p) === repo && !tagMatcher(svc.update!)(p.tag))
            ? `${pushes.filter((p) => repositoryKey(p) === repo).map((p) => p.tag).join(', ')} not allowed by its policy`
            : `${current} is still the best allowed tag`;
        out.unchanged.push({ service: svc.name, why });
        continue;
      }
      if (sel.tag === written) {
        // The file's tag is best again (its newer tags were deleted or re-ordered): back to the file.
        delete records[svc.name];
      } else {
        records[svc.name] = {
          service: svc.name,
          base: { image: svc.image, policy: policyKey(svc) },
          image: withTag(svc.image, sel.tag),
          tag: sel.tag,
          ...(sel.digest ? { digest: sel.digest } : {}),
          at: now,
        };
        this.#inFlight.set(svc.name, records[svc.name]!);
      }
      out.updates.push({ service: svc.name, from: current, to: sel.tag, ...(sel.tag !== written && sel.digest ? { digest: sel.digest } : {}) });
    }
    this.#scheduleCooldown(nextCheck);
    if (out.updates.length === 0) {
      out.reason = out.unchanged.length ? out.unchanged.map((u) => `${u.service}: ${u.why}`).join('; ') : 'no service follows this repository';
      return out;
    }
    this.#saveOverrides(graph.project, records);
    const reason = out.updates.map((u) => `${u.service} ${u.from} → ${u.to}`).join(', ');
    for (const u of out.updates) {
      const digest = records[u.service]?.digest;
      this.#o.log.info('image update: new tag chosen', { service: u.service, from: u.from, to: u.to, ...(digest ? { digest } : {}) });
    }
    if (!this.#submit || this.#stopped) {
      out.reason = 'the agent is not running; the next deploy picks it up';
      return out;
    }
    try {
      const r = this.#submit({ kind, target: { head: true }, ...(delivery ? { delivery } : {}), reason: `image update: ${reason}` });
      out.deployment = r.deployment;
      out.outcome = r.outcome === 'coalesced' ? 'coalesced' : 'deployed';
    } catch (e) {
      out.reason = (e as Error).message;
    }
    return out;
  }

  /** When the earliest tag now cooling down becomes ready, for any service of `graph`. */
  #nextReady(graph: ServiceGraph): number | undefined {
    const records = this.overrides(graph.project);
    let at: number | undefined;
    for (const svc of Object.values(graph.services)) {
      const written = svc.update ? tagOf(svc.image) : undefined;
      if (!svc.update || written === undefined) continue;
      const rec = records[svc.name];
      const sel = selectTag({ policy: svc.update, written, ...(rec ? { current: rec.tag } : {}), candidates: this.candidates(repositoryKey(parseImageRef(svc.image))), now: this.#now() });
      if (sel.pending) at = Math.min(at ?? Infinity, sel.pending.readyAt);
    }
    return at;
  }

  /** A tag in its cooldown becomes ready: evaluate again then. */
  #scheduleCooldown(at: number | undefined): void {
    if (at === undefined || this.#stopped) return;
    // One timer, at the earliest time something becomes ready (an evaluation then schedules the next).
    if (this.#cooldownAt !== undefined && this.#cooldownAt <= at) return;
    clearTimeout(this.#cooldownTimer);
    this.#cooldownAt = at;
    this.#cooldownTimer = setTimeout(() => {
      this.#cooldownAt = undefined;
      void this.#evaluate(() => true, 'registry');
    }, Math.max(0, at - this.#now()) + 50);
    this.#cooldownTimer.unref();
  }

  // ───────────── poll ─────────────

  #schedulePoll(graph: ServiceGraph): void {
    const every = this.#o.pollMs ?? graph.updates?.pollMs ?? 0;
    if (every === this.#pollEvery || this.#stopped) return;
    clearInterval(this.#pollTimer);
    this.#pollEvery = every;
    if (every <= 0) return;
    this.#pollTimer = setInterval(() => {
      if (!this.#polling) this.#polling = this.poll().then(() => undefined).finally(() => (this.#polling = undefined));
    }, every);
    this.#pollTimer.unref();
  }

  /**
   * Asks each registry for the tags of every repository a service follows; tags the policy allows and
   * not seen before are looked up (their digest) and remembered as pushed now.
   */
  async poll(): Promise<PushOutcome | undefined> {
    const graph = this.#base;
    if (!graph) return undefined;
    const follow = new Map<string, { host: string; repository: string; allowed: Array<(tag: string) => boolean> }>();
    for (const svc of Object.values(graph.services)) {
      if (!svc.update) continue;
      const ref = parseImageRef(svc.image);
      const k = repositoryKey(ref);
      const f = follow.get(k) ?? { host: ref.registry, repository: ref.repository, allowed: [] };
      f.allowed.push(tagMatcher(svc.update));
      follow.set(k, f);
    }
    const pushes: PushEvent[] = [];
    const now = this.#now();
    for (const [k, f] of follow) {
      try {
        const credentials = await this.#o.credentials?.(graph, f.host);
        const client = new RegistryClient({ host: f.host, ...(credentials ? { credentials } : {}), ...(this.#o.fetch ? { fetch: this.#o.fetch } : {}) });
        const known = new Map(this.candidates(k).map((c) => [c.tag, c]));
        const fresh = (await client.listTags(f.repository)).filter((t) => !known.has(t) && f.allowed.some((a) => a(t)));
        for (const tag of fresh.slice(0, 100)) {
          const digest = await client.manifestDigest(f.repository, tag);
          if (digest !== undefined) pushes.push({ registry: f.host, repository: f.repository, tag, digest, pushedAt: now });
        }
      } catch (e) {
        this.#o.log.warn('image update: the registry poll failed; asking again at the next tick', { repository: k, error: (e as Error).message });
      }
    }
    if (pushes.length === 0) return undefined;
    return this.pushed(pushes, { kind: 'registry-poll' });
  }
}
