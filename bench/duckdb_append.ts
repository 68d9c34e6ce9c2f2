// The floor under outputs.duckdb: a bare DuckDB Appender writing 10-column log
// rows (one transaction per 10,000-row batch, threads=1), with none of the
// store's own work (positions, activity rows, attribute JSON). Compare with
// bench/processing.ts to see what the store adds per line.
// Run: npx tsx bench/duckdb_append.ts   (ROWS=500000 BATCH=10000 to change)

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';

const ROWS = Number(process.env.ROWS ?? 500_000);
const BATCH = Number(process.env.BATCH ?? 10_000);
const dir = mkdtempSync(path.join(os.tmpdir(), 'opshub-append-'));
const instance = await DuckDBInstance.create(path.join(dir, 'bench.duckdb'), { threads: '1' });
const conn = await instance.connect();
await conn.run('CREATE TABLE t (ts BIGINT, source VARCHAR, level VARCHAR, message VARCHAR, container VARCHAR, container_id VARCHAR, image VARCHAR, stream VARCHAR, category VARCHAR, attributes JSON)');
const message = 'INFO:     172.18.0.1:51234 - "GET /api/v1/models HTTP/1.1" 200 OK user=alice model=llama3.1:8b request done in 12ms';

const cpu0 = process.cpuUsage();
const started = performance.now();
for (let done = 0; done < ROWS; done += BATCH) {
  await conn.run('BEGIN');
  const a = await conn.createAppender('t');
  for (let i = done; i < done + BATCH; i++) {
    a.appendBigInt(BigInt(i));
    a.appendVarchar('open-webui');
    a.appendVarchar('info');
    a.appendVarchar(message + i);
    a.appendVarchar('open-webui');
    a.appendVarchar('3f1c0d9e8b7a');
    a.appendVarchar('ghcr.io/open-webui/open-webui:main');
    a.appendVarchar('stdout');
    a.appendVarchar('api_request');
    a.appendVarchar('{"username":"alice","model":"llama3.1:8b"}');
    a.endRow();
  }
  a.closeSync();
  await conn.run('COMMIT');
}
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(`bare Appender, ${ROWS.toLocaleString('en')} rows in batches of ${BATCH.toLocaleString('en')}: ${Math.round(ROWS / seconds).toLocaleString('en')} rows/s, ${(((cpu.user + cpu.system) / 1e6 / ROWS) * 1e6).toFixed(1)} µs of CPU per row`);
conn.closeSync();
instance.closeSync();
rmSync(dir, { recursive: true, force: true });
