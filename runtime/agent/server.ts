/**
 * The agent's HTTP side: GitHub webhooks, the management API (bearer token) and what a monitor reads
 * (health, metrics). Bodies are kept raw (the signature covers the exact bytes) and limited to
 * GitHub's 25 MB: a larger one is answered 413 as soon as its length says so, or as soon as a chunked
 * body passes the limit, never buffered whole. Every webhook delivery is recorded with what was done
 * with it and why.
 *
 * The status page and pull-request previews plug in (page/routes.ts, preview/preview.ts).
 *
 * Built on node:http with a table of eight routes: a framework (fastify) costs about 20 MiB of
 * resident memory on its own, a quarter of what the whole agent may use on a small server.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { History } from '../history/history.ts';
import type { AgentMetrics } from './metrics.ts';
import type { Logger } from './notify/notifier.ts';
import type { Agent } from './agent.ts';
import { classify, payloadOf, verifySignature } from './github-webhook.ts';
import { classifyPullRequest, type PreviewRunner } from './preview/preview.ts';
import { pageRoutes, type PageOptions } from './page/routes.ts';
import { newRunId } from '../engine.ts';
import type { HookRequest, HookResponse } from './registry-hook.ts';

/** GitHub's own limit on a webhook payload. */
export const BODY_LIMIT = 25 * 1024 * 1024;

export interface ServerOptions {
  agent: Agent;
  history: History;
  metrics: AgentMetrics;
  log: Logger;
  /** The webhook secret; without it /hooks/github answers 503. */
  webhookSecret?: Buffer;
  /** The management API's bearer token; without it the management endpoints answer 403. */
  token?: string;
  /** `owner/name` whose pushes deploy. */
  githubRepo?: string;
  bodyLimit?: number;
  /** Plan previews of pull requests (`pull_request` deliveries); off without it. */
  previews?: { runner: PreviewRunner; forks: boolean };
  /** The status page (`GET /`, a browser's `GET /deployments/<id>`, `/events`, `/login`); off without it. */
  page?: PageOptions;
  /** `POST /hooks/registry` (registry push notifications); without it the route answers 503. */
  registryHook?: (req: HookRequest) => HookResponse;
}

const digest = (s: string | Buffer) => createHash('sha256').update(s).digest();

/** Whether the request carries the bearer token (compared in constant time, over digests of equal length). */
export function hasToken(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return !!m && timingSafeEqual(digest(m[1]!.trim()), digest(token));
}

export interface AgentServer {
  /** Starts listening; resolves with the address (`http://host:port`). */
  listen(host: string, port: number): Promise<string>;
  /** Stops accepting connections; requests in flight finish, idle keep-alive connections close. */
  close(): Promise<void>;
}

type Req = http.IncomingMessage;
type Res = http.ServerResponse;
interface Answer {
  status: number;
  body?: unknown;
  text?: string;
  headers?: Record<string, string>;
}

class TooLarge extends Error {}

/** The whole body, unless it is over `limit`: then TooLarge, from the header alone or as soon as the count passes it. */
function readBody(req: Req, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new TooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (c: Buffer) => {
      total += c.length;
      if (total > limit) {
        req.off('data', onData);
        chunks.length = 0;
        reject(new TooLarge());
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/**
 * 413 for a body over the limit. What the client still sends is read and thrown away (never kept) for
 * at most 10 s, then the connection is cut: closing a socket with unread data resets it, and a client
 * still writing its body would see that reset instead of the answer.
 */
function refuseTooLarge(req: Req, res: Res): void {
  req.resume();
  const cut = setTimeout(() => req.socket.destroy(), 10_000);
  cut.unref();
  req.once('end', () => clearTimeout(cut));
  req.once('close', () => clearTimeout(cut));
  send(res, { status: 413, body: { error: 'payload too large' } });
}

function send(res: Res, a: Answer): void {
  if (res.headersSent) return;
  const text = a.text ?? (a.body === undefined ? '' : JSON.stringify(a.body));
  res.writeHead(a.status, {
    'content-type': a.text !== undefined ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...a.headers,
  });
  res.end(text);
}

export async function createServer(o: ServerOptions): Promise<AgentServer> {
  const limit = o.bodyLimit ?? BODY_LIMIT;
  const branch = o.agent.branch;
  let closing = false;

  const record = (d: { id?: string; event: string; outcome: string; deployment?: string }) => {
    const row = { id: d.id ?? newRunId(), source: 'github', event: d.event, outcome: d.outcome, receivedAt: Date.now(), ...(d.deployment ? { deployment: d.deployment } : {}) };
    try {
      o.history.recordDelivery(row);
    } catch (e) {
      o.log.warn('history: could not record a delivery', { delivery: row.id, error: String(e) });
    }
    o.metrics.delivery('github', d.outcome);
    o.log.info('webhook delivery', { delivery: row.id, event: d.event, outcome: d.outcome, ...(d.deployment ? { deployment: d.deployment } : {}) });
  };
  const header = (req: Req, name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };

  async function githubHook(req: Req, body: Buffer): Promise<Answer> {
    const event = header(req, 'x-github-event') ?? '?';
    const delivery = header(req, 'x-github-delivery');
    if (!o.webhookSecret) return { status: 503, body: { error: 'webhooks are off: the agent has no --webhook-secret-file' } };
    if (!verifySignature(o.webhookSecret, body, header(req, 'x-hub-signature-256'))) {
      // Recorded under a new id: a forged delivery must not make the real one with that id look repeated.
      record({ event, outcome: `refused: bad signature (delivery ${delivery ?? '?'})` });
      return { status: 401, body: { error: 'bad signature' } };
    }
    if (delivery && o.history.hasDelivery(delivery)) {
      record({ event, outcome: `duplicate: delivery ${delivery} was handled before` });
      return { status: 200, body: { status: 'duplicate', delivery } };
    }
    const c = classify(event, body, header(req, 'content-type'), { repo: o.githubRepo ?? '', branch });
    const id = delivery ?? newRunId();
    switch (c.kind) {
      case 'ping':
        record({ id, event, outcome: 'ignored: ping' });
        return { status: 200, body: { status: 'pong' } };
      case 'malformed':
        record({ id, event, outcome: `refused: ${c.reason}` });
        return { status: 400, body: { error: c.reason } };
      case 'ignored':
        if (event === 'pull_request' && o.previews) return pullRequest(id, body, header(req, 'content-type'));
        record({ id, event, outcome: `ignored: ${c.reason}` });
        return { status: 202, body: { status: 'ignored', reason: c.reason } };
      case 'push': {
        let r;
        try {
          r = o.agent.submit({ kind: 'push', target: { head: true }, delivery: id, commit: c.commit, reason: `push to ${c.ref}` });
        } catch (e) {
          record({ id, event, outcome: `refused: ${(e as Error).message}` });
          return { status: 503, body: { error: (e as Error).message } };
        }
        record({ id, event, outcome: r.outcome, deployment: r.deployment });
        return { status: 202, body: { status: r.outcome, deployment: r.deployment, commit: c.commit } };
      }
    }
  }

  /** A verified `pull_request` delivery: a preview queued (or dropped when the pull request closed). */
  function pullRequest(id: string, body: Buffer, contentType: string | undefined): Answer {
    const event = 'pull_request';
    const previews = o.previews!;
    const parsed = payloadOf(body, contentType);
    const d = 'json' in parsed ? classifyPullRequest(parsed.json, { repo: o.githubRepo ?? '', branch, forks: previews.forks }) : { kind: 'malformed' as const, reason: parsed.reason };
    switch (d.kind) {
      case 'malformed':
        record({ id, event, outcome: `refused: ${d.reason}` });
        return { status: 400, body: { error: d.reason } };
      case 'ignored':
        record({ id, event, outcome: `ignored: ${d.reason}` });
        return { status: 202, body: { status: 'ignored', reason: d.reason } };
      case 'close':
        previews.runner.cancel(d.number);
        record({ id, event, outcome: `ignored: pull request #${d.number} closed` });
        return { status: 202, body: { status: 'ignored', reason: `pull request #${d.number} closed` } };
      case 'preview': {
        let r;
        try {
          r = previews.runner.submit({ ...d.request, delivery: id });
        } catch (e) {
          record({ id, event, outcome: `refused: ${(e as Error).message}` });
          return { status: 503, body: { error: (e as Error).message } };
        }
        const older = r.stopped ?? r.replaced;
        record({ id, event, outcome: `previewing: pull request #${d.request.number} at ${d.request.sha.slice(0, 7)}${older ? ` (replaces ${older.slice(0, 7)})` : ''}` });
        return { status: 202, body: { status: 'previewing', pull: d.request.number, commit: d.request.sha } };
      }
    }
  }

  function deploy(body: Buffer): Answer {
    let commit: string | undefined;
    const text = body.toString('utf8').trim();
    if (text) {
      let json: { commit?: unknown };
      try {
        json = JSON.parse(text);
      } catch {
        return { status: 400, body: { error: 'the body is not JSON; send {} or {"commit": "<sha>"}' } };
      }
      if (json?.commit !== undefined) {
        if (typeof json.commit !== 'string' || !/^[0-9a-f]{7,40}$/i.test(json.commit)) return { status: 400, body: { error: 'commit must be a commit id (7 to 40 hex digits)' } };
        commit = json.commit.toLowerCase();
      }
    }
    try {
      const r = o.agent.submit({ kind: 'manual', target: commit ? { commit } : { head: true }, ...(commit ? { commit } : {}), reason: 'management API' });
      return { status: 202, body: { status: r.outcome, deployment: r.deployment } };
    } catch (e) {
      return { status: 503, body: { error: (e as Error).message } };
    }
  }

  /** Management endpoints: the bearer token, or why not. */
  function denied(req: Req): Answer | undefined {
    if (!o.token) return { status: 403, body: { error: 'the management API is off: the agent has no --token-file' } };
    if (!hasToken(header(req, 'authorization'), o.token)) {
      return { status: 401, headers: { 'www-authenticate': 'Bearer' }, body: { error: "a bearer token is needed (the agent's --token-file)" } };
    }
    return undefined;
  }

  const clamp = (v: string | null, dflt: number, max: number) => Math.min(Math.max(Number(v) || dflt, 1), max);

  const page = o.page ? pageRoutes(o.page) : undefined;

  async function route(req: Req, res: Res): Promise<void> {
    // The page's routes first: a browser's GET /deployments/<id> is a page, not the API.
    if (page && (await page.handle(req, res))) return;
    const url = new URL(req.url ?? '/', 'http://agent');
    const p = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    const allowed = (methods: string) => (methods.split(',').includes(method) ? undefined : ({ status: 405, headers: { allow: methods }, body: { error: `${method} is not allowed here` } } as Answer));

    if (p === '/hooks/github') {
      const no = allowed('POST');
      if (no) return send(res, no);
      let body: Buffer;
      try {
        body = await readBody(req, limit);
      } catch (e) {
        if (!(e instanceof TooLarge)) throw e;
        // Refused unread (or as soon as it passed the limit); recorded under its own id.
        record({ event: header(req, 'x-github-event') ?? '?', outcome: `refused: body over ${Math.round(limit / 1048576)} MB (delivery ${header(req, 'x-github-delivery') ?? '?'})` });
        return refuseTooLarge(req, res);
      }
      return send(res, await githubHook(req, body));
    }
    if (p === '/hooks/registry') {
      const no = allowed('POST');
      if (no) return send(res, no);
      if (!o.registryHook) {
        req.resume();
        return send(res, { status: 503, body: { error: 'registry notifications are off: the agent has no --registry-secret-file' } });
      }
      let body: Buffer;
      try {
        // A notification envelope is small; the registry's own events never come near this.
        body = await readBody(req, 1024 * 1024);
      } catch (e) {
        if (e instanceof TooLarge) return refuseTooLarge(req, res);
        throw e;
      }
      return send(res, o.registryHook({ headers: req.headers, url: req.url ?? '/', body }));
    }
    if (p === '/healthz') return send(res, allowed('GET,HEAD') ?? { status: 200, body: { ok: true, queue: o.agent.queue.length } });
    if (p === '/metrics') return send(res, allowed('GET,HEAD') ?? { status: 200, text: await o.metrics.text(), headers: { 'content-type': o.metrics.contentType } });

    const m = /^\/deployments\/([^/]+)$/.exec(p);
    if (p !== '/deployments' && p !== '/deliveries' && p !== '/status' && !m) return send(res, { status: 404, body: { error: `no route ${p}` } });
    const no = denied(req);
    if (no) {
      req.resume(); // the body is not wanted
      return send(res, no);
    }
    if (p === '/deployments' && method === 'POST') {
      try {
        return send(res, deploy(await readBody(req, 64 * 1024)));
      } catch (e) {
        if (e instanceof TooLarge) return refuseTooLarge(req, res);
        throw e;
      }
    }
    const get = allowed(p === '/deployments' ? 'GET,POST' : 'GET');
    if (get) return send(res, get);
    if (p === '/deployments') {
      const before = url.searchParams.get('before');
      return send(res, { status: 200, body: { deployments: o.history.list({ limit: clamp(url.searchParams.get('limit'), 20, 500), ...(before ? { before } : {}) }) } });
    }
    if (m) {
      const id = decodeURIComponent(m[1]!);
      const row = o.history.get(id);
      return send(res, row ? { status: 200, body: { ...row, events: o.history.events(id) } } : { status: 404, body: { error: `no deployment ${id}` } });
    }
    if (p === '/deliveries') return send(res, { status: 200, body: { deliveries: o.history.deliveries({ limit: clamp(url.searchParams.get('limit'), 50, 2500) }) } });
    return send(res, { status: 200, body: await o.agent.status() });
  }

  const server = http.createServer((req, res) => {
    if (closing) {
      req.resume();
      return send(res, { status: 503, headers: { connection: 'close' }, body: { error: 'the agent is stopping' } });
    }
    route(req, res).catch((e: Error) => {
      o.log.error('request failed', { method: req.method, url: req.url, error: e.message });
      send(res, { status: 500, body: { error: e.message } });
    });
  });
  // Slow or stalled clients do not hold the agent: a request has 60 s to arrive whole.
  server.requestTimeout = 60_000;
  server.headersTimeout = 20_000;
  // An idle kept-alive connection stays open longer than a client's pause between deliveries (Node's
  // default is 5 s): a client that reuses it right as the server closes it would see its request cut off.
  server.keepAliveTimeout = 65_000;

  return {
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const a = server.address() as { address: string; port: number };
          resolve(`http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        closing = true;
        page?.close();
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
