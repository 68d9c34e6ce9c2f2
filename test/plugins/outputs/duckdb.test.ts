import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeLog, makeMetric, type Event } from '../../../core/events.ts';
import { PermanentError, RetryableError, type Checkpoint, type WriteContext } from '../../../core/plugin.ts';
import type { LogRecord } from '../../../core/log.ts';
import type { DuckDBConnection } from '@duckdb/node-api';
import { createDuckdb } from '../../../plugins/outputs/duckdb/index.ts';
import { startAgent, tempDir, waitFor } from '../../helpers.ts';
import { DUCKDB_DEFAULTS, makeDuckdb, pluginContext, postQuery, queryFile, sampleInput } from './duckdb-helpers.ts';

const T = 1_773_212_400_123_456_789n; // 2026-03-11T07:00:00.123456789Z

function ctxFor(positions: Array<Checkpoint | undefined>): WriteContext {
  const latest = new Map<string, Checkpoint>();
  for (const p of positions) if (p && (latest.get(`${p.input}/${p.key}`)?.order ?? '') <= p.order) latest.set(`${p.input}/${p.key}`, p);
  return { positions, checkpoints: [...latest.values()] };
}

/** Puts `intercept` in front of the connection's run(); it gets each statement and the real run(). */
function interceptRun(conn: DuckDBConnection, intercept: (sql: string, run: () => Promise<unknown>) => Promise<unknown>): void {
  const run = conn.run.bind(conn) as (...a: unknown[]) => Promise<unknown>;
  conn.run = ((sql: string, ...rest: unknown[]) => intercept(sql, () => run(sql, ...rest))) as typeof conn.run;
}

/** Runs `fn` on a started output with the default staging, its log records in `logs`; stops it and removes its files after. */
async function withStagingDuckdb(fn: (out: ReturnType<typeof createDuckdb>, logs: LogRecord[]) => Promise<void>): Promise<void> {
  const tmp = tempDir();
  const logs: LogRecord[] = [];
  const out = createDuckdb({ ...DUCKDB_DEFAULTS, commit_events: 122880 }, pluginContext(tmp.dir, logs));
  try {
    await out.start!();
    await fn(out, logs);
  } finally {
    await out.stop!();
    tmp.cleanup();
  }
}

const pos = (n: number, key = 'c1'): Checkpoint => ({ input: 'docker_logs', key, value: { n }, order: String(n).padStart(6, '0') });

test('writes logs, metrics and user activity with exact nanosecond timestamps, and the views answer', async () => {
  const tmp = tempDir();
  const out = makeDuckdb(tmp.dir);
  try {
    await out.start!();
    const events: Event[] = [
      makeLog({ timestamp: T, source: 'open-webui', level: 'error', message: 'boom', labels: { container: 'open-webui' }, attributes: { category: 'api_request', container_id: 'abc123', big: 2n ** 60n } }),
      makeLog({ timestamp: T + 1n, source: 'open-webui', message: 'chat', labels: { container: 'open-webui' }, attributes: { username: 'alice', model: 'llama3.1:8b', session_id: 's1', duration_ms: 120 } }),
      makeLog({ timestamp: T + 2n, source: 'webhook', message: 'login', attributes: { category: 'session', username: 'bob', action: 'login', ip_address: '10.0.0.2', user_agent: 'Mozilla/5.0' } }),
      makeMetric('nvidia_smi', { utilization_gpu: 87.5, temperature_gpu: 71, name: 'H100', throttled: false, energy: 123456789n }, { index: '0', name: 'NVIDIA H100' }, { timestamp: T }),
      makeMetric('docker_container_cpu', { usage_percent: 15.2 }, { container_name: 'ollama' }, { timestamp: T }),
    ];
    await out.write(events, ctxFor(events.map(() => undefined)));
    assert.deepEqual({ ...out.stats }, { logs: 3, metrics: 6, activity: 2, skipped: 0, batches: 1 });

    const q = (sql: string) => out.store.query(sql, { maxRows: 100, timeoutMs: 10_000 }).then((r) => r.rows);
    assert.deepEqual(await q(`SELECT timestamp_ns, CAST("timestamp" AS VARCHAR), container_name, container_id, level FROM logs WHERE message = 'boom'`), [
      ['1773212400123456789', '2026-03-11 07:00:00.123456', 'open-webui', 'abc123', 'error'],
    ]);
    assert.deepEqual(await q(`SELECT username, model, action, session_id, ip_address, user_agent FROM user_sessions ORDER BY timestamp_ns`), [
      ['alice', 'llama3.1:8b', 'log', 's1', null, null],
      ['bob', null, 'login', null, '10.0.0.2', 'Mozilla/5.0'],
    ]);
    assert.deepEqual(await q(`SELECT metric_name, value, unit, value_text FROM performance_metrics WHERE metric_type = 'nvidia_smi' ORDER BY metric_name`), [
      ['energy', 123456789, null, null],
      ['name', null, null, 'H100'],
      ['temperature_gpu', 71, 'celsius', null],
      ['throttled', 0, null, null],
      ['utilization_gpu', 87.5, '%', null],
    ]);
    assert.deepEqual(await q(`SELECT container_name FROM performance_metrics WHERE metric_type = 'docker_container_cpu'`), [['ollama']]);
    assert.deepEqual(await q(`SELECT container, errors, lines FROM errors_per_container_day`), [['open-webui', 1, 2], ['webhook', 0, 1]]);
    assert.deepEqual(await q(`SELECT username, events FROM most_active_users ORDER BY username`), [['alice', 1], ['bob', 1]]);
    assert.deepEqual(await q(`SELECT model, requests, users, avg_duration_ms FROM model_usage`), [['llama3.1:8b', 1, 1, 120]]);
    assert.deepEqual(await q(`SELECT gpu, metric, avg FROM gpu_utilization_hourly WHERE metric = 'nvidia_smi_utilization_gpu'`), [['0', 'nvidia_smi_utilization_gpu', 87.5]]);
    assert.deepEqual(await q(`SELECT attributes.big FROM logs WHERE message = 'boom'`), [['1152921504606846976']]);
    assert.deepEqual(await q(`SELECT count(*) FROM logs WHERE "timestamp" > now() - INTERVAL 3650 DAY`), [[3]], 'timestamps compare with now()');
  } finally {
    await out.stop!();
    tmp.cleanup();
  }
});

test('skips events at or before the committed position of their (input, key): replays after a restart are not stored twice', async () => {
  const tmp = tempDir();
  try {
    const first = makeDuckdb(tmp.dir);
    await first.start!();
    const batch = (from: number, to: number, key = 'c1') => {
      const events: Event[] = [];
      const positions: Checkpoint[] = [];
      for (let n = from; n <= to; n++) {
        events.push(makeLog({ timestamp: T + BigInt(n), message: `${key} line ${n}` }));
        positions.push(pos(n, key));
      }
      return [events, ctxFor(positions)] as const;
    };
    await first.write(...batch(1, 10));
    await first.write(...batch(1, 5, 'c2'));
    await first.stop!();

    // A fresh instance (a restart) reads the committed positions back from the file.
    const second = makeDuckdb(tmp.dir);
    await second.start!();
    await second.write(...batch(6, 15)); // the input resumed from a lagging checkpoint: 6..10 are replays
    await second.write(...batch(3, 7, 'c2'));
    assert.equal(second.stats.skipped, 5 + 3);
    assert.equal(second.selfMetrics().replayed_events_skipped_total, 8);
    assert.equal(second.selfMetrics().log_rows_written_total, 5 + 2);
    assert.deepEqual(await second.store.positions(), [
      { input: 'docker_logs', key: 'c1', value: { n: 15 }, order: '000015' },
      { input: 'docker_logs', key: 'c2', value: { n: 7 }, order: '000007' },
    ]);
    await second.stop!();

    const file = path.join(tmp.dir, 'opshub.duckdb');
    assert.deepEqual(await queryFile(file, `SELECT count(*), count(DISTINCT message) FROM opshub_logs`), [[22n, 22n]]);
  } finally {
    tmp.cleanup();
  }
});

test('a batch DuckDB cannot take commits neither its rows nor its positions, and is dropped as permanent', async () => {
  const tmp = tempDir();
  const out = makeDuckdb(tmp.dir);
  try {
    await out.start!();
    const good = makeLog({ timestamp: T, message: 'good' });
    const bad = makeLog({ timestamp: 2n ** 70n, message: 'timestamp out of range' });
    await assert.rejects(out.write([good, bad], ctxFor([pos(1), pos(2)])), (err: unknown) => err instanceof PermanentError);
    const rows = await out.store.query('SELECT (SELECT count(*) FROM opshub_logs), (SELECT count(*) FROM _opshub_positions)', { maxRows: 1, timeoutMs: 5000 });
    assert.deepEqual(rows.rows, [[0, 0]]);
    await out.write([good], ctxFor([pos(1)]));
    assert.equal(out.stats.logs, 1, 'the store keeps working after a rejected batch');
  } finally {
    await out.stop!();
    tmp.cleanup();
  }
});

test('a fatal error as a transaction begins reopens the database, and the next batch lands', () =>
  withStagingDuckdb(async (out, logs) => {
    await out.write([makeLog({ timestamp: T, message: 'before' })], ctxFor([pos(1)]));
    // DuckDB invalidates a database after a fatal error (an I/O failure, say): every later statement fails until it is reopened.
    const conn = out.store.connection;
    interceptRun(conn, async (sql, run) => {
      if (sql === 'BEGIN TRANSACTION') throw new Error('FATAL Error: Failed: database has been invalidated because of a previous fatal error');
      return run();
    });
    await assert.rejects(out.stage!([makeLog({ timestamp: T + 1n, message: 'during' })], ctxFor([pos(2)])), (err: unknown) => err instanceof RetryableError);
    assert.ok(logs.some((r) => /reopening it/.test(r.message)), 'the reopen is logged');
    assert.notEqual(out.store.connection, conn, 'a new writer connection');
    // Staged again, as the runtime does: it lands once, beside what was committed before.
    await out.stage!([makeLog({ timestamp: T + 1n, message: 'during' })], ctxFor([pos(2)]));
    await out.commit!();
    const rows = await out.store.query('SELECT message FROM opshub_logs ORDER BY timestamp_ns', { maxRows: 10, timeoutMs: 5000 });
    assert.deepEqual(rows.rows, [['before'], ['during']]);
  }));

test('a COMMIT that DuckDB reports as failed but that landed counts as done: events without positions are not stored twice', () =>
  withStagingDuckdb(async (out, logs) => {
    const count = async () => (await out.store.query('SELECT count(*) FROM opshub_metrics', { maxRows: 1, timeoutMs: 5000 })).rows[0]![0];
    // What DuckDB 1.5 does when the automatic checkpoint after a commit fails: the commit is durable, the error comes back anyway.
    const conn = out.store.connection;
    interceptRun(conn, async (sql, run) => {
      if (sql !== 'COMMIT') return run();
      await run();
      throw new Error('FATAL Error: Failed to commit: the automatic checkpoint failed; reopen the database instance to recover');
    });
    await out.stage!([makeMetric('gpu', { util: 50 })], { positions: [undefined], checkpoints: [] });
    await out.commit!(); // resolves: the runtime delivers, and does not stage the batch again
    assert.equal(await count(), 1);
    assert.ok(logs.some((r) => /but it landed/.test(r.message)));

    // A COMMIT that did fail still fails, and nothing of it is stored.
    const conn2 = out.store.connection;
    assert.notEqual(conn2, conn, 'reopened after the fatal error');
    let failCommit = true;
    interceptRun(conn2, async (sql, run) => {
      if (sql === 'COMMIT' && failCommit) throw new Error('TransactionContext Error: Failed to commit: disk I/O error');
      return run();
    });
    await out.stage!([makeMetric('gpu', { util: 60 })], { positions: [undefined], checkpoints: [] });
    await assert.rejects(out.commit!(), (err: unknown) => err instanceof RetryableError);
    assert.equal(await count(), 1);
    // Staged again, as the runtime does: it lands once.
    failCommit = false;
    await out.stage!([makeMetric('gpu', { util: 60 })], { positions: [undefined], checkpoints: [] });
    await out.commit!();
    assert.equal(await count(), 2);
  }));

test('staged batches share one transaction: invisible to readers until the commit; a replay within it is skipped; a failed batch takes the whole transaction with it', async () => {
  const tmp = tempDir();
  const out = makeDuckdb(tmp.dir, { commit_events: 122880 });
  try {
    await out.start!();
    const lines = (from: number, to: number) => {
      const events: Event[] = [];
      const positions: Checkpoint[] = [];
      for (let n = from; n <= to; n++) {
        events.push(makeLog({ timestamp: T + BigInt(n), message: `line ${n}` }));
        positions.push(pos(n));
      }
      return [events, ctxFor(positions)] as const;
    };
    const count = async () => (await out.store.query('SELECT (SELECT count(*) FROM opshub_logs), (SELECT count(*) FROM _opshub_positions)', { maxRows: 1, timeoutMs: 5000 })).rows[0];
    await out.stage!(...lines(1, 10));
    await out.stage!(...lines(6, 20)); // 6..10 again: staged already, skipped
    assert.equal(out.store.stagedRows, 20);
    assert.deepEqual(await count(), [0, 0], 'nothing visible before the commit');
    await out.commit!();
    assert.deepEqual(await count(), [20, 2]);
    assert.equal(out.stats.skipped, 5);

    // A batch DuckDB refuses rolls back everything staged with it; the commit then has nothing to make durable.
    await out.stage!(...lines(21, 25));
    const bad = makeLog({ timestamp: 2n ** 70n, message: 'timestamp out of range' });
    await assert.rejects(out.stage!([bad], ctxFor([pos(26)])), (err: unknown) => err instanceof PermanentError);
    await out.commit!();
    assert.deepEqual(await count(), [20, 2]);
    // Staged again (as the runtime does), it lands once.
    await out.stage!(...lines(21, 25));
    // Work that needs the writer (a CHECKPOINT, retention) commits what is staged first (and the checkpoint keeps only the latest position).
    assert.equal(out.committedAlone!(), false);
    await out.store.checkpoint();
    assert.deepEqual(await count(), [25, 1]);
    assert.equal(out.committedAlone!(), true, 'the runtime is told, once, so it does not stage those batches again');
    assert.equal(out.committedAlone!(), false);
    await out.commit!();
    assert.deepEqual(await count(), [25, 1]);
    assert.deepEqual(await out.store.positions(), [{ input: 'docker_logs', key: 'c1', value: { n: 25 }, order: '000025' }]);
  } finally {
    await out.stop!();
    tmp.cleanup();
  }
});

test('pipeline: container lines → classifier → extraction → json_parse → DuckDB; SQL through the query route finds levels, users and models', async () => {
  const input = sampleInput();
  const t = await startAgent(
    `
agent:
  self_metrics: false
  data_dir: \${OPSHUB_TEST_DATA}
  http:
    auth_token: s3cret
inputs:
  - type: sample_lines
processors:
  - type: regex_classifier
  - type: user_extraction
  - type: json_parse
outputs:
  - type: duckdb
    flush_interval: 50ms
    memory_limit: 256MiB
    threads: 1
    retention:
      enabled: false
`,
    { plugins: [input.definition] },
  );
  try {
    await waitFor(() => input.control.total > 0 && input.control.delivered === input.control.total, 20_000, 'every line committed');
    const q = async (sql: string) => {
      const r = await postQuery(t.url, sql, 's3cret');
      assert.equal(r.status, 200, r.body.message);
      return r.body.rows;
    };
    assert.deepEqual(await q(`SELECT count(*) FROM logs`), [[input.control.total]]);
    const levels = Object.fromEntries((await q(`SELECT level, count(*) FROM logs GROUP BY level`)) as Array<[string, number]>);
    for (const level of ['debug', 'info', 'success', 'warning', 'error', 'critical']) assert.ok(levels[level]! > 0, `some ${level} lines: ${JSON.stringify(levels)}`);
    assert.deepEqual(await q(`SELECT level FROM logs WHERE message LIKE '%"POST /api/chat/completions HTTP/1.1" 500%'`), [['error']]);
    assert.deepEqual(await q(`SELECT errors FROM errors_per_container_day WHERE container = 'open-webui'`), [[3]]);

    const users = ((await q(`SELECT DISTINCT username FROM user_sessions ORDER BY 1`)) as string[][]).map((r) => r[0]);
    for (const u of ['alice', 'alice@example.com', 'bob@example.com', 'carol', 'dave', 'heidi', 'mallory', 'openwebui']) assert.ok(users.includes(u), `user ${u} in ${users.join(', ')}`);
    assert.deepEqual(await q(`SELECT model, requests, users FROM model_usage ORDER BY model`), [
      ['llama3.1:8b', 1, 0],
      ['mistral:7b', 2, 2],
    ]);
    // json_parse lifted the JSON lines: message, level, exact timestamp, attributes.
    assert.deepEqual(await q(`SELECT message, level, timestamp_ns, attributes->>'logger' FROM logs WHERE container_name = 'json-app' ORDER BY timestamp_ns`), [
      ['chat completed', 'info', '1773211800123456000', 'api'],
      ['upstream timeout', 'error', '1773211801500000000', 'api'],
    ]);
    assert.deepEqual(await q(`SELECT category, count(*) FROM logs WHERE container_name = 'ollama' AND category IN ('api_request', 'gpu', 'model_load') GROUP BY ALL ORDER BY 1`), [
      ['api_request', 4],
      ['gpu', 3],
      ['model_load', 3],
    ]);
    assert.deepEqual(await q(`SELECT count(DISTINCT (input, "key")) FROM _opshub_positions`), [[6]]);
  } finally {
    await t.stop();
  }
});

test('the query route accepts only one read statement, needs the agent token, and caps rows', async () => {
  const t = await startAgent(`
agent:
  self_metrics: false
  data_dir: \${OPSHUB_TEST_DATA}
  http:
    auth_token: s3cret
outputs:
  - type: duckdb
    memory_limit: 256MiB
    threads: 1
    retention:
      enabled: false
    query:
      max_rows: 5
`);
  try {
    assert.equal((await postQuery(t.url, 'SELECT 1', 'wrong')).status, 401);
    assert.equal((await postQuery(t.url, 'SELECT 1')).status, 401);
    const ok = await postQuery(t.url, 'SELECT range AS n FROM range(100)', 's3cret');
    assert.equal(ok.status, 200);
    assert.equal(ok.body.rows.length, 5);
    assert.equal(ok.body.truncated, true);
    for (const sql of ['SHOW TABLES', 'DESCRIBE opshub_logs', "PRAGMA table_info('opshub_logs')", 'WITH x AS (SELECT 1 AS a) SELECT * FROM x', 'EXPLAIN SELECT 1', 'SUMMARIZE opshub_logs', 'FROM logs LIMIT 1']) {
      const r = await postQuery(t.url, sql, 's3cret');
      assert.equal(r.status, 200, `${sql}: ${r.body.message}`);
    }
    const rejected: Array<[string, RegExp]> = [
      ['DELETE FROM opshub_log_lines', /only read statements/],
      // opshub_logs is a view: DuckDB's binder refuses the write before its type is known; refused all the same.
      ['DELETE FROM opshub_logs', /only read statements/],
      ['DROP TABLE opshub_logs', /only read statements/],
      ["COPY opshub_logs TO '/tmp/x.csv'", /only read statements/],
      ['CHECKPOINT', /only read statements/],
      ["ATTACH '/tmp/other.db'", /only read statements/],
      ['SET threads = 1', /only read statements/],
      ['SELECT 1; DELETE FROM opshub_logs', /exactly one statement/],
      ['EXPLAIN ANALYZE DELETE FROM opshub_log_lines', /read-only|read only/i],
      ['INSERT INTO opshub_logs SELECT * FROM opshub_logs', /only read statements/],
      ['SELEC 1', /syntax/i],
      ['', /empty/],
    ];
    for (const [sql, message] of rejected) {
      const r = await postQuery(t.url, sql, 's3cret');
      assert.equal(r.status, 400, sql);
      assert.match(r.body.message ?? '', message, sql);
    }
  } finally {
    await t.stop();
  }
});

test('a hot reload that changes the output shares the open file: no lock error, nothing lost', async () => {
  const input = sampleInput();
  const yaml = (interval: string) => `
agent:
  self_metrics: false
  data_dir: \${OPSHUB_TEST_DATA}
inputs:
  - type: sample_lines
outputs:
  - type: duckdb
    flush_interval: 50ms
    memory_limit: 256MiB
    threads: 1
    retention:
      enabled: false
    checkpoint_interval: ${interval}
`;
  const t = await startAgent(yaml('5m'), { plugins: [input.definition] });
  try {
    await waitFor(() => input.control.total > 0 && input.control.delivered === input.control.total, 20_000, 'first lines committed');
    writeFileSync(t.file, yaml('10m'));
    assert.equal(await t.agent.reload(), true);
    assert.ok(!t.logs.some((l) => l.level === 'error'), t.logs.map((l) => l.message).join('\n'));
    const r = await postQuery(t.url, 'SELECT count(*) FROM opshub_logs');
    assert.equal(r.status, 200, r.body.message);
    assert.deepEqual(r.body.rows, [[input.control.total]]);
  } finally {
    await t.stop();
  }
});

test('the store tells readers where in time its log lines changed: each batch, a spread-out backlog by seconds, anything else as everything', async () => {
  const tmp = tempDir();
  const out = makeDuckdb(tmp.dir);
  try {
    await out.start!();
    const changes = out.store.logChanges;
    const S = 1_000_000_000n;
    const line = (ts: bigint) => makeLog({ timestamp: ts, source: 'c', message: 'x' });
    let v = changes.version;
    await out.write([line(T), line(T + 5n * S)], ctxFor([undefined, undefined]));
    assert.deepEqual(changes.since(v), [[T, T + 5n * S]]);
    v = changes.version;
    // A backlog an hour old written beside new lines: only the seconds they fill.
    const old = T - 3600n * S;
    await out.write([line(old), line(old + S), line(T + 9n * S)], ctxFor([undefined, undefined, undefined]));
    const second = (ts: bigint) => (ts / S) * S;
    assert.deepEqual(
      changes.since(v)!.sort((a, b) => (a[0] < b[0] ? -1 : 1)),
      [[second(old), second(old) + 2n * S - 1n], [second(T + 9n * S), second(T + 9n * S) + S - 1n]],
    );
    v = changes.version;
    // Lines scattered over 100 separate seconds: one range, not 100 entries crowding the log.
    const scattered = Array.from({ length: 100 }, (_, i) => line(old + BigInt(i) * 3n * S));
    await out.write(scattered, ctxFor(scattered.map(() => undefined)));
    assert.deepEqual(changes.since(v), [[old, old + 297n * S]]);
    v = changes.version;
    await out.write([makeMetric('m', { x: 1 }, {}, { timestamp: T })], ctxFor([undefined]));
    assert.deepEqual(changes.since(v), [], 'metrics leave the log lines alone');
    await out.runRetention();
    assert.equal(changes.since(v)!.length, 1);
    assert.ok(changes.since(v)![0]![0] < 0n && changes.since(v)![0]![1] > T, 'retention may have removed anything');
  } finally {
    await out.stop!();
    tmp.cleanup();
  }
});
