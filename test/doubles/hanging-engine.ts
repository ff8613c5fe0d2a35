/**
 * A test double of a Docker engine that stops answering. It listens on its own unix socket and
 * records every request line it receives.
 *
 * - `silent`: accepts connections and never answers anything (a wedged dockerd, a stuck proxy).
 * - `http`: answers what `answer` returns for a request (status and JSON/text body) and leaves every
 *   other request hanging: no status line, no headers, the connection held open. `answerPing` answers
 *   `/_ping` and `/version` like a healthy engine; `emptyLists` also answers the list endpoints an
 *   empty engine would (no containers, networks, volumes, images), so a command gets as far as changing
 *   something before it meets the hang.
 * - `headersThenHang`: requests whose answer starts (200 and headers) but whose body never ends.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface HungRequest {
  method: string;
  /** Path and query as sent, without an API version prefix. */
  url: string;
  /** True once the client gave the request up (closed its connection). */
  closedByClient: boolean;
}

export interface Answer {
  status: number;
  body: unknown;
}

export interface HangingEngineOptions {
  mode: 'silent' | 'http';
  /** `/_ping` → OK, `/version` → API 1.41 (http mode). */
  answerPing?: boolean;
  /** GET /containers/json, /networks, /volumes, /images/json answered as an empty engine (http mode). */
  emptyLists?: boolean;
  /** Starts the answer (200, headers, part of a body) but never ends it, for matching requests (http mode). */
  headersThenHang?: (method: string, url: string) => boolean;
  /** Any further answers (http mode); undefined leaves the request hanging. */
  answer?: (method: string, url: string) => Answer | undefined;
}

export interface HangingEngine {
  /** `unix:///…` address to use as DOCKER_HOST. */
  host: string;
  socketPath: string;
  /** Every request received (http mode), answered or not, in order. */
  requests: Array<{ method: string; url: string }>;
  /** Requests left without an answer (http mode), or one entry per connection (silent mode). */
  hung: HungRequest[];
  /** Connections open right now. */
  openConnections(): number;
  close(): Promise<void>;
}

function emptyEngineAnswer(method: string, url: string): Answer | undefined {
  if (method !== 'GET') return undefined;
  const p = url.split('?')[0];
  if (p === '/containers/json' || p === '/networks' || p === '/images/json') return { status: 200, body: [] };
  if (p === '/volumes') return { status: 200, body: { Volumes: [], Warnings: null } };
  return undefined;
}

export async function startHangingEngine(opts: HangingEngineOptions): Promise<HangingEngine> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-hanging-'));
  const socketPath = path.join(dir, 'docker.sock');
  const requests: Array<{ method: string; url: string }> = [];
  const hung: HungRequest[] = [];
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };

  let server: net.Server;
  if (opts.mode === 'silent') {
    server = net.createServer((s) => {
      track(s);
      const h: HungRequest = { method: '?', url: '?', closedByClient: false };
      hung.push(h);
      s.once('data', (d: Buffer) => {
        const [method = '?', url = '?'] = d.toString('latin1').split('\r\n')[0].split(' ');
        h.method = method;
        h.url = url.replace(/^\/v\d+\.\d+(?=\/)/, '');
      });
      s.on('close', () => (h.closedByClient = true));
      s.on('error', () => undefined);
      s.resume(); // read and discard; never write
    });
  } else {
    server = http.createServer((req, res) => {
      const method = req.method ?? '';
      const url = (req.url ?? '').replace(/^\/v\d+\.\d+(?=\/)/, '');
      requests.push({ method, url });
      req.resume();
      const p = url.split('?')[0];
      let answer: Answer | undefined;
      if (opts.answerPing && (p === '/_ping' || p === '/version')) {
        answer = p === '/_ping' ? { status: 200, body: 'OK' } : { status: 200, body: { ApiVersion: '1.41', Version: '20.10-double' } };
      }
      answer ??= opts.emptyLists ? emptyEngineAnswer(method, url) : undefined;
      answer ??= opts.answer?.(method, url);
      if (answer) {
        const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
        res.writeHead(answer.status, { 'Content-Type': typeof answer.body === 'string' ? 'text/plain' : 'application/json', 'Api-Version': '1.41' });
        res.end(text);
        return;
      }
      const h: HungRequest = { method, url, closedByClient: false };
      hung.push(h);
      res.on('close', () => (h.closedByClient = true));
      if (opts.headersThenHang?.(method, url)) {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Api-Version': '1.41' });
        res.write('{"status":"Pulling from library/x","id":"latest"}\n');
      }
      // Otherwise: nothing at all, ever.
    });
    // The double hangs on purpose: Node's own server time limits must not answer for it.
    (server as http.Server).requestTimeout = 0;
    (server as http.Server).headersTimeout = 0;
    (server as http.Server).keepAliveTimeout = 0;
    server.on('connection', track);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return {
    host: `unix://${socketPath}`,
    socketPath,
    requests,
    hung,
    openConnections: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          fs.rmSync(dir, { recursive: true, force: true });
          resolve();
        });
      }),
  };
}
