import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { builtinPlugins } from '../../../core/builtins.ts';
import { ConfigError, loadConfig } from '../../../core/config.ts';
import { makeLog, makeMetric, type Level, type LogEvent } from '../../../core/events.ts';
import { createRegexClassifier, type RegexClassifierConfig } from '../../../plugins/processors/regex_classifier/index.ts';
import { categoryScanner, DEFAULT_CATEGORIES, literalStart } from '../../../plugins/processors/regex_classifier/rules.ts';

const DEFAULTS: RegexClassifierConfig = { levels: true, categories: true, patterns: {}, mode: 'first', ignore_case: false, overwrite_category: false, scan_bytes: '4KiB' };

function classify(line: string, config: Partial<RegexClassifierConfig> = {}, event: Partial<LogEvent> = {}): LogEvent {
  const p = createRegexClassifier({ ...DEFAULTS, ...config });
  return p.process(makeLog({ message: line, ...event })) as LogEvent;
}

type Case = [line: string, level: Level, category: string | undefined];

const CASES: Record<string, Case[]> = {
  'Open WebUI (loguru + uvicorn access)': [
    ['2026-03-11 06:49:37.441 | INFO     | open_webui.main:lifespan:627 - Installing external dependencies of functions and tools...', 'info', 'system'],
    ['2026-03-11 06:49:39.822 | INFO     | uvicorn.protocols.http.httptools_impl:send:483 - 172.18.0.1:52168 - "GET /api/config HTTP/1.1" 200', 'info', 'api_request'],
    ['2026-03-11 06:49:41.003 | INFO     | uvicorn.protocols.http.httptools_impl:send:483 - 172.18.0.1:52170 - "POST /api/v1/auths/signin HTTP/1.1" 200', 'info', 'auth'],
    ['2026-02-05 21:17:41.546 | INFO     | uvicorn.protocols.http.httptools_impl:send:483 - 192.168.2.164:61102 - "POST /api/v1/auths/signin HTTP/1.1" 429', 'warning', 'security'],
    ['2026-03-11 06:50:02.119 | INFO     | uvicorn.protocols.http.httptools_impl:send:483 - 172.18.0.1:52190 - "POST /api/chat/completions HTTP/1.1" 500', 'error', 'api_request'],
    ['2026-03-11 06:50:02.101 | ERROR    | open_webui.routers.ollama:send_post_request:166 - Connection error: Cannot connect to host ollama:11434 ssl:default [Connection refused]', 'error', undefined],
    ['2026-03-11 06:50:05.774 | WARNING  | open_webui.main:get_models:1203 - Model llama3.1:8b not found in cache, refreshing', 'warning', undefined],
    ['2026-03-11 06:50:09.300 | DEBUG    | open_webui.socket.main:connect:189 - user alice@example.com connected with session ID Xq3vKz9ZbA1c', 'debug', undefined],
    ['2026-03-11 06:50:11.645 | SUCCESS  | open_webui.routers.auths:signup:512 - User bob@example.com signed up', 'success', 'auth'],
    ['2026-03-11 06:51:00.000 | CRITICAL | open_webui.internal.db:handle_peewee_migration:74 - Failed to initialize the database connection', 'critical', 'database'],
    ['WARNI [open_webui.main] Frontend build directory not found at /app/build. Serving API only.', 'warning', undefined],
  ],
  'Ollama (Go slog + GIN)': [
    ['time=2026-03-11T06:48:58.120Z level=INFO source=routes.go:1259 msg="Listening on [::]:11434 (version 0.5.7)"', 'info', 'system'],
    ['time=2026-03-11T06:48:58.902Z level=INFO source=types.go:131 msg="inference compute" id=GPU-4b1c9e2d library=cuda variant=v12 compute=9.0 name="NVIDIA H100 80GB HBM3"', 'info', 'gpu'],
    ['time=2026-03-11T06:50:04.512Z level=INFO source=server.go:594 msg="llama runner started in 2.06 seconds"', 'info', 'model_load'],
    ['time=2026-03-11T06:50:04.600Z level=WARN source=sched.go:137 msg="mllama doesn\'t support parallel requests yet"', 'warning', undefined],
    ['time=2026-03-11T06:50:07.013Z level=ERROR source=sched.go:455 msg="error loading llama server" error="llama runner process has terminated: CUDA error: out of memory"', 'error', 'gpu'],
    ['[GIN] 2026/03/11 - 06:50:04 | 200 |  2.512345678s |      172.18.0.3 | POST     "/api/chat"', 'info', 'api_request'],
    ['[GIN] 2026/03/11 - 06:50:06 | 404 |    812.301µs |      172.18.0.3 | POST     "/api/show"', 'warning', 'api_request'],
    ['[GIN] 2026/03/11 - 06:50:07 | 500 |  5.002811634s |      172.18.0.3 | POST     "/api/generate"', 'error', 'api_request'],
    ['[GIN-debug] Listening and serving HTTP on [::]:11434', 'debug', 'system'],
    ['llm_load_tensors: offloaded 33/33 layers to GPU', 'info', 'model_load'],
    ['panic: runtime error: invalid memory address or nil pointer dereference', 'critical', undefined],
  ],
  'uvicorn (plain)': [
    ['INFO:     Started server process [1]', 'info', 'system'],
    ['INFO:     Application startup complete.', 'info', 'system'],
    ['INFO:     172.18.0.1:45678 - "GET /health HTTP/1.1" 200 OK', 'info', 'api_request'],
    ['INFO:     172.18.0.1:45680 - "POST /api/v1/auths/signin HTTP/1.1" 401 Unauthorized', 'warning', 'auth'],
    ['INFO:     172.18.0.1:45682 - "GET /api/v1/chats/?page=1 HTTP/1.1" 500 Internal Server Error', 'error', 'api_request'],
    ['WARNING:  Invalid HTTP request received.', 'warning', undefined],
    ['ERROR:    Exception in ASGI application', 'error', undefined],
    ['Traceback (most recent call last):', 'error', undefined],
    ["ValueError: invalid literal for int() with base 10: 'abc'", 'error', undefined],
  ],
  nginx: [
    ['172.18.0.1 - - [11/Mar/2026:06:49:41 +0000] "GET /api/v1/chats/?page=1 HTTP/1.1" 200 1534 "https://chat.example.com/" "Mozilla/5.0 (X11; Linux x86_64) Chrome/122.0"', 'info', 'api_request'],
    ['10.0.0.7 - alice [11/Mar/2026:06:49:42 +0000] "POST /api/chat/completions HTTP/1.1" 502 157 "-" "python-requests/2.31.0"', 'error', 'api_request'],
    ['10.0.0.8 - - [11/Mar/2026:06:49:43 +0000] "GET /admin HTTP/1.1" 403 153 "-" "curl/8.5.0"', 'warning', 'security'],
    ['2026/03/11 06:49:42 [error] 29#29: *118 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.0.7, request: "POST /api/chat/completions HTTP/1.1"', 'error', 'api_request'],
    ['2026/03/11 06:49:44 [warn] 29#29: *120 an upstream response is buffered to a temporary file', 'warning', undefined],
    ['2026/03/11 06:48:01 [notice] 1#1: start worker processes', 'info', 'system'],
  ],
  Postgres: [
    ['2026-03-11 06:48:00.530 UTC [1] LOG:  database system is ready to accept connections', 'info', 'database'],
    ['2026-03-11 06:53:00.101 UTC [27] LOG:  checkpoint starting: time', 'info', 'database'],
    ['2026-03-11 06:49:50.004 UTC [68] FATAL:  password authentication failed for user "openwebui"', 'critical', 'auth'],
    ['2026-03-11 06:50:12.777 UTC [71] ERROR:  duplicate key value violates unique constraint "user_email_key"', 'error', 'database'],
    ['2026-03-11 06:50:31.250 UTC [74] WARNING:  there is no transaction in progress', 'warning', 'database'],
  ],
  'Keycloak and JSON loggers': [
    ['2026-03-11 06:49:55,123 WARN  [org.keycloak.events] (executor-thread-12) type="LOGIN_ERROR", clientId="open-webui", userId="null", ipAddress="172.18.0.9", error="user_not_found", username="mallory"', 'warning', 'auth'],
    ['Authentication failed for user: dave', 'error', 'auth'],
    ['{"timestamp":"2026-03-11T06:50:00Z","level":"warning","logger":"app.db","message":"slow query took 2300ms"}', 'warning', 'performance'],
    ['{"level":50,"time":1773212400000,"msg":"request failed","req":{"method":"GET"}}', 'error', undefined],
    ['{"levelname": "INFO", "name": "open_webui.main", "message": "Loaded model llama3.1:8b successfully"}', 'success', 'model_load'],
  ],
};

for (const [source, cases] of Object.entries(CASES)) {
  test(`classifies ${source} lines by level and category`, () => {
    for (const [line, level, category] of cases) {
      const e = classify(line);
      assert.equal(e.level, level, `level of: ${line}`);
      assert.equal(e.attributes.category, category, `category of: ${line}`);
    }
  });
}

test('a level word named like an Object.prototype member is no level', () => {
  assert.equal(classify('{"level":"constructor","message":"x"}').level, 'info');
  assert.equal(classify('level=toString msg=x').level, 'info');
});

test('a custom pattern sets its category and turns named groups into attributes', () => {
  const e = classify('runner: loaded model qwen2.5:7b in 3.2s', { patterns: { model_load: 'loaded\\s+model[:\\s]+(?<model>\\S+) in (?<load_time>\\S+)' } });
  assert.equal(e.attributes.category, 'model_load');
  assert.equal(e.attributes.model, 'qwen2.5:7b');
  assert.equal(e.attributes.load_time, '3.2s');
});

test('a custom pattern may set the level and a category other than its name', () => {
  const e = classify('quota exceeded for team blue', { patterns: { quota: { regex: 'quota exceeded for team (?<team>\\w+)', level: 'critical', category: 'billing' } } });
  assert.equal(e.level, 'critical');
  assert.equal(e.attributes.category, 'billing');
  assert.equal(e.attributes.team, 'blue');
});

test('mode first stops at the first match; mode all applies every pattern and rule', () => {
  const patterns = { first: 'GPU (?<gpu>\\d+)', second: 'temp (?<temp>\\d+)C' };
  const line = 'GPU 0 temp 91C, throttling';
  const first = classify(line, { patterns });
  assert.equal(first.attributes.category, 'first');
  assert.equal(first.attributes.temp, undefined);
  assert.equal(first.attributes.categories, undefined);
  const all = classify(line, { patterns, mode: 'all' });
  assert.equal(all.attributes.category, 'first');
  assert.equal(all.attributes.gpu, '0');
  assert.equal(all.attributes.temp, '91');
  assert.deepEqual(all.attributes.categories, ['first', 'second', 'gpu', 'performance']);
});

test('ignore_case applies to custom patterns', () => {
  assert.equal(classify('USER LOCKED OUT', { patterns: { lockout: 'locked out' } }).attributes.category, undefined);
  assert.equal(classify('USER LOCKED OUT', { patterns: { lockout: 'locked out' }, ignore_case: true }).attributes.category, 'lockout');
});

test('a category the event already has is kept unless overwrite_category is set', () => {
  const session = { attributes: { category: 'session' } };
  assert.equal(classify('user alice logged in', {}, session).attributes.category, 'session');
  assert.equal(classify('user alice logged in', { overwrite_category: true }, { attributes: { category: 'session' } }).attributes.category, 'auth');
});

test('a level set by an input is kept when the line states none, and raised by a 5xx status', () => {
  assert.equal(classify('  File "/app/main.py", line 3, in <module>', {}, { level: 'error' }).level, 'error');
  assert.equal(classify('something failed', {}, { level: 'debug' }).level, 'debug', 'keywords judge only unclassified (info) lines');
  assert.equal(classify('INFO:     1.2.3.4:1 - "GET / HTTP/1.1" 503 Service Unavailable', {}, { level: 'info' }).level, 'error');
});

test('a stated level wins over keywords: an INFO line that says "failed" stays info', () => {
  assert.equal(classify('2026-03-11 06:50:00.000 | INFO     | app:run:1 - retry 1 of 3 failed, retrying').level, 'info');
  assert.equal(classify('retry 1 of 3 failed, retrying').level, 'error');
});

test('levels: false and categories: false turn the built-in rules off', () => {
  const e = classify('ERROR: database is down', { levels: false, categories: false });
  assert.equal(e.level, 'info');
  assert.equal(e.attributes.category, undefined);
});

test('only the first scan_bytes of a line are searched', () => {
  const line = `${'x'.repeat(100)} ERROR something`;
  assert.equal(classify(line, { scan_bytes: 50 }).level, 'info');
  assert.equal(classify(line, { scan_bytes: 500 }).level, 'error');
});

test('metrics pass through untouched', () => {
  const p = createRegexClassifier(DEFAULTS);
  const m = makeMetric('cpu', { usage_percent: 12 }, { host: 'a' });
  const copy = structuredClone(m);
  assert.equal(p.process(m), m);
  assert.deepEqual(m, copy);
});

test('an invalid custom regex is a config error with line and column', async () => {
  const text = [
    'processors:',
    '  - type: regex_classifier',
    '    patterns:',
    "      good: 'loaded model (?<model>\\S+)'",
    "      broken: 'model (?<name>'",
    '      object_form:',
    "        regex: '[unclosed'",
  ].join('\n');
  await assert.rejects(loadConfig('pipeline.yaml', { builtins: builtinPlugins, env: {}, text }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    const where = err.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`);
    assert.deepEqual(where, [
      '5:15 processors[0].patterns.broken: must be a valid regular expression',
      '7:16 processors[0].patterns.object_form.regex: must be a valid regular expression',
    ]);
    return true;
  });
});

test('the category scanner agrees with trying each whole rule in order', () => {
  // What `mode: first` means: the first rule, in order, whose regex matches anywhere.
  const inOrder = (line: string) => DEFAULT_CATEGORIES.find((r) => r.regex.test(r.raw ? line : line.toLowerCase()))?.name;
  const scanner = categoryScanner(DEFAULT_CATEGORIES);
  const testdata = path.join(import.meta.dirname, '../../../plugins/processors/regex_classifier/testdata');
  const lines = readdirSync(testdata).flatMap((f) => readFileSync(path.join(testdata, f), 'utf8').split('\n').filter(Boolean));
  lines.push(
    ...Object.values(CASES).flatMap((cases) => cases.map((c) => c[0])),
    // Near misses and edges: a word inside a longer one, `_` as a word character, a trigger at the very end, upper case.
    'reauthorize_x', 'x_auth failed', 'preloaded model', 'gpu', 'gp', 'READY', 'worker', 'workers2', 'the tokens/s rate',
    'xhttp/1.1" 403', '"GET /x HTTP/1.1" 401', '[GIN] 2026/03/11 - 06:50:04 | 401 | 1s | 1.2.3.4 | GET "/"', '[gin] x | 429 |',
    '2024-05-01 12:00:00.123 UTC [68] LOG:  checkpoint starting: time', 'relation "users" does not exist', 'timed out', 'time out', 'timeout',
    'session expired for gpu user after slow startup', 'Tensor Cores enabled; permission denied', 'sso', 'ss', 'llm_load_tensors: offloaded 33/33 layers to GPU',
    // Non-ASCII letters are not word characters to \b (no u flag): a word may start right after one.
    'éauth failed', 'naïvegpu', 'ß_gpu', '日本gpu',
  );
  // Random sentences of rule words and filler, so rules meet each other on one line.
  const words = DEFAULT_CATEGORIES.flatMap((r) => r.words ?? []).map((w) => literalStart(w));
  const filler = ['the', 'a', 'x_', 'pre', 'ing', '/', '"', '-', 'ok', 'Error:', 'HTTP/1.1"', '401', '403', '[GIN]'];
  let seed = 7;
  const pick = <T>(xs: T[]) => xs[(seed = (seed * 48271) % 2147483647) % xs.length]!;
  for (let i = 0; i < 3000; i++) lines.push(Array.from({ length: 1 + (i % 9) }, () => (i % 3 ? pick(words) : pick(filler)) + pick(['', ' ', 's ', 'ed ', '_', 'ing '])).join(pick([' ', '', '-'])));
  for (const line of lines) assert.equal(scanner.first(line, line.toLowerCase()), inOrder(line), line);
});

test('a category rule word must start with three literal characters', () => {
  assert.equal(literalStart('brute[- ]?force'), 'brute');
  assert.equal(literalStart('gpus?'), 'gpu');
  assert.equal(literalStart('tokens?\\/s'), 'token');
  assert.equal(literalStart('log(?:ged)?[ _-]?in'), 'log');
  assert.equal(literalStart('http\\/[\\d.]+"'), 'http/');
  assert.throws(() => categoryScanner([{ name: 'short', regex: /\b(?:ab?c)\b/, words: ['ab?c'] }]), /must start with 3 literal/);
});
