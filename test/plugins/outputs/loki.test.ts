// outputs.loki through a real agent against a test Loki receiver on 127.0.0.1
// that decodes the real wire formats (snappy + logproto.PushRequest, JSON, gzip).

import { after, before, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { builtinPlugins } from '../../../core/builtins.ts';
import { loadConfig } from '../../../core/config.ts';
import { makeLog, makeMetric, type Event, type Level } from '../../../core/events.ts';
import { createLogger } from '../../../core/log.ts';
import type { PluginContext } from '../../../core/plugin.ts';
import type { RunningOutput } from '../../../core/running/output.ts';
import { createLoki, parseRetryAfter, pushUrl, type LokiConfig, type LokiStats } from '../../../plugins/outputs/loki/index.ts';
import { sanitizeLabelName } from '../../../plugins/outputs/loki/entries.ts';
import { startAgent, tempDir, waitFor, type TestAgent } from '../../helpers.ts';
import { LokiReceiver } from '../../support/loki_receiver.ts';
import { pushInput } from '../../support/push_input.ts';

const T0 = 1_790_000_000_123_456_789n; // 2026-09-21, with nanoseconds

let loki: LokiReceiver;
before(async () => {
  loki = await LokiReceiver.start();
});
after(() => loki.close());

function fresh(): void {
  loki.pushes.length = 0;
  loki.answers.length = 0;
  loki.decodeErrors.length = 0;
  loki.script = [];
  loki.decide = undefined;
  loki.maxBodyBytes = Infinity;
}

interface Running {
  a: TestAgent;
  emit: (...events: Event[]) => void;
  out: RunningOutput;
  stats: LokiStats;
}

/** Starts an agent: a push input → outputs.loki pointing at the receiver, with `options` (YAML lines). */
async function withLoki(options: string, fn: (r: Running) => Promise<void>, common = 'flush_interval: 50ms', receiver?: LokiReceiver): Promise<void> {
  fresh();
  const target = receiver ?? loki;
  const input = pushInput();
  const a = await startAgent(
    `
agent:
  data_dir: \${OPSHUB_TEST_DATA}
  self_metrics: false
  hostname: testhost
  shutdown_timeout: 2s
inputs:
  - type: push
outputs:
  - type: loki
    url: ${target.url}
    ${common.split('\n').join('\n    ')}
    ${options.split('\n').join('\n    ')}
`,
    { plugins: [input.definition] },
  );
  const out = a.agent.pipeline.outputs.get('loki')!;
  try {
    await fn({ a, emit: input.emit, out, stats: (out.plugin as unknown as { stats: LokiStats }).stats });
    assert.deepEqual(target.decodeErrors, []);
  } finally {
    await a.stop();
  }
}

const log = (message: string, over: Partial<Parameters<typeof makeLog>[0]> = {}) => makeLog({ message, ...over });
const numbered = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => log(`line ${from + i}`, { timestamp: T0 + BigInt(from + i), labels: { container: 'web' } }));

test('protobuf push: one stream per label set, labels from event fields, ns timestamps, entries sorted, the rest as structured metadata', async () => {
  await withLoki('', async ({ emit }) => {
    emit(
      log('third', { timestamp: T0 + 2n, source: 'web', labels: { container: 'web', stream: 'stdout' }, attributes: { status: 200, user: 'ann' } }),
      log('first', { timestamp: T0, source: 'web', labels: { container: 'web', stream: 'stdout' } }),
      log('disk full', { timestamp: T0 + 1n, source: 'db', level: 'error', labels: { container: 'db', stream: 'stderr' } }),
      log('second', { timestamp: T0 + 1n, source: 'web', labels: { container: 'web', stream: 'stderr' } }),
    );
    await waitFor(() => loki.entries().length === 4, 10_000, '4 entries');
    assert.equal(loki.pushes.length, 1);
    const push = loki.pushes[0]!;
    assert.equal(push.encoding, 'protobuf');
    assert.equal(push.headers['content-type'], 'application/x-protobuf');
    const byLabels = new Map(push.streams.map((s) => [s.labelsText, s]));
    assert.deepEqual([...byLabels.keys()].sort(), [
      '{container="db", host="testhost", job="opshub", level="error"}',
      '{container="web", host="testhost", job="opshub", level="info"}',
    ]);
    const web = byLabels.get('{container="web", host="testhost", job="opshub", level="info"}')!;
    assert.deepEqual(web.entries.map((e) => [e.ts, e.line]), [[T0, 'first'], [T0 + 1n, 'second'], [T0 + 2n, 'third']]);
    assert.deepEqual(web.entries[2]!.metadata, { source: 'web', stream: 'stdout', status: '200', user: 'ann' });
    assert.deepEqual(web.entries[1]!.metadata, { source: 'web', stream: 'stderr' });
    const db = byLabels.get('{container="db", host="testhost", job="opshub", level="error"}')!;
    assert.deepEqual(db.entries.map((e) => [e.ts, e.line]), [[T0 + 1n, 'disk full']]);
  });
});

for (const [name, options, encoding, gzip] of [
  ['protobuf + snappy', 'encoding: protobuf', 'protobuf', false],
  ['JSON', 'encoding: json', 'json', false],
  ['JSON + gzip', 'encoding: json\ngzip: true', 'json', true],
] as const) {
  test(`${name}: the receiver decodes the same streams, lines, timestamps and metadata`, async () => {
    await withLoki(options, async ({ emit }) => {
      emit(
        log('héllo "quoted" \\ 日本', { timestamp: T0, labels: { container: 'we"ird\\name' }, attributes: { nested: { a: [1, 2] } } }),
        log('', { timestamp: T0 + 999_999_999n, labels: { container: 'we"ird\\name' } }),
      );
      await waitFor(() => loki.entries().length === 2, 10_000, '2 entries');
      const push = loki.pushes[0]!;
      assert.equal(push.encoding, encoding);
      assert.equal(push.gzip, gzip);
      assert.equal(push.streams.length, 1);
      assert.deepEqual(push.streams[0]!.labels, { container: 'we"ird\\name', host: 'testhost', job: 'opshub', level: 'info' });
      assert.deepEqual(
        push.streams[0]!.entries.map((e) => [e.ts, e.line, e.metadata]),
        [
          [T0, 'héllo "quoted" \\ 日本', { nested: '{"a":[1,2]}' }],
          [T0 + 999_999_999n, '', {}],
        ],
      );
    });
  });
}

for (const [format, expected] of [
  ['json', '{"message":"GET /x","source":"web","stream":"stdout","status":404,"user":"bob smith"}'],
  ['logfmt', 'message="GET /x" source=web stream=stdout status=404 user="bob smith"'],
] as const) {
  test(`line_format ${format}: the line carries the message and every field that is not a stream label`, async () => {
    await withLoki(`line_format: ${format}`, async ({ emit }) => {
      emit(log('GET /x', { timestamp: T0, source: 'web', labels: { container: 'web', stream: 'stdout' }, attributes: { status: 404, user: 'bob smith' } }));
      await waitFor(() => loki.entries().length === 1, 10_000, '1 entry');
      const [e] = loki.entries();
      assert.equal(e!.line, expected);
      assert.deepEqual(e!.metadata, {});
    });
  });
}

test('labels: configured names are sanitised, static labels added, event values win over static ones', async () => {
  await withLoki('labels: [com.docker.compose.service, level, source]\nstatic_labels: { env: prod, source: default }', async ({ emit }) => {
    emit(
      log('a', { timestamp: T0, source: 'api', labels: { 'com.docker.compose.service': 'api' } }),
      log('b', { timestamp: T0, source: '', labels: {} }),
    );
    await waitFor(() => loki.entries().length === 2, 10_000, '2 entries');
    const labelSets = loki.entries().map((e) => e.labels);
    assert.deepEqual(labelSets, [
      { com_docker_compose_service: 'api', env: 'prod', level: 'info', source: 'api' },
      { env: 'prod', level: 'info', source: 'default' },
    ]);
  });
});

test('cardinality guard: past max_label_values a label value goes to structured metadata, counted', async () => {
  await withLoki('max_label_values: 3\nlabels: [container]', async ({ emit, stats }) => {
    emit(...Array.from({ length: 10 }, (_, i) => log(`from c${i}`, { timestamp: T0 + BigInt(i), labels: { container: `c${i}` } })));
    await waitFor(() => loki.entries().length === 10, 10_000, '10 entries');
    const streams = loki.pushes.flatMap((p) => p.streams);
    assert.deepEqual(streams.map((s) => s.labels.container ?? '(none)').sort(), ['(none)', 'c0', 'c1', 'c2']);
    const spill = streams.find((s) => !s.labels.container)!;
    assert.deepEqual(spill.entries.map((e) => e.metadata.container), ['c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9']);
    assert.equal(stats.label_values_overflowed, 7);
  });
});

async function options(extra: Record<string, unknown>): Promise<LokiConfig> {
  const yaml = JSON.stringify({ agent: { self_metrics: false }, outputs: [{ type: 'loki', url: 'http://127.0.0.1:3100', ...extra }] });
  const cfg = await loadConfig('t.yaml', { builtins: builtinPlugins, env: {}, text: yaml });
  return cfg.outputs[0]!.options as unknown as LokiConfig;
}

const ctx = (): PluginContext => ({
  id: 'loki', log: createLogger({ sink: () => undefined }), dataDir: '/tmp', http: undefined as never, hostname: 'h', signal: new AbortController().signal,
});

for (const [what, extra, message] of [
  ['an id-like label', { labels: ['container', 'request_id'] }, /"request_id" cannot be a label: its values are unbounded/],
  ['a camelCase id label', { labels: ['traceId'] }, /"traceId" cannot be a label/],
  ['a timestamp label', { static_labels: { timestamp: 'x' } }, /"timestamp" cannot be a label/],
  ['more than 15 labels', { labels: Array.from({ length: 10 }, (_, i) => `l${i}`), static_labels: Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`s${i}`, 'v'])) }, /16 labels configured; Loki allows at most 15/],
  ['a reserved name', { labels: ['__name__'] }, /reserved/],
  ['gzip with protobuf', { gzip: true }, /gzip applies to encoding: json only/],
  ['basic auth and a bearer token', { basic_auth: { username: 'u', password: 'p' }, bearer_token: 't' }, /not both/],
] as const) {
  test(`config: ${what} is refused at start-up`, async () => {
    const cfg = await options(extra as Record<string, unknown>);
    assert.throws(() => createLoki(cfg, ctx()), message);
  });
}

test('config: an agent whose loki output has an id label does not start, and says why', async () => {
  await assert.rejects(
    startAgent(`
agent: { self_metrics: false, data_dir: "\${OPSHUB_TEST_DATA}" }
outputs:
  - type: loki
    url: http://127.0.0.1:1
    labels: [container_id]
`),
    /outputs\.loki: cannot start: "container_id" cannot be a label/,
  );
});

for (const [input, expected] of [
  ['com.docker.compose.service', 'com_docker_compose_service'],
  ['9lives', '_9lives'],
  ['ok_Name1', 'ok_Name1'],
  ['kube-pod/name', 'kube_pod_name'],
] as const) {
  test(`sanitizeLabelName("${input}") is "${expected}"`, () => assert.equal(sanitizeLabelName(input), expected));
}

for (const [value, expected] of [
  ['2', 2000],
  ['0', 0],
  ['1.5', 1500],
  [new Date(Date.UTC(2030, 0, 1, 0, 0, 30)).toUTCString(), 30_000],
  ['soon', undefined],
  [undefined, undefined],
] as const) {
  test(`Retry-After ${JSON.stringify(value)} means ${expected} ms`, () => {
    assert.equal(parseRetryAfter(value, Date.UTC(2030, 0, 1)), expected);
  });
}

for (const [url, expected] of [
  ['http://loki:3100', 'http://loki:3100/loki/api/v1/push'],
  ['http://loki:3100/', 'http://loki:3100/loki/api/v1/push'],
  ['https://gw.example/tenant-a', 'https://gw.example/tenant-a/loki/api/v1/push'],
  ['http://loki:3100/loki/api/v1/push', 'http://loki:3100/loki/api/v1/push'],
] as const) {
  test(`url ${url} pushes to ${expected}`, () => assert.equal(pushUrl(url).href, expected));
}

test('tenant, basic auth and extra headers are sent', async () => {
  await withLoki('tenant_id: team-a\nbasic_auth: { username: user, password: "p:ss" }\nheaders: { x-extra: "1" }', async ({ emit }) => {
    emit(log('x', { timestamp: T0 }));
    await waitFor(() => loki.pushes.length === 1, 10_000);
    const h = loki.pushes[0]!.headers;
    assert.equal(h['x-scope-orgid'], 'team-a');
    assert.equal(h.authorization, `Basic ${Buffer.from('user:p:ss').toString('base64')}`);
    assert.equal(h['x-extra'], '1');
  });
});

test('a bearer token is sent as Authorization: Bearer', async () => {
  await withLoki('bearer_token: s3cret', async ({ emit }) => {
    emit(log('x', { timestamp: T0 }));
    await waitFor(() => loki.pushes.length === 1, 10_000);
    assert.equal(loki.pushes[0]!.headers.authorization, 'Bearer s3cret');
    assert.equal(loki.pushes[0]!.headers['x-scope-orgid'], undefined);
  });
});

test('429 with Retry-After: the next attempt waits that long, then the batch is delivered once', async () => {
  await withLoki('', async ({ emit, out }) => {
    const at: number[] = [];
    loki.decide = () => {
      at.push(performance.now());
      return at.length === 1 ? { status: 429, headers: { 'retry-after': '1' }, body: 'Ingestion rate limit exceeded' } : undefined;
    };
    emit(...numbered(3));
    await waitFor(() => loki.entries().length === 3, 10_000, 'delivery after 429');
    assert.deepEqual(loki.answers, [429, 204]);
    assert.ok(at[1]! - at[0]! >= 950, `retried after ${Math.round(at[1]! - at[0]!)} ms, not the 10 ms backoff`);
    assert.deepEqual(loki.lines(), ['line 0', 'line 1', 'line 2']);
    assert.equal(out.stats.write_errors, 1);
    assert.equal(out.stats.dropped, 0);
  }, 'flush_interval: 50ms\nretry_initial_backoff: 10ms\nretry_max_backoff: 10s');
});

test('500 then recovery: retried with backoff, delivered once and in order', async () => {
  await withLoki('', async ({ emit, out }) => {
    loki.script = [{ status: 500 }, { status: 502 }, { status: 503 }];
    emit(...numbered(5));
    // The receiver records a push before its 204 reaches the output, so wait for both.
    await waitFor(() => loki.entries().length === 5 && out.stats.written === 5, 10_000, 'delivery after the retries');
    assert.deepEqual(loki.answers, [500, 502, 503, 204]);
    assert.deepEqual(loki.lines(), ['line 0', 'line 1', 'line 2', 'line 3', 'line 4']);
    assert.equal(out.stats.write_errors, 3);
    assert.equal(out.stats.written, 5);
  }, 'flush_interval: 50ms\nretry_initial_backoff: 20ms\nretry_max_backoff: 100ms');
});

test('400: the batch is dropped and counted, the reason logged once, later batches go through', async () => {
  await withLoki('', async ({ a, emit, out, stats }) => {
    loki.decide = (push) =>
      push.streams.some((s) => s.entries.some((e) => e.line.startsWith('bad')))
        ? { status: 400, body: 'entry for stream {container="web"} has timestamp too old' }
        : undefined;
    emit(log('bad 1', { timestamp: T0 }), log('bad 2', { timestamp: T0 }));
    await waitFor(() => out.stats.dropped_permanent === 2, 10_000, 'first batch dropped');
    emit(log('bad 3', { timestamp: T0 }));
    await waitFor(() => out.stats.dropped_permanent === 3, 10_000, 'second batch dropped');
    emit(log('good', { timestamp: T0 }));
    await waitFor(() => loki.entries().length === 1, 10_000, 'good line');
    assert.deepEqual(loki.lines(), ['good']);
    assert.deepEqual(loki.answers, [400, 400, 204]); // never retried
    assert.equal(stats.entries_rejected, 3);
    assert.equal(out.stats.dropped, 3);
    const self = a.agent.pipeline.selfMetrics().find((m) => m.kind === 'metric' && m.name === 'opshub_plugin' && m.tags.plugin === 'loki' && m.type === 'counter');
    assert.equal(self?.kind === 'metric' ? self.fields.entries_rejected_total : undefined, 3, 'exported as opshub_plugin{plugin="loki"}');
    const reasons = a.logs.filter((l) => l.message.includes('timestamp too old'));
    assert.equal(reasons.length, 1, 'the reason is logged once');
  }, 'flush_interval: 50ms\nbatch_size: 2');
});

test('413: the push is split in halves until Loki takes it; an entry too large alone is dropped and counted', async () => {
  await withLoki('', async ({ emit, out, stats }) => {
    loki.maxBodyBytes = 2000;
    // Random text, so that snappy cannot shrink it below the limit.
    const lines = Array.from({ length: 40 }, (_, i) => log(`line ${i} ${randomBytes(i === 17 ? 3000 : 60).toString('base64')}`, { timestamp: T0 + BigInt(i) }));
    emit(...lines);
    await waitFor(() => loki.entries().length === 39, 15_000, '39 entries');
    assert.deepEqual(loki.lines(), lines.filter((_, i) => i !== 17).map((e) => (e as { message: string }).message));
    assert.ok(stats.splits >= 3, `split ${stats.splits} times`);
    assert.equal(stats.entries_too_large, 1);
    assert.equal(out.stats.dropped, 0);
    assert.ok(loki.pushes.every((p) => p.bytes <= 2000));
  }, 'flush_interval: 50ms\nbatch_size: 100');
});

test('batch_max_bytes splits a batch into several pushes, in order', async () => {
  await withLoki('batch_max_bytes: 4KiB', async ({ emit }) => {
    const lines = numbered(300);
    emit(...lines);
    await waitFor(() => loki.entries().length === 300, 10_000, '300 entries');
    assert.ok(loki.pushes.length >= 3, `${loki.pushes.length} pushes`);
    assert.deepEqual(loki.lines(), lines.map((e) => (e as { message: string }).message));
  }, 'flush_interval: 50ms\nbatch_size: 1000');
});

test('a failure in the middle of a split batch resumes after what Loki already has: nothing twice', async () => {
  await withLoki('batch_max_bytes: 2KiB', async ({ emit }) => {
    let n = 0;
    loki.decide = () => (++n === 3 ? { status: 503 } : undefined);
    const lines = numbered(200);
    emit(...lines);
    await waitFor(() => loki.entries().length === 200, 10_000, '200 entries');
    assert.ok(loki.answers.includes(503));
    assert.deepEqual(loki.lines(), lines.map((e) => (e as { message: string }).message));
  }, 'flush_interval: 50ms\nbatch_size: 1000\nretry_initial_backoff: 20ms\nretry_max_backoff: 100ms');
});

test('an outage of many batches: events wait in the buffer and all arrive once, in order, when Loki is back', async () => {
  await withLoki('', async ({ emit, out }) => {
    let down = true;
    loki.decide = () => (down ? { status: 503, body: 'ingester not ready' } : undefined);
    loki.script = ['reset', 'reset']; // and a couple of dropped connections
    const total = 2000;
    for (let i = 0; i < total; i += 100) {
      emit(...numbered(100, i));
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => loki.answers.length >= 8, 10_000, 'failed attempts');
    assert.equal(loki.entries().length, 0);
    assert.ok(out.bufferSize > 0);
    down = false;
    await waitFor(() => loki.entries().length >= total, 20_000, `${total} entries`);
    await waitFor(() => out.bufferSize === 0, 5_000);
    const got = loki.lines();
    assert.equal(got.length, total, 'nothing twice');
    assert.deepEqual(got, Array.from({ length: total }, (_, i) => `line ${i}`));
    assert.equal(out.stats.dropped, 0);
    assert.ok(loki.answers.includes(0) && loki.answers.includes(503));
  }, 'flush_interval: 50ms\nbatch_size: 50\nbuffer_limit: 5000\nretry_initial_backoff: 20ms\nretry_max_backoff: 200ms');
});

test('metric events are not pushed, only counted', async () => {
  await withLoki('', async ({ emit, stats, out }) => {
    emit(makeMetric('cpu', { usage: 1 }), log('a log', { timestamp: T0 }), makeMetric('mem', { used: 2 }));
    await waitFor(() => loki.entries().length === 1 && out.stats.written === 3, 10_000);
    assert.equal(stats.metrics_ignored, 2);
    assert.deepEqual(loki.lines(), ['a log']);
  });
});

test('many lines and streams in one batch keep their per-stream order', async () => {
  await withLoki('batch_max_bytes: 64KiB', async ({ emit }) => {
    const levels: Level[] = ['info', 'warning', 'error'];
    const events = Array.from({ length: 3000 }, (_, i) =>
      log(`n=${i}`, { timestamp: T0 + BigInt(i * 7) % 5000n, level: levels[i % 3]!, labels: { container: `c${i % 5}` } }),
    );
    emit(...events);
    await waitFor(() => loki.entries().length === 3000, 15_000);
    for (const p of loki.pushes) {
      for (const s of p.streams) {
        for (let i = 1; i < s.entries.length; i++) assert.ok(s.entries[i - 1]!.ts <= s.entries[i]!.ts, 'sorted within the stream');
      }
    }
    assert.deepEqual(new Set(loki.lines()).size, 3000);
  }, 'flush_interval: 50ms\nbatch_size: 1000');
});

/** A self-signed certificate for 127.0.0.1 (openssl is installed by scripts/ensure-peers.sh). */
function selfSigned(dir: string): { key: string; cert: string } {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { key, cert };
}

test('https: trusts tls.ca_file and presents tls.cert_file/key_file to a Loki that requires a client certificate', async () => {
  const tmp = tempDir();
  const { key, cert } = selfSigned(tmp.dir);
  const secure = await LokiReceiver.start({ key: readFileSync(key), cert: readFileSync(cert), ca: readFileSync(cert), requestCert: true, rejectUnauthorized: true });
  try {
    await withLoki(`tls: { ca_file: ${cert}, cert_file: ${cert}, key_file: ${key} }`, async ({ emit }) => {
      emit(log('over tls', { timestamp: T0 }));
      await waitFor(() => secure.entries().length === 1, 10_000);
      assert.deepEqual(secure.lines(), ['over tls']);
    }, 'flush_interval: 50ms', secure);
  } finally {
    await secure.close();
    tmp.cleanup();
  }
});

test('https: an untrusted certificate is retried, not dropped; insecure_skip_verify accepts it', async () => {
  const tmp = tempDir();
  const { key, cert } = selfSigned(tmp.dir);
  const secure = await LokiReceiver.start({ key: readFileSync(key), cert: readFileSync(cert) });
  try {
    await withLoki('', async ({ a, emit, out }) => {
      emit(log('x', { timestamp: T0 }));
      await waitFor(() => out.stats.write_errors >= 2, 10_000, 'retries');
      assert.equal(out.stats.dropped, 0);
      assert.equal(secure.answers.length, 0);
      assert.ok(a.logs.some((l) => /cannot reach Loki.*certificate/i.test(l.message)), 'the certificate problem is logged');
    }, 'flush_interval: 50ms\nretry_initial_backoff: 20ms\nretry_max_backoff: 100ms', secure);
    await withLoki('tls: { insecure_skip_verify: true }', async ({ emit }) => {
      emit(log('y', { timestamp: T0 }));
      await waitFor(() => secure.entries().length === 1, 10_000);
    }, 'flush_interval: 50ms', secure);
  } finally {
    await secure.close();
    tmp.cleanup();
  }
});

test('config/examples/live-stack.yaml (Loki + WebSocket) is valid', async () => {
  const cfg = await loadConfig('config/examples/live-stack.yaml', { builtins: builtinPlugins, env: {} });
  assert.deepEqual(cfg.outputs.map((o) => o.type), ['loki', 'websocket']);
  assert.doesNotThrow(() => createLoki(cfg.outputs[0]!.options as unknown as LokiConfig, ctx()));
});
