# Sourced by demo.sh and test.sh: installs npm packages when missing, builds dist/, and makes sure a
# Docker engine answers (reusing one, or starting a private dockerd; as root on Debian it installs
# docker.io and busybox-static first). Exports DOCKER_HOST.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x node_modules/.bin/tsx ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages" >&2
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund >&2; else npm install --no-audit --no-fund >&2; fi
fi
node scripts/build.mjs >&2
# The engine helper hands its result over in a file: whatever it or apt-get, docker build or dockerd
# print (all sent to stderr here) can never be mistaken for the result.
engine_file=$(mktemp "${TMPDIR:-/tmp}/waffle-engine.XXXXXX")
if ! node_modules/.bin/tsx test/engine.ts --out "$engine_file" "$@" >&2; then
  rm -f "$engine_file"
  echo "setup: could not make a Docker engine answer (the reason is above). Fix that, or start Docker yourself and set DOCKER_HOST, then run this again." >&2
  exit 1
fi
engine_line=$(grep -E '^DOCKER_HOST=(unix|tcp)://[^[:space:]]+$' "$engine_file" | tail -n 1 || true)
rm -f "$engine_file"
if [ -z "$engine_line" ]; then
  echo "setup: the engine helper (test/engine.ts) reported no DOCKER_HOST=unix://… or tcp://… line. Run \`node_modules/.bin/tsx test/engine.ts\` to see what it says." >&2
  exit 1
fi
export "$engine_line"
unset engine_file engine_line
echo "setup: Docker engine at ${DOCKER_HOST}" >&2
