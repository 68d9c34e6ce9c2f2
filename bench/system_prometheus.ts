// Cost of inputs.system's gather (the /proc reader and the portable one) and of
// outputs.prometheus: metric events written per second, and the time to build
// one scrape for a given number of series. Prints figures; run:
// npx tsx bench/system_prometheus.ts   (SERIES=10000 by default)

import os from 'node:os';
import { makeMetric, type Event } from '../core/events.ts';
import { createLogger } from '../core/log.ts';
import type { Accumulator, PluginContext } from '../core/plugin.ts';
import { createSystem, system, type SystemConfig } from '../plugins/inputs/system/index.ts';
import { defaultReader, portableReader, type HostReader } from '../plugins/inputs/system/readers.ts';
import { createPrometheus, prometheus, type PrometheusConfig } from '../plugins/outputs/prometheus/index.ts';

const SERIES = Number(process.env.SERIES ?? 10_000);
const defaults = <T>(def: { schema: { properties: Record<string, Record<string, unknown>> } }) =>
  Object.fromEntries(Object.entries(def.schema.properties).map(([k, p]) => [k, p.default])) as T;
const ctx: PluginContext = {
  id: 'bench',
  log: createLogger({ level: 'error' }),
  dataDir: os.tmpdir(),
  http: { route: () => () => undefined, upgrade: () => () => undefined, isAuthorized: () => true },
  hostname: 'bench',
  signal: new AbortController().signal,
};

async function gatherCost(name: string, reader: HostReader, rounds: number): Promise<void> {
  const input = createSystem(defaults<SystemConfig>(system), ctx, () => reader);
  let events = 0;
  const acc = { emitMany: (es: Event[]) => void (events += es.length), error: () => undefined } as unknown as Accumulator;
  await input.gather(acc); // warm up
  events = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) await input.gather(acc);
  const ms = (performance.now() - t0) / rounds;
  const cpu = process.cpuUsage(cpu0);
  console.log(`inputs.system gather (${name}): ${ms.toFixed(2)} ms wall, ${((cpu.user + cpu.system) / 1000 / rounds).toFixed(2)} ms cpu in this process, ${(events / rounds).toFixed(1)} events`);
}

async function promCost(): Promise<void> {
  const out = createPrometheus({ ...defaults<PrometheusConfig>(prometheus), process_metrics: false }, ctx);
  await out.start!();
  // SERIES series across 100 families, 5 labels each, written as metric events of 1 field.
  const events: Event[] = [];
  for (let i = 0; i < SERIES; i++) {
    events.push(makeMetric(`bench_family${i % 100}`, { value_bytes: i }, { host: 'h', container: `c${i}`, image: 'img', stream: 'stdout', zone: 'z' }, { type: i % 2 ? 'counter' : 'gauge' }));
  }
  await out.write(events, { checkpoints: [], positions: [] }); // creates the series
  const rounds = 20;
  let t0 = performance.now();
  for (let r = 0; r < rounds; r++) await out.write(events, { checkpoints: [], positions: [] });
  const perSec = (rounds * SERIES) / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  let bytes = 0;
  for (let r = 0; r < 5; r++) bytes = (await out.exposition()).length;
  const scrapeMs = (performance.now() - t0) / 5;
  console.log(`outputs.prometheus write: ${Math.round(perSec).toLocaleString('en')} metric events/s (1 field, 5 tags, existing series)`);
  console.log(`outputs.prometheus scrape of ${SERIES.toLocaleString('en')} series: ${scrapeMs.toFixed(1)} ms, ${(bytes / 1024 / 1024).toFixed(2)} MiB of text`);
  console.log(`heap used: ${(process.memoryUsage().heapUsed / 1024 / 1024).toFixed(0)} MiB`);
  await out.stop!();
}

console.log(`${os.cpus().length} cpus (${os.cpus()[0]?.model ?? '?'}), node ${process.version}`);
await gatherCost('/proc', defaultReader(), 200);
await gatherCost('portable: os + systeminformation', portableReader(), 20);
await promCost();
