/**
 * The host policy: what the definitions of a repository may do on this host, set in the agent's own
 * settings (never in the repository). Service files are code that anyone who can push writes, and the
 * agent deploys them as root; the policy keeps a push from reaching the host through what Docker is
 * asked to do.
 *
 * - Bind mounts only of paths inside the checkout or under one of `bindRoots` (none by default). Paths
 *   are compared after `..` is resolved and after symbolic links are followed as far as the path exists,
 *   so `bind: '../../etc'` and a committed symlink `data -> /etc` are both outside. The checkout's
 *   `.git` (which holds how the agent fetches) is never mounted, nor a directory containing it.
 * - The Docker socket never, unless `dockerSocket` is true: a bind of a known socket path
 *   (/var/run/docker.sock, /run/docker.sock, containerd's, `dockerSockets`), of any `docker*.sock` or
 *   `containerd*.sock`, or of a directory holding a known one (`/`, `/run`, `/var/run`...) or one of those
 *   names directly. Access to the socket
 *   is root on the host; this rule holds even inside an allowed root.
 * - Fixed host ports only in `hostPorts` (inclusive ranges; default 1024–65535, so a push cannot take
 *   22, 80 or 443 from what already serves them; add `[80, 80]`, `[443, 443]` to let a service publish
 *   them). A random host port (`'8080'` without a host part) is always allowed.
 *
 * Everything else a definition could use to reach the host (privileged mode, host networking, devices,
 * capabilities, volume driver options) has no field in a service definition, so it cannot be asked for.
 *
 * `checkHostPolicy` changes nothing: it reads the file system only to follow symbolic links.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Mount, Problem, ServiceGraph, ServiceSpec } from '../model.ts';
import { ProblemsError } from '../problems.ts';

export interface HostPolicy {
  /** Absolute host directories that bind mounts may use, besides the checkout (always allowed). */
  bindRoots: string[];
  /** Whether a service may mount the Docker socket (root on the host). Default false. */
  dockerSocket: boolean;
  /** Inclusive ranges of fixed host ports services may publish. Default [[1024, 65535]]. */
  hostPorts: Array<[number, number]>;
  /** More paths of Docker (or containerd) sockets on this host than the well-known ones, e.g. the agent's DOCKER_HOST socket. */
  dockerSockets?: string[];
  /** Where the policy came from (the agent's settings file), named in every problem's fix. */
  source?: string;
}

/** No bind mounts outside the checkout, no Docker socket, fixed host ports 1024–65535. Frozen: copy it to change it. */
export const DEFAULT_HOST_POLICY: HostPolicy = Object.freeze({
  bindRoots: Object.freeze([]) as unknown as string[],
  dockerSocket: false,
  hostPorts: Object.freeze([Object.freeze([1024, 65535])]) as unknown as Array<[number, number]>,
});

/** Where Docker and containerd put their sockets on Linux hosts. */
export const WELL_KNOWN_SOCKETS = ['/var/run/docker.sock', '/run/docker.sock', '/run/containerd/containerd.sock', '/var/run/containerd/containerd.sock', '/run/docker/docker.sock'];

const SOCKET_NAME = /^(docker|containerd)[^/]*\.sock$/;
const POLICY_KEYS = ['bindRoots', 'dockerSocket', 'hostPorts', 'dockerSockets'];

// ───────────────────────────── parsing the agent's settings ─────────────────────────────

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : v === undefined ? 'nothing' : JSON.stringify(v) ?? String(v));
const isPortNumber = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;

/** `8080`, `"8080"`, `"8000-8999"`, `[8000, 8999]` → an inclusive range, or undefined. */
function parseRange(v: unknown): [number, number] | undefined {
  if (isPortNumber(v)) return [v, v];
  if (typeof v === 'string') {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(v);
    if (!m) return undefined;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    return isPortNumber(lo) && isPortNumber(hi) && lo <= hi ? [lo, hi] : undefined;
  }
  if (Array.isArray(v) && v.length === 2 && isPortNumber(v[0]) && isPortNumber(v[1]) && v[0] <= v[1]) return [v[0], v[1]];
  return undefined;
}

/**
 * The host policy from the agent's settings (parsed JSON): `{ bindRoots?, dockerSocket?, hostPorts?,
 * dockerSockets? }`, each absent key taking its default. Throws a ProblemsError naming `file`, the key
 * and the fix for everything wrong at once.
 */
export function parseHostPolicy(json: unknown, file: string): HostPolicy {
  const problems: Problem[] = [];
  const report = (where: string | undefined, message: string, fix: string) => problems.push({ file, ...(where ? { where } : {}), message, fix });
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    report(undefined, `the host policy must be an object, got ${show(json)}`, 'write for example { "bindRoots": ["/srv/data"], "dockerSocket": false, "hostPorts": ["1024-65535"] }');
    throw new ProblemsError(problems);
  }
  const o = json as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!POLICY_KEYS.includes(key)) report(key, `unknown key \`${key}\` in the host policy`, `remove it; known keys are ${POLICY_KEYS.map((k) => `\`${k}\``).join(', ')}`);
  }
  const absList = (key: 'bindRoots' | 'dockerSockets'): string[] => {
    const v = o[key];
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      report(key, `${key} must be a list of absolute paths, got ${show(v)}`, `for example "${key}": ["/srv/data"]`);
      return [];
    }
    const out: string[] = [];
    v.forEach((p, i) => {
      if (typeof p !== 'string' || !path.isAbsolute(p)) report(`${key}[${i}]`, `${show(p)} is not an absolute path`, 'write the full path from /, e.g. "/srv/data"');
      else out.push(path.resolve(p));
    });
    return out;
  };
  const bindRoots = absList('bindRoots');
  const dockerSockets = absList('dockerSockets');
  let dockerSocket = DEFAULT_HOST_POLICY.dockerSocket;
  if (o.dockerSocket !== undefined) {
    if (typeof o.dockerSocket !== 'boolean') report('dockerSocket', `dockerSocket must be true or false, got ${show(o.dockerSocket)}`, '"dockerSocket": false (true lets every service of the repository control Docker, i.e. be root on the host)');
    else dockerSocket = o.dockerSocket;
  }
  let hostPorts = DEFAULT_HOST_POLICY.hostPorts.map((r) => [...r] as [number, number]);
  if (o.hostPorts !== undefined) {
    if (!Array.isArray(o.hostPorts)) report('hostPorts', `hostPorts must be a list of ports or ranges, got ${show(o.hostPorts)}`, 'for example "hostPorts": [80, 443, "8000-8999"]');
    else {
      hostPorts = [];
      o.hostPorts.forEach((v, i) => {
        const r = parseRange(v);
        if (!r) report(`hostPorts[${i}]`, `${show(v)} is not a port (1..65535) or a range of ports`, 'write 443, "8000-8999" or [8000, 8999] (low end first)');
        else hostPorts.push(r);
      });
    }
  }
  if (problems.length) throw new ProblemsError(problems);
  return { bindRoots, dockerSocket, hostPorts, ...(dockerSockets.length ? { dockerSockets } : {}), source: file };
}

// ───────────────────────────── checking a graph ─────────────────────────────

/**
 * `p` with `..` resolved and every symbolic link followed, component by component, as the kernel
 * would when Docker mounts it: a link whose target does not exist (yet) is still followed, and the
 * part of the path that does not exist is appended as written. Gives up following after 40 links (a loop).
 */
export function resolveHostPath(p: string): string {
  let todo = path.resolve(p).split(path.sep).filter(Boolean);
  let done: string = path.sep;
  let links = 0;
  while (todo.length) {
    const part = todo.shift()!;
    const next = path.join(done, part);
    let target: string | undefined;
    try {
      if (fs.lstatSync(next).isSymbolicLink()) target = fs.readlinkSync(next);
    } catch {
      // Does not exist: the rest cannot be links.
      return path.join(next, ...todo);
    }
    if (target === undefined) {
      done = next;
      continue;
    }
    if (++links > 40) return path.join(next, ...todo);
    // The link's target replaces it; an absolute target starts again from /.
    const resolved = path.resolve(done, target);
    todo = [...resolved.split(path.sep).filter(Boolean), ...todo];
    done = path.sep;
  }
  return done;
}

/** Whether `p` is `dir` or lies under it (both already resolved). */
const within = (p: string, dir: string): boolean => {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith('..' + path.sep) && rel !== '..' && !path.isAbsolute(rel));
};

/** Whether `p` is a socket file (it exists and is one). */
function isSocketFile(p: string): boolean {
  try {
    return fs.statSync(p).isSocket();
  } catch {
    return false;
  }
}

/** The Docker socket a bind of `source` (resolved) would expose, if any. */
function exposedSocket(source: string, sockets: string[]): string | undefined {
  if (SOCKET_NAME.test(path.basename(source))) return source;
  // A directory holding a known socket exposes it too (`/`, `/run`, `/var/run`…).
  const known = sockets.find((s) => within(s, source));
  if (known) return known;
  // So does a directory with a docker*.sock or containerd*.sock directly in it (one level is looked at:
  // a deep scan of a large allowed root would cost more than it finds).
  try {
    const hit = fs.readdirSync(source).find((n) => SOCKET_NAME.test(n));
    return hit ? path.join(source, hit) : undefined;
  } catch {
    return undefined;
  }
}

interface Checked {
  /** The resolved path as it was written and as its symlinks lead. */
  written: string;
  real: string;
}

function describe(p: Checked): string {
  return p.real === p.written ? `"${p.written}"` : `"${p.written}" (which leads to "${p.real}")`;
}

/**
 * Problems (file, service, the field, the rule and the fix) for every service of `graph` that breaks
 * `policy`, in service order. `checkoutDir` is where the agent checked the repository out (bind mounts
 * there are always allowed). Empty when the graph may be deployed.
 */
export function checkHostPolicy(graph: ServiceGraph, policy: HostPolicy, checkoutDir: string): Problem[] {
  const problems: Problem[] = [];
  const settings = policy.source ? `the agent's host policy (${policy.source})` : "the agent's host policy";
  const checkout = resolveHostPath(checkoutDir);
  const gitDir = path.join(checkout, '.git');
  const roots = [checkout, ...policy.bindRoots.map(resolveHostPath)];
  // Every known socket as written and as its symlinks lead (/var/run is usually a link to /run).
  const sockets = [...new Set([...WELL_KNOWN_SOCKETS, ...(policy.dockerSockets ?? [])].flatMap((s) => [path.resolve(s), resolveHostPath(s)]))];
  for (const name of Object.keys(graph.services).sort()) {
    const svc: ServiceSpec = graph.services[name]!;
    const report = (where: string, message: string, fix: string) => problems.push({ file: svc.file, service: svc.name, where, message: `host policy: ${message}`, fix });

    svc.mounts.forEach((m: Mount, i) => {
      if (m.type !== 'bind') return;
      const where = `volumes[${i}].bind`;
      const p: Checked = { written: path.resolve(m.source), real: resolveHostPath(m.source) };
      const socket = exposedSocket(p.written, sockets) ?? exposedSocket(p.real, sockets) ?? (isSocketFile(p.real) && /docker|containerd/.test(p.real) ? p.real : undefined);
      if (socket && !policy.dockerSocket) {
        report(
          where,
          `the bind mount of ${describe(p)} would give the container the Docker socket${socket === p.written || socket === p.real ? '' : ` ("${socket}")`}, which is root on this host; the Docker socket is never mounted unless the host allows it`,
          `remove this bind mount; if this service must control Docker, set "dockerSocket": true in ${settings}`,
        );
        return;
      }
      // Where the links lead is what Docker mounts: a committed symlink cannot lead out of the checkout.
      const root = roots.find((r) => within(p.real, r));
      if (!root) {
        const allowed = roots.length > 1 ? `the checkout (${checkout}) or ${roots.slice(1).map((r) => `"${r}"`).join(', ')}` : `the checkout (${checkout})`;
        report(
          where,
          `the bind mount of ${describe(p)} is outside the directories bind mounts may use: ${allowed}`,
          `use a named volume ({ name: 'data', target: '${m.target}' }) or a path inside the repository, or add the directory to bindRoots in ${settings}`,
        );
        return;
      }
      if (within(p.real, gitDir) || within(gitDir, p.real)) {
        report(
          where,
          `the bind mount of ${describe(p)} would show the container the checkout's .git, which holds how the agent fetches the repository`,
          'bind a subdirectory of the repository (e.g. ./config) instead of its root or .git',
        );
      }
    });

    for (const b of svc.ports) {
      if (b.host === undefined) continue;
      if (policy.hostPorts.some(([lo, hi]) => b.host! >= lo && b.host! <= hi)) continue;
      const ranges = policy.hostPorts.length ? policy.hostPorts.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(', ') : 'none';
      report(
        'ports',
        `host port ${b.host}/${b.protocol} (for container port ${b.container}) is outside the host ports services may publish: ${ranges}`,
        `publish a host port in ${ranges}, or add ${b.host} to hostPorts in ${settings}`,
      );
    }
  }
  return problems;
}
