// The floor under outputs.duckdb: 10-column log rows written to a bare table
// (one transaction per 10,000-row batch, threads=1, a 128 MiB WAL as the
// store configures, closing CHECKPOINT timed), with none of the store's own
// work (positions, activity rows, attribute JSON), two ways:
// DuckDB's row Appender (appendVarchar() per value) and the store's
// ChunkAppender (2,048-row data chunks). Compare with bench/processing.ts.
// Run: npx tsx bench/duckdb_append.ts   (ROWS=500000 BATCH=10000 to change)

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { ChunkAppender } from '../plugins/outputs/duckdb/chunk_appender.ts';

const ROWS = Number(process.env.ROWS ?? 500_000);
const BATCH = Number(process.env.BATCH ?? 10_000);
const TABLE = 'CREATE TABLE t (ts BIGINT, source VARCHAR, level VARCHAR, message VARCHAR, container VARCHAR, container_id VARCHAR, image VARCHAR, stream VARCHAR, category VARCHAR, attributes JSON)';
const message = 'INFO:     172.18.0.1:51234 - "GET /api/v1/models HTTP/1.1" 200 OK user=alice model=llama3.1:8b request done in 12ms';
const constants = ['open-webui', 'info', null, 'open-webui', '3f1c0d9e8b7a', 'ghcr.io/open-webui/open-webui:main', 'stdout', 'api_request', '{"username":"alice","model":"llama3.1:8b"}'];

async function rowAppender(conn: DuckDBConnection, from: number, to: number): Promise<void> {
  const a = await conn.createAppender('t');
  for (let i = from; i < to; i++) {
    a.appendBigInt(BigInt(i));
    for (const c of constants) a.appendVarchar(c ?? message + i);
    a.endRow();
  }
  a.closeSync();
}

const writer = new ChunkAppender([
  { type: 'BIGINT' },
  ...constants.map((c, i) => ({ type: i === 8 ? ('JSON' as const) : ('VARCHAR' as const), repeats: c !== null })),
]);

async function chunkAppender(conn: DuckDBConnection, from: number, to: number): Promise<void> {
  const a = writer.attach(await conn.createAppender('t'));
  for (let i = from; i < to; i++) {
    a.int64(0, BigInt(i));
    for (let c = 0; c < constants.length; c++) a.text(c + 1, constants[c] ?? message + i);
    a.endRow();
  }
  a.close();
}

for (const [name, append] of [['row Appender', rowAppender], ['ChunkAppender', chunkAppender]] as const) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'opshub-append-'));
  const instance = await DuckDBInstance.create(path.join(dir, 'bench.duckdb'), { threads: '1', checkpoint_threshold: '128MiB' }); // as outputs.duckdb's wal_size default
  const conn = await instance.connect();
  await conn.run(TABLE);
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  for (let done = 0; done < ROWS; done += BATCH) {
    await conn.run('BEGIN');
    await append(conn, done, Math.min(ROWS, done + BATCH));
    await conn.run('COMMIT');
  }
  await conn.run('CHECKPOINT');
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  console.log(`${name.padEnd(14)} ${ROWS.toLocaleString('en')} rows in batches of ${BATCH.toLocaleString('en')}: ${Math.round(ROWS / seconds).toLocaleString('en')} rows/s, ${(((cpu.user + cpu.system) / 1e6 / ROWS) * 1e6).toFixed(1)} µs of CPU per row`);
  conn.closeSync();
  instance.closeSync();
  rmSync(dir, { recursive: true, force: true });
}
