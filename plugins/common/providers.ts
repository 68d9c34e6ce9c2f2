// Capabilities that plugin instances offer to views over them (the REST API,
// status pages), and a typed way to find the running instances that offer
// one. A capability is structural — what the instance's plugin object has —
// so providers need not import anything: docker_stats' `containers()` and
// duckdb's `store.read()` are found by their shape and used through these
// types. Never import one plugin from another; go through here.

import type { DuckDBConnection } from '@duckdb/node-api';
import type { InstanceInfo, PluginContext } from '../../core/plugin.ts';

export interface Capability<T> {
  /** What the capability is, for messages ("no instance offers containers()"). */
  name: string;
  has(plugin: object): boolean;
  /** Plugin types that offer it, for messages telling the user what to configure. */
  offeredBy: string[];
}

export interface Provided<T> {
  info: InstanceInfo;
  provider: T;
}

/** The running instances that offer `cap`, in pipeline order. */
export function findProviders<T>(ctx: PluginContext, cap: Capability<T>, section?: InstanceInfo['section']): Array<Provided<T>> {
  return (ctx.instances?.() ?? [])
    .filter((i) => (section === undefined || i.section === section) && cap.has(i.plugin))
    .map((info) => ({ info, provider: info.plugin as T }));
}

// --- Live containers (inputs.docker_stats) ----------------------------------

/** One container of the Docker inputs' live view (inputs.docker_stats' ContainerView). */
export interface LiveContainer {
  id: string;
  name: string;
  image: string;
  /** created, running, paused, restarting, exited, dead. */
  state: string;
  /** Docker's human status, e.g. "Up 3 minutes (healthy)". */
  status: string;
  /** Creation time, seconds since the epoch. */
  created: number;
  labels: Record<string, string>;
  /** Figures of the last gather, for containers that were running then. */
  stats?: {
    read: bigint;
    cpu_percent: number;
    memory_usage_bytes: number;
    memory_limit_bytes: number;
    memory_percent: number;
    net_rx_bytes: number;
    net_tx_bytes: number;
    blkio_read_bytes: number;
    blkio_write_bytes: number;
    pids: number;
    restart_count: number;
    uptime_seconds: number;
    health?: string;
  };
}

export interface ContainerSource {
  /** Every chosen container (stopped ones too), listed now, with the last gather's figures. */
  containers(): Promise<LiveContainer[]>;
}

export const CONTAINERS: Capability<ContainerSource> = {
  name: 'containers()',
  has: (p) => typeof (p as Partial<ContainerSource>).containers === 'function',
  offeredBy: ['inputs.docker_stats'],
};

// --- The store (outputs.duckdb) -----------------------------------------------

/** What the DuckDB store offers readers. */
export interface SqlStore {
  /** Runs `fn` on a connection of its own (never the writer's), closed afterwards. */
  read<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T>;
  readonly isOpen: boolean;
  /** The database file. */
  readonly file: string;
  /** When the last CHECKPOINT finished (ms since the epoch). */
  readonly lastCheckpointMs?: number;
  /** Where in time its log lines changed, for readers that keep answers about the past. */
  readonly logChanges?: LogChanges;
}

/**
 * The versions of a store's log lines: every change (lines added or
 * removed) bumps `version` and is remembered with the range of timestamps
 * it touched.
 */
export interface LogChanges {
  /** Read before a statement: every change up to it is visible to that statement. */
  readonly version: number;
  /**
   * The timestamp ranges [from, to] (ns) changed after `version`; undefined
   * when no longer known (too many changes since), so the reader must check
   * for itself.
   */
  since(version: number): Array<[bigint, bigint]> | undefined;
}

export interface StoreOwner {
  store: SqlStore;
}

export const STORE: Capability<StoreOwner> = {
  name: 'store.read()',
  has: (p) => {
    const store = (p as Partial<StoreOwner>).store;
    return typeof store === 'object' && store !== null && typeof store.read === 'function';
  },
  offeredBy: ['outputs.duckdb'],
};

// --- Docker connections (inputs.docker_logs, inputs.docker_stats) ---------------

/** Instances configured with a Docker Engine connection (their options hold endpoint, tls_*). */
export const DOCKER_TYPES = new Set(['docker_logs', 'docker_stats']);

export function dockerInstances(ctx: PluginContext): InstanceInfo[] {
  return (ctx.instances?.() ?? []).filter((i) => i.section === 'inputs' && DOCKER_TYPES.has(i.type));
}

// --- The alerts table (outputs.duckdb, written by outputs.alerting) ---------------

/** One row of opshub_alerts (times in ms since the epoch; null where not known). */
export interface AlertRow {
  id: string;
  rule: string | null;
  alert_type: string;
  severity: string;
  state: string;
  labels: Record<string, string>;
  message: string;
  container_name: string | null;
  value: number | null;
  threshold: number | null;
  started_at: number | null;
  last_evaluated_at: number | null;
  resolved_at: number | null;
  acknowledged: boolean;
  acknowledged_by: string | null;
  acknowledged_at: number | null;
  notes: string | null;
  notified_at: number | null;
  updated_at: number;
}

export interface AlertSink {
  /** Inserts or replaces (by id) rows of the alerts table, in one transaction. */
  writeAlerts(rows: AlertRow[]): Promise<void>;
}

export const ALERT_SINK: Capability<AlertSink> = {
  name: 'writeAlerts()',
  has: (p) => typeof (p as Partial<AlertSink>).writeAlerts === 'function',
  offeredBy: ['outputs.duckdb'],
};
