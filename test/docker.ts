// Helpers for tests against the real Docker engine (set up by
// scripts/ensure-docker.sh). Tests fail, never skip, when it is missing.
// Every container made here carries the label opshub-test=1 and is removed by
// removeTestContainers().

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import Docker from 'dockerode';

export const TEST_IMAGE = 'opshub-test/busybox';
export const TEST_LABEL = 'opshub-test';

export const docker = new Docker();

/** Debian's client matches Debian's engine; a newer one in /usr/local/bin may not. */
export const DOCKER_CLI = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

export async function dockerCli(args: string[], opts: { maxBuffer?: number } = {}): Promise<string> {
  const { stdout } = await promisify(execFile)(DOCKER_CLI, args, { maxBuffer: opts.maxBuffer ?? 64 * 1024 * 1024 });
  return stdout;
}

/** Throws a clear error when the engine or the test image is missing. */
export async function requireDocker(): Promise<void> {
  try {
    await docker.ping();
  } catch (err) {
    throw new Error(`Docker engine not reachable (${(err as Error).message}); run scripts/ensure-docker.sh`);
  }
  try {
    await docker.getImage(TEST_IMAGE).inspect();
  } catch {
    throw new Error(`test image ${TEST_IMAGE} missing; run scripts/ensure-docker.sh`);
  }
}

export async function removeTestContainers(): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=1`] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
}

let counter = 0;
/** A unique container name for this test run. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${++counter}`;
}

export interface RunOptions {
  name?: string;
  tty?: boolean;
  labels?: Record<string, string>;
  logDriver?: string;
  memoryBytes?: number;
  restartPolicy?: 'no' | 'on-failure' | 'always' | 'unless-stopped';
  /** `docker run --rm`: the engine removes the container, log and all, as soon as it exits. */
  autoRemove?: boolean;
  healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number };
  start?: boolean;
}

/** Creates (and by default starts) a busybox container running `sh -c script`. */
export async function runContainer(script: string, opts: RunOptions = {}): Promise<Docker.Container> {
  const container = await docker.createContainer({
    name: opts.name ?? uniqueName('opshub-test'),
    Image: TEST_IMAGE,
    Cmd: ['sh', '-c', script],
    Tty: !!opts.tty,
    Labels: { [TEST_LABEL]: '1', ...(opts.labels ?? {}) },
    Healthcheck: opts.healthcheck,
    HostConfig: {
      LogConfig: opts.logDriver ? { Type: opts.logDriver, Config: {} } : undefined,
      Memory: opts.memoryBytes,
      RestartPolicy: opts.restartPolicy ? { Name: opts.restartPolicy } : undefined,
      AutoRemove: opts.autoRemove,
    } as Docker.HostConfig,
  });
  if (opts.start !== false) await container.start();
  return container;
}

export async function waitExited(container: Docker.Container, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const info = await container.inspect();
    if (!info.State.Running) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`container ${container.id.slice(0, 12)} still running after ${timeoutMs} ms`);
}

/**
 * `docker logs -t` of a container, one entry per line: the timestamp as
 * printed, the stream, and the text. The CLI prints each 16 KiB piece of a long
 * line with its own timestamp prefix (all the same); those are joined here.
 */
export async function cliLogs(container: Docker.Container): Promise<Array<{ ts: string; stream: 'stdout' | 'stderr'; text: string }>> {
  const { stdout, stderr } = await promisify(execFile)(DOCKER_CLI, ['logs', '-t', container.id], { maxBuffer: 256 * 1024 * 1024 });
  const parse = (text: string, stream: 'stdout' | 'stderr') =>
    text
      .split('\n')
      .filter((l) => l)
      .map((l) => {
        const sp = l.indexOf(' ');
        const ts = l.slice(0, sp);
        return { ts, stream, text: l.slice(sp + 1).split(`${ts} `).join('').replace(/\r$/, '') };
      });
  return [...parse(stdout, 'stdout'), ...parse(stderr, 'stderr')];
}
