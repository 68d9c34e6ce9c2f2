// Runtime overhead: log events/s from an input's accumulator through a
// pass-through processor into an output whose write does nothing, with and
// without end-to-end acknowledgement. Prints figures; run: npx tsx bench/pipeline.ts

import { loadConfig } from '../core/config.ts';
import { builtinPlugins } from '../core/builtins.ts';
import { makeLog, type Event } from '../core/events.ts';
import { AgentHttpServer } from '../core/http.ts';
import { createLogger } from '../core/log.ts';
import { Pipeline } from '../core/pipeline.ts';
import type { PluginDefinition, ServiceInput, Accumulator } from '../core/plugin.ts';

const TOTAL = Number(process.env.EVENTS ?? 1_000_000);
const CHUNK = 500;

async function once(tracked: boolean): Promise<{ rate: number; rssMiB: number }> {
  let acc!: Accumulator;
  let written = 0;
  let acked = 0;
  const input: PluginDefinition = {
    kind: 'service_input', type: 'bench_in', description: 'bench input', schema: { type: 'object', additionalProperties: false, properties: {} },
    create: (): ServiceInput => ({ async start(a) { acc = a; }, async stop() {} }),
  };
  const passthrough: PluginDefinition = {
    kind: 'processor', type: 'bench_pass', description: 'bench processor', schema: { type: 'object', additionalProperties: false, properties: {} },
    create: () => ({ process: (e: Event) => e }),
  };
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const output: PluginDefinition = {
    kind: 'output', type: 'bench_out', description: 'bench output', schema: { type: 'object', additionalProperties: false, properties: {} },
    create: () => ({ async write(events: Event[]) { written += events.length; if (written >= TOTAL) done(); } }),
  };
  const text = `agent:\n  self_metrics: false\n  batch_size: 5000\n  buffer_limit: ${TOTAL}\ninputs:\n  - type: bench_in\nprocessors:\n  - type: bench_pass\noutputs:\n  - type: bench_out\n    flush_interval: 10ms\n`;
  const cfg = await loadConfig('bench.yaml', { builtins: [...builtinPlugins, input, passthrough, output], env: {}, text });
  const log = createLogger({ level: 'error' });
  const pipeline = new Pipeline({ http: new AgentHttpServer({ listen: '127.0.0.1:0', log }), log });
  await pipeline.apply(cfg, { strict: true });
  const line = 'INFO:     172.18.0.1:51234 - "GET /api/v1/models HTTP/1.1" 200 OK user=alice model=llama3.1:8b';
  const started = performance.now();
  for (let sent = 0; sent < TOTAL; sent += CHUNK) {
    const events = [];
    for (let i = 0; i < CHUNK; i++) events.push(makeLog({ message: line, source: 'bench' }));
    if (tracked) acc.emitTracked(events, { onDelivered: () => (acked += CHUNK) });
    else acc.emitMany(events);
    if (sent % 50_000 === 0) await new Promise((r) => setImmediate(r));
  }
  await finished;
  const seconds = (performance.now() - started) / 1000;
  await pipeline.stop(1000);
  if (tracked && acked !== TOTAL) throw new Error(`acknowledged ${acked} of ${TOTAL}`);
  return { rate: TOTAL / seconds, rssMiB: process.memoryUsage().rss / 2 ** 20 };
}

for (const tracked of [false, true]) {
  const r = await once(tracked);
  console.log(`${tracked ? 'with acknowledgement   ' : 'without acknowledgement'}: ${Math.round(r.rate).toLocaleString('en')} events/s  (rss ${r.rssMiB.toFixed(0)} MiB, ${TOTAL.toLocaleString('en')} events)`);
}
