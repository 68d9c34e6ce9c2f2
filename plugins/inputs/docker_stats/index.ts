// inputs.docker_stats: resource use of every (chosen) running container,
// computed with the docker CLI's own formulas so the numbers match
// `docker stats --no-stream`. All containers are sampled concurrently.
//
// Each gather asks the engine for one stats sample per container
// (GET /containers/{id}/stats?stream=false, without one-shot, the call the CLI
// makes for --no-stream): the engine answers with the current and the
// previous (about 1 s earlier) CPU counters, from which the CPU percent is
// computed exactly as the CLI does.

import Docker from 'dockerode';
import { parseRfc3339Ns } from '../../../core/events.ts';
import type { Accumulator, PluginContext, PluginDefinition, PullInput } from '../../../core/plugin.ts';
import { parseDuration } from '../../../core/units.ts';
import {
  composeLabels,
  containerFilter,
  containerFilterSchema,
  containerName,
  dockerConnectionSchema,
  dockerOptions,
  statusOf,
  type ContainerFilter,
  type ContainerFilterConfig,
  type DockerConnectionConfig,
} from '../../common/docker.ts';
import type { LiveContainer } from '../../common/providers.ts';

export interface DockerStatsConfig extends DockerConnectionConfig, ContainerFilterConfig {
  stats_timeout: string;
}

/** What `docker stats` shows for one container, from one sample. */
export interface ContainerStats {
  /** When the engine took the sample (ns since the epoch). */
  read: bigint;
  cpu_percent: number;
  online_cpus: number;
  memory_usage_bytes: number;
  memory_limit_bytes: number;
  memory_percent: number;
  memory_cache_bytes: number;
  net_rx_bytes: number;
  net_tx_bytes: number;
  net_rx_packets: number;
  net_tx_packets: number;
  net_rx_errors: number;
  net_tx_errors: number;
  net_rx_dropped: number;
  net_tx_dropped: number;
  blkio_read_bytes: number;
  blkio_write_bytes: number;
  pids: number;
}

/**
 * One container in the live view (containers()): the CONTAINERS capability's
 * shape (plugins/common/providers.ts), with the full sample; extending it makes the
 * compiler check that this input still offers what the REST API reads.
 */
export interface ContainerView extends LiveContainer {
  /** The latest sample of the last gather, when the container was running then. */
  stats?: ContainerStats & { restart_count: number; uptime_seconds: number; health?: string };
}

type Num = number | undefined;
const n = (v: Num) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** CPU percent as the docker CLI computes it (calculateCPUPercentUnix). */
export function cpuPercent(s: any): { percent: number; online: number } {
  const cpu = s.cpu_stats ?? {};
  const pre = s.precpu_stats ?? {};
  const cpuDelta = n(cpu.cpu_usage?.total_usage) - n(pre.cpu_usage?.total_usage);
  const systemDelta = n(cpu.system_cpu_usage) - n(pre.system_cpu_usage);
  let online = n(cpu.online_cpus);
  if (online === 0) online = Array.isArray(cpu.cpu_usage?.percpu_usage) ? cpu.cpu_usage.percpu_usage.length : 0;
  const percent = systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * online * 100 : 0;
  return { percent, online };
}

/** Memory use without the page cache, as the docker CLI computes it (calculateMemUsageUnixNoCache). */
export function memoryUsage(mem: any): { usage: number; cache: number } {
  const usage = n(mem?.usage);
  const stats = mem?.stats ?? {};
  // cgroup v1
  if (typeof stats.total_inactive_file === 'number' && stats.total_inactive_file < usage) {
    return { usage: usage - stats.total_inactive_file, cache: stats.total_inactive_file };
  }
  // cgroup v2
  const inactive = n(stats.inactive_file);
  if (inactive < usage) return { usage: usage - inactive, cache: inactive };
  return { usage, cache: 0 };
}

/** All the figures of one stats sample. */
export function computeStats(s: any): ContainerStats {
  const { percent, online } = cpuPercent(s);
  const mem = memoryUsage(s.memory_stats);
  const limit = n(s.memory_stats?.limit);
  const out: ContainerStats = {
    read: parseRfc3339Ns(String(s.read ?? '')) ?? BigInt(Date.now()) * 1_000_000n,
    cpu_percent: percent,
    online_cpus: online,
    memory_usage_bytes: mem.usage,
    memory_limit_bytes: limit,
    memory_percent: limit !== 0 ? (mem.usage / limit) * 100 : 0,
    memory_cache_bytes: mem.cache,
    net_rx_bytes: 0,
    net_tx_bytes: 0,
    net_rx_packets: 0,
    net_tx_packets: 0,
    net_rx_errors: 0,
    net_tx_errors: 0,
    net_rx_dropped: 0,
    net_tx_dropped: 0,
    blkio_read_bytes: 0,
    blkio_write_bytes: 0,
    pids: n(s.pids_stats?.current),
  };
  for (const net of Object.values<any>(s.networks ?? {})) {
    out.net_rx_bytes += n(net.rx_bytes);
    out.net_tx_bytes += n(net.tx_bytes);
    out.net_rx_packets += n(net.rx_packets);
    out.net_tx_packets += n(net.tx_packets);
    out.net_rx_errors += n(net.rx_errors);
    out.net_tx_errors += n(net.tx_errors);
    out.net_rx_dropped += n(net.rx_dropped);
    out.net_tx_dropped += n(net.tx_dropped);
  }
  for (const e of s.blkio_stats?.io_service_bytes_recursive ?? []) {
    const op = String(e.op ?? '').toLowerCase();
    if (op === 'read') out.blkio_read_bytes += n(e.value);
    else if (op === 'write') out.blkio_write_bytes += n(e.value);
  }
  return out;
}

export class DockerStatsInput implements PullInput {
  private docker?: Docker;
  private readonly filter: ContainerFilter;
  private readonly statsTimeoutMs: number;
  /** Latest sample per container id, from the last gather (for containers()). */
  private latest = new Map<string, NonNullable<ContainerView['stats']>>();

  constructor(
    readonly config: DockerStatsConfig,
    readonly ctx: PluginContext,
  ) {
    this.filter = containerFilter(config);
    this.statsTimeoutMs = parseDuration(config.stats_timeout);
  }

  async start(): Promise<void> {
    this.docker = new Docker(dockerOptions(this.config, process.env, parseDuration(this.config.api_timeout)));
  }

  private engine(): Docker {
    this.docker ??= new Docker(dockerOptions(this.config, process.env, parseDuration(this.config.api_timeout)));
    return this.docker;
  }

  async gather(acc: Accumulator): Promise<void> {
    const docker = this.engine();
    const list = await docker.listContainers({ all: false });
    const chosen = list.filter((c) => this.filter(containerName(c.Names, c.Id), c.Labels, c.Id));
    const latest = new Map<string, NonNullable<ContainerView['stats']>>();
    await Promise.all(
      chosen.map(async (c) => {
        try {
          const one = await this.sample(docker, c);
          if (!one) return;
          latest.set(c.Id, one.view);
          for (const m of one.metrics) acc.metric(m.name, m.fields, m.tags, { type: m.type, timestamp: one.view.read });
        } catch (err) {
          if (statusOf(err) === 404 || statusOf(err) === 409) return; // removed or stopped meanwhile
          acc.error(new Error(`container ${containerName(c.Names, c.Id)}: ${(err as Error).message}`));
        }
      }),
    );
    this.latest = latest;
  }

  private async sample(docker: Docker, c: Docker.ContainerInfo) {
    const container = docker.getContainer(c.Id);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.statsTimeoutMs);
    let raw: any;
    let info: Docker.ContainerInspectInfo;
    try {
      [raw, info] = await Promise.all([container.stats({ stream: false, abortSignal: abort.signal } as any), container.inspect()]);
    } finally {
      clearTimeout(timer);
    }
    if (!info.State?.Running) return undefined;
    const stats = computeStats(raw);
    const name = containerName(c.Names, c.Id);
    const tags: Record<string, string> = { container_name: name, container_image: c.Image, ...composeLabels(c.Labels) };
    const started = parseRfc3339Ns(info.State.StartedAt ?? '');
    const uptime = started ? Math.max(0, Number(stats.read - started) / 1e9) : 0;
    const health: string | undefined = info.State.Health?.Status;
    const view = { ...stats, restart_count: n(info.RestartCount), uptime_seconds: uptime, ...(health ? { health } : {}) };
    const metrics: Array<{ name: string; fields: Record<string, number | string>; tags: Record<string, string>; type: 'gauge' | 'counter' }> = [
      { name: 'docker_container_cpu', type: 'gauge', tags, fields: { usage_percent: stats.cpu_percent, online_cpus: stats.online_cpus } },
      {
        name: 'docker_container_mem',
        type: 'gauge',
        tags,
        fields: { usage_bytes: stats.memory_usage_bytes, limit_bytes: stats.memory_limit_bytes, usage_percent: stats.memory_percent, cache_bytes: stats.memory_cache_bytes },
      },
      {
        name: 'docker_container_net',
        type: 'counter',
        tags,
        fields: {
          rx_bytes: stats.net_rx_bytes,
          tx_bytes: stats.net_tx_bytes,
          rx_packets: stats.net_rx_packets,
          tx_packets: stats.net_tx_packets,
          rx_errors: stats.net_rx_errors,
          tx_errors: stats.net_tx_errors,
          rx_dropped: stats.net_rx_dropped,
          tx_dropped: stats.net_tx_dropped,
        },
      },
      { name: 'docker_container_blkio', type: 'counter', tags, fields: { read_bytes: stats.blkio_read_bytes, write_bytes: stats.blkio_write_bytes } },
      {
        name: 'docker_container_status',
        type: 'gauge',
        tags,
        fields: {
          pids: stats.pids,
          restart_count: view.restart_count,
          uptime_seconds: uptime,
          started_at_seconds: started ? Number(started / 1_000_000n) / 1000 : 0,
          status: info.State.Status ?? c.State,
        },
      },
    ];
    if (health) {
      metrics.push({
        name: 'docker_container_health',
        type: 'gauge',
        tags,
        fields: { status: health, healthy: health === 'healthy' ? 1 : 0, failing_streak: n(info.State.Health?.FailingStreak) },
      });
    }
    return { view, metrics };
  }

  /**
   * The live view of containers for status pages and the REST API: every
   * container the filters choose (running or not), listed now, with the
   * figures of the last gather for those that were running then.
   */
  async containers(): Promise<ContainerView[]> {
    const list = await this.engine().listContainers({ all: true });
    return list
      .filter((c) => this.filter(containerName(c.Names, c.Id), c.Labels, c.Id))
      .map((c) => {
        const view: ContainerView = {
          id: c.Id,
          name: containerName(c.Names, c.Id),
          image: c.Image,
          state: c.State,
          status: c.Status,
          created: c.Created,
          labels: c.Labels ?? {},
        };
        const stats = this.latest.get(c.Id);
        if (stats && c.State === 'running') view.stats = stats;
        return view;
      });
  }

  async stop(): Promise<void> {
    this.latest = new Map();
  }
}

export const dockerStats: PluginDefinition<DockerStatsConfig> = {
  kind: 'input',
  type: 'docker_stats',
  description: 'CPU, memory, network, block I/O, pids, status and health of running Docker containers, as `docker stats` computes them.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      ...dockerConnectionSchema,
      ...containerFilterSchema,
      stats_timeout: {
        type: 'string',
        format: 'duration',
        default: '5s',
        description: 'Longest wait for one container\'s sample (the engine takes about 1 s to measure CPU); a container that takes longer is skipped this interval and counted as an error.',
      },
    },
  },
  create: (config, ctx) => new DockerStatsInput(config, ctx),
};

export default dockerStats;
