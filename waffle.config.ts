import { defineConfig } from 'wafflemaker';

/** The demo source of truth that `npm run demo` deploys. */
export default defineConfig({
  project: 'waffle-demo',
  services: ['services/*.ts'],
  defaults: {
    restart: 'unless-stopped',
    healthcheck: { interval: '1s', timeout: '2s', retries: 10 },
  },
});
