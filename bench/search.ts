// /search/logs' counting on a store with a steady history: LINES_PER_S
// lines a second over the last 90 minutes (generated with SQL range(), in
// memory), searched every 100 ms over the last 80 minutes — a window that
// starts mid-hour — as a polling dashboard does, with the store's change log
// telling what changed (nothing, here, after the first run). Prints the
// first (uncounted) search and the p50/p90 of the repeats, across all
// levels and with level=error.
// Run: npx tsx bench/search.ts   (LINES_PER_S=1000 REPEATS=30 to change)

import os from 'node:os';
import { DuckDBInstance } from '@duckdb/node-api';
import { ChangeLog } from '../plugins/outputs/duckdb/changes.ts';
import { LOGS_VIEW, TABLES_DDL } from '../plugins/outputs/duckdb/schema.ts';
import { MatchCounts } from '../plugins/outputs/opshub_api/match_counts.ts';
import { searchLogs } from '../plugins/outputs/opshub_api/queries.ts';

const LINES_PER_S = Number(process.env.LINES_PER_S ?? 1000);
const REPEATS = Number(process.env.REPEATS ?? 30);
const HISTORY_S = 5400;

const db = await DuckDBInstance.create(':memory:', { threads: '1' });
const writer = await db.connect();
const reader = await db.connect();
for (const ddl of TABLES_DDL) await writer.run(ddl);
await writer.run(`CREATE VIEW opshub_logs AS ${LOGS_VIEW}`);
await writer.run(`INSERT INTO opshub_log_streams VALUES (1, 'api', 'api', NULL, NULL, '{}', NULL)`);
const nowNs = BigInt(Date.now()) * 1_000_000n;
const lines = LINES_PER_S * HISTORY_S;
const spanNs = BigInt(HISTORY_S) * 1_000_000_000n;
await writer.run(`INSERT INTO opshub_log_lines
  SELECT make_timestamp(t // 1000), t, 1, CASE WHEN i % 20 = 0 THEN 'error' ELSE 'info' END, NULL,
         CASE WHEN i % 60 = 0 THEN 'db timeout after ' || (i % 5000) || ' ms' ELSE 'request ' || i || ' done' END, '{}'
    FROM (SELECT i, ${nowNs - spanNs} + i * (${spanNs} // ${lines}) AS t FROM range(${lines}) r(i))`);
await writer.run('CHECKPOINT');
const changes = new ChangeLog();
changes.record(0n, nowNs);

async function polling(query: string, level?: string): Promise<{ first: number; p50: number; p90: number }> {
  const counts = new MatchCounts();
  const times: number[] = [];
  for (let k = 0; k < REPEATS; k++) {
    const nowMs = Date.now();
    const t0 = performance.now();
    await searchLogs(reader, { fromMs: nowMs - 80 * 60_000, toMs: nowMs + 1, query, regex: false, level, limit: 50 }, counts, nowMs, changes);
    times.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 100));
  }
  const repeats = times.slice(1).sort((a, b) => a - b);
  return { first: times[0]!, p50: repeats[Math.floor(repeats.length / 2)]!, p90: repeats[Math.floor(repeats.length * 0.9)]! };
}

console.log(`${lines.toLocaleString('en')} lines over the last ${HISTORY_S / 60} minutes (${LINES_PER_S}/s), a search over the last 80 minutes every 100 ms, DuckDB threads=1:`);
for (const [what, query, level] of [['all levels', 'request 1', undefined], ['level=error', 'timeout', 'error']] as const) {
  const r = await polling(query, level);
  console.log(`  ${what.padEnd(12)} first ${r.first.toFixed(0)} ms, then p50 ${r.p50.toFixed(1)} ms, p90 ${r.p90.toFixed(1)} ms`);
}
console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}`);
reader.closeSync();
writer.closeSync();
db.closeSync();
