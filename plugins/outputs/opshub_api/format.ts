// The human strings of the OpsHub API ("1.2 GB (8.5%)", "RX: 45.2 MB, TX:
// 12.8 MB", "2d 4h 30m"), each answered beside numeric siblings.

import { formatBytes } from '../../../core/units.ts';
import type { LiveContainer } from '../../common/providers.ts';

/** "2d 4h 30m", "4h 5m", "12m" ("0m" under a minute). */
export function formatUptime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h ${m}m`;
  if (h > 0) return `${h}h ${m}m`;
  return `${m}m`;
}

export function formatMemory(bytes: number, percent: number): string {
  return `${formatBytes(bytes)} (${percent.toFixed(1)}%)`;
}

export function formatNetwork(rx: number, tx: number): string {
  return `RX: ${formatBytes(rx)}, TX: ${formatBytes(tx)}`;
}

/** ISO 8601 UTC with milliseconds and Z. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** ISO 8601 UTC with nanoseconds and Z (log lines keep Docker's precision). */
export function isoNs(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const frac = ((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
  return `${new Date(Number(ms)).toISOString().slice(0, 19)}.${frac.toString().padStart(9, '0')}Z`;
}

/** "24h" for a day or less, "7d" for whole days beyond, else hours. */
export function formatPeriod(hours: number): string {
  return hours > 24 && hours % 24 === 0 ? `${hours / 24}d` : `${hours}h`;
}

export interface ContainerStatus {
  name: string;
  status: string;
  image: string;
  created: string;
  cpu_percent: string;
  memory_usage: string;
  network_io: string;
  uptime: string;
  id: string;
  status_text: string;
  health: string | null;
  cpu_percent_value: number;
  memory_usage_bytes: number;
  memory_limit_bytes: number;
  memory_percent: number;
  network_rx_bytes: number;
  network_tx_bytes: number;
  uptime_seconds: number;
  restart_count: number;
  pids: number;
  sampled_at: string | null;
}

/** One container as OpsHub answered it, plus numeric siblings of the human strings. */
export function containerStatus(c: LiveContainer): ContainerStatus {
  const s = c.stats;
  const cpu = s?.cpu_percent ?? 0;
  const mem = s?.memory_usage_bytes ?? 0;
  const memPercent = s?.memory_percent ?? 0;
  const rx = s?.net_rx_bytes ?? 0;
  const tx = s?.net_tx_bytes ?? 0;
  const uptime = s?.uptime_seconds ?? 0;
  return {
    name: c.name,
    status: c.state,
    image: c.image,
    created: iso(c.created * 1000),
    cpu_percent: cpu.toFixed(1),
    memory_usage: formatMemory(mem, memPercent),
    network_io: formatNetwork(rx, tx),
    uptime: formatUptime(uptime),
    id: c.id,
    status_text: c.status,
    health: s?.health ?? null,
    cpu_percent_value: round(cpu, 2),
    memory_usage_bytes: mem,
    memory_limit_bytes: s?.memory_limit_bytes ?? 0,
    memory_percent: round(memPercent, 2),
    network_rx_bytes: rx,
    network_tx_bytes: tx,
    uptime_seconds: Math.floor(uptime),
    restart_count: s?.restart_count ?? 0,
    pids: s?.pids ?? 0,
    sampled_at: s ? isoNs(s.read) : null,
  };
}

export function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
