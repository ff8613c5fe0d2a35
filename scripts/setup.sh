# Sourced by demo.sh and test.sh: installs npm packages when missing, builds dist/, and makes sure a
# Docker engine answers (reusing one, or starting a private dockerd; as root on Debian it installs
# docker.io and busybox-static first). Exports DOCKER_HOST.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x node_modules/.bin/tsx ] || [ package.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages" >&2
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund >&2; else npm install --no-audit --no-fund >&2; fi
fi
node scripts/build.mjs
engine_out=$(node_modules/.bin/tsx test/engine.ts "$@")
export "$engine_out"
echo "setup: Docker engine at ${DOCKER_HOST}" >&2
