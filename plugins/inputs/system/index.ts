// inputs.system: host CPU, memory, swap, filesystems, network, load average,
// uptime, named as a node_exporter user expects (units in names, counters
// that are counters). CPU usage needs two samples: it is computed from the
// change of the cpu time counters between two gathers of this instance.

import os from 'node:os';
import { makeMetric, nowNs, type MetricEvent } from '../../../core/events.ts';
import { errorMessage } from '../../../core/log.ts';
import type { Accumulator, PluginContext, PluginDefinition, PullInput } from '../../../core/plugin.ts';
import { IDLE_MODES, type CpuTimes, type Mount } from './procfs.ts';
import { defaultReader, type HostReader, type LinuxReaderOptions } from './readers.ts';

export const COLLECTORS = ['cpu', 'memory', 'disk', 'network', 'load'] as const;
export type Collector = (typeof COLLECTORS)[number];

export interface SystemConfig {
  collect: Collector[];
  per_cpu: boolean;
  include_mount_points: string[];
  exclude_mount_points: string[];
  include_fs_types: string[];
  exclude_fs_types: string[];
  include_interfaces: string[];
  exclude_interfaces: string[];
}

/** Pseudo and container filesystems: no disk space of their own (node_exporter's and Telegraf's defaults). */
export const DEFAULT_EXCLUDE_FS_TYPES = [
  'autofs', 'binfmt_misc', 'bpf', 'cgroup', 'cgroup2', 'configfs', 'debugfs', 'devpts', 'devtmpfs', 'efivarfs', 'fusectl',
  'fuse.lxcfs', 'hugetlbfs', 'iso9660', 'mqueue', 'nsfs', 'overlay', 'aufs', 'proc', 'procfs', 'pstore', 'ramfs',
  'rpc_pipefs', 'securityfs', 'selinuxfs', 'squashfs', 'sysfs', 'tmpfs', 'tracefs',
];

export const DEFAULT_EXCLUDE_MOUNT_POINTS = [
  '/proc/*', '/sys/*', '/dev/*', '/run/credentials/*', '/var/lib/docker/*', '/var/lib/containers/storage/*', '/var/lib/kubelet/*',
];

/** A matcher for shell-like patterns where `*` stands for any run of characters (slashes included). */
export function globMatcher(patterns: string[]): (s: string) => boolean {
  if (patterns.length === 0) return () => false;
  const source = patterns.map((p) => p.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')).join('|');
  const re = new RegExp(`^(?:${source})$`);
  return (s) => re.test(s);
}

/** include (empty: everything) minus exclude. */
function filter(include: string[], exclude: string[]): (s: string) => boolean {
  const inc = globMatcher(include);
  const exc = globMatcher(exclude);
  return (s) => (include.length === 0 || inc(s)) && !exc(s);
}

const percent = (part: number, whole: number) => (whole > 0 ? (100 * part) / whole : 0);

/** Busy share of the cpu time that passed between two samples, in percent; undefined when none passed or a counter went back. */
export function cpuUsagePercent(prev: CpuTimes['seconds'], cur: CpuTimes['seconds']): number | undefined {
  let total = 0;
  let idle = 0;
  for (const [mode, value] of Object.entries(cur)) {
    const delta = value - (prev[mode] ?? value);
    if (delta < 0) return undefined; // cpu went offline and back: counters restarted
    total += delta;
    if (IDLE_MODES.has(mode)) idle += delta;
  }
  if (total <= 0) return undefined;
  return Math.min(100, Math.max(0, percent(total - idle, total)));
}

/**
 * `makeReader` gets the hooks the plugin needs (hung-mount reports) and
 * returns where the numbers come from; tests pass fixtures or fakes.
 */
export function createSystem(
  config: SystemConfig,
  ctx: PluginContext,
  makeReader: (hooks: Pick<LinuxReaderOptions, 'onStuckMount'>) => HostReader = defaultReader,
): PullInput {
  const collect = new Set(config.collect);
  const wantMount = filter(config.include_mount_points, config.exclude_mount_points);
  const wantFsType = filter(config.include_fs_types, config.exclude_fs_types);
  const wantFs = (m: Mount) => wantMount(m.mount) && wantFsType(m.fstype);
  const wantInterface = filter(config.include_interfaces, config.exclude_interfaces);
  const stuckMounts: string[] = [];
  const host = makeReader({
    onStuckMount: (mount) => {
      stuckMounts.push(mount);
      ctx.log.once(`stuck:${mount}`, 'warn', `statfs(${mount}) does not answer (a hung network mount?): skipping it until it does`);
    },
  });
  /** Cpu times of the previous gather, per cpu, for usage. */
  let previous = new Map<string, CpuTimes['seconds']>();
  const failing = new Set<string>();

  const collectors: Record<Collector, (ts: bigint) => Promise<MetricEvent[]>> = {
    async cpu(ts) {
      const times = await host.cpuTimes();
      const perCpu = times.filter((t) => t.cpu !== 'total');
      const total = times.find((t) => t.cpu === 'total');
      const out: MetricEvent[] = [makeMetric('system', { cpus: perCpu.length }, {}, { type: 'gauge', timestamp: ts })];
      // Counters: per cpu, or (per_cpu: false) the aggregate — never both, so sums stay right.
      for (const c of config.per_cpu ? perCpu : total ? [total] : []) {
        for (const [mode, seconds] of Object.entries(c.seconds)) {
          out.push(makeMetric('system_cpu', { seconds_total: seconds }, { cpu: c.cpu, mode }, { type: 'counter', timestamp: ts }));
        }
      }
      const next = new Map<string, CpuTimes['seconds']>();
      for (const c of config.per_cpu ? times : total ? [total] : []) {
        next.set(c.cpu, c.seconds);
        const prev = previous.get(c.cpu);
        const usage = prev && cpuUsagePercent(prev, c.seconds);
        if (usage !== undefined) out.push(makeMetric('system_cpu', { usage_percent: usage }, { cpu: c.cpu }, { type: 'gauge', timestamp: ts }));
      }
      previous = next;
      return out;
    },

    async memory(ts) {
      const m = await host.memory();
      const used = m.totalBytes - m.availableBytes;
      const swapUsed = m.swapTotalBytes - m.swapFreeBytes;
      return [
        makeMetric('system_memory', {
          total_bytes: m.totalBytes,
          used_bytes: used,
          available_bytes: m.availableBytes,
          free_bytes: m.freeBytes,
          cached_bytes: m.cachedBytes,
          buffers_bytes: m.buffersBytes,
          used_percent: percent(used, m.totalBytes),
        }, {}, { type: 'gauge', timestamp: ts }),
        makeMetric('system_swap', {
          total_bytes: m.swapTotalBytes,
          used_bytes: swapUsed,
          free_bytes: m.swapFreeBytes,
          used_percent: percent(swapUsed, m.swapTotalBytes),
        }, {}, { type: 'gauge', timestamp: ts }),
      ];
    },

    async disk(ts) {
      const list = await host.filesystems(wantFs);
      return list.map((f) => {
        const used = f.sizeBytes - f.freeBytes;
        const fields: Record<string, number> = {
          size_bytes: f.sizeBytes,
          used_bytes: used,
          avail_bytes: f.availBytes,
          free_bytes: f.freeBytes,
          // As df: the share of what unprivileged users can have (used + avail), not of size.
          used_percent: percent(used, used + f.availBytes),
        };
        if (f.files !== undefined) fields.files = f.files;
        if (f.filesFree !== undefined) fields.files_free = f.filesFree;
        return makeMetric('system_filesystem', fields, { mount: f.mount, fstype: f.fstype, device: f.device }, { type: 'gauge', timestamp: ts });
      });
    },

    async network(ts) {
      const list = await host.network();
      const out: MetricEvent[] = [];
      for (const n of list) {
        if (!wantInterface(n.interface)) continue;
        const fields: Record<string, number> = {};
        for (const [direction, c] of [['receive', n.receive], ['transmit', n.transmit]] as const) {
          fields[`${direction}_bytes_total`] = c.bytes;
          if (c.packets !== undefined) fields[`${direction}_packets_total`] = c.packets;
          fields[`${direction}_errors_total`] = c.errors;
          fields[`${direction}_drops_total`] = c.drops;
        }
        out.push(makeMetric('system_network', fields, { interface: n.interface }, { type: 'counter', timestamp: ts }));
      }
      return out;
    },

    async load(ts) {
      const [load1 = 0, load5 = 0, load15 = 0] = os.loadavg();
      return [
        makeMetric('system', {
          load1,
          load5,
          load15,
          uptime_seconds: os.uptime(),
          boot_time_seconds: await host.bootTime(),
        }, {}, { type: 'gauge', timestamp: ts }),
      ];
    },
  };

  return {
    async gather(acc: Accumulator) {
      const ts = nowNs();
      const names = COLLECTORS.filter((c) => collect.has(c));
      const results = await Promise.allSettled(names.map((name) => collectors[name](ts)));
      let failed = 0;
      results.forEach((r, i) => {
        const name = names[i]!;
        if (r.status === 'fulfilled') {
          acc.emitMany(r.value);
          if (failing.delete(name)) {
            ctx.log.clear(`collect:${name}`);
            ctx.log.info(`${name} collector recovered`);
          }
          return;
        }
        failed++;
        failing.add(name);
        acc.error(r.reason);
        ctx.log.once(`collect:${name}`, 'warn', `${name} collector failed (retried every interval, logged once): ${errorMessage(r.reason)}`);
      });
      for (const mount of stuckMounts.splice(0)) acc.error(new Error(`statfs(${mount}) hangs`));
      if (failed > 0 && failed === names.length) throw new Error(`every collector failed: ${errorMessage((results[0] as PromiseRejectedResult).reason)}`);
    },
  };
}

const stringList = (description: string, dflt: string[] = []) => ({ type: 'array', items: { type: 'string' }, default: dflt, description });

export const system: PluginDefinition<SystemConfig> = {
  kind: 'input',
  type: 'system',
  description: 'Host CPU, memory, swap, filesystems, network and load average, named like node_exporter\'s metrics.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      collect: {
        type: 'array',
        items: { enum: [...COLLECTORS] },
        uniqueItems: true,
        default: [...COLLECTORS],
        description: 'Collectors to run: cpu, memory (and swap), disk (filesystem usage), network, load (load average, uptime, boot time).',
      },
      per_cpu: {
        type: 'boolean',
        default: true,
        description: 'Report cpu time counters and usage per cpu; when false, only the aggregate over all cpus (cpu="total").',
      },
      include_mount_points: stringList('Mount points to report (`*` matches any characters); empty: every mount point not excluded.'),
      exclude_mount_points: stringList('Mount points never reported (`*` matches any characters).', DEFAULT_EXCLUDE_MOUNT_POINTS),
      include_fs_types: stringList('Filesystem types to report (e.g. ext4, xfs, nfs4); empty: every type not excluded.'),
      exclude_fs_types: stringList('Filesystem types never reported: pseudo and container filesystems by default.', DEFAULT_EXCLUDE_FS_TYPES),
      include_interfaces: stringList('Network interfaces to report (`*` matches any characters, e.g. "eth*"); empty: every interface not excluded.'),
      exclude_interfaces: stringList('Network interfaces never reported (e.g. "veth*", "lo").'),
    },
  },
  create: (config, ctx) => createSystem(config, ctx),
};

export default system;
