// Docker log throughput: a container writes 300,000 lines and exits; then
// (1) `docker logs` reads them to /dev/null (plain and with -t), and
// (2) inputs.docker_logs reads them all, parsed into events with positions,
//     each batch acknowledged at once (what the input itself costs), and
// (3) the same through a whole agent pipeline into an output that drops them,
// (4) and into regex_classifier → user_extraction → outputs.duckdb, with
//     docker_logs' default max_pending_lines and with PENDING (default 10000).
// Needs the engine and image of scripts/ensure-docker.sh.
// Run: npx tsx bench/docker_logs.ts   (LINES=… to change the count, PENDING=…)

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { builtinPlugins } from '../core/builtins.ts';
import { loadConfig } from '../core/config.ts';
import type { Event } from '../core/events.ts';
import { AgentHttpServer } from '../core/http.ts';
import { createLogger } from '../core/log.ts';
import { Pipeline } from '../core/pipeline.ts';
import type { Accumulator, PluginContext, PluginDefinition } from '../core/plugin.ts';
import { DockerLogsInput, type DockerLogsConfig } from '../plugins/inputs/docker_logs/index.ts';

const LINES = Number(process.env.LINES ?? 300_000);
const NAME = `opshub-bench-logs-${process.pid}`;
const CLI = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
const docker = new Docker();

const config: DockerLogsConfig = {
  endpoint: '',
  discover: true,
  tls_ca: '',
  tls_cert: '',
  tls_key: '',
  api_timeout: '10s',
  include: [`^${NAME}$`],
  exclude: [],
  include_labels: [],
  exclude_labels: [],
  include_stopped: true,
  start_from: 'beginning',
  tail: -1,
  max_line_bytes: '1MiB',
  max_pending_lines: 2000,
};

function seconds(fn: () => void): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

async function inputAlone(): Promise<number> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'opshub-bench-'));
  let count = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const acc: Accumulator = {
    emit: () => undefined,
    emitMany: () => undefined,
    emitTracked(events, track) {
      count += events.length;
      queueMicrotask(() => {
        track.onAccepted?.();
        track.onDelivered?.();
      });
      if (count >= LINES) done();
    },
    log: () => undefined,
    metric: () => undefined,
    error: () => undefined,
    flush: () => undefined,
  };
  const ctx = { id: 'docker_logs', log: createLogger({ level: 'error' }), dataDir: dir, hostname: os.hostname(), signal: new AbortController().signal } as unknown as PluginContext;
  const input = new DockerLogsInput(config, ctx);
  const t = performance.now();
  await input.start(acc);
  await finished;
  const s = (performance.now() - t) / 1000;
  await input.stop();
  await input.close();
  rmSync(dir, { recursive: true, force: true });
  return s;
}

/**
 * Runs a whole agent pipeline reading the container with docker_logs (`input`
 * adds to its entry) into `rest` (processors and outputs), until `stored`
 * says every line arrived. Returns the seconds that took and the CPU seconds
 * the process spent meanwhile.
 */
async function timedPipeline(input: string, rest: string, builtins: PluginDefinition[], stored: (pipeline: Pipeline) => boolean): Promise<{ s: number; cpu: number }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'opshub-bench-'));
  const text = `agent:\n  data_dir: ${dir}\n  self_metrics: false\n  http: { listen: "127.0.0.1:0" }\ninputs:\n  - type: docker_logs\n    include: ['^${NAME}$']\n    start_from: beginning\n    include_stopped: true\n${input}${rest}`;
  const cfg = await loadConfig('bench.yaml', { builtins, env: {}, text });
  const log = createLogger({ level: 'error' });
  const pipeline = new Pipeline({ http: new AgentHttpServer({ listen: '127.0.0.1:0', log }), log });
  const t = performance.now();
  const cpu0 = process.cpuUsage();
  await pipeline.apply(cfg, { strict: true });
  while (!stored(pipeline)) {
    // Dropped lines never arrive: say so rather than wait for ever.
    const dropped = [...pipeline.outputs.values()].reduce((n, o) => n + (o.stats.dropped ?? 0), 0);
    if (dropped) throw new Error(`${dropped} lines were dropped (see the outputs' stats)`);
    await new Promise((r) => setTimeout(r, 5));
  }
  const s = (performance.now() - t) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await pipeline.stop(5000);
  rmSync(dir, { recursive: true, force: true });
  return { s, cpu: (cpu.user + cpu.system) / 1e6 };
}

async function throughAgent(): Promise<number> {
  let written = 0;
  const sink: PluginDefinition = {
    kind: 'output', type: 'bench_null', description: 'drops what it gets', schema: { type: 'object', additionalProperties: false, properties: {} },
    create: () => ({ async write(events: Event[]) { written += events.length; } }),
  };
  const run = await timedPipeline('', 'outputs:\n  - type: bench_null\n    flush_interval: 10ms\n', [...builtinPlugins, sink], () => written >= LINES);
  return run.s;
}

/** The same through regex_classifier → user_extraction → outputs.duckdb (a file of its own), with the input's window at `maxPending`. */
function intoDuckdb(maxPending: number): Promise<{ s: number; cpu: number }> {
  return timedPipeline(
    `    max_pending_lines: ${maxPending}\n`,
    'processors:\n  - type: regex_classifier\n  - type: user_extraction\noutputs:\n  - type: duckdb\n    retention: { enabled: false }\n',
    builtinPlugins,
    (pipeline) => pipeline.outputs.get('duckdb')!.stats.written >= LINES,
  );
}

const rate = (s: number) => `${Math.round(LINES / s).toLocaleString('en')} lines/s (${s.toFixed(2)} s)`;

try {
  await docker.ping();
} catch (err) {
  console.error(`Docker engine not reachable (${(err as Error).message}); run scripts/ensure-docker.sh`);
  process.exit(1);
}
const container = await docker.createContainer({
  name: NAME,
  Image: 'opshub-test/busybox',
  Labels: { 'opshub-test': '1' },
  Cmd: ['awk', `BEGIN { for (i = 1; i <= ${LINES}; i++) print "level=info msg=\\"request served\\" path=/api/v1/items status=200 id=" i }`],
});
try {
  await container.start();
  await container.wait();
  const bytes = execFileSync(CLI, ['logs', NAME], { maxBuffer: 1 << 30 }).length;
  console.log(`container wrote ${LINES.toLocaleString('en')} lines (${(bytes / 2 ** 20).toFixed(1)} MiB); best of 2 runs each:`);
  const cliPlain = Math.min(...[0, 1].map(() => seconds(() => execFileSync('sh', ['-c', `${CLI} logs ${NAME} >/dev/null 2>&1`]))));
  const cliTs = Math.min(...[0, 1].map(() => seconds(() => execFileSync('sh', ['-c', `${CLI} logs -t ${NAME} >/dev/null 2>&1`]))));
  const alone: number[] = [];
  for (let i = 0; i < 2; i++) alone.push(await inputAlone());
  const agent: number[] = [];
  for (let i = 0; i < 2; i++) agent.push(await throughAgent());
  console.log(`docker logs > /dev/null          : ${rate(cliPlain)}`);
  console.log(`docker logs -t > /dev/null       : ${rate(cliTs)}`);
  console.log(`inputs.docker_logs (input alone) : ${rate(Math.min(...alone))}`);
  console.log(`inputs.docker_logs → agent → null: ${rate(Math.min(...agent))}`);
  // Into DuckDB, with docker_logs' default window and the PENDING one (a batch is at most what the input lets out).
  for (const pending of [2000, Number(process.env.PENDING ?? 10_000)]) {
    const runs: Array<{ s: number; cpu: number }> = [];
    for (let i = 0; i < 2; i++) runs.push(await intoDuckdb(pending));
    const best = runs.reduce((a, b) => (a.s < b.s ? a : b));
    console.log(`→ classify, extract → DuckDB (max_pending_lines ${pending}): ${rate(best.s)}; ${Math.round(LINES / best.cpu).toLocaleString('en')} lines per CPU-second`);
  }
} finally {
  await container.remove({ force: true });
}
