// Log lines name their stream (schema 2): what a container's lines share is
// stored once in opshub_log_streams, and opshub_logs joins it back. Every
// line must find its stream — after a rolled-back batch, across a restart,
// and in a file migrated from schema 1, where opshub_logs was a table.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { makeLog, type LogEvent } from '../../../core/events.ts';
import { PermanentError, type Checkpoint, type WriteContext } from '../../../core/plugin.ts';
import { tempDir } from '../../helpers.ts';
import type { LogRecord } from '../../../core/log.ts';
import { createDuckdb } from '../../../plugins/outputs/duckdb/index.ts';
import { Streams } from '../../../plugins/outputs/duckdb/streams.ts';
import { DUCKDB_DEFAULTS, makeDuckdb, pluginContext, queryFile } from './duckdb-helpers.ts';

const T = 1_773_212_400_123_456_789n; // 2026-03-11T07:00:00.123456789Z

const ctx = (events: LogEvent[]): WriteContext => ({ positions: events.map(() => undefined as Checkpoint | undefined), checkpoints: [] });

/** A line as docker_logs makes it: the container's name and stream as labels, its id and image as attributes. */
function line(container: string, stream: 'stdout' | 'stderr', message: string, at: bigint, attrs: Record<string, unknown> = {}): LogEvent {
  return makeLog({
    timestamp: at,
    source: container,
    message,
    labels: { container, stream },
    attributes: { container_id: `${container}-id`, image: `example/${container}:1`, ...attrs },
  });
}

test('each distinct source, container, image and label set is stored once; the view joins every line back, across a rolled-back batch and a restart', async () => {
  const tmp = tempDir();
  const file = path.join(tmp.dir, 'opshub.duckdb');
  try {
    let out = makeDuckdb(tmp.dir, { commit_events: 0 });
    await out.start!();
    const first = [
      line('webui', 'stdout', 'GET /api/models 200', T, { username: 'alice' }),
      line('ollama', 'stdout', 'loaded model llama3', T + 1n),
      line('webui', 'stderr', 'warning: slow request', T + 2n),
      line('webui', 'stdout', 'GET /api/chat 200', T + 3n),
    ];
    await out.write(first, ctx(first));
    // A batch DuckDB refuses: its new stream (postgres) goes with it, and comes back with the next batch that needs it.
    const refused = [line('postgres', 'stdout', 'ready to accept connections', T + 4n), makeLog({ timestamp: 2n ** 70n, message: 'out of range' })];
    await assert.rejects(out.write(refused, ctx(refused)), (err: unknown) => err instanceof PermanentError);
    const again = [line('postgres', 'stdout', 'ready to accept connections', T + 5n)];
    await out.write(again, ctx(again));
    await out.stop!();

    // A restart: known streams keep their ids, a new label set gets a new one.
    out = makeDuckdb(tmp.dir, { commit_events: 0 });
    await out.start!();
    const later = [line('webui', 'stdout', 'GET /health 200', T + 6n), line('webui', 'stdout', 'GET /health 200', T + 7n, { image: 'example/webui:2' })];
    await out.write(later, ctx(later));
    await out.stop!();

    assert.deepEqual(await queryFile(file, `SELECT count(*) FROM opshub_log_lines`), [[7n]]);
    assert.deepEqual(await queryFile(file, `SELECT count(*) FROM opshub_logs`), [[7n]], 'every line finds its stream');
    assert.deepEqual(
      await queryFile(file, `SELECT stream_id, source, container_name, container_id, image, labels::VARCHAR, first_seen::VARCHAR FROM opshub_log_streams ORDER BY stream_id`),
      [
        [1n, 'webui', 'webui', 'webui-id', 'example/webui:1', '{"container":"webui","stream":"stdout"}', '2026-03-11 07:00:00.123456'],
        [2n, 'ollama', 'ollama', 'ollama-id', 'example/ollama:1', '{"container":"ollama","stream":"stdout"}', '2026-03-11 07:00:00.123456'],
        [3n, 'webui', 'webui', 'webui-id', 'example/webui:1', '{"container":"webui","stream":"stderr"}', '2026-03-11 07:00:00.123456'],
        [4n, 'postgres', 'postgres', 'postgres-id', 'example/postgres:1', '{"container":"postgres","stream":"stdout"}', '2026-03-11 07:00:00.123456'],
        [5n, 'webui', 'webui', 'webui-id', 'example/webui:2', '{"container":"webui","stream":"stdout"}', '2026-03-11 07:00:00.123456'],
      ],
    );
    assert.deepEqual(
      await queryFile(file, `SELECT timestamp_ns, source, container_name, container_id, image, labels->>'stream', message, attributes::VARCHAR FROM opshub_logs ORDER BY timestamp_ns LIMIT 3`),
      [
        [T, 'webui', 'webui', 'webui-id', 'example/webui:1', 'stdout', 'GET /api/models 200', '{"username":"alice"}'],
        [T + 1n, 'ollama', 'ollama', 'ollama-id', 'example/ollama:1', 'stdout', 'loaded model llama3', '{}'],
        [T + 2n, 'webui', 'webui', 'webui-id', 'example/webui:1', 'stderr', 'warning: slow request', '{}'],
      ],
    );
    assert.deepEqual(await queryFile(file, `SELECT DISTINCT stream_id FROM opshub_log_lines WHERE message LIKE 'GET /health%' ORDER BY 1`), [[1n], [5n]]);
  } finally {
    tmp.cleanup();
  }
});

/** opshub_activity as schema 1 created it: with a copy of the line's message. */
const V1_ACTIVITY = `CREATE TABLE opshub_activity (
  "timestamp" TIMESTAMP NOT NULL, timestamp_ns BIGINT NOT NULL, username VARCHAR, user_id VARCHAR, email VARCHAR, model VARCHAR, action VARCHAR,
  session_id VARCHAR, ip_address VARCHAR, user_agent VARCHAR, source VARCHAR, container_name VARCHAR, level VARCHAR, message VARCHAR, metadata JSON)`;

/** opshub_logs as schema 1 created it: one table. */
const V1_LOGS = `CREATE TABLE opshub_logs (
  "timestamp" TIMESTAMP NOT NULL, timestamp_ns BIGINT NOT NULL, source VARCHAR, container_name VARCHAR, container_id VARCHAR,
  level VARCHAR, category VARCHAR, message VARCHAR, labels JSON, attributes JSON)`;

test('a schema 1 file (opshub_logs a table) is migrated at start: the same rows through the view, the image out of the attributes, new lines joining the migrated streams, activity without its message copy', async () => {
  const tmp = tempDir();
  const file = path.join(tmp.dir, 'opshub.duckdb');
  try {
    const db = await DuckDBInstance.create(file);
    const conn = await db.connect();
    await conn.run(V1_LOGS);
    await conn.run(`CREATE VIEW logs AS SELECT * FROM opshub_logs`);
    await conn.run(V1_ACTIVITY);
    await conn.run(`INSERT INTO opshub_activity VALUES (make_timestamp(${T / 1000n}), ${T}, 'alice', NULL, NULL, 'llama3', 'request', NULL, NULL, NULL, 'webui', 'webui', 'info', 'GET / 200', '{"username":"alice"}')`);
    await conn.run(`INSERT INTO opshub_logs VALUES
      (make_timestamp(${T / 1000n}), ${T}, 'webui', 'webui', 'webui-id', 'info', 'api_request', 'GET / 200', '{"container":"webui","stream":"stdout"}', '{"image":"example/webui:1","username":"alice"}'),
      (make_timestamp(${(T + 1n) / 1000n}), ${T + 1n}, 'webui', 'webui', 'webui-id', 'error', NULL, 'boom', '{"container":"webui","stream":"stderr"}', '{"image":"example/webui:1"}'),
      (make_timestamp(${(T + 2n) / 1000n}), ${T + 2n}, 'webui', 'webui', 'webui-id', 'info', NULL, 'GET /a 200', '{"container":"webui","stream":"stdout"}', '{"image":"example/webui:1"}'),
      (make_timestamp(${(T + 3n) / 1000n}), ${T + 3n}, 'host', NULL, NULL, 'info', NULL, 'odd image', '{}', '{"image":42}')`);
    conn.closeSync();
    db.closeSync();

    const logs: LogRecord[] = [];
    const out = createDuckdb({ ...DUCKDB_DEFAULTS, commit_events: 0 }, pluginContext(tmp.dir, logs));
    await out.start!();
    assert.ok(logs.some((r) => r.level === 'info' && /migrating 4 log lines to schema 2/.test(r.message)), 'the migration is announced');
    assert.ok(logs.some((r) => r.level === 'info' && /migrated 4 log lines in [\d.]+ s/.test(r.message)));
    const more = [line('webui', 'stdout', 'GET /b 200', T + 4n)];
    await out.write(more, ctx(more));
    await out.stop!();

    assert.deepEqual(await queryFile(file, `SELECT table_type FROM information_schema.tables WHERE table_name = 'opshub_logs'`), [['VIEW']]);
    assert.deepEqual(
      await queryFile(file, `SELECT timestamp_ns, source, container_name, container_id, image, level, category, message, labels::VARCHAR, attributes::VARCHAR FROM opshub_logs ORDER BY timestamp_ns`),
      [
        [T, 'webui', 'webui', 'webui-id', 'example/webui:1', 'info', 'api_request', 'GET / 200', '{"container":"webui","stream":"stdout"}', '{"username":"alice"}'],
        [T + 1n, 'webui', 'webui', 'webui-id', 'example/webui:1', 'error', null, 'boom', '{"container":"webui","stream":"stderr"}', '{}'],
        [T + 2n, 'webui', 'webui', 'webui-id', 'example/webui:1', 'info', null, 'GET /a 200', '{"container":"webui","stream":"stdout"}', '{}'],
        [T + 3n, 'host', null, null, null, 'info', null, 'odd image', '{}', '{"image":42}'],
        [T + 4n, 'webui', 'webui', 'webui-id', 'example/webui:1', 'info', null, 'GET /b 200', '{"container":"webui","stream":"stdout"}', '{}'],
      ],
    );
    assert.deepEqual(await queryFile(file, `SELECT count(*) FROM opshub_log_streams`), [[3n]], 'the new line joined its migrated stream');
    assert.deepEqual(await queryFile(file, `SELECT value FROM _opshub_meta WHERE "key" = 'schema_version'`), [['2']]);
    assert.deepEqual(await queryFile(file, `SELECT count(*) FROM logs`), [[5n]], 'the old view is replaced by the current one');
    assert.deepEqual(
      await queryFile(file, `SELECT username, model, container_name, metadata::VARCHAR FROM opshub_activity`),
      [['alice', 'llama3', 'webui', '{"username":"alice"}']],
      'activity rows keep all but the copy of the message',
    );
    assert.deepEqual(await queryFile(file, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'opshub_activity' AND column_name = 'message'`), [[0n]]);
  } finally {
    tmp.cleanup();
  }
});

test('a second outputs.duckdb on a file already written in this agent is refused (each would number streams on its own); free again once the first stops', async () => {
  const tmp = tempDir();
  try {
    const first = makeDuckdb(tmp.dir);
    await first.start!();
    const second = makeDuckdb(tmp.dir);
    await assert.rejects(second.start!(), /already written by another outputs\.duckdb of this agent; give each its own path/);
    await second.stop!();
    await first.stop!();
    const third = makeDuckdb(tmp.dir);
    await third.start!();
    await third.stop!();
  } finally {
    tmp.cleanup();
  }
});

test('labels that change line by line do not grow the stream memory without bound: past its size it starts again, and a stream seen again gets a new id', () => {
  const streams = new Streams((labels) => JSON.stringify(labels), 4);
  const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => streams.idOf(makeLog({ timestamp: T, source: 'api', message: 'x', labels: { request: `r${from + i}` } })));
  assert.deepEqual(ids(0, 4), [1n, 2n, 3n, 4n]);
  assert.deepEqual(ids(0, 4), [1n, 2n, 3n, 4n], 'remembered');
  assert.deepEqual(ids(4, 13), [5n, 6n, 7n, 8n, 9n, 10n, 11n, 12n, 13n]);
  // r0 is neither among the last 8 streams compared field by field nor in the key map (emptied twice since).
  assert.deepEqual(ids(0, 1), [14n]);
});
