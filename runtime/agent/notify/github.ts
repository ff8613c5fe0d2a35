/**
 * GitHub commit statuses for deployments, through @octokit/rest: `pending` while a commit deploys,
 * then `success` (applied, or nothing to change), `failure` (the commit could not be deployed) or
 * `error` (the deploy was interrupted), under the context `waffle/deploy`, with a one-line description
 * (at most GitHub's 140 characters) and a link to the deployment.
 *
 * Authentication: a token (`{ token }`: a fine-grained or classic personal token with statuses write),
 * or a GitHub App installation (`{ appId, privateKey, installationId }`: @octokit/auth-app signs an
 * RS256 JWT with the app's key, trades it for an installation token and renews that before it expires).
 * Credentials go only into the Authorization header; errors carry GitHub's message, never the token.
 */
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';
import { PermanentNotifyError, retryableStatus, type DeploymentReport, type Logger, type Notifier } from './notifier.ts';

export type GitHubAuth = { token: string } | { appId: string | number; privateKey: string; installationId: string | number };

export interface GitHubStatusOptions {
  /** 'owner/name' (a report's own `repo` wins). */
  repo: string;
  auth: GitHubAuth;
  /** API root; default https://api.github.com (GitHub Enterprise: https://host/api/v3). */
  baseUrl?: string;
  fetch?: typeof fetch;
  /** Status context; default 'waffle/deploy'. */
  context?: string;
  /** Time limit of one request in ms; default 15000. */
  timeoutMs?: number;
  /** Where Octokit's own warnings go (e.g. a clock difference with GitHub); default nowhere. */
  log?: Logger;
}

export const STATUS_CONTEXT = 'waffle/deploy';
/** GitHub refuses longer descriptions. */
export const MAX_DESCRIPTION = 140;

/** A deployment's state as a commit status state. */
export function commitState(state: DeploymentReport['state']): 'pending' | 'success' | 'failure' | 'error' {
  switch (state) {
    case 'pending':
      return 'pending';
    case 'applied':
    case 'no-op':
      return 'success';
    case 'failed':
      return 'failure';
    case 'interrupted':
      return 'error';
  }
}

/** One line of at most `max` characters (code points), cut with an ellipsis. */
export function oneLine(text: string, max = MAX_DESCRIPTION): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  const chars = [...flat];
  return chars.length <= max ? flat : chars.slice(0, max - 1).join('').trimEnd() + '…';
}

/** An http(s) URL GitHub accepts as target_url, or undefined. */
function targetUrl(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return ['http:', 'https:'].includes(new URL(url).protocol) ? url : undefined;
  } catch {
    return undefined;
  }
}

function splitRepo(repo: string): { owner: string; repo: string } {
  const m = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(repo);
  if (!m) throw new PermanentNotifyError(`"${repo}" is not a GitHub repository name: write owner/name`);
  return { owner: m[1]!, repo: m[2]! };
}

const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

export function githubStatusNotifier(opts: GitHubStatusOptions): Notifier {
  splitRepo(opts.repo);
  const log = opts.log ? { debug: () => {}, info: () => {}, warn: (m: string) => opts.log!.warn(m), error: (m: string) => opts.log!.error(m) } : quiet;
  const common = {
    ...(opts.baseUrl ? { baseUrl: opts.baseUrl.replace(/\/+$/, '') } : {}),
    ...(opts.fetch ? { request: { fetch: opts.fetch } } : {}),
    userAgent: 'wafflemaker-agent',
    log,
  };
  const octokit =
    'token' in opts.auth
      ? new Octokit({ ...common, auth: opts.auth.token })
      : new Octokit({
          ...common,
          authStrategy: createAppAuth,
          auth: { appId: opts.auth.appId, privateKey: opts.auth.privateKey, installationId: opts.auth.installationId, log },
        });
  const context = opts.context ?? STATUS_CONTEXT;
  const timeoutMs = opts.timeoutMs ?? 15_000;

  return {
    name: `github:${opts.repo}`,
    async notify(r: DeploymentReport, signal?: AbortSignal): Promise<void> {
      const { owner, repo } = splitRepo(r.repo ?? opts.repo);
      const url = targetUrl(r.url);
      const timeout = AbortSignal.timeout(timeoutMs);
      try {
        await octokit.rest.repos.createCommitStatus({
          owner,
          repo,
          sha: r.commit,
          state: commitState(r.state),
          description: oneLine(r.description || r.state),
          context,
          ...(url ? { target_url: url } : {}),
          request: { signal: signal ? AbortSignal.any([signal, timeout]) : timeout },
        });
      } catch (err) {
        const e = err as Error & { status?: number };
        if (typeof e.status === 'number' && e.status > 0 && !retryableStatus(e.status)) {
          throw new PermanentNotifyError(`GitHub refused the commit status for ${owner}/${repo}@${r.commit.slice(0, 7)}: ${e.status} ${e.message}`, e.status);
        }
        const wrapped = new Error(`GitHub commit status for ${owner}/${repo}@${r.commit.slice(0, 7)} not sent: ${e.message}`) as Error & { status?: number };
        if (typeof e.status === 'number') wrapped.status = e.status;
        throw wrapped;
      }
    },
  };
}
