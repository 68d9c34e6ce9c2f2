import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { makeLog, makeMetric, type Event } from '../../../core/events.ts';
import { dayBefore } from '../../../plugins/outputs/duckdb/retention.ts';
import { tempDir } from '../../helpers.ts';
import { makeDuckdb, queryFile } from './duckdb-helpers.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 2, 31, 12, 0, 0); // 2026-03-31T12:00Z, the fake clock
const NS = 1_000_000n;

/** Per day d days ago (0..100): 3 logs (one error), 1 metric, 1 user activity line, at 10:00 UTC + d ns. */
function history(): Event[] {
  const events: Event[] = [];
  for (let d = 0; d <= 100; d++) {
    const base = BigInt(Math.floor((NOW - d * DAY) / DAY) * DAY + 10 * 3_600_000) * NS + BigInt(d);
    events.push(
      makeLog({ timestamp: base, source: 'ollama', labels: { container: 'ollama' }, message: `day ${d} a`, level: 'info' }),
      makeLog({ timestamp: base + 1n, source: 'ollama', labels: { container: 'ollama' }, message: `day ${d} b`, level: 'error' }),
      makeLog({ timestamp: base + 2n, source: 'open-webui', labels: { container: 'open-webui' }, message: `day ${d} c`, attributes: { username: 'alice', model: 'llama3.1:8b' } }),
      makeMetric('nvidia_smi', { utilization_gpu: d }, { index: '0' }, { timestamp: base }),
    );
  }
  return events;
}

const PER_DAY_SQL = (table: string) => `SELECT CAST(CAST("timestamp" AS DATE) AS VARCHAR) AS day, level, count(*) AS n, sum(timestamp_ns % 1000) AS ns FROM ${table} GROUP BY ALL ORDER BY ALL`;

async function parquetRows(sql: string): Promise<unknown[][]> {
  // Any DuckDB reads the archive: a separate in-memory one here.
  const db = await DuckDBInstance.create(':memory:');
  try {
    const conn = await db.connect();
    return (await conn.runAndReadAll(sql)).getRowsJS() as unknown[][];
  } finally {
    db.closeSync();
  }
}

test('retention with a fake clock: old days move to Parquet and leave the database, the archive answers the same query, the oldest are purged', async () => {
  const tmp = tempDir();
  let now = NOW;
  const file = path.join(tmp.dir, 'opshub.duckdb');
  const archive = path.join(tmp.dir, 'archive');
  const out = makeDuckdb(tmp.dir, { retention: { enabled: false, active_days: 7, archive_days: 30, purge_days: 90, interval: '1h' } }, () => now);
  try {
    await out.start!();
    const events = history();
    await out.write(events, { positions: events.map(() => undefined), checkpoints: [] });
    const before = await out.store.query(PER_DAY_SQL('opshub_logs'), { maxRows: 10_000, timeoutMs: 10_000 });

    const report = await out.runRetention();
    const keepFrom = dayBefore(NOW, 7); // 2026-03-24
    const coldBefore = dayBefore(NOW, 30); // 2026-03-01
    const purgeBefore = dayBefore(NOW, 90); // 2025-12-31
    assert.equal(keepFrom, '2026-03-24');
    assert.equal(purgeBefore, '2025-12-31');
    // Days 8..90 ago are archived, for each of the three tables; 91..100 were past purge_days.
    assert.equal(report.archived.length, 83 * 3);
    assert.equal(report.dropped_rows, 10 * (3 + 1 + 1));
    assert.equal(report.streams_dropped, 0, 'both containers still have lines in the database');

    const q = async (sql: string) => (await out.store.query(sql, { maxRows: 10_000, timeoutMs: 10_000 })).rows;
    assert.deepEqual(await q(`SELECT min(CAST("timestamp" AS DATE))::VARCHAR, count(DISTINCT CAST("timestamp" AS DATE)) FROM opshub_logs`), [[keepFrom, 8]]);
    assert.deepEqual(await q(`SELECT count(*) FROM opshub_metrics WHERE "timestamp" < '${keepFrom}'`), [[0]]);
    assert.deepEqual(await q(`SELECT count(*) FROM opshub_activity WHERE "timestamp" < '${keepFrom}'`), [[0]]);

    const days = readdirSync(path.join(archive, 'opshub_logs', 'host=test')).sort();
    assert.equal(days.length, 83);
    assert.equal(days[0], `day=${purgeBefore}`);
    assert.equal(days.at(-1), 'day=2026-03-23');
    assert.ok(days.every((d) => readdirSync(path.join(archive, 'opshub_logs', 'host=test', d)).join() === 'data.parquet'), 'one file per day, no temp files');

    // The Parquet files answer the same query the database answered before, for the archived days — read by another DuckDB.
    const glob = path.join(archive, 'opshub_logs', 'host=test', '*', 'data.parquet');
    const fromParquet = await parquetRows(PER_DAY_SQL(`read_parquet('${glob}', hive_partitioning = false)`));
    const expected = (before.rows as Array<[string, string, number, number]>).filter(([day]) => day < keepFrom && day >= purgeBefore);
    assert.deepEqual(fromParquet.map(([day, level, n, ns]) => [day, level, Number(n), Number(ns)]), expected, 'same rows, same nanoseconds');
    // ... and the *_all view joins both.
    const all = await q(PER_DAY_SQL('opshub_logs_all'));
    assert.deepEqual(all, (before.rows as Array<[string]>).filter(([day]) => day >= purgeBefore));

    // Warm days are Snappy, cold days (older than archive_days) ZSTD.
    const codec = async (day: string) => (await parquetRows(`SELECT DISTINCT compression FROM parquet_metadata('${path.join(archive, 'opshub_logs', 'host=test', `day=${day}`, 'data.parquet')}')`)).map((r) => r[0]);
    assert.deepEqual(await codec('2026-03-23'), ['SNAPPY']);
    assert.deepEqual(await codec('2026-02-28'), ['ZSTD']);
    assert.ok(coldBefore === '2026-03-01');

    // A day later: one more day archived, one day turns cold, one purged; a late line for an archived day is merged into its file.
    now += DAY;
    const late = makeLog({ timestamp: BigInt(Date.UTC(2026, 2, 10, 23, 59, 59)) * NS + 7n, source: 'ollama', message: 'late line', level: 'warning' });
    await out.write([late], { positions: [undefined], checkpoints: [] });
    const second = await out.runRetention();
    assert.deepEqual(second.archived.map((a) => `${a.table} ${a.day} ${a.rows}`).sort(), [
      'opshub_activity 2026-03-24 1',
      'opshub_logs 2026-03-10 1',
      'opshub_logs 2026-03-24 3',
      'opshub_metrics 2026-03-24 1',
    ]);
    assert.equal(second.streams_dropped, 1, "the late line's stream (no container) is named by no line left in the database");
    assert.ok(second.compressed.some((c) => c.table === 'opshub_logs' && c.day === '2026-03-01'));
    assert.ok(second.purged.some((p) => p.table === 'opshub_logs' && p.day === '2025-12-31'));
    assert.deepEqual(await codec('2026-03-01'), ['ZSTD']);
    assert.deepEqual(await parquetRows(`SELECT count(*), count(*) FILTER (WHERE message = 'late line') FROM '${path.join(archive, 'opshub_logs', 'host=test', 'day=2026-03-10', 'data.parquet')}'`), [[4n, 1n]]);
    assert.ok(!existsSync(path.join(archive, 'opshub_logs', 'host=test', 'day=2025-12-31')));
  } finally {
    await out.stop!();
  }
  // The database itself no longer holds the archived days (and is readable after shutdown).
  assert.deepEqual(await queryFile(file, `SELECT count(*) FROM opshub_logs WHERE "timestamp" < '2026-03-25'`), [[0n]]);
  tmp.cleanup();
});

test("retention drops the streams no line in the database names; a container seen again gets a new stream and its lines join it", async () => {
  const tmp = tempDir();
  const out = makeDuckdb(tmp.dir, { retention: { enabled: false, active_days: 7, archive_days: 30, purge_days: 90, interval: '1h' } }, () => NOW);
  const at = (daysAgo: number, ms = 0) => BigInt(NOW - daysAgo * DAY + ms) * NS;
  const line = (container: string, daysAgo: number, message: string, ms = 0) =>
    makeLog({ timestamp: at(daysAgo, ms), source: 'docker', labels: { container }, attributes: { image: `example/${container}:1` }, message });
  const q = async (sql: string) => (await out.store.query(sql, { maxRows: 100, timeoutMs: 10_000 })).rows;
  try {
    await out.start!();
    const first = [line('gone', 10, 'old line of a removed container'), line('ollama', 10, 'old ollama line'), line('ollama', 0, 'recent ollama line')];
    await out.write(first, { positions: first.map(() => undefined), checkpoints: [] });
    const report = await out.runRetention();
    assert.equal(report.streams_dropped, 1);
    assert.deepEqual(await q(`SELECT container_name, image FROM opshub_log_streams ORDER BY ALL`), [['ollama', 'example/ollama:1']]);
    // The archive keeps the removed container's stream columns.
    assert.deepEqual(await q(`SELECT container_name, image, message FROM opshub_logs_archive ORDER BY ALL`), [
      ['gone', 'example/gone:1', 'old line of a removed container'],
      ['ollama', 'example/ollama:1', 'old ollama line'],
    ]);

    // Both containers write again: the store read its streams again, so no line names the dropped one.
    const again = [line('gone', 0, 'gone is back', 1), line('ollama', 0, 'ollama again', 2)];
    await out.write(again, { positions: again.map(() => undefined), checkpoints: [] });
    assert.deepEqual(await q(`SELECT container_name, image, message FROM opshub_logs ORDER BY timestamp_ns`), [
      ['ollama', 'example/ollama:1', 'recent ollama line'],
      ['gone', 'example/gone:1', 'gone is back'],
      ['ollama', 'example/ollama:1', 'ollama again'],
    ]);
    assert.deepEqual(await q(`SELECT (SELECT count(*) FROM opshub_log_lines), (SELECT count(*) FROM opshub_log_streams)`), [[3, 2]]);
  } finally {
    await out.stop!();
    tmp.cleanup();
  }
});

test('a crash between the archive commit and the rename is completed at the next start', async () => {
  const tmp = tempDir();
  const archive = path.join(tmp.dir, 'archive');
  try {
    const first = makeDuckdb(tmp.dir, {}, () => NOW);
    await first.start!();
    // Simulate the state a kill -9 leaves: the rows' deletion and the pending rename are committed,
    // the finished Parquet file still has its temporary name, and a stray temp file from another run.
    const dir = path.join(archive, 'opshub_logs', 'host=test', 'day=2026-03-01');
    const final = path.join(dir, 'data.parquet');
    const pending = path.join(dir, '.data-crash.parquet.tmp');
    mkdirSync(dir, { recursive: true });
    await first.store.exclusive(async () => {
      const conn = first.store.connection;
      await conn.run(`COPY (SELECT TIMESTAMP '2026-03-01 10:00:00' AS "timestamp", 1772359200000000000::BIGINT AS timestamp_ns, 'x' AS message) TO '${pending.replace(/'/g, "''")}' (FORMAT parquet)`);
      await conn.run(`INSERT INTO _opshub_archive VALUES ('opshub_logs', DATE '2026-03-01', $1, $2, 1, 'snappy', now()::TIMESTAMP)`, [final, pending]);
    });
    writeFileSync(path.join(dir, '.data-stray.parquet.tmp'), 'garbage');
    await first.stop!();

    const second = makeDuckdb(tmp.dir, {}, () => NOW);
    await second.start!();
    assert.deepEqual(readdirSync(dir), ['data.parquet']);
    const rows = await second.store.query(`SELECT message FROM opshub_logs_all`, { maxRows: 10, timeoutMs: 5000 });
    assert.deepEqual(rows.rows, [['x']]);
    const manifest = await second.store.query(`SELECT pending FROM _opshub_archive`, { maxRows: 10, timeoutMs: 5000 });
    assert.deepEqual(manifest.rows, [[null]]);
    await second.stop!();
  } finally {
    tmp.cleanup();
  }
});

test('archive_mode per-container: one Parquet file per table, day and container under host=<host>, merged with late rows; many hosts read as one with hive partitioning', async () => {
  const tmp = tempDir();
  const archive = path.join(tmp.dir, 'archive');
  let now = NOW;
  const out = makeDuckdb(tmp.dir, { archive_mode: 'per-container', retention: { enabled: false, active_days: 7, archive_days: 30, purge_days: 90, interval: '1h' } }, () => now);
  try {
    await out.start!();
    const events = history();
    await out.write(events, { positions: events.map(() => undefined), checkpoints: [] });
    await out.runRetention();
    const day = path.join(archive, 'opshub_logs', 'host=test', 'day=2026-03-20');
    assert.deepEqual(readdirSync(day).sort(), ['container=ollama', 'container=open-webui']);
    assert.deepEqual(readdirSync(path.join(day, 'container=ollama')), ['data_0.parquet']);
    assert.deepEqual(readdirSync(path.join(archive, 'opshub_metrics', 'host=test', 'day=2026-03-20')), ['container=_none'], 'host metrics have no container');
    assert.ok(!existsSync(path.join(archive, '.tmp')) || readdirSync(path.join(archive, '.tmp')).length === 0, 'no temporaries left');

    // A late line joins its day's container partition; nothing is lost or doubled.
    now += DAY;
    const late = makeLog({ timestamp: BigInt(Date.UTC(2026, 2, 20, 23, 0, 0)) * NS, source: 'ollama', labels: { container: 'ollama' }, message: 'late line', level: 'warning' });
    await out.write([late], { positions: [undefined], checkpoints: [] });
    await out.runRetention();
    const q = async (sql: string) => (await out.store.query(sql, { maxRows: 10_000, timeoutMs: 10_000 })).rows;
    assert.deepEqual(await q(`SELECT count(*) FROM opshub_logs_all WHERE CAST("timestamp" AS DATE) = DATE '2026-03-20'`), [[4]]);

    // Two hosts' archives side by side (as a central bucket would hold them) read as one, with host, day and container columns.
    const central = path.join(tmp.dir, 'central', 'opshub_logs');
    mkdirSync(central, { recursive: true });
    const { cpSync } = await import('node:fs');
    cpSync(path.join(archive, 'opshub_logs', 'host=test'), path.join(central, 'host=a'), { recursive: true });
    cpSync(path.join(archive, 'opshub_logs', 'host=test'), path.join(central, 'host=b'), { recursive: true });
    const rows = await parquetRows(
      `SELECT host, container, count(*) FROM read_parquet('${central}/host=*/day=*/container=*/*.parquet', hive_partitioning = true) WHERE day = '2026-03-20' GROUP BY ALL ORDER BY ALL`,
    );
    assert.deepEqual(rows, [['a', 'ollama', 3n], ['a', 'open-webui', 1n], ['b', 'ollama', 3n], ['b', 'open-webui', 1n]]);
  } finally {
    await out.stop!();
    tmp.cleanup();
  }
});
