/**
 * Vault down while the agent deploys (a double of Vault's HTTP API, taken down and brought back on the
 * same port): the deploy fails at its secrets stage and is reported, the agent keeps serving, retries
 * by itself with backoff, and deploys once Vault answers again. The Vault token never shows up.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { cleanupProject, dockerClient, snapshot, uniqueProject } from './helpers.ts';
import { ensureTestImages, TEST_IMAGES } from './engine.ts';
import { VaultDouble } from './doubles/vault-double.ts';
import { makeRemote, startAgent, tempRoot, waitFor, type RunningAgent } from './agent-support.ts';

let docker: Dockerode;
const project = uniqueProject('agv');
let root: string;
let vault: VaultDouble;
let agent: RunningAgent | undefined;

before(async () => {
  docker = await dockerClient();
  await ensureTestImages(process.env.DOCKER_HOST!);
  root = tempRoot('waffle-agent-vault-');
  vault = await VaultDouble.start();
  vault.addRole('aws', 'reader', { defaultTtl: 600, maxTtl: 3600 });
});

after(async () => {
  await agent?.stop().catch(() => undefined);
  await vault?.start().catch(() => undefined);
  await vault?.stop().catch(() => undefined);
  if (docker) await cleanupProject(docker, project);
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

test('Vault down: the deploy fails and is retried with backoff; once Vault answers it deploys', async () => {
  const token = vault.createToken({ ttl: 86400 });
  const remote = makeRemote(root, {
    'waffle.config.ts': `import { defineConfig, defineSecrets } from 'wafflemaker';
export const secrets = defineSecrets({ aws: { provider: 'vault', engine: 'aws', role: 'reader', keys: ['accessKeyId', 'secretAccessKey'] } });
export default defineConfig({ project: '${project}', secrets, vault: { address: '${vault.address}', auth: { token: { env: 'VAULT_TOKEN' } } }, defaults: { stopGracePeriod: '1s' } });
`,
    'services/worker.ts': `import { defineService } from 'wafflemaker';
import { secrets } from '../waffle.config';
export default defineService({ image: '${TEST_IMAGES.busybox}', command: 'trap "exit 0" TERM; while true; do sleep 1; done', env: { KEY: secrets.aws.accessKeyId } });
`,
  });
  await vault.stop(); // Vault down before the agent starts
  agent = await startAgent({ root, repo: remote.bare, stateDir: path.join(root, 'state'), env: { VAULT_TOKEN: token } });
  const failed = await waitFor('the start-up deploy to fail', async () => (await agent!.api('GET', '/deployments')).json.deployments.find((d: { state: string }) => d.state === 'failed'));
  assert.match(failed.error, /vault|Vault|ECONNREFUSED|connect/i);
  assert.deepEqual((await snapshot(docker, project)).containers, [], 'nothing deployed without its secrets');
  assert.ok(agent.lines().some((l) => l.msg === 'transient failure: the deploy will be retried'), 'a retry is scheduled');
  assert.equal((await fetch(agent.url + '/healthz')).status, 200, 'the agent still serves');

  await vault.start();
  const applied = await waitFor('a retry to deploy', async () => (await agent!.api('GET', '/deployments')).json.deployments.find((d: { state: string; trigger: string }) => d.state === 'applied'), 90_000);
  assert.equal(applied.trigger, 'retry');
  const containers = (await snapshot(docker, project)).containers;
  assert.equal(containers.length, 1);
  assert.equal(containers[0]!.state, 'running');
  assert.ok(!agent.log().includes(token), 'the Vault token is not in the log');
  assert.ok(!JSON.stringify((await agent.api('GET', `/deployments/${failed.id}`)).json).includes(token));
});
