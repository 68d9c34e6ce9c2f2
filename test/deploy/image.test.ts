// The OpsHub image, built from the Dockerfile (BuildKit, extra_ca secret, on the
// local debootstrap base) and run against the real engine with the Docker
// socket mounted read-only: health, logs of another container in its DuckDB
// store, and `docker stop` → exit 0 with nothing lost across the restart.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { promisify } from 'node:util';
import { DOCKER_CLI, TEST_IMAGE, docker, requireDocker } from '../docker.ts';
import { waitFor } from '../helpers.ts';
import { IMAGE, buildImage, freePort } from './image_support.ts';

const run = promisify(execFile);
const cli = async (...args: string[]) => (await run(DOCKER_CLI, args, { maxBuffer: 64 << 20 })).stdout.trim();
const LABEL = 'opshub-deploy-test';
const tag = `${process.pid}`;
const agentName = `opshub-image-agent-${tag}`;
const appName = `opshub-image-app-${tag}`;
const volume = `opshub-image-data-${tag}`;
let port = 0;
let buildLog = '';

async function cleanup(): Promise<void> {
  for (const name of [agentName, appName]) await cli('rm', '-f', '-v', name).catch(() => undefined);
  await cli('volume', 'rm', '-f', volume).catch(() => undefined);
}

async function query(sql: string): Promise<unknown[][]> {
  const res = await fetch(`http://127.0.0.1:${port}/api/query/duckdb`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql }) });
  const body = (await res.json()) as { rows?: unknown[][]; message?: string };
  if (res.status !== 200) throw new Error(`query ${res.status}: ${body.message}`);
  return body.rows!;
}

async function health(): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    return res.ok && ((await res.json()) as { status?: string }).status === 'ok';
  } catch {
    return false;
  }
}

/** Line numbers the store holds for the app container (every copy: duplicates show). */
async function storedLines(): Promise<number[]> {
  const rows = await query(`SELECT message FROM logs WHERE container_name = '${appName}' ORDER BY timestamp_ns`);
  return rows.map(([m]) => Number(/^line (\d+)$/.exec(String(m))?.[1] ?? -1));
}

before(async () => {
  await requireDocker();
  await cleanup();
  buildLog = await buildImage();
  port = await freePort();
});

after(cleanup);

test('the image builds with BuildKit from the Dockerfile: secret only mounted for npm, non-root user, /data volume, port 8089, health check', async () => {
  assert.match(buildLog, /mount=type=secret,id=extra_ca/);
  const info = await docker.getImage(IMAGE).inspect();
  assert.equal(info.Config.User, 'opshub');
  assert.deepEqual(Object.keys(info.Config.Volumes ?? {}), ['/data']);
  assert.deepEqual(Object.keys(info.Config.ExposedPorts ?? {}), ['8089/tcp']);
  assert.ok(info.Config.Healthcheck?.Test?.join(' ').includes('/health'));
  assert.deepEqual(info.Config.Entrypoint, ['node', 'bin/opshub.mjs']);
  // The CA bundle given as a secret is nowhere in the image.
  const found = await cli('run', '--rm', '--entrypoint', 'sh', IMAGE, '-c', 'ls /run/secrets 2>/dev/null; env | grep -c EXTRA_CA || true');
  assert.equal(found, '0');
  // The three pipelines it carries are valid inside it (the fleet one with its required URLs).
  for (const [file, env] of [['opshub.yaml', []], ['opshub-stack.yaml', []], ['opshub-fleet.yaml', ['-e', 'OPS_REMOTE_WRITE_URL=http://vm:8428/api/v1/write', '-e', 'OPS_LOKI_URL=http://loki:3100']]] as const) {
    assert.match(await cli('run', '--rm', '--network', 'none', ...env, IMAGE, 'check', '-c', `/etc/opshub/${file}`), /valid \(5 inputs/);
  }
});

test('runs against the real engine: healthy, stores another container\'s logs, stops on SIGTERM with exit 0 and resumes without losing or repeating a line', async () => {
  const socketGid = String(statSync('/var/run/docker.sock').gid);
  await cli('volume', 'create', '--label', `${LABEL}=1`, volume);
  const agentArgs = [
    'run', '-d', '--name', agentName, '--label', `${LABEL}=1`,
    // Host networking keeps all traffic on this machine's loopback.
    '--network', 'host',
    '-e', `OPSHUB_LISTEN=127.0.0.1:${port}`,
    '-e', 'OPS_HOSTNAME=image-test',
    '-e', `OPS_INCLUDE_REGEX=^${appName}$`,
    '-e', 'OPS_INTERVAL=2s',
    '-v', '/var/run/docker.sock:/var/run/docker.sock:ro',
    '--group-add', socketGid,
    '-v', `${volume}:/data`,
    '--health-interval', '1s', '--health-start-period', '60s',
    IMAGE,
  ];
  await cli(...agentArgs);
  await waitFor(health, 90_000, 'the agent in the container to answer /health');
  await waitFor(async () => (await docker.getContainer(agentName).inspect()).State.Health?.Status === 'healthy', 60_000, 'the image HEALTHCHECK to report healthy');

  // A container started after the agent is read from its first line.
  await cli('run', '-d', '--name', appName, '--label', `${LABEL}=1`, '--network', 'none', TEST_IMAGE,
    'sh', '-c', 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo "line $i"; usleep 20000; done');
  await waitFor(async () => (await storedLines().catch(() => [])).length >= 50, 60_000, 'the app container\'s lines in the DuckDB store');

  // docker stop: SIGTERM, the pipeline drains, exit code 0 well inside the 10 s grace period.
  const t0 = Date.now();
  await cli('stop', '-t', '10', agentName);
  const stopMs = Date.now() - t0;
  const state = (await docker.getContainer(agentName).inspect()).State;
  assert.equal(state.ExitCode, 0, `exit code after docker stop (took ${stopMs} ms)`);
  assert.ok(stopMs < 10_000, `stopped in ${stopMs} ms, before Docker's SIGKILL`);
  const agentLog = await run(DOCKER_CLI, ['logs', agentName]).then((r) => r.stdout + r.stderr);
  assert.match(agentLog, /SIGTERM: shutting down/);
  assert.match(agentLog, /stopped/);

  // The app keeps logging while the agent is down; the agent comes back on the same /data.
  await new Promise((r) => setTimeout(r, 1500));
  await cli('start', agentName);
  await waitFor(health, 90_000, 'the restarted agent to answer /health');
  await cli('kill', appName);
  const written = (await cli('logs', appName)).split('\n').filter(Boolean).map((l) => Number(l.slice(5)));
  assert.ok(written.length > 100, `the app wrote ${written.length} lines`);
  // Right after a start the agent may still be mounting its routes (503): keep asking.
  await waitFor(async () => (await storedLines().catch(() => [])).length >= written.length, 90_000, `all ${written.length} lines in the store`);
  const stored = await storedLines();
  assert.deepEqual(stored, written, 'every line the app wrote is stored once, in order, across docker stop and start');
  // `opshub query` inside the container answers through the running agent (OPSHUB_CONFIG names the image's pipeline).
  const csv = await cli('exec', agentName, 'node', 'bin/opshub.mjs', 'query', '--format', 'csv', `SELECT count(*) AS n FROM logs WHERE container_name = '${appName}'`);
  assert.deepEqual(csv.split(/\r?\n/), ['n', String(written.length)]);
  // Self-metrics (every OPS_INTERVAL) carry the host named by OPS_HOSTNAME.
  const hosts = async () => (await query(`SELECT DISTINCT tags->>'host' FROM opshub_metrics WHERE name LIKE 'opshub_%'`)).map(([h]) => h);
  await waitFor(async () => (await hosts()).length > 0, 30_000, 'self-metrics in the store');
  assert.deepEqual(await hosts(), ['image-test'], 'OPS_HOSTNAME names the host');
});
