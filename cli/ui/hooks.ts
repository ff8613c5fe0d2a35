/** Small hooks shared by the Ink apps (React comes from deps.ts, loaded on demand). */
import { ink, react } from './deps.ts';
import type { Store } from './store.ts';

export function useStore<T>(store: Store<T>): T {
  return react.useSyncExternalStore(store.subscribe, store.get, store.get);
}

/** The current time, refreshed every `ms` while `active`. */
export function useNow(ms: number, active = true): number {
  const [now, setNow] = react.useState(() => Date.now());
  react.useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms, active]);
  return active ? now : Date.now();
}

/** The width to render in: the terminal's columns (following resizes), or `fallback`. */
export function useColumns(fallback = 80): number {
  const { stdout } = ink.useStdout();
  const read = () => Math.max(20, (stdout as { columns?: number }).columns || fallback);
  const [cols, setCols] = react.useState(read);
  react.useEffect(() => {
    const onResize = () => setCols(read());
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  return cols;
}
