import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type { LogEvent } from '../../../core/events.ts';
import { sign } from '../../../plugins/inputs/session_webhook/index.ts';
import { parseTimestamp } from '../../../plugins/inputs/session_webhook/payloads.ts';
import { memoryOutput, startAgent, tempDir, waitFor, type TestAgent } from '../../helpers.ts';

const TESTDATA = path.resolve('plugins/inputs/session_webhook/testdata');
const payload = (name: string): unknown => JSON.parse(readFileSync(path.join(TESTDATA, name), 'utf8'));

const AGENT_TOKEN = 'agent-secret';

function yaml(options = '', agentToken = AGENT_TOKEN): string {
  return `
agent:
  self_metrics: false
  shutdown_timeout: 2s
  data_dir: \${OPSHUB_TEST_DATA}
  http:
    auth_token: "${agentToken}"
inputs:
  - type: session_webhook
${options}
outputs:
  - type: memory
    flush_interval: 20ms
`;
}

async function withAgent(options: string, fn: (t: TestAgent, events: LogEvent[]) => Promise<void>, agentToken = AGENT_TOKEN): Promise<void> {
  const mem = memoryOutput();
  const t = await startAgent(yaml(options, agentToken), { plugins: [mem.definition] });
  try {
    await fn(t, mem.events as LogEvent[]);
  } finally {
    await t.stop();
  }
}

interface Reply {
  status: number;
  body: any;
}

async function post(t: TestAgent, body: unknown, opts: { path?: string; headers?: Record<string, string>; raw?: string | Buffer; token?: string | null } = {}): Promise<Reply> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(opts.headers ?? {}) };
  const token = opts.token === undefined ? AGENT_TOKEN : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${t.url}${opts.path ?? '/users/session'}`, { method: 'POST', headers, body: opts.raw ?? JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Posts a marker event and waits for it: everything posted before it has been through the pipeline by then. */
async function settle(t: TestAgent, events: LogEvent[], headers: Record<string, string> = {}, token?: string | null): Promise<void> {
  const marker = `marker-${Math.random()}`;
  const r = await post(t, { username: marker, action: 'marker' }, { headers, token });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await waitFor(() => events.some((e) => e.attributes.username === marker), 10_000, 'the marker event');
}

const recorded = (events: LogEvent[]) => events.filter((e) => e.attributes.action !== 'marker');
const OK = { status: 200, body: { status: 'recorded', count: 1 } };

// ---------------------------------------------------------------- payload forms

test('the OpsHub form is recorded as a session log with the user attributes, and labels fit for Loki', async () => {
  await withAgent('', async (t, events) => {
    const r = await post(t, payload('opshub-login.json'));
    assert.deepEqual(r, OK);
    await waitFor(() => events.length === 1, 10_000, 'the event');
    const e = events[0]!;
    assert.equal(e.kind, 'log');
    assert.equal(e.source, 'webhook');
    assert.equal(e.level, 'info');
    assert.equal(e.message, 'login by alice on llama3.1:8b');
    assert.deepEqual(e.labels, { category: 'session', origin: 'opshub' }, 'no user names or ids as labels');
    assert.deepEqual(e.attributes, {
      category: 'session',
      origin: 'opshub',
      username: 'alice',
      action: 'login',
      model: 'llama3.1:8b',
      session_id: 'sess-7f3a',
      ip_address: '192.168.1.23',
      user_agent: 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
      metadata: { auth: 'oidc', groups: ['ml'] },
      sender_ip: '127.0.0.1',
    });
    assert.ok(e.timestamp > BigInt(Date.now() - 60_000) * 1_000_000n);
  });
});

test('a timestamp in the payload is kept to the nanosecond; a failed action is a warning', async () => {
  await withAgent('', async (t, events) => {
    assert.deepEqual(await post(t, { username: 'bob', action: 'login_failed', timestamp: '2026-11-23T12:00:00.123456789Z' }), OK);
    assert.deepEqual(await post(t, { username: 'carol', action: 'logout', timestamp: 1_795_435_200 }), OK);
    await waitFor(() => events.length === 2, 10_000, 'both events');
    const [bob, carol] = [events.find((e) => e.attributes.username === 'bob')!, events.find((e) => e.attributes.username === 'carol')!];
    assert.equal(bob.timestamp, 1_795_435_200_123_456_789n);
    assert.equal(bob.level, 'warning');
    assert.equal(carol.timestamp, 1_795_435_200_000_000_000n);
    assert.equal(carol.level, 'info');
  });
});

test('Unix times in s, ms, µs and ns and RFC 3339 offsets read as the same instant', () => {
  const ns = 1_795_435_200_123_000_000n;
  assert.equal(parseTimestamp(1_795_435_200.123), ns);
  assert.equal(parseTimestamp(1_795_435_200_123), ns);
  assert.equal(parseTimestamp(1_795_435_200_123_000), ns);
  const fromNsNumber = parseTimestamp(Number(ns))!; // a JSON number cannot hold every ns: within a microsecond
  assert.ok(fromNsNumber - ns < 1000n && ns - fromNsNumber < 1000n);
  assert.equal(parseTimestamp('2026-11-23T13:00:00.123+01:00'), ns);
  assert.equal(parseTimestamp('not a time'), undefined);
});

test('a batch (JSON array) is recorded in order and answered with its count', async () => {
  await withAgent('', async (t, events) => {
    const batch = payload('opshub-batch.json') as unknown[];
    assert.deepEqual(await post(t, batch), { status: 200, body: { status: 'recorded', count: 3 } });
    await waitFor(() => events.length === 3, 10_000, 'the batch');
    assert.deepEqual(
      events.map((e) => [e.attributes.username, e.attributes.action]),
      [
        ['alice', 'login'],
        ['alice', 'request'],
        ['alice', 'logout'],
      ],
    );
  });
});

test("Open WebUI's sign-up webhook (its default JSON payload, the user as JSON text) becomes a signup event", async () => {
  await withAgent('', async (t, events) => {
    assert.deepEqual(await post(t, payload('openwebui-signup.json'), { token: null, path: `/users/session?token=${AGENT_TOKEN}` }), OK);
    await waitFor(() => events.length === 1, 10_000, 'the event');
    const e = events[0]!;
    assert.equal(e.message, 'New user signed up: Tim');
    assert.deepEqual(e.labels, { category: 'session', origin: 'openwebui' });
    assert.deepEqual(e.attributes, {
      category: 'session',
      origin: 'openwebui',
      action: 'signup',
      username: 'Tim',
      email: 'tim@example.com',
      user_id: '3b5e6b2e-8d1a-4d6c-9f53-0b7a2c1d9e41',
      role: 'pending',
      sender_ip: '127.0.0.1',
    });
  });
});

test("Open WebUI's chat notification names the chat and, from ?username=, the user, but not the answer's text", async () => {
  await withAgent('', async (t, events) => {
    assert.deepEqual(await post(t, payload('openwebui-chat.json'), { token: null, path: `/users/session?token=${AGENT_TOKEN}&username=alice` }), OK);
    await waitFor(() => events.length === 1, 10_000, 'the event');
    const e = events[0]!;
    assert.equal(e.attributes.action, 'chat_response');
    assert.equal(e.attributes.chat_id, '9c1f0c3e-2b47-4f7e-a6a0-5d2e8f1b7c90');
    assert.equal(e.attributes.title, 'Quarterly report outline');
    assert.equal(e.attributes.username, 'alice');
    assert.equal(e.message, 'chat response ready: Quarterly report outline (alice)');
    assert.ok(!`${e.message} ${JSON.stringify(e.attributes)}`.includes('Executive summary'), 'the answer is not stored');
  });
});

for (const [file, expected] of [
  ['openwebui-slack-signup.json', { action: 'signup', username: 'Tim', message: 'New user signed up: Tim' }],
  ['openwebui-discord-chat.json', { action: 'chat_response', chat_id: '9c1f0c3e', title: 'Quarterly report outline' }],
  ['openwebui-teams-signup.json', { action: 'signup', username: 'Tim', email: 'tim@example.com', role: 'pending' }],
  ['openwebui-docs-new-user.json', { action: 'signup', username: 'Tim', email: 'tim@example.com', event: 'new_user' }],
] as const) {
  test(`Open WebUI's ${file.replace(/^openwebui-|\.json$/g, '')} payload is understood`, async () => {
    await withAgent('', async (t, events) => {
      assert.deepEqual(await post(t, payload(file)), OK);
      await waitFor(() => events.length === 1, 10_000, 'the event');
      const e = events[0]!;
      for (const [k, v] of Object.entries(expected)) {
        if (k === 'message') assert.equal(e.message, v);
        else assert.equal(e.attributes[k], v, k);
      }
      assert.equal(e.attributes.category, 'session');
      assert.equal(e.labels.origin, 'openwebui');
    });
  });
}

test("the filter's usage event carries tokens and latency and says where it came from", async () => {
  await withAgent('', async (t, events) => {
    assert.deepEqual(await post(t, payload('openwebui-filter-usage.json')), OK);
    await waitFor(() => events.length === 1, 10_000, 'the event');
    const e = events[0]!;
    assert.equal(e.labels.origin, 'openwebui_filter');
    assert.equal(e.message, 'request by alice on llama3.1:8b (412 prompt + 238 completion tokens, 2310 ms, success)');
    for (const [k, v] of Object.entries({ chat_id: 'c-41', message_id: 'm-77', prompt_tokens: 412, completion_tokens: 238, total_tokens: 650, latency_ms: 2310.4, user_id: 'u-1', email: 'alice@example.com' })) {
      assert.deepEqual(e.attributes[k], v, k);
    }
  });
});

// ---------------------------------------------------------------- the shipped Open WebUI filter, run by Python

function python(): string {
  for (const candidate of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(candidate, ['-c', 'import pydantic'], { encoding: 'utf8' });
    if (r.status === 0) return candidate;
  }
  throw new Error('no python3 with pydantic (scripts/ensure-peers.sh installs python3-pydantic)');
}

const FILTER = path.resolve('config/examples/openwebui_opshub_filter.py');

/** Loads the filter as Open WebUI would (a module with class Filter), sets its valves, runs inlet then outlet, waits for its posts. */
const DRIVER = `
import asyncio, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("opshub_filter", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
f = module.Filter()
f.valves = f.Valves(**json.loads(sys.argv[2]))
case = json.loads(sys.argv[3])

class Client:  # what FastAPI's Request offers: .client.host and .headers
    host = "10.1.2.3"
class Request:
    client = Client()
    headers = {"user-agent": "Mozilla/5.0 (test)"}

async def main():
    body = f.inlet(case["inlet"], __user__=case["user"], __metadata__=case["metadata"], __request__=Request())
    assert (await body) == case["inlet"], "inlet returns the body unchanged"
    await asyncio.sleep(0.2)
    out = await f.outlet(case["outlet"], __user__=case["user"], __metadata__=case["metadata"], __request__=Request())
    assert out == case["outlet"], "outlet returns the body unchanged"
    await f.flush()

asyncio.run(main())
print("ok")
`;

function runFilter(valves: Record<string, unknown>, usage: Record<string, unknown>, extraValves: Record<string, unknown> = {}) {
  const metadata = { chat_id: 'c-41', message_id: 'm-77', session_id: 'sock-9', interface: 'open-webui' };
  const user = { id: 'u-1', name: 'alice', email: 'alice@example.com', role: 'user' };
  const inlet = { model: 'llama3.1:8b', messages: [{ role: 'user', content: 'Summarise the report' }], metadata };
  const outlet = {
    model: 'llama3.1:8b',
    chat_id: 'c-41',
    id: 'm-77',
    session_id: 'sock-9',
    messages: [
      { role: 'user', content: 'Summarise the report' },
      { role: 'assistant', content: 'Here is the summary...', ...usage },
    ],
  };
  const r = spawnSync(python(), ['-c', DRIVER, FILTER, JSON.stringify({ ...valves, ...extraValves }), JSON.stringify({ user, metadata, inlet, outlet })], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(r.status, 0, `python: ${r.stderr}`);
  assert.match(r.stdout, /ok/);
}

test('the shipped Open WebUI filter (run by Python) posts one signed usage event per request, with tokens and latency', async () => {
  const secret = 'hmac-secret';
  await withAgent(`    signature_secret: ${secret}`, async (t, events) => {
    runFilter({ opshub_url: `${t.url}/users/session`, auth_token: AGENT_TOKEN, signature_secret: secret }, { usage: { prompt_tokens: 412, completion_tokens: 238, total_tokens: 650 } });
    await waitFor(() => events.length === 1, 10_000, 'the usage event');
    const e = events[0]!;
    assert.equal(e.labels.origin, 'openwebui_filter');
    const a = e.attributes;
    assert.equal(a.username, 'alice');
    assert.equal(a.action, 'request');
    assert.equal(a.model, 'llama3.1:8b');
    assert.equal(a.chat_id, 'c-41');
    assert.equal(a.message_id, 'm-77');
    assert.equal(a.session_id, 'sock-9');
    assert.equal(a.user_id, 'u-1');
    assert.equal(a.email, 'alice@example.com');
    assert.equal(a.ip_address, '10.1.2.3');
    assert.equal(a.user_agent, 'Mozilla/5.0 (test)');
    assert.equal(a.prompt_tokens, 412);
    assert.equal(a.completion_tokens, 238);
    assert.equal(a.total_tokens, 650);
    assert.ok(typeof a.latency_ms === 'number' && a.latency_ms >= 150, `latency ${String(a.latency_ms)}`);
    assert.deepEqual(a.metadata, { interface: 'open-webui' });
  });
});

test("the filter reads Ollama's counters (older Open WebUI: under info) and can also report the start of a request", async () => {
  await withAgent('', async (t, events) => {
    runFilter(
      { opshub_url: `${t.url}/users/session`, auth_token: AGENT_TOKEN, username_field: 'email' },
      { info: { prompt_eval_count: 26, eval_count: 290, total_duration: 5_589_157_167, 'response_token/s': 61.9 } },
      { send_prompt_events: true },
    );
    await waitFor(() => events.length === 2, 10_000, 'prompt and request events');
    const byAction = Object.fromEntries(events.map((e) => [e.attributes.action, e.attributes]));
    assert.equal(byAction.prompt!.username, 'alice@example.com');
    assert.equal(byAction.prompt!.prompt_tokens, undefined);
    assert.equal(byAction.request!.prompt_tokens, 26);
    assert.equal(byAction.request!.completion_tokens, 290);
    assert.equal(byAction.request!.total_tokens, 316);
    assert.deepEqual(byAction.request!.metadata, { interface: 'open-webui', model_duration_ms: 5589.2, tokens_per_second: 61.9 });
  });
});

test('the filter never breaks a chat when the agent is unreachable', () => {
  runFilter({ opshub_url: 'http://127.0.0.1:9/users/session', timeout_seconds: 1 }, { usage: { prompt_tokens: 1, completion_tokens: 1 } });
});

// ---------------------------------------------------------------- refusals

test('bad JSON and an empty body get 400 with the reason, and nothing is recorded', async () => {
  await withAgent('', async (t, events) => {
    const bad = await post(t, undefined, { raw: '{"username": "alice", ' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error, 'invalid_json');
    assert.match(bad.body.reasons[0], /JSON/);
    const empty = await post(t, undefined, { raw: '' });
    assert.equal(empty.status, 400);
    assert.deepEqual(empty.body.reasons, ['the body is empty']);
    await settle(t, events);
    assert.deepEqual(recorded(events), []);
  });
});

for (const [what, body, reason] of [
  ['a missing username', { action: 'login' }, "/ must have required property 'username'"],
  ['a missing username, with a message', { action: 'logout', message: 'bye' }, "/ must have required property 'username'"],
  ['a username that is a number', { username: 5 }, '/username must be string'],
  ['an unknown property', { username: 'a', colour: 'red' }, '/ has an unknown property "colour"'],
  ['negative tokens', { username: 'a', prompt_tokens: -1 }, '/prompt_tokens must be >= 0'],
  ['fractional tokens', { username: 'a', total_tokens: 1.5 }, '/total_tokens must be integer'],
  ['an unknown level', { username: 'a', level: 'loud' }, '/level must be equal to one of the allowed values: trace, debug, info, success, warning, error, critical'],
  ['an unreadable timestamp', { username: 'a', timestamp: 'yesterday' }, '/timestamp must be an RFC 3339 time or a Unix time'],
  ['metadata that is not an object', { username: 'a', metadata: 'x' }, '/metadata must be object'],
  ['a body that is a string', 'hello', '/ must be an object (a session event)'],
  ['an empty batch', [], '/ must not be an empty array'],
  ['an Open WebUI payload with a numeric user', { action: 'signup', user: 5 }, '/user must be string,object'],
] as const) {
  test(`wrong schema: ${what} gets 400 with the reason`, async () => {
    await withAgent('', async (t, events) => {
      const r = await post(t, body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error, 'invalid_body');
      assert.ok(r.body.reasons.includes(reason), JSON.stringify(r.body.reasons));
      await settle(t, events);
      assert.deepEqual(recorded(events), []);
    });
  });
}

test('a batch with one bad item is refused whole, naming the item', async () => {
  await withAgent('', async (t, events) => {
    const r = await post(t, [{ username: 'a' }, { username: '' }, { username: 'c', model: 7 }]);
    assert.equal(r.status, 400);
    assert.equal(r.body.message, '2 of 3 events are invalid; nothing was recorded');
    assert.deepEqual(r.body.reasons, ['/1/username must NOT have fewer than 1 characters', '/2/model must be string']);
    await settle(t, events);
    assert.deepEqual(recorded(events), []);
  });
});

test('a body over max_body_bytes gets 413, with or without a Content-Length, and so does a batch over max_batch_events', async () => {
  await withAgent('    max_body_bytes: 1KiB\n    max_batch_events: 5', async (t, events) => {
    const big = { username: 'a', metadata: { pad: 'x'.repeat(2000) } };
    const declared = await post(t, big);
    assert.equal(declared.status, 413);
    assert.equal(declared.body.error, 'payload_too_large');

    // Chunked: no Content-Length, so the limit is enforced while reading.
    const chunked = await new Promise<number>((resolve, reject) => {
      const u = new URL(`${t.url}/users/session`);
      const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { authorization: `Bearer ${AGENT_TOKEN}`, 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write('{"username":"a","metadata":{"pad":"');
      req.write('x'.repeat(4000));
      req.end('"}}');
    });
    assert.equal(chunked, 413);

    const many = await post(t, Array.from({ length: 6 }, (_, i) => ({ username: `u${i}` })));
    assert.equal(many.status, 413);
    assert.match(many.body.message, /6 events is over max_batch_events \(5\)/);
    await settle(t, events);
    assert.deepEqual(recorded(events), []);
  });
});

test("tokens: the agent's token (header or ?token=) is required, a wrong or missing one gets 401", async () => {
  await withAgent('', async (t, events) => {
    assert.equal((await post(t, { username: 'a' }, { token: null })).status, 401);
    const wrong = await post(t, { username: 'a' }, { token: 'nope' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, 'unauthorized');
    assert.equal((await post(t, { username: 'a' }, { token: null, path: '/users/session?token=nope' })).status, 401);
    assert.deepEqual(await post(t, { username: 'b' }), OK);
    assert.deepEqual(await post(t, { username: 'c' }, { token: null, path: `/users/session?token=${AGENT_TOKEN}` }), OK);
    await settle(t, events);
    assert.deepEqual(recorded(events).map((e) => e.attributes.username), ['b', 'c']);
  });
});

test("an own auth_token replaces the agent's; allow_query_token: false refuses ?token=", async () => {
  await withAgent('    auth_token: hook-token\n    allow_query_token: false', async (t, events) => {
    assert.equal((await post(t, { username: 'a' })).status, 401, "the agent's token no longer opens the webhook");
    assert.equal((await post(t, { username: 'a' }, { token: null, path: '/users/session?token=hook-token' })).status, 401);
    assert.deepEqual(await post(t, { username: 'b' }, { token: 'hook-token' }), OK);
    await settle(t, events, {}, 'hook-token');
    assert.deepEqual(recorded(events).map((e) => e.attributes.username), ['b']);
  });
});

test('without any token configured the webhook is open', async () => {
  await withAgent('', async (t, events) => {
    assert.deepEqual(await post(t, { username: 'a' }, { token: null }), OK);
    await waitFor(() => events.length === 1, 10_000, 'the event');
  }, '');
});

test('signatures: a missing, wrong or malformed HMAC gets 401; the right one (sha256=<hex> or bare hex) is recorded', async () => {
  const secret = 's3cret';
  await withAgent(`    signature_secret: ${secret}\n    signature_header: X-Hub-Signature-256`, async (t, events) => {
    const body = JSON.stringify({ username: 'signed' });
    assert.equal((await post(t, undefined, { raw: body })).status, 401);
    const wrong = await post(t, undefined, { raw: body, headers: { 'x-hub-signature-256': sign('other', body) } });
    assert.equal(wrong.status, 401);
    assert.match(wrong.body.message, /X-Hub-Signature-256/);
    assert.equal((await post(t, undefined, { raw: body, headers: { 'x-hub-signature-256': 'sha256=zz' } })).status, 401);
    const tampered = JSON.stringify({ username: 'signed!' });
    assert.equal((await post(t, undefined, { raw: tampered, headers: { 'x-hub-signature-256': sign(secret, body) } })).status, 401);
    assert.deepEqual(await post(t, undefined, { raw: body, headers: { 'x-hub-signature-256': sign(secret, body) } }), OK);
    assert.deepEqual(await post(t, undefined, { raw: body, headers: { 'x-hub-signature-256': sign(secret, body).slice(7).toUpperCase() } }), OK);
    const marker = JSON.stringify({ username: 'marker', action: 'marker' });
    assert.deepEqual(await post(t, undefined, { raw: marker, headers: { 'x-hub-signature-256': sign(secret, marker) } }), OK);
    await waitFor(() => events.some((e) => e.attributes.action === 'marker'), 10_000, 'the marker');
    assert.deepEqual(recorded(events).map((e) => e.attributes.username), ['signed', 'signed']);
  });
});

test('whatever arrives, the agent keeps running: refusals are counted and logged once, other methods get 405', async () => {
  await withAgent('', async (t, events) => {
    for (const raw of ['{', 'null', '[1,2]', '{"username":null}', '"x"', '{}']) assert.equal((await post(t, undefined, { raw })).status, 400, raw);
    const get = await fetch(`${t.url}/users/session`, { headers: { authorization: `Bearer ${AGENT_TOKEN}` } });
    assert.equal(get.status, 405);
    assert.equal((await fetch(`${t.url}/health`)).status, 200);
    await settle(t, events);
    const running = t.agent.pipeline.inputs.get('session_webhook')!;
    assert.equal(running.stats.errors, 6);
    const warnings = t.logs.filter((l) => l.scope === 'inputs.session_webhook' && l.level === 'warn');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.message, /rejected a request with 400.*counted in opshub_input_errors_total/);
  });
});

// ---------------------------------------------------------------- load

test('1,000 concurrent posts are all answered and all delivered, none lost', async () => {
  await withAgent('', async (t, events) => {
    const u = new URL(`${t.url}/users/session`);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });
    const send = (i: number) =>
      new Promise<number>((resolve, reject) => {
        const body = JSON.stringify({ username: `user-${i % 37}`, action: 'request', model: 'llama3.1:8b', metadata: { seq: i } });
        const req = http.request(
          { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers: { authorization: `Bearer ${AGENT_TOKEN}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    try {
      const statuses = await Promise.all(Array.from({ length: 1000 }, (_, i) => send(i)));
      assert.deepEqual([...new Set(statuses)], [200]);
    } finally {
      agent.destroy();
    }
    await waitFor(() => events.length >= 1000, 30_000, '1,000 events at the output');
    const seqs = new Set(events.map((e) => (e.attributes.metadata as { seq: number }).seq));
    assert.equal(events.length, 1000, 'none twice');
    assert.equal(seqs.size, 1000, 'none lost');
  });
});

// ---------------------------------------------------------------- into the store

test('session events land in the DuckDB user_sessions view', async () => {
  const tmp = tempDir();
  const file = path.join(tmp.dir, 'opshub.duckdb');
  const t = await startAgent(
    `
agent:
  self_metrics: false
  shutdown_timeout: 5s
  data_dir: ${tmp.dir}/data
inputs:
  - type: session_webhook
outputs:
  - type: duckdb
    path: ${file}
    flush_interval: 50ms
`,
    { dir: tmp.dir },
  );
  try {
    assert.deepEqual(await post(t, payload('opshub-login.json'), { token: null }), OK);
    assert.deepEqual(await post(t, payload('openwebui-signup.json'), { token: null }), OK);
  } finally {
    await t.stop(); // drains the outputs: the store has both rows when it returns
  }
  try {
    const db = await DuckDBInstance.create(file);
    const conn = await db.connect();
    const rows = (await conn.runAndReadAll(`SELECT username, model, action, session_id, ip_address, user_agent, source FROM user_sessions ORDER BY username`)).getRowsJS();
    conn.closeSync();
    db.closeSync();
    assert.deepEqual(rows, [
      ['Tim', null, 'signup', null, null, null, 'webhook'],
      ['alice', 'llama3.1:8b', 'login', 'sess-7f3a', '192.168.1.23', 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0', 'webhook'],
    ]);
  } finally {
    tmp.cleanup();
  }
});
