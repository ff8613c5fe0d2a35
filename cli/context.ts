/**
 * What every command gets: the global options (accepted anywhere on the command line), how to show
 * itself (JSON, Ink or plain lines), the streams, the Ctrl-C rule and the engine. Data (`--json`, a
 * value asked for) goes to stdout; messages and progress go to stderr.
 */
import type { Command } from 'commander';
import path from 'node:path';
import type { Engine, Source } from '../runtime/engine.ts';
import type { Interrupt } from './interrupt.ts';
import { configFileFor } from './config-file.ts';

/** Ends a command with an exit code; `message` (when given) is printed to stderr first. */
export class Exit extends Error {
  constructor(
    readonly code: number,
    readonly text?: string,
    /** `interruptHandled`: a Ctrl-C was the command's normal way out (`waffle dev`), not an interruption. */
    readonly opts: { interruptHandled?: boolean } = {},
  ) {
    super(text ?? `exit ${code}`);
    this.name = 'Exit';
  }
}

/** The options every command accepts, before or after its name. */
export interface GlobalOptions {
  dir?: string;
  /** Configuration file relative to the repository root (`-c`). */
  config?: string;
  json?: boolean;
  plain?: boolean;
  dockerHost?: string;
  loadTimeout?: string;
  stateDir?: string;
  /** Credential-like names the configuration's `evaluation.env` may list (`--allow-env A,B`). */
  allowEnv?: string;
}

/** The process as the commands see it (main.ts makes it; tests can make their own). */
export interface App {
  env: Record<string, string | undefined>;
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  cwd: string;
  interrupt: Interrupt;
  /** Run when the command has ended, before the process exits (clean-up the process owns). */
  atExit: Array<() => unknown>;
}

export type UiMode = 'json' | 'ink' | 'plain';

export interface Cli extends App {
  opts: GlobalOptions;
  root: string;
  mode: UiMode;
  /** A line on stderr. */
  err(line: string): void;
  /** A chunk on stdout. */
  out(chunk: string): void;
  /** The repository as the engine's source. */
  source(): Source;
  /** The engine, created on first use with this process's settings. */
  engine(): Promise<Engine>;
  /** Terminal width for text on stderr; undefined (no truncation) when it is not a terminal. */
  columns(): number | undefined;
}

/**
 * `json` (data on stdout), `ink` (live UI on stderr: a terminal, CI unset, no --plain) or `plain` lines
 * (pipes, CI, --plain, TERM=dumb).
 */
export function uiMode(o: GlobalOptions, app: Pick<App, 'env' | 'stderr'>): UiMode {
  if (o.json) return 'json';
  if (o.plain || !app.stderr.isTTY || app.env.CI || app.env.TERM === 'dumb') return 'plain';
  return 'ink';
}

export function cliOf(cmd: Command, app: App): Cli {
  const opts = cmd.optsWithGlobals() as GlobalOptions;
  const root = path.resolve(app.cwd, opts.dir ?? '.');
  let engine: Promise<Engine> | undefined;
  return {
    ...app,
    opts,
    root,
    mode: uiMode(opts, app),
    err: (line) => void app.stderr.write(line + '\n'),
    out: (chunk) => void app.stdout.write(chunk),
    source: () => {
      // Checked when a command first asks for its source (never for init, which writes the default).
      const configFile = configFileFor(root, opts.config);
      return configFile ? { dir: root, configFile } : { dir: root };
    },
    engine: () =>
      (engine ??= import('../runtime/engine.ts').then(({ Engine }) => {
        return new Engine({
            env: app.env,
            ...(opts.dockerHost ? { dockerHost: opts.dockerHost } : {}),
            ...(opts.stateDir ? { stateDir: path.resolve(app.cwd, opts.stateDir) } : {}),
            ...(opts.loadTimeout ? { loadTimeoutMs: Number(opts.loadTimeout) } : {}),
            ...(opts.allowEnv ? { allowEnv: opts.allowEnv.split(',').map((n) => n.trim()).filter(Boolean) } : {}),
            // The Ctrl-C rule's closing message names what an interruption rolled back.
            onEvent: (e) => app.interrupt.hear(e),
          });
      })),
    columns: () => (app.stderr.isTTY ? app.stderr.columns || 80 : undefined),
  };
}
