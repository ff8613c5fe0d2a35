/**
 * Plain line renderer: one line per meaningful event, for CI logs and pipes (no TTY, `CI` set or
 * `--plain`). It only listens to events. Colour only through kleur (off without a TTY or with NO_COLOR),
 * so without a terminal there is not a single escape sequence.
 */
import kleur from 'kleur';
import type { EngineEvent, FailureDetail } from '../../runtime/model.ts';
import { finishedText, labelOf, summaryText, taskText } from './progress.ts';
import { formatBytes, printable } from './text.ts';

export interface LineSink {
  write(line: string): void;
}

/** The evidence of one failure, indented under its headline. */
export function failureLines(failure: FailureDetail, indent = '    '): string[] {
  const lines: string[] = [];
  // Health output and log lines are the container's own bytes: one printable line each.
  if (failure.definedAt) lines.push(`${indent}defined at ${printable(failure.definedAt)}`);
  if (failure.healthOutput?.length) {
    lines.push(`${indent}last health output:`);
    for (const l of failure.healthOutput) lines.push(`${indent}  ${printable(l)}`);
  }
  if (failure.logTail?.length) {
    lines.push(`${indent}last log lines:`);
    for (const l of failure.logTail) lines.push(`${indent}  ${printable(l)}`);
  }
  return lines;
}

/** Planning events print nothing here (the command prints the plan and, on failure, the problems), except waiting and notices. */
export function createPlainRenderer(out: LineSink): (e: EngineEvent) => void {
  const label = (e: { op: string; service?: string }) => labelOf(e.op, e.service);
  const lastHealth = new Map<string, string>();
  const lastTask = new Map<string, string>();
  const lastPull = new Map<string, string>();
  const failures: Array<{ label: string; failure: FailureDetail }> = [];
  return (e) => {
    switch (e.type) {
      case 'queued':
        out.write(`waiting for ${e.ahead} earlier change${e.ahead === 1 ? '' : 's'} of this project to finish`);
        break;
      case 'notice':
        out.write(kleur.yellow(printable(e.message)));
        break;
      case 'apply-start':
        out.write(`applying ${e.operations} operation${e.operations === 1 ? '' : 's'} to project ${e.project}`);
        break;
      case 'op-start':
        break;
      case 'step':
        out.write(`${label(e)}: ${e.step}${e.detail ? ` (${printable(e.detail)})` : ''}`);
        break;
      case 'pull-progress': {
        // A line per quarter of the bytes or per finished layer, not per chunk.
        const quarter = e.total > 0 ? Math.floor((4 * e.current) / e.total) : 0;
        const key = `${quarter}/${e.layersDone}/${e.layers}`;
        if (lastPull.get(e.op) !== key) {
          lastPull.set(e.op, key);
          const bytes = e.total > 0 ? `${formatBytes(e.current)}/${formatBytes(e.total)}` : formatBytes(e.current);
          out.write(`${e.image}: pulling ${bytes}, ${e.layersDone}/${e.layers} layers`);
        }
        break;
      }
      case 'health-wait': {
        if (lastHealth.get(e.op) !== e.status) {
          lastHealth.set(e.op, e.status);
          const left = Math.max(0, Math.ceil((e.deadline - e.at) / 1000));
          out.write(`${label(e)}: health ${e.status} (${left}s left)`);
        }
        break;
      }
      case 'task-progress': {
        // One line per change of a task's state (Swarm polls repeat the same state).
        const key = taskText(e);
        if (lastTask.get(`${e.op}/${e.task}`) !== key) {
          lastTask.set(`${e.op}/${e.task}`, key);
          out.write(`${label(e)}: ${printable(taskText(e))}`);
        }
        break;
      }
      case 'op-done':
        out.write(`${kleur.green('✓')} ${label(e)}: ${finishedText({ kind: e.kind, status: 'done', ms: e.ms })}`);
        break;
      case 'op-skipped':
        out.write(`${kleur.yellow('-')} ${label(e)}: ${e.kind} skipped: ${e.reason}`);
        break;
      case 'op-failed': {
        failures.push({ label: label(e), failure: e.failure });
        out.write(`${kleur.red('✗')} ${label(e)}: ${e.kind} failed after ${(e.ms / 1000).toFixed(1)}s: ${printable(e.failure.message)}`);
        for (const l of failureLines(e.failure)) out.write(l);
        break;
      }
      case 'apply-done': {
        const text = summaryText(e);
        const colon = text.indexOf(':');
        const head = e.ok ? kleur.green(text.slice(0, colon)) : kleur.red(text.slice(0, colon));
        out.write(`${head}${text.slice(colon)}`);
        for (const f of failures) {
          out.write(`  ${kleur.red('✗')} ${f.label}: ${printable(f.failure.message)}${f.failure.definedAt ? ` (${f.failure.definedAt})` : ''}`);
        }
        break;
      }
    }
  };
}
