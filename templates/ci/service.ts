import { defineService } from 'wafflemaker';

/**
 * The service the workflow in github-actions.yml builds. Its image is one of the tags CI pushed:
 * `main-<short sha>` (the branch and the commit) or `sha-<short sha>`. A new commit on main pushes
 * `main-<new sha>`: `waffle agent` deploys it by the update policy below (the newest `main-*` push;
 * a short sha does not sort, so the push time orders them), or change the tag here by hand; either
 * way the container is replaced health-gated.
 */
export default defineService({
  image: 'ghcr.io/acme/shop:main-3f2a1b9',
  port: 3000,
  ports: ['127.0.0.1:3000:3000'],
  healthcheck: { http: '/health', interval: '5s', retries: 3 },
  restart: 'unless-stopped',
  update: { tags: { glob: 'main-*' }, order: 'newest' },
});
