#!/usr/bin/env bash
# `npm test`: sets everything up (packages, build, Docker engine, test images), then runs every test.
source "$(dirname "$0")/setup.sh" --test-tools
files=("$@")
if [ ${#files[@]} -eq 0 ]; then mapfile -t files < <(ls test/*.test.ts test/*.test.tsx 2>/dev/null); fi
# Test files on Swarm share one swarm. This shell holds it for the whole run, so it is made at most
# once and left only when every test is done: leaving a swarm breaks name resolution in the engine's
# running containers, which would fail the tests of the single engine running beside them.
held=""
release() { if [ -n "$held" ]; then held=""; node_modules/.bin/tsx test/swarm-support.ts release $$ || true; fi; }
if grep -q joinTestSwarm "${files[@]}" 2>/dev/null; then
  node_modules/.bin/tsx test/swarm-support.ts hold $$
  held=1
  trap 'release; exit 130' INT TERM
fi
rc=0
node --import tsx --test --test-concurrency=2 --test-reporter=spec "${files[@]}" || rc=$?
release
exit $rc
