/**
 * The agent's HTTP side (fastify): GitHub webhooks, the management API (bearer token) and what a
 * monitor reads (health, metrics). Bodies are kept raw (the signature covers the exact bytes) and
 * limited to GitHub's 25 MB: a larger one is answered 413 as soon as its length says so, or as soon as
 * a chunked body passes the limit, never buffered whole. Every webhook delivery is recorded with what
 * was done with it and why.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { History } from '../history/history.ts';
import type { AgentMetrics } from './metrics.ts';
import type { Logger } from './notify/notifier.ts';
import type { Agent } from './agent.ts';
import { classify, verifySignature } from './github-webhook.ts';
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
  /** `POST /hooks/registry` (registry push notifications); without it the route answers 503. */
  registryHook?: (req: HookRequest) => HookResponse;
}

const digest = (s: string | Buffer) => createHash('sha256').update(s).digest();

/** Whether the request carries the bearer token (compared in constant time, over digests of equal length). */
export function hasToken(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return !!m && timingSafeEqual(digest(m[1]!.trim()), digest(token));
}

export async function createServer(o: ServerOptions): Promise<FastifyInstance> {
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ logger: false, bodyLimit: o.bodyLimit ?? BODY_LIMIT, return503OnClosing: true, forceCloseConnections: 'idle' });
  const branch = o.agent.branch;

  // Every body stays bytes: the webhook signature is checked over them before anything is parsed.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

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
  const header = (req: FastifyRequest, name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (req.url.startsWith('/hooks/') && status === 413) {
      // Refused unread (or as soon as it passed the limit); a refused delivery is recorded under its own id.
      record({ event: header(req, 'x-github-event') ?? '?', outcome: `refused: body over ${Math.round((o.bodyLimit ?? BODY_LIMIT) / 1048576)} MB (delivery ${header(req, 'x-github-delivery') ?? '?'})` });
    }
    if (status >= 500) o.log.error('request failed', { method: req.method, url: req.url, error: err.message });
    void reply.status(status).send({ error: status === 413 ? 'payload too large' : err.message });
  });

  app.post('/hooks/github', async (req, reply) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const event = header(req, 'x-github-event') ?? '?';
    const delivery = header(req, 'x-github-delivery');
    if (!o.webhookSecret) return reply.status(503).send({ error: 'webhooks are off: the agent has no --webhook-secret-file' });
    if (!verifySignature(o.webhookSecret, body, header(req, 'x-hub-signature-256'))) {
      // Recorded under a new id: a forged delivery must not make the real one with that id look repeated.
      record({ event, outcome: `refused: bad signature (delivery ${delivery ?? '?'})` });
      return reply.status(401).send({ error: 'bad signature' });
    }
    if (delivery && o.history.hasDelivery(delivery)) {
      record({ event, outcome: `duplicate: delivery ${delivery} was handled before` });
      return reply.status(200).send({ status: 'duplicate', delivery });
    }
    const c = classify(event, body, header(req, 'content-type'), { repo: o.githubRepo ?? '', branch });
    const id = delivery ?? newRunId();
    switch (c.kind) {
      case 'ping':
        record({ id, event, outcome: 'ignored: ping' });
        return reply.status(200).send({ status: 'pong' });
      case 'malformed':
        record({ id, event, outcome: `refused: ${c.reason}` });
        return reply.status(400).send({ error: c.reason });
      case 'ignored':
        record({ id, event, outcome: `ignored: ${c.reason}` });
        return reply.status(202).send({ status: 'ignored', reason: c.reason });
      case 'push': {
        let r;
        try {
          r = o.agent.submit({ kind: 'push', target: { head: true }, delivery: id, commit: c.commit, reason: `push to ${c.ref}` });
        } catch (e) {
          record({ id, event, outcome: `refused: ${(e as Error).message}` });
          return reply.status(503).send({ error: (e as Error).message });
        }
        record({ id, event, outcome: r.outcome, deployment: r.deployment });
        return reply.status(202).send({ status: r.outcome, deployment: r.deployment, commit: c.commit });
      }
    }
  });

  app.post('/hooks/registry', async (req, reply) => {
    if (!o.registryHook) return reply.status(503).send({ error: 'registry notifications are off: the agent has no --registry-secret-file' });
    const r = o.registryHook({ headers: req.headers, url: req.url, body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0) });
    return reply.status(r.status).send(r.body);
  });

  // ── management API: bearer token ──
  const guard = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!o.token) return reply.status(403).send({ error: 'the management API is off: the agent has no --token-file' });
    if (!hasToken(header(req, 'authorization'), o.token)) {
      return reply.status(401).header('www-authenticate', 'Bearer').send({ error: 'a bearer token is needed (the agent\'s --token-file)' });
    }
  };

  app.post('/deployments', { preHandler: guard }, async (req, reply) => {
    let commit: string | undefined;
    const body = Buffer.isBuffer(req.body) ? req.body.toString('utf8').trim() : '';
    if (body) {
      let json: { commit?: unknown };
      try {
        json = JSON.parse(body);
      } catch {
        return reply.status(400).send({ error: 'the body is not JSON; send {} or {"commit": "<sha>"}' });
      }
      if (json.commit !== undefined) {
        if (typeof json.commit !== 'string' || !/^[0-9a-f]{7,40}$/i.test(json.commit)) return reply.status(400).send({ error: 'commit must be a commit id (7 to 40 hex digits)' });
        commit = json.commit.toLowerCase();
      }
    }
    try {
      const r = o.agent.submit({ kind: 'manual', target: commit ? { commit } : { head: true }, ...(commit ? { commit } : {}), reason: 'management API' });
      return reply.status(202).send({ status: r.outcome, deployment: r.deployment });
    } catch (e) {
      return reply.status(503).send({ error: (e as Error).message });
    }
  });

  app.get('/deployments', { preHandler: guard }, async (req) => {
    const q = req.query as { limit?: string; before?: string };
    const limit = Math.min(Math.max(Number(q.limit) || 20, 1), 500);
    return { deployments: o.history.list({ limit, ...(q.before ? { before: q.before } : {}) }) };
  });

  app.get('/deployments/:id', { preHandler: guard }, async (req, reply) => {
    const { id } = req.params as { id: string };
    const row = o.history.get(id);
    if (!row) return reply.status(404).send({ error: `no deployment ${id}` });
    return { ...row, events: o.history.events(id) };
  });

  app.get('/deliveries', { preHandler: guard }, async (req) => {
    const q = req.query as { limit?: string };
    return { deliveries: o.history.deliveries({ limit: Math.min(Math.max(Number(q.limit) || 50, 1), 2500) }) };
  });

  app.get('/status', { preHandler: guard }, async () => o.agent.status());

  // ── for monitors: no token ──
  app.get('/healthz', async () => ({ ok: true, queue: o.agent.queue.length }));
  app.get('/metrics', async (_req, reply) => reply.header('content-type', o.metrics.contentType).send(await o.metrics.text()));

  return app;
}
