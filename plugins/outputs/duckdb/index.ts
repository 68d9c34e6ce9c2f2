// outputs.duckdb: logs, metrics and user activity in a DuckDB file you can
// ask questions with SQL. Batches are appended with Appenders in one
// transaction per batch together with the input positions they carry
// (exactly once across kill -9); old days move to Parquet; a read-only query
// route on the agent's HTTP server serves `opshub query` while the agent
// holds the file's lock.

import { statSync } from 'node:fs';
import path from 'node:path';
import { availableParallelism } from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody, sendJson } from '../../../core/http.ts';
import { errorMessage } from '../../../core/log.ts';
import { RetryableError, type Output, type PluginContext, type PluginDefinition } from '../../../core/plugin.ts';
import { parseDuration, parseSize } from '../../../core/units.ts';
import type { AlertRow } from '../../common/providers.ts';
import { upsertAlerts } from './alerts.ts';
import { QueryError } from './query.ts';
import { recover, refreshArchiveViews, runRetention, type ArchiveLayout, type RetentionReport } from './retention.ts';
import { Store, type WriteStats } from './store.ts';

export interface DuckdbConfig {
  path: string;
  archive_dir: string;
  archive_mode: 'daily' | 'daily-tar' | 'per-container';
  checkpoint_interval: string;
  commit_events: number;
  commit_interval: string;
  memory_limit: string | number;
  wal_size: string | number;
  threads: number;
  retention: {
    enabled: boolean;
    active_days: number;
    archive_days: number;
    purge_days: number;
    interval: string;
  };
  query: {
    enabled: boolean;
    max_rows: number;
    timeout: string;
  };
}

/** Where the database lives: `path`, or `<data_dir>/<id>/opshub.duckdb`. */
export function databaseFile(config: Pick<DuckdbConfig, 'path'>, dataDir: string): string {
  return path.resolve(config.path || path.join(dataDir, 'opshub.duckdb'));
}

export function archiveDirectory(config: Pick<DuckdbConfig, 'path' | 'archive_dir'>, dataDir: string): string {
  return path.resolve(config.archive_dir || path.join(path.dirname(databaseFile(config, dataDir)), 'archive'));
}

/** The query route's contract (documented in /openapi.json; the handler reads and checks the body itself). */
const QUERY_ROUTE_SCHEMA = {
  summary: 'Read-only SQL over the store',
  description:
    'One reading statement (SELECT, WITH, FROM, VALUES, SHOW, DESCRIBE, SUMMARIZE, EXPLAIN, PRAGMA table_info) on a connection of its own inside a READ ONLY transaction; ' +
    'the body is {"sql": "...", "max_rows": N} or the SQL as text/plain. Used by `opshub query`.',
  tags: ['store'],
  consumes: ['application/json', 'text/plain'],
  body: {
    type: 'object',
    required: ['sql'],
    properties: { sql: { type: 'string', description: 'The statement.' }, max_rows: { type: 'integer', minimum: 0, description: 'Most rows (at most query.max_rows).' } },
  },
  response: {
    200: {
      description: 'The result.',
      type: 'object',
      properties: {
        columns: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, type: { type: 'string' } } } },
        rows: { type: 'array', items: { type: 'array', items: {} } },
        row_count: { type: 'integer' },
        truncated: { type: 'boolean', description: 'More rows exist than were returned.' },
        elapsed_ms: { type: 'integer' },
      },
    },
    400: { description: 'Not one reading statement, or DuckDB rejected it.', type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } },
    408: { description: 'Ran longer than query.timeout.', type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } },
  },
};

/** The query route of an instance. */
export const queryPath = (id: string) => `/api/query/${id}`;

export interface DuckdbOutput extends Output {
  readonly store: Store;
  /** Runs retention now (tests inject the clock through `now`). */
  runRetention(): Promise<RetentionReport>;
  readonly stats: WriteStats & { batches: number };
  selfMetrics(): Record<string, number>;
  /** Inserts or replaces rows of opshub_alerts by id (outputs.alerting finds this through ALERT_SINK). */
  writeAlerts(rows: AlertRow[]): Promise<void>;
}

/**
 * DuckDB's threads when not configured: half the cores. DuckDB's own default
 * (one per core) lets a few API reads take every core from the JS thread
 * that classifies and appends: on 2 cores, flat-out ingestion beside 20 API
 * clients kept 79-80 % of its rate with 2 threads, 90-94 % with 1.
 */
function defaultThreads(): number {
  return Math.max(1, Math.floor(availableParallelism() / 2));
}

export function createDuckdb(config: DuckdbConfig, ctx: PluginContext, deps: { now?: () => number } = {}): DuckdbOutput {
  const now = deps.now ?? Date.now;
  const r = config.retention;
  if (!(r.active_days <= r.archive_days && r.archive_days <= r.purge_days)) {
    throw new Error(`retention: need active_days (${r.active_days}) <= archive_days (${r.archive_days}) <= purge_days (${r.purge_days})`);
  }
  const file = databaseFile(config, ctx.dataDir);
  const archiveDir = archiveDirectory(config, ctx.dataDir);
  const layout: ArchiveLayout = { dir: archiveDir, host: ctx.hostname, mode: config.archive_mode === 'per-container' ? 'per-container' : 'daily' };
  const store = new Store({
    file,
    memoryLimit: `${parseSize(config.memory_limit)}B`,
    walSize: `${parseSize(config.wal_size)}B`,
    threads: config.threads || defaultThreads(),
    warn: (key, message) => ctx.log.once(key, 'warn', message),
    info: (message) => ctx.log.info(message),
  });
  const stats = { logs: 0, metrics: 0, activity: 0, skipped: 0, batches: 0 };
  const retained = { archived: 0, compressed: 0, purged: 0 };
  const timers: NodeJS.Timeout[] = [];
  // Transactions that span batches, unless turned off: one that holds a whole row group skips the WAL.
  const staging = config.commit_events > 0;
  // Counted when appended: a batch staged again after a failed commit counts again (these are for rates, not audits).
  const count = (s: WriteStats) => {
    stats.logs += s.logs;
    stats.metrics += s.metrics;
    stats.activity += s.activity;
    stats.skipped += s.skipped;
    stats.batches++;
    if (s.skipped) ctx.log.debug(`skipped ${s.skipped} events already committed (replayed after a restart)`);
  };
  let unmount: (() => void) | undefined;
  let stopped = false;

  const retention = () =>
    store.exclusive(async () => {
      const report = await runRetention(store.connection, layout, config.retention, now());
      retained.archived += report.archived.length;
      retained.compressed += report.compressed.length;
      retained.purged += report.purged.length;
      if (report.archived.length || report.purged.length) {
        ctx.log.info(`retention: archived ${report.archived.length} table-days to ${archiveDir}, compressed ${report.compressed.length}, purged ${report.purged.length}${report.streams_dropped ? `; dropped ${report.streams_dropped} streams no line names any more` : ''}`);
      }
      return report;
    });

  const handleQuery = async (req: IncomingMessage, res: ServerResponse) => {
    let sql: string;
    let maxRows = config.query.max_rows;
    try {
      const body = (await readBody(req, 1 << 20)).toString('utf8');
      if ((req.headers['content-type'] ?? '').includes('json')) {
        const parsed = JSON.parse(body) as { sql?: unknown; max_rows?: unknown };
        if (typeof parsed.sql !== 'string') throw new QueryError('the body must be {"sql": "..."}');
        sql = parsed.sql;
        if (typeof parsed.max_rows === 'number' && parsed.max_rows >= 0) maxRows = Math.min(Math.floor(parsed.max_rows), config.query.max_rows);
      } else sql = body;
    } catch (err) {
      const status = (err as { status?: number }).status ?? 400;
      sendJson(res, status, { error: 'bad_request', message: err instanceof SyntaxError ? `invalid JSON: ${err.message}` : errorMessage(err) });
      return;
    }
    try {
      const result = await store.query(sql, { maxRows, timeoutMs: parseDuration(config.query.timeout) });
      sendJson(res, 200, result);
    } catch (err) {
      if (err instanceof QueryError) sendJson(res, err.status, { error: 'query_rejected', message: err.message });
      else sendJson(res, 503, { error: 'unavailable', message: errorMessage(err) });
    }
  };

  return {
    store,
    stats,
    runRetention: retention,
    writeAlerts: (rows) =>
      store.exclusive(async () => {
        if (stopped || !store.isOpen) throw new RetryableError('the DuckDB store is not open');
        await upsertAlerts(store.connection, rows);
      }, true),
    selfMetrics() {
      let bytes = 0;
      try {
        bytes = statSync(file).size;
      } catch {
        /* not created yet */
      }
      return {
        log_rows_written_total: stats.logs,
        metric_rows_written_total: stats.metrics,
        activity_rows_written_total: stats.activity,
        replayed_events_skipped_total: stats.skipped,
        days_archived_total: retained.archived,
        days_compressed_total: retained.compressed,
        days_purged_total: retained.purged,
        database_bytes: bytes,
      };
    },
    async start() {
      await store.open();
      await store.exclusive(async () => {
        await recover(store.connection, archiveDir);
        await refreshArchiveViews(store.connection, archiveDir);
      });
      if (config.query.enabled) {
        unmount = ctx.http.route({ method: 'POST', path: queryPath(ctx.id), auth: 'agent', schema: QUERY_ROUTE_SCHEMA, handler: handleQuery });
      }
      const every = (ms: number, fn: () => Promise<unknown>, what: string) => {
        if (ms <= 0) return;
        const t = setInterval(() => {
          fn().then(
            () => ctx.log.clear(what),
            (err) => ctx.log.once(what, 'warn', `${what} failed (retried every ${ms / 1000}s, logged once): ${errorMessage(err)}`),
          );
        }, ms);
        t.unref();
        timers.push(t);
      };
      every(parseDuration(config.checkpoint_interval), () => store.checkpoint(), 'checkpoint');
      if (config.retention.enabled) {
        every(parseDuration(config.retention.interval), retention, 'retention');
        // A first pass soon after start, off the start-up path.
        const first = setTimeout(() => void retention().catch((err) => ctx.log.once('retention', 'warn', `retention failed: ${errorMessage(err)}`)), 5_000);
        first.unref();
        timers.push(first);
      }
    },
    async write(events, wctx) {
      count(await store.write(events, wctx));
    },
    ...(staging && {
      commitEvents: config.commit_events,
      commitIntervalMs: parseDuration(config.commit_interval),
      async stage(events, wctx) {
        count(await store.stage(events, wctx));
      },
      commit: () => store.commit(),
      committedAlone: () => store.committedAlone(),
    }),
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers) clearTimeout(t);
      unmount?.();
      await store.close();
    },
  };
}

export const duckdb: PluginDefinition<DuckdbConfig> = {
  kind: 'output',
  type: 'duckdb',
  description: 'Stores logs, metrics and user activity in a DuckDB file (exactly once, Parquet archive by day) and answers read-only SQL.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      path: { type: 'string', default: '', description: 'Database file; empty means `<agent.data_dir>/<id>/opshub.duckdb`. Relative paths are relative to the working directory.' },
      archive_dir: { type: 'string', default: '', description: 'Where archived days go as Parquet (`<table>/host=<host>/day=YYYY-MM-DD/…`); empty means `archive/` beside the database file.' },
      archive_mode: {
        enum: ['daily', 'daily-tar', 'per-container'],
        default: 'daily',
        description: 'daily: one Parquet file per table and day (`…/day=YYYY-MM-DD/data.parquet`); per-container: one per table, day and container (`…/day=YYYY-MM-DD/container=<name>/data_0.parquet`). daily-tar is OpsHub\'s name for daily.',
      },
      batch_size: {
        type: 'integer',
        minimum: 1,
        default: 10000,
        description:
          "Most rows per transaction. This output's own default, over agent.batch_size: each transaction has a fixed cost (a few ms), so larger batches mean less CPU per line at high rates. flush_interval still bounds the wait at low rates, and inputs that wait for acknowledgements have partial batches written at once.",
      },
      commit_events: {
        type: 'integer',
        minimum: 0,
        default: 122880,
        description:
          'Most events one transaction holds; 0: one transaction per batch. Batches are appended to an open transaction, which is committed once it holds this many (the last batch is cut to fit), after `commit_interval`, and at shutdown; a batch counts as written (and its input positions advance) only at the commit. The default is one DuckDB row group: a transaction that fills one has it written straight to the file, skipping the write-ahead log, which cost 17-25 % less CPU per line in bench/processing.ts and bench/ingest.ts.',
      },
      commit_interval: {
        type: 'string',
        format: 'duration',
        default: '1s',
        description: 'Longest a transaction stays open under a steady stream of batches: how late, at most, rows become visible to queries (and input positions advance).',
      },
      checkpoint_interval: { type: 'string', format: 'duration', default: '5m', description: 'How often the write-ahead log is folded into the database file (CHECKPOINT); also done at shutdown. "0" turns the schedule off.' },
      memory_limit: { type: ['string', 'integer'], format: 'size', default: '1GiB', description: "DuckDB's memory limit for this database." },
      wal_size: {
        type: ['string', 'integer'],
        format: 'size',
        default: '128MiB',
        description:
          "Size the write-ahead log may reach before DuckDB checkpoints by itself (DuckDB's checkpoint_threshold). Larger means fewer checkpoints, each compressing more rows at once: less CPU per line at high rates (16MiB, DuckDB's default, costs about a fifth more), and a longer WAL replay after a crash.",
      },
      threads: {
        type: 'integer',
        minimum: 0,
        default: 0,
        description:
          "DuckDB's worker threads, shared by the writer and every read (the REST API, `opshub query`); 0: half the cores, at least one, so reads leave cores to the agent's own ingestion (DuckDB's own default is one per core).",
      },
      retention: {
        type: 'object',
        additionalProperties: false,
        default: { enabled: true, active_days: 7, archive_days: 30, purge_days: 90, interval: '1h' },
        description: 'Keeps recent days in the database, older days in Parquet, and deletes the oldest.',
        properties: {
          enabled: { type: 'boolean', default: true, description: 'Run retention every `interval` (and once shortly after start).' },
          active_days: { type: 'integer', minimum: 1, default: 7, description: 'At least this many days stay in the database; older whole UTC days are archived to Parquet and deleted from the database.' },
          archive_days: { type: 'integer', minimum: 1, default: 30, description: 'Archived days younger than this stay Snappy-compressed (fast); older ones are rewritten with ZSTD (smaller).' },
          purge_days: { type: 'integer', minimum: 1, default: 90, description: 'Days older than this are deleted from the archive (and the database).' },
          interval: { type: 'string', format: 'duration', default: '1h', description: 'How often retention runs.' },
        },
      },
      query: {
        type: 'object',
        additionalProperties: false,
        default: { enabled: true, max_rows: 10000, timeout: '30s' },
        description: 'The read-only SQL route `POST /api/query/<id>` on the agent\'s HTTP server (behind its auth token), used by `opshub query`.',
        properties: {
          enabled: { type: 'boolean', default: true, description: 'Mount the query route.' },
          max_rows: { type: 'integer', minimum: 1, default: 10000, description: 'Most rows a query returns; more are cut and reported as truncated.' },
          timeout: { type: 'string', format: 'duration', default: '30s', description: 'A query running longer is interrupted.' },
        },
      },
    },
  },
  create: (config, ctx) => createDuckdb(config, ctx),
};

export default duckdb;
