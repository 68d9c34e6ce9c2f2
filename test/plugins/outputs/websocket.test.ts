// outputs.websocket through a real agent, with real `ws` clients on 127.0.0.1.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { makeLog, makeMetric, type Event, type Level } from '../../../core/events.ts';
import type { WebsocketOutput } from '../../../plugins/outputs/websocket/index.ts';
import { startAgent, waitFor, type TestAgent } from '../../helpers.ts';
import { pushInput } from '../../support/push_input.ts';

interface Client {
  ws: WebSocket;
  /** Data messages (events), in order. */
  events: Array<Record<string, any>>;
  /** Control messages (subscribed, dropped, error). */
  control: Array<Record<string, any>>;
  closed: Promise<{ code: number; reason: string }>;
  isClosed: () => boolean;
}

/** Connects and waits for the server's first `subscribed` message. */
function connect(base: string, path: string, opts: { query?: string; headers?: Record<string, string>; autoPong?: boolean } = {}): Promise<Client> {
  const url = `${base.replace(/^http/, 'ws')}${path}${opts.query ? `?${opts.query}` : ''}`;
  const ws = new WebSocket(url, { headers: opts.headers, autoPong: opts.autoPong ?? true });
  const client: Client = { ws, events: [], control: [], closed: undefined as never, isClosed: () => false };
  let closed = false;
  client.isClosed = () => closed;
  client.closed = new Promise((resolve) =>
    ws.on('close', (code, reason) => {
      closed = true;
      resolve({ code, reason: reason.toString() });
    }),
  );
  return new Promise((resolve, reject) => {
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as Record<string, any>;
      if (!msg.kind) {
        // Events have a `kind`; control messages only a `type` (metric events have both).
        client.control.push(msg);
        if (msg.type === 'subscribed' && client.control.length === 1) resolve(client);
      } else client.events.push(msg);
    });
    ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.on('error', reject);
  });
}

async function withAgent(outputOptions: string, fn: (a: TestAgent, emit: (...e: Event[]) => void, out: WebsocketOutput) => Promise<void>, agentExtra = ''): Promise<void> {
  const input = pushInput();
  const a = await startAgent(
    `
agent:
  data_dir: \${OPSHUB_TEST_DATA}
  self_metrics: false
  shutdown_timeout: 2s
  ${agentExtra}
inputs:
  - type: push
outputs:
  - type: websocket
    flush_interval: 20ms
    ${outputOptions.split('\n').join('\n    ')}
`,
    { plugins: [input.definition] },
  );
  try {
    await fn(a, input.emit, a.agent.pipeline.outputs.get('websocket')!.plugin as WebsocketOutput);
  } finally {
    await a.stop();
  }
}

const log = (message: string, over: Partial<Parameters<typeof makeLog>[0]> = {}) => makeLog({ message, ...over });

const SAMPLE: Event[] = [
  log('web ok', { source: 'web', level: 'info', labels: { container: 'web' } }),
  log('web slow', { source: 'web', level: 'warning', labels: { container: 'web' } }),
  log('db down', { source: 'db', level: 'error', labels: { container: 'db' } }),
  log('db debug', { source: 'db', level: 'debug', labels: { container: 'db' } }),
  log('hook', { source: 'webhook', level: 'critical', labels: {} }),
  makeMetric('docker_cpu', { usage_percent: 12.5 }, { container: 'web' }),
  makeMetric('docker_mem', { usage_bytes: 1024 }, { container: 'db' }),
  makeMetric('system_load', { load1: 0.5 }, { host: 'h' }),
];
const messages = (c: Client) => c.events.map((e) => (e.kind === 'log' ? e.message : e.name));

test('each event arrives as one JSON message: logs on /ws/logs, metrics on /ws/metrics', async () => {
  await withAgent('', async (a, emit) => {
    const logs = await connect(a.url, '/ws/logs');
    const metrics = await connect(a.url, '/ws/metrics');
    assert.deepEqual(logs.control, [{ type: 'subscribed', filter: {} }]);
    emit(...SAMPLE);
    await waitFor(() => logs.events.length === 5 && metrics.events.length === 3, 10_000);
    assert.deepEqual(messages(logs), ['web ok', 'web slow', 'db down', 'db debug', 'hook']);
    assert.deepEqual(messages(metrics), ['docker_cpu', 'docker_mem', 'system_load']);
    const first = logs.events[0]!;
    assert.deepEqual(Object.keys(first), ['kind', 'timestamp', 'source', 'level', 'message', 'labels', 'attributes']);
    assert.match(first.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.deepEqual(metrics.events[0]!.fields, { usage_percent: 12.5 });
    logs.ws.close();
    metrics.ws.close();
  });
});

for (const [path, query, expected] of [
  ['/ws/logs', 'container=web', ['web ok', 'web slow']],
  ['/ws/logs', 'container=web,db&level=error', ['db down']],
  ['/ws/logs', 'level=info&level=critical', ['web ok', 'hook']],
  ['/ws/logs', 'min_level=warning', ['web slow', 'db down', 'hook']],
  ['/ws/logs', 'min_level=WARN', ['web slow', 'db down', 'hook']],
  ['/ws/logs', 'source=webhook', ['hook']],
  ['/ws/logs', 'container=webhook', ['hook']], // no container label: the source stands in
  ['/ws/metrics', 'name=docker_*', ['docker_cpu', 'docker_mem']],
  ['/ws/metrics', 'name=system_load&container=web', []],
  ['/ws/metrics', 'container=db', ['docker_mem']],
] as const) {
  test(`query filter ${path}?${query} lets through ${JSON.stringify(expected)}`, async () => {
    await withAgent('', async (a, emit) => {
      const c = await connect(a.url, path, { query });
      const all = await connect(a.url, path); // sees everything: tells when the batch is through
      emit(...SAMPLE);
      await waitFor(() => all.events.length === (path === '/ws/logs' ? 5 : 3), 10_000);
      await waitFor(() => c.events.length >= expected.length, 5_000);
      assert.deepEqual(messages(c), expected);
      c.ws.close();
      all.ws.close();
    });
  });
}

for (const [path, query, status] of [
  ['/ws/logs', 'level=loud', 400],
  ['/ws/logs', 'name=x', 400],
  ['/ws/metrics', 'min_level=error', 400],
  ['/ws/nothing', '', 404],
] as const) {
  test(`a bad request ${path}?${query} is refused with ${status}`, async () => {
    await withAgent('', async (a) => {
      await assert.rejects(connect(a.url, path, { query }), (err: { status?: number }) => err.status === status);
    });
  });
}

test('a subscribe message replaces the filter; a bad one gets an error and keeps the old filter', async () => {
  await withAgent('', async (a, emit) => {
    const c = await connect(a.url, '/ws/logs', { query: 'container=web' });
    c.ws.send(JSON.stringify({ type: 'subscribe', min_level: 'error', container: ['db', 'webhook'] }));
    await waitFor(() => c.control.length === 2, 5_000);
    assert.deepEqual(c.control[1], { type: 'subscribed', filter: { container: ['db', 'webhook'], min_level: 'error' } });
    c.ws.send(JSON.stringify({ type: 'subscribe', level: 'nope' }));
    c.ws.send('not json');
    c.ws.send(JSON.stringify({ type: 'hello' }));
    await waitFor(() => c.control.length === 5, 5_000);
    assert.deepEqual(c.control.slice(2).map((m) => m.type), ['error', 'error', 'error']);
    assert.match(c.control[2]!.message, /unknown level "nope"/);
    emit(...SAMPLE);
    await waitFor(() => c.events.length === 2, 5_000);
    assert.deepEqual(messages(c), ['db down', 'hook']);
    c.ws.close();
  });
});

test('many clients each get exactly the events their filter selects, in order', async () => {
  await withAgent('', async (a, emit) => {
    const levels: Level[] = ['debug', 'info', 'warning', 'error'];
    const containers = ['c0', 'c1', 'c2', 'c3', 'c4'];
    const clients = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        connect(a.url, '/ws/logs', { query: i % 2 ? `container=${containers[i % 5]}` : `min_level=${levels[i % 4]}` }).then((c) => ({ c, i })),
      ),
    );
    const events = Array.from({ length: 200 }, (_, n) => log(`n${n}`, { level: levels[n % 4]!, labels: { container: containers[n % 5]! } }));
    emit(...events);
    for (const { c, i } of clients) {
      const want = events
        .filter((e) => (e.kind === 'log' && i % 2 ? e.labels.container === containers[i % 5] : levels.indexOf((e as { level: Level }).level) >= i % 4))
        .map((e) => (e as { message: string }).message);
      await waitFor(() => c.events.length >= want.length, 10_000, `client ${i}`);
      assert.deepEqual(messages(c), want, `client ${i}`);
    }
    for (const { c } of clients) c.ws.close();
  });
});

/** The client's TCP socket (to stop reading from it, as a stuck browser tab would). */
const socketOf = (ws: WebSocket) => (ws as unknown as { _socket: Socket })._socket;

test('a client that never reads: its queue stays under send_buffer_limit, drops are counted and it is told how many it missed', async () => {
  await withAgent('send_buffer_limit: 256KiB\nbatch_size: 500\nbuffer_limit: 100000', async (a, emit, out) => {
    const slow = await connect(a.url, '/ws/logs');
    const fast = await connect(a.url, '/ws/logs');
    socketOf(slow.ws).pause();
    const payload = 'x'.repeat(2000);
    // Emit until the kernel's socket buffers and then send_buffer_limit are full (drops start), then some more.
    let total = 0;
    let extra = 0;
    while (extra < 2000 && total < 100_000) {
      emit(...Array.from({ length: 500 }, (_, k) => log(`${total + k} ${payload}`)));
      total += 500;
      await waitFor(() => fast.events.length >= total, 20_000, `fast client at ${total}`);
      if (out.stats().logs!.messages_dropped_total > 0) extra += 500;
    }
    const stats = out.stats().logs!;
    assert.ok(stats.messages_dropped_total > 0, 'drops counted');
    assert.ok(stats.max_buffered_bytes <= 256 * 1024, `queued at most ${stats.max_buffered_bytes} bytes`);
    assert.equal(fast.events.length, total, 'a reading client misses nothing');
    assert.deepEqual(fast.control.filter((m) => m.type === 'dropped'), []);

    // The slow client reads again: what it got plus what it was told it missed is everything.
    socketOf(slow.ws).resume();
    const missed = () => slow.control.filter((m) => m.type === 'dropped').reduce((n, m) => n + (m.count as number), 0);
    await waitFor(() => slow.events.length + missed() === total, 20_000, 'slow client caught up');
    assert.equal(missed(), stats.messages_dropped_total);
    const self = a.agent.pipeline.selfMetrics().find((m) => m.kind === 'metric' && m.name === 'opshub_plugin' && m.tags.plugin === 'websocket' && m.type === 'counter');
    assert.equal(self?.kind === 'metric' ? self.fields.logs_messages_dropped_total : undefined, stats.messages_dropped_total, 'exported as opshub_plugin{plugin="websocket"}');
    const seq = slow.events.map((e) => Number((e.message as string).split(' ')[0]));
    assert.deepEqual(seq, [...seq].sort((x, y) => x - y), 'what arrives is in order');
    slow.ws.close();
    fast.ws.close();
  });
});

test('on_slow: disconnect closes a client that does not read', async () => {
  await withAgent('send_buffer_limit: 64KiB\non_slow: disconnect\nbatch_size: 500\nbuffer_limit: 100000', async (a, emit, out) => {
    const slow = await connect(a.url, '/ws/logs');
    const fast = await connect(a.url, '/ws/logs');
    socketOf(slow.ws).pause();
    const payload = 'y'.repeat(2000);
    for (let i = 0; i < 12_000 && out.stats().logs!.slow_disconnects_total === 0; i += 500) {
      emit(...Array.from({ length: 500 }, (_, k) => log(`${i + k} ${payload}`)));
      await waitFor(() => fast.events.length >= i + 500, 20_000);
    }
    assert.equal(out.stats().logs!.slow_disconnects_total, 1);
    socketOf(slow.ws).resume();
    await slow.closed;
    await waitFor(() => out.stats().logs!.clients === 1, 5_000);
    assert.equal(fast.isClosed(), false);
    fast.ws.close();
  });
});

test('heartbeat: a client that stops answering pings is disconnected, a live one stays', async () => {
  await withAgent('heartbeat_interval: 400ms', async (a, _emit, out) => {
    const dead = await connect(a.url, '/ws/logs', { autoPong: false });
    const live = await connect(a.url, '/ws/logs');
    const closed = await dead.closed;
    assert.equal(closed.code, 1006); // terminated, no close handshake
    assert.equal(out.stats().logs!.dead_terminated_total, 1);
    await new Promise((r) => setTimeout(r, 1300)); // three more heartbeats
    assert.equal(live.isClosed(), false);
    live.ws.close();
  });
});

for (const [what, query, headers, ok] of [
  ['no token', '', {}, false],
  ['a wrong token', 'token=nope', {}, false],
  ['the token in the query string', 'token=s3cret', {}, true],
  ['the token as a bearer header', '', { authorization: 'Bearer s3cret' }, true],
] as const) {
  test(`auth: with agent.http.auth_token set, ${what} ${ok ? 'connects' : 'gets 401'}`, async () => {
    await withAgent('', async (a) => {
      const attempt = connect(a.url, '/ws/logs', { query, headers });
      if (ok) (await attempt).ws.close();
      else await assert.rejects(attempt, (err: { status?: number }) => err.status === 401);
    }, 'http: { auth_token: s3cret }');
  });
}

test('max_clients: one more client is refused with 503', async () => {
  await withAgent('max_clients: 2', async (a) => {
    const c1 = await connect(a.url, '/ws/metrics');
    const c2 = await connect(a.url, '/ws/metrics');
    await assert.rejects(connect(a.url, '/ws/metrics'), (err: { status?: number }) => err.status === 503);
    c1.ws.close();
    await c1.closed;
    await waitFor(async () => {
      try {
        (await connect(a.url, '/ws/metrics')).ws.close();
        return true;
      } catch {
        return false;
      }
    }, 5_000, 'a free place');
    c2.ws.close();
  });
});

test('agent shutdown closes clients with 1001 and the paths are unmounted', async () => {
  const input = pushInput();
  const a = await startAgent(
    `
agent: { data_dir: "\${OPSHUB_TEST_DATA}", self_metrics: false }
inputs: [{ type: push }]
outputs: [{ type: websocket, logs_path: /live/logs, metrics_path: "" }]
`,
    { plugins: [input.definition] },
  );
  const c = await connect(a.url, '/live/logs');
  await assert.rejects(connect(a.url, '/ws/metrics'), (err: { status?: number }) => err.status === 404);
  await a.stop();
  assert.equal((await c.closed).code, 1001);
});

test('both endpoints are documented in /openapi.json with their filters', async () => {
  await withAgent('', async (a) => {
    const doc = (await (await fetch(`${a.url}/openapi.json`)).json()) as { paths: Record<string, any> };
    const logs = doc.paths['/ws/logs']?.get;
    const metrics = doc.paths['/ws/metrics']?.get;
    assert.ok(logs && metrics, 'both paths listed');
    const names = (op: any) => (op.parameters as Array<{ name: string }>).map((p) => p.name).sort();
    assert.deepEqual(names(logs), ['container', 'level', 'min_level', 'source']);
    assert.deepEqual(names(metrics), ['container', 'name']);
  });
});
