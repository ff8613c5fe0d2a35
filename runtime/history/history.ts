/**
 * The agent's deployment history: one SQLite file in the agent's state directory (better-sqlite3, WAL).
 *
 * It holds every deployment (trigger, delivery, commit, plan summary, per-service outcome, timing,
 * error and an honest result), the engine events of each deployment, every webhook delivery with what
 * was done with it, and a small key/value store the agent's other parts use (notifier dedupe, restart
 * budgets). It is bounded: opening it and every new deployment or delivery prunes it to the last
 * `keep` deployments (with their events) and the last 5 × `keep` deliveries. Deployments still queued
 * or running are never pruned.
 *
 * Secret values: the history stores what it is given. Callers pass what is already safe to show:
 * the engine's events carry secret references, never values, and the agent's error texts come from
 * problems that name files and services. Nothing here ever sees a webhook secret or a token.
 *
 * The schema is created on open and migrated by `PRAGMA user_version`; a file written by a newer
 * schema is refused rather than misread. Several History objects (or processes) may open one file:
 * WAL lets readers run beside the one writer, and a writer waits (busy timeout) for another. Every
 * transaction that reads before it writes takes the write lock first (BEGIN IMMEDIATE): a deferred
 * one would fail with SQLITE_BUSY_SNAPSHOT when another writer commits between its read and write.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { newSortableId, nextSortableId } from '../ids.ts';

export type DeployResult = 'applied' | 'no-op' | 'failed' | 'interrupted';
export type DeployState = 'queued' | 'running' | DeployResult;

export interface ServiceOutcome {
  service: string;
  /** What was done to it: create, replace, update, remove, start, ... */
  action: string;
  outcome: 'done' | 'failed' | 'skipped';
  message?: string;
}

export interface DeploymentRow {
  /** Deployment id (ULID-like: sortable by creation time), returned by the webhook's 202. */
  id: string;
  /** 'push' | 'poll' | 'manual' | 'startup' | 'registry' | 'repair' */
  trigger: string;
  /** X-GitHub-Delivery, when a webhook triggered it. */
  delivery?: string;
  /** Full commit sha, once known. */
  commit?: string;
  state: DeployState;
  /** The engine run id. */
  run?: string;
  /** '2 to replace, 1 to create' / 'no changes'. */
  planSummary?: string;
  counts?: Record<string, number>;
  services: ServiceOutcome[];
  /** What went wrong, with file and service (never a secret value). */
  error?: string;
  queuedAt: number;
  startedAt?: number;
  finishedAt?: number;
  durationMs?: number;
}

export interface DeliveryRow {
  /** X-GitHub-Delivery, or a generated id. */
  id: string;
  /** 'github' | 'registry' */
  source: string;
  event: string;
  /** 'deployed' | 'coalesced' | 'ignored: branch refs/heads/x' | 'refused: bad signature' | 'duplicate' ... */
  outcome: string;
  deployment?: string;
  receivedAt: number;
}

export interface HistoryOptions {
  /** Deployments kept (with their events); deliveries keep five times as many. Default 500. */
  keep?: number;
  /** Events kept per deployment; later ones are dropped (a runaway pull-progress stream cannot fill the disk). Default 10000. */
  maxEventsPerDeployment?: number;
  /** How long a write waits for another writer on the same file, in ms. Default 5000. */
  busyTimeoutMs?: number;
  /** Clock, for tests of ordering; default Date.now. */
  now?: () => number;
}

/** The schema this code writes. Each step in MIGRATIONS takes the file from version i to i + 1. */
export const SCHEMA_VERSION = 1;

const MIGRATIONS: string[] = [
  `
  CREATE TABLE deployments (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    trigger     TEXT NOT NULL,
    delivery    TEXT,
    commit_sha  TEXT,
    state       TEXT NOT NULL,
    run         TEXT,
    plan_summary TEXT,
    counts      TEXT,
    services    TEXT NOT NULL DEFAULT '[]',
    error       TEXT,
    queued_at   INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER,
    duration_ms INTEGER
  );
  CREATE INDEX deployments_state ON deployments(state);
  CREATE TABLE events (
    deployment  TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    n           INTEGER NOT NULL,
    data        TEXT NOT NULL,
    PRIMARY KEY (deployment, n)
  ) WITHOUT ROWID;
  CREATE TABLE deliveries (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL,
    source      TEXT NOT NULL,
    event       TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    deployment  TEXT,
    received_at INTEGER NOT NULL
  );
  CREATE INDEX deliveries_id ON deliveries(id);
  CREATE TABLE state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) WITHOUT ROWID;
  `,
];

interface DeploymentRecord {
  seq: number;
  id: string;
  trigger: string;
  delivery: string | null;
  commit_sha: string | null;
  state: string;
  run: string | null;
  plan_summary: string | null;
  counts: string | null;
  services: string;
  error: string | null;
  queued_at: number;
  started_at: number | null;
  finished_at: number | null;
  duration_ms: number | null;
}

interface DeliveryRecord {
  id: string;
  source: string;
  event: string;
  outcome: string;
  deployment: string | null;
  received_at: number;
}

/** DeploymentRow field → column, for `update`. JSON columns are marked. */
const COLUMNS: Record<Exclude<keyof DeploymentRow, 'id'>, { col: string; json?: boolean }> = {
  trigger: { col: 'trigger' },
  delivery: { col: 'delivery' },
  commit: { col: 'commit_sha' },
  state: { col: 'state' },
  run: { col: 'run' },
  planSummary: { col: 'plan_summary' },
  counts: { col: 'counts', json: true },
  services: { col: 'services', json: true },
  error: { col: 'error' },
  queuedAt: { col: 'queued_at' },
  startedAt: { col: 'started_at' },
  finishedAt: { col: 'finished_at' },
  durationMs: { col: 'duration_ms' },
};

const STATES = new Set<DeployState>(['queued', 'running', 'applied', 'no-op', 'failed', 'interrupted']);
const INTERRUPTED_ERROR = 'the agent stopped while this deployment was queued or running (killed or crashed); the next deployment reconciles the host';

function rowOf(r: DeploymentRecord): DeploymentRow {
  const row: DeploymentRow = { id: r.id, trigger: r.trigger, state: r.state as DeployState, services: JSON.parse(r.services) as ServiceOutcome[], queuedAt: r.queued_at };
  if (r.delivery !== null) row.delivery = r.delivery;
  if (r.commit_sha !== null) row.commit = r.commit_sha;
  if (r.run !== null) row.run = r.run;
  if (r.plan_summary !== null) row.planSummary = r.plan_summary;
  if (r.counts !== null) row.counts = JSON.parse(r.counts) as Record<string, number>;
  if (r.error !== null) row.error = r.error;
  if (r.started_at !== null) row.startedAt = r.started_at;
  if (r.finished_at !== null) row.finishedAt = r.finished_at;
  if (r.duration_ms !== null) row.durationMs = r.duration_ms;
  return row;
}

function deliveryOf(r: DeliveryRecord): DeliveryRow {
  return { id: r.id, source: r.source, event: r.event, outcome: r.outcome, ...(r.deployment !== null ? { deployment: r.deployment } : {}), receivedAt: r.received_at };
}

/** A positive whole number, or the default; anything else is a programming error worth a clear message. */
function positiveInt(v: number | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 1) throw new Error(`history: ${name} must be a whole number of at least 1, got ${v}`);
  return v;
}

export class History {
  readonly file: string;
  readonly keep: number;
  private readonly db: Database.Database;
  private readonly maxEvents: number;
  private readonly now: () => number;
  /** Last id issued by this object: ids are strictly increasing even within one millisecond. */
  private lastId = '';
  private readonly stmts: ReturnType<typeof statements>;

  /** Opens (creating or migrating) the history file. Throws with the file's name when it cannot be used. */
  static open(file: string, opts: HistoryOptions = {}): History {
    return new History(file, opts);
  }

  private constructor(file: string, opts: HistoryOptions) {
    this.file = path.resolve(file);
    this.keep = positiveInt(opts.keep, 'keep', 500);
    this.maxEvents = positiveInt(opts.maxEventsPerDeployment, 'maxEventsPerDeployment', 10_000);
    this.now = opts.now ?? Date.now;
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    // Created private before SQLite opens it: commit messages and errors are nobody else's business.
    fs.closeSync(fs.openSync(this.file, 'a', 0o600));
    let db: Database.Database | undefined;
    try {
      db = new Database(this.file, { timeout: opts.busyTimeoutMs ?? 5000 });
      db.pragma('journal_mode = WAL');
      // NORMAL with WAL: a power cut may lose the last commits, never corrupts the file.
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db, this.file);
    } catch (err) {
      db?.close();
      const e = err as Error & { code?: string };
      if (e.code === 'SQLITE_NOTADB' || e.code === 'SQLITE_CORRUPT') {
        throw new Error(`history file ${this.file} is not a readable SQLite database (${e.message}); move it away and the agent starts a new history`);
      }
      throw e;
    }
    this.db = db;
    this.stmts = statements(db);
    this.prune();
  }

  /** A new deployment in state 'queued', pruning the oldest beyond `keep`. */
  createDeployment(d: { trigger: string; delivery?: string; commit?: string }): DeploymentRow {
    const row: DeploymentRow = {
      id: this.newId(),
      trigger: d.trigger,
      ...(d.delivery !== undefined ? { delivery: d.delivery } : {}),
      ...(d.commit !== undefined ? { commit: d.commit } : {}),
      state: 'queued',
      services: [],
      queuedAt: this.now(),
    };
    this.db.transaction(() => {
      this.stmts.insertDeployment.run({ id: row.id, trigger: row.trigger, delivery: d.delivery ?? null, commit: d.commit ?? null, state: row.state, services: '[]', queuedAt: row.queuedAt });
      this.stmts.pruneDeployments.run(this.keep);
    }).immediate();
    return row;
  }

  /** Sets the given fields of a deployment (an `undefined` value clears the field). Throws for an unknown id. */
  update(id: string, patch: Partial<Omit<DeploymentRow, 'id'>>): void {
    const sets: string[] = [];
    const values: Record<string, unknown> = { id };
    for (const [key, value] of Object.entries(patch)) {
      const c = COLUMNS[key as keyof typeof COLUMNS];
      if (!c) throw new Error(`history: a deployment has no field \`${key}\``);
      if (key === 'state' && !STATES.has(value as DeployState)) throw new Error(`history: state ${JSON.stringify(value)} is not one of ${[...STATES].join(', ')}`);
      if ((key === 'trigger' || key === 'services' || key === 'queuedAt') && value === undefined) throw new Error(`history: \`${key}\` cannot be cleared`);
      sets.push(`${c.col} = @${c.col}`);
      values[c.col] = value === undefined ? null : c.json ? JSON.stringify(value) : value;
    }
    if (sets.length === 0) {
      if (!this.stmts.seqOf.get(id)) throw new Error(`history: no deployment ${id}`);
      return;
    }
    const r = this.db.prepare(`UPDATE deployments SET ${sets.join(', ')} WHERE id = @id`).run(values);
    if (r.changes === 0) throw new Error(`history: no deployment ${id}`);
  }

  /**
   * Appends one event (an engine RunEvent, stored as JSON as given: callers pass events without secret
   * values, as the engine's are) to a deployment. Beyond `maxEventsPerDeployment` events are dropped.
   */
  appendEvent(id: string, event: object): void {
    this.db.transaction(() => {
      const n = (this.stmts.nextEvent.get(id)?.n ?? 0) + 1;
      if (n > this.maxEvents) return;
      try {
        this.stmts.insertEvent.run(id, n, JSON.stringify(event));
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new Error(`history: no deployment ${id} to append an event to`);
        throw err;
      }
    }).immediate();
  }

  /** The events of a deployment in the order they were appended ([] for an unknown or pruned one). */
  events(id: string): object[] {
    return this.stmts.events.all(id).map((r) => JSON.parse(r.data) as object);
  }

  get(id: string): DeploymentRow | undefined {
    const r = this.stmts.get.get(id);
    return r ? rowOf(r) : undefined;
  }

  /** Newest first. `before`: only deployments created before that one (for paging); `limit` default 50. */
  list(opts: { limit?: number; before?: string } = {}): DeploymentRow[] {
    const limit = Math.max(0, Math.floor(opts.limit ?? 50));
    if (opts.before !== undefined) {
      const at = this.stmts.seqOf.get(opts.before);
      if (!at) return [];
      return this.stmts.listBefore.all(at.seq, limit).map(rowOf);
    }
    return this.stmts.listAll.all(limit).map(rowOf);
  }

  /**
   * On agent start: every 'queued' or 'running' deployment becomes 'interrupted' (the agent was killed
   * or crashed while it waited or ran). Returns them as they are now.
   */
  markInterrupted(): DeploymentRow[] {
    const at = this.now();
    return this.db.transaction(() => {
      const rows = this.stmts.active.all().map(rowOf);
      for (const r of rows) {
        const patch: Partial<DeploymentRow> = { state: 'interrupted', finishedAt: at };
        if (r.startedAt !== undefined) patch.durationMs = Math.max(0, at - r.startedAt);
        if (r.error === undefined) patch.error = INTERRUPTED_ERROR;
        this.update(r.id, patch);
      }
      this.prune();
      return rows.map((r) => this.get(r.id)!);
    }).immediate();
  }

  /** Records what was done with one delivery, pruning the oldest beyond 5 × keep. */
  recordDelivery(d: DeliveryRow): void {
    this.db.transaction(() => {
      this.stmts.insertDelivery.run({ id: d.id, source: d.source, event: d.event, outcome: d.outcome, deployment: d.deployment ?? null, receivedAt: d.receivedAt });
      this.stmts.pruneDeliveries.run(this.keep * 5);
    }).immediate();
  }

  /**
   * Whether a delivery with this id was accepted before (recorded with any outcome but `refused…`). A
   * refused one (bad signature) does not count: a forged request must not make the genuine delivery
   * with the same id look like a repeat.
   */
  hasDelivery(id: string): boolean {
    return this.stmts.hasDelivery.get(id) !== undefined;
  }

  /** Newest first; `limit` default 100. */
  deliveries(opts: { limit?: number } = {}): DeliveryRow[] {
    return this.stmts.deliveries.all(Math.max(0, Math.floor(opts.limit ?? 100))).map(deliveryOf);
  }

  /** A value of the key/value store (parsed JSON), or undefined. */
  getState<T>(key: string): T | undefined {
    const r = this.stmts.getState.get(key);
    return r ? (JSON.parse(r.value) as T) : undefined;
  }

  /** Stores a JSON value; `undefined` deletes the key. */
  setState(key: string, value: unknown): void {
    if (value === undefined) this.stmts.deleteState.run(key);
    else this.stmts.setState.run(key, JSON.stringify(value));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private prune(): void {
    this.db.transaction(() => {
      this.stmts.pruneDeployments.run(this.keep);
      this.stmts.pruneDeliveries.run(this.keep * 5);
    }).immediate();
  }

  /** ULID-like (runtime/ids.ts); strictly increasing within this object. */
  private newId(): string {
    let id = newSortableId(this.now());
    if (id <= this.lastId) id = nextSortableId(this.lastId);
    this.lastId = id;
    return id;
  }
}

/** Every statement the history runs, prepared once per open file. */
function statements(db: Database.Database) {
  return {
    insertDeployment: db.prepare(
      'INSERT INTO deployments (id, trigger, delivery, commit_sha, state, services, queued_at) VALUES (@id, @trigger, @delivery, @commit, @state, @services, @queuedAt)',
    ),
    get: db.prepare<[string], DeploymentRecord>('SELECT * FROM deployments WHERE id = ?'),
    seqOf: db.prepare<[string], { seq: number }>('SELECT seq FROM deployments WHERE id = ?'),
    listAll: db.prepare<[number], DeploymentRecord>('SELECT * FROM deployments ORDER BY seq DESC LIMIT ?'),
    listBefore: db.prepare<[number, number], DeploymentRecord>('SELECT * FROM deployments WHERE seq < ? ORDER BY seq DESC LIMIT ?'),
    active: db.prepare<[], DeploymentRecord>("SELECT * FROM deployments WHERE state IN ('queued', 'running') ORDER BY seq"),
    nextEvent: db.prepare<[string], { n: number | null }>('SELECT MAX(n) AS n FROM events WHERE deployment = ?'),
    insertEvent: db.prepare('INSERT INTO events (deployment, n, data) VALUES (?, ?, ?)'),
    events: db.prepare<[string], { data: string }>('SELECT data FROM events WHERE deployment = ? ORDER BY n'),
    insertDelivery: db.prepare(
      'INSERT INTO deliveries (id, source, event, outcome, deployment, received_at) VALUES (@id, @source, @event, @outcome, @deployment, @receivedAt)',
    ),
    hasDelivery: db.prepare<[string], { one: number }>("SELECT 1 AS one FROM deliveries WHERE id = ? AND outcome NOT LIKE 'refused%' LIMIT 1"),
    deliveries: db.prepare<[number], DeliveryRecord>('SELECT * FROM deliveries ORDER BY seq DESC LIMIT ?'),
    pruneDeployments: db.prepare(
      `DELETE FROM deployments WHERE state NOT IN ('queued', 'running')
         AND seq <= (SELECT seq FROM deployments ORDER BY seq DESC LIMIT 1 OFFSET ?)`,
    ),
    pruneDeliveries: db.prepare('DELETE FROM deliveries WHERE seq <= (SELECT seq FROM deliveries ORDER BY seq DESC LIMIT 1 OFFSET ?)'),
    getState: db.prepare<[string], { value: string }>('SELECT value FROM state WHERE key = ?'),
    setState: db.prepare('INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    deleteState: db.prepare('DELETE FROM state WHERE key = ?'),
  };
}

/**
 * Brings the file to SCHEMA_VERSION in one IMMEDIATE transaction (the version is read under the write
 * lock, so two processes opening a new file at once migrate it once); refuses a newer file.
 */
function migrate(db: Database.Database, file: string): void {
  const tooNew = (version: number) =>
    new Error(
      `history file ${file} has schema version ${version}, newer than this waffle's ${SCHEMA_VERSION}; ` +
        'upgrade waffle, or point --state-dir at another directory',
    );
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) throw tooNew(current);
  if (current === SCHEMA_VERSION) return;
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) throw tooNew(version);
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
