// outputs.prometheus_remote_write: the event → series mapping, the protobuf
// encoding, request splitting, and the HTTP behaviour (headers, auth, TLS,
// retry on 5xx/429 with Retry-After, drop on other 4xx, resume after a partial
// failure) against real HTTP(S) servers on 127.0.0.1 fed by a real agent.
// The real receivers (Prometheus, VictoriaMetrics) are in
// prometheus_remote_write_receivers.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { builtinPlugins } from '../../../core/builtins.ts';
import { loadConfig } from '../../../core/config.ts';
import { makeLog, makeMetric, type Event, type MetricType } from '../../../core/events.ts';
import { sanitizeLabelName, sanitizeMetricName, seriesName } from '../../../plugins/common/prometheus_names.ts';
import { snappyUncompress } from '../../../plugins/common/snappy.ts';
import { parseRetryAfter } from '../../../plugins/outputs/prometheus_remote_write/client.ts';
import type { RemoteWriteOutput } from '../../../plugins/outputs/prometheus_remote_write/index.ts';
import { encodeWriteRequest } from '../../../plugins/outputs/prometheus_remote_write/protobuf.ts';
import { SeriesMapper, splitBySamples, type Series } from '../../../plugins/outputs/prometheus_remote_write/series.ts';
import { startAgent, tempDir, waitFor, type TestAgent } from '../../helpers.ts';
import { decodeWriteRequest, freePort, metricsInput, remoteWriteYaml, type DecodedRequest } from './remote_write_peers.ts';

const MS = 1_000_000n;
const T0 = 1_700_000_000_000; // ms

function metric(name: string, fields: Record<string, number | bigint | boolean | string>, tags: Record<string, string> = {}, ms = T0, type: MetricType = 'gauge'): Event {
  return makeMetric(name, fields, tags, { timestamp: BigInt(ms) * MS, type });
}

/** Series as plain objects: name → { labels, samples [ms, value] }. */
function flatten(series: Series[]): Record<string, Array<{ labels: string; samples: Array<[number, number]> }>> {
  const out: Record<string, Array<{ labels: string; samples: Array<[number, number]> }>> = {};
  for (const s of series) {
    const name = s.labels.find((l) => l[0] === '__name__')![1];
    (out[name] ??= []).push({ labels: s.labels.map(([n, v]) => `${n}=${v}`).join(','), samples: s.samples.map((x) => [x.timestampMs, x.value]) });
  }
  return out;
}

// ---------- names ----------

for (const [input, metricName, labelName] of [
  ['cpu_usage', 'cpu_usage', 'cpu_usage'],
  ['disk.io-read', 'disk_io_read', 'disk_io_read'],
  ['1st', '_1st', '_1st'],
  ['ns:rule', 'ns:rule', 'ns_rule'],
  ['héllo wörld', 'h_llo_w_rld', 'h_llo_w_rld'],
  ['', '_', '_'],
  ['__meta_x', '__meta_x', '_meta_x'],
  ['__', '__', '_'],
] as const) {
  test(`sanitises ${JSON.stringify(input)} to metric name ${metricName} and label name ${labelName}`, () => {
    assert.equal(sanitizeMetricName(input), metricName);
    assert.equal(sanitizeLabelName(input), labelName);
  });
}

for (const [metricName, field, type, expected] of [
  ['gpu', 'power_watts', 'gauge', 'gpu_power_watts'],
  ['http', 'requests', 'counter', 'http_requests_total'],
  ['opshub_output', 'events_written_total', 'counter', 'opshub_output_events_written_total'],
  ['net', 'bytes_total', 'gauge', 'net_bytes_total'],
  ['docker.container', 'mem-usage', 'untyped', 'docker_container_mem_usage'],
] as const) {
  test(`names field ${field} of ${type} ${metricName} as ${expected}`, () => {
    assert.equal(seriesName(metricName, field, type), expected);
  });
}

// ---------- mapping ----------

test('maps each numeric field to a series: numbers as they are, booleans as 0/1, bigints as numbers; strings and logs are counted and skipped', () => {
  const mapper = new SeriesMapper([['host', 'box']]);
  const out = mapper.map([
    metric('gpu', { power_watts: 250.5, in_use: true, idle: false, mem_bytes: 81_559_863_296n, model: 'H100' }, { gpu: '0' }),
    makeLog({ message: 'not a metric' }),
  ]);
  assert.deepEqual(flatten(out.series), {
    gpu_power_watts: [{ labels: '__name__=gpu_power_watts,gpu=0,host=box', samples: [[T0, 250.5]] }],
    gpu_in_use: [{ labels: '__name__=gpu_in_use,gpu=0,host=box', samples: [[T0, 1]] }],
    gpu_idle: [{ labels: '__name__=gpu_idle,gpu=0,host=box', samples: [[T0, 0]] }],
    gpu_mem_bytes: [{ labels: '__name__=gpu_mem_bytes,gpu=0,host=box', samples: [[T0, 81_559_863_296]] }],
  });
  assert.equal(out.samples, 4);
  assert.equal(out.stringFields, 1);
  assert.equal(out.logEvents, 1);
  assert.deepEqual([...out.families], [['gpu_power_watts', 'gauge'], ['gpu_in_use', 'gauge'], ['gpu_idle', 'gauge'], ['gpu_mem_bytes', 'gauge']]);
});

for (const c of <Array<{ name: string; extra: Array<[string, string]>; tags: Record<string, string>; labels: string }>>[
  {
    name: 'sorts labels by name bytewise (upper case before __name__), drops empty values, keeps reserved __ names out',
    extra: [] as Array<[string, string]>,
    tags: { zone: 'a', Region: 'eu', empty: '', __name__: 'evil', 'container.name': 'web' },
    labels: 'Region=eu,__name__=m_v,_name__=evil,container_name=web,zone=a',
  },
  {
    name: 'a tag wins over an extra label of the same name',
    extra: [['host', 'agent-host'], ['cluster', 'c1']] as Array<[string, string]>,
    tags: { host: 'from-tag' },
    labels: '__name__=m_v,cluster=c1,host=from-tag',
  },
  {
    name: 'two tags that sanitise alike keep the first in name order',
    extra: [] as Array<[string, string]>,
    tags: { 'a-b': 'dash', 'a.b': 'dot' },
    labels: '__name__=m_v,a_b=dash',
  },
]) {
  test(`labels: ${c.name}`, () => {
    const out = new SeriesMapper(c.extra).map([metric('m', { v: 1 }, c.tags)]);
    assert.equal(flatten(out.series).m_v![0]!.labels, c.labels);
  });
}

test('converts ns timestamps to ms, sorts samples of a series by time and keeps the last of one millisecond', () => {
  const mapper = new SeriesMapper([]);
  const out = mapper.map([
    makeMetric('m', { v: 3 }, {}, { timestamp: BigInt(T0 + 2) * MS + 999_999n }),
    makeMetric('m', { v: 1 }, {}, { timestamp: BigInt(T0) * MS }),
    makeMetric('m', { v: 2 }, {}, { timestamp: BigInt(T0 + 1) * MS + 10n }),
    makeMetric('m', { v: 2.5 }, {}, { timestamp: BigInt(T0 + 1) * MS + 500_000n }),
    makeMetric('m', { v: 7 }, { other: 'series' }, { timestamp: BigInt(T0) * MS }),
  ]);
  assert.deepEqual(flatten(out.series).m_v, [
    { labels: '__name__=m_v', samples: [[T0, 1], [T0 + 1, 2.5], [T0 + 2, 3]] },
    { labels: '__name__=m_v,other=series', samples: [[T0, 7]] },
  ]);
  assert.equal(out.duplicateSamples, 1);
  assert.equal(out.samples, 4);
});

// ---------- encoding and splitting ----------

test('encodes a WriteRequest that decodes to the same series, samples and metadata', () => {
  const series: Series[] = [
    { labels: [['__name__', 'a_total'], ['host', 'h1'], ['path', '/ä/ü']], samples: [{ value: 1, timestampMs: T0 }, { value: 0, timestampMs: T0 + 1 }, { value: -2.5e-9, timestampMs: T0 + 2 }] },
    { labels: [['__name__', 'b'], ['v', '']], samples: [{ value: Number.MAX_VALUE, timestampMs: 0 }, { value: 1.5, timestampMs: -1000 }] },
    { labels: [['__name__', 'c']], samples: [{ value: Number.NaN, timestampMs: 2 ** 52 }] },
  ];
  const decoded = decodeWriteRequest(encodeWriteRequest(series, [{ name: 'a_total', type: 'counter' }, { name: 'b', type: 'gauge', help: 'Help ✓', unit: 'bytes' }, { name: 'c', type: 'untyped' }]));
  assert.deepEqual(decoded.timeseries.map((s) => s.labelOrder), [['__name__', 'host', 'path'], ['__name__', 'v'], ['__name__']]);
  assert.deepEqual(decoded.timeseries[0]!.labels, { __name__: 'a_total', host: 'h1', path: '/ä/ü' });
  assert.deepEqual(decoded.timeseries.map((s) => s.samples.map((x) => [x.timestamp, x.value])), [
    [[T0, 1], [T0 + 1, 0], [T0 + 2, -2.5e-9]],
    [[0, Number.MAX_VALUE], [-1000, 1.5]],
    [[2 ** 52, Number.NaN]],
  ]);
  assert.deepEqual(decoded.metadata, [
    { type: 1, name: 'a_total', help: '', unit: '' },
    { type: 2, name: 'b', help: 'Help ✓', unit: 'bytes' },
    { type: 0, name: 'c', help: '', unit: '' },
  ]);
});

for (const c of [
  { max: 10, sizes: [3, 4], want: [[3, 4]] },
  { max: 4, sizes: [3, 4], want: [[3, 1], [3]] },
  { max: 2, sizes: [5], want: [[2], [2], [1]] },
  { max: 3, sizes: [1, 1, 1, 1], want: [[1, 1, 1], [1]] },
  { max: 5, sizes: [], want: [] },
]) {
  test(`splits series of ${JSON.stringify(c.sizes)} samples into requests of at most ${c.max}: ${JSON.stringify(c.want)}`, () => {
    const series: Series[] = c.sizes.map((n, i) => ({
      labels: [['__name__', `s${i}`]],
      samples: Array.from({ length: n }, (_, k) => ({ value: k, timestampMs: T0 + k })),
    }));
    const requests = splitBySamples(series, c.max);
    assert.deepEqual(requests.map((r) => r.map((s) => s.samples.length)), c.want);
    // Every sample once, in time order per series.
    const seen = new Map<string, number[]>();
    for (const r of requests) for (const s of r) seen.set(s.labels[0]![1], [...(seen.get(s.labels[0]![1]) ?? []), ...s.samples.map((x) => x.timestampMs)]);
    c.sizes.forEach((n, i) => assert.deepEqual(seen.get(`s${i}`) ?? [], Array.from({ length: n }, (_, k) => T0 + k)));
  });
}

for (const [header, want] of [
  ['5', 5000],
  ['0.25', 250],
  [new Date(Date.UTC(2030, 0, 1, 0, 0, 10)).toUTCString(), 10_000],
  ['soon', undefined],
  [undefined, undefined],
] as const) {
  test(`reads Retry-After ${JSON.stringify(header)} as ${want} ms`, () => {
    assert.equal(parseRetryAfter(header, Date.UTC(2030, 0, 1, 0, 0, 0)), want);
  });
}

// ---------- over HTTP, through a real agent ----------

interface Received {
  headers: http.IncomingHttpHeaders;
  request: DecodedRequest;
}

/** A remote-write receiver on 127.0.0.1 that records decoded requests and answers what `answer` says (204 by default). */
async function receiver(
  answer: (n: number, req: Received) => { status: number; headers?: Record<string, string>; body?: string } = () => ({ status: 204 }),
  tls?: https.ServerOptions,
) {
  const received: Received[] = [];
  let n = 0;
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const got: Received = { headers: req.headers, request: decodeWriteRequest(snappyUncompress(Buffer.concat(chunks))) };
      const a = answer(n++, got);
      if (a.status < 300) received.push(got);
      res.writeHead(a.status, a.headers).end(a.body ?? '');
    });
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}/api/v1/write`,
    received,
    attempts: () => n,
    /** Every sample received, as "name{labels} ts value". */
    samples: () => received.flatMap((r) => r.request.timeseries.flatMap((s) => s.samples.map((x) => `${s.labels.__name__} ${x.timestamp} ${x.value}`))),
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

async function agentTo(url: string, extra = '', env?: NodeJS.ProcessEnv): Promise<{ agent: TestAgent; emit: (events: Event[]) => void; output: () => RemoteWriteOutput; running: () => { dropped_permanent: number; write_errors: number; written: number } }> {
  const input = metricsInput();
  const agent = await startAgent(remoteWriteYaml(url, extra), { plugins: [input.definition], env });
  const running = () => agent.agent.pipeline.outputs.get('prometheus_remote_write')!;
  return { agent, emit: input.emit, output: () => running().plugin as RemoteWriteOutput, running: () => running().stats };
}

test('posts snappy protobuf with the remote-write headers, sorted labels, the host label and external labels', async (t) => {
  const rx = await receiver();
  t.after(() => rx.close());
  const a = await agentTo(rx.url, '    external_labels:\n      cluster: "${CLUSTER}"\n    headers:\n      X-Scope-OrgID: tenant-1', { ...process.env, CLUSTER: 'eu-1' });
  t.after(() => a.agent.stop());
  a.emit([
    metric('gpu', { power_watts: 250.5, in_use: true, model: 'H100' }, { gpu: '0', Vendor: 'nvidia' }, T0),
    metric('http', { requests: 42 }, { code: '200' }, T0 + 1, 'counter'),
  ]);
  await waitFor(() => rx.received.length >= 1, 10_000, 'a request');
  const { headers, request } = rx.received[0]!;
  assert.equal(headers['content-encoding'], 'snappy');
  assert.equal(headers['content-type'], 'application/x-protobuf');
  assert.equal(headers['x-prometheus-remote-write-version'], '0.1.0');
  assert.match(headers['user-agent'] ?? '', /^opshub\/\d+\.\d+\.\d+/);
  assert.equal(headers['x-scope-orgid'], 'tenant-1');
  assert.equal(headers.authorization, undefined);
  assert.deepEqual(
    request.timeseries.map((s) => ({ labels: s.labelOrder.map((n) => `${n}=${s.labels[n]}`).join(','), samples: s.samples })),
    [
      { labels: 'Vendor=nvidia,__name__=gpu_power_watts,cluster=eu-1,gpu=0,host=test-host', samples: [{ value: 250.5, timestamp: T0 }] },
      { labels: 'Vendor=nvidia,__name__=gpu_in_use,cluster=eu-1,gpu=0,host=test-host', samples: [{ value: 1, timestamp: T0 }] },
      { labels: '__name__=http_requests_total,cluster=eu-1,code=200,host=test-host', samples: [{ value: 42, timestamp: T0 + 1 }] },
    ],
  );
  assert.deepEqual(request.metadata.map((m) => [m.name, m.type]), [['gpu_power_watts', 2], ['gpu_in_use', 2], ['http_requests_total', 1]]);
  await waitFor(() => a.running().written === 2, 10_000, 'the answer processed');
  assert.equal(a.output().stats.string_fields_skipped, 1);
  assert.equal(a.output().stats.samples_sent, 3);
});

for (const c of [
  { name: 'basic_auth as a Basic header', extra: '    basic_auth:\n      username: alice\n      password: s3cret', want: `Basic ${Buffer.from('alice:s3cret').toString('base64')}` },
  { name: 'bearer_token as a Bearer header', extra: '    bearer_token: tok-123', want: 'Bearer tok-123' },
]) {
  test(`sends ${c.name}`, async (t) => {
    const rx = await receiver();
    t.after(() => rx.close());
    const a = await agentTo(rx.url, c.extra);
    t.after(() => a.agent.stop());
    a.emit([metric('m', { v: 1 })]);
    await waitFor(() => rx.received.length >= 1, 10_000, 'a request');
    assert.equal(rx.received[0]!.headers.authorization, c.want);
  });
}

test('host_label "" and send_metadata false leave out the host label and the metadata', async (t) => {
  const rx = await receiver();
  t.after(() => rx.close());
  const a = await agentTo(rx.url, '    host_label: ""\n    send_metadata: false');
  t.after(() => a.agent.stop());
  a.emit([metric('m', { v: 1 })]);
  await waitFor(() => rx.received.length >= 1, 10_000, 'a request');
  assert.deepEqual(rx.received[0]!.request.timeseries[0]!.labels, { __name__: 'm_v' });
  assert.deepEqual(rx.received[0]!.request.metadata, []);
});

for (const c of <Array<{ status: number; headers: Record<string, string>; what: string }>>[
  { status: 503, headers: {}, what: '503' },
  { status: 500, headers: {}, what: '500' },
  { status: 429, headers: { 'Retry-After': '1' }, what: '429 with Retry-After' },
]) {
  test(`retries a batch answered ${c.what} until it is accepted, without losing or duplicating samples`, async (t) => {
    const rx = await receiver((n) => (n < 2 ? { status: c.status, headers: c.headers, body: 'busy' } : { status: 204 }));
    t.after(() => rx.close());
    const a = await agentTo(rx.url);
    t.after(() => a.agent.stop());
    const started = Date.now();
    a.emit([metric('m', { v: 1 }, {}, T0), metric('m', { v: 2 }, {}, T0 + 1)]);
    await waitFor(() => rx.received.length >= 1, 15_000, 'the retried request');
    assert.equal(rx.attempts(), 3);
    assert.deepEqual(rx.samples(), [`m_v ${T0} 1`, `m_v ${T0 + 1} 2`]);
    assert.equal(a.running().write_errors, 2);
    assert.equal(a.running().dropped_permanent, 0);
    // Retry-After: 1 s is honoured (capped by retry_max_backoff 300ms here); plain backoff starts at 50ms.
    if (c.status === 429) assert.ok(Date.now() - started >= 2 * 300, 'waited the capped Retry-After twice');
    assert.ok(a.agent.logs.some((l) => l.level === 'warn' && l.message.includes(`HTTP ${c.status}`)));
  });
}

test('drops a batch answered 400 and counts it, logging the reason once, and goes on with the next batches', async (t) => {
  const rx = await receiver((_n, got) => (got.request.timeseries.some((s) => s.labels.__name__ === 'bad_v') ? { status: 400, body: 'out of order sample' } : { status: 204 }));
  t.after(() => rx.close());
  const a = await agentTo(rx.url, '    batch_size: 1');
  t.after(() => a.agent.stop());
  a.emit([metric('bad', { v: 1 }, {}, T0), metric('bad', { v: 2 }, {}, T0 + 1), metric('good', { v: 3 }, {}, T0 + 2)]);
  await waitFor(() => rx.received.length === 1 && a.running().dropped_permanent === 2, 15_000, 'two drops and one write');
  assert.deepEqual(rx.samples(), [`good_v ${T0 + 2} 3`]);
  assert.equal(rx.attempts(), 3, 'a 400 is not retried');
  assert.equal(a.output().stats.samples_rejected, 2);
  assert.equal(a.agent.logs.filter((l) => l.message.includes('out of order sample')).length, 1, 'the reason is logged once');
  assert.equal(a.agent.logs.filter((l) => l.message.includes('retrying cannot help')).length, 1, 'the drop is logged once');
});

test('splits a batch over max_samples_per_request and, when a later request fails, resends only the requests not yet accepted', async (t) => {
  const rx = await receiver((n) => (n === 1 ? { status: 503 } : { status: 204 }));
  t.after(() => rx.close());
  const a = await agentTo(rx.url, '    max_samples_per_request: 4\n    batch_size: 100');
  t.after(() => a.agent.stop());
  const events = Array.from({ length: 5 }, (_, i) => metric('m', { a: i, b: i * 10 }, {}, T0 + i));
  a.emit(events);
  await waitFor(() => rx.received.length >= 3, 15_000, 'three accepted requests');
  assert.deepEqual(rx.received.map((r) => r.request.timeseries.reduce((n, s) => n + s.samples.length, 0)), [4, 4, 2]);
  const want = [...events.map((_, i) => `m_a ${T0 + i} ${i}`), ...events.map((_, i) => `m_b ${T0 + i} ${i * 10}`)].sort();
  assert.deepEqual(rx.samples().sort(), want, 'every sample exactly once');
  assert.equal(rx.attempts(), 4);
  await waitFor(() => a.running().written === 5, 10_000, 'the answer processed');
  assert.equal(a.output().stats.requests, 3);
});

test('retries while the receiver is not listening and delivers everything once it is', async (t) => {
  const port = await freePort();
  const a = await agentTo(`http://127.0.0.1:${port}/api/v1/write`, '    batch_size: 2');
  t.after(() => a.agent.stop());
  a.emit(Array.from({ length: 6 }, (_, i) => metric('m', { v: i }, {}, T0 + i)));
  await waitFor(() => a.running().write_errors >= 2, 10_000, 'failed attempts');
  assert.ok(a.agent.logs.some((l) => l.message.includes('ECONNREFUSED')), 'the network error is logged');
  const server = http.createServer();
  const got: string[] = [];
  server.on('request', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      for (const s of decodeWriteRequest(snappyUncompress(Buffer.concat(chunks))).timeseries) for (const x of s.samples) got.push(`${x.timestamp} ${x.value}`);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  await waitFor(() => got.length >= 6, 15_000, 'all samples');
  assert.deepEqual(got, Array.from({ length: 6 }, (_, i) => `${T0 + i} ${i}`));
});

test('a kept-alive connection the receiver dropped is replaced at once, without a failed write', async (t) => {
  const got: string[] = [];
  const perSocket = new WeakMap<object, number>();
  const server = http.createServer((req, res) => {
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    if (n === 2) return req.socket.destroy(); // the second request on a kept-alive connection: dropped, as by an idle timeout
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      for (const s of decodeWriteRequest(snappyUncompress(Buffer.concat(chunks))).timeseries) for (const x of s.samples) got.push(`${x.timestamp} ${x.value}`);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  const a = await agentTo(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/write`);
  t.after(() => a.agent.stop());
  a.emit([metric('m', { v: 1 }, {}, T0)]);
  await waitFor(() => a.running().written === 1, 10_000, 'the first batch');
  a.emit([metric('m', { v: 2 }, {}, T0 + 1)]);
  await waitFor(() => a.running().written === 2, 10_000, 'the second batch');
  assert.deepEqual(got, [`${T0} 1`, `${T0 + 1} 2`]);
  assert.equal(a.running().write_errors, 0);
});

test('a request that gets no answer within timeout is retried', async (t) => {
  let hung = 0;
  const rx = await receiver();
  // Wrap: the first request is left hanging.
  const server = http.createServer((req, res) => {
    if (hung++ === 0) return; // never answers
    const proxied = http.request(rx.url, { method: 'POST', headers: req.headers }, (r) => r.pipe(res.writeHead(r.statusCode ?? 500)));
    req.pipe(proxied);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rx.close();
  });
  const a = await agentTo(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/write`, '    timeout: 1s');
  t.after(() => a.agent.stop());
  a.emit([metric('m', { v: 1 })]);
  await waitFor(() => rx.received.length >= 1, 15_000, 'the retried request');
  assert.ok(a.agent.logs.some((l) => l.message.includes('no answer within 1000 ms')));
  assert.equal(rx.samples()[0], `m_v ${T0} 1`);
  assert.ok(hung >= 2, 'the first request hung, a later one went through');
});

// ---------- TLS ----------

function selfSigned(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert, key };
}

test('over https: trusts tls.ca_file and presents tls.cert_file/key_file to a server that requires a client certificate', async (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const { cert, key } = selfSigned(tmp.dir);
  const pem = readFileSync(cert);
  const rx = await receiver(undefined, { cert: pem, key: readFileSync(key), ca: pem, requestCert: true, rejectUnauthorized: true });
  t.after(() => rx.close());
  const a = await agentTo(rx.url, `    tls:\n      ca_file: ${cert}\n      cert_file: ${cert}\n      key_file: ${key}`);
  t.after(() => a.agent.stop());
  a.emit([metric('m', { v: 1 })]);
  await waitFor(() => rx.received.length === 1, 10_000, 'a request over TLS');
  assert.deepEqual(rx.samples(), [`m_v ${T0} 1`]);
});

test('over https: an untrusted certificate is retried, and accepted with insecure_skip_verify', async (t) => {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const { cert, key } = selfSigned(tmp.dir);
  const rx = await receiver(undefined, { cert: readFileSync(cert), key: readFileSync(key) });
  t.after(() => rx.close());
  const strict = await agentTo(rx.url);
  t.after(() => strict.agent.stop());
  strict.emit([metric('m', { v: 1 })]);
  await waitFor(() => strict.running().write_errors >= 1, 10_000, 'a failed TLS attempt');
  assert.equal(rx.received.length, 0);
  const loose = await agentTo(rx.url, '    tls:\n      insecure_skip_verify: true');
  t.after(() => loose.agent.stop());
  loose.emit([metric('m', { v: 2 })]);
  await waitFor(() => rx.received.length === 1, 10_000, 'a request with insecure_skip_verify');
  assert.deepEqual(rx.samples(), [`m_v ${T0} 2`]);
});

test('a configuration with both basic_auth and bearer_token does not start', async (t) => {
  const tmp = tempDir(); // startAgent leaves its own dir behind when start fails
  t.after(() => tmp.cleanup());
  const input = metricsInput();
  await assert.rejects(
    startAgent(remoteWriteYaml('http://127.0.0.1:9/api/v1/write', '    bearer_token: t\n    basic_auth:\n      username: u'), { plugins: [input.definition], dir: tmp.dir }),
    /basic_auth or bearer_token, not both/,
  );
});

test('the fleet sample in testdata validates, with labels and the token from the environment', async () => {
  const cfg = await loadConfig('plugins/outputs/prometheus_remote_write/testdata/fleet.yaml', {
    builtins: builtinPlugins,
    env: { HOST_NAME: 'gpu-box-7', REMOTE_WRITE_URL: 'https://vminsert:8480/insert/0/prometheus/api/v1/write', REMOTE_WRITE_TOKEN: 't0k' },
  });
  const out = cfg.outputs[0]!;
  assert.equal(cfg.hostname, 'gpu-box-7');
  assert.equal(out.type, 'prometheus_remote_write');
  assert.deepEqual(out.options.external_labels, { cluster: 'prod' });
  assert.equal(out.options.bearer_token, 't0k');
  assert.equal(out.options.host_label, 'host');
  assert.equal(out.bufferLimit, 100_000);
});
