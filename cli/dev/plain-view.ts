/**
 * `waffle dev` as plain lines on stderr (no terminal, `CI`, `--plain`): the plan of each change, the
 * apply's lines (the same renderer as `waffle apply`), problems with their locations, develop actions.
 */
import kleur from 'kleur';
import type { DevView } from './session.ts';
import { createPlainRenderer } from '../render/plain.ts';
import { planText } from '../render/plan.ts';
import { printable } from '../render/text.ts';

export const WATCHING_HINT = 'watching for changes (q then Enter, or Ctrl-C, stops; the services keep running)';

export function createPlainDevView(write: (line: string) => void, columns?: number): DevView {
  const engineLines = createPlainRenderer({ write });
  return {
    watching(paths) {
      write(`watching ${paths.length} path${paths.length === 1 ? '' : 's'}: ${paths.join(', ')}`);
    },
    changed(files) {
      write(files.length ? kleur.cyan(`changed: ${files.join(', ')}`) : 'deploying the repository');
    },
    event(e) {
      engineLines(e);
    },
    planned(p) {
      if (p.plan.operations.length > 0) for (const l of planText(p.plan, { columns }).trimEnd().split('\n')) write(l);
    },
    settled(o) {
      if (o.kind === 'broken') {
        write(kleur.red(o.error.message));
        write(kleur.yellow('not applied: the running services are left as they are; save a fix to apply it'));
      } else if (o.kind === 'failed') {
        write(kleur.red(`not applied: ${o.error.message}`));
      } else if (o.kind === 'up-to-date') {
        write('up to date: nothing to apply');
      }
      write(WATCHING_HINT);
    },
    developed(a, error) {
      const what = [...(a.sync.length ? [`synced ${a.sync.map((f) => f.container).join(', ')}`] : []), ...(a.restart ? ['restarted'] : [])].join(', then ');
      if (error) write(`${kleur.red('✗')} ${a.service}: ${what || 'develop'} failed: ${printable(error.message)}`);
      else write(`${kleur.green('✓')} ${a.service}: ${what}`);
    },
  };
}
