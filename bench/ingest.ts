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
// 20,000 distinct lines of about 150 bytes, as in bench/processing.ts.
const agent = await Agent.start({ file: yaml, builtins: [...builtinPlugins, floodInput({ minLength: 100, maxLength: 260, distinct: 20_000, maxPending: MAX_PENDING })], watch: false, listen: '127.0.0.1:0' });
const output = agent.pipeline.outputs.get('duckdb')!;
const written = () => output.stats.written;
try {
  await new Promise((r) => setTimeout(r, 3000)); // warm up: JIT, first batches
  const w0 = written();
  const b0 = output.stats.batches;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const lines = written() - w0;
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
