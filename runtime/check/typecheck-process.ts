/**
 * The type-check of `waffle check`, run in a short-lived child process: a long-running caller (the
 * agent's pull-request previews) never loads the TypeScript compiler, so its resident memory stays
 * what it was before the first preview. The child gets an empty environment, a heap limit, a time limit
 * and a bound on what it may print; when it passes one of them it is killed and the caller gets a
 * TypecheckProcessError saying which.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Problem } from '../model.ts';

export interface TypecheckProcessOptions {
  /** The child is killed after this long; default 60 s. */
  timeoutMs?: number;
  /** Bytes of output (stdout and stderr together) read before the child is killed; default 8 MiB. */
  maxOutputBytes?: number;
  /** Problems kept (the rest are counted in one last problem); default 500. */
  maxProblems?: number;
  /** V8 heap limit of the child, in MiB; default 1024. */
  memoryMb?: number;
  /** Stops the child (it is killed) and rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** The type-check could not give an answer: it timed out, printed too much, or crashed. */
export class TypecheckProcessError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TypecheckProcessError';
  }
}

const here = path.dirname(fileURLToPath(import.meta.url));
const runningFromSource = fileURLToPath(import.meta.url).endsWith('.ts');

/** How to start the child: built, `typecheck-child.js` beside this chunk; from source, the .ts under tsx. */
function childCommand(): string[] {
  if (!runningFromSource) {
    const built = [path.join(here, 'typecheck-child.js'), path.resolve(here, '../cli/typecheck-child.js'), path.resolve(here, 'cli/typecheck-child.js')].find((f) => existsSync(f));
    if (built) return [built];
  }
  const entry = [path.join(here, 'typecheck-child.ts'), path.resolve(here, '../../runtime/check/typecheck-child.ts')].find((f) => existsSync(f));
  if (!entry) throw new TypecheckProcessError(`cannot find the type-check's child script near ${here}; reinstall wafflemaker`);
  // The development loader the CLI runs under, by its own path (the child's working directory has no node_modules of ours).
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return ['--import', tsx, entry];
}

const seconds = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);
const size = (n: number) => (n >= 1024 * 1024 ? `${Math.round(n / 1024 / 1024)} MiB` : n >= 1024 ? `${Math.round(n / 1024)} KiB` : `${n} bytes`);

/**
 * Type-checks the repository at `root` (as `typecheck()` does) in a child process. Resolves with the
 * problems found (file, line, column, service, fix); rejects with a TypecheckProcessError when the child
 * does not answer within its limits, or with the signal's reason when `signal` stops it.
 */
export function typecheckInChild(root: string, configFile?: string, opts: TypecheckProcessOptions = {}): Promise<Problem[]> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const maxOutput = opts.maxOutputBytes ?? 8 * 1024 * 1024;
  const maxProblems = opts.maxProblems ?? 500;
  const memoryMb = opts.memoryMb ?? 1024;
  const signal = opts.signal;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<Problem[]>((resolve, reject) => {
    const args = [`--max-old-space-size=${memoryMb}`, ...childCommand(), JSON.stringify({ root, ...(configFile ? { configFile } : {}), maxProblems })];
    // An empty environment: the child reads the repository's files and nothing of the caller's settings.
    const child = spawn(process.execPath, args, { cwd: root, env: {}, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let bytes = 0;
    let failure: Error | undefined;
    const stop = (why: Error) => {
      if (failure) return;
      failure = why;
      child.kill('SIGKILL');
    };
    const take = (into: Buffer[]) => (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > maxOutput) return stop(new TypecheckProcessError(`the type-check printed more than ${size(maxOutput)} and was stopped`));
      into.push(chunk);
    };
    child.stdout.on('data', take(out));
    child.stderr.on('data', take(err));
    const timer = setTimeout(() => stop(new TypecheckProcessError(`the type-check did not finish within ${seconds(timeoutMs)} and was stopped`)), timeoutMs);
    const onAbort = () => stop(signal!.reason instanceof Error ? signal!.reason : new Error(String(signal!.reason)));
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => stop(new TypecheckProcessError(`the type-check could not start: ${e.message}`)));
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (failure) return reject(signal?.aborted ? signal.reason : failure);
      const stdout = Buffer.concat(out).toString('utf8');
      let answer: { problems: Problem[]; omitted: number } | undefined;
      try {
        answer = code === 0 ? JSON.parse(stdout) : undefined;
      } catch {
        /* reported below */
      }
      if (!answer || !Array.isArray(answer.problems)) {
        const stderr = Buffer.concat(err).toString('utf8');
        const oom = /heap out of memory|Allocation failed/i.test(stderr);
        const last = stderr.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('at ')).slice(-1)[0];
        const how = oom ? `ran out of memory (${memoryMb} MiB)` : `failed (${sig ? `signal ${sig}` : `exit code ${code}`})${last ? `: ${last.slice(0, 300)}` : ''}`;
        return reject(new TypecheckProcessError(`the type-check ${how}`));
      }
      const problems = answer.problems;
      if (answer.omitted > 0) {
        problems.push({ file: configFile ?? 'waffle.config.ts', message: `${answer.omitted} more type errors not shown`, fix: 'run `waffle check` to see them all' });
      }
      resolve(problems);
    });
  });
}
