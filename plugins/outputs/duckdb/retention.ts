// Retention without a bloated file. DuckDB's DELETE does not shrink the file
// (freed blocks are reused), so the database keeps only recent days and older
// days move to Parquet, by table, host and UTC day (hive-style, so archives of
// many hosts copied side by side read as one with hive_partitioning):
//
//   <archive_dir>/<table>/host=<host>/day=YYYY-MM-DD/data.parquet           (mode daily)
//   <archive_dir>/<table>/host=<host>/day=YYYY-MM-DD/container=<name>/data_0.parquet
//                                                                           (mode per-container)
//
// - active_days:  at least this many days (× 24 h) stay in the database; older
//                 whole UTC days are archived (rows copied to Parquet, then
//                 deleted from the database).
// - archive_days: a day's Parquet files are written with fast Snappy compression
//                 ("warm"); once the day is older than archive_days they are
//                 rewritten with ZSTD ("cold": smaller, slower to write).
// - purge_days:   days older than this are deleted from the archive (and, if
//                 still there, from the database).
//
// Crash safety: a day is written to a temporary name (a file beside the final
// one, or a directory under <archive_dir>/.tmp for per-container days), then
// one transaction deletes its rows and records the pending rename in
// _opshub_archive, then the temporary is renamed into place (replacing an
// older version of that day, whose rows the new one includes). A crash before
// the commit leaves the rows in the database and a stray temporary (removed
// at start); a crash after it leaves a pending rename that recover()
// completes. Readers of the Parquet files never see a half-written file or a
// row twice.

import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import { DAY_TABLES, STORED_IN, type DayTable } from './schema.ts';

const DAY_MS = 86_400_000;

export interface RetentionConfig {
  active_days: number;
  archive_days: number;
  purge_days: number;
}

/** Where and how days are archived. */
export interface ArchiveLayout {
  dir: string;
  /** The agent's host name, a path level (`host=<host>`), so archives of many hosts can sit side by side. */
  host: string;
  /** daily: one file per table and day; per-container: one file per table, day and container. */
  mode: 'daily' | 'per-container';
}

/** Rows without a container (host metrics) go to this container partition. */
export const NO_CONTAINER = '_none';

/** The container a row belongs to, for per-container partitions. */
const CONTAINER_OF: Record<DayTable, string> = {
  opshub_logs: 'container_name',
  opshub_activity: 'container_name',
  opshub_metrics: "COALESCE(tags->>'container_name', tags->>'container')",
};

export interface RetentionReport {
  archived: Array<{ table: DayTable; day: string; rows: number }>;
  compressed: Array<{ table: DayTable; day: string }>;
  purged: Array<{ table: DayTable; day: string }>;
  /** Rows deleted from the database because they were already past purge_days. */
  dropped_rows: number;
  /** Rows of opshub_log_streams deleted because no line in the database names them any more. */
  streams_dropped: number;
}

/** YYYY-MM-DD of the UTC day `days` days before `nowMs`. */
export function dayBefore(nowMs: number, days: number): string {
  return new Date(Math.floor((nowMs - days * DAY_MS) / DAY_MS) * DAY_MS).toISOString().slice(0, 10);
}

const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** A host name as a path segment: characters other than letters, digits, `.`, `_`, `-` become `_`. */
export function hostSegment(host: string): string {
  return `host=${host.replace(/[^A-Za-z0-9._-]/g, '_') || 'unknown'}`;
}

export function dayDir(layout: Pick<ArchiveLayout, 'dir' | 'host'>, table: string, day: string): string {
  return path.join(layout.dir, table, hostSegment(layout.host), `day=${day}`);
}

/** Every file under `p` (or `p` itself when it is a file) whose name passes `keep`. */
function filesUnder(p: string, keep: (name: string) => boolean): string[] {
  let entries;
  try {
    if (!statSync(p).isDirectory()) return keep(path.basename(p)) ? [p] : [];
    entries = readdirSync(p, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => (e.isDirectory() ? filesUnder(path.join(p, e.name), keep) : keep(e.name) ? [path.join(p, e.name)] : []));
}

/** Every `day=YYYY-MM-DD` directory of a table (with or without the host level). */
function dayDirs(archiveDir: string, table: string): Array<{ dir: string; day: string }> {
  const out: Array<{ dir: string; day: string }> = [];
  const scan = (dir: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const m = /^day=(\d{4}-\d{2}-\d{2})$/.exec(name);
      if (m) out.push({ dir: path.join(dir, name), day: m[1]! });
      else if (depth === 0 && name.startsWith('host=')) scan(path.join(dir, name), 1);
    }
  };
  scan(path.join(archiveDir, table), 0);
  return out;
}

/** Moves a finished temporary (file or per-container directory) to its final place, replacing what is there. */
function place(pending: string, final: string): void {
  if (!statSync(pending).isDirectory()) {
    renameSync(pending, final);
    return;
  }
  mkdirSync(path.dirname(final), { recursive: true });
  if (existsSync(final)) {
    const old = `${pending}.old`;
    renameSync(final, old); // the new directory holds the old rows too
    renameSync(pending, final);
    rmSync(old, { recursive: true, force: true });
  } else renameSync(pending, final);
}

/** Completes renames a crash interrupted and removes stray temporaries. */
export async function recover(conn: DuckDBConnection, archiveDir: string): Promise<void> {
  const reader = await conn.runAndReadAll(`SELECT table_name, CAST(day AS VARCHAR), path, pending FROM _opshub_archive WHERE pending IS NOT NULL`);
  for (const [table, day, final, pending] of reader.getRows() as Array<[string, string, string, string]>) {
    if (existsSync(pending)) place(pending, final);
    await conn.run(`UPDATE _opshub_archive SET pending = NULL WHERE table_name = $1 AND day = CAST($2 AS DATE)`, [table, day]);
  }
  rmSync(path.join(archiveDir, '.tmp'), { recursive: true, force: true });
  for (const table of DAY_TABLES) {
    for (const f of filesUnder(path.join(archiveDir, table), (n) => n.endsWith('.tmp'))) rmSync(f, { force: true });
  }
}

async function archiveDay(conn: DuckDBConnection, layout: ArchiveLayout, table: DayTable, day: string, codec: 'snappy' | 'zstd'): Promise<number> {
  const dir = dayDir(layout, table, day);
  const perContainer = layout.mode === 'per-container';
  // daily: the file data.parquet; per-container: the day's directory of container=<name>/ partitions.
  const final = perContainer ? dir : path.join(dir, 'data.parquet');
  const tmp = perContainer ? path.join(layout.dir, '.tmp', `${table}-${day}-${randomUUID()}`) : path.join(dir, `.data-${randomUUID()}.parquet.tmp`);
  mkdirSync(path.dirname(tmp), { recursive: true });
  const range = `"timestamp" >= CAST(${sqlString(day)} AS TIMESTAMP) AND "timestamp" < CAST(${sqlString(day)} AS TIMESTAMP) + INTERVAL 1 DAY`;
  // Late rows for a day already archived join the rows already there (in either layout).
  const before = existsSync(final) ? filesUnder(final, (n) => n.endsWith('.parquet')) : [];
  const previous = before.length ? ` UNION ALL BY NAME SELECT * FROM read_parquet([${before.map(sqlString).join(', ')}], hive_partitioning = false, union_by_name = true)` : '';
  const count = await conn.runAndReadAll(`SELECT count(*) FROM ${table} WHERE ${range}`);
  const rows = Number(count.getRows()[0]![0]);
  const options = `FORMAT parquet, COMPRESSION ${codec}${codec === 'zstd' ? ', COMPRESSION_LEVEL 9' : ''}`;
  const source = `SELECT * FROM ${table} WHERE ${range}${previous}`;
  if (perContainer) {
    await conn.run(
      `COPY (SELECT *, COALESCE(NULLIF(${CONTAINER_OF[table]}, ''), '${NO_CONTAINER}') AS container FROM (${source}) ORDER BY timestamp_ns) TO ${sqlString(tmp)} (${options}, PARTITION_BY (container))`,
    );
  } else {
    await conn.run(`COPY (SELECT * FROM (${source}) ORDER BY timestamp_ns) TO ${sqlString(tmp)} (${options})`);
  }
  await conn.run('BEGIN TRANSACTION');
  try {
    await conn.run(`DELETE FROM ${STORED_IN[table]} WHERE ${range}`);
    await conn.run(`DELETE FROM _opshub_archive WHERE table_name = $1 AND day = CAST($2 AS DATE)`, [table, day]);
    await conn.run(`INSERT INTO _opshub_archive VALUES ($1, CAST($2 AS DATE), $3, $4, $5, $6, now()::TIMESTAMP)`, [table, day, final, tmp, rows, codec]);
    await conn.run('COMMIT');
  } catch (err) {
    await conn.run('ROLLBACK').catch(() => undefined);
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  place(tmp, final);
  await conn.run(`UPDATE _opshub_archive SET pending = NULL WHERE table_name = $1 AND day = CAST($2 AS DATE)`, [table, day]);
  return rows;
}

async function compressDay(conn: DuckDBConnection, table: DayTable, day: string, final: string): Promise<void> {
  for (const file of filesUnder(final, (n) => n.endsWith('.parquet'))) {
    const tmp = path.join(path.dirname(file), `.data-${randomUUID()}.parquet.tmp`);
    await conn.run(`COPY (SELECT * FROM read_parquet(${sqlString(file)}, hive_partitioning = false)) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 9)`);
    renameSync(tmp, file); // same rows: readers see the old file or the new one
  }
  await conn.run(`UPDATE _opshub_archive SET codec = 'zstd', updated_at = now()::TIMESTAMP WHERE table_name = $1 AND day = CAST($2 AS DATE)`, [table, day]);
}

/** Archives, compresses and purges according to `cfg` as of `nowMs`. Run it inside the store's exclusive(). */
export async function runRetention(conn: DuckDBConnection, layout: ArchiveLayout, cfg: RetentionConfig, nowMs: number): Promise<RetentionReport> {
  const archiveDir = layout.dir;
  const report: RetentionReport = { archived: [], compressed: [], purged: [], dropped_rows: 0, streams_dropped: 0 };
  const archiveBefore = dayBefore(nowMs, cfg.active_days);
  const coldBefore = dayBefore(nowMs, cfg.archive_days);
  const purgeBefore = dayBefore(nowMs, cfg.purge_days);
  await recover(conn, archiveDir);

  let logsMoved = false;
  for (const table of DAY_TABLES) {
    // Rows already past purge_days are not worth archiving.
    const dropped = await conn.runAndReadAll(`DELETE FROM ${STORED_IN[table]} WHERE "timestamp" < CAST(${sqlString(purgeBefore)} AS TIMESTAMP) RETURNING 1`);
    report.dropped_rows += dropped.currentRowCount;
    const days = await conn.runAndReadAll(
      `SELECT DISTINCT CAST(CAST("timestamp" AS DATE) AS VARCHAR) AS day FROM ${table} WHERE "timestamp" < CAST(${sqlString(archiveBefore)} AS TIMESTAMP) ORDER BY day`,
    );
    if (table === 'opshub_logs') logsMoved = dropped.currentRowCount > 0 || days.currentRowCount > 0;
    for (const [day] of days.getRows() as Array<[string]>) {
      const rows = await archiveDay(conn, layout, table, day, day < coldBefore ? 'zstd' : 'snappy');
      report.archived.push({ table, day, rows });
    }
  }
  // The archive holds each line's stream columns (written through the view), so a stream no line in the database names is not needed.
  if (logsMoved) report.streams_dropped = await dropUnnamedStreams(conn);

  const warm = await conn.runAndReadAll(
    `SELECT table_name, CAST(day AS VARCHAR), path FROM _opshub_archive WHERE codec <> 'zstd' AND day < CAST($1 AS DATE) AND day >= CAST($2 AS DATE) ORDER BY day`,
    [coldBefore, purgeBefore],
  );
  for (const [table, day, final] of warm.getRows() as Array<[DayTable, string, string]>) {
    if (!existsSync(final)) continue;
    await compressDay(conn, table, day, final);
    report.compressed.push({ table, day });
  }

  for (const table of DAY_TABLES) {
    for (const { dir, day } of dayDirs(archiveDir, table).sort((a, b) => a.day.localeCompare(b.day))) {
      if (day >= purgeBefore) continue;
      rmSync(dir, { recursive: true, force: true });
      report.purged.push({ table, day });
    }
  }
  await conn.run(`DELETE FROM _opshub_archive WHERE day < CAST($1 AS DATE)`, [purgeBefore]);
  await refreshArchiveViews(conn, archiveDir);
  return report;
}

/**
 * Deletes the streams no line of opshub_log_lines names (their lines archived
 * or purged); returns how many. The store must reload its stream ids after
 * this (a container seen again gets a new row).
 */
async function dropUnnamedStreams(conn: DuckDBConnection): Promise<number> {
  const dropped = await conn.runAndReadAll(
    `DELETE FROM opshub_log_streams s WHERE NOT EXISTS (SELECT 1 FROM opshub_log_lines l WHERE l.stream_id = s.stream_id) RETURNING 1`,
  );
  return dropped.currentRowCount;
}

/** Whether any day of `table` is archived. */
function hasArchive(archiveDir: string, table: string): boolean {
  return filesUnder(path.join(archiveDir, table), (n) => n.endsWith('.parquet')).length > 0;
}

/**
 * <table>_archive reads the Parquet days; <table>_all is the database's days
 * and the archived ones together. Recreated after each retention run (a glob
 * with no file behind it is an error in DuckDB).
 */
export async function refreshArchiveViews(conn: DuckDBConnection, archiveDir: string): Promise<void> {
  for (const table of DAY_TABLES) {
    if (hasArchive(archiveDir, table)) {
      const glob = sqlString(path.join(archiveDir, table, '**', '*.parquet'));
      await conn.run(`CREATE OR REPLACE VIEW ${table}_archive AS SELECT * FROM read_parquet(${glob}, hive_partitioning = false, union_by_name = true)`);
      await conn.run(`CREATE OR REPLACE VIEW ${table}_all AS SELECT * FROM ${table} UNION ALL BY NAME SELECT * FROM ${table}_archive`);
    } else {
      await conn.run(`CREATE OR REPLACE VIEW ${table}_all AS SELECT * FROM ${table}`);
      await conn.run(`DROP VIEW IF EXISTS ${table}_archive`);
    }
  }
}
