/**
 * A fresh machine: `npm test` and `npm run demo` source scripts/setup.sh, which installs what is missing
 * with apt-get and hands DOCKER_HOST over from the engine helper. apt (and docker) print plenty on
 * stdout; none of it may end up in the exported variable.
 *
 * Simulated as root inside a private mount namespace (`unshare -m`): an installed tool (tmux, age) is
 * hidden by bind-mounting a non-executable file over it, a fake `apt-get` that talks like the real one
 * (and logs its calls) comes first on PATH, and so does a `docker` that prints noise on stdout before
 * running the real one. DOCKER_HOST is unset, so the helper finds the engine itself. The build setup.sh
 * runs writes into a private copy of dist/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PKG_ROOT } from './helpers.ts';

function whyNot(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (unshare -m and bind mounts over /usr/bin)';
  const u = spawnSync('unshare', ['-m', '--propagation', 'private', 'true'], { encoding: 'utf8' });
  if (u.error || u.status !== 0) return `unshare -m is not available here: ${u.error?.message ?? u.stderr.trim()}`;
  if (!fs.existsSync('/etc/debian_version')) return 'setup.sh installs with apt-get only on Debian';
  return undefined;
}

const APT_NOISE = `
echo "Reading package lists..."
echo "Building dependency tree..."
echo "Reading state information..."
echo "The following NEW packages will be installed:"
echo "  $*"
echo "0 upgraded, 1 newly installed, 0 to remove and 0 not upgraded."
echo "Selecting previously unselected package tmux."
echo "(Reading database ... 41234 files and directories currently installed.)"
echo "Preparing to unpack .../tmux_3.3a-3_amd64.deb ..."
echo "Unpacking tmux (3.3a-3) ..."
echo "Setting up tmux (3.3a-3) ..."
echo "Processing triggers for man-db (2.11.2-2) ..."
echo "export FOO=bar baz"
`;

/** Runs `script` under bash in a private mount namespace with the fakes in place; returns what it printed and the apt-get calls. */
function onFreshMachine(script: string): { status: number | null; stdout: string; stderr: string; aptCalls: string[]; hidden: string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-fresh-'));
  try {
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    const aptLog = path.join(dir, 'apt-get.log');
    fs.writeFileSync(path.join(bin, 'apt-get'), `#!/bin/sh\necho "apt-get $*" >> '${aptLog}'\n${APT_NOISE}exit 0\n`, { mode: 0o755 });
    const realDocker = spawnSync('sh', ['-c', 'command -v docker'], { encoding: 'utf8' }).stdout.trim();
    fs.writeFileSync(path.join(bin, 'docker'), `#!/bin/sh\necho "Sending build context to Docker daemon"\necho "Step 1/9 : FROM scratch"\nexec '${realDocker}' "$@"\n`, {
      mode: 0o755,
    });
    const blank = path.join(dir, 'not-a-program');
    fs.writeFileSync(blank, '', { mode: 0o644 });
    const hidden = ['tmux', 'age']
      .map((t) => spawnSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' }).stdout.trim())
      .filter((p) => p.startsWith('/'));
    const mounts = hidden.map((p) => `mount --bind '${blank}' '${p}'`).join(' && ');
    const inner = [
      'set -e',
      mounts || 'true',
      // The hidden tools must really be gone, or the test would not reach apt-get.
      // (sh, as the engine helper asks: bash's `command -v` also names a file it cannot run.)
      ...hidden.map((p) => `if sh -c 'command -v ${path.basename(p)}' >/dev/null; then echo "still visible: ${p}" >&2; exit 97; fi`),
      `export PATH='${bin}':"$PATH"`,
      'unset DOCKER_HOST',
      `cd '${PKG_ROOT}'`,
      // setup.sh rebuilds dist/: into a private copy, so tests running beside this one never see a half-written file.
      `mkdir '${dir}/dist' && cp -a dist/. '${dir}/dist/' && mount --bind '${dir}/dist' dist`,
      script,
    ].join('\n');
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', inner], {
      encoding: 'utf8',
      env: { ...process.env, DOCKER_HOST: '' },
      timeout: 300_000,
    });
    const aptCalls = fs.existsSync(aptLog) ? fs.readFileSync(aptLog, 'utf8').trim().split('\n').filter(Boolean) : [];
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, aptCalls, hidden };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** After sourcing setup.sh: print what it exported and whether the engine answers there. */
const CHECK = `
echo "exported $DOCKER_HOST"
sock="\${DOCKER_HOST#unix://}"
echo "ping $(curl -s --max-time 5 --unix-socket "$sock" http://engine/_ping)"
`;

const reason = whyNot();

test('npm test on a fresh machine: apt-get installs the missing tools, its chatter stays out of DOCKER_HOST, the engine answers', { skip: reason }, () => {
  const r = onFreshMachine(`source scripts/setup.sh --test-tools\n${CHECK}`);
  assert.equal(r.status, 0, `setup failed (${r.status}):\n${r.stderr.slice(-3000)}`);
  assert.ok(r.hidden.length > 0, 'no installed tool to hide (tmux or age)');
  // The path under test ran: apt-get was asked for exactly the hidden tools' packages.
  assert.ok(r.aptCalls.some((c) => /^apt-get update\b/.test(c)), `apt-get update not called: ${JSON.stringify(r.aptCalls)}`);
  const install = r.aptCalls.find((c) => /^apt-get install\b/.test(c));
  assert.ok(install, `apt-get install not called: ${JSON.stringify(r.aptCalls)}`);
  for (const p of r.hidden) assert.match(install, new RegExp(`\\b${path.basename(p)}\\b`));
  assert.match(r.stdout, /^exported unix:\/\/\S+$/m, r.stdout);
  assert.match(r.stdout, /^ping OK$/m, `the exported DOCKER_HOST does not answer:\n${r.stdout}\n${r.stderr.slice(-2000)}`);
  // apt's chatter went to stderr, where a person sees it; none of it on stdout.
  assert.doesNotMatch(r.stdout, /Reading package lists|Setting up/);
  assert.match(r.stderr, /Reading package lists/);
});

test('npm run demo on a fresh machine: the same set-up with the demo images exports an engine that answers', { skip: reason }, () => {
  assert.match(fs.readFileSync(path.join(PKG_ROOT, 'scripts', 'demo.sh'), 'utf8'), /^source "\$\(dirname "\$0"\)\/setup\.sh" --demo-images$/m);
  const r = onFreshMachine(`source scripts/setup.sh --demo-images\n${CHECK}`);
  assert.equal(r.status, 0, `setup failed (${r.status}):\n${r.stderr.slice(-3000)}`);
  assert.match(r.stdout, /^exported unix:\/\/\S+$/m, r.stdout);
  assert.match(r.stdout, /^ping OK$/m, r.stdout);
});

test('setup.sh refuses a result that is not a DOCKER_HOST line, naming what to run', { skip: reason }, () => {
  // An engine helper whose result is garbage (as apt's output once was): setup stops with a clear message.
  const r = onFreshMachine(
    [
      // A stand-in tsx that runs the real one for the build and writes garbage as the helper's result.
      `fake=$(mktemp -d); printf '#!/bin/sh\\nfor a in "$@"; do if [ "$prev" = --out ]; then echo "Reading package lists..." > "$a"; fi; prev="$a"; done\\nexit 0\\n' > "$fake/tsx"; chmod +x "$fake/tsx"`,
      `mount --bind "$fake/tsx" node_modules/.bin/tsx`,
      `source scripts/setup.sh --test-tools; echo "not reached"`,
    ].join('\n'),
  );
  assert.notEqual(r.status, 0);
  assert.doesNotMatch(r.stdout, /not reached/);
  assert.match(r.stderr, /setup: the engine helper \(test\/engine\.ts\) reported no DOCKER_HOST=unix:\/\/… or tcp:\/\/… line/);
});
