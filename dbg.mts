import { startCaddy } from './test/caddy.ts';
const caddy = await startCaddy();
for (const [p, body] of [['apps/tls', { automation: { policies: [] } }], ['apps/http/servers/x', { listen: [':' + caddy.httpsPort] }]] as const) {
  try {
    const res = await fetch(`${caddy.admin}/config/${p}`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    console.log(res.status, await res.text());
  } catch (e) { console.log('ERR', (e as any).cause); }
}
console.log(caddy.output().slice(-1500));
await caddy.stop();
