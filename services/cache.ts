import { defineService } from 'wafflemaker';

/** A line-protocol "cache" on TCP 6379: answers every connection with PONG. */
export default defineService({
  image: 'waffle-demo/cache:1',
  command: 'while true; do echo PONG | nc -l -p 6379; done',
  port: 6379,
  healthcheck: { tcp: 6379 },
  volumes: [{ name: 'cache-data', target: '/data' }],
});
