// The store's tables and views. Base tables are named opshub_* so that the
// OpsHub names (logs, user_sessions, performance_metrics) can be views with
// OpsHub's column names. No primary keys or indexes: the tables are
// append-heavy, and indexes make WAL replay after a crash fragile.
//
// Log lines and their streams: a line's per-container strings (source,
// container name, id and image, and its labels) are the same line after
// line, yet DuckDB pays for each copy (string statistics, UTF-8 checks,
// dictionary analysis, copies), so a line names its stream by number
// (opshub_log_lines.stream_id) and each distinct set is stored once
// (opshub_log_streams), as Loki keeps a stream's labels once. opshub_logs is
// the view that joins them: the columns users query. `category` and the
// stream's attributes (`container_id`, `image`) are columns, so a line's
// attributes JSON leaves them out (when they are strings).
//
// Timestamps: `timestamp` is a TIMESTAMP (µs, UTC) so that everyday SQL such
// as `timestamp > now() - INTERVAL 1 HOUR` works; `timestamp_ns` is the
// event's exact time in nanoseconds since the epoch (BIGINT) — full precision,
// and the tie-breaker for ordering lines that share a microsecond.

/**
 * 2: log lines name their stream (opshub_log_lines + opshub_log_streams,
 * opshub_logs a view), and activity rows no longer copy the line's message
 * (it is in opshub_logs; the copy cost ~6 % of the CPU a line, callgrind).
 * 1 kept log lines in one table.
 */
export const SCHEMA_VERSION = '2';

/** Tables whose rows are archived to Parquet by day (read through these names, whole rows). */
export const DAY_TABLES = ['opshub_logs', 'opshub_metrics', 'opshub_activity'] as const;
export type DayTable = (typeof DAY_TABLES)[number];

/** The base table that holds a day table's rows (to delete them from). */
export const STORED_IN: Record<DayTable, string> = { opshub_logs: 'opshub_log_lines', opshub_metrics: 'opshub_metrics', opshub_activity: 'opshub_activity' };

/** opshub_logs: each line with its stream's columns, in the order schema 1's table had (image, promoted later, last). */
export const LOGS_VIEW = `SELECT l."timestamp", l.timestamp_ns, s.source, s.container_name, s.container_id, l.level, l.category, l.message, s.labels, l.attributes, s.image
       FROM opshub_log_lines l JOIN opshub_log_streams s ON s.stream_id = l.stream_id`;

/** The storage version of new files: the oldest with ZSTD-compressed text (DuckDB 1.2). */
export const STORAGE_VERSION = 'v1.2.0';

/** Whether a file of `version` (as duckdb_databases() tags it: 'v1.0.0+') can hold ZSTD-compressed columns. */
export function holdsZstd(version: string): boolean {
  const v = /^v(\d+)\.(\d+)/.exec(version);
  return v !== null && (Number(v[1]) > 1 || (Number(v[1]) === 1 && Number(v[2]) >= 2));
}

/**
 * The tables. `zstd`: log messages, distinct line by line if only by their
 * time, are compressed with ZSTD, which needs a file of storage version
 * v1.2.0 or later (DuckDB stores the column uncompressed in older files, so
 * it is only asked for in such files); otherwise DuckDB picks, FSST for such
 * text. ZSTD compresses a vector of lines at once, so it finds what
 * consecutive lines share: on bench/processing.ts's lines the message column
 * takes ~13 bytes a line against ~85 with FSST, and writing a line costs
 * ~1 µs less CPU. Other columns are left to DuckDB, whose dictionary beats
 * ZSTD where values repeat (attributes of similar lines, labels).
 */
export function tablesDdl(zstd: boolean): string[] {
  const long = (type: string) => (zstd ? `${type} USING COMPRESSION zstd` : type);
  return [
    `CREATE TABLE IF NOT EXISTS opshub_log_streams (
      stream_id BIGINT NOT NULL,
      source VARCHAR,
      container_name VARCHAR,
      container_id VARCHAR,
      image VARCHAR,
      labels JSON,
      first_seen TIMESTAMP
    )`,
    `CREATE TABLE IF NOT EXISTS opshub_log_lines (
      "timestamp" TIMESTAMP NOT NULL,
      timestamp_ns BIGINT NOT NULL,
      stream_id BIGINT NOT NULL,
      level VARCHAR,
      category VARCHAR,
      message ${long('VARCHAR')},
      attributes JSON
    )`,
    `CREATE TABLE IF NOT EXISTS opshub_metrics (
      "timestamp" TIMESTAMP NOT NULL,
      timestamp_ns BIGINT NOT NULL,
      name VARCHAR NOT NULL,
      field VARCHAR NOT NULL,
      value DOUBLE,
      value_text VARCHAR,
      type VARCHAR,
      tags JSON
    )`,
    `CREATE TABLE IF NOT EXISTS opshub_activity (
      "timestamp" TIMESTAMP NOT NULL,
      timestamp_ns BIGINT NOT NULL,
      username VARCHAR,
      user_id VARCHAR,
      email VARCHAR,
      model VARCHAR,
      action VARCHAR,
      session_id VARCHAR,
      ip_address VARCHAR,
      user_agent VARCHAR,
      source VARCHAR,
      container_name VARCHAR,
      level VARCHAR,
      metadata JSON
    )`,
    // Written by the alerting issue; created here so the store's shape is complete.
    `CREATE TABLE IF NOT EXISTS opshub_alerts (
      id VARCHAR NOT NULL,
      rule VARCHAR,
      alert_type VARCHAR,
      severity VARCHAR,
      state VARCHAR,
      labels JSON,
      message VARCHAR,
      container_name VARCHAR,
      value DOUBLE,
      threshold DOUBLE,
      started_at TIMESTAMP,
      last_evaluated_at TIMESTAMP,
      resolved_at TIMESTAMP,
      acknowledged BOOLEAN DEFAULT false,
      acknowledged_by VARCHAR,
      acknowledged_at TIMESTAMP,
      notes VARCHAR,
      notified_at TIMESTAMP,
      updated_at TIMESTAMP
    )`,
    // Input positions committed with the rows (exactly-once across kill -9).
    `CREATE TABLE IF NOT EXISTS _opshub_positions (
      input VARCHAR NOT NULL,
      "key" VARCHAR NOT NULL,
      value JSON,
      "order" VARCHAR NOT NULL,
      updated_at TIMESTAMP
    )`,
    // One row per archived day; `pending` names a finished Parquet file not yet renamed into place.
    `CREATE TABLE IF NOT EXISTS _opshub_archive (
      table_name VARCHAR NOT NULL,
      day DATE NOT NULL,
      path VARCHAR NOT NULL,
      pending VARCHAR,
      "rows" BIGINT,
      codec VARCHAR,
      updated_at TIMESTAMP
    )`,
    `CREATE TABLE IF NOT EXISTS _opshub_meta ("key" VARCHAR NOT NULL, value VARCHAR)`,
  ];
}

/** The tables as DuckDB lays them out by itself (in-memory stores, old files). */
export const TABLES_DDL = tablesDdl(false);

/** Views named after OpsHub's tables, and the views for the common questions. */
export const VIEWS: Array<[name: string, sql: string]> = [
  ['opshub_logs', LOGS_VIEW],
  [
    'logs',
    `SELECT "timestamp", container_name, container_id, level, message,
            COALESCE(attributes->>'raw_log', message) AS raw_log, source, category, attributes, labels, timestamp_ns, image
       FROM opshub_logs`,
  ],
  [
    'user_sessions',
    `SELECT COALESCE(username, email, user_id) AS username, model, action, session_id, ip_address, user_agent,
            "timestamp", metadata, user_id, email, source, container_name, timestamp_ns
       FROM opshub_activity`,
  ],
  [
    'performance_metrics',
    `SELECT "timestamp", name AS metric_type, field AS metric_name, value,
            CASE
              WHEN field LIKE '%percent%' OR field LIKE 'utilization%' OR field LIKE '%_utilization' THEN '%'
              WHEN field LIKE '%bytes%' THEN 'bytes'
              WHEN field LIKE '%celsius%' OR field LIKE '%temperature%' THEN 'celsius'
              WHEN field LIKE '%watts%' OR field LIKE 'power%' THEN 'W'
              WHEN field LIKE '%hertz%' THEN 'Hz'
              WHEN field LIKE '%mhz%' OR field LIKE 'clocks%' THEN 'MHz'
              WHEN field LIKE '%seconds%' THEN 's'
              ELSE NULL
            END AS unit,
            COALESCE(tags->>'container_name', tags->>'container') AS container_name, tags AS metadata, value_text, type
       FROM opshub_metrics`,
  ],
  [
    'errors_per_container_day',
    `SELECT CAST("timestamp" AS DATE) AS day, COALESCE(container_name, source) AS container,
            count(*) FILTER (WHERE level IN ('error', 'critical')) AS errors,
            count(*) FILTER (WHERE level = 'critical') AS critical,
            count(*) FILTER (WHERE level = 'warning') AS warnings,
            count(*) AS lines,
            round(100.0 * count(*) FILTER (WHERE level IN ('error', 'critical')) / count(*), 2) AS error_percent
       FROM opshub_logs
      GROUP BY ALL
      ORDER BY day DESC, errors DESC`,
  ],
  [
    'most_active_users',
    `SELECT COALESCE(username, email, user_id) AS username,
            count(*) AS events,
            count(DISTINCT model) AS models,
            count(DISTINCT session_id) AS sessions,
            count(DISTINCT ip_address) AS ip_addresses,
            min("timestamp") AS first_seen,
            max("timestamp") AS last_seen
       FROM opshub_activity
      WHERE COALESCE(username, email, user_id) IS NOT NULL
      GROUP BY ALL
      ORDER BY events DESC`,
  ],
  [
    'model_usage',
    `SELECT CAST("timestamp" AS DATE) AS day, attributes->>'model' AS model,
            count(*) AS requests,
            count(DISTINCT COALESCE(attributes->>'username', attributes->>'email', attributes->>'user_id')) AS users,
            round(avg(TRY_CAST(attributes->>'duration_ms' AS DOUBLE)), 3) AS avg_duration_ms,
            count(*) FILTER (WHERE level IN ('error', 'critical')) AS errors
       FROM opshub_logs
      WHERE attributes->>'model' IS NOT NULL
      GROUP BY ALL
      ORDER BY day DESC, requests DESC`,
  ],
  [
    // Over the nvidia_smi input's metrics (names starting nvidia_smi, GPUs tagged `index`, `uuid`, `name`),
    // e.g. WHERE metric = 'nvidia_smi_utilization_gpu_percent'.
    'gpu_utilization_hourly',
    `SELECT time_bucket(INTERVAL 1 HOUR, "timestamp") AS hour,
            COALESCE(tags->>'index', tags->>'gpu_index', tags->>'uuid') AS gpu,
            tags->>'name' AS gpu_name,
            name || '_' || field AS metric,
            round(avg(value), 3) AS avg, min(value) AS min, max(value) AS max, count(*) AS samples
       FROM opshub_metrics
      WHERE name LIKE 'nvidia_smi%' AND value IS NOT NULL
      GROUP BY ALL
      ORDER BY hour DESC, gpu, metric`,
  ],
];
