import { test } from 'node:test';
import assert from 'node:assert/strict';
import perf_hooks, { type PerformanceObserver } from 'node:perf_hooks';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { stringify } from 'yaml';
import { makeLog, makeMetric, type Event } from '../../../core/events.ts';
import { AgentHttpServer } from '../../../core/http.ts';
import { createLogger, type LogRecord } from '../../../core/log.ts';
import type { Accumulator, PluginContext } from '../../../core/plugin.ts';
import { createSystem, system, type SystemConfig } from '../../../plugins/inputs/system/index.ts';
import { createPrometheus, prometheus, type PrometheusConfig } from '../../../plugins/outputs/prometheus/index.ts';
import { startAgent, tempDir, waitFor } from '../../helpers.ts';

// ---------------------------------------------------------------- helpers

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Family {
  help?: string;
  type?: string;
  samples: Sample[];
}

/** A small parser of the Prometheus text format (0.0.4): HELP, TYPE and sample lines, with label escapes. */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { samples: [] }));
    return f;
  };
  let current: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      current = meta[2]!;
      if (meta[1] === 'HELP') family(current).help = meta[3]!.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      else family(current).type = meta[3]!;
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line);
    assert.ok(m, `sample line parses: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/y;
    const body = m[2] ?? '';
    let lm: RegExpExecArray | null;
    while (labelRe.lastIndex < body.length && (lm = labelRe.exec(body))) {
      assert.ok(!(lm[1]! in labels), `label ${lm[1]} appears once in ${line}`);
      labels[lm[1]!] = lm[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    assert.equal(labelRe.lastIndex, body.length, `labels parse: ${body}`);
    const raw = m[3]!;
    const value = /^nan$/i.test(raw) ? NaN : raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    const owner = current && m[1]!.startsWith(current) ? current : m[1]!;
    family(owner).samples.push({ name: m[1]!, labels, value });
  }
  return families;
}

function promtool(text: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

const DEFAULTS: PrometheusConfig = Object.fromEntries(
  Object.entries<Record<string, unknown>>(prometheus.schema.properties).map(([k, p]) => [k, p.default]),
) as unknown as PrometheusConfig;

async function setup(opts: { config?: Partial<PrometheusConfig>; token?: string; clock?: () => number } = {}) {
  const logs: LogRecord[] = [];
  const log = createLogger({ level: 'debug', sink: (r) => logs.push(r) });
  const http = new AgentHttpServer({ listen: '127.0.0.1:0', authToken: opts.token, log });
  await http.start();
  const ctx: PluginContext = { id: 'prometheus', log, dataDir: os.tmpdir(), http, hostname: 'test', signal: new AbortController().signal };
  const output = createPrometheus({ ...DEFAULTS, process_metrics: false, ...opts.config }, ctx, opts.clock);
  await output.start!();
  const write = (events: Event[]) => output.write(events, { checkpoints: [], positions: [] });
  const scrape = async (headers: Record<string, string> = {}) => {
    const res = await fetch(`${http.url()}${opts.config?.path ?? '/metrics'}`, { headers });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    return { text, families: parseExposition(text) };
  };
  return {
    output,
    http,
    logs,
    write,
    scrape,
    async close() {
      await output.stop!();
      await http.stop();
    },
  };
}

const values = (f: Family | undefined) => f?.samples.map((s) => [s.labels, s.value]);

// ---------------------------------------------------------------- tests

test('serves gauges, counters and untyped series with HELP, TYPE and labels from tags', async () => {
  const p = await setup();
  try {
    await p.write([
      makeMetric('system_memory', { total_bytes: 1024, used_percent: 12.5 }, {}, { type: 'gauge' }),
      makeMetric('system_cpu', { seconds_total: 10.5 }, { cpu: '0', mode: 'user' }, { type: 'counter' }),
      makeMetric('system_cpu', { seconds_total: 99 }, { mode: 'idle', cpu: '0' }, { type: 'counter' }),
      makeMetric('app', { temperature: -3 }, { room: 'lab' }, { type: 'untyped' }),
    ]);
    const { families, text } = await p.scrape();
    assert.equal(families.get('system_memory_total_bytes')?.type, 'gauge');
    assert.deepEqual(values(families.get('system_memory_total_bytes')), [[{}, 1024]]);
    assert.deepEqual(values(families.get('system_memory_used_percent')), [[{}, 12.5]]);
    assert.equal(families.get('system_cpu_seconds_total')?.type, 'counter');
    assert.deepEqual(values(families.get('system_cpu_seconds_total')), [
      [{ cpu: '0', mode: 'user' }, 10.5],
      [{ cpu: '0', mode: 'idle' }, 99],
    ]);
    assert.equal(families.get('app_temperature')?.type, 'untyped');
    assert.deepEqual(values(families.get('app_temperature')), [[{ room: 'lab' }, -3]]);
    for (const [name, f] of families) {
      assert.ok(f.help && f.help.length > 0, `${name} has HELP`);
      assert.ok(f.type, `${name} has TYPE`);
    }
    assert.match(text, /# HELP system_cpu_seconds_total OpsHub metric system_cpu, field seconds_total \(counter\)\.\n# TYPE system_cpu_seconds_total counter\n/);
  } finally {
    await p.close();
  }
});

test('host_label adds the agent\'s host name to every series that lacks the label (process metrics included), and leaves series that carry one', async () => {
  const p = await setup({ config: { host_label: 'host', process_metrics: true } });
  try {
    await p.write([
      makeMetric('system_memory', { total_bytes: 1024 }, {}, { type: 'gauge' }),
      makeMetric('opshub_input', { events_total: 3 }, { id: 'system', host: 'elsewhere' }, { type: 'counter' }),
    ]);
    const { families } = await p.scrape();
    assert.deepEqual(values(families.get('system_memory_total_bytes')), [[{ host: 'test' }, 1024]]);
    assert.deepEqual(values(families.get('opshub_input_events_total')), [[{ host: 'elsewhere', id: 'system' }, 3]]);
    assert.deepEqual(values(families.get('process_resident_memory_bytes'))?.map(([labels]) => labels), [{ host: 'test' }], 'process metrics too');
  } finally {
    await p.close();
  }
});

test('names and label names are sanitised; counters end in _total exactly once', async () => {
  const table: Array<[event: Event, series: string, labels: Record<string, string>]> = [
    [makeMetric('http.server', { 'request-count': 5 }, {}, { type: 'counter' }), 'http_server_request_count_total', {}],
    [makeMetric('jobs', { done_total: 5 }, {}, { type: 'counter' }), 'jobs_done_total', {}],
    [makeMetric('9lives', { cats: 9 }, {}, { type: 'gauge' }), '_9lives_cats', {}],
    [makeMetric('ns:rule', { ok: 1 }, {}, { type: 'gauge' }), 'ns:rule_ok', {}],
    [makeMetric('gpu', { 'power watts': 250 }, { 'k8s.pod-name': 'web-1', '0day': 'x', __name__: 'evil', empty: '' }), 'gpu_power_watts', { k8s_pod_name: 'web-1', _0day: 'x', _name__: 'evil' }],
    [makeMetric('dup', { v: 1 }, { 'a.b': 'first', a_b: 'second' }), 'dup_v', { a_b: 'first' }],
  ];
  const p = await setup();
  try {
    for (const [event] of table) await p.write([event]);
    const { families } = await p.scrape();
    for (const [event, name, labels] of table) {
      assert.deepEqual(values(families.get(name)), [[labels, Object.values(event.kind === 'metric' ? event.fields : {})[0]]], name);
    }
  } finally {
    await p.close();
  }
});

test('bools become 1/0 and bigints numbers; string fields are skipped and counted; logs are ignored', async () => {
  const p = await setup();
  try {
    await p.write([
      makeMetric('svc', { up: true, degraded: false, bytes: 2n ** 40n, version: '1.2.3', state: 'ok' }, { name: 'api' }),
      makeLog({ message: 'a log line is not a metric' }),
    ]);
    const { families } = await p.scrape();
    assert.deepEqual(values(families.get('svc_up')), [[{ name: 'api' }, 1]]);
    assert.deepEqual(values(families.get('svc_degraded')), [[{ name: 'api' }, 0]]);
    assert.deepEqual(values(families.get('svc_bytes')), [[{ name: 'api' }, 2 ** 40]]);
    assert.equal(families.has('svc_version'), false);
    assert.equal(families.has('svc_state'), false);
    assert.deepEqual(values(families.get('opshub_prometheus_fields_skipped_total')), [
      [{ reason: 'string' }, 2],
      [{ reason: 'type_conflict' }, 0],
    ]);
    assert.deepEqual(values(families.get('opshub_prometheus_series')), [[{}, 3]]);
  } finally {
    await p.close();
  }
});

test('a newer value replaces the old one: counters arrive as absolute totals, resets included', async () => {
  const p = await setup();
  try {
    for (const v of [100, 250, 7]) await p.write([makeMetric('net', { rx_bytes_total: v }, { interface: 'eth0' }, { type: 'counter' })]);
    const { families } = await p.scrape();
    assert.deepEqual(values(families.get('net_rx_bytes_total')), [[{ interface: 'eth0' }, 7]]);
  } finally {
    await p.close();
  }
});

test('a series name arriving with a second type keeps the first, logs once and counts the skipped samples', async () => {
  const p = await setup();
  try {
    await p.write([makeMetric('queue', { depth: 3 }, {}, { type: 'gauge' })]);
    await p.write([makeMetric('queue', { depth: 4 }, { q: 'b' }, { type: 'counter' }), makeMetric('queue', { depth: 5 }, {}, { type: 'untyped' })]);
    // "queue_depth" as a counter is "queue_depth_total": no clash; untyped "queue_depth" clashes.
    await p.write([makeMetric('queue', { depth: 6 }, {}, { type: 'untyped' })]);
    // A name this output uses itself is taken too.
    await p.write([makeMetric('opshub_prometheus', { series: 1 }, {}, { type: 'gauge' })]);
    const { families, text } = await p.scrape();
    assert.equal(families.get('queue_depth')?.type, 'gauge');
    assert.deepEqual(values(families.get('queue_depth')), [[{}, 3]]);
    assert.deepEqual(values(families.get('queue_depth_total')), [[{ q: 'b' }, 4]]);
    assert.equal(text.match(/# TYPE queue_depth /g)?.length, 1);
    assert.equal(p.logs.filter((l) => l.message.startsWith('queue_depth arrives as untyped but is served as gauge')).length, 1);
    assert.equal(p.logs.filter((l) => l.message.includes("opshub_prometheus_series is taken by this output's own metrics")).length, 1);
    assert.deepEqual(families.get('opshub_prometheus_fields_skipped_total')?.samples.find((s) => s.labels.reason === 'type_conflict')?.value, 3);
    assert.equal(promtool(text).status, 0, promtool(text).output);
  } finally {
    await p.close();
  }
});

test('series expire after `expiration` without updates, and their family with the last one (fake clock)', async () => {
  let now = 1_000_000;
  const p = await setup({ config: { expiration: '60s' }, clock: () => now });
  try {
    await p.write([
      makeMetric('system_network', { receive_bytes_total: 1 }, { interface: 'eth0' }, { type: 'counter' }),
      makeMetric('system_network', { receive_bytes_total: 2 }, { interface: 'veth1' }, { type: 'counter' }),
      makeMetric('gone', { value: 1 }),
    ]);
    now += 30_000;
    await p.write([makeMetric('system_network', { receive_bytes_total: 3 }, { interface: 'eth0' }, { type: 'counter' })]);
    now += 29_999;
    let { families } = await p.scrape();
    assert.equal(families.get('system_network_receive_bytes_total')?.samples.length, 2, 'still within 60 s');
    assert.ok(families.has('gone_value'));
    now += 1;
    ({ families } = await p.scrape());
    assert.deepEqual(values(families.get('system_network_receive_bytes_total')), [[{ interface: 'eth0' }, 3]]);
    assert.equal(families.has('gone_value'), false, 'an empty family leaves the exposition');
    assert.deepEqual(values(families.get('opshub_prometheus_series_expired_total')), [[{}, 2]]);
    now += 60_000;
    ({ families } = await p.scrape());
    assert.equal(families.has('system_network_receive_bytes_total'), false);
    // A name can come back, even with another type, once expired.
    await p.write([makeMetric('gone', { value: 2 }, {}, { type: 'untyped' })]);
    ({ families } = await p.scrape());
    assert.equal(families.get('gone_value')?.type, 'untyped');
  } finally {
    await p.close();
  }

  let t = 0;
  const forever = await setup({ config: { expiration: '0s' }, clock: () => t });
  try {
    await forever.write([makeMetric('kept', { value: 1 })]);
    t += 365 * 86_400_000;
    await forever.write([makeMetric('other', { value: 1 })]);
    assert.ok((await forever.scrape()).families.has('kept_value'), 'expiration 0s keeps series');
  } finally {
    await forever.close();
  }
});

test('process_metrics adds prom-client process_* and nodejs_* metrics to this instance only', async () => {
  const withProcess = await setup({ config: { process_metrics: true } });
  const without = await setup({ config: { process_metrics: false } });
  try {
    const a = (await withProcess.scrape()).families;
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_active_handles']) {
      assert.ok(a.has(name), `${name} served`);
    }
    assert.equal(a.get('process_cpu_seconds_total')?.type, 'counter');
    assert.equal(a.has('nodejs_active_handles_total'), false, 'gauges named *_total are left out');
    const b = (await without.scrape()).families;
    assert.deepEqual([...b.keys()].filter((n) => n.startsWith('process_') || n.startsWith('nodejs_')), []);
  } finally {
    await withProcess.close();
    await without.close();
  }
});

test('outputs started and stopped again (hot reloads) share one set of process metrics: no GC observer per instance', async () => {
  // prom-client's collectDefaultMetrics() starts a PerformanceObserver on 'gc' that nothing stops.
  const proto = perf_hooks.PerformanceObserver.prototype;
  const observe = proto.observe;
  let gcObservers = 0;
  proto.observe = function (this: PerformanceObserver, options: Parameters<typeof observe>[0]) {
    if ('entryTypes' in options ? options.entryTypes.includes('gc') : options.type === 'gc') gcObservers++;
    return observe.call(this, options);
  };
  try {
    for (let i = 0; i < 5; i++) {
      const p = await setup({ config: { process_metrics: true, host_label: 'reload_host' } });
      assert.ok((await p.scrape()).families.has('nodejs_gc_duration_seconds'), `instance ${i} serves the GC histogram`);
      await p.close();
    }
  } finally {
    proto.observe = observe;
  }
  assert.ok(gcObservers <= 1, `${gcObservers} GC observers started for 5 instances`);
});

test('the exposition of the system input, odd names and label values, and process metrics passes promtool check metrics', async () => {
  const p = await setup({ config: { process_metrics: true } });
  try {
    const sysConfig = Object.fromEntries(Object.entries<Record<string, unknown>>(system.schema.properties).map(([k, v]) => [k, v.default])) as unknown as SystemConfig;
    const input = createSystem({ ...sysConfig, include_mount_points: ['/'], exclude_fs_types: [] }, { ...ctxFor(), id: 'system' });
    const events: Event[] = [];
    const acc = { emitMany: (es: Event[]) => void events.push(...es), error: () => undefined } as unknown as Accumulator;
    await input.gather(acc);
    await waitFor(async () => {
      events.length = 0;
      await input.gather(acc);
      return events.some((e) => e.kind === 'metric' && e.name === 'system_cpu' && 'usage_percent' in e.fields);
    }, 30_000, 'cpu usage on a later gather');
    events.push(
      makeMetric('opshub_input', { events_total: 12, gather_seconds_total: 0.5 }, { plugin: 'system', id: 'system', host: 'h' }, { type: 'counter' }),
      makeMetric('opshub_output_buffer', { events: 0, limit_events: 10000 }, { plugin: 'prometheus', id: 'prometheus', host: 'h' }),
      makeMetric('app.latency-seconds', { p99: 0.25, nan: NaN, inf: Infinity }, { 'k8s.pod-name': 'web-"1"\\\nx', 'ünïcode': 'välue ✓', path: '/a b{c}' }),
    );
    await p.write(events);
    const { text, families } = await p.scrape();
    assert.ok(families.has('system_memory_total_bytes') && families.has('system_cpu_usage_percent') && families.has('nodejs_gc_duration_seconds'));
    const odd = families.get('app_latency_seconds_p99')!.samples[0]!;
    assert.deepEqual(odd.labels, { _n_code: 'välue ✓', k8s_pod_name: 'web-"1"\\\nx', path: '/a b{c}' }, 'label values round-trip through the escapes');
    assert.ok(Number.isNaN(families.get('app_latency_seconds_nan')!.samples[0]!.value));
    assert.equal(families.get('app_latency_seconds_inf')!.samples[0]!.value, Infinity);
    const check = promtool(text);
    assert.equal(check.status, 0, `promtool check metrics:\n${check.output}`);
    assert.equal(check.output, '');
  } finally {
    await p.close();
  }
});

function ctxFor(): PluginContext {
  return { id: 'x', log: createLogger({ level: 'error', sink: () => undefined }), dataDir: os.tmpdir(), http: undefined as never, hostname: 'h', signal: new AbortController().signal };
}

test('the endpoint needs the agent token when one is set, answers HEAD, serves a custom path and gzip on request', async () => {
  const p = await setup({ token: 's3cret', config: { path: '/prom' } });
  try {
    await p.write([makeMetric('m', { v: 1 })]);
    const url = `${p.http.url()}/prom`;
    assert.equal((await fetch(url)).status, 401);
    assert.equal((await fetch(url, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await fetch(`${p.http.url()}/metrics`, { headers: { authorization: 'Bearer s3cret' } })).status, 404);
    const { families } = await p.scrape({ authorization: 'Bearer s3cret' });
    assert.deepEqual(values(families.get('m_v')), [[{}, 1]]);
    const head = await fetch(url, { method: 'HEAD', headers: { authorization: 'Bearer s3cret' } });
    assert.equal(head.status, 200);
    // Raw body (fetch would decode it): gzip when the scraper asks, as Prometheus does.
    const zipped = await new Promise<{ encoding?: string; body: Buffer }>((resolve, reject) => {
      const req = http.get(url, { headers: { authorization: 'Bearer s3cret', 'accept-encoding': 'gzip' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
    });
    assert.equal(zipped.encoding, 'gzip');
    assert.match(gunzipSync(zipped.body).toString(), /^m_v 1$/m);
  } finally {
    await p.close();
  }
});

test('stop removes the endpoint and may be called twice', async () => {
  const p = await setup();
  await p.write([makeMetric('m', { v: 1 })]);
  await p.output.stop!();
  await p.output.stop!();
  assert.equal((await fetch(`${p.http.url()}/metrics`)).status, 404);
  await p.http.stop();
});

// ---------------------------------------------------------------- end to end with a real Prometheus

async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

test('a real Prometheus scrapes system metrics and opshub_* self-metrics through the agent token', { timeout: 120_000 }, async () => {
  const token = 'e2e-token-42';
  const agent = await startAgent(
    stringify({
      agent: { interval: '1s', data_dir: '${OPSHUB_TEST_DATA}', http: { auth_token: token } },
      inputs: [{ type: 'system', collect: ['cpu', 'memory', 'load'] }],
      outputs: [{ type: 'prometheus', flush_interval: '200ms' }],
    }),
  );
  const tmp = tempDir('opshub-prometheus-');
  const target = new URL(agent.url).host;
  const port = await freePort();
  const configFile = path.join(tmp.dir, 'prometheus.yml');
  writeFileSync(
    configFile,
    stringify({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      scrape_configs: [
        { job_name: 'opshub', static_configs: [{ targets: [target] }], authorization: { type: 'Bearer', credentials: token } },
        { job_name: 'opshub_wrong_token', static_configs: [{ targets: [target] }], authorization: { type: 'Bearer', credentials: 'wrong' } },
      ],
    }),
  );
  let log = '';
  const prom = spawn(
    'prometheus',
    [`--config.file=${configFile}`, `--storage.tsdb.path=${path.join(tmp.dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  prom.stdout.on('data', (d) => (log += d));
  prom.stderr.on('data', (d) => (log += d));
  const exited = once(prom, 'exit');
  const api = `http://127.0.0.1:${port}`;
  const query = async (q: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> => {
    const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(q)}`).catch(() => undefined);
    if (!res?.ok) return [];
    return ((await res.json()) as any).data.result;
  };
  try {
    await waitFor(async () => (await fetch(`${api}/-/ready`).catch(() => undefined))?.ok === true, 60_000, `Prometheus ready (log: ${log})`);
    await waitFor(async () => (await query('system_memory_total_bytes')).length > 0, 60_000, 'system_memory_total_bytes in Prometheus');
    await waitFor(async () => (await query('opshub_input_events_total{plugin="system"}')).length > 0, 60_000, 'an opshub_* self-metric in Prometheus');
    await waitFor(async () => (await query('system_cpu_usage_percent{cpu="total"}')).length > 0, 60_000, 'cpu usage in Prometheus');

    const [mem] = await query('system_memory_total_bytes');
    assert.equal(mem!.metric.job, 'opshub');
    assert.ok(Math.abs(Number(mem!.value[1]) - os.totalmem()) / os.totalmem() < 0.01);
    assert.equal((await query('up{job="opshub"}'))[0]?.value[1], '1');
    await waitFor(async () => (await query('up{job="opshub_wrong_token"}'))[0]?.value[1] === '0', 30_000, 'the wrong token is refused');
    assert.deepEqual(await query('system_memory_total_bytes{job="opshub_wrong_token"}'), []);

    // The types reach Prometheus' metadata.
    const meta = (await (await fetch(`${api}/api/v1/metadata?metric=system_cpu_seconds_total`)).json()) as any;
    assert.equal(meta.data.system_cpu_seconds_total?.[0]?.type, 'counter');
    const gauge = (await (await fetch(`${api}/api/v1/metadata?metric=system_load1`)).json()) as any;
    assert.equal(gauge.data.system_load1?.[0]?.type, 'gauge');
  } finally {
    prom.kill('SIGTERM');
    const timer = setTimeout(() => prom.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    await agent.stop();
    tmp.cleanup();
  }
});
