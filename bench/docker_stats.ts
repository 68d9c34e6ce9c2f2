// How long one inputs.docker_stats gather takes with many running containers
// (all are sampled concurrently; the engine needs ~1 s per CPU sample).
// Needs the engine and image of scripts/ensure-docker.sh.
// Run: npx tsx bench/docker_stats.ts   (CONTAINERS=… to change the count)

import os from 'node:os';
import Docker from 'dockerode';
import { createLogger } from '../core/log.ts';
import type { Accumulator, PluginContext } from '../core/plugin.ts';
import { DockerStatsInput } from '../plugins/inputs/docker_stats/index.ts';

const COUNT = Number(process.env.CONTAINERS ?? 50);
const TAG = `opshub-bench-stats-${process.pid}`;
const docker = new Docker();

try {
  await docker.ping();
} catch (err) {
  console.error(`Docker engine not reachable (${(err as Error).message}); run scripts/ensure-docker.sh`);
  process.exit(1);
}

const containers: Docker.Container[] = [];
try {
  for (let i = 0; i < COUNT; i += 10) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(10, COUNT - i) }, (_, j) =>
        docker.createContainer({ name: `${TAG}-${i + j}`, Image: 'opshub-test/busybox', Labels: { 'opshub-test': '1' }, Cmd: ['sleep', '600'], HostConfig: { NetworkMode: 'none' } }),
      ),
    );
    await Promise.all(batch.map((c) => c.start()));
    containers.push(...batch);
  }
  const input = new DockerStatsInput(
    { endpoint: '', discover: true, tls_ca: '', tls_cert: '', tls_key: '', api_timeout: '10s', include: [`^${TAG}-`], exclude: [], include_labels: [], exclude_labels: [], stats_timeout: '10s' },
    { id: 'docker_stats', log: createLogger({ level: 'error' }), dataDir: os.tmpdir(), hostname: os.hostname(), signal: new AbortController().signal } as unknown as PluginContext,
  );
  await input.start();
  let metrics = 0;
  let errors = 0;
  const acc = { metric: () => void metrics++, error: () => void errors++ } as unknown as Accumulator;
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await input.gather(acc);
    times.push((performance.now() - t) / 1000);
  }
  console.log(`${COUNT} running containers: one gather takes ${times.map((s) => `${s.toFixed(2)} s`).join(', ')} (${metrics / 3} metrics per gather, ${errors} errors)`);
} finally {
  await Promise.all(containers.map((c) => c.remove({ force: true }).catch(() => undefined)));
}
