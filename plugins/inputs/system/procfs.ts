// Parsers of the Linux /proc files the system input reads. Reading them is
// one read() each, where systeminformation would spawn `df` (filesystems) or
// one `cat` per interface (network). Pure functions, tested on testdata/.

/** Seconds spent per mode, since boot, for one cpu ("0", "1"…) or all ("total"). */
export interface CpuTimes {
  cpu: string;
  seconds: Record<string, number>;
}

/** The modes of a `cpu` line of /proc/stat, in order; guest time is already in user and nice. */
export const PROC_STAT_MODES = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'] as const;

/** Modes counted as not busy when computing usage. */
export const IDLE_MODES = new Set(['idle', 'iowait']);

/** Linux reports /proc/stat times in USER_HZ, which is 100 on every architecture it exports to user space. */
const USER_HZ = 100;

export interface ProcStat {
  /** Per-cpu times, then the aggregate with cpu "total". */
  cpus: CpuTimes[];
  /** Boot time, seconds since the epoch (`btime`). */
  bootTime?: number;
}

export function parseProcStat(text: string): ProcStat {
  const cpus: CpuTimes[] = [];
  let bootTime: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('cpu')) {
      const parts = line.trim().split(/\s+/);
      const label = parts[0]!;
      const seconds: Record<string, number> = {};
      PROC_STAT_MODES.forEach((mode, i) => {
        const ticks = Number(parts[i + 1]);
        if (Number.isFinite(ticks)) seconds[mode] = ticks / USER_HZ;
      });
      cpus.push({ cpu: label === 'cpu' ? 'total' : label.slice(3), seconds });
    } else if (line.startsWith('btime ')) {
      const value = Number(line.slice(6));
      if (Number.isFinite(value)) bootTime = value;
    }
  }
  return { cpus, bootTime };
}

export interface InterfaceCounters {
  interface: string;
  receive: { bytes: number; packets?: number; errors: number; drops: number };
  transmit: { bytes: number; packets?: number; errors: number; drops: number };
}

/** /proc/net/dev: two header lines, then `iface: rx bytes packets errs drop fifo frame compressed multicast tx bytes packets errs drop …`. */
export function parseNetDev(text: string): InterfaceCounters[] {
  const out: InterfaceCounters[] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0 || line.includes('|')) continue;
    const name = line.slice(0, colon).trim();
    const v = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (!name || v.length < 16 || v.some((n) => !Number.isFinite(n))) continue;
    out.push({
      interface: name,
      receive: { bytes: v[0]!, packets: v[1]!, errors: v[2]!, drops: v[3]! },
      transmit: { bytes: v[8]!, packets: v[9]!, errors: v[10]!, drops: v[11]! },
    });
  }
  return out;
}

export interface Mount {
  device: string;
  mount: string;
  fstype: string;
}

/** Octal escapes the kernel writes for space, tab, newline and backslash in /proc/PID/mounts. */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * /proc/self/mounts. A mount point listed twice (mounted over) keeps its last
 * entry, the one visible there, in the place of its first.
 */
export function parseMounts(text: string): Mount[] {
  const byMount = new Map<string, Mount>();
  for (const line of text.split('\n')) {
    const [device, mount, fstype] = line.split(' ');
    if (!device || !mount || !fstype) continue;
    const m = { device: unescapeMountField(device), mount: unescapeMountField(mount), fstype };
    byMount.set(m.mount, m);
  }
  return [...byMount.values()];
}
