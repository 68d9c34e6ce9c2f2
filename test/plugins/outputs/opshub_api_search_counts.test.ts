// /search/logs keeps the counts of time that has passed (match_counts.ts):
// whatever the kept counts, `count` and `results` must equal a plain ILIKE
// over the window, also after a late line lands in a counted hour, a line is
// deleted there, and the window slides.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { LOGS_VIEW, TABLES_DDL } from '../../../plugins/outputs/duckdb/schema.ts';
import { MatchCounts, SearchCounts, type Counted } from '../../../plugins/outputs/opshub_api/match_counts.ts';
import { searchLogs, type SearchOptions } from '../../../plugins/outputs/opshub_api/queries.ts';
import { ChangeLog } from '../../../plugins/outputs/duckdb/changes.ts';
import { makeLog } from '../../../core/events.ts';
import { tempDir } from '../../helpers.ts';
import { makeDuckdb } from './duckdb-helpers.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const NOW = Date.UTC(2026, 10, 23, 12, 30, 7);
const ns = (ms: number) => BigInt(ms) * 1_000_000n;

async function store(): Promise<DuckDBConnection> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  for (const ddl of TABLES_DDL) await conn.run(ddl);
  await conn.run(`CREATE VIEW opshub_logs AS ${LOGS_VIEW}`);
  // Containers c0, c1, c2 are streams 1, 2, 3.
  await conn.run(`INSERT INTO opshub_log_streams SELECT k + 1, 'c' || k, 'c' || k, NULL, NULL, '{}', NULL FROM range(3) r(k)`);
  // A line every 7 s over 30 hours; every third an error, every fifth of them a TimeOut.
  await conn.run(`INSERT INTO opshub_log_lines
    SELECT make_timestamp(t // 1000), t, i % 3 + 1, CASE WHEN i % 3 = 0 THEN 'error' ELSE 'info' END, NULL,
           CASE WHEN i % 15 = 0 THEN 'db TimeOut after ' || i || ' ms' ELSE 'request ' || i || ' 100% done' END, '{}'
      FROM (SELECT i, ${ns(NOW - 30 * HOUR)} + i * 7000000000 AS t FROM range(${Math.floor((30 * HOUR) / 7000)}) r(i))`);
  return conn;
}

async function expected(conn: DuckDBConnection, o: SearchOptions): Promise<{ count: number; newest: string[] }> {
  const where = [`timestamp_ns >= ${ns(o.fromMs)}`, `timestamp_ns < ${ns(o.toMs)}`];
  if (o.level) where.push(`level = '${o.level}'`);
  if (o.container) where.push(`container_name = '${o.container}'`);
  const escaped = (o.query ?? '').replace(/[\\%_]/g, (c) => `\\${c}`).replaceAll("'", "''");
  if (o.query && o.regex) where.push(`regexp_matches(message, '${o.query.replaceAll("'", "''")}', 'i')`);
  else if (o.query) where.push(`message ILIKE '%${escaped}%' ESCAPE '\\'`);
  const count = await conn.runAndReadAll(`SELECT count(*) FROM opshub_logs WHERE ${where.join(' AND ')}`);
  const newest = await conn.runAndReadAll(`SELECT timestamp_ns FROM opshub_logs WHERE ${where.join(' AND ')} ORDER BY timestamp_ns DESC LIMIT ${o.limit}`);
  return { count: Number(count.getRows()[0]![0]), newest: newest.getRows().map((r) => String(r[0])) };
}

async function same(conn: DuckDBConnection, counts: MatchCounts, o: SearchOptions, nowMs: number, what: string, changes?: ChangeLog) {
  const got = await searchLogs(conn, o, counts, nowMs, changes);
  const want = await expected(conn, o);
  assert.equal(got.count, want.count, `${what}: count`);
  assert.deepEqual(got.rows.map((r) => String(r.ns)), want.newest, `${what}: results`);
}

for (const told of [false, true]) {
test(`kept counts give the same count and results as reading every line, across late lines, deletes and a sliding window (${told ? 'the store tells what changed' : 'checked by fingerprint'})`, async () => {
  const conn = await store();
  const counts = new MatchCounts();
  // What outputs.duckdb's store records as it writes (told), or nothing: the search then checks every kept span's lines itself.
  const changes = told ? new ChangeLog() : undefined;
  const changed = (from: bigint, to = from) => changes?.record(from, to);
  changed(0n, ns(NOW)); // the lines written above
  const searches: Array<Omit<SearchOptions, 'fromMs' | 'toMs'>> = [
    { query: 'timeout', regex: false, level: 'error', limit: 50 },
    { query: '100%', regex: false, limit: 7 },
    { query: 'TIMEOUT after 1', regex: false, container: 'c0', limit: 1000 },
    { query: 'time ?out', regex: true, limit: 20 },
    { regex: false, level: 'error', limit: 5 },
  ];
  const round = async (nowMs: number, what: string) => {
    // A day (kept per minute) and a longer window starting mid-hour (kept per hour beyond the day).
    for (const s of searches) {
      for (const span of [24 * HOUR, 29 * HOUR + 17 * MIN + 3_000]) {
        await same(conn, counts, { ...s, fromMs: nowMs - span, toMs: nowMs }, nowMs, `${what} ${JSON.stringify(s)} over ${span} ms`, changes);
      }
    }
  };
  await round(NOW, 'first');
  await round(NOW, 'again, from kept counts');
  assert.ok(counts.size >= searches.length);

  // Late TimeOut errors in two hours counted long ago, and a deleted one in another.
  for (const late of [ns(NOW - 10 * HOUR) + 1n, ns(NOW - 15 * HOUR) + 1n]) {
    await conn.run(`INSERT INTO opshub_log_lines VALUES (make_timestamp(${late / 1000n}), ${late}, 1, 'error', NULL, 'late TimeOut after 1 ms', '{}')`);
    changed(late);
  }
  const gone = await conn.runAndReadAll(`DELETE FROM opshub_log_lines WHERE rowid = (SELECT min(rowid) FROM opshub_log_lines WHERE message ILIKE '%timeout%' AND timestamp_ns > ${ns(NOW - 20 * HOUR)}) RETURNING timestamp_ns`);
  changed(gone.getRows()[0]![0] as bigint);
  await round(NOW, 'after a late line and a delete');

  // The window slides past an hour boundary while new lines arrive.
  await conn.run(`INSERT INTO opshub_log_lines
    SELECT make_timestamp(t // 1000), t, 1, 'error', NULL, 'fresh timeout ' || i, '{}'
      FROM (SELECT i, ${ns(NOW)} + i * 1000000000 AS t FROM range(3600) r(i))`);
  changed(ns(NOW), ns(NOW) + 3599n * 1_000_000_000n);
  await round(NOW + HOUR, 'an hour later');
  await round(NOW + HOUR + 13_000, '13 s later');

  // Windows on exact hour boundaries, shorter than a bucket, and a bad regex.
  const hourStart = Math.floor(NOW / HOUR) * HOUR;
  await same(conn, counts, { query: 'timeout', regex: false, level: 'error', limit: 50, fromMs: hourStart - 5 * HOUR, toMs: hourStart }, NOW, 'whole hours', changes);
  await same(conn, counts, { query: 'timeout', regex: false, level: 'error', limit: 50, fromMs: hourStart - 5 * HOUR, toMs: hourStart }, NOW, 'whole hours again', changes);
  await same(conn, counts, { query: 'request', regex: false, limit: 50, fromMs: NOW - 4000, toMs: NOW }, NOW, 'four seconds', changes);
  await assert.rejects(searchLogs(conn, { query: '(unclosed', regex: true, limit: 5, fromMs: NOW - HOUR, toMs: NOW }, counts, NOW, changes), /not a valid regular expression/);
});
}

test('told what changed, a search trusts the untouched kept counts without reading their lines, and recounts what was touched', async () => {
  const conn = await store();
  const counts = new MatchCounts();
  const changes = new ChangeLog(8);
  changes.record(0n, ns(NOW));
  const o: SearchOptions = { query: 'timeout', regex: false, level: 'error', limit: 5, fromMs: NOW - 24 * HOUR, toMs: NOW };
  const first = await searchLogs(conn, o, counts, NOW, changes);
  const late = ns(NOW - 10 * HOUR) + 1n;
  await conn.run(`INSERT INTO opshub_log_lines VALUES (make_timestamp(${late / 1000n}), ${late}, 1, 'error', NULL, 'late timeout', '{}')`);
  // Not told: the kept count of that hour stands (no line was read to check it).
  assert.equal((await searchLogs(conn, o, counts, NOW, changes)).count, first.count);
  changes.record(late, late);
  assert.equal((await searchLogs(conn, o, counts, NOW, changes)).count, first.count + 1);
  // More changes than the log keeps: the search checks by fingerprint and finds a line it was not told of.
  const later = ns(NOW - 5 * HOUR) + 1n;
  await conn.run(`INSERT INTO opshub_log_lines VALUES (make_timestamp(${later / 1000n}), ${later}, 1, 'error', NULL, 'another timeout', '{}')`);
  for (let i = 0; i < 20; i++) changes.record(ns(NOW) + BigInt(i), ns(NOW) + BigInt(i));
  assert.equal((await searchLogs(conn, o, counts, NOW, changes)).count, first.count + 2);
  conn.closeSync();
});

test('the change log answers what changed since a version while it remembers that far back', () => {
  const log = new ChangeLog(2);
  assert.equal(log.version, 0);
  assert.deepEqual(log.since(0), []);
  log.record(10n, 20n);
  log.record(30n, 40n);
  assert.equal(log.version, 2);
  assert.deepEqual(log.since(0), [[30n, 40n], [10n, 20n]]);
  assert.deepEqual(log.since(1), [[30n, 40n]]);
  assert.deepEqual(log.since(2), []);
  assert.equal(log.since(3), undefined, 'a version it never had');
  for (let i = 0; i < 10; i++) log.record(BigInt(i), BigInt(i));
  assert.equal(log.since(0), undefined, 'forgotten');
  assert.deepEqual(log.since(log.version - 1), [[9n, 9n]]);
  log.everything();
  assert.equal(log.since(log.version - 1)![0]![0] < -(10n ** 18n), true);
});

test('kept spans merge within a clock minute once no longer recent, and are replaced by newer counts of the same time', () => {
  const kept = new SearchCounts();
  const span = (fromS: number, toS: number, matches: number): Counted => ({ from: BigInt(fromS) * 1_000_000_000n, to: BigInt(toS) * 1_000_000_000n, lines: matches, tsSum: BigInt(matches), matches });
  const later = 10_000_000_000_000n;
  kept.add([span(3590, 3600, 1), span(3600, 3610, 2), span(3610, 3620, 3)], later);
  // 3590..3600 ends one minute, 3600..3620 starts the next: two spans.
  assert.deepEqual(
    kept.within(0n, 10_000_000_000_000n).map((s) => [Number(s.from / 1_000_000_000n), Number(s.to / 1_000_000_000n), s.matches]),
    [[3590, 3600, 1], [3600, 3620, 5]],
  );
  kept.add([span(3600, 3610, 7)], later);
  assert.deepEqual(
    kept.within(0n, 10_000_000_000_000n).map((s) => [Number(s.from / 1_000_000_000n), Number(s.to / 1_000_000_000n), s.matches]),
    [[3590, 3600, 1], [3600, 3610, 7]],
  );
  assert.deepEqual(kept.within(3_595_000_000_000n, 10_000_000_000_000n).length, 1);
  // Recent spans stay apart.
  const fresh = new SearchCounts();
  fresh.add([span(3600, 3601, 1), span(3601, 3602, 1), span(3602, 3603, 1)], 3_602_000_000_000n);
  assert.deepEqual(
    fresh.within(0n, 10_000_000_000_000n).map((s) => [Number(s.from / 1_000_000_000n), Number(s.to / 1_000_000_000n)]),
    [[3600, 3602], [3602, 3603]],
  );
});

test("through outputs.duckdb's own writes and change log: counts stay exact while batches with late lines land between searches", async () => {
  const tmp = tempDir();
  const out = makeDuckdb(tmp.dir);
  try {
    await out.start!();
    const store = out.store;
    const counts = new MatchCounts();
    let x = 7;
    const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const o = (nowMs: number): SearchOptions => ({ query: 'timeout', regex: false, level: 'error', limit: 10, fromMs: nowMs - 6 * HOUR, toMs: nowMs + 1 });
    let nowMs = NOW;
    for (let round = 0; round < 25; round++) {
      nowMs += 700; // the clock moves on, lines arrive
      const batch = Array.from({ length: 200 }, (_, i) => {
        const late = rnd() < 0.05 ? Math.floor(rnd() * 5 * HOUR) : Math.floor(rnd() * 1500);
        const ms = nowMs - late;
        return makeLog({ timestamp: ns(ms) + BigInt(i), source: 'c0', level: rnd() < 0.5 ? 'error' : 'info', message: rnd() < 0.3 ? `db TimeOut ${round}` : `ok ${round}`, labels: { container: 'c0' } });
      });
      await out.write(batch, { positions: batch.map(() => undefined), checkpoints: [] });
      const got = await store.read((conn) => searchLogs(conn, o(nowMs), counts, nowMs, store.logChanges));
      const want = await store.read((conn) => expected(conn, o(nowMs)));
      assert.equal(got.count, want.count, `round ${round}: count`);
      assert.deepEqual(got.rows.map((r) => String(r.ns)), want.newest, `round ${round}: results`);
    }
  } finally {
    await out.stop!();
    tmp.cleanup();
  }
});

test('kept spans older than a day merge per clock hour, newer ones per clock minute', () => {
  const S = 1_000_000_000n;
  const kept = new SearchCounts();
  const span = (fromS: number, toS: number): Counted => ({ from: BigInt(fromS) * S, to: BigInt(toS) * S, lines: 1, tsSum: 1n, matches: 1 });
  const minutes = 7200n * S; // per minute from 02:00 on
  // 01:00-02:00 in 30-minute spans, then 02:00-02:02 in 1-minute halves.
  kept.add([span(3600, 5400), span(5400, 7200), span(7200, 7230), span(7230, 7260), span(7260, 7290), span(7290, 7320)], 10_000n * S, minutes);
  assert.deepEqual(
    kept.within(0n, 10_000n * S).map((s) => [Number(s.from / S), Number(s.to / S), s.matches]),
    [[3600, 7200, 2], [7200, 7260, 2], [7260, 7320, 2]],
  );
});
