/**
 * dockerode's module, loaded without two parts Wafflemaker's calls never reach unless they need them:
 * dockerode loads its BuildKit session (`lib/session.js`: @grpc/grpc-js and protobufjs) and
 * docker-modem its SSH transport (`lib/ssh.js`: ssh2) as soon as dockerode itself loads. Each is put in
 * Node's module cache first as a forwarder that loads the real module on its first call (a build with
 * registry credentials, an `ssh://` engine), so every dockerode feature still works. A long-running
 * agent keeps about 7 MiB less resident memory for it.
 */
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import type Dockerode from 'dockerode';

type DockerodeCtor = typeof Dockerode;

/** Puts a forwarder for the CommonJS module `file` (a function export) in the module cache, unless it is loaded. */
function deferModule(require: NodeJS.Require, file: string): void {
  if (require.cache[file]) return;
  let real: ((...args: unknown[]) => unknown) | undefined;
  const forwarder = function (this: unknown, ...args: unknown[]): unknown {
    if (!real) {
      // The forwarder leaves the cache; the real module takes its place (and the forwarder calls it).
      if (require.cache[file]?.exports === forwarder) delete require.cache[file];
      real = require(file) as (...args: unknown[]) => unknown;
    }
    return real.apply(this, args);
  };
  const m = new Module(file);
  m.filename = file;
  m.loaded = true;
  m.exports = forwarder;
  require.cache[file] = m;
}

let loading: Promise<DockerodeCtor> | undefined;

/** The Dockerode class (loaded once; later calls get the same). */
export function loadDockerode(): Promise<DockerodeCtor> {
  return (loading ??= (async () => {
    try {
      const ours = createRequire(import.meta.url);
      const main = ours.resolve('dockerode');
      deferModule(ours, path.join(path.dirname(main), 'session.js'));
      // docker-modem as dockerode resolves it (nested under it, or beside it).
      const modem = createRequire(main).resolve('docker-modem');
      deferModule(ours, path.join(path.dirname(modem), 'ssh.js'));
    } catch {
      /* another layout of the packages: dockerode loads whole, as it would anyway */
    }
    return (await import('dockerode')).default;
  })().catch((e) => {
    loading = undefined;
    throw e;
  }));
}
