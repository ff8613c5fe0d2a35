import { defineService } from 'wafflemaker';
import api from './api';

/** The public face: published on 127.0.0.1:8088, talks to the api by name. */
export default defineService({
  image: 'waffle-demo/web:1',
  command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
  port: 8080,
  ports: ['127.0.0.1:8088:8080'],
  env: { API_URL: api.url('/') },
  dependsOn: [{ service: api, condition: 'healthy' }],
  healthcheck: { http: '/' },
});
