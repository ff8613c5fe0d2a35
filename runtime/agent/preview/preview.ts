/**
 * Plan previews of pull requests: a `pull_request` delivery (opened, synchronize, reopened) for the
 * agent's repository and branch becomes a preview of its head commit — fetched into a worktree of its
 * own, type-checked, loaded in the sandboxed evaluation and planned against what runs now, offline
 * (no image pull, no Vault read), never applied — whose result goes back to GitHub as a commit status
 * and one comment on the pull request.
 *
 * Previews yield to deploys: one runs at a time, only while no deploy runs or waits, and a deploy that
 * starts stops the running preview, which goes back to the front of the line (it would otherwise plan
 * against containers that are changing). A newer commit of the same pull request replaces its waiting
 * preview or stops its running one (AbortSignal); closing the pull request drops it.
 */
import type { Plan, Problem, RunEvent } from '../../model.ts';
import type { PlanOptions, Planned, Source } from '../../engine.ts';
import { ProblemsError } from '../../problems.ts';
import { previewComment, previewStatus, type PreviewResult } from './report.ts';
import type { PreviewPublisher } from './github.ts';
import type { PreviewCheckout } from './workspace.ts';

export interface PreviewRequest {
  /** `owner/name` of the base repository. */
  repo: string;
  number: number;
  /** The head commit to preview. */
  sha: string;
  /** The head branch, for the record (`feature/x`, or `owner:branch` of a fork). */
  head: string;
  fork: boolean;
  /** The delivery that asked for it. */
  delivery?: string;
}

export type PullRequestDecision =
  | { kind: 'preview'; request: PreviewRequest }
  | { kind: 'close'; repo: string; number: number }
  | { kind: 'ignored'; reason: string }
  | { kind: 'malformed'; reason: string };

export interface PreviewPolicy {
  /** `owner/name` whose pull requests are previewed. */
  repo: string;
  /** Only pull requests into this branch. */
  branch: string;
  /** Pull requests whose head lives in another repository (a fork) are previewed only when true. */
  forks: boolean;
}

const ACTIONS = new Set(['opened', 'synchronize', 'reopened']);

/** What a verified `pull_request` delivery's JSON asks for. Pure. */
export function classifyPullRequest(payload: unknown, policy: PreviewPolicy): PullRequestDecision {
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) return { kind: 'malformed', reason: 'body is not a JSON object' };
  const p = payload as {
    action?: unknown;
    number?: unknown;
    repository?: { full_name?: unknown };
    pull_request?: { number?: unknown; head?: { sha?: unknown; ref?: unknown; label?: unknown; repo?: { full_name?: unknown } | null }; base?: { ref?: unknown; repo?: { full_name?: unknown } } };
  };
  const repo = typeof p.repository?.full_name === 'string' ? p.repository.full_name : undefined;
  const pr = p.pull_request;
  const number = typeof pr?.number === 'number' ? pr.number : typeof p.number === 'number' ? p.number : undefined;
  if (!repo || !pr || number === undefined || typeof p.action !== 'string') return { kind: 'malformed', reason: 'pull_request without action, number, pull_request or repository.full_name' };
  if (repo.toLowerCase() !== policy.repo.toLowerCase()) return { kind: 'ignored', reason: `repository ${repo}` };
  const base = typeof pr.base?.ref === 'string' ? pr.base.ref : undefined;
  if (base !== policy.branch) return { kind: 'ignored', reason: `pull request #${number} into ${base ?? '?'}, not ${policy.branch}` };
  if (p.action === 'closed') return { kind: 'close', repo, number };
  if (!ACTIONS.has(p.action)) return { kind: 'ignored', reason: `pull request #${number} ${p.action}` };
  const sha = pr.head?.sha;
  if (typeof sha !== 'string' || !/^[0-9a-f]{40}$/.test(sha)) return { kind: 'malformed', reason: 'pull_request without a head sha' };
  const headRepo = typeof pr.head?.repo?.full_name === 'string' ? pr.head.repo.full_name : undefined;
  const baseRepo = typeof pr.base?.repo?.full_name === 'string' ? pr.base.repo.full_name : repo;
  // A head repository that was deleted counts as a fork: its code is not the base repository's.
  const fork = !headRepo || headRepo.toLowerCase() !== baseRepo.toLowerCase();
  if (fork && !policy.forks) return { kind: 'ignored', reason: `pull request #${number} from the fork ${headRepo ?? '(deleted)'}: previews of forks are off` };
  const headRef = typeof pr.head?.label === 'string' ? pr.head.label : typeof pr.head?.ref === 'string' ? pr.head.ref : '?';
  return { kind: 'preview', request: { repo, number, sha, head: headRef, fork } };
}

export interface PreviewLogger {
  info(msg: string, fields?: object): void;
  warn(msg: string, fields?: object): void;
  error(msg: string, fields?: object): void;
}

/** A preview that finished (for the agent's page and log). */
export interface PreviewRecord {
  number: number;
  sha: string;
  head: string;
  fork: boolean;
  /** `success` | `failure` | `error`, as the commit status says. */
  state: string;
  description: string;
  /** Comment id on GitHub, when it was written. */
  comment?: number;
  startedAt: number;
  finishedAt: number;
}

export interface PreviewRunnerOptions {
  engine: { plan(source: Source, opts?: PlanOptions): Promise<Planned> };
  workspace: { checkout(number: number, sha: string, signal?: AbortSignal): Promise<PreviewCheckout> };
  publisher: PreviewPublisher;
  log: PreviewLogger;
  /** The configuration file, relative to the repository root (the agent's `-c`). */
  configFile?: string;
  /** GitHub's web address for file links in the comment; default https://github.com. */
  webUrl?: string;
  /** The agent's public address: the status links to its page. */
  publicUrl?: string;
  /**
   * The type-check before planning; default `waffle check`'s, run in a child process (the agent never
   * loads the TypeScript compiler); false: none. A rejection other than the signal's makes the preview
   * an error that says why.
   */
  typecheck?: ((dir: string, configFile?: string, signal?: AbortSignal) => Promise<Problem[]>) | false;
  /** Problems the host policy finds in the commit's graph (the same check a deploy makes). */
  policy?: (graph: Planned['graph'], dir: string) => Problem[];
  /** Resolves once no deploy runs or waits; asked before each preview starts. */
  deploysIdle?: () => Promise<void>;
  /** Attempts to publish a result (status, comment) before giving up; default 3. */
  publishAttempts?: number;
  /** Delay before the second attempt, doubled after; default 1000 ms. */
  publishDelayMs?: number;
  /** Hears every finished preview. */
  onRecord?: (r: PreviewRecord) => void;
}

interface Entry {
  request: PreviewRequest;
  controller: AbortController;
}

/** Why a preview was stopped: superseded (dropped) or preempted by a deploy (run again later). */
class Stop extends Error {
  constructor(readonly why: 'superseded' | 'preempted' | 'closed' | 'shutdown', message: string) {
    super(message);
    this.name = 'PreviewStopped';
  }
}

const KEEP_RECORDS = 50;

export class PreviewRunner {
  readonly #o: PreviewRunnerOptions;
  /** Waiting previews, oldest first; at most one per pull request. */
  readonly #waiting: Entry[] = [];
  #running: Entry | undefined;
  #pumping = false;
  #closed = false;
  #idle: Array<() => void> = [];
  readonly #records: PreviewRecord[] = [];

  constructor(opts: PreviewRunnerOptions) {
    this.#o = opts;
  }

  /** Waiting and running previews. */
  get length(): number {
    return this.#waiting.length + (this.#running ? 1 : 0);
  }

  /** The running preview and those waiting, for the page. */
  get queue(): { running?: PreviewRequest; waiting: PreviewRequest[] } {
    return { ...(this.#running ? { running: this.#running.request } : {}), waiting: this.#waiting.map((e) => e.request) };
  }

  /** The last previews, newest first. */
  records(): PreviewRecord[] {
    return [...this.#records];
  }

  /**
   * Queues a preview of `request`. A waiting preview of the same pull request is replaced, a running
   * one is stopped. Returns what happened to an older one (`replaced` a waiting one, `stopped` a running one).
   */
  submit(request: PreviewRequest): { outcome: 'queued'; replaced?: string; stopped?: string } {
    if (this.#closed) throw new Error('the agent is shutting down: no new preview starts');
    const out: { outcome: 'queued'; replaced?: string; stopped?: string } = { outcome: 'queued' };
    const i = this.#waiting.findIndex((e) => e.request.number === request.number);
    if (i !== -1) {
      out.replaced = this.#waiting[i]!.request.sha;
      this.#waiting.splice(i, 1);
    }
    const entry = { request, controller: new AbortController() };
    if (this.#running?.request.number === request.number && this.#running.request.sha !== request.sha) {
      out.stopped = this.#running.request.sha;
      this.#running.controller.abort(new Stop('superseded', `superseded by ${request.sha.slice(0, 7)}`));
      // The newer commit goes first: it replaces the one that was running.
      this.#waiting.unshift(entry);
    } else if (this.#running?.request.number === request.number) {
      // The same commit again (a redelivery, a reopen while it runs): the running preview answers it.
      return out;
    } else this.#waiting.push(entry);
    void this.#pump();
    return out;
  }

  /** Drops the pull request's waiting preview and stops its running one (it was closed). */
  cancel(number: number): void {
    const i = this.#waiting.findIndex((e) => e.request.number === number);
    if (i !== -1) this.#waiting.splice(i, 1);
    if (this.#running?.request.number === number) this.#running.controller.abort(new Stop('closed', 'the pull request was closed'));
    this.#settleIfIdle();
  }

  /** A deploy starts: the running preview stops and waits again, first in line. */
  preempt(): void {
    if (this.#running) this.#running.controller.abort(new Stop('preempted', 'a deploy started'));
  }

  /** Resolves when nothing runs or waits. */
  idle(): Promise<void> {
    if (this.length === 0) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  /** Stops the running preview, drops the waiting ones, and resolves when the running one has let go. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#waiting.length = 0;
    this.#running?.controller.abort(new Stop('shutdown', 'the agent is shutting down'));
    await this.idle();
  }

  #settleIfIdle(): void {
    if (this.length > 0) return;
    const waiters = this.#idle;
    this.#idle = [];
    for (const w of waiters) w();
  }

  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (!this.#closed && this.#waiting.length) {
        // Deploys first: a preview starts only while none runs or waits.
        if (this.#o.deploysIdle) await this.#o.deploysIdle();
        const entry = this.#waiting.shift();
        if (!entry || this.#closed) break;
        this.#running = entry;
        try {
          await this.#runOne(entry);
        } catch (e) {
          const why = e instanceof Stop ? e : entry.controller.signal.reason instanceof Stop ? (entry.controller.signal.reason as Stop) : undefined;
          if (why?.why === 'preempted' && !this.#closed) {
            this.#o.log.info('preview paused for a deploy', { pull: entry.request.number, sha: entry.request.sha });
            // Back to the front with a fresh signal, unless a newer commit of it arrived meanwhile.
            if (!this.#waiting.some((w) => w.request.number === entry.request.number)) this.#waiting.unshift({ request: entry.request, controller: new AbortController() });
          } else if (why) {
            this.#o.log.info('preview stopped', { pull: entry.request.number, sha: entry.request.sha, reason: why.message });
          } else {
            this.#o.log.error('preview failed', { pull: entry.request.number, sha: entry.request.sha, error: (e as Error).message });
          }
        } finally {
          this.#running = undefined;
        }
      }
    } finally {
      this.#pumping = false;
      this.#settleIfIdle();
    }
  }

  /** Runs one preview and publishes it; throws a Stop when its signal stopped it. */
  async #runOne(entry: Entry): Promise<void> {
    const { request } = entry;
    const signal = entry.controller.signal;
    const startedAt = Date.now();
    const stopped = () => {
      if (signal.aborted) throw signal.reason instanceof Stop ? signal.reason : new Stop('shutdown', String(signal.reason));
    };
    this.#o.log.info('preview started', { pull: request.number, sha: request.sha, head: request.head, fork: request.fork });
    await this.#publish(() => this.#o.publisher.status(request.sha, 'pending', `waffle plan: planning ${request.sha.slice(0, 7)}…`, this.#o.publicUrl, signal), signal, request, 'pending status');
    stopped();
    const result = await this.preview(request, signal);
    stopped();
    const status = previewStatus(result);
    const body = previewComment({ repo: request.repo, number: request.number, sha: request.sha, ...(this.#o.webUrl ? { webUrl: this.#o.webUrl } : {}) }, result, this.#o.publicUrl ? { url: this.#o.publicUrl } : {});
    let comment: number | undefined;
    await this.#publish(async () => {
      comment = (await this.#o.publisher.comment(request.number, body, signal)).id;
    }, signal, request, 'comment');
    stopped();
    await this.#publish(() => this.#o.publisher.status(request.sha, status.state, status.description, this.#o.publicUrl, signal), signal, request, 'status');
    const record: PreviewRecord = {
      number: request.number,
      sha: request.sha,
      head: request.head,
      fork: request.fork,
      state: status.state,
      description: status.description,
      ...(comment !== undefined ? { comment } : {}),
      startedAt,
      finishedAt: Date.now(),
    };
    this.#records.unshift(record);
    this.#records.length = Math.min(this.#records.length, KEEP_RECORDS);
    this.#o.log.info('preview done', { pull: request.number, sha: request.sha, state: status.state, description: status.description });
    try {
      this.#o.onRecord?.(record);
    } catch {
      /* a listener must not break previews */
    }
  }

  /** Publishes with a few attempts; a failure is logged, never thrown (the result is still recorded). */
  async #publish(fn: () => Promise<void>, signal: AbortSignal, request: PreviewRequest, what: string): Promise<void> {
    const attempts = this.#o.publishAttempts ?? 3;
    let delay = this.#o.publishDelayMs ?? 1000;
    for (let i = 1; i <= attempts && !signal.aborted; i++) {
      try {
        return await fn();
      } catch (e) {
        if (signal.aborted) return;
        const status = (e as { status?: number }).status;
        const last = i === attempts || (status !== undefined && status >= 400 && status < 500 && status !== 429);
        this.#o.log.warn(`preview: could not send the ${what} to GitHub${last ? '' : ', trying again'}`, { pull: request.number, sha: request.sha, attempt: i, error: (e as Error).message });
        if (last) return;
        await new Promise<void>((r) => {
          const t = setTimeout(r, delay);
          signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
        });
        delay *= 2;
      }
    }
  }

  /**
   * The preview itself: fetch, type-check, load and plan against what runs now (offline, never
   * applied). Throws only when `signal` stopped it; everything else is part of the result.
   */
  async preview(request: PreviewRequest, signal: AbortSignal): Promise<PreviewResult> {
    let checkout: PreviewCheckout;
    try {
      checkout = await this.#o.workspace.checkout(request.number, request.sha, signal);
    } catch (e) {
      if (signal.aborted) throw signal.reason;
      return { kind: 'error', message: (e as Error).message };
    }
    try {
      const problems: Problem[] = [];
      let typesFailed = false;
      if (this.#o.typecheck !== false) {
        const typecheck = this.#o.typecheck ?? defaultTypecheck;
        let found: Problem[];
        try {
          found = await typecheck(checkout.dir, this.#o.configFile, signal);
        } catch (e) {
          if (signal.aborted) throw signal.reason;
          return { kind: 'error', message: (e as Error).message };
        }
        if (found.length) {
          problems.push(...found);
          typesFailed = true;
        }
      }
      if (signal.aborted) throw signal.reason;
      let failed: Extract<RunEvent, { type: 'run-failed' }> | undefined;
      let planned: Planned | undefined;
      try {
        planned = await this.#o.engine.plan(
          { dir: checkout.dir, ...(this.#o.configFile ? { configFile: this.#o.configFile } : {}) },
          {
            offline: true,
            signal,
            onEvent: (e) => {
              if (e.type === 'run-failed') failed = e;
            },
          },
        );
      } catch (e) {
        if (signal.aborted) throw signal.reason;
        const stage = failed?.stage ?? 'load';
        const found = failed?.problems ?? (e instanceof ProblemsError ? e.problems : [{ file: this.#o.configFile ?? 'waffle.config.ts', message: (e as Error).message }]);
        // Docker could not be asked: the preview could not run; it says nothing about the commit.
        if (stage === 'docker' || stage === 'lock' || stage === 'interrupted') return { kind: 'error', message: (e as Error).message };
        return { kind: 'problems', stage: typesFailed ? 'types' : stage, problems: [...problems, ...dedupe(found, problems)] };
      }
      const plan: Plan = planned.plan;
      const policy = this.#o.policy?.(planned.graph, checkout.dir) ?? [];
      if (policy.length) return { kind: 'problems', stage: typesFailed ? 'types' : 'policy', problems: [...problems, ...policy], plan, notChecked: planned.notChecked };
      if (typesFailed) return { kind: 'problems', stage: 'types', problems, plan, notChecked: planned.notChecked };
      return { kind: 'plan', plan, notChecked: planned.notChecked };
    } finally {
      await checkout.release().catch((e: Error) => this.#o.log.warn('preview: could not remove its worktree', { dir: checkout.dir, error: e.message }));
    }
  }
}

/** `waffle check`'s type-check in a child process of its own, stopped with the preview. */
async function defaultTypecheck(dir: string, configFile?: string, signal?: AbortSignal): Promise<Problem[]> {
  const { typecheckInChild } = await import('../../check/typecheck-process.ts');
  return typecheckInChild(dir, configFile, signal ? { signal } : {});
}

/** Problems of `more` not already in `have` (the type-check and the load can find the same line). */
function dedupe(more: Problem[], have: Problem[]): Problem[] {
  const key = (p: Problem) => `${p.file}\u0000${p.loc ?? p.where ?? ''}\u0000${p.message}`;
  const seen = new Set(have.map(key));
  return more.filter((p) => !seen.has(key(p)));
}
