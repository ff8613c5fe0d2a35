#!/usr/bin/env bash
# `npm run demo`: deploys the demo repository at the root (waffle.config.ts + services/) on a Docker
# engine (a private one when none answers), then shows its status.
source "$(dirname "$0")/setup.sh" --demo-images
node bin/waffle.js apply --yes --plain
node bin/waffle.js status
echo "demo: try \`DOCKER_HOST=$DOCKER_HOST node bin/waffle.js plan\`, or \`... destroy --yes\` to remove it" >&2
