/**
 * How the evaluation process is confined. Service files are code from the repository; evaluating them
 * must not hand them the deployer's powers. Layers, each covering what the one before cannot:
 *
 * - Environment: the process gets only the variables the config allow-lists (`evaluation.env`), never
 *   the deployer's tokens or identity paths (names that look like credentials are refused unless the
 *   operator forces them), and nothing that changes how node starts (`NODE_OPTIONS`, `LD_*`).
 * - Node's permission model (`--experimental-permission`): no file writes, no file reads except the
 *   packages the bundles import, no child processes, workers, addons or WASI. It applies to every way of
 *   reaching a builtin (`import`, `process.getBuiltinModule`, `require`), since it is enforced inside them.
 *   On Node 20 it does not cover sockets, hence:
 * - As root: the process runs as `nobody` (uid/gid 65534, no supplementary groups, no new privileges),
 *   so a unix socket owned by root or a group such as `docker` refuses it; and in its own network and
 *   PID namespaces (`unshare --net --pid`), so it reaches no TCP service at all (not even 127.0.0.1),
 *   and everything it could start dies with it.
 * - Lifetime: its own process group (killed as a whole at a limit), and `setpriv --pdeathsig KILL`, so
 *   the kernel kills it when waffle dies, even by SIGKILL.
 * - Memory: V8's heap cap, a data-segment rlimit (off-heap buffers), and a resident-size watch by the
 *   parent that stops a growing process before V8 spends seconds collecting garbage near its cap.
 *
 * Where a layer is unavailable (not root; no `unshare`/`setpriv`; no namespaces in a container) the
 * others still apply, and the loader says what is missing through its `onWarning` callback.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

export type Env = Record<string, string | undefined>;

/** Heap cap of the evaluation process when the config sets none, in MiB. */
export const DEFAULT_MEMORY_MB = 256;
export const MIN_MEMORY_MB = 32;
export const MAX_MEMORY_MB = 16384;
/** Resident memory allowed above the heap cap: node's own baseline (~40 MiB), young generation, code. */
export const RSS_HEADROOM_MB = 64;
/** uid/gid of `nobody` on Debian and most Linux systems. */
export const NOBODY = 65534;

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Why a variable name may not be allow-listed, or undefined when it may. `forceable` is false for
 * names that change how the evaluation process itself starts (the operator cannot force those either).
 */
export function envNameRisk(name: string): { reason: string; forceable: boolean } | undefined {
  const n = name.toUpperCase();
  if (n === 'NODE_ENV') return undefined; // read by code, not by node itself
  if (n === 'NODE_OPTIONS' || n.startsWith('NODE_') || n.startsWith('LD_') || n === 'PATH' || n.startsWith('UV_')) {
    return { reason: 'changes how the evaluation process starts (node options, libraries, search path)', forceable: false };
  }
  if (/^(VAULT|DOCKER|AWS|GOOGLE|AZURE|GCP|ARM|OP|SOPS|AGE|GPG|SSH|NPM|GITHUB|GITLAB|GH|CI_JOB)_/.test(n) || n.startsWith('WAFFLE_')) {
    return { reason: "belongs to a tool with access (Vault, Docker, a cloud, SSH, a forge, npm or waffle's own settings)", forceable: true };
  }
  if (n === 'PWD' || n === 'OLDPWD') return undefined; // the shell's working directory, not a password
  if (/(^|_)(TOKEN|SECRET|SECRETS|PASSWORD|PASSWD|PASS|PWD|KEY|KEYS|APIKEY|CREDENTIAL|CREDENTIALS|CREDS|AUTH|IDENTITY|PRIVATE|COOKIE|SESSION|CERT|DSN)(_|$)/.test(n)) {
    return { reason: 'looks like a credential (token, secret, password, key, identity)', forceable: true };
  }
  if (/(TOKEN|SECRET|PASSWORD|PASSWD|APIKEY|CREDENTIAL|PRIVATE)/.test(n)) {
    return { reason: 'looks like a credential (token, secret, password, key, identity)', forceable: true };
  }
  return undefined;
}

export interface EvaluationSettings {
  /** Names the configuration may read, as listed. */
  env: string[];
  memoryMb: number;
}

export interface SettingsProblem {
  where: string;
  message: string;
  fix: string;
}

/**
 * Reads `evaluation` from the raw config object (before any validation: the loader needs it to start
 * the process that evaluates the service files). `forced` are names the operator allows although they
 * look like credentials.
 */
export function evaluationSettings(config: Record<string, unknown>, forced: readonly string[] = []): { settings: EvaluationSettings; problems: SettingsProblem[] } {
  const problems: SettingsProblem[] = [];
  const settings: EvaluationSettings = { env: [], memoryMb: DEFAULT_MEMORY_MB };
  const ev = config.evaluation;
  if (ev === undefined) return { settings, problems };
  if (typeof ev !== 'object' || ev === null || Array.isArray(ev)) {
    problems.push({ where: 'evaluation', message: 'must be an object', fix: "write evaluation: { env: ['DEPLOY_ENV'], memoryMb: 256 }, or leave it out" });
    return { settings, problems };
  }
  const { env, memoryMb } = ev as { env?: unknown; memoryMb?: unknown };
  if (env !== undefined) {
    if (!Array.isArray(env)) {
      problems.push({ where: 'evaluation.env', message: 'must be a list of environment variable names', fix: "write env: ['DEPLOY_ENV', 'REGION']" });
    } else {
      env.forEach((name, i) => {
        const where = `evaluation.env[${i}]`;
        if (typeof name !== 'string' || !ENV_NAME_RE.test(name)) {
          problems.push({ where, message: `${JSON.stringify(name) ?? String(name)} is not an environment variable name`, fix: 'list names only (letters, digits and _, not starting with a digit); the values come from waffle\'s environment' });
          return;
        }
        const risk = envNameRisk(name);
        if (risk && !(risk.forceable && forced.includes(name))) {
          problems.push({
            where,
            message: `${name} ${risk.reason}; the configuration must not read it while it is evaluated`,
            fix: risk.forceable
              ? `remove '${name}' from evaluation.env and pass what the configuration needs in a variable of its own; if it really must be visible, whoever runs waffle can allow it (\`waffle --allow-env ${name}\`; the loader's allowEnv option), never the repository`
              : `remove '${name}' from evaluation.env`,
          });
          return;
        }
        if (!settings.env.includes(name)) settings.env.push(name);
      });
    }
  }
  if (memoryMb !== undefined) {
    if (typeof memoryMb !== 'number' || !Number.isInteger(memoryMb) || memoryMb < MIN_MEMORY_MB || memoryMb > MAX_MEMORY_MB) {
      problems.push({
        where: 'evaluation.memoryMb',
        message: `${JSON.stringify(memoryMb) ?? String(memoryMb)} must be a whole number of MiB from ${MIN_MEMORY_MB} to ${MAX_MEMORY_MB}`,
        fix: `write memoryMb: ${DEFAULT_MEMORY_MB}, or leave it out for that default`,
      });
    } else settings.memoryMb = memoryMb;
  }
  return { settings, problems };
}

/** The environment of the evaluation process: exactly the allow-listed names that are set in `from`. */
export function childEnv(from: Env, names: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const n of names) {
    const v = from[n];
    if (typeof v === 'string') env[n] = v;
  }
  return env;
}

// ───────────────────────────── launching ─────────────────────────────

const SYSTEM_BIN = ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin'];

/** A system tool by absolute path (the child's PATH is empty, and waffle reads no PATH of its own). */
function systemTool(name: string): string | undefined {
  for (const d of SYSTEM_BIN) {
    const p = `${d}/${name}`;
    if (existsSync(p)) return p;
  }
  return undefined;
}

export interface Confinement {
  /** argv before `node …`: the wrappers that confine it (may be empty). */
  prefix: string[];
  /** Runs as nobody (uid 65534): root's and the docker group's unix sockets refuse it. */
  nobody: boolean;
  /** Has its own network namespace: no TCP service (not even on 127.0.0.1) is reachable. */
  noNetwork: boolean;
  /** What is missing here, for the caller to show; empty when every layer applies. */
  warnings: string[];
}

/** True when `unshare --net --pid` works here (root with CAP_SYS_ADMIN; not in every container). */
async function namespacesWork(unshare: string): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn(unshare, ['--net', '--pid', '--fork', '--kill-child', '--', '/bin/true'], { stdio: 'ignore', env: {} });
    p.on('error', () => resolve(false));
    p.on('exit', (code) => resolve(code === 0));
  });
}

/**
 * Decides how to wrap the evaluation process on this machine. `uid` is the current user's id
 * (undefined where there are none, e.g. Windows). The memory wrapper comes from `memoryPrefix`.
 */
export async function confinement(uid: number | undefined): Promise<Confinement> {
  const warnings: string[] = [];
  const setpriv = systemTool('setpriv');
  const unshare = systemTool('unshare');
  const prefix: string[] = [];
  if (setpriv) prefix.push(setpriv, '--pdeathsig', 'KILL', '--');
  else warnings.push('setpriv (util-linux) was not found: an evaluation process outlives waffle if waffle is killed while it runs');
  if (uid !== 0) {
    warnings.push(
      `waffle runs as uid ${uid ?? '?'}, not root: the evaluation process cannot write files or start processes, but it runs as this user and ` +
        'shares its network, so it can connect to sockets this user can reach (the Docker socket if this user is in the docker group). ' +
        'Run waffle as root to evaluate as nobody without a network',
    );
    return { prefix, nobody: false, noNetwork: false, warnings };
  }
  if (!setpriv) {
    warnings.push('setpriv (util-linux) was not found: the evaluation process runs as root and can reach the Docker socket; install util-linux');
    return { prefix, nobody: false, noNetwork: false, warnings };
  }
  const drop = [setpriv, `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--no-new-privs', '--inh-caps=-all', '--bounding-set=-all', '--pdeathsig', 'KILL', '--'];
  if (unshare && (await namespacesWork(unshare))) {
    // unshare forks the new PID namespace's first process (killed with unshare: --kill-child); that one
    // drops to nobody and becomes node.
    prefix.push(unshare, '--net', '--pid', '--fork', '--kill-child', '--', ...drop);
    return { prefix, nobody: true, noNetwork: true, warnings };
  }
  warnings.push(
    `${unshare ? '`unshare --net --pid` is not permitted here (a container without CAP_SYS_ADMIN?)' : 'unshare (util-linux) was not found'}: ` +
      'the evaluation process runs as nobody but shares the host network, so it can reach TCP services on this machine',
  );
  prefix.push(...drop);
  return { prefix, nobody: true, noNetwork: false, warnings };
}

/**
 * Off-heap memory (Buffers) is outside V8's cap: `prlimit` bounds the data segment too (the heap's
 * pages count there as well, so it leaves room for node's baseline and young generation).
 */
export function memoryPrefix(memoryMb: number): string[] {
  const prlimit = systemTool('prlimit');
  if (!prlimit) return [];
  const bytes = (memoryMb * 2 + 256) * 1024 * 1024;
  return [prlimit, `--data=${bytes}:${bytes}`, '--'];
}

function semiSpaceMb(memoryMb: number): number {
  return Math.max(1, Math.min(64, Math.floor(memoryMb / 4)));
}

/** Node flags of the evaluation process: the permission model and the heap cap. */
export function nodeFlags(memoryMb: number, readable: readonly string[]): string[] {
  const flags = [
    '--experimental-permission',
    '--disable-warning=ExperimentalWarning',
    `--max-old-space-size=${memoryMb}`,
    // A larger young generation: a definition that only grows spends far less time in garbage
    // collection before it meets the cap (2 s instead of 7 s for 256 MiB of small strings); the
    // resident-size watch in the parent counts these pages too.
    `--min-semi-space-size=${Math.min(16, semiSpaceMb(memoryMb))}`,
    `--max-semi-space-size=${semiSpaceMb(memoryMb)}`,
  ];
  // Node 20 splits the list at commas: a path holding one cannot be allowed (its import then fails with
  // ERR_ACCESS_DENIED, naming the package).
  const paths = readable.filter((p) => !p.includes(','));
  if (paths.length > 0) flags.push(`--allow-fs-read=${paths.join(',')}`);
  return flags;
}

// ───────────────────────────── processes ─────────────────────────────

/** The deepest descendant of `pid` along first children (the wrappers exec or fork once each: that is node). */
export function leafProcess(pid: number): number {
  let cur = pid;
  for (let i = 0; i < 8; i++) {
    let kids: string;
    try {
      kids = readFileSync(`/proc/${cur}/task/${cur}/children`, 'utf8').trim();
    } catch {
      return cur;
    }
    const first = Number(kids.split(/\s+/)[0]);
    if (!kids || !Number.isInteger(first)) return cur;
    cur = first;
  }
  return cur;
}

/** Resident memory of `pid` in MiB, or undefined when it cannot be read (gone, no /proc). */
export function residentMb(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** SIGKILL to the process group led by `pid` (the evaluation process and anything it started). */
export function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
}
