import { defineService } from 'wafflemaker';

export default defineService({
  image: 'nginx:1.27',
  port: 80,
  ports: ['8080:80'],
  healthcheck: { http: '/', interval: '5s', retries: 3 },
  resources: { memory: '128m', cpus: 0.5 },
});
