// Log processing throughput: regex_classifier + user_extraction + DuckDB
// append (data chunks through the Appender, positions in the same
// transaction) on realistic ~150-byte lines from Open WebUI, Ollama,
// uvicorn, nginx, Postgres and Keycloak, each with the container id and
// image docker_logs attaches. DuckDB runs with threads=1, so the work sits on
// one core (the JS thread, plus DuckDB's commit on a libuv worker; CPU time
// of all threads is reported). Batches are staged into transactions of
// COMMIT_EVENTS lines (the output's commit_events, default one row group:
// 122,880), as the runtime does under load; COMMIT_EVENTS=0 commits every
// batch on its own.
// Measured: classify + extract + stage + commit, and the closing CHECKPOINT,
// after WARMUP lines (JIT, heap growth and the store's first transactions
// are start-up costs). Building the events is the input's work and is not
// measured (bench/docker_logs.ts measures the input); an "all in" line gives
// the figure with both. Prints lines/s, MiB/s and peak RSS.
// Run: npx tsx bench/processing.ts   (LINES=983040 WARMUP=245760 BATCH=10000 COMMIT_EVENTS=122880 DISTINCT=1)

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AgentHttpServer } from '../core/http.ts';
import { createLogger } from '../core/log.ts';
import type { Checkpoint } from '../core/plugin.ts';
import type { LogEvent } from '../core/events.ts';
import { createRegexClassifier } from '../plugins/processors/regex_classifier/index.ts';
import { createUserExtraction } from '../plugins/processors/user_extraction/index.ts';
import { createDuckdb } from '../plugins/outputs/duckdb/index.ts';
import { ClockedLines, variedLines } from './support/flood.ts';

const LINES = Number(process.env.LINES ?? 983_040);
const BATCH = Number(process.env.BATCH ?? 10000);
const COMMIT_EVENTS = Number(process.env.COMMIT_EVENTS ?? 122_880);
/** Lines run first and not measured (two transactions by default). */
const WARMUP = Number(process.env.WARMUP ?? 245_760);

// Lines of about 150 bytes on average, as the target says, built from the classifier's samples.
const POOL = 20_000;
const pool = variedLines(POOL, 100, 260);
const avgBytes = pool.reduce((a, p) => a + Buffer.byteLength(p.line), 0) / pool.length;
/**
 * Each line gets its own clock (HH:MM:SS, and .mmm where the line has it),
 * as in a real log, whose lines differ at least in their time. The 20,000
 * lines repeated verbatim (DISTINCT=0, the bench before this) let DuckDB
 * store messages as a dictionary, 10 bytes a line instead of ~94 compressed
 * one by one (FSST), and cost ~12 % fewer instructions a line than real logs.
 */
const DISTINCT = process.env.DISTINCT !== '0';
const clocked = new ClockedLines(pool.map((p) => p.line));

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
let peakRss = 0;
let ts = BigInt(Date.now()) * 1_000_000n;

/** One batch as the docker_logs input hands it over: a fresh event per line, with its position. (The input's work: not timed.) */
function build(n: number): [LogEvent[], { positions: Array<Checkpoint | undefined>; checkpoints: Checkpoint[] }] {
  const events: LogEvent[] = new Array(n);
  const positions: Array<Checkpoint | undefined> = new Array(n);
  const latest = new Map<string, Checkpoint>();
  for (let i = 0; i < n; i++) {
    const at = seq % POOL;
    const { container, line } = pool[at]!;
    const message = DISTINCT ? clocked.at(at, seq) : line;
    seq++;
    const c = containerOf(container);
    events[i] = { kind: 'log', timestamp: (ts += 1013n), source: container, level: 'info', message, labels: { ...c.labels }, attributes: { container_id: c.id, image: c.image } };
    const pos: Checkpoint = { input: 'docker_logs', key: c.id, value: seq, order: String(seq).padStart(12, '0') };
    positions[i] = pos;
    latest.set(c.id, pos);
  }
  return [events, { positions, checkpoints: [...latest.values()] }];
}

/** Time and CPU (all threads) spent in the measured work, and in classify + extract alone. */
const spent = { ms: 0, cpuUs: 0, processMs: 0, buildMs: 0 };
const measure = async (work: () => Promise<void> | void) => {
  const t = performance.now();
  const c = process.cpuUsage();
  await work();
  const used = process.cpuUsage(c);
  spent.ms += performance.now() - t;
  spent.cpuUs += used.user + used.system;
};

/**
 * Runs `lines` through classify + extract + stage (+ commit), batches cut as
 * the runtime cuts them. Only that is measured; building the events is the
 * input's work (bench/docker_logs.ts measures the input).
 */
async function run(lines: number): Promise<void> {
  let staged = 0;
  for (let done = 0, n = 0; done < lines; done += n) {
    n = Math.min(BATCH, lines - done, out.stage ? COMMIT_EVENTS - staged : BATCH);
    const b0 = performance.now();
    const [events, wctx] = build(n);
    spent.buildMs += performance.now() - b0;
    await measure(async () => {
      const p0 = performance.now();
      for (let i = 0; i < n; i++) {
        classifier.process(events[i]!);
        extraction.process(events[i]!);
      }
      spent.processMs += performance.now() - p0;
      if (out.stage) {
        await out.stage(events, wctx);
        staged += n;
        if (staged >= COMMIT_EVENTS || done + n >= lines) {
          await out.commit!();
          staged = 0;
        }
      } else await out.write(events, wctx);
    });
    const rss = process.memoryUsage().rss;
    if (rss > peakRss) peakRss = rss;
  }
}

const all0 = performance.now();
const allCpu0 = process.cpuUsage();
// Warm-up, as the agent is after its first seconds: code optimised, heap grown, the store's first transactions written.
await run(WARMUP);
Object.assign(spent, { ms: 0, cpuUs: 0, processMs: 0, buildMs: 0 });
await run(LINES);
// The closing CHECKPOINT is work the rows need (compressing them into the file), so it is measured too.
await measure(() => out.stop!());
const allSeconds = (performance.now() - all0) / 1000;
const allCpu = process.cpuUsage(allCpu0);
const dbBytes = statSync(path.join(tmp, 'opshub.duckdb')).size;
// KEEP_DB=1 leaves the database file for a look at its storage (pragma_storage_info).
if (process.env.KEEP_DB) console.log(`database kept: ${path.join(tmp, 'opshub.duckdb')}`);
else rmSync(tmp, { recursive: true, force: true });

const seconds = spent.ms / 1000;
const cpuSeconds = spent.cpuUs / 1e6;
const rate = LINES / seconds;
const fmt = (x: number) => Math.round(x).toLocaleString('en');
console.log(`lines: ${fmt(LINES)} (after ${fmt(WARMUP)} to warm up)${DISTINCT ? ', each with its own clock,' : ', 20,000 repeated verbatim (DISTINCT=0),'} of ${avgBytes.toFixed(0)} bytes on average, batches of ${fmt(BATCH)}, ${COMMIT_EVENTS ? `transactions of ${fmt(COMMIT_EVENTS)}` : 'a transaction each'}, DuckDB threads=1`);
console.log(`classify + extract + DuckDB append: ${fmt(rate)} lines/s (${((rate * avgBytes) / 2 ** 20).toFixed(1)} MiB/s)`);
console.log(`  per CPU-second (all threads: JS, DuckDB, GC): ${fmt(LINES / cpuSeconds)} lines; CPU ${cpuSeconds.toFixed(1)} s over ${seconds.toFixed(1)} s (${((100 * cpuSeconds) / seconds).toFixed(0)} % of one core)`);
console.log(`  classify + extract alone: ${fmt(LINES / (spent.processMs / 1000))} lines/s of JS time`);
const allLines = WARMUP + LINES;
console.log(`  all in (warm-up, the events' building (${fmt(allLines / (spent.buildMs / 1000 || 1))} lines/s alone) and start included): ${fmt(allLines / ((allCpu.user + allCpu.system) / 1e6))} lines per CPU-second over ${allSeconds.toFixed(1)} s`);
console.log(`peak RSS: ${(Math.max(peakRss, process.resourceUsage().maxRSS * 1024) / 2 ** 20).toFixed(0)} MiB; database file ${(dbBytes / 2 ** 20).toFixed(0)} MiB (${(dbBytes / allLines).toFixed(0)} bytes/line)`);
