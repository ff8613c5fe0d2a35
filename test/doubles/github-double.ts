/**
 * A test DOUBLE of GitHub's REST API (api.github.com cannot be reached from here), for the part
 * Wafflemaker uses. It is a real HTTP server (node:http on 127.0.0.1, random port) that answers with
 * GitHub's documented shapes and rules:
 *
 * - Authentication: `Authorization: token <t>` or `Bearer <t>`. A repository endpoint without it gets
 *   `401 {"message":"Requires authentication"}`, an unknown or expired token `401 {"message":"Bad credentials"}`;
 *   a token that does not reach the repository (an installation of another account) gets `404 Not Found`,
 *   as GitHub hides private repositories. Personal tokens are registered with `addToken`.
 * - `POST /app/installations/{installation_id}/access_tokens`: needs a JWT (`Bearer`) signed RS256 with
 *   the app's private key; the double verifies the signature against the public key registered with
 *   `addApp`, `iss` (the app id), `iat` (not in the future) and `exp` (in the future, at most 10 minutes
 *   ahead). Answers `201 {token: 'ghs_…', expires_at, permissions, repository_selection}`; the token then
 *   works on the installation's repositories for an hour. A JWT is refused on repository endpoints.
 * - `POST /repos/{owner}/{repo}/statuses/{sha}`: body `{state, target_url?, description?, context?}`;
 *   `state` one of error, failure, pending, success; `description` at most 140 characters; `target_url`
 *   an http(s) URL; `context` defaults to "default". Bad input gets `422 {"message":"Validation Failed",
 *   "errors":[{resource:'Status', field, code}]}`; an unknown sha `422 No commit found for SHA`. Answers
 *   `201` with the status (id, url, state, description, target_url, context, created_at, updated_at, creator).
 * - `GET /repos/{owner}/{repo}/commits/{ref}/statuses`: the statuses of a commit, newest first
 *   (`per_page`, `page`).
 * - Issue comments: `POST /repos/{o}/{r}/issues/{n}/comments` `{body}` → 201, `PATCH
 *   /repos/{o}/{r}/issues/comments/{id}` `{body}` → 200, `GET /repos/{o}/{r}/issues/{n}/comments` → oldest first.
 *
 * Every request is recorded (method, path, query, headers, parsed body, the status answered). `failNext(n)`
 * makes the next n matching requests fail with a 500 (or another status) before anything is done, for
 * retry tests.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPublicKey, randomBytes, verify, type KeyObject } from 'node:crypto';

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  body: unknown;
  status: number;
  at: number;
}

export interface CommitStatus {
  url: string;
  avatar_url: string | null;
  id: number;
  node_id: string;
  state: 'error' | 'failure' | 'pending' | 'success';
  description: string | null;
  target_url: string | null;
  context: string;
  created_at: string;
  updated_at: string;
  creator: { login: string; id: number; type: string };
}

export interface IssueComment {
  id: number;
  node_id: string;
  url: string;
  html_url: string;
  issue_url: string;
  body: string;
  user: { login: string; id: number; type: string };
  created_at: string;
  updated_at: string;
  author_association: string;
}

interface Credential {
  login: string;
  type: 'User' | 'Bot';
  /** Repositories ('owner/name') it reaches; undefined: all. */
  repos?: string[];
  /** Epoch ms; undefined: never. */
  expiresAt?: number;
}

interface App {
  id: string;
  publicKey: KeyObject;
  /** installation id → repositories it covers. */
  installations: Map<string, string[]>;
  slug: string;
}

interface Failure {
  remaining: number;
  status: number;
  match?: (method: string, path: string) => boolean;
}

const STATES = ['error', 'failure', 'pending', 'success'];
const DOCS = 'https://docs.github.com/rest';

export class GitHubDouble {
  readonly requests: RecordedRequest[] = [];
  private server?: http.Server;
  private port = 0;
  private readonly tokens = new Map<string, Credential>();
  private readonly apps = new Map<string, App>();
  /** 'owner/name' → known commit shas (undefined: any well-formed sha). */
  private readonly repos = new Map<string, Set<string> | undefined>();
  /** 'owner/name@sha' → statuses, oldest first. */
  private readonly statusesBy = new Map<string, CommitStatus[]>();
  private readonly comments = new Map<number, IssueComment & { repo: string; issue: number }>();
  private failures: Failure[] = [];
  private nextId = 1000;
  /** The double's clock (epoch ms); tests may replace it. */
  now: () => number = Date.now;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const server = http.createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A repository the double knows; with `commits`, only those shas exist in it. */
  addRepo(repo: string, commits?: string[]): void {
    this.repos.set(repo.toLowerCase(), commits ? new Set(commits) : undefined);
  }

  /** A personal access token reaching `repos` (default: every repository). */
  addToken(token: string, opts: { login?: string; repos?: string[]; expiresAt?: number } = {}): void {
    this.tokens.set(token, { login: opts.login ?? 'octocat', type: 'User', ...(opts.repos ? { repos: opts.repos.map((r) => r.toLowerCase()) } : {}), ...(opts.expiresAt ? { expiresAt: opts.expiresAt } : {}) });
  }

  /** A GitHub App (its public key, PEM) installed as `installations` (installation id → repositories). */
  addApp(opts: { appId: string | number; publicKey: string; installations: Record<string, string[]>; slug?: string }): void {
    const id = String(opts.appId);
    this.apps.set(id, {
      id,
      publicKey: createPublicKey(opts.publicKey),
      installations: new Map(Object.entries(opts.installations).map(([k, v]) => [k, v.map((r) => r.toLowerCase())])),
      slug: opts.slug ?? `app-${id}`,
    });
  }

  /** The next `n` requests (matching `match`, when given) fail with `status` (default 500) before doing anything. */
  failNext(n: number, opts: { status?: number; match?: (method: string, path: string) => boolean } = {}): void {
    this.failures.push({ remaining: n, status: opts.status ?? 500, ...(opts.match ? { match: opts.match } : {}) });
  }

  /** The statuses of a commit as GitHub keeps them, oldest first. */
  statuses(repo: string, sha: string): CommitStatus[] {
    return [...(this.statusesBy.get(`${repo.toLowerCase()}@${sha}`) ?? [])];
  }

  /** The comments of an issue or pull request, oldest first. */
  issueComments(repo: string, issue: number): IssueComment[] {
    return [...this.comments.values()].filter((c) => c.repo === repo.toLowerCase() && c.issue === issue).map(({ repo: _r, issue: _i, ...c }) => c);
  }

  /** Installation tokens issued so far (for asserting that the app flow was used). */
  issuedInstallationTokens(): string[] {
    return [...this.tokens.entries()].filter(([, c]) => c.type === 'Bot').map(([t]) => t);
  }

  // ───────────────────────────── HTTP ─────────────────────────────

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://double');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown = raw === '' ? undefined : raw;
    let badJson = false;
    if (raw !== '') {
      try {
        body = JSON.parse(raw);
      } catch {
        badJson = true;
      }
    }
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body,
      status: 0,
      at: this.now(),
    };
    this.requests.push(record);
    const send = (status: number, payload?: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      const text = payload === undefined ? '' : JSON.stringify(payload);
      res.writeHead(status, {
        ...(payload === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
        'x-github-media-type': 'github.v3; format=json',
        'x-github-request-id': randomBytes(8).toString('hex').toUpperCase(),
        ...headers,
      });
      res.end(text);
    };

    const failure = this.failures.find((f) => f.remaining > 0 && (!f.match || f.match(record.method, record.path)));
    if (failure) {
      failure.remaining--;
      this.failures = this.failures.filter((f) => f.remaining > 0);
      return send(failure.status, { message: failure.status >= 500 ? 'Server Error' : 'Failure', documentation_url: DOCS });
    }
    if (badJson) return send(400, { message: 'Problems parsing JSON', documentation_url: DOCS });

    try {
      this.route(record, body, send);
    } catch (err) {
      send(500, { message: `double: ${(err as Error).message}` });
    }
  }

  private route(r: RecordedRequest, body: unknown, send: (status: number, payload?: unknown, headers?: Record<string, string>) => void): void {
    const p = r.path.split('/').filter(Boolean).map(decodeURIComponent);
    const m = r.method;
    if (m === 'POST' && p.length === 4 && p[0] === 'app' && p[1] === 'installations' && p[3] === 'access_tokens') return this.installationToken(r, p[2]!, send);

    if (p[0] !== 'repos' || p.length < 4) return send(404, { message: 'Not Found', documentation_url: DOCS });
    const repo = `${p[1]}/${p[2]}`.toLowerCase();
    const auth = this.authenticate(r, repo);
    if ('status' in auth) return send(auth.status, { message: auth.message, documentation_url: DOCS });
    if (!this.repos.has(repo)) return send(404, { message: 'Not Found', documentation_url: DOCS });
    const rest = p.slice(3);

    if (m === 'POST' && rest.length === 2 && rest[0] === 'statuses') return this.createStatus(repo, rest[1]!, body, auth, send);
    if (m === 'GET' && rest.length === 3 && rest[0] === 'commits' && rest[2] === 'statuses') {
      const list = this.statuses(repo, rest[1]!).reverse();
      return send(200, page(list, r.query));
    }
    if (rest[0] === 'issues' && rest.length === 3 && rest[2] === 'comments' && /^\d+$/.test(rest[1]!)) {
      const issue = Number(rest[1]);
      if (m === 'POST') return this.createComment(repo, issue, body, auth, send);
      if (m === 'GET') return send(200, page(this.issueComments(repo, issue), r.query));
    }
    if (m === 'PATCH' && rest.length === 3 && rest[0] === 'issues' && rest[1] === 'comments' && /^\d+$/.test(rest[2]!)) {
      const c = this.comments.get(Number(rest[2]));
      if (!c || c.repo !== repo) return send(404, { message: 'Not Found', documentation_url: DOCS });
      const text = (body as { body?: unknown } | undefined)?.body;
      if (typeof text !== 'string') return send(422, validation('IssueComment', 'body', 'missing_field'));
      c.body = text;
      c.updated_at = new Date(this.now()).toISOString();
      const { repo: _r, issue: _i, ...out } = c;
      return send(200, out);
    }
    return send(404, { message: 'Not Found', documentation_url: DOCS });
  }

  /** The credential behind the Authorization header, for a repository endpoint. */
  private authenticate(r: RecordedRequest, repo: string): Credential | { status: number; message: string } {
    const header = r.headers.authorization;
    if (!header) return { status: 401, message: 'Requires authentication' };
    const m = /^(token|bearer)\s+(\S+)$/i.exec(header);
    const cred = m ? this.tokens.get(m[2]!) : undefined;
    if (!cred || (cred.expiresAt !== undefined && cred.expiresAt <= this.now())) return { status: 401, message: 'Bad credentials' };
    if (cred.repos && !cred.repos.includes(repo)) return { status: 404, message: 'Not Found' };
    return cred;
  }

  private createStatus(repo: string, sha: string, body: unknown, cred: Credential, send: (s: number, p?: unknown) => void): void {
    const known = this.repos.get(repo);
    if (!/^[0-9a-f]{40}$/i.test(sha) || (known && !known.has(sha))) {
      return send(422, { message: `No commit found for SHA: ${sha}`, documentation_url: `${DOCS}/commits/statuses#create-a-commit-status` });
    }
    const b = (body ?? {}) as Record<string, unknown>;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return send(422, validation('Status', 'state', 'missing_field'));
    if (b.state === undefined) return send(422, validation('Status', 'state', 'missing_field'));
    if (typeof b.state !== 'string' || !STATES.includes(b.state)) return send(422, validation('Status', 'state', 'custom', 'state is not included in the list'));
    if (b.description !== undefined && b.description !== null) {
      if (typeof b.description !== 'string') return send(422, validation('Status', 'description', 'invalid'));
      if ([...b.description].length > 140) return send(422, validation('Status', 'description', 'custom', 'description is too long (maximum is 140 characters)'));
    }
    if (b.target_url !== undefined && b.target_url !== null) {
      let ok = false;
      try {
        ok = typeof b.target_url === 'string' && ['http:', 'https:'].includes(new URL(b.target_url).protocol);
      } catch {
        ok = false;
      }
      if (!ok) return send(422, validation('Status', 'target_url', 'custom', 'target_url is not a valid URL'));
    }
    if (b.context !== undefined && typeof b.context !== 'string') return send(422, validation('Status', 'context', 'invalid'));
    const key = `${repo}@${sha}`;
    const list = this.statusesBy.get(key) ?? [];
    const context = (b.context as string | undefined) ?? 'default';
    if (list.filter((s) => s.context.toLowerCase() === context.toLowerCase()).length >= 1000) {
      return send(422, validation('Status', 'context', 'custom', 'This SHA and context has reached the maximum number of statuses.'));
    }
    const id = this.nextId++;
    const at = new Date(this.now()).toISOString();
    const status: CommitStatus = {
      url: `${this.url}/repos/${repo}/statuses/${sha}`,
      avatar_url: null,
      id,
      node_id: Buffer.from(`StatusContext${id}`).toString('base64'),
      state: b.state as CommitStatus['state'],
      description: (b.description as string | null | undefined) ?? null,
      target_url: (b.target_url as string | null | undefined) ?? null,
      context,
      created_at: at,
      updated_at: at,
      creator: { login: cred.login, id: 1, type: cred.type },
    };
    list.push(status);
    this.statusesBy.set(key, list);
    send(201, status);
  }

  private createComment(repo: string, issue: number, body: unknown, cred: Credential, send: (s: number, p?: unknown) => void): void {
    const text = (body as { body?: unknown } | undefined)?.body;
    if (typeof text !== 'string') return send(422, validation('IssueComment', 'body', 'missing_field'));
    if (text.length > 65536) return send(422, validation('IssueComment', 'body', 'custom', 'Body is too long (maximum is 65536 characters)'));
    const id = this.nextId++;
    const at = new Date(this.now()).toISOString();
    const c = {
      id,
      node_id: Buffer.from(`IssueComment${id}`).toString('base64'),
      url: `${this.url}/repos/${repo}/issues/comments/${id}`,
      html_url: `https://github.com/${repo}/pull/${issue}#issuecomment-${id}`,
      issue_url: `${this.url}/repos/${repo}/issues/${issue}`,
      body: text,
      user: { login: cred.login, id: 1, type: cred.type },
      created_at: at,
      updated_at: at,
      author_association: cred.type === 'Bot' ? 'NONE' : 'OWNER',
      repo,
      issue,
    };
    this.comments.set(id, c);
    const { repo: _r, issue: _i, ...out } = c;
    send(201, out);
  }

  private installationToken(r: RecordedRequest, installationId: string, send: (s: number, p?: unknown) => void): void {
    const header = r.headers.authorization;
    const m = header ? /^bearer\s+(\S+)$/i.exec(header) : null;
    if (!m) return send(401, { message: 'A JSON web token could not be decoded', documentation_url: DOCS });
    const claims = this.verifyJwt(m[1]!);
    if ('message' in claims) return send(401, { message: claims.message, documentation_url: DOCS });
    const covered = claims.app.installations.get(installationId);
    if (!covered) return send(404, { message: 'Not Found', documentation_url: DOCS });
    const token = `ghs_${randomBytes(27).toString('base64url').replace(/[-_]/g, 'x')}`;
    const expiresAt = this.now() + 60 * 60 * 1000;
    this.tokens.set(token, { login: `${claims.app.slug}[bot]`, type: 'Bot', repos: covered, expiresAt });
    send(201, {
      token,
      expires_at: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      permissions: { statuses: 'write', pull_requests: 'write', issues: 'write', contents: 'read', metadata: 'read' },
      repository_selection: 'selected',
    });
  }

  /** Verifies a GitHub App JWT as GitHub does: RS256 over header.payload, iss an app, iat past, exp ≤ 10 minutes ahead. */
  private verifyJwt(jwt: string): { app: App } | { message: string } {
    const undecodable = { message: 'A JSON web token could not be decoded' };
    const parts = jwt.split('.');
    if (parts.length !== 3) return undecodable;
    let header: { alg?: string; typ?: string };
    let payload: { iss?: unknown; iat?: unknown; exp?: unknown };
    try {
      header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'));
      payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    } catch {
      return undecodable;
    }
    if (header.alg !== 'RS256') return undecodable;
    const app = this.apps.get(String(payload.iss));
    if (!app) return { message: "'Issuer' claim ('iss') must be an Integer" };
    const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
    if (!verify('RSA-SHA256', signed, app.publicKey, Buffer.from(parts[2]!, 'base64url'))) return undecodable;
    const now = Math.floor(this.now() / 1000);
    if (typeof payload.iat !== 'number' || !Number.isInteger(payload.iat) || payload.iat > now + 5) {
      return { message: "'Issued at' claim ('iat') must be an Integer representing a time in the past" };
    }
    if (typeof payload.exp !== 'number' || !Number.isInteger(payload.exp) || payload.exp <= now) {
      return { message: "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires" };
    }
    if (payload.exp > now + 600 + 5) return { message: "'Expiration time' claim ('exp') is too far in the future" };
    return { app };
  }
}

/** GitHub's 422 body. */
function validation(resource: string, field: string, code: string, message?: string): unknown {
  return { message: 'Validation Failed', errors: [{ resource, field, code, ...(message ? { message } : {}) }], documentation_url: DOCS };
}

/** `per_page` (default 30, at most 100) and `page` (from 1), as GitHub pages lists. */
function page<T>(list: T[], query: Record<string, string>): T[] {
  const per = Math.min(100, Math.max(1, Number(query.per_page ?? 30) || 30));
  const n = Math.max(1, Number(query.page ?? 1) || 1);
  return list.slice((n - 1) * per, n * per);
}
