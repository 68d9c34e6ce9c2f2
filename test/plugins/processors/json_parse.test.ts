import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeLog, makeMetric, parseRfc3339Ns, type LogEvent } from '../../../core/events.ts';
import { createJsonParse, DEFAULT_RENAME, timestampNs, type JsonParseConfig } from '../../../plugins/processors/json_parse/index.ts';

const DEFAULTS: JsonParseConfig = {
  message_keys: ['message', 'msg', 'event', 'text', 'log'],
  level_keys: ['level', 'levelname', 'severity', 'lvl', 'log.level', 'loglevel'],
  timestamp_keys: ['timestamp', 'time', 'ts', '@timestamp', 'asctime', 'datetime', 't'],
  use_timestamp: true,
  rename: DEFAULT_RENAME,
  keep_raw: false,
  max_bytes: '1MiB',
};

const T0 = 1_700_000_000_000_000_000n;

function parse(line: string, config: Partial<JsonParseConfig> = {}): LogEvent {
  const p = createJsonParse({ ...DEFAULTS, ...config });
  return p.process(makeLog({ message: line, timestamp: T0 })) as LogEvent;
}

test('lifts a python-json-logger line: message, level, timestamp and renamed attributes', () => {
  const e = parse(
    '{"asctime": "2026-03-11 06:50:00,123", "name": "open_webui.routers.chats", "levelname": "ERROR", "message": "chat not found", "module": "chats", "funcName": "get_chat", "lineno": 88, "request_id": "r-1", "userId": "u-7", "client_ip": "10.0.0.2", "path": "/api/v1/chats/9", "method": "GET"}',
  );
  assert.equal(e.message, 'chat not found');
  assert.equal(e.level, 'error');
  assert.equal(e.timestamp, parseRfc3339Ns('2026-03-11T06:50:00.123Z'));
  assert.deepEqual(e.attributes, {
    logger: 'open_webui.routers.chats',
    module: 'chats',
    function: 'get_chat',
    line: 88,
    request_id: 'r-1',
    user_id: 'u-7',
    ip_address: '10.0.0.2',
    path: '/api/v1/chats/9',
    method: 'GET',
  });
});

test('lifts structlog, pino, zap and Go slog JSON lines', () => {
  const table: Array<[line: string, message: string, level: string, ts: bigint]> = [
    ['{"event": "user logged in", "level": "info", "timestamp": "2026-03-11T06:50:00.123456Z", "user": "alice"}', 'user logged in', 'info', parseRfc3339Ns('2026-03-11T06:50:00.123456Z')!],
    ['{"level":50,"time":1773212400123,"pid":7,"hostname":"web","msg":"request failed"}', 'request failed', 'error', 1773212400123n * 1_000_000n],
    ['{"level":"warn","ts":1773212400.5,"caller":"srv/main.go:42","msg":"slow request","latency":"2.1s"}', 'slow request', 'warning', 1773212400500000000n],
    ['{"time":"2026-03-11T06:50:00.123456789+01:00","level":"DEBUG","msg":"cache miss","key":"k1"}', 'cache miss', 'debug', parseRfc3339Ns('2026-03-11T05:50:00.123456789Z')!],
  ];
  for (const [line, message, level, ts] of table) {
    const e = parse(line);
    assert.equal(e.message, message, line);
    assert.equal(e.level, level, line);
    assert.equal(e.timestamp, ts, line);
  }
});

test('lines that are not a JSON object pass untouched', () => {
  for (const line of ['INFO: plain text', '{not json}', '[1,2,3]', '{"unterminated": ', '"just a string"', '{}x', '']) {
    const e = parse(line);
    assert.equal(e.message, line);
    assert.equal(e.timestamp, T0);
    assert.deepEqual(e.attributes, {});
  }
});

test('without a message key the raw line stays the message; unknown levels and bad timestamps stay in attributes', () => {
  const e = parse('{"level":"verbose-ish","time":"yesterday","count":3}');
  assert.equal(e.message, '{"level":"verbose-ish","time":"yesterday","count":3}');
  assert.equal(e.level, 'info');
  assert.equal(e.timestamp, T0);
  assert.deepEqual(e.attributes, { level: 'verbose-ish', time: 'yesterday', count: 3 });
});

test('use_timestamp: false keeps the input timestamp; keep_raw keeps the line; max_bytes skips long lines', () => {
  const line = '{"time":"2026-03-11T06:50:00Z","msg":"hi"}';
  const kept = parse(line, { use_timestamp: false, keep_raw: true });
  assert.equal(kept.timestamp, T0);
  assert.equal(kept.attributes.time, '2026-03-11T06:50:00Z');
  assert.equal(kept.attributes.raw_log, line);
  assert.equal(parse(line, { max_bytes: 10 }).message, line);
});

test('epoch numbers in seconds, milliseconds, microseconds and nanoseconds all become ns', () => {
  const s = 1773212400n;
  assert.equal(timestampNs(1773212400), s * 1_000_000_000n);
  assert.equal(timestampNs(1773212400123), s * 1_000_000_000n + 123_000_000n);
  assert.equal(timestampNs(1773212400123456), s * 1_000_000_000n + 123_456_000n);
  assert.equal(timestampNs('2026-03-11 06:50:00'), parseRfc3339Ns('2026-03-11T06:50:00Z'));
  assert.equal(timestampNs('not a time at all, really'), undefined);
});

test('keys and level words named like Object.prototype members are plain data', () => {
  const e = parse('{"msg":"x","level":"toString","constructor":"a","hasOwnProperty":1,"__proto__":{"admin":true}}');
  assert.equal(e.level, 'info');
  assert.deepEqual(Object.keys(e.attributes), ['level', 'constructor', 'hasOwnProperty', '__proto__']);
  assert.equal(e.attributes.constructor, 'a');
  assert.equal(Object.getPrototypeOf(e.attributes), Object.prototype);
  assert.equal(JSON.stringify(e.attributes), '{"level":"toString","constructor":"a","hasOwnProperty":1,"__proto__":{"admin":true}}');
});

test('metrics pass through untouched', () => {
  const p = createJsonParse(DEFAULTS);
  const m = makeMetric('x', { v: 1 });
  assert.equal(p.process(m), m);
});
