import assert from 'node:assert/strict';
import test from 'node:test';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { makeLog, type Event } from '../../../core/events.ts';
import { tempDir } from '../../helpers.ts';
import { makeDuckdb, queryFile } from './duckdb-helpers.ts';

const T = 1_773_212_400_000_000_000n; // 2026-03-11T07:00:00Z
const LINES = 5000; // more than two of DuckDB's 2,048-row vectors

/** Distinct lines, as a log's are: they differ in their time and request. */
const lines = Array.from({ length: LINES }, (_, i) => {
  const s = String(i % 60).padStart(2, '0');
  return `2026-03-11 07:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${s}.${String(i % 1000).padStart(3, '0')} | INFO | uvicorn.access - 172.18.0.${i % 250}:${40000 + i} - "GET /api/v1/chats/${i * 7919} HTTP/1.1" 200`;
});

/** Writes the lines through a started output, then stops it (its closing CHECKPOINT compresses them). */
async function writeLines(dataDir: string): Promise<void> {
  const out = makeDuckdb(dataDir);
  await out.start!();
  try {
    const events: Event[] = lines.map((message, i) => makeLog({ timestamp: T + BigInt(i) * 1000n, source: 'open-webui', message }));
    await out.write(events, { positions: events.map(() => undefined), checkpoints: [] });
  } finally {
    await out.stop!();
  }
}

const storageVersion = (file: string) =>
  queryFile(file, `SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = current_database()`).then((r) => r[0]![0]);
const messageCompression = (file: string) =>
  queryFile(file, `SELECT DISTINCT compression FROM pragma_storage_info('opshub_log_lines') WHERE column_name = 'message' AND segment_type = 'VARCHAR'`).then((r) => r.map((row) => row[0]));
const storedMessages = (file: string) => queryFile(file, 'SELECT message FROM opshub_logs ORDER BY timestamp_ns').then((r) => r.map((row) => row[0]));

test('a new store file holds log messages ZSTD-compressed, readable by DuckDB 1.2 and later', async () => {
  const tmp = tempDir();
  try {
    await writeLines(tmp.dir);
    const file = path.join(tmp.dir, 'opshub.duckdb');
    assert.equal(await storageVersion(file), 'v1.2.0+');
    assert.deepEqual(await messageCompression(file), ['ZSTD']);
    assert.deepEqual(await storedMessages(file), lines);
  } finally {
    tmp.cleanup();
  }
});

test("a file of storage version v1.0.0 (DuckDB's default) keeps its version, and its messages stay compressed as DuckDB picks", async () => {
  const tmp = tempDir();
  try {
    const file = path.join(tmp.dir, 'opshub.duckdb');
    // Created by DuckDB with its defaults, before OpsHub's tables: as a file of the user's own, or one DuckDB made empty.
    const db = await DuckDBInstance.create(file);
    const conn = await db.connect();
    await conn.run('CREATE TABLE notes (note VARCHAR)');
    conn.closeSync();
    db.closeSync();

    await writeLines(tmp.dir);
    assert.equal(await storageVersion(file), 'v1.0.0+');
    // ZSTD asked for in such a file would silently store the column uncompressed.
    const compression = await messageCompression(file);
    assert.ok(compression.length > 0 && !compression.includes('Uncompressed') && !compression.includes('ZSTD'), `message compression: ${compression}`);
    assert.deepEqual(await storedMessages(file), lines);
  } finally {
    tmp.cleanup();
  }
});
