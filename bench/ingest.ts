// The whole agent ingesting, as it runs: a flooding input of realistic
// container lines → regex_classifier → user_extraction → outputs.duckdb
// (DuckDB threads=1, batches of 10,000), through the real runtime (buffers,
// acknowledgement, positions). Prints lines/s stored and the CPU it took.
// Unlike bench/processing.ts, the JS thread goes on classifying while
// DuckDB commits on its own thread, so this can use more than one core; run
// it under `taskset -c 0` to hold the whole agent to one core.
// Run: npx tsx bench/ingest.ts   (SECONDS=20 BATCH=10000 COMMIT_EVENTS=122880 MAX_PENDING=40000 BUFFER_LIMIT=100000
// FLUSH_INTERVAL=200ms to change; a batch larger than the lines that arrive
// in one flush interval is cut short by it)

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../core/agent.ts';
import { builtinPlugins } from '../core/builtins.ts';
import { floodInput, floodPipelineYaml } from './support/flood.ts';

const SECONDS = Number(process.env.SECONDS ?? 20);
/** Lines the input lets out before it waits for acknowledgements (docker_logs' max_pending_lines). */
const MAX_PENDING = Number(process.env.MAX_PENDING ?? 40_000);
const BATCH = Number(process.env.BATCH ?? 10_000);
/** outputs.duckdb commit_events: events one transaction may hold (0: a transaction per batch). */
const COMMIT_EVENTS = Number(process.env.COMMIT_EVENTS ?? 122_880);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'opshub-bench-ingest-'));
const yaml = path.join(tmp, 'bench.yaml');
writeFileSync(yaml, floodPipelineYaml({ dataDir: tmp, duckdb: [`batch_size: ${BATCH}`, 'threads: 1', `commit_events: ${COMMIT_EVENTS}`] }));
// 20,000 lines of about 150 bytes, each with its own clock (DISTINCT=0: repeated verbatim), as in bench/processing.ts.
const agent = await Agent.start({ file: yaml, builtins: [...builtinPlugins, floodInput({ minLength: 100, maxLength: 260, distinct: 20_000, clock: process.env.DISTINCT !== '0', maxPending: MAX_PENDING })], watch: false, listen: '127.0.0.1:0' });
const output = agent.pipeline.outputs.get('duckdb')!;
const written = () => output.stats.written;
/** Waits for the next commit (the written count moving), polled every millisecond; when it landed, and the CPU used by then. */
async function nextCommit(): Promise<{ written: number; at: number; cpu: NodeJS.CpuUsage }> {
  const before = written();
  while (written() === before) await new Promise((r) => setTimeout(r, 1));
  return { written: written(), at: performance.now(), cpu: process.cpuUsage() };
}
try {
  await new Promise((r) => setTimeout(r, 3000)); // warm up: JIT, first batches
  // Events count as written when their transaction commits (122,880 at a
  // time by default), so the window runs from one commit to another: a
  // window of fixed length would count up to a whole transaction more or
  // less (~8 % of a 10 s run).
  const mark = await nextCommit();
  const w0 = mark.written;
  const b0 = output.stats.batches;
  const cpu0 = mark.cpu;
  const t0 = mark.at;
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const end = await nextCommit();
  const seconds = (end.at - t0) / 1000;
  const cpu = { user: end.cpu.user - cpu0.user, system: end.cpu.system - cpu0.system };
  const lines = end.written - w0;
  const batches = output.stats.batches - b0;
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const fmt = (x: number) => Math.round(x).toLocaleString('en');
  const cores = process.env.TASKSET ?? `${os.availableParallelism()} cores available`;
  console.log(`agent ingestion (flood → regex_classifier → user_extraction → DuckDB, threads=1, batch_size ${BATCH}, commit_events ${COMMIT_EVENTS}, ${MAX_PENDING} lines pending at most), ${cores}:`);
  console.log(`  ${fmt(lines / seconds)} lines/s stored over ${seconds.toFixed(0)} s; CPU ${((100 * cpuSeconds) / seconds).toFixed(0)} % of one core; ${fmt(lines / cpuSeconds)} lines per CPU-second; ${fmt(lines / Math.max(1, batches))} lines a batch`);
  console.log(`  peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB; ${os.cpus()[0]?.model ?? '?'}, Node ${process.version}`);
} finally {
  await agent.stop();
  rmSync(tmp, { recursive: true, force: true });
}
