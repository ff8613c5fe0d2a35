/**
 * A recording proxy in front of the real Docker engine (a test double of nothing: it forwards every
 * request unchanged). It listens on its own unix socket, forwards each HTTP request to the engine's
 * socket, and records the request line (`METHOD /path?query`) and the body size. Tests point
 * DOCKER_HOST at it to count the API calls a command makes, or to check that no request line carries
 * a secret value (what a logging socket proxy or a dockerd in debug mode would record).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

export interface RecordedRequest {
  method: string;
  /** Path and query string as sent, e.g. `/v1.41/containers/json?all=true`. */
  url: string;
  /** Request body, as text (bodies of Docker API calls are small JSON). */
  body: string;
}

export interface SocketProxy {
  /** `unix:///…` address to use as DOCKER_HOST. */
  host: string;
  requests: RecordedRequest[];
  /** Forget what was recorded so far. */
  reset(): void;
  close(): Promise<void>;
}

/** Starts a proxy to `upstream` (a `unix://` DOCKER_HOST). */
export async function startSocketProxy(upstream: string = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock'): Promise<SocketProxy> {
  if (!upstream.startsWith('unix://')) throw new Error(`socket proxy: upstream must be a unix:// host, got ${upstream}`);
  const upstreamPath = upstream.slice('unix://'.length);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-proxy-'));
  const socketPath = path.join(dir, 'docker.sock');
  const requests: RecordedRequest[] = [];

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? '', url: req.url ?? '', body: body.toString('utf8') });
      const headers = { ...req.headers };
      delete headers['transfer-encoding'];
      if (body.length > 0 || headers['content-length'] !== undefined) headers['content-length'] = String(body.length);
      const up = http.request({ socketPath: upstreamPath, method: req.method, path: req.url, headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      });
      up.on('error', (e) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: `socket proxy: ${e.message}` }));
      });
      // A client that goes away (a cancelled wait) ends the upstream request too.
      res.on('close', () => up.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return {
    host: `unix://${socketPath}`,
    requests,
    reset: () => {
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          fs.rmSync(dir, { recursive: true, force: true });
          resolve();
        });
      }),
  };
}
