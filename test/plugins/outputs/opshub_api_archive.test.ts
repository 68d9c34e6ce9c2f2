// The analytics and search over a period longer than outputs.duckdb's
// active_days: the days retention moved to Parquet count too (through the
// `_all` and `_archive` views); a short period reads the database alone.
// Real agent, real DuckDB and Parquet.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeLog, makeMetric, type Event } from '../../../core/events.ts';
import type { DuckdbOutput } from '../../../plugins/outputs/duckdb/index.ts';
import { DATABASE_ONLY, sourcesFor } from '../../../plugins/outputs/opshub_api/queries.ts';
import { startAgent } from '../../helpers.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const DAYS = 20;

/** One user, one model request, one error line and one GPU sample per day, 1 h before now minus d days. */
function history(now: number): Event[] {
  const events: Event[] = [];
  for (let d = 0; d <= DAYS; d++) {
    const ts = BigInt(now - d * DAY - HOUR) * 1_000_000n;
    events.push(
      makeLog({ timestamp: ts, source: 'open-webui', labels: { container: 'open-webui' }, message: `user u${d} asked`, attributes: { username: `u${d}`, model: 'llama3.1:8b' } }),
      makeLog({ timestamp: ts + 1n, source: 'ollama', labels: { container: 'ollama' }, level: 'error', message: `day ${d} failed` }),
      makeMetric('nvidia_smi', { utilization_gpu_percent: d }, { index: '0' }, { timestamp: ts }),
    );
  }
  return events;
}

test('analytics and search over a period longer than active_days count the days archived to Parquet; a short period reads the database alone', async () => {
  const t = await startAgent(`agent:
  self_metrics: false
  data_dir: \${OPSHUB_TEST_DATA}
  http:
    auth_token: archive-token
inputs:
  - type: session_webhook
outputs:
  - type: duckdb
    retention: { enabled: false, active_days: 7, archive_days: 30, purge_days: 90 }
  - type: opshub_api
    aggregate_cache: 0s
    live_cache: 0s
`);
  try {
    const duckdb = t.agent.pipeline.outputs.get('duckdb')!.plugin as DuckdbOutput;
    const now = Date.now();
    const events = history(now);
    await duckdb.write(events, { positions: events.map(() => undefined), checkpoints: [] });
    const get = async (route: string) => {
      const res = await fetch(`${t.url}${route}`, { headers: { authorization: 'Bearer archive-token' } });
      assert.equal(res.status, 200, route);
      return (await res.json()) as any;
    };
    const month = 30 * 24;
    const before = { users: await get(`/analytics/users?period=${month}`), errors: await get(`/errors/summary?period=${month}`) };
    assert.equal(before.users.total_users, DAYS + 1);

    const report = await duckdb.runRetention();
    assert.ok(report.archived.length > 0, 'days were archived');
    const inDatabase = await duckdb.store.query('SELECT count(DISTINCT username) FROM opshub_activity', { maxRows: 10, timeoutMs: 10_000 });
    assert.ok(Number(inDatabase.rows[0]![0]) <= 8, `the database holds the last days only (${inDatabase.rows[0]![0]} users)`);

    // The month still counts every day: the archived ones come from Parquet.
    const users = await get(`/analytics/users?period=${month}`);
    assert.equal(users.total_users, DAYS + 1);
    assert.equal(users.total_sessions, before.users.total_sessions);
    const errors = await get(`/errors/summary?period=${month}`);
    assert.equal(errors.total_errors, DAYS + 1);
    assert.deepEqual(errors.by_container, before.errors.by_container);
    const models = await get(`/analytics/models?period=${month}`);
    assert.equal(models.models[0].total_requests, DAYS + 1);
    const sessions = await get(`/users/sessions?hours=${month}`);
    assert.equal(new Set(sessions.map((s: any) => s.username)).size, DAYS + 1);
    const gpu = await get(`/metrics/performance/history?metric=gpu_utilization&hours=${month}&points=1000`);
    assert.equal(gpu.points.length, DAYS + 1);

    // Search reaches the archived days too: every day's error line, newest first, the old ones read from Parquet.
    const from = new Date(now - month * HOUR).toISOString();
    const search = async (extra: string) => get(`/search/logs?query=failed&start_time=${from}${extra}`);
    const all = await search('&limit=100');
    assert.equal(all.count, DAYS + 1);
    assert.deepEqual(all.results.map((r: any) => r.message), Array.from({ length: DAYS + 1 }, (_, d) => `day ${d} failed`));
    const oldest = all.results.at(-1);
    assert.equal(oldest.container, 'ollama');
    assert.equal(oldest.level, 'error');
    assert.equal(Date.parse(oldest.timestamp), now - DAYS * DAY - HOUR);
    // The newest few come from the database alone; the count still has every day (the archived ones now remembered).
    const newest = await search('&limit=2&level=error');
    assert.equal(newest.count, DAYS + 1);
    assert.deepEqual(newest.results.map((r: any) => r.message), ['day 0 failed', 'day 1 failed']);
    assert.equal((await search('&limit=100')).count, DAYS + 1);
    assert.equal((await search('&container=open-webui')).count, 0);
    assert.equal((await get(`/search/logs?query=asked&start_time=${from}&limit=100`)).count, DAYS + 1);

    // A late line for an archived day: counted from the database, then, once retention archives that day
    // again, from its new Parquet file (the day's remembered count is not reused).
    const late = makeLog({ timestamp: BigInt(now - 15 * DAY - 2 * HOUR) * 1_000_000n, source: 'ollama', labels: { container: 'ollama' }, level: 'error', message: 'late day 15 failed' });
    await duckdb.write([late], { positions: [undefined], checkpoints: [] });
    assert.equal((await search('&limit=100')).count, DAYS + 2);
    const again = await duckdb.runRetention();
    assert.ok(again.archived.length > 0, 'the day was archived again');
    const afterLate = await search('&limit=100');
    assert.equal(afterLate.count, DAYS + 2);
    assert.ok(afterLate.results.some((r: any) => r.message === 'late day 15 failed'));

    // A day back: only the database is read, and it has that day.
    assert.equal((await get('/analytics/users?period=24')).total_users, 1);
    const tables = await duckdb.store.read(async (conn) => ({ day: await sourcesFor(conn, now - DAY), month: await sourcesFor(conn, now - month * HOUR) }));
    assert.deepEqual(tables.day, DATABASE_ONLY);
    assert.deepEqual(tables.month, { logs: 'opshub_logs_all', activity: 'opshub_activity_all', metrics: 'opshub_metrics_all' });
  } finally {
    await t.stop();
  }
});
