import { defineService } from 'wafflemaker';
import cache from './cache';

/** A small HTTP API (busybox httpd), reachable by linked services as http://api:8080. */
export default defineService({
  image: 'waffle-demo/api:1',
  command: ['httpd', '-f', '-v', '-p', '8080', '-h', '/www'],
  port: 8080,
  healthcheck: { http: '/' },
  env: { GREETING: 'hello from the api', CACHE_ADDR: 'cache:6379' },
  connects: [cache],
  resources: { memory: '64m', cpus: 0.5 },
});
