import { test } from 'node:test';
import assert from 'node:assert/strict';
import { builtinPlugins } from '../../../core/builtins.ts';
import { ConfigError, loadConfig } from '../../../core/config.ts';
import { makeLog, makeMetric, type LogEvent } from '../../../core/events.ts';
import { createUserExtraction, type UserExtractionConfig } from '../../../plugins/processors/user_extraction/index.ts';
import { durationMs, firstEmail } from '../../../plugins/processors/user_extraction/rules.ts';

const DEFAULTS: UserExtractionConfig = { patterns: [], default_patterns: true, ignore_case: false, scan_bytes: '4KiB' };

function extract(line: string, config: Partial<UserExtractionConfig> = {}, attributes: Record<string, unknown> = {}): Record<string, unknown> {
  const p = createUserExtraction({ ...DEFAULTS, ...config });
  return (p.process(makeLog({ message: line, attributes })) as LogEvent).attributes;
}

type Case = [line: string, expected: Record<string, unknown>];

const CASES: Record<string, Case[]> = {
  'Open WebUI request and app lines': [
    [
      '2026-03-19 21:52:27.960 | INFO     | uvicorn.protocols.http.httptools_impl:send:483 - 172.18.0.1:44088 - "POST /api/chat/completions HTTP/1.1" 200',
      { ip_address: '172.18.0.1', http_method: 'POST', http_path: '/api/chat/completions', http_status: 200 },
    ],
    [
      '2026-03-11 06:50:09.300 | DEBUG    | open_webui.socket.main:connect:189 - user alice@example.com(b7c1e2f0) connected with session ID Xq3vKz9ZbA1c',
      { email: 'alice@example.com', session_id: 'Xq3vKz9ZbA1c' },
    ],
    ['2026-03-11 06:50:11.645 | SUCCESS  | open_webui.routers.auths:signup:512 - User bob@example.com signed up', { username: 'bob@example.com', email: 'bob@example.com' }],
    ['2026-03-11 06:50:05.774 | WARNING  | open_webui.main:get_models:1203 - Model llama3.1:8b not found in cache', { model: 'llama3.1:8b' }],
    ['INFO:     172.18.0.1:45680 - "POST /api/v1/auths/signin HTTP/1.1" 401 Unauthorized', { ip_address: '172.18.0.1', http_method: 'POST', http_path: '/api/v1/auths/signin', http_status: 401 }],
  ],
  'Ollama [GIN] and slog lines': [
    ['[GIN] 2026/03/11 - 06:50:04 | 200 |  2.512345678s |      172.18.0.3 | POST     "/api/chat"', { http_status: 200, duration_ms: 2512.346, ip_address: '172.18.0.3', http_method: 'POST', http_path: '/api/chat' }],
    ['[GIN] 2026/03/11 - 06:50:05 | 200 |      45.12µs |   ::1 | GET      "/api/version"', { http_status: 200, duration_ms: 0.045, ip_address: '::1', http_method: 'GET', http_path: '/api/version' }],
    ['[GIN] 2026/03/11 - 06:50:07 | 500 |       1m2.5s |      10.0.0.5 | POST     "/api/generate"', { http_status: 500, duration_ms: 62500, ip_address: '10.0.0.5', http_method: 'POST', http_path: '/api/generate' }],
    ['time=2026-03-11T06:50:02.455Z level=INFO source=server.go:376 msg="loaded model" model=llama3.1:8b duration=2.06s', { model: 'llama3.1:8b', duration_ms: 2060 }],
    ['time=2026-03-11T06:50:02.455Z level=INFO source=sched.go:714 msg="new model will fit" model=/root/.ollama/models/blobs/sha256-667b0c19', {}],
  ],
  'nginx access': [
    [
      '10.0.0.7 - alice [11/Mar/2026:06:49:42 +0000] "POST /api/chat/completions HTTP/1.1" 502 157 "-" "python-requests/2.31.0"',
      { ip_address: '10.0.0.7', username: 'alice', http_method: 'POST', http_path: '/api/chat/completions', http_status: 502, user_agent: 'python-requests/2.31.0' },
    ],
    ['172.18.0.1 - - [11/Mar/2026:06:49:41 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0"', { ip_address: '172.18.0.1', http_method: 'GET', http_path: '/', http_status: 200, user_agent: 'curl/8.5.0' }],
  ],
  'Keycloak and Postgres auth messages': [
    ['Authentication failed for user: dave', { username: 'dave' }],
    ['2026-03-11 06:49:50.004 UTC [68] FATAL:  password authentication failed for user "openwebui"', { username: 'openwebui' }],
    [
      '2026-03-11 06:49:58,456 INFO  [org.keycloak.events] (executor-thread-14) type="LOGIN", clientId="open-webui", userId="2c5e7a10-1b2c", sessionId="6d1f0e7c-aa01", ipAddress="172.18.0.9", username="carol"',
      { user_id: '2c5e7a10-1b2c', session_id: '6d1f0e7c-aa01', ip_address: '172.18.0.9', username: 'carol' },
    ],
    ['2026-03-11 06:49:55,123 WARN  [org.keycloak.events] type="LOGIN_ERROR", userId="null", ipAddress="172.18.0.9", username="mallory"', { ip_address: '172.18.0.9', username: 'mallory' }],
  ],
  'key=value and JSON lines': [
    ['POST /auth/login 401 55.0ms client=127.0.0.1 request_id=ea57b563 user=erin', { http_method: 'POST', http_path: '/auth/login', http_status: 401, duration_ms: 55, ip_address: '127.0.0.1', username: 'erin' }],
    ['method=GET path=/api/tags status=200 latency_ms=3.5 session_id=s-42 user_id=7', { http_method: 'GET', http_path: '/api/tags', http_status: 200, duration_ms: 3.5, session_id: 's-42', user_id: '7' }],
    ['{"ts":"2026-03-11T06:50:00Z","user_id":"u-1","email":"frank@example.com","ip_address":"10.1.2.3","model":"mistral:7b","path":"/api/chat","status":200}', { user_id: 'u-1', email: 'frank@example.com', ip_address: '10.1.2.3', model: 'mistral:7b', http_path: '/api/chat', http_status: 200 }],
    ['wrote cache to path=/var/lib/app/cache.db', {}],
    ['Waiting for user input', {}],
    // The gates look for slashes and the word session in any case: a slash first on the line, a session ID in capitals.
    ['/healthz probe ok; GET /api/models 200 in 12ms', { http_method: 'GET', http_path: '/api/models', http_status: 200, duration_ms: 12 }],
    ['Resumed SESSION ID: Zq81mKp0', { session_id: 'Zq81mKp0' }],
  ],
};

for (const [source, cases] of Object.entries(CASES)) {
  test(`extracts who, what and where from ${source}`, () => {
    for (const [line, expected] of cases) assert.deepEqual(extract(line), expected, line);
  });
}

test('attributes lifted by json_parse are normalised to the canonical names', () => {
  const attrs = extract('chat completed', {}, {
    user: { id: 'b7c1', name: 'alice', email: 'alice@example.com', role: 'user' },
    source_ip: '172.18.0.1',
    verb: 'POST',
    request_uri: '/api/chat/completions',
    status_code: 200,
    sessionId: 'abc123',
  });
  assert.equal(attrs.username, 'alice');
  assert.equal(attrs.email, 'alice@example.com');
  assert.equal(attrs.user_id, 'b7c1');
  assert.equal(attrs.ip_address, '172.18.0.1');
  assert.equal(attrs.http_method, 'POST');
  assert.equal(attrs.http_path, '/api/chat/completions');
  assert.equal(attrs.http_status, 200);
  assert.equal(attrs.session_id, 'abc123');
});

test('attribute and key names like Object.prototype members name nothing', () => {
  const attrs = extract('constructor=x toString=y', {}, { constructor: 'a', valueOf: 1 });
  assert.deepEqual(attrs, { constructor: 'a', valueOf: 1 });
});

test('attributes already set are not overwritten', () => {
  const attrs = extract('user=mallory ip=10.0.0.9', {}, { username: 'alice', ip_address: '127.0.0.1' });
  assert.equal(attrs.username, 'alice');
  assert.equal(attrs.ip_address, '127.0.0.1');
});

test('custom patterns run first and their named groups become attributes (numbers for status and duration)', () => {
  const attrs = extract('chat 9f2c opened by grace with gemma2:9b in 412 ms -> 201', {
    patterns: ['chat (?<session_id>\\w+) opened by (?<username>\\w+) with (?<model>\\S+) in (?<duration_ms>\\d+) ms -> (?<http_status>\\d{3})'],
  });
  assert.deepEqual(attrs, { session_id: '9f2c', username: 'grace', model: 'gemma2:9b', duration_ms: 412, http_status: 201 });
});

test('default_patterns: false leaves only the custom patterns', () => {
  assert.deepEqual(extract('user=alice ip=10.0.0.1', { default_patterns: false }), {});
  assert.deepEqual(extract('USER=alice', { default_patterns: false, patterns: ['user=(?<username>\\w+)'], ignore_case: true }), { username: 'alice' });
});

test('durations with units convert to milliseconds; bare numbers do not', () => {
  const table: Array<[string, number | undefined]> = [['2.5s', 2500], ['250ms', 250], ['812.301µs', 0.812], ['1m2.5s', 62500], ['1h', 3_600_000], ['42', undefined], ['fast', undefined]];
  for (const [text, ms] of table) assert.equal(durationMs(text), ms, text);
});

test('metrics pass through untouched', () => {
  const p = createUserExtraction(DEFAULTS);
  const m = makeMetric('http', { status: 200 }, { user: 'x' });
  const copy = structuredClone(m);
  assert.equal(p.process(m), m);
  assert.deepEqual(m, copy);
});

test('an invalid custom pattern is a config error with line and column', async () => {
  const text = 'processors:\n  - type: user_extraction\n    patterns:\n      - "(?<username>\\\\w+"\n';
  await assert.rejects(loadConfig('p.yaml', { builtins: builtinPlugins, env: {}, text }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.deepEqual(err.issues.map((i) => `${i.line}:${i.column} ${i.path}`), ['4:9 processors[0].patterns[0]']);
    return true;
  });
});

test('firstEmail finds what the plain address regex finds first', () => {
  const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/;
  const parts = ['alice', '@', 'example', '.', 'com', 'b.o+b', ' ', '@@', 'x-y', '.c', 'é', '%', '1', '"', 'mail=', 'Z'];
  let seed = 11;
  const pick = () => parts[(seed = (seed * 48271) % 2147483647) % parts.length]!;
  const texts = ['user alice@example.com connected', 'a@b.co', '@example.com', 'x@y', 'first@bad and second@good.org', 'me@host.example.c'];
  for (let i = 0; i < 5000; i++) texts.push(Array.from({ length: 1 + (i % 12) }, pick).join(''));
  for (const t of texts) assert.equal(firstEmail(t), EMAIL.exec(t)?.[0], t);
});
