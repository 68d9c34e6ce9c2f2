// Schema 1 → 2. A file written before log lines named their stream holds
// opshub_logs as a table: its distinct (source, container name, id, image,
// labels) become opshub_log_streams, its rows opshub_log_lines (the image
// leaves the attributes JSON, as the store writes it now), and the table
// makes way for the view of that name — in one transaction, so a crash
// leaves the file as it was, to be migrated at the next start. And activity
// rows lose the copy of their line's message (the line is in opshub_logs).

import type { DuckDBConnection } from '@duckdb/node-api';

/** information_schema rows of the open database's own schema. */
const HERE = 'table_schema = current_schema() AND table_catalog = current_database()';

/** The image attribute, when a string: what schema 2 keeps in the stream. */
const IMAGE = `CASE WHEN json_type(attributes, '$.image') = 'VARCHAR' THEN attributes->>'$.image' END`;

/**
 * Migrates a schema 1 file (opshub_logs a table); does nothing otherwise.
 * Run after the tables are created. `say` tells what happens: a large file
 * takes a while (~5 s per million lines on the VM of docs/benchmarks.md).
 */
export async function migrateToStreams(conn: DuckDBConnection, say: (message: string) => void): Promise<boolean> {
  const kind = await conn.runAndReadAll(
    `SELECT table_type FROM information_schema.tables WHERE table_name = 'opshub_logs' AND ${HERE}`,
  );
  if (kind.getRows()[0]?.[0] !== 'BASE TABLE') return false;
  const started = performance.now();
  const rows = Number((await conn.runAndReadAll('SELECT count(*) FROM opshub_logs')).getRows()[0]![0]);
  say(`migrating ${rows} log lines to schema 2 (opshub_logs becomes a view over opshub_log_lines and opshub_log_streams); this happens once`);
  await conn.run('BEGIN TRANSACTION');
  try {
    await conn.run(`CREATE TEMPORARY TABLE _opshub_v1_lines AS SELECT *, ${IMAGE} AS _image FROM opshub_logs`);
    await conn.run(
      `INSERT INTO opshub_log_streams
       SELECT (SELECT coalesce(max(stream_id), 0) FROM opshub_log_streams) + row_number() OVER (ORDER BY first_seen, source, container_name, container_id, image, labels::VARCHAR),
              source, container_name, container_id, image, labels, first_seen
         FROM (SELECT source, container_name, container_id, _image AS image, labels, min("timestamp") AS first_seen FROM _opshub_v1_lines GROUP BY ALL)`,
    );
    await conn.run(
      `INSERT INTO opshub_log_lines
       SELECT l."timestamp", l.timestamp_ns, s.stream_id, l.level, l.category, l.message,
              CASE WHEN l._image IS NULL THEN l.attributes ELSE json_merge_patch(l.attributes, '{"image":null}') END
         FROM _opshub_v1_lines l JOIN opshub_log_streams s
           ON s.source IS NOT DISTINCT FROM l.source AND s.container_name IS NOT DISTINCT FROM l.container_name
          AND s.container_id IS NOT DISTINCT FROM l.container_id AND s.image IS NOT DISTINCT FROM l._image
          AND s.labels::VARCHAR IS NOT DISTINCT FROM l.labels::VARCHAR
        ORDER BY l.timestamp_ns`,
    );
    await conn.run('DROP TABLE opshub_logs');
    await conn.run('DROP TABLE _opshub_v1_lines');
    await conn.run('COMMIT');
  } catch (err) {
    await conn.run('ROLLBACK').catch(() => undefined);
    throw err;
  }
  say(`migrated ${rows} log lines in ${((performance.now() - started) / 1000).toFixed(1)} s (the old table's space is reused by new rows; the file does not shrink)`);
  return true;
}

/** Drops opshub_activity.message, a copy of the log line's (schema 1); does nothing once gone. */
export async function dropActivityMessage(conn: DuckDBConnection): Promise<boolean> {
  const found = await conn.runAndReadAll(
    `SELECT 1 FROM information_schema.columns WHERE table_name = 'opshub_activity' AND column_name = 'message' AND ${HERE}`,
  );
  if (found.getRows().length === 0) return false;
  await conn.run('ALTER TABLE opshub_activity DROP COLUMN message');
  return true;
}
