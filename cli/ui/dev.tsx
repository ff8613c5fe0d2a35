/** @jsxImportSource . */
/**
 * Runs `waffle dev` with the Ink UI on stderr. `q` ends the session after the change in flight; Ctrl-C
 * follows the CLI's one rule (cli/interrupt.ts): raw mode swallows SIGINT, so the key arrives here and
 * is handed to the same `press()` a real SIGINT calls.
 */
import kleur from 'kleur';
import type { RunEvent } from '../../runtime/model.ts';
import type { DevView } from '../dev/session.ts';
import type { Interrupt } from '../interrupt.ts';
import { planLines } from '../render/plan.ts';
import { initialProgress, reduceProgress, type OpRow } from '../render/progress.ts';
import { summaryLines } from './Summary.tsx';
import { DevApp, type DevUiState } from './DevApp.tsx';
import { finishedLine } from './ProgressView.tsx';
import { ink, loadUiDeps } from './deps.ts';
import { createStore } from './store.ts';

export interface DevUi {
  view: DevView;
  /** Resolves when `q` is pressed. */
  quit: Promise<void>;
  close(): Promise<void>;
}

const APPLY_EVENTS = ['apply-start', 'op-start', 'step', 'pull-progress', 'health-wait', 'op-done', 'op-failed', 'op-skipped', 'apply-done'];

export async function startDevUi(opts: { interrupt: Interrupt; stdin: NodeJS.ReadStream; stderr: NodeJS.WriteStream }): Promise<DevUi> {
  await loadUiDeps();
  const store = createStore<DevUiState>({ log: [], status: 'starting', watched: 0 });
  let n = 0;
  const log = (lines: string[]) => store.set((s) => ({ log: [...s.log, { key: String(++n), lines }] }));
  const width = () => Math.max(20, opts.stderr.columns || 80);
  let quit!: () => void;
  const quitP = new Promise<void>((r) => (quit = r));
  const app = ink.render(
    <DevApp
      store={store}
      onQuit={() => {
        store.set({ status: 'stopping' });
        quit();
      }}
      onInterrupt={() => opts.interrupt.press()}
      interactive={!!opts.stdin.isTTY}
    />,
    { stdout: opts.stderr, stdin: opts.stdin, exitOnCtrlC: false, patchConsole: false },
  );
  const offExit = opts.interrupt.beforeExit(() => app.unmount());
  const view: DevView = {
    watching: (paths) => store.set({ watched: paths.length }),
    changed: (files) => {
      log(['', files.length ? kleur.cyan(`changed: ${files.join(', ')}`) : kleur.bold('deploying the repository')]);
      store.set({ status: 'working', progress: undefined });
    },
    event: (e: RunEvent) => {
      if (e.type === 'notice') log([kleur.yellow(e.message)]);
      if (!APPLY_EVENTS.includes(e.type)) return;
      const progress = reduceProgress(store.get().progress ?? initialProgress(), e as Parameters<typeof reduceProgress>[1]);
      store.set({ progress });
      if (e.type === 'op-done' || e.type === 'op-failed' || e.type === 'op-skipped') {
        const row = progress.rows[e.op] as OpRow | undefined;
        if (row) log([finishedLine(row, width())]);
      }
      if (e.type === 'apply-done') log(summaryLines(progress, width()).slice(1));
    },
    planned: (p) => {
      if (p.plan.operations.length > 0) log(planLines(p.plan, { columns: width() }));
    },
    settled: (o) => {
      if (o.kind === 'broken') log(o.error.message.split('\n').map((l) => kleur.red(l)));
      if (o.kind === 'failed') log([kleur.red(`not applied: ${o.error.message}`)]);
      if (o.kind === 'up-to-date') log([kleur.green('up to date: nothing to apply')]);
      store.set((s) => ({ status: s.status === 'stopping' ? 'stopping' : o.kind === 'broken' ? 'broken' : 'watching' }));
    },
    developed: (a, error) => {
      const what = [...(a.sync.length ? [`synced ${a.sync.map((f) => f.container).join(', ')}`] : []), ...(a.restart ? ['restarted'] : [])].join(', then ');
      log([error ? `${kleur.red('✗')} ${a.service}: ${what} failed: ${error.message}` : `${kleur.green('✓')} ${a.service}: ${what}`]);
    },
  };
  return {
    view,
    quit: quitP,
    async close() {
      offExit();
      await new Promise((r) => setTimeout(r, 60));
      app.unmount();
      await app.waitUntilExit().catch(() => {});
    },
  };
}
