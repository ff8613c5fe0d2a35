/** @jsxImportSource . */
/** `waffle status --watch` with Ink: the table refreshed every `intervalMs`, `q` or Ctrl-C to quit. */
import type { StatusRow } from '../status.ts';
import { ink, loadUiDeps, react } from './deps.ts';
import { useColumns } from './hooks.ts';
import { StatusTable } from './StatusTable.tsx';

export interface WatchProps {
  project: string;
  read(): Promise<StatusRow[]>;
  intervalMs: number;
  interactive: boolean;
  onQuit(): void;
}

export function StatusWatch({ project, read, intervalMs, interactive, onQuit }: WatchProps) {
  const width = useColumns();
  const [state, setState] = react.useState<{ rows: StatusRow[]; at?: number; error?: string }>({ rows: [] });
  react.useEffect(() => {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const tick = async () => {
      try {
        const rows = await read();
        if (!stopped) setState({ rows, at: Date.now() });
      } catch (e) {
        if (!stopped) setState((s) => ({ ...s, error: (e as Error).message }));
      }
      if (!stopped) timer = setTimeout(tick, intervalMs);
    };
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, []);
  ink.useInput(
    (input, key) => {
      if ((key.ctrl && input === 'c') || input === 'q') onQuit();
    },
    { isActive: interactive },
  );
  return (
    <StatusTable
      project={project}
      rows={state.rows}
      width={width}
      updatedAt={state.at}
      error={state.error}
      footer={`every ${intervalMs / 1000}s · q to quit`}
    />
  );
}

export async function runStatusWatch(opts: { project: string; read(): Promise<StatusRow[]>; intervalMs?: number }): Promise<void> {
  await loadUiDeps();
  let quit!: () => void;
  const done = new Promise<void>((r) => (quit = r));
  const app = ink.render(
    <StatusWatch project={opts.project} read={opts.read} intervalMs={opts.intervalMs ?? 2000} interactive={!!process.stdin.isTTY} onQuit={() => quit()} />,
    { stdout: process.stderr, stdin: process.stdin, exitOnCtrlC: false, patchConsole: false },
  );
  process.once('SIGINT', () => quit());
  await done;
  app.unmount();
  await app.waitUntilExit().catch(() => {});
}
