// Where the system input's numbers come from. On Linux: /proc and statfs(2),
// which cost one read or one syscall each and spawn nothing; elsewhere:
// node:os and systeminformation (which spawns `df` and other tools there).
// A reader belongs to one plugin instance (statfs calls in flight are its state).

import { readFile, statfs } from 'node:fs/promises';
import os from 'node:os';
import si from 'systeminformation';
import { parseMounts, parseNetDev, parseProcStat, type CpuTimes, type InterfaceCounters, type Mount } from './procfs.ts';

export interface MemoryInfo {
  totalBytes: number;
  freeBytes: number;
  availableBytes: number;
  cachedBytes: number;
  buffersBytes: number;
  swapTotalBytes: number;
  swapFreeBytes: number;
}

export interface FilesystemUsage extends Mount {
  sizeBytes: number;
  freeBytes: number;
  /** Free to unprivileged users (free minus the root reserve). */
  availBytes: number;
  files?: number;
  filesFree?: number;
}

export interface HostReader {
  /** Per-cpu times and the aggregate ("total"). */
  cpuTimes(): Promise<CpuTimes[]>;
  memory(): Promise<MemoryInfo>;
  /** Usage of the mounted filesystems that `wanted` accepts. */
  filesystems(wanted: (m: Mount) => boolean): Promise<FilesystemUsage[]>;
  network(): Promise<InterfaceCounters[]>;
  /** Seconds since the epoch. */
  bootTime(): Promise<number>;
}

async function siMemory(): Promise<MemoryInfo> {
  const m = await si.mem(); // reads /proc/meminfo on Linux, os.* elsewhere; spawns nothing on Linux
  return {
    totalBytes: m.total,
    freeBytes: m.free,
    availableBytes: m.available,
    cachedBytes: m.cached,
    buffersBytes: m.buffers,
    swapTotalBytes: m.swaptotal,
    swapFreeBytes: m.swapfree,
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface LinuxReaderOptions {
  /** Where procfs is mounted (default /proc). */
  proc?: string;
  /** Longest wait for one statfs (a hung network mount); default 5 s. */
  statfsTimeoutMs?: number;
  /** Told about a mount skipped because its statfs hangs. */
  onStuckMount?: (mount: string) => void;
  /** statfs(2); replaceable to simulate a hung network mount in tests. */
  statfs?: (path: string) => Promise<{ blocks: number; bsize: number; bfree: number; bavail: number; files: number; ffree: number }>;
}

export function linuxReader(opts: LinuxReaderOptions = {}): HostReader {
  const proc = opts.proc ?? '/proc';
  const timeoutMs = opts.statfsTimeoutMs ?? 5000;
  // Mounts whose statfs has not returned (e.g. a dead NFS server): not asked
  // again until it does, so hung calls cannot pile up in libuv's thread pool.
  const stuck = new Set<string>();
  let statCache: Promise<ReturnType<typeof parseProcStat>> | undefined;
  const procStat = () => (statCache ??= readFile(`${proc}/stat`, 'utf8').then(parseProcStat).finally(() => (statCache = undefined)));

  async function usage(m: Mount): Promise<FilesystemUsage | undefined> {
    if (stuck.has(m.mount)) {
      opts.onStuckMount?.(m.mount);
      return undefined;
    }
    stuck.add(m.mount);
    const call = (opts.statfs ?? statfs)(m.mount);
    call.then(() => stuck.delete(m.mount), () => stuck.delete(m.mount));
    let s;
    try {
      s = await withTimeout(call, timeoutMs, `statfs(${m.mount})`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code) return undefined; // vanished or not accessible: skip quietly
      opts.onStuckMount?.(m.mount);
      return undefined;
    }
    if (s.blocks === 0) return undefined; // pseudo filesystems report no blocks
    return {
      ...m,
      sizeBytes: s.blocks * s.bsize,
      freeBytes: s.bfree * s.bsize,
      availBytes: s.bavail * s.bsize,
      files: s.files,
      filesFree: s.ffree,
    };
  }

  return {
    async cpuTimes() {
      return (await procStat()).cpus;
    },
    memory: siMemory,
    async filesystems(wanted) {
      const mounts = parseMounts(await readFile(`${proc}/self/mounts`, 'utf8')).filter(wanted);
      const all = await Promise.all(mounts.map(usage));
      return all.filter((x): x is FilesystemUsage => x !== undefined);
    },
    async network() {
      return parseNetDev(await readFile(`${proc}/net/dev`, 'utf8'));
    },
    async bootTime() {
      return (await procStat()).bootTime ?? Math.round(Date.now() / 1000 - os.uptime());
    },
  };
}

/** node:os and systeminformation, for platforms without /proc. Network counters have no packet counts there. */
export function portableReader(): HostReader {
  return {
    async cpuTimes() {
      const cpus = os.cpus();
      const total: Record<string, number> = {};
      const out: CpuTimes[] = cpus.map((c, i) => {
        const seconds: Record<string, number> = {
          user: c.times.user / 1000,
          nice: c.times.nice / 1000,
          system: c.times.sys / 1000,
          idle: c.times.idle / 1000,
          irq: c.times.irq / 1000,
        };
        for (const [mode, s] of Object.entries(seconds)) total[mode] = (total[mode] ?? 0) + s;
        return { cpu: String(i), seconds };
      });
      out.push({ cpu: 'total', seconds: total });
      return out;
    },
    memory: siMemory,
    async filesystems(wanted) {
      const list = await si.fsSize();
      const out: FilesystemUsage[] = [];
      for (const f of list) {
        const m: Mount = { device: f.fs, mount: f.mount, fstype: f.type };
        if (!wanted(m) || !(f.size > 0)) continue;
        out.push({ ...m, sizeBytes: f.size, availBytes: f.available, freeBytes: f.size - f.used });
      }
      return out;
    },
    async network() {
      const list = await si.networkStats('*');
      return list.map((n) => ({
        interface: n.iface,
        receive: { bytes: n.rx_bytes, errors: n.rx_errors, drops: n.rx_dropped },
        transmit: { bytes: n.tx_bytes, errors: n.tx_errors, drops: n.tx_dropped },
      }));
    },
    async bootTime() {
      return Math.round(Date.now() / 1000 - os.uptime());
    },
  };
}

export function defaultReader(opts: LinuxReaderOptions = {}): HostReader {
  return process.platform === 'linux' ? linuxReader(opts) : portableReader();
}
