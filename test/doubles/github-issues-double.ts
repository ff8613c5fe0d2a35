/**
 * A test double of GitHub's REST API, as far as pull-request previews use it (no GitHub can be reached
 * from here): commit statuses (`POST /repos/{owner}/{repo}/statuses/{sha}`, `GET …/commits/{sha}/statuses`)
 * and issue comments (`GET/POST /repos/{owner}/{repo}/issues/{n}/comments`,
 * `PATCH /repos/{owner}/{repo}/issues/comments/{id}`), with the documented request and answer shapes,
 * status codes (201, 200, 401, 404, 422) and `Link` pagination. A token is required; every request is
 * recorded. An HTTP server on 127.0.0.1.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  body: unknown;
}
export interface StatusRecord {
  sha: string;
  state: string;
  description?: string;
  context: string;
  target_url?: string;
}
export interface CommentRecord {
  id: number;
  issue: number;
  body: string;
  user: { login: string; type: string };
  created_at: string;
  updated_at: string;
  /** How many times it was edited. */
  edits: number;
}

export interface GitHubIssuesDouble {
  url: string;
  requests: RecordedRequest[];
  statuses: StatusRecord[];
  comments: CommentRecord[];
  /** Adds a comment by someone else (a person on the pull request). */
  addComment(issue: number, body: string, login: string): CommentRecord;
  close(): Promise<void>;
}

const STATES = new Set(['error', 'failure', 'pending', 'success']);

export async function startGitHubIssuesDouble(opts: { token: string; login?: string; repo: string }): Promise<GitHubIssuesDouble> {
  const statuses: StatusRecord[] = [];
  const comments: CommentRecord[] = [];
  const requests: RecordedRequest[] = [];
  let nextId = 1000;
  const login = opts.login ?? 'waffle-bot';
  const [owner, name] = opts.repo.split('/');
  const base = `/repos/${owner}/${name}`;

  const addComment = (issue: number, body: string, who: string): CommentRecord => {
    const now = new Date().toISOString();
    const c = { id: nextId++, issue, body, user: { login: who, type: who.endsWith('[bot]') ? 'Bot' : 'User' }, created_at: now, updated_at: now, edits: 0 };
    comments.push(c);
    return c;
  };
  const view = (c: CommentRecord) => ({ id: c.id, body: c.body, user: c.user, created_at: c.created_at, updated_at: c.updated_at, html_url: `https://github.com/${opts.repo}/issues/${c.issue}#issuecomment-${c.id}` });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://x');
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = undefined;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
      requests.push({ method: req.method ?? '?', path: u.pathname + u.search, body });
      const send = (status: number, json: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
        res.end(JSON.stringify(json));
      };
      const auth = req.headers.authorization ?? '';
      if (auth !== `token ${opts.token}` && auth !== `Bearer ${opts.token}`) return send(401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
      const b = (body ?? {}) as Record<string, unknown>;
      let m: RegExpExecArray | null;
      if (req.method === 'POST' && (m = new RegExp(`^${base}/statuses/([0-9a-f]{40})$`).exec(u.pathname))) {
        if (typeof b.state !== 'string' || !STATES.has(b.state)) return send(422, { message: 'Validation Failed', errors: [{ resource: 'Status', field: 'state', code: 'invalid' }] });
        if (typeof b.description === 'string' && b.description.length > 140) return send(422, { message: 'Validation Failed', errors: [{ resource: 'Status', field: 'description', code: 'custom', message: 'description is too long (maximum is 140 characters)' }] });
        const s: StatusRecord = { sha: m[1]!, state: b.state, context: typeof b.context === 'string' ? b.context : 'default', ...(typeof b.description === 'string' ? { description: b.description } : {}), ...(typeof b.target_url === 'string' ? { target_url: b.target_url } : {}) };
        statuses.push(s);
        return send(201, { id: statuses.length, ...s, creator: { login } });
      }
      if (req.method === 'GET' && (m = new RegExp(`^${base}/commits/([0-9a-f]{40})/statuses$`).exec(u.pathname))) {
        return send(200, statuses.filter((s) => s.sha === m![1]).reverse());
      }
      if ((m = new RegExp(`^${base}/issues/(\\d+)/comments$`).exec(u.pathname))) {
        const issue = Number(m[1]);
        if (req.method === 'POST') {
          if (typeof b.body !== 'string' || !b.body) return send(422, { message: 'Validation Failed', errors: [{ resource: 'IssueComment', field: 'body', code: 'missing_field' }] });
          if (b.body.length > 65536) return send(422, { message: 'Validation Failed', errors: [{ resource: 'IssueComment', field: 'body', code: 'custom', message: 'body is too long (maximum is 65536 characters)' }] });
          return send(201, view(addComment(issue, b.body, login)));
        }
        if (req.method === 'GET') {
          const perPage = Math.min(Number(u.searchParams.get('per_page') ?? 30) || 30, 100);
          const page = Math.max(Number(u.searchParams.get('page') ?? 1) || 1, 1);
          const all = comments.filter((c) => c.issue === issue);
          const slice = all.slice((page - 1) * perPage, page * perPage);
          const headers: Record<string, string> = {};
          if (page * perPage < all.length) {
            const host = `http://${req.headers.host}`;
            headers.link = `<${host}${u.pathname}?per_page=${perPage}&page=${page + 1}>; rel="next"`;
          }
          return send(200, slice.map(view), headers);
        }
      }
      if (req.method === 'PATCH' && (m = new RegExp(`^${base}/issues/comments/(\\d+)$`).exec(u.pathname))) {
        const c = comments.find((x) => x.id === Number(m![1]));
        if (!c) return send(404, { message: 'Not Found' });
        if (c.user.login !== login) return send(403, { message: 'Must have admin rights to Repository.' });
        if (typeof b.body !== 'string' || !b.body) return send(422, { message: 'Validation Failed' });
        c.body = b.body;
        c.edits++;
        c.updated_at = new Date().toISOString();
        return send(200, view(c));
      }
      return send(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    statuses,
    comments,
    addComment,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
