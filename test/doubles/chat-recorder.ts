/**
 * A test DOUBLE of chat incoming webhooks (Discord and Slack cannot be reached from here): a real HTTP
 * server on 127.0.0.1 that records every POST and answers as the service documents it.
 *
 * - Discord (`POST /api/webhooks/{id}/{token}`): JSON with `content` (at most 2000 characters) or
 *   embeds; an empty message gets `400 {"message":"Cannot send an empty message","code":50006}`, a too
 *   long one `400 {"content":["Must be 2000 or fewer in length."]}`; success is `204 No Content`.
 * - Slack (`POST /services/T…/B…/…`): JSON with `text` (or blocks); without either `400 no_text`,
 *   malformed JSON `400 invalid_payload`; success is `200 ok` (text/plain).
 *
 * `failNext(n, status)` makes the next n posts fail (500 by default; 429 carries Retry-After) before
 * they are recorded as delivered, for retry tests.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ChatPost {
  path: string;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON, or the raw text when it did not parse. */
  body: unknown;
  status: number;
}

export class ChatRecorder {
  /** Every POST, delivered or not. */
  readonly posts: ChatPost[] = [];
  private server?: http.Server;
  private port = 0;
  private fail: { remaining: number; status: number } = { remaining: 0, status: 500 };

  constructor(readonly flavor: 'discord' | 'slack') {}

  async start(): Promise<this> {
    const server = http.createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
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

  /** The webhook URL to configure, shaped like the real service's. */
  get url(): string {
    return this.flavor === 'discord'
      ? `http://127.0.0.1:${this.port}/api/webhooks/123456789012345678/double-webhook-token`
      : `http://127.0.0.1:${this.port}/services/T0DOUBLE/B0DOUBLE/doublesecret`;
  }

  /** Posts that were accepted, in order. */
  get delivered(): ChatPost[] {
    return this.posts.filter((p) => p.status >= 200 && p.status < 300);
  }

  failNext(n: number, status = 500): void {
    this.fail = { remaining: n, status };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown = raw;
    let parsed = false;
    try {
      body = JSON.parse(raw);
      parsed = true;
    } catch {
      /* kept as text */
    }
    const post: ChatPost = { path: new URL(req.url ?? '/', 'http://x').pathname, headers: req.headers, body, status: 0 };
    this.posts.push(post);
    const answer = (status: number, text: string, type = 'application/json', headers: Record<string, string> = {}) => {
      post.status = status;
      res.writeHead(status, { ...(text ? { 'content-type': type } : {}), ...headers });
      res.end(text);
    };
    if (req.method !== 'POST') return answer(405, JSON.stringify({ message: '405: Method Not Allowed', code: 0 }));
    if (this.fail.remaining > 0) {
      this.fail.remaining--;
      const s = this.fail.status;
      if (s === 429) return answer(429, this.flavor === 'discord' ? JSON.stringify({ message: 'You are being rate limited.', retry_after: 0.05, global: false }) : 'rate_limited', this.flavor === 'discord' ? 'application/json' : 'text/plain', { 'retry-after': '1' });
      return answer(s, this.flavor === 'discord' ? JSON.stringify({ message: 'Internal Server Error', code: 0 }) : 'internal_error', this.flavor === 'discord' ? 'application/json' : 'text/plain');
    }
    const o = parsed && body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
    if (this.flavor === 'discord') {
      if (!/^application\/json/.test(req.headers['content-type'] ?? '') || !o) return answer(400, JSON.stringify({ message: 'Cannot send an empty message', code: 50006 }));
      const content = typeof o.content === 'string' ? o.content : '';
      if (content.trim() === '' && !Array.isArray(o.embeds)) return answer(400, JSON.stringify({ message: 'Cannot send an empty message', code: 50006 }));
      if ([...content].length > 2000) return answer(400, JSON.stringify({ content: ['Must be 2000 or fewer in length.'] }));
      return answer(204, '');
    }
    if (!o) return answer(400, 'invalid_payload', 'text/plain');
    if ((typeof o.text !== 'string' || o.text.trim() === '') && !Array.isArray(o.blocks)) return answer(400, 'no_text', 'text/plain');
    return answer(200, 'ok', 'text/plain');
  }
}
