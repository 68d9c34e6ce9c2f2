// Retention without a bloated file. DuckDB's DELETE does not shrink the file
// (freed blocks are reused), so the database keeps only recent days and older
// days move to Parquet, one file per table and UTC day:
//
//   <archive_dir>/<table>/day=YYYY-MM-DD/data.parquet
//
// - active_days:  at least this many days (× 24 h) stay in the database; older
//                 whole UTC days are archived (rows copied to Parquet, then
//                 deleted from the database).
// - archive_days: a day's Parquet file is written with fast Snappy compression
//                 ("warm"); once the day is older than archive_days it is
//                 rewritten with ZSTD ("cold": smaller, slower to write).
// - purge_days:   days older than this are deleted from the archive (and, if
//                 still there, from the database).
//
// Crash safety: a day is written to a temporary name, then one transaction
// deletes its rows and records the pending rename in _opshub_archive, then
// the file is renamed into place (atomically replacing an older file of that
// day, whose rows the new one includes). A crash before the commit leaves the
// rows in the database and a stray temp file (removed at start); a crash
// after it leaves a pending rename that recover() completes. Readers of the
// Parquet files never see a half-written file or a day twice.

import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import { DAY_TABLES, type DayTable } from './schema.ts';

const DAY_MS = 86_400_000;

export interface RetentionConfig {
  active_days: number;
  archive_days: number;
  purge_days: number;
}

export interface RetentionReport {
  archived: Array<{ table: DayTable; day: string; rows: number }>;
  compressed: Array<{ table: DayTable; day: string }>;
  purged: Array<{ table: DayTable; day: string }>;
  /** Rows deleted from the database because they were already past purge_days. */
  dropped_rows: number;
}

/** YYYY-MM-DD of the UTC day `days` days before `nowMs`. */
export function dayBefore(nowMs: number, days: number): string {
  return new Date(Math.floor((nowMs - days * DAY_MS) / DAY_MS) * DAY_MS).toISOString().slice(0, 10);
}

const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;

export function dayDir(archiveDir: string, table: string, day: string): string {
  return path.join(archiveDir, table, `day=${day}`);
}

/** Completes renames a crash interrupted and removes stray temp files. */
export async function recover(conn: DuckDBConnection, archiveDir: string): Promise<void> {
  const reader = await conn.runAndReadAll(`SELECT table_name, CAST(day AS VARCHAR), path, pending FROM _opshub_archive WHERE pending IS NOT NULL`);
  for (const [table, day, final, pending] of reader.getRows() as Array<[string, string, string, string]>) {
    if (existsSync(pending)) renameSync(pending, final);
    await conn.run(`UPDATE _opshub_archive SET pending = NULL WHERE table_name = $1 AND day = CAST($2 AS DATE)`, [table, day]);
  }
  for (const table of DAY_TABLES) {
    const dir = path.join(archiveDir, table);
    if (!existsSync(dir)) continue;
    for (const d of readdirSync(dir)) {
      const sub = path.join(dir, d);
      let names: string[];
      try {
        names = readdirSync(sub);
      } catch {
        continue;
      }
      for (const f of names) if (f.endsWith('.tmp')) rmSync(path.join(sub, f), { force: true });
    }
  }
}

async function archiveDay(conn: DuckDBConnection, archiveDir: string, table: DayTable, day: string, codec: 'snappy' | 'zstd'): Promise<number> {
  const dir = dayDir(archiveDir, table, day);
  mkdirSync(dir, { recursive: true });
  const final = path.join(dir, 'data.parquet');
  const tmp = path.join(dir, `.data-${randomUUID()}.parquet.tmp`);
  const range = `"timestamp" >= CAST(${sqlString(day)} AS TIMESTAMP) AND "timestamp" < CAST(${sqlString(day)} AS TIMESTAMP) + INTERVAL 1 DAY`;
  // Late rows for a day already archived join the rows already there.
  const previous = existsSync(final) ? ` UNION ALL BY NAME SELECT * FROM read_parquet(${sqlString(final)}, hive_partitioning = false)` : '';
  const count = await conn.runAndReadAll(`SELECT count(*) FROM ${table} WHERE ${range}`);
  const rows = Number(count.getRows()[0]![0]);
  await conn.run(
    `COPY (SELECT * FROM (SELECT * FROM ${table} WHERE ${range}${previous}) ORDER BY timestamp_ns) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION ${codec}${codec === 'zstd' ? ', COMPRESSION_LEVEL 9' : ''})`,
  );
  await conn.run('BEGIN TRANSACTION');
  try {
    await conn.run(`DELETE FROM ${table} WHERE ${range}`);
    await conn.run(`DELETE FROM _opshub_archive WHERE table_name = $1 AND day = CAST($2 AS DATE)`, [table, day]);
    await conn.run(`INSERT INTO _opshub_archive VALUES ($1, CAST($2 AS DATE), $3, $4, $5, $6, now()::TIMESTAMP)`, [table, day, final, tmp, rows, codec]);
    await conn.run('COMMIT');
  } catch (err) {
    await conn.run('ROLLBACK').catch(() => undefined);
    rmSync(tmp, { force: true });
    throw err;
  }
  renameSync(tmp, final);
  await conn.run(`UPDATE _opshub_archive SET pending = NULL WHERE table_name = $1 AND day = CAST($2 AS DATE)`, [table, day]);
  return rows;
}

async function compressDay(conn: DuckDBConnection, table: DayTable, day: string, final: string): Promise<void> {
  const tmp = path.join(path.dirname(final), `.data-${randomUUID()}.parquet.tmp`);
  await conn.run(`COPY (SELECT * FROM read_parquet(${sqlString(final)}, hive_partitioning = false)) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 9)`);
  renameSync(tmp, final); // same rows: readers see the old file or the new one
  await conn.run(`UPDATE _opshub_archive SET codec = 'zstd', updated_at = now()::TIMESTAMP WHERE table_name = $1 AND day = CAST($2 AS DATE)`, [table, day]);
}

/** Archives, compresses and purges according to `cfg` as of `nowMs`. Run it inside the store's exclusive(). */
export async function runRetention(conn: DuckDBConnection, archiveDir: string, cfg: RetentionConfig, nowMs: number): Promise<RetentionReport> {
  const report: RetentionReport = { archived: [], compressed: [], purged: [], dropped_rows: 0 };
  const archiveBefore = dayBefore(nowMs, cfg.active_days);
  const coldBefore = dayBefore(nowMs, cfg.archive_days);
  const purgeBefore = dayBefore(nowMs, cfg.purge_days);
  await recover(conn, archiveDir);

  for (const table of DAY_TABLES) {
    // Rows already past purge_days are not worth archiving.
    const dropped = await conn.runAndReadAll(`DELETE FROM ${table} WHERE "timestamp" < CAST(${sqlString(purgeBefore)} AS TIMESTAMP) RETURNING 1`);
    report.dropped_rows += dropped.currentRowCount;
    const days = await conn.runAndReadAll(
      `SELECT DISTINCT CAST(CAST("timestamp" AS DATE) AS VARCHAR) AS day FROM ${table} WHERE "timestamp" < CAST(${sqlString(archiveBefore)} AS TIMESTAMP) ORDER BY day`,
    );
    for (const [day] of days.getRows() as Array<[string]>) {
      const rows = await archiveDay(conn, archiveDir, table, day, day < coldBefore ? 'zstd' : 'snappy');
      report.archived.push({ table, day, rows });
    }
  }

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
    const dir = path.join(archiveDir, table);
    if (!existsSync(dir)) continue;
    for (const d of readdirSync(dir).sort()) {
      const m = /^day=(\d{4}-\d{2}-\d{2})$/.exec(d);
      if (!m || m[1]! >= purgeBefore) continue;
      rmSync(path.join(dir, d), { recursive: true, force: true });
      report.purged.push({ table, day: m[1]! });
    }
  }
  await conn.run(`DELETE FROM _opshub_archive WHERE day < CAST($1 AS DATE)`, [purgeBefore]);
  await refreshArchiveViews(conn, archiveDir);
  return report;
}

/** Whether any day of `table` is archived. */
function hasArchive(archiveDir: string, table: string): boolean {
  const dir = path.join(archiveDir, table);
  if (!existsSync(dir)) return false;
  return readdirSync(dir).some((d) => existsSync(path.join(dir, d, 'data.parquet')));
}

/**
 * <table>_archive reads the Parquet days; <table>_all is the database's days
 * and the archived ones together. Recreated after each retention run (a glob
 * with no file behind it is an error in DuckDB).
 */
export async function refreshArchiveViews(conn: DuckDBConnection, archiveDir: string): Promise<void> {
  for (const table of DAY_TABLES) {
    if (hasArchive(archiveDir, table)) {
      const glob = sqlString(path.join(archiveDir, table, '*', 'data.parquet'));
      await conn.run(`CREATE OR REPLACE VIEW ${table}_archive AS SELECT * FROM read_parquet(${glob}, hive_partitioning = false, union_by_name = true)`);
      await conn.run(`CREATE OR REPLACE VIEW ${table}_all AS SELECT * FROM ${table} UNION ALL BY NAME SELECT * FROM ${table}_archive`);
    } else {
      await conn.run(`CREATE OR REPLACE VIEW ${table}_all AS SELECT * FROM ${table}`);
      await conn.run(`DROP VIEW IF EXISTS ${table}_archive`);
    }
  }
}
