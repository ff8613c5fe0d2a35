/**
 * dockerode without its BuildKit session (gRPC) and SSH transport loaded up front: loading the client
 * loads neither; a call that needs one loads it then and works against the real engine.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadDockerode } from '../runtime/docker/dockerode.ts';
import { freePort, uniqueProject } from './helpers.ts';

const req = createRequire(import.meta.url);
const loaded = (pkg: string) => Object.keys(req.cache).some((f) => f.includes(`${path.sep}node_modules${path.sep}${pkg}${path.sep}`));
const socket = (process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock').replace(/^unix:\/\//, '');
const tag = `${uniqueProject('lazy')}:build`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waffle-lazy-'));

after(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
  const Docker = await loadDockerode();
  await new Docker({ socketPath: socket }).getImage(tag).remove({ force: true }).catch(() => undefined);
});

test('loading dockerode loads neither gRPC nor ssh2; ordinary calls work', async () => {
  const Docker = await loadDockerode();
  assert.equal(await loadDockerode(), Docker);
  assert.equal(loaded('@grpc'), false);
  assert.equal(loaded('ssh2'), false);
  const docker = new Docker({ socketPath: socket });
  assert.match((await docker.version()).ApiVersion, /^\d+\.\d+$/);
  assert.equal(loaded('@grpc'), false);
  assert.equal(loaded('ssh2'), false);
});

test('a BuildKit build (which opens a session) loads gRPC then, and the engine builds', async () => {
  const Docker = await loadDockerode();
  fs.writeFileSync(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY hello.txt /hello.txt\n');
  fs.writeFileSync(path.join(dir, 'hello.txt'), 'hello\n');
  const docker = new Docker({ socketPath: socket });
  const stream = (await docker.buildImage({ context: dir, src: ['Dockerfile', 'hello.txt'] }, { version: '2', t: tag } as never)) as unknown as NodeJS.ReadableStream;
  let out = '';
  for await (const chunk of stream) out += chunk;
  assert.equal(loaded('@grpc'), true);
  assert.doesNotMatch(out, /"error"/, out.slice(-500));
  const image = await docker.getImage(tag).inspect();
  assert.ok(image.Id.startsWith('sha256:'));
});

test('an ssh:// engine loads ssh2 then, and the call reaches the address', async () => {
  const Docker = await loadDockerode();
  const port = await freePort(); // nothing listens there
  const docker = new Docker({ protocol: 'ssh', host: '127.0.0.1', port, username: 'nobody' } as never);
  await assert.rejects(docker.ping(), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED');
  assert.equal(loaded('ssh2'), true);
});
