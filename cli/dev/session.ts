/**
 * The loop behind `waffle dev`: apply the repository, then watch what it is made of and apply again on
 * every change. It owns the file watcher (chokidar) and the timers; the engine plans and applies, and a
 * view (plain lines or the Ink UI) shows what happens.
 *
 * What is watched: exactly the files the last successful load read (esbuild's metafile inputs, from the
 * `load-done` event) and the configuration file; the folders the service globs start from, so a new
 * service file is noticed; and every `develop.watch` path of a service. While the repository does not
 * load, the folders of the files it read last are watched too, so creating a missing import resumes.
 *
 * A change is debounced; then the repository is planned and what changed is applied (the plan is shown
 * first). An edit that breaks the configuration shows the problems with their locations and leaves the
 * running services as they are. A change under a `develop.watch` path only syncs files into, or restarts,
 * that service's container.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { FSWatcher } from 'chokidar';
import type { Engine, Planned } from '../../runtime/engine.ts';
import type { RunEvent, ServiceGraph } from '../../runtime/model.ts';
import { developActions, developPaths, type DevelopAction } from '../../runtime/plan/develop.ts';

/** What the view is told. Every method is optional to implement in spirit; all are called. */
export interface DevView {
  /** The watch set changed: how many paths are watched. */
  watching(paths: string[]): void;
  /** A cycle starts because these files changed (relative to the root); empty for the first. */
  changed(files: string[]): void;
  /** Every engine event of the cycle's runs (plan, apply, develop). */
  event(e: RunEvent): void;
  /** The plan is ready (shown before it is applied). */
  planned(planned: Planned): void;
  /** The cycle ended: applied (`ok`), nothing to do, or failed before changing anything (`error`). */
  settled(outcome: { kind: 'applied'; ok: boolean } | { kind: 'up-to-date' } | { kind: 'broken'; error: Error } | { kind: 'failed'; error: Error }): void;
  /** A develop action was done, or failed. */
  developed(action: DevelopAction, error?: Error): void;
}

export interface DevSessionOptions {
  engine: Engine;
  source: { dir: string; configFile?: string };
  view: DevView;
  /** Aborts the cycle in flight (its apply rolls back as apply's does) and ends the session. */
  signal: AbortSignal;
  /** Quiet time after the last file event before acting, ms. */
  debounceMs?: number;
  /** Chokidar polling (for file systems without events), with this interval in ms. */
  pollMs?: number;
  /** Called when a cycle starts and ends (the CLI mutes its Ctrl-C message while idle). */
  onBusy?(busy: boolean): void;
}

/** The folder a glob starts from: its path up to the first segment with a glob character. */
export function globBase(glob: string): string {
  const parts = glob.split('/');
  const i = parts.findIndex((p) => /[*?[\]{}()!]/.test(p));
  return (i === -1 ? parts.slice(0, -1) : parts.slice(0, i)).join('/') || '.';
}

export class DevSession {
  readonly #o: DevSessionOptions;
  readonly #root: string;
  readonly #configAbs: string;
  #watcher: FSWatcher | undefined;
  #watched = new Set<string>();
  /** Files the last successful load read (absolute). */
  #inputs = new Set<string>();
  #globs: string[] = ['services/*.ts'];
  #serviceFiles = new Set<string>();
  #graph: ServiceGraph | undefined;
  #broken = false;
  #pending = new Map<string, 'add' | 'change' | 'unlink'>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #ended!: () => void;
  readonly #end = new Promise<void>((r) => (this.#ended = r));

  constructor(o: DevSessionOptions) {
    this.#o = o;
    this.#root = path.resolve(o.source.dir);
    this.#configAbs = path.resolve(this.#root, o.source.configFile ?? 'waffle.config.ts');
  }

  /** Runs until `stop()` or the signal: the first apply, then a cycle per change. */
  async run(): Promise<void> {
    const onAbort = () => void this.stop();
    this.#o.signal.addEventListener('abort', onAbort, { once: true });
    try {
      // The first cycle counts as running: changes saved meanwhile wait for it, then make the next one.
      this.#running = this.#cycle([]).finally(() => {
        this.#running = undefined;
        if (this.#pending.size > 0) this.#flush();
      });
      await this.#running;
      if (!this.#stopped) await this.#end;
    } finally {
      this.#o.signal.removeEventListener('abort', onAbort);
      clearTimeout(this.#timer);
      await this.#running?.catch(() => undefined);
      await this.#watcher?.close().catch(() => undefined);
    }
  }

  /** A watcher of exactly `paths` (a folder with everything below it). */
  async #watch(paths: string[]): Promise<FSWatcher> {
    const { watch } = await import('chokidar');
    const w = watch(paths, {
      ignoreInitial: true,
      persistent: true,
      ...(this.#o.pollMs ? { usePolling: true, interval: this.#o.pollMs } : {}),
      ignored: (p: string) => /(^|[\\/])(node_modules|\.git|\.waffle)([\\/]|$)/.test(path.relative(this.#root, p)),
    });
    w.on('all', (event, file) => {
      if (event === 'add' || event === 'change' || event === 'unlink') this.#heard(event, path.resolve(this.#root, file));
    });
    w.on('error', () => undefined);
    return w;
  }

  /** Ends the session after the cycle in flight (the services stay as they are). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#ended();
  }

  #heard(event: 'add' | 'change' | 'unlink', file: string): void {
    if (this.#stopped) return;
    this.#pending.set(file, event);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#flush(), this.#o.debounceMs ?? 250);
  }

  /** A change matters to the configuration when a file it read changed, or when a service file came or went. */
  async #redeploys(changes: Map<string, string>): Promise<boolean> {
    for (const [file, event] of changes) {
      if (file === this.#configAbs || this.#inputs.has(file)) return true;
      // While broken, any file of the repository may be the fix (a missing import appearing included).
      if (this.#broken && event !== 'unlink') return true;
    }
    if ([...changes.values()].some((e) => e !== 'change')) {
      const now = await this.#findServiceFiles();
      if (now.size !== this.#serviceFiles.size || [...now].some((f) => !this.#serviceFiles.has(f))) return true;
    }
    return false;
  }

  async #findServiceFiles(): Promise<Set<string>> {
    const { glob } = await import('tinyglobby');
    const files = await glob(this.#globs, { cwd: this.#root, absolute: true, ignore: ['**/node_modules/**'] }).catch(() => []);
    return new Set(files.map((f) => path.resolve(f)));
  }

  #flush(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    const changes = this.#pending;
    this.#pending = new Map();
    if (changes.size === 0 || this.#stopped) return;
    this.#running = (async () => {
      const redeploy = await this.#redeploys(changes);
      const files = [...changes.keys()];
      if (redeploy) await this.#cycle(files);
      // develop.watch: the graph after the redeploy (a new entry counts at once).
      const changedFiles = [...changes].filter(([, e]) => e !== 'unlink').map(([f]) => f);
      if (this.#graph && !this.#stopped) {
        for (const action of developActions(this.#graph, changedFiles, existsSync)) await this.#develop(action);
      }
    })().finally(() => {
      this.#running = undefined;
      if (this.#again || this.#pending.size > 0) {
        this.#again = false;
        this.#flush();
      }
    });
  }

  async #develop(action: DevelopAction): Promise<void> {
    this.#o.onBusy?.(true);
    try {
      await this.#o.engine.develop(this.#graph!, action, { onEvent: (e) => this.#o.view.event(e), signal: this.#o.signal });
      this.#o.view.developed(action);
    } catch (e) {
      this.#o.view.developed(action, e as Error);
    } finally {
      this.#o.onBusy?.(false);
    }
  }

  /** One plan and apply of the repository. A failure to load leaves everything as it is. */
  async #cycle(files: string[]): Promise<void> {
    const { engine, view, signal } = this.#o;
    view.changed(files.map((f) => path.relative(this.#root, f).split(path.sep).join('/')));
    this.#o.onBusy?.(true);
    let loaded: { inputs: string[]; globs: string[] } | undefined;
    const onEvent = (e: RunEvent) => {
      if (e.type === 'load-done' && e.inputs) loaded = { inputs: e.inputs, globs: e.serviceGlobs ?? this.#globs };
      view.event(e);
    };
    let outcome: Parameters<DevView['settled']>[0];
    try {
      outcome = await (async (): Promise<typeof outcome> => {
        let planned: Planned;
        try {
          planned = await engine.plan(this.#o.source, { purpose: 'apply', onEvent, signal });
        } catch (e) {
          // Loaded but not planned (Docker, secrets): not the file's fault, yet nothing changed either.
          this.#broken = !loaded;
          return { kind: loaded ? 'failed' : 'broken', error: e as Error };
        }
        this.#broken = false;
        this.#graph = planned.graph;
        // Watch what this load read before applying, so a save during a long apply is not missed.
        await this.#updateWatch(loaded);
        view.planned(planned);
        try {
          // The plan's run goes on: its listener hears the apply's events too.
          const result = await engine.apply(planned, { signal });
          return planned.plan.operations.length === 0 ? { kind: 'up-to-date' } : { kind: 'applied', ok: result.ok };
        } catch (e) {
          return { kind: 'failed', error: e as Error };
        }
      })();
      // The view says "watching" only once the watcher watches what this cycle found.
      await this.#updateWatch(loaded);
    } finally {
      this.#o.onBusy?.(false);
    }
    view.settled(outcome);
  }

  async #updateWatch(loaded: { inputs: string[]; globs: string[] } | undefined): Promise<void> {
    if (loaded) {
      this.#inputs = new Set(loaded.inputs.map((f) => path.resolve(this.#root, f)));
      this.#globs = loaded.globs;
    }
    this.#serviceFiles = await this.#findServiceFiles();
    if (!this.#stopped) await this.#rewatch();
  }

  /**
   * Brings the watched paths in line with what the repository is made of now. A changed set gets a new
   * watcher, ready before the old one closes (no gap; an event both see is merged by the debounce):
   * chokidar's `add` gives no sign of when it watches, and its `unwatch` of a folder would also
   * silence the paths below it that are still wanted.
   */
  async #rewatch(): Promise<void> {
    const want = new Set<string>([this.#configAbs, ...this.#inputs]);
    for (const g of this.#globs) want.add(path.resolve(this.#root, globBase(g)));
    if (this.#graph) for (const p of developPaths(this.#graph)) want.add(p);
    // Broken (or never loaded): any file of the repository may be the fix, a missing import included.
    if (this.#broken || this.#inputs.size === 0) want.add(this.#root);
    const changed = want.size !== this.#watched.size || [...want].some((p) => !this.#watched.has(p));
    if (this.#watcher && !changed) return;
    const old = this.#watcher;
    const next = await this.#watch([...want]);
    await new Promise<void>((resolve) => next.once('ready', () => resolve()));
    this.#watcher = next;
    await old?.close().catch(() => undefined);
    this.#watched = want;
    this.#o.view.watching([...want].map((p) => path.relative(this.#root, p) || '.').sort());
  }
}
