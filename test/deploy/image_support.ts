// Building the OpsHub image in tests: the local base image (scripts/ensure-node-image.sh:
// debootstrap + this machine's node, cached), then the repository's Dockerfile with
// BuildKit through Debian's docker client, with the extra_ca secret.

import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { DOCKER_CLI } from '../docker.ts';

export const BASE_IMAGE = 'opshub-test/node:20';
export const IMAGE = 'opshub-test/opshub:ci';
const run = promisify(execFile);

/** Makes the base image (once; cached) and builds the Dockerfile on it. Returns the build log. */
export async function buildImage(): Promise<string> {
  await run('bash', ['scripts/ensure-node-image.sh'], { timeout: 15 * 60_000, maxBuffer: 16 << 20 });
  const { stdout, stderr } = await run(
    DOCKER_CLI,
    ['build', '--build-arg', `BASE=${BASE_IMAGE}`, '--secret', 'id=extra_ca,src=/etc/ssl/certs/ca-certificates.crt', '--progress', 'plain', '--label', 'opshub.test=1', '-t', IMAGE, '.'],
    { env: { ...process.env, DOCKER_BUILDKIT: '1' }, timeout: 10 * 60_000, maxBuffer: 64 << 20 },
  ).catch((err: { stderr?: string; message: string }) => {
    throw new Error(`docker build failed: ${err.message}\n${(err.stderr ?? '').split('\n').slice(-40).join('\n')}`);
  });
  // Earlier builds of the test image, now untagged, go (the build cache stays).
  await run(DOCKER_CLI, ['image', 'prune', '-f', '--filter', 'label=opshub.test=1']).catch(() => undefined);
  return stdout + stderr;
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
