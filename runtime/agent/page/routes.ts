/**
 * The page's routes on the agent's HTTP server (node:http):
 * - `GET /`: the overview; `GET /deployments/<id>` asked for by a browser (Accept: text/html): that
 *   deploy's page — the same address the commit status links to, whose JSON stays the management API's;
 * - `?partial=1` on either: only the part that changes (what the live script swaps in);
 * - `GET /events`: server-sent events of the agent's event stream (`?deployment=<id>`: that deploy's);
 * - `POST /login` (the sign-in form: a token in, a cookie out), `POST /logout`.
 * Every page is HTML with a strict Content-Security-Policy (only this response's nonce may run a
 * script or style), no caching, no referrer.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { clearCookie, mayRead, safeNext, setCookie, tokenOpensPage, type PageAccess } from './access.ts';
import { serveEvents, type AgentEvent, type AgentEvents } from './stream.ts';
import type { PageSource } from './source.ts';
import { deploymentContent, deploymentPage, loginPage, notFoundPage, overviewContent, overviewPage } from './views.ts';

export interface PageOptions {
  access: PageAccess;
  /** The agent is reached over https: the cookie gets `Secure`. */
  secure?: boolean;
  source: PageSource;
  events: AgentEvents;
  /** Keep-alive comments on the event stream; default 15 s. */
  heartbeatMs?: number;
}

export interface PageRoutes {
  /** Answers the request when it is the page's; false when it belongs to another route. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<boolean>;
  /** Ends the open event streams (they would keep the server from closing). */
  close(): void;
}

const DEPLOYMENT_PATH = /^\/deployments\/([0-9A-Za-z_-]{1,64})$/;
/** The sign-in form is small; anything larger is not one. */
const FORM_LIMIT = 8 * 1024;

/** A browser asking for a page (Accept prefers text/html over JSON). */
export function wantsHtml(accept: string | undefined): boolean {
  const a = accept ?? '';
  const h = a.indexOf('text/html');
  const j = a.indexOf('application/json');
  return h !== -1 && (j === -1 || h < j);
}

function securityHeaders(nonce: string): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'content-security-policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
  };
}

function sendHtml(res: http.ServerResponse, status: number, nonce: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...securityHeaders(nonce), 'content-length': String(Buffer.byteLength(body)), ...extra });
  res.end(body);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), ...extra });
  res.end(text);
}

function readForm(req: http.IncomingMessage): Promise<URLSearchParams | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    req.on('data', (c: Buffer) => {
      total += c.length;
      if (total > FORM_LIMIT) {
        req.removeAllListeners('data');
        req.resume();
        resolve(undefined);
      } else chunks.push(c);
    });
    req.once('end', () => resolve(total > FORM_LIMIT ? undefined : new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.once('error', reject);
  });
}

/** Run events that change what the overview shows (a service's state, a deploy's result). */
const OVERVIEW_RUN_EVENTS = new Set(['plan-ready', 'op-done', 'op-failed', 'apply-done', 'run-failed']);

export function pageRoutes(o: PageOptions): PageRoutes {
  const closing = new AbortController();
  const nonce = () => randomBytes(16).toString('base64');
  const header = (req: http.IncomingMessage, name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const allowed = (req: http.IncomingMessage) => mayRead(o.access, { authorization: header(req, 'authorization'), cookie: header(req, 'cookie') });

  /** Answers a reader without access: the sign-in form for a browser, 401 for a program. */
  const refuse = (req: http.IncomingMessage, res: http.ServerResponse, partial: boolean) => {
    if (wantsHtml(header(req, 'accept')) && !partial) {
      const n = nonce();
      return sendHtml(res, 401, n, loginPage(n, { next: req.url ?? '/' }));
    }
    return sendJson(res, 401, { error: "the page needs the agent's read-only or management token" }, { 'www-authenticate': 'Bearer' });
  };

  return {
    close: () => closing.abort(),

    async handle(req, res) {
      const url = new URL(req.url ?? '/', 'http://agent');
      const path = url.pathname;
      const method = req.method ?? 'GET';
      const partial = url.searchParams.get('partial') === '1';
      const deployment = DEPLOYMENT_PATH.exec(path);
      const isGet = method === 'GET' || method === 'HEAD';

      if (path === '/' && isGet) {
        if (!allowed(req)) {
          refuse(req, res, partial);
          return true;
        }
        const data = await o.source.overview();
        const n = nonce();
        sendHtml(res, 200, n, partial ? overviewContent(data).text : overviewPage(data, n));
        return true;
      }
      // A browser's request for a deploy: answered here, before the management API's route (and its token).
      if (deployment && isGet && wantsHtml(header(req, 'accept'))) {
        if (!allowed(req)) {
          refuse(req, res, partial);
          return true;
        }
        const id = decodeURIComponent(deployment[1]!);
        const data = await o.source.deployment(id);
        const n = nonce();
        if (!data) sendHtml(res, 404, n, notFoundPage(n, `No deploy ${id} in the history.`));
        else sendHtml(res, 200, n, partial ? deploymentContent(data).text : deploymentPage(data, n));
        return true;
      }
      if (path === '/events' && isGet) {
        if (!allowed(req)) {
          refuse(req, res, true);
          return true;
        }
        const only = url.searchParams.get('deployment');
        const filter = only
          ? (e: AgentEvent) => (e.type === 'deployment' && e.id === only) || (e.type === 'run-event' && e.deployment === only)
          : (e: AgentEvent) => e.type !== 'run-event' || OVERVIEW_RUN_EVENTS.has(e.event);
        serveEvents(res, o.events, { filter, signal: closing.signal, ...(o.heartbeatMs ? { heartbeatMs: o.heartbeatMs } : {}) });
        return true;
      }
      if (path === '/login' && method === 'POST') {
        const form = await readForm(req);
        const token = form?.get('token') ?? '';
        const next = safeNext(form?.get('next'));
        if (!token || !tokenOpensPage(o.access, token)) {
          const n = nonce();
          sendHtml(res, 401, n, loginPage(n, { error: 'That token does not open this page.', next }));
          return true;
        }
        res.writeHead(303, { 'set-cookie': setCookie(token, !!o.secure), location: next, 'cache-control': 'no-store', 'content-length': '0' });
        res.end();
        return true;
      }
      if (path === '/logout' && method === 'POST') {
        req.resume();
        res.writeHead(303, { 'set-cookie': clearCookie(!!o.secure), location: '/', 'content-length': '0' });
        res.end();
        return true;
      }
      return false;
    },
  };
}
