// An output that is down, with a full buffer: the cost of each event pushed
// into it, which evicts the oldest untracked one (metrics, webhook events)
// while docker_logs' tracked lines wait at the front within their window.
// Runs at buffer_limit 10,000 (the default), 100,000 and 1,000,000.
// Run: npx tsx bench/output_overflow.ts   (TRACKED=2000 PUSHES=20000)

import type { PluginInstanceConfig } from '../core/config.ts';
import { Delivery } from '../core/delivery.ts';
import { makeLog } from '../core/events.ts';
import { createLogger } from '../core/log.ts';
import { RunningOutput } from '../core/running/output.ts';

const TRACKED = Number(process.env.TRACKED ?? 2000);
const PUSHES = Number(process.env.PUSHES ?? 20_000);
const log = createLogger({ level: 'error', sink: () => undefined });
const event = makeLog({ message: 'an event' });

for (const limit of [10_000, 100_000, 1_000_000]) {
  const config: PluginInstanceConfig = {
    id: 'down', type: 'bench', kind: 'output', definition: undefined as never, options: {}, dataDir: '/tmp', intervalMs: 1000, jitterMs: 0,
    tags: {}, batchSize: 1000, flushIntervalMs: 3_600_000, bufferLimit: limit, retryInitialMs: 5, retryMaxMs: 50, fingerprint: '',
  };
  // Not started: nothing is taken from the buffer, as while a write hangs on a dead peer.
  const out = new RunningOutput(config, { async write() {} }, log);
  const delivery = new Delivery({});
  for (let i = 0; i < TRACKED; i++) out.push({ event, input: 'docker_logs', delivery });
  while (out.bufferSize < limit) out.push({ event, input: 'cpu' });
  const t = performance.now();
  for (let i = 0; i < PUSHES; i++) out.push({ event, input: 'cpu' });
  const us = ((performance.now() - t) * 1000) / PUSHES;
  console.log(`buffer_limit ${limit.toLocaleString('en')}, ${TRACKED.toLocaleString('en')} tracked at the front: ${us.toFixed(2)} µs a push (${out.stats.dropped_overflow.toLocaleString('en')} dropped, ${out.bufferSize.toLocaleString('en')} buffered)`);
}
