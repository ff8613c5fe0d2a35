/** @jsxImportSource . */
/** `waffle status --watch` with Ink: the table refreshed every `intervalMs`, `q` or Ctrl-C to quit. */
import type { StatusRow } from '../status.ts';
import { ink, loadUiDeps, react } from './deps.ts';
import { useColumns } from './hooks.ts';
import { StatusTable } from './StatusTable.tsx';

export interface StatusSnapshot {
  rows: StatusRow[];
  /** When the rows were read (epoch ms). */
  at?: number;
  error?: string;
}

/**
 * Reads the status every `intervalMs` (the next read starts when the previous one ended) and hands each
 * snapshot over. Returns `stop`. The polling lives here, outside the components, which only render.
 */
export function pollStatus(read: () => Promise<StatusRow[]>, intervalMs: number, onSnapshot: (s: StatusSnapshot) => void): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let last: StatusSnapshot = { rows: [] };
  const tick = async () => {
    try {
      last = { rows: await read(), at: Date.now() };
    } catch (e) {
      last = { ...last, error: (e as Error).message };
    }
    if (stopped) return;
    onSnapshot(last);
    timer = setTimeout(tick, intervalMs);
  };
  void tick();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}

export interface WatchProps {
  project: string;
  snapshot: StatusSnapshot;
  intervalMs: number;
  interactive: boolean;
  onQuit(): void;
}

export function StatusWatch({ project, snapshot, intervalMs, interactive, onQuit }: WatchProps) {
  const width = useColumns();
  ink.useInput(
    (input, key) => {
      if ((key.ctrl && input === 'c') || input === 'q') onQuit();
    },
    { isActive: interactive },
  );
  return (
    <StatusTable
      project={project}
      rows={snapshot.rows}
      width={width}
      updatedAt={snapshot.at}
      error={snapshot.error}
      footer={`every ${intervalMs / 1000}s · q to quit`}
    />
  );
}

export async function runStatusWatch(opts: { project: string; read(): Promise<StatusRow[]>; intervalMs?: number }): Promise<void> {
  await loadUiDeps();
  const intervalMs = opts.intervalMs ?? 2000;
  let quit!: () => void;
  const done = new Promise<void>((r) => (quit = r));
  const view = (snapshot: StatusSnapshot) => (
    <StatusWatch project={opts.project} snapshot={snapshot} intervalMs={intervalMs} interactive={!!process.stdin.isTTY} onQuit={() => quit()} />
  );
  const app = ink.render(view({ rows: [] }), { stdout: process.stderr, stdin: process.stdin, exitOnCtrlC: false, patchConsole: false });
  const stop = pollStatus(opts.read, intervalMs, (s) => app.rerender(view(s)));
  process.once('SIGINT', () => quit());
  await done;
  stop();
  app.unmount();
  await app.waitUntilExit().catch(() => {});
}
