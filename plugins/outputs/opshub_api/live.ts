// What the API learns from the events the pipeline hands it: the latest host
// and GPU figures (for /metrics/performance) and new log lines for followers
// of /logs/{container}?follow=true.

import type { LogEvent, MetricEvent } from '../../../core/events.ts';
import type { LogRow } from './queries.ts';

/** Measurements /metrics/performance reads. */
export const PERFORMANCE_NAMES = ['system_cpu', 'system_memory', 'system_filesystem', 'system', 'nvidia_smi'];

export interface Sample {
  name: string;
  tags: Record<string, string>;
  fields: Record<string, number>;
  ns: bigint;
}

/** The newest fields per (measurement, tag set) of the performance measurements. */
export class LatestMetrics {
  private samples = new Map<string, Sample>();

  observe(m: MetricEvent): void {
    if (!PERFORMANCE_NAMES.includes(m.name)) return;
    const key = `${m.name}\u0000${Object.entries(m.tags).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(',')}`;
    let s = this.samples.get(key);
    if (!s) {
      s = { name: m.name, tags: { ...m.tags }, fields: {}, ns: m.timestamp };
      this.samples.set(key, s);
    }
    if (m.timestamp < s.ns) return; // an older sample arriving late
    s.ns = m.timestamp;
    for (const [field, v] of Object.entries(m.fields)) {
      const num = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : typeof v === 'boolean' ? (v ? 1 : 0) : undefined;
      if (num !== undefined && Number.isFinite(num)) s.fields[field] = num;
    }
  }

  /** Seeds from the store (after a start), without overriding what events already said. */
  seed(name: string, tags: Record<string, string>, field: string, value: number, ns: bigint): void {
    const key = `${name}\u0000${Object.entries(tags).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(',')}`;
    let s = this.samples.get(key);
    if (!s) {
      s = { name, tags: { ...tags }, fields: {}, ns };
      this.samples.set(key, s);
    }
    if (!(field in s.fields)) s.fields[field] = value;
    if (ns > s.ns) s.ns = ns;
  }

  get empty(): boolean {
    return this.samples.size === 0;
  }

  /** Samples of `name` whose tags include `tags`. */
  find(name: string, tags: Record<string, string> = {}): Sample[] {
    const out: Sample[] = [];
    for (const s of this.samples.values()) {
      if (s.name !== name) continue;
      if (Object.entries(tags).every(([k, v]) => s.tags[k] === v)) out.push(s);
    }
    return out;
  }

  clear(): void {
    this.samples.clear();
  }
}

export interface Follower {
  container: string;
  level?: string;
  push(row: LogRow): void;
}

/** Followers of the log stream; each gets the lines that match its container and level. */
export class FollowHub {
  private followers = new Set<Follower>();

  get size(): number {
    return this.followers.size;
  }

  add(f: Follower): () => void {
    this.followers.add(f);
    return () => this.followers.delete(f);
  }

  publish(e: LogEvent): void {
    if (this.followers.size === 0) return;
    const row: LogRow = {
      ns: e.timestamp,
      container: e.labels.container_name ?? e.labels.container ?? e.source,
      level: e.level,
      message: e.message,
      source: e.source,
    };
    for (const f of this.followers) {
      if (f.container !== 'all' && f.container !== row.container) continue;
      if (f.level && f.level !== row.level) continue;
      f.push(row);
    }
  }
}
