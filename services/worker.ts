import { defineService } from 'wafflemaker';
import api from './api';

/** A background job that polls the api every 5 seconds. */
export default defineService({
  image: 'waffle-demo/worker:1',
  command: 'while true; do wget -q -O- "$API_URL" >/dev/null && echo "polled $API_URL"; sleep 5; done',
  env: { API_URL: api.url('/') },
  dependsOn: [api],
  restart: 'always',
  stopGracePeriod: '2s',
});
