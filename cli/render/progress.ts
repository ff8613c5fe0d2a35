/**
 * Apply progress as state folded from ApplyEvents (a pure reducer): one row per operation with its
 * current step, pull progress, health countdown and outcome, plus the order rows finished in. The Ink
 * progress view renders this state; tests fold recorded NDJSON streams through it.
 */
import type { ApplyEvent, FailureDetail, OperationKind, Step } from '../../runtime/model.ts';
import { bar, formatBytes, formatDuration, printable } from './text.ts';

export type RowStatus = 'running' | 'done' | 'failed' | 'skipped';

export interface OpRow {
  op: string;
  kind: OperationKind;
  /** What the row is about: the service, image, network or volume. */
  label: string;
  service?: string;
  status: RowStatus;
  step?: Step;
  stepDetail?: string;
  startedAt: number;
  /** Set when finished. */
  ms?: number;
  pull?: { image: string; layers: number; layersDone: number; current: number; total: number };
  health?: { status: string; deadline: number };
  failure?: FailureDetail;
  reason?: string;
  /** Swarm: the latest state of each task of the operation, by task id. */
  tasks?: Record<string, { current: boolean; state: string; desiredState: string }>;
  /** Swarm: the replicas the operation asked for. */
  replicas?: number;
}

export type Summary = Extract<ApplyEvent, { type: 'apply-done' }>['summary'];

export interface ProgressState {
  project: string;
  operations: number;
  startedAt: number;
  rows: Record<string, OpRow>;
  /** Op ids in the order they started (live rows keep this order). */
  started: string[];
  /** Op ids in the order they finished (the static log). */
  finished: string[];
  done?: { ok: boolean; summary: Summary; ms: number };
}

export function initialProgress(): ProgressState {
  return { project: '', operations: 0, startedAt: 0, rows: {}, started: [], finished: [] };
}

/** `create:api` → `api`; `network:demo_default` → `demo_default`, or `default` given the project. */
export function labelOf(op: string, service?: string, project?: string): string {
  if (service) return service;
  const i = op.indexOf(':');
  const name = i === -1 ? op : op.slice(i + 1);
  return project && name.startsWith(`${project}_`) ? name.slice(project.length + 1) : name;
}

function update(s: ProgressState, op: string, patch: Partial<OpRow>): ProgressState {
  const row = s.rows[op];
  if (!row) return s;
  return { ...s, rows: { ...s.rows, [op]: { ...row, ...patch } } };
}

export function reduceProgress(s: ProgressState, e: ApplyEvent): ProgressState {
  switch (e.type) {
    case 'apply-start':
      return { ...initialProgress(), project: e.project, operations: e.operations, startedAt: e.at };
    case 'op-start': {
      const row: OpRow = { op: e.op, kind: e.kind, label: labelOf(e.op, e.service, s.project), status: 'running', startedAt: e.at };
      if (e.service) row.service = e.service;
      return { ...s, rows: { ...s.rows, [e.op]: row }, started: [...s.started, e.op] };
    }
    case 'step':
      return update(s, e.op, { step: e.step, stepDetail: e.detail, health: e.step === 'waiting-health' ? s.rows[e.op]?.health : undefined });
    case 'pull-progress':
      return update(s, e.op, { pull: { image: e.image, layers: e.layers, layersDone: e.layersDone, current: e.current, total: e.total } });
    case 'health-wait':
      return update(s, e.op, { health: { status: e.status, deadline: e.deadline } });
    case 'task-progress': {
      // A Swarm task of the operation changed state: the row keeps every task's latest state (for the
      // tally of new tasks running) and shows the latest change.
      const tasks = { ...s.rows[e.op]?.tasks, [e.task]: { current: e.current, state: e.state, desiredState: e.desiredState } };
      return update(s, e.op, { step: 'updating', stepDetail: taskText(e), tasks, ...(e.replicas !== undefined ? { replicas: e.replicas } : {}) });
    }
    case 'op-done':
      return { ...update(s, e.op, { status: 'done', ms: e.ms }), finished: [...s.finished, e.op] };
    case 'op-failed':
      return { ...update(s, e.op, { status: 'failed', ms: e.ms, failure: e.failure }), finished: [...s.finished, e.op] };
    case 'op-skipped': {
      // Skipped operations never started: give them a row of their own.
      const row: OpRow = { op: e.op, kind: e.kind, label: labelOf(e.op, e.service, s.project), status: 'skipped', startedAt: e.at, reason: e.reason };
      if (e.service) row.service = e.service;
      return { ...s, rows: { ...s.rows, [e.op]: row }, finished: [...s.finished, e.op] };
    }
    case 'apply-done':
      return { ...s, done: { ok: e.ok, summary: e.summary, ms: e.ms } };
  }
}

export function foldEvents(events: ApplyEvent[]): ProgressState {
  return events.reduce(reduceProgress, initialProgress());
}

export function liveRows(s: ProgressState): OpRow[] {
  return s.started.map((id) => s.rows[id]).filter((r) => r && r.status === 'running');
}

export function finishedRows(s: ProgressState): OpRow[] {
  return s.finished.map((id) => s.rows[id]).filter(Boolean);
}

export function failedRows(s: ProgressState): OpRow[] {
  return finishedRows(s).filter((r) => r.status === 'failed');
}

const VERB: Partial<Record<OperationKind, [string, string]>> = {
  'create-service': ['create', 'created'],
  'replace-service': ['replace', 'replaced'],
  'rename-service': ['rename', 'renamed'],
  'rollback-service': ['roll back', 'rolled back'],
  'update-service': ['update', 'updated'],
  'start-service': ['start', 'started'],
  'remove-service': ['remove', 'removed'],
  'pull-image': ['pull', 'pulled'],
  'create-network': ['create network', 'network created'],
  'remove-network': ['remove network', 'network removed'],
  'create-volume': ['create volume', 'volume created'],
  'create-swarm-service': ['create', 'created'],
  'update-swarm-service': ['update', 'updated'],
  'remove-swarm-service': ['remove', 'removed'],
  'create-swarm-secret': ['create secret', 'secret created'],
  'remove-swarm-secret': ['remove secret', 'secret removed'],
  'configure-proxy': ['configure proxy', 'proxy configured'],
};

/**
 * One task's news as text: `task 2 running`, `task 1 (previous) running → shutdown` (being stopped),
 * `task 3 failed: unhealthy container [rollback_started]`. The node is in the event (JSON output), not
 * in the line.
 */
export function taskText(e: Extract<ApplyEvent, { type: 'task-progress' }>): string {
  const which = `task ${e.slot ?? e.task.slice(0, 12)}${e.current ? '' : ' (previous)'}`;
  const going = e.desiredState !== e.state && (e.desiredState === 'shutdown' || e.desiredState === 'remove') ? ` → ${e.desiredState}` : '';
  const why = e.error ? `: ${e.error}` : '';
  const upd = e.update?.startsWith('rollback') || e.update === 'paused' ? ` [${e.update}]` : '';
  return `${which} ${e.state}${going}${why}${upd}`;
}

export const verbOf = (kind: OperationKind) => VERB[kind]?.[0] ?? kind;
export const pastOf = (kind: OperationKind) => VERB[kind]?.[1] ?? `${kind} done`;

/** Every step's words (a step the executor adds later shows under its own name). */
const STEP_TEXT: Record<string, string> = {
  pulling: 'pulling',
  creating: 'creating',
  starting: 'starting',
  'unaliasing-old': 'old one leaves the service name',
  draining: 'draining',
  'waiting-health': 'waiting for health',
  switching: 'switching',
  routing: 'routing through the proxy',
  'stopping-old': 'stopping old',
  'removing-old': 'removing old',
  renaming: 'renaming',
  'retaining-old': 'keeping old for rollback',
  restoring: 'restoring restart policy',
  updating: 'updating',
  stopping: 'stopping',
  removing: 'removing',
  'rolling-back': 'rolling back',
};

/**
 * What a live row says now: the step, a pull bar with bytes and layers, or the health countdown.
 * `room` is the width the text may take (the bar shrinks to fit).
 */
export function stepText(row: OpRow, now: number, room = 60): string {
  if (row.pull && (row.step === 'pulling' || row.kind === 'pull-image')) {
    const p = row.pull;
    const bytes = p.total > 0 ? `${formatBytes(p.current)}/${formatBytes(p.total)}` : formatBytes(p.current);
    const layers = `${p.layersDone}/${p.layers} layers`;
    const cells = Math.max(4, Math.min(20, room - bytes.length - layers.length - 12));
    return `pulling ${bar(p.total > 0 ? p.current / p.total : 0, cells)} ${bytes} ${layers}`;
  }
  if (!row.step) return verbOf(row.kind);
  let text = STEP_TEXT[row.step] ?? row.step;
  if (row.step === 'waiting-health' && row.health) {
    const left = Math.max(0, Math.ceil((row.health.deadline - now) / 1000));
    text += ` (${row.health.status}, ${left}s left)`;
  } else if (row.tasks && row.replicas !== undefined) {
    // `updating 1/2 new · task 2 starting`: the new tasks running out of the replicas asked for, then
    // the latest change (a task's state lasts less than a frame when health checks pass at once).
    text += ` ${newTasksRunning(row.tasks)}/${row.replicas} new · ${printable(row.stepDetail ?? '')}`;
  } else if (row.stepDetail && row.step !== 'creating' && row.step !== 'starting') {
    text += ` ${printable(row.stepDetail)}`;
  }
  return text;
}

/** Tasks of the operation's own spec that run and are meant to. */
export function newTasksRunning(tasks: NonNullable<OpRow['tasks']>): number {
  return Object.values(tasks).filter((t) => t.current && t.state === 'running' && t.desiredState === 'running').length;
}

/** The static log line of a finished row (no colour). */
export function finishedText(row: Pick<OpRow, 'kind' | 'status' | 'ms' | 'failure' | 'reason'>): string {
  switch (row.status) {
    case 'done':
      return `${pastOf(row.kind)} in ${formatDuration(row.ms ?? 0)}`;
    case 'failed':
      return `${verbOf(row.kind)} failed after ${formatDuration(row.ms ?? 0)}: ${printable(row.failure?.message ?? 'failed')}`;
    case 'skipped':
      return `${verbOf(row.kind)} skipped: ${printable(row.reason ?? '')}`;
    default:
      return verbOf(row.kind);
  }
}

export function summaryText(done: { ok: boolean; summary: Summary; ms: number }): string {
  const s = done.summary;
  const parts = [`${s.created} created`, `${s.replaced} replaced`, `${s.updated} updated`, `${s.removed} removed`, `${s.failed} failed`];
  if (s.skipped) parts.push(`${s.skipped} skipped`);
  return `${done.ok ? 'apply complete' : 'apply failed'}: ${parts.join(', ')} in ${formatDuration(done.ms)}`;
}
