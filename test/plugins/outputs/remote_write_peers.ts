// Test support for outputs.prometheus_remote_write: a WriteRequest decoder,
// free ports, and the two real receivers (Prometheus with its remote-write
// receiver, VictoriaMetrics) started on 127.0.0.1 in temp dirs. Every process
// started here is killed and every dir removed by stop(), which tests call in
// t.after/finally; a process-exit hook kills whatever a crashed test left.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Event } from '../../../core/events.ts';
import type { Accumulator, PluginDefinition, ServiceInput } from '../../../core/plugin.ts';
import { waitFor } from '../../helpers.ts';

// ---------- protobuf decoding of prometheus.WriteRequest ----------

export interface DecodedSeries {
  labels: Record<string, string>;
  /** Label names in wire order. */
  labelOrder: string[];
  samples: Array<{ value: number; timestamp: number }>;
}

export interface DecodedRequest {
  timeseries: DecodedSeries[];
  metadata: Array<{ type: number; name: string; help: string; unit: string }>;
}

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer, readonly end = buf.length) {}
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result;
      shift += 7n;
    }
  }
  sub(): Reader {
    const len = Number(this.varint());
    const r = new Reader(this.buf, this.pos + len);
    r.pos = this.pos;
    this.pos += len;
    return r;
  }
  string(): string {
    const len = Number(this.varint());
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
  double(): number {
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.pos += Number(this.varint());
    else if (wire === 5) this.pos += 4;
    else throw new Error(`wire type ${wire}`);
  }
  *fields(): Generator<[number, number]> {
    while (this.pos < this.end) {
      const key = Number(this.varint());
      yield [key >> 3, key & 7];
    }
  }
}

export function decodeWriteRequest(buf: Buffer): DecodedRequest {
  const out: DecodedRequest = { timeseries: [], metadata: [] };
  const r = new Reader(buf);
  for (const [field, wire] of r.fields()) {
    if (field === 1 && wire === 2) {
      const ts = r.sub();
      const series: DecodedSeries = { labels: {}, labelOrder: [], samples: [] };
      for (const [f, w] of ts.fields()) {
        if (f === 1 && w === 2) {
          const l = ts.sub();
          let name = '';
          let value = '';
          for (const [lf, lw] of l.fields()) {
            if (lf === 1 && lw === 2) name = l.string();
            else if (lf === 2 && lw === 2) value = l.string();
            else l.skip(lw);
          }
          series.labels[name] = value;
          series.labelOrder.push(name);
        } else if (f === 2 && w === 2) {
          const s = ts.sub();
          let value = 0;
          let timestamp = 0n;
          for (const [sf, sw] of s.fields()) {
            if (sf === 1 && sw === 1) value = s.double();
            else if (sf === 2 && sw === 0) timestamp = BigInt.asIntN(64, s.varint());
            else s.skip(sw);
          }
          series.samples.push({ value, timestamp: Number(timestamp) });
        } else ts.skip(w);
      }
      out.timeseries.push(series);
    } else if (field === 3 && wire === 2) {
      const m = r.sub();
      const meta = { type: 0, name: '', help: '', unit: '' };
      for (const [f, w] of m.fields()) {
        if (f === 1 && w === 0) meta.type = Number(m.varint());
        else if (f === 2 && w === 2) meta.name = m.string();
        else if (f === 4 && w === 2) meta.help = m.string();
        else if (f === 5 && w === 2) meta.unit = m.string();
        else m.skip(w);
      }
      out.metadata.push(meta);
    } else r.skip(wire);
  }
  return out;
}

// ---------- processes ----------

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface Peer {
  url: string;
  port: number;
  dir: string;
  /** Recent output of the process, for failure messages. */
  output(): string;
  /** Stops the process (SIGTERM, then SIGKILL); keeps the data dir. Safe twice. */
  kill(): Promise<void>;
  /** Kills the process and removes its temp dir. Safe twice. */
  stop(): Promise<void>;
}

async function launch(what: string, cmd: string, args: string[], port: number, dir: string, ownDir: boolean, ready: string): Promise<Peer> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let log = '';
  const keep = (chunk: Buffer) => {
    log = (log + chunk.toString()).slice(-8000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  child.once('exit', () => {
    gone = true;
    running.delete(child);
  });
  const url = `http://127.0.0.1:${port}`;
  const kill = async () => {
    if (gone) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  const peer: Peer = {
    url,
    port,
    dir,
    output: () => log,
    kill,
    async stop() {
      await kill();
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor(async () => {
      if (gone) throw new Error(`${what} exited: ${log}`);
      try {
        const res = await fetch(`${url}${ready}`);
        return res.ok;
      } catch {
        return false;
      }
    }, 30_000, `${what} on port ${port}`);
  } catch (err) {
    await peer.stop();
    throw err;
  }
  return peer;
}

/** Prometheus with --web.enable-remote-write-receiver (push to `${url}/api/v1/write`). */
export async function startPrometheus(port?: number): Promise<Peer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'opshub-prom-'));
  const config = path.join(dir, 'prometheus.yml');
  writeFileSync(config, 'global:\n  scrape_interval: 1m\n');
  const p = port ?? (await freePort());
  return launch('prometheus', 'prometheus', [
    `--config.file=${config}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${p}`,
    '--web.enable-remote-write-receiver',
    '--log.level=warn',
  ], p, dir, true, '/-/ready');
}

/** VictoriaMetrics single-node (push to `${url}/api/v1/write`); pass `dir` to restart on the same data. */
export async function startVictoria(opts: { port?: number; dir?: string } = {}): Promise<Peer> {
  const dir = opts.dir ?? mkdtempSync(path.join(os.tmpdir(), 'opshub-vm-'));
  const p = opts.port ?? (await freePort());
  return launch('victoria-metrics', 'victoria-metrics', [
    `-storageDataPath=${path.join(dir, 'data')}`,
    `-httpListenAddr=127.0.0.1:${p}`,
    '-loggerLevel=ERROR',
    '-retentionPeriod=100y',
  ], p, dir, opts.dir === undefined, '/health');
}

/** Raw samples of every series matching `selector` in Prometheus over the last `range` before `at` (s). */
export async function queryPrometheus(peer: Peer, selector: string, range = '1h', at = Date.now() / 1000): Promise<Array<{ labels: Record<string, string>; samples: Array<[number, number]> }>> {
  const q = new URLSearchParams({ query: `${selector}[${range}]`, time: String(at) });
  const res = await fetch(`${peer.url}/api/v1/query?${q}`);
  const body = (await res.json()) as { status: string; error?: string; data: { result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }> } };
  if (body.status !== 'success') throw new Error(`prometheus query ${selector}: ${body.error}`);
  return body.data.result.map((r) => ({ labels: r.metric, samples: r.values.map(([t, v]) => [Math.round(t * 1000), Number(v)]) }));
}

/** Raw samples of every series matching `selector` in VictoriaMetrics (/api/v1/export). */
export async function exportVictoria(peer: Peer, selector: string): Promise<Array<{ labels: Record<string, string>; samples: Array<[number, number]> }>> {
  await fetch(`${peer.url}/internal/force_flush`).catch(() => undefined);
  const q = new URLSearchParams({ 'match[]': selector, start: '0' });
  const res = await fetch(`${peer.url}/api/v1/export?${q}`);
  if (!res.ok) throw new Error(`victoria export ${selector}: HTTP ${res.status} ${await res.text()}`);
  // One line per stored block: a series may come in several lines; merge them and sort by time.
  const merged = new Map<string, { labels: Record<string, string>; samples: Array<[number, number]> }>();
  for (const line of (await res.text()).split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as { metric: Record<string, string>; values: number[]; timestamps: number[] };
    const key = JSON.stringify(Object.entries(r.metric).sort());
    const entry = merged.get(key) ?? { labels: r.metric, samples: [] };
    merged.set(key, entry);
    r.timestamps.forEach((t, i) => entry.samples.push([t, r.values[i]!]));
  }
  for (const entry of merged.values()) entry.samples.sort((a, b) => a[0] - b[0]);
  return [...merged.values()];
}

// ---------- a test input that emits the metric events a test hands it ----------

export function metricsInput() {
  const control = { acc: undefined as Accumulator | undefined };
  const definition: PluginDefinition = {
    kind: 'service_input',
    type: 'test_metrics',
    description: 'Test input: emits the metric events the test hands it.',
    schema: { type: 'object', additionalProperties: false, properties: {} },
    create: (): ServiceInput => ({
      async start(acc) {
        control.acc = acc;
      },
      async stop() {
        control.acc = undefined;
      },
    }),
  };
  return {
    definition,
    emit(events: Event[]): void {
      if (!control.acc) throw new Error('test_metrics is not started');
      control.acc.emitMany(events);
    },
  };
}

/** A pipeline: test_metrics → prometheus_remote_write to `url`, with short flush and backoff; `extra` is indented output options. */
export function remoteWriteYaml(url: string, extra = '', agentExtra = ''): string {
  return `
agent:
  self_metrics: false
  hostname: test-host
  shutdown_timeout: 3s
  data_dir: \${OPSHUB_TEST_DATA}
${agentExtra}
inputs:
  - type: test_metrics
outputs:
  - type: prometheus_remote_write
    url: ${url}
    flush_interval: 50ms
    retry_initial_backoff: 50ms
    retry_max_backoff: 300ms
${extra}
`;
}
