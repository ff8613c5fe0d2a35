/**
 * The agent's event stream: what changed, as it happens — a deploy queued, started, finished; an
 * event of its run; a webhook delivery recorded; a preview finished. The history is where these are
 * written, so `watchHistory` wraps the history and tells the stream about every write; the page's
 * server-sent events read the stream. Listeners are called synchronously and may not throw into the writer.
 */
import type { ServerResponse } from 'node:http';

export type AgentEvent =
  | { type: 'deployment'; id: string; state?: string }
  | { type: 'run-event'; deployment: string; event: string }
  | { type: 'delivery'; id: string; outcome: string }
  | { type: 'preview'; number: number; state: string };

export class AgentEvents {
  readonly #listeners = new Set<(e: AgentEvent) => void>();

  publish(e: AgentEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch {
        /* a slow or broken reader never breaks the writer */
      }
    }
  }

  subscribe(listener: (e: AgentEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get listeners(): number {
    return this.#listeners.size;
  }
}

/** The history methods that change what the page shows. */
interface Writes {
  createDeployment(d: { trigger: string; delivery?: string; commit?: string }): { id: string; state: string };
  update(id: string, patch: { state?: string }): void;
  appendEvent(id: string, event: object): void;
  recordDelivery(d: { id: string; outcome: string }): void;
}

/**
 * The same history, telling `events` about each write after it succeeded. Reads pass through
 * untouched. Returns an object of the history's own type, so the agent uses it as it is.
 */
export function watchHistory<H extends Writes>(history: H, events: AgentEvents): H {
  // Methods are bound once, not on every call.
  const bound = new Map<PropertyKey, unknown>();
  return new Proxy(history, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (!bound.has(key)) bound.set(key, wrap(target, key, value as (...a: unknown[]) => unknown));
      return bound.get(key);
    },
  });

  function wrap(target: H, key: PropertyKey, value: (...a: unknown[]) => unknown): unknown {
    switch (key) {
      case 'createDeployment':
        return (d: Parameters<Writes['createDeployment']>[0]) => {
          const row = target.createDeployment(d);
          events.publish({ type: 'deployment', id: row.id, state: row.state });
          return row;
        };
      case 'update':
        return (id: string, patch: { state?: string }) => {
          target.update(id, patch);
          events.publish({ type: 'deployment', id, ...(patch.state ? { state: patch.state } : {}) });
        };
      case 'appendEvent':
        return (id: string, event: object) => {
          target.appendEvent(id, event);
          events.publish({ type: 'run-event', deployment: id, event: String((event as { type?: unknown }).type ?? '') });
        };
      case 'recordDelivery':
        return (d: { id: string; outcome: string }) => {
          target.recordDelivery(d);
          events.publish({ type: 'delivery', id: d.id, outcome: d.outcome });
        };
      default:
        return value.bind(target);
    }
  }
}

/**
 * Serves `events` to one client as server-sent events until it goes away or `signal` aborts: only
 * what changed (kind and id), never data — the page fetches what it shows through its own access
 * check. `filter` keeps the events the page cares about. A comment every `heartbeatMs` keeps proxies
 * from closing an idle stream.
 */
export function serveEvents(res: ServerResponse, events: AgentEvents, opts: { filter?: (e: AgentEvent) => boolean; heartbeatMs?: number; signal?: AbortSignal } = {}): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write('retry: 3000\n\n');
  const unsubscribe = events.subscribe((e) => {
    if (opts.filter && !opts.filter(e)) return;
    res.write(`event: message\ndata: ${JSON.stringify(e)}\n\n`);
  });
  const beat = setInterval(() => res.write(': keep-alive\n\n'), opts.heartbeatMs ?? 15_000);
  beat.unref();
  const end = () => {
    clearInterval(beat);
    unsubscribe();
    if (!res.writableEnded) res.end();
  };
  res.on('close', end);
  opts.signal?.addEventListener('abort', end, { once: true });
}
