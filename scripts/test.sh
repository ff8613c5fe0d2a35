#!/usr/bin/env bash
# `npm test`: sets everything up (packages, build, Docker engine, test images), then runs every test.
source "$(dirname "$0")/setup.sh" --test-tools
files=("$@")
if [ ${#files[@]} -eq 0 ]; then mapfile -t files < <(ls test/*.test.ts test/*.test.tsx 2>/dev/null); fi
exec node --import tsx --test --test-concurrency=2 --test-reporter=spec "${files[@]}"
