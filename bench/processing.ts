// Log processing throughput: regex_classifier + user_extraction + DuckDB
// append (Appender, one transaction per batch with positions) on realistic
// ~150-byte lines from Open WebUI, Ollama, uvicorn, nginx, Postgres and
// Keycloak. DuckDB runs with threads=1, so the work sits on one core (the JS
// thread, plus DuckDB's commit on a libuv worker; CPU time is reported).
// Batches are staged into transactions of COMMIT_EVENTS lines (the output's
// commit_events, default one row group: 122,880), as the runtime does under
// load; COMMIT_EVENTS=0 commits every batch on its own (as before 2026-12-04).
// Prints lines/s, MiB/s and peak RSS. Run: npx tsx bench/processing.ts
// (LINES=1000000 BATCH=10000 to change the run).

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentHttpServer } from '../core/http.ts';
import { createLogger } from '../core/log.ts';
import type { Checkpoint, Event } from '../core/plugin.ts';
import type { LogEvent } from '../core/events.ts';
import { createRegexClassifier } from '../plugins/processors/regex_classifier/index.ts';
import { createUserExtraction } from '../plugins/processors/user_extraction/index.ts';
import { createDuckdb } from '../plugins/outputs/duckdb/index.ts';
import { variedLines } from './support/flood.ts';

const LINES = Number(process.env.LINES ?? 1_000_000);
const BATCH = Number(process.env.BATCH ?? 10000);
const COMMIT_EVENTS = Number(process.env.COMMIT_EVENTS ?? 122_880);

// Distinct lines of about 150 bytes on average, as the target says, built from the classifier's samples.
const POOL = 20_000;
const pool = variedLines(POOL, 100, 260);
const avgBytes = pool.reduce((a, p) => a + Buffer.byteLength(p.line), 0) / pool.length;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'opshub-bench-'));
const log = createLogger({ level: 'error' });
const ctx = { id: 'duckdb', log, dataDir: tmp, http: new AgentHttpServer({ listen: '127.0.0.1:0', log }), hostname: 'bench', signal: new AbortController().signal };
const out = createDuckdb(
  {
    path: '',
    archive_dir: '',
    archive_mode: 'daily',
    checkpoint_interval: '0',
    commit_events: COMMIT_EVENTS,
    commit_interval: '1h',
    memory_limit: '1GiB',
    wal_size: process.env.WAL_SIZE ?? '128MiB',
    threads: 1,
    retention: { enabled: false, active_days: 7, archive_days: 30, purge_days: 90, interval: '1h' },
    query: { enabled: false, max_rows: 1, timeout: '1s' },
  },
  ctx,
);
const classifier = createRegexClassifier({ levels: true, categories: true, patterns: {}, mode: 'first', ignore_case: false, overwrite_category: false, scan_bytes: '4KiB' });
const extraction = createUserExtraction({ patterns: [], default_patterns: true, ignore_case: false, scan_bytes: '4KiB' });

await out.start!();
// What the docker_logs input attaches to every line: the container's id (64 hex digits) and image.
const idOf = (container: string) => createHash('sha256').update(container).digest('hex');
let seq = 0;
const containers = new Map<string, { labels: Record<string, string>; id: string; image: string }>();
const containerOf = (name: string) => {
  let c = containers.get(name);
  if (!c) containers.set(name, (c = { labels: { container: name, stream: 'stdout' }, id: idOf(name), image: `ghcr.io/example/${name}:latest` }));
  return c;
};
let processMs = 0;
let peakRss = 0;
let ts = BigInt(Date.now()) * 1_000_000n;

/** One batch as the docker_logs input hands it over (a fresh event per line), classified and extracted. */
function batch(n: number): [Event[], { positions: Array<Checkpoint | undefined>; checkpoints: Checkpoint[] }] {
  const p0 = performance.now();
  const events: Event[] = new Array(n);
  const positions: Array<Checkpoint | undefined> = new Array(n);
  const latest = new Map<string, Checkpoint>();
  for (let i = 0; i < n; i++) {
    const { container, line } = pool[seq % POOL]!;
    seq++;
    const c = containerOf(container);
    const e: LogEvent = { kind: 'log', timestamp: (ts += 1013n), source: container, level: 'info', message: line, labels: { ...c.labels }, attributes: { container_id: c.id, image: c.image } };
    classifier.process(e);
    extraction.process(e);
    events[i] = e;
    const pos: Checkpoint = { input: 'docker_logs', key: c.id, value: seq, order: String(seq).padStart(12, '0') };
    positions[i] = pos;
    latest.set(c.id, pos);
  }
  processMs += performance.now() - p0;
  return [events, { positions, checkpoints: [...latest.values()] }];
}

const t0 = performance.now();
const cpu0 = process.cpuUsage();
// One batch after another, each awaited: the work of a line is done on one
// core at a time (the JS thread, then DuckDB's commit on a libuv worker).
// As the runtime does: batches of BATCH, cut short where a transaction reaches COMMIT_EVENTS.
let staged = 0;
for (let done = 0, n = 0; done < LINES; done += n) {
  n = Math.min(BATCH, LINES - done, out.stage ? COMMIT_EVENTS - staged : BATCH);
  const [events, wctx] = batch(n);
  if (out.stage) {
    await out.stage(events, wctx);
    staged += n;
    if (staged >= COMMIT_EVENTS || done + n >= LINES) {
      await out.commit!();
      staged = 0;
    }
  } else await out.write(events, wctx);
  const rss = process.memoryUsage().rss;
  if (rss > peakRss) peakRss = rss;
}
// The closing CHECKPOINT is work the rows need (compressing them into the file), so it is timed too.
await out.stop!();
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const dbBytes = statSync(path.join(tmp, 'opshub.duckdb')).size;
rmSync(tmp, { recursive: true, force: true });

const rate = LINES / seconds;
const fmt = (x: number) => Math.round(x).toLocaleString('en');
console.log(`lines: ${fmt(LINES)} of ${avgBytes.toFixed(0)} bytes on average, batches of ${fmt(BATCH)}, ${COMMIT_EVENTS ? `transactions of ${fmt(COMMIT_EVENTS)}` : 'a transaction each'}, DuckDB threads=1`);
console.log(`classify + extract + DuckDB append: ${fmt(rate)} lines/s (${((rate * avgBytes) / 2 ** 20).toFixed(1)} MiB/s)`);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
console.log(`  per CPU-second (all threads: JS, DuckDB, GC): ${fmt(LINES / cpuSeconds)} lines; CPU ${cpuSeconds.toFixed(1)} s over ${seconds.toFixed(1)} s wall (${((100 * cpuSeconds) / seconds).toFixed(0)} % of one core)`);
console.log(`  classify + extract alone: ${fmt(LINES / (processMs / 1000))} lines/s of JS time`);
console.log(`peak RSS: ${(Math.max(peakRss, process.resourceUsage().maxRSS * 1024) / 2 ** 20).toFixed(0)} MiB; database file ${(dbBytes / 2 ** 20).toFixed(0)} MiB (${(dbBytes / LINES).toFixed(0)} bytes/line)`);
