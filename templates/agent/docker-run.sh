#!/bin/sh
# `waffle agent` in a container, driving the host's Docker engine. The state directory is mounted at
# the same path inside and outside: bind mounts in service definitions are resolved by the host's
# dockerd, so paths under the checkout must mean the same file on both sides. Secrets are files under
# /etc/wafflemaker (chmod 600), mounted read-only; none of them is passed as an environment variable.
# The agent listens on 127.0.0.1:8787 of the host; put a reverse proxy with TLS in front for GitHub.
docker run -d --name waffle-agent --restart unless-stopped \
  -v /var/run/docker.sock:/var/run/docker.sock \
  -v /var/lib/wafflemaker:/var/lib/wafflemaker \
  -v /etc/wafflemaker:/etc/wafflemaker:ro \
  -p 127.0.0.1:8787:8787 \
  -e WAFFLE_AGENT_REPO=https://github.com/OWNER/NAME.git \
  -e WAFFLE_AGENT_BRANCH=main \
  -e WAFFLE_AGENT_LISTEN=0.0.0.0:8787 \
  -e WAFFLE_AGENT_STATE_DIR=/var/lib/wafflemaker \
  -e WAFFLE_AGENT_WEBHOOK_SECRET_FILE=/etc/wafflemaker/webhook-secret \
  -e WAFFLE_AGENT_TOKEN_FILE=/etc/wafflemaker/token \
  -e WAFFLE_AGENT_GIT_TOKEN_FILE=/etc/wafflemaker/git-token \
  -e WAFFLE_AGENT_GITHUB_TOKEN_FILE=/etc/wafflemaker/github-token \
  -e WAFFLE_AGENT_PUBLIC_URL=https://deploy.example.com \
  -e MALLOC_ARENA_MAX=2 -e NODE_OPTIONS=--max-semi-space-size=1 \
  --stop-timeout 300 \
  node:20-bookworm \
  sh -c 'npm install --global --omit=dev wafflemaker@0.1 && exec waffle agent'
