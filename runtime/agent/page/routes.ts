/**
 * The page's routes on the agent's HTTP server (fastify):
 * - `GET /`: the overview; `GET /deployments/<id>` asked for by a browser (Accept: text/html): that
 *   deploy's page — the same address the commit status links to, whose JSON stays the management API's;
 * - `?partial=1` on either: only the part that changes (what the live script swaps in);
 * - `GET /events`: server-sent events of the agent's event stream (`?deployment=<id>`: that deploy's);
 * - `POST /login` (the sign-in form: a token in, a cookie out), `POST /logout`.
 * Every answer is HTML or an event stream with a strict Content-Security-Policy (only this response's
 * nonce may run a script or style), no caching, no referrer.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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

const DEPLOYMENT_PATH = /^\/deployments\/([0-9A-Za-z_-]{1,64})$/;

/** A browser asking for a page (Accept prefers text/html over JSON). */
export function wantsHtml(req: FastifyRequest): boolean {
  const accept = String(req.headers.accept ?? '');
  const h = accept.indexOf('text/html');
  const j = accept.indexOf('application/json');
  return h !== -1 && (j === -1 || h < j);
}

function headers(reply: FastifyReply, nonce: string): FastifyReply {
  return reply
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header(
      'content-security-policy',
      `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
    );
}

/** The body of a form post, whatever the server's parser made of it (bytes, text, or fields). */
function formFields(body: unknown): URLSearchParams {
  if (Buffer.isBuffer(body)) return new URLSearchParams(body.toString('utf8'));
  if (typeof body === 'string') return new URLSearchParams(body);
  if (body && typeof body === 'object') return new URLSearchParams(Object.entries(body as Record<string, string>).map(([k, v]) => [k, String(v)]));
  return new URLSearchParams();
}

/** Run events that change what the overview shows (a service's state, a deploy's result). */
const OVERVIEW_RUN_EVENTS = new Set(['plan-ready', 'op-done', 'op-failed', 'apply-done', 'run-failed']);

export function registerPage(app: FastifyInstance, o: PageOptions): void {
  const closing = new AbortController();
  app.addHook('preClose', (done) => {
    // Open event streams would keep the server from closing.
    closing.abort();
    done();
  });

  const nonce = () => randomBytes(16).toString('base64');
  const partial = (req: FastifyRequest) => (req.query as { partial?: string } | undefined)?.partial === '1';

  /** Answers a reader without access: the sign-in form for a browser, 401 for a program. */
  const refuse = (req: FastifyRequest, reply: FastifyReply) => {
    if (wantsHtml(req) && !partial(req)) {
      const n = nonce();
      return headers(reply, n).status(401).send(loginPage(n, { next: req.url }));
    }
    return reply.status(401).header('www-authenticate', 'Bearer').send({ error: "the page needs the agent's read-only or management token" });
  };
  const allowed = (req: FastifyRequest) => mayRead(o.access, { authorization: req.headers.authorization, cookie: req.headers.cookie });

  app.get('/', async (req, reply) => {
    if (!allowed(req)) return refuse(req, reply);
    const data = await o.source.overview();
    const n = nonce();
    return headers(reply, n).send(partial(req) ? overviewContent(data).text : overviewPage(data, n));
  });

  // A browser's request for a deploy: answered here, before the management API's route (and its token) sees it.
  app.addHook('onRequest', async (req, reply) => {
    if (req.method !== 'GET' || !wantsHtml(req)) return;
    const m = DEPLOYMENT_PATH.exec(req.url.split('?')[0]!);
    if (!m) return;
    if (!allowed(req)) return refuse(req, reply);
    const data = await o.source.deployment(m[1]!);
    const n = nonce();
    if (!data) return headers(reply, n).status(404).send(notFoundPage(n, `No deploy ${m[1]} in the history.`));
    return headers(reply, n).send(partial(req) ? deploymentContent(data).text : deploymentPage(data, n));
  });

  app.get('/events', (req, reply) => {
    if (!allowed(req)) return refuse(req, reply);
    const deployment = (req.query as { deployment?: string } | undefined)?.deployment;
    const filter = deployment
      ? (e: AgentEvent) => (e.type === 'deployment' && e.id === deployment) || (e.type === 'run-event' && e.deployment === deployment)
      : (e: AgentEvent) => e.type !== 'run-event' || OVERVIEW_RUN_EVENTS.has(e.event);
    reply.hijack();
    serveEvents(reply.raw, o.events, { filter, signal: closing.signal, ...(o.heartbeatMs ? { heartbeatMs: o.heartbeatMs } : {}) });
  });

  app.post('/login', async (req, reply) => {
    const form = formFields(req.body);
    const token = form.get('token') ?? '';
    const next = safeNext(form.get('next'));
    if (!token || !tokenOpensPage(o.access, token)) {
      const n = nonce();
      return headers(reply, n).status(401).send(loginPage(n, { error: 'That token does not open this page.', next }));
    }
    return reply.status(303).header('set-cookie', setCookie(token, !!o.secure)).header('location', next).header('cache-control', 'no-store').send();
  });

  app.post('/logout', async (_req, reply) => reply.status(303).header('set-cookie', clearCookie(!!o.secure)).header('location', '/').send());
}
