// How log messages are best stored: DuckDB's own choice (FSST, each line
// compressed on its own) against ZSTD (consecutive lines together), the
// layout outputs.duckdb gives a new file. Distinct realistic lines (each its
// own clock, as bench/processing.ts builds them) go into a bare
// (timestamp, message) table through the store's ChunkAppender, in
// transactions of one row group, threads=1; then the closing CHECKPOINT.
// Prints the CPU a row costs to write, the file's bytes a row, the
// compression DuckDB used, and the time of the reads the REST API makes
// (the latest lines, a substring count, a page of matches, one row by time).
// Run: npx tsx bench/duckdb_compression.ts   (ROWS=983040 to change)

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { ChunkAppender } from '../plugins/outputs/duckdb/chunk_appender.ts';
import { STORAGE_VERSION } from '../plugins/outputs/duckdb/schema.ts';
import { ClockedLines, variedLines } from './support/flood.ts';

const ROWS = Number(process.env.ROWS ?? 983_040);
const ROW_GROUP = 122_880;
const POOL = 20_000;

const pool = variedLines(POOL, 100, 260);
const clocked = new ClockedLines(pool.map((p) => p.line));
const lines = Array.from({ length: ROWS }, (_, i) => clocked.at(i % POOL, i * 7));
const writer = new ChunkAppender([{ type: 'BIGINT' }, { type: 'VARCHAR' }]);

async function write(conn: DuckDBConnection): Promise<number> {
  const cpu0 = process.cpuUsage();
  for (let done = 0; done < ROWS; done += ROW_GROUP) {
    await conn.run('BEGIN');
    const a = writer.attach(await conn.createAppender('t'));
    for (let i = done; i < Math.min(ROWS, done + ROW_GROUP); i++) {
      a.int64(0, BigInt(i));
      a.text(1, lines[i]!);
      a.endRow();
    }
    a.close();
    await conn.run('COMMIT');
  }
  await conn.run('CHECKPOINT');
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / ROWS;
}

/** Mean milliseconds of `sql` over 5 runs. */
async function timed(conn: DuckDBConnection, sql: string): Promise<string> {
  const t0 = performance.now();
  for (let k = 0; k < 5; k++) await conn.runAndReadAll(sql);
  return ((performance.now() - t0) / 5).toFixed(1);
}

console.log(`${ROWS.toLocaleString('en')} distinct lines, ${(lines.reduce((n, l) => n + l.length, 0) / ROWS).toFixed(0)} characters on average, transactions of ${ROW_GROUP.toLocaleString('en')}, DuckDB threads=1`);
for (const [name, column] of [
  ['DuckDB picks (FSST)', 'message VARCHAR'],
  ['ZSTD', 'message VARCHAR USING COMPRESSION zstd'],
] as const) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'opshub-compression-'));
  const file = path.join(dir, 'bench.duckdb');
  const instance = await DuckDBInstance.create(file, { threads: '1', checkpoint_threshold: '128MiB', storage_compatibility_version: STORAGE_VERSION });
  const conn = await instance.connect();
  try {
    await conn.run(`CREATE TABLE t (ts BIGINT, ${column})`);
    const cpuUs = await write(conn);
    const used = await conn.runAndReadAll(`SELECT string_agg(DISTINCT compression) FROM pragma_storage_info('t') WHERE column_name = 'message' AND segment_type = 'VARCHAR'`);
    const tail = await timed(conn, 'SELECT ts, message FROM t ORDER BY ts DESC LIMIT 100');
    const count = await timed(conn, `SELECT count(*) FROM t WHERE message ILIKE '%post%'`);
    const page = await timed(conn, `SELECT ts, message FROM t WHERE message ILIKE '%post%' ORDER BY ts DESC LIMIT 50`);
    const point = await timed(conn, `SELECT message FROM t WHERE ts = ${Math.floor(ROWS / 2)}`);
    console.log(`${name}: ${cpuUs.toFixed(2)} µs of CPU a row to write (${used.getRows()[0]![0]}), file ${(statSync(file).size / ROWS).toFixed(1)} bytes a row`);
    console.log(`  reads (ms): latest 100 ${tail}, ILIKE count ${count}, ILIKE page of 50 ${page}, one row by time ${point}`);
  } finally {
    conn.closeSync();
    instance.closeSync();
    rmSync(dir, { recursive: true, force: true });
  }
}
