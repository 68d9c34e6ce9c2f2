// outputs.prometheus_remote_write: samples/s mapped + protobuf-encoded +
// snappy-compressed (no I/O), then samples/s pushed to a real VictoriaMetrics
// (Debian's `victoria-metrics`, started here on 127.0.0.1 in a temp dir) and
// checked there. Prints figures; run: npx tsx bench/prometheus_remote_write.ts

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { makeMetric, type Event } from '../core/events.ts';
import { createLogger } from '../core/log.ts';
import type { PluginContext } from '../core/plugin.ts';
import { snappyCompress } from '../plugins/common/snappy.ts';
import { RemoteWriteOutput, type RemoteWriteConfig } from '../plugins/outputs/prometheus_remote_write/index.ts';
import { encodeWriteRequest } from '../plugins/outputs/prometheus_remote_write/protobuf.ts';
import { SeriesMapper, splitBySamples } from '../plugins/outputs/prometheus_remote_write/series.ts';

const EVENTS = Number(process.env.EVENTS ?? 100_000);
const BATCH = 1000; // events per write, as the runtime's default batch_size
const FIELDS = 5; // samples per event
const CONTAINERS = 50;

/** Container-stats-like events: 5 gauge fields, 3 tags, 50 containers, one event per container per second. */
function events(n: number, startMs: number): Event[] {
  const out: Event[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % CONTAINERS;
    const ms = startMs + Math.floor(i / CONTAINERS) * 1000;
    out.push(makeMetric('bench_container', {
      cpu_percent: (i % 1000) / 10,
      mem_bytes: 1_000_000 + i,
      net_rx_bytes: i * 1500,
      net_tx_bytes: i * 700,
      pids: c + 1,
    }, { container: `app-${c}`, image: `registry/app:${c % 7}`, compose_service: `svc${c % 5}` }, { timestamp: BigInt(ms) * 1_000_000n }));
  }
  return out;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitHttp(url: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch { /* not up yet */ }
    if (Date.now() > until) throw new Error(`${url} not up`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const startMs = Math.floor(Date.now() / 1000) * 1000 - 3 * 3600_000; // within VictoriaMetrics' accepted range
const all = events(EVENTS, startMs);
const batches: Event[][] = [];
for (let i = 0; i < all.length; i += BATCH) batches.push(all.slice(i, i + BATCH));
const samples = EVENTS * FIELDS;

// 1. Encoding only.
{
  const mapper = new SeriesMapper([['host', 'bench'], ['cluster', 'lab']]);
  let raw = 0;
  let compressed = 0;
  for (const b of batches.slice(0, 10)) for (const r of splitBySamples(mapper.map(b).series, 2000)) snappyCompress(encodeWriteRequest(r)); // warm-up
  const t0 = performance.now();
  for (const b of batches) {
    for (const r of splitBySamples(mapper.map(b).series, 2000)) {
      const body = encodeWriteRequest(r);
      raw += body.length;
      compressed += snappyCompress(body).length;
    }
  }
  const s = (performance.now() - t0) / 1000;
  console.log(`encode: ${samples.toLocaleString('en')} samples (${EVENTS.toLocaleString('en')} events x ${FIELDS} fields, ${CONTAINERS} containers) mapped+encoded+compressed in ${s.toFixed(2)} s = ${Math.round(samples / s).toLocaleString('en')} samples/s; ${(raw / samples).toFixed(1)} B/sample protobuf, ${(compressed / samples).toFixed(1)} B/sample snappy`);
}

// 2. Pushed to VictoriaMetrics.
const dir = mkdtempSync(path.join(os.tmpdir(), 'opshub-bench-vm-'));
const port = await freePort();
const vm = spawn('victoria-metrics', [`-storageDataPath=${dir}/data`, `-httpListenAddr=127.0.0.1:${port}`, '-loggerLevel=ERROR', '-retentionPeriod=100y'], { stdio: 'ignore' });
const url = `http://127.0.0.1:${port}`;
try {
  await waitHttp(`${url}/health`, 30_000);
  const log = createLogger({ level: 'error' });
  const ctx = { id: 'bench', log, dataDir: dir, hostname: 'bench', signal: new AbortController().signal } as unknown as PluginContext;
  const config: RemoteWriteConfig = {
    url: `${url}/api/v1/write`,
    headers: {},
    basic_auth: { username: '', password: '' },
    bearer_token: '',
    tls: { ca_file: '', cert_file: '', key_file: '', insecure_skip_verify: false },
    timeout: '30s',
    external_labels: { cluster: 'lab' },
    host_label: 'host',
    send_metadata: true,
    max_samples_per_request: 2000,
  };
  const output = new RemoteWriteOutput(config, ctx);
  await output.start();
  const t0 = performance.now();
  for (const b of batches) await output.write(b);
  const s = (performance.now() - t0) / 1000;
  await output.stop();
  console.log(`push: ${samples.toLocaleString('en')} samples in ${output.stats.requests} requests to VictoriaMetrics in ${s.toFixed(2)} s = ${Math.round(samples / s).toLocaleString('en')} samples/s (batch ${BATCH} events, max_samples_per_request 2000, one connection)`);
  await fetch(`${url}/internal/force_flush`);
  const q = new URLSearchParams({ query: 'sum(count_over_time({__name__=~"bench_container_.*"}[1d]))', time: String(startMs / 1000 + 86_399) });
  let stored = 0;
  for (let i = 0; i < 50 && stored < samples; i++) {
    const body = (await (await fetch(`${url}/api/v1/query?${q}`)).json()) as { data: { result: Array<{ value: [number, string] }> } };
    stored = Number(body.data.result[0]?.value[1] ?? 0);
    if (stored < samples) await new Promise((r) => setTimeout(r, 200));
  }
  console.log(`VictoriaMetrics holds ${stored.toLocaleString('en')} of ${samples.toLocaleString('en')} samples${stored === samples ? ' (all)' : ' (MISSING SOME)'}`);
  console.log(`machine: ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), Node.js ${process.version}`);
} finally {
  vm.kill('SIGTERM');
  await new Promise((r) => vm.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
