// inputs.docker_stats: the docker CLI's formulas on recorded samples, and
// figures against `docker stats --no-stream` on real containers.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Event, MetricEvent } from '../../../core/events.ts';
import { computeStats, type DockerStatsInput } from '../../../plugins/inputs/docker_stats/index.ts';
import { memoryOutput, startAgent, waitFor } from '../../helpers.ts';
import { dockerCli, removeTestContainers, requireDocker, runContainer, uniqueName } from '../../docker.ts';

before(async () => {
  await requireDocker();
  await removeTestContainers();
});
after(removeTestContainers);

const sample = (name: string) => JSON.parse(readFileSync(`plugins/inputs/docker_stats/testdata/${name}`, 'utf8'));

test('the docker CLI formulas: CPU from the previous sample × online CPUs, memory without inactive file pages', () => {
  const cases = [
    {
      file: 'cgroup_v1.json', // recorded on this engine (cgroup v1), with inactive file pages set
      want: { cpu_percent: (820400012 / 2010000000) * 2 * 100, online_cpus: 2, memory_usage_bytes: 20459520 - 409600, memory_cache_bytes: 409600, memory_limit_bytes: 25276502016, net_rx_bytes: 946, net_rx_packets: 11, net_tx_bytes: 0, blkio_read_bytes: 0, pids: 1 },
    },
    {
      file: 'cgroup_v2.json', // cgroup v2 shape: inactive_file, lower-case blkio ops, no percpu_usage
      want: { cpu_percent: 50, online_cpus: 4, memory_usage_bytes: 83886080, memory_cache_bytes: 20971520, memory_limit_bytes: 1073741824, net_rx_bytes: 1500, net_rx_packets: 15, net_tx_bytes: 2250, blkio_read_bytes: 4100000, pids: 7 },
    },
  ];
  for (const { file, want } of cases) {
    const got = computeStats(sample(file));
    for (const [k, v] of Object.entries(want)) assert.ok(Math.abs((got as any)[k] - v) < 1e-9, `${file} ${k}: ${(got as any)[k]} vs ${v}`);
    assert.ok(Math.abs(got.memory_percent - (want.memory_usage_bytes / want.memory_limit_bytes) * 100) < 1e-9);
  }
  const v2 = computeStats(sample('cgroup_v2.json'));
  assert.equal(v2.blkio_write_bytes, 1025000);
  assert.equal(v2.net_rx_errors, 1);
  assert.equal(v2.net_rx_dropped, 1);
  // No CPU used between the two samples, or counters that went back: 0 %, never negative or NaN.
  const idle = sample('cgroup_v2.json');
  idle.precpu_stats = idle.cpu_stats;
  assert.equal(computeStats(idle).cpu_percent, 0);
  const back = sample('cgroup_v2.json');
  back.precpu_stats.cpu_usage.total_usage = back.cpu_stats.cpu_usage.total_usage + 1;
  assert.equal(computeStats(back).cpu_percent, 0);
  assert.equal(computeStats({}).memory_percent, 0);
});

function yaml(name: string): string {
  return `
agent:
  data_dir: \${OPSHUB_TEST_DATA}
  interval: 2s
  jitter: 0s
  flush_interval: 100ms
  self_metrics: false
  http: { listen: "127.0.0.1:0" }
inputs:
  - type: docker_stats
    include: ['^${name}']
outputs:
  - type: memory
`;
}

function latest(events: Event[], metric: string, container: string): MetricEvent | undefined {
  return events.filter((e): e is MetricEvent => e.kind === 'metric' && e.name === metric && e.tags.container_name === container).at(-1);
}

/** "19.53MiB / 23.54GiB" → bytes of the first figure. */
function cliBytes(text: string): number {
  const m = /^([\d.]+)\s*([KMGT]?i?B)/.exec(text.trim())!;
  const unit: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9 };
  return Number(m[1]) * unit[m[2]!]!;
}

test('stats agree with docker stats --no-stream: memory within a few percent, a busy loop near 100 % CPU', async () => {
  const name = uniqueName('opshub-test-stats');
  // Holds ~20 MB in the shell, then spins.
  await runContainer(`x=$(head -c 20000000 /dev/zero | tr '\\0' a); while :; do :; done`, { name });
  const mem = memoryOutput();
  const a = await startAgent(yaml(name), { plugins: [mem.definition] });
  try {
    await waitFor(() => !!latest(mem.events, 'docker_container_mem', name), 20_000, 'a sample');
    // Sample at the same moment as `docker stats --no-stream`: the engine
    // serves both from the same measurements, so they must agree closely.
    const input = a.agent.pipeline.inputs.get('docker_stats')!.plugin as DockerStatsInput;
    const direct: MetricEvent[] = [];
    const acc = { metric: (n: string, fields: any, tags: any) => direct.push({ kind: 'metric', name: n, fields, tags, timestamp: 0n, type: 'gauge' }), error: (e: unknown) => { throw e; } } as any;
    const [cliText] = await Promise.all([dockerCli(['stats', '--no-stream', '--format', '{{json .}}', name]), input.gather(acc)]);
    const cli = JSON.parse(cliText);
    const ours = latest(direct, 'docker_container_mem', name)!;
    const theirs = cliBytes(cli.MemUsage);
    const usage = ours.fields.usage_bytes as number;
    assert.ok(usage > 15e6, `holds the 20 MB (${usage})`);
    assert.ok(Math.abs(usage - theirs) / theirs < 0.03, `memory ${usage} vs docker stats ${theirs} (${cli.MemUsage})`);
    assert.ok(Math.abs((ours.fields.limit_bytes as number) - cliBytes(cli.MemUsage.split('/')[1])) / (ours.fields.limit_bytes as number) < 0.01, 'limit');
    const cpu = latest(direct, 'docker_container_cpu', name)!.fields.usage_percent as number;
    const cliCpu = Number.parseFloat(cli.CPUPerc);
    // One spinning process is one core: 100 % on an idle machine; other work
    // on this 2-core machine may take part of it, and docker stats sees the same.
    assert.ok(cpu > 30 && cpu < 115, `busy loop CPU ${cpu} % (docker stats: ${cli.CPUPerc})`);
    assert.ok(Math.abs(cpu - cliCpu) < 10, `CPU ${cpu} vs docker stats ${cliCpu}`);
    const status = latest(mem.events, 'docker_container_status', name)!;
    assert.equal(status.fields.status, 'running');
    assert.equal(status.fields.pids, Number(cli.PIDs));
    assert.ok((status.fields.uptime_seconds as number) > 0);
    const net = latest(mem.events, 'docker_container_net', name)!;
    assert.equal(net.type, 'counter');
    for (const f of ['rx_bytes', 'tx_bytes', 'rx_packets', 'tx_packets']) assert.equal(typeof net.fields[f], 'number');
    assert.equal(latest(mem.events, 'docker_container_health', name), undefined, 'no health check, no health metric');
  } finally {
    await a.stop();
  }
});

test('restart count, health status and the live container view', async () => {
  const tag = uniqueName('opshub-test-health');
  // Exits once with an error, is restarted by Docker, then stays up with a passing health check.
  await runContainer('if [ -f /once ]; then while :; do sleep 1; done; else touch /once; exit 1; fi', {
    name: `${tag}-a`,
    restartPolicy: 'on-failure',
    healthcheck: { Test: ['CMD-SHELL', 'true'], Interval: 500_000_000, Timeout: 1_000_000_000, Retries: 1, StartPeriod: 0 },
  });
  await runContainer('exit 0', { name: `${tag}-stopped` });
  const mem = memoryOutput();
  const a = await startAgent(yaml(tag), { plugins: [mem.definition] });
  try {
    await waitFor(() => latest(mem.events, 'docker_container_health', `${tag}-a`)?.fields.status === 'healthy', 30_000, 'healthy');
    const h = latest(mem.events, 'docker_container_health', `${tag}-a`)!;
    assert.equal(h.fields.healthy, 1);
    assert.equal(h.fields.failing_streak, 0);
    const s = latest(mem.events, 'docker_container_status', `${tag}-a`)!;
    assert.equal(s.fields.restart_count, 1);
    assert.equal(s.tags.container_image, 'opshub-test/busybox');
    assert.equal(latest(mem.events, 'docker_container_status', `${tag}-stopped`), undefined, 'stopped containers have no stats');

    const input = a.agent.pipeline.inputs.get('docker_stats')!.plugin as DockerStatsInput;
    const view = await input.containers();
    const up = view.find((c) => c.name === `${tag}-a`)!;
    const down = view.find((c) => c.name === `${tag}-stopped`)!;
    assert.equal(up.state, 'running');
    assert.match(up.status, /^Up .*healthy/);
    assert.equal(up.image, 'opshub-test/busybox');
    assert.ok(up.created > 0 && up.id.length === 64);
    assert.equal(up.stats?.health, 'healthy');
    assert.equal(up.stats?.restart_count, 1);
    assert.equal(typeof up.stats?.cpu_percent, 'number');
    assert.equal(down.state, 'exited');
    assert.equal(down.stats, undefined);
  } finally {
    await a.stop();
  }
});
