/**
 * Where a pull-request preview goes on GitHub, through @octokit/rest: a commit status on the head
 * commit (context `waffle/plan`) and one issue comment on the pull request, edited in place on later
 * pushes. Auth is a token or a GitHub App installation (JWT signed with the app key, exchanged by
 * @octokit/auth-app); `baseUrl` points at GitHub Enterprise or a stand-in.
 *
 * Finding our comment again: the id we wrote last (kept in the agent's state), else the first comment
 * that starts with the marker and was written by the identity that wrote our earlier comments. A
 * comment someone else wrote with the same marker is never edited.
 */
import { Octokit } from '@octokit/rest';
import { PREVIEW_MARKER, type StatusState } from './report.ts';

export type GitHubAuth = { token: string } | { appId: string | number; privateKey: string; installationId: string | number };

/** The small key/value store the agent keeps (its history's state table). */
export interface StateStore {
  getState<T>(key: string): T | undefined;
  setState(key: string, value: unknown): void;
}

export interface PreviewPublisher {
  status(sha: string, state: StatusState, description: string, targetUrl?: string, signal?: AbortSignal): Promise<void>;
  /** Creates our comment on the pull request, or edits the one we wrote before. */
  comment(number: number, body: string, signal?: AbortSignal): Promise<{ id: number; created: boolean }>;
}

export const PREVIEW_STATUS_CONTEXT = 'waffle/plan';

/** One request to GitHub may take this long before it is given up (and retried by the caller). */
const REQUEST_TIMEOUT_MS = 15_000;

/** The caller's signal, bounded by the request time limit. */
function limit(signal: AbortSignal | undefined): AbortSignal {
  const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}

export interface GitHubPreviewOptions {
  /** `owner/name`. */
  repo: string;
  auth: GitHubAuth;
  /** API root; default `https://api.github.com`. */
  baseUrl?: string;
  fetch?: typeof fetch;
  /** Remembers our comment per pull request and who we are (survives restarts with the history). */
  state?: StateStore;
}

/** An in-memory store, for an agent without history. */
export function memoryState(): StateStore {
  const m = new Map<string, unknown>();
  return { getState: <T>(k: string) => m.get(k) as T | undefined, setState: (k, v) => void m.set(k, v) };
}

async function octokitFor(opts: GitHubPreviewOptions): Promise<Octokit> {
  const common = {
    ...(opts.baseUrl ? { baseUrl: opts.baseUrl.replace(/\/+$/, '') } : {}),
    ...(opts.fetch ? { request: { fetch: opts.fetch } } : {}),
    userAgent: 'wafflemaker-agent',
    // Our own retries are the queue's; Octokit's log would print to the console.
    log: { debug() {}, info() {}, warn() {}, error() {} },
  };
  if ('token' in opts.auth) return new Octokit({ ...common, auth: opts.auth.token });
  const { createAppAuth } = await import('@octokit/auth-app');
  return new Octokit({
    ...common,
    authStrategy: createAppAuth,
    auth: { appId: opts.auth.appId, privateKey: opts.auth.privateKey, installationId: opts.auth.installationId },
  });
}

function splitRepo(repo: string): { owner: string; repo: string } {
  const [owner, name, ...rest] = repo.split('/');
  if (!owner || !name || rest.length) throw new Error(`GitHub repository "${repo}" is not owner/name. Fix: give the repository as owner/name`);
  return { owner, repo: name };
}

export function githubPreviewPublisher(opts: GitHubPreviewOptions): PreviewPublisher {
  const where = splitRepo(opts.repo);
  const state = opts.state ?? memoryState();
  let client: Promise<Octokit> | undefined;
  const octokit = () => (client ??= octokitFor(opts));
  const commentKey = (n: number) => `preview-comment:${opts.repo}#${n}`;
  const loginKey = `preview-login:${opts.repo}`;

  async function findOurs(gh: Octokit, number: number, signal?: AbortSignal): Promise<number | undefined> {
    const login = state.getState<string>(loginKey);
    const comments = await gh.paginate(gh.rest.issues.listComments, { ...where, issue_number: number, per_page: 100, request: { signal: limit(signal) } });
    const ours = comments.find((c) => (c.body ?? '').startsWith(PREVIEW_MARKER) && (!login || c.user?.login === login));
    return ours?.id;
  }

  return {
    async status(sha, st, description, targetUrl, signal) {
      const gh = await octokit();
      await gh.rest.repos.createCommitStatus({
        ...where,
        sha,
        state: st,
        context: PREVIEW_STATUS_CONTEXT,
        description,
        ...(targetUrl ? { target_url: targetUrl } : {}),
        request: { signal: limit(signal) },
      });
    },

    async comment(number, body, signal) {
      const gh = await octokit();
      const remembered = state.getState<number>(commentKey(number));
      for (const id of [remembered, undefined]) {
        const target = id ?? (await findOurs(gh, number, signal));
        if (target === undefined) break;
        try {
          await gh.rest.issues.updateComment({ ...where, comment_id: target, body, request: { signal: limit(signal) } });
          state.setState(commentKey(number), target);
          return { id: target, created: false };
        } catch (e) {
          // Deleted by someone: look again, then write a new one.
          if ((e as { status?: number }).status !== 404) throw e;
          state.setState(commentKey(number), null);
          if (id === undefined) break;
        }
      }
      const res = await gh.rest.issues.createComment({ ...where, issue_number: number, body, request: { signal: limit(signal) } });
      state.setState(commentKey(number), res.data.id);
      if (res.data.user?.login) state.setState(loginKey, res.data.user.login);
      return { id: res.data.id, created: true };
    },
  };
}
