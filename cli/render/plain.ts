/**
 * Plain line renderer: one line per meaningful event, for CI logs and pipes (no TTY, `CI` set or `--plain`).
 * It only listens to events.
 */
import kleur from 'kleur';
import type { ApplyEvent } from '../../runtime/model.ts';

export interface LineSink {
  write(line: string): void;
}

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

export function createPlainRenderer(out: LineSink): (e: ApplyEvent) => void {
  const label = (e: { op: string; service?: string }) => (e.service ? e.service : e.op);
  const lastHealth = new Map<string, string>();
  return (e) => {
    switch (e.type) {
      case 'apply-start':
        out.write(`applying ${e.operations} operation${e.operations === 1 ? '' : 's'} to project ${e.project}`);
        break;
      case 'op-start':
        break;
      case 'step':
        out.write(`${label(e)}: ${e.step}${e.detail ? ` (${e.detail})` : ''}`);
        break;
      case 'pull-progress':
        break;
      case 'health-wait': {
        if (lastHealth.get(e.op) !== e.status) {
          lastHealth.set(e.op, e.status);
          out.write(`${label(e)}: health ${e.status}`);
        }
        break;
      }
      case 'op-done':
        out.write(`${kleur.green('✓')} ${label(e)}: ${e.kind} done in ${secs(e.ms)}`);
        break;
      case 'op-skipped':
        out.write(`${kleur.yellow('-')} ${label(e)}: ${e.kind} skipped: ${e.reason}`);
        break;
      case 'op-failed': {
        out.write(`${kleur.red('✗')} ${label(e)}: ${e.kind} failed after ${secs(e.ms)}: ${e.failure.message}`);
        if (e.failure.definedAt) out.write(`    defined at ${e.failure.definedAt}`);
        if (e.failure.healthOutput?.length) {
          out.write('    last health output:');
          for (const l of e.failure.healthOutput) out.write(`      ${l}`);
        }
        if (e.failure.logTail?.length) {
          out.write('    last log lines:');
          for (const l of e.failure.logTail) out.write(`      ${l}`);
        }
        break;
      }
      case 'apply-done': {
        const s = e.summary;
        const parts = [
          `${s.created} created`,
          `${s.replaced} replaced`,
          `${s.updated} updated`,
          `${s.removed} removed`,
          `${s.failed} failed`,
        ];
        if (s.skipped) parts.push(`${s.skipped} skipped`);
        const head = e.ok ? kleur.green('apply complete') : kleur.red('apply failed');
        out.write(`${head}: ${parts.join(', ')} in ${secs(e.ms)}`);
        break;
      }
    }
  };
}
