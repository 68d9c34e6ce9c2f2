// outputs.opshub_api over real HTTP, with data ingested through the real
// pipeline: real Docker containers → docker_logs/docker_stats → processors →
// DuckDB, session events → webhook → DuckDB, host metrics and a (fake)
// nvidia-smi. Each endpoint's fields and values, count vs limit, time
// windows, follow streaming (NDJSON and SSE) of a line written after the
// request, bad parameters, auth, and 503s when a component is missing.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { formatBytes } from '../../../core/units.ts';
import { dockerCli } from '../../docker.ts';
import { startAgent, waitFor } from '../../helpers.ts';
import { auth, JOB_LINES, startApiFixture, TOKEN, WEB_LINES, type ApiFixture } from './opshub_api_fixture.ts';

let f: ApiFixture;
before(async () => {
  f = await startApiFixture();
});
after(async () => {
  await f?.stop();
});

const ISO_Z = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const at = (minutesAgo: number) => new Date(f.postedAt - minutesAgo * 60_000).toISOString();

/** Reads a streamed answer until `done(text so far)`, or fails after the timeout. */
async function readUntil(res: Response, done: (text: string) => boolean, timeoutMs = 20_000): Promise<string> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const timer = setTimeout(() => void reader.cancel(), timeoutMs);
  try {
    while (!done(text)) {
      const { value, done: ended } = await reader.read();
      if (ended) throw new Error(`the stream ended before the expected data; got:\n${text}`);
      text += decoder.decode(value, { stream: true });
    }
    return text;
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
}

/** Makes the running container print a line now (to PID 1's stdout, which docker logs). */
const print = (line: string) => dockerCli(['exec', f.web.container.id, 'sh', '-c', `echo '${line}' > /proc/1/fd/1`]);

const followers = () => (f.t.agent.pipeline.outputs.get('opshub_api')!.plugin as unknown as { followers: number }).followers;

test('containers/status: running and exited containers, OpsHub\'s strings with numeric siblings that agree', async () => {
  const list = await f.json<any[]>('/containers/status');
  const web = list.find((c) => c.name === f.web.name);
  const job = list.find((c) => c.name === f.job.name);
  assert.ok(web && job, 'both containers, the exited one too');
  const inspect = await f.web.container.inspect();
  assert.equal(web.status, 'running');
  assert.equal(web.id, inspect.Id);
  assert.equal(web.image, 'opshub-test/busybox');
  assert.equal(web.created, new Date(Math.floor(Date.parse(inspect.Created) / 1000) * 1000).toISOString());
  assert.match(web.cpu_percent, /^\d+\.\d$/);
  assert.equal(web.cpu_percent, web.cpu_percent_value.toFixed(1));
  assert.match(web.memory_usage, /^\d+(\.\d)? (B|kB|MB|GB) \(\d+\.\d%\)$/);
  assert.ok(web.memory_usage_bytes > 0);
  assert.equal(web.memory_usage, `${formatBytes(web.memory_usage_bytes)} (${web.memory_percent.toFixed(1)}%)`);
  assert.equal(web.network_io, `RX: ${formatBytes(web.network_rx_bytes)}, TX: ${formatBytes(web.network_tx_bytes)}`);
  assert.match(web.uptime, /^(\d+d \d+h \d+m|\d+h \d+m|\d+m)$/);
  assert.match(web.status_text, /^Up /);
  assert.match(web.sampled_at, ISO_Z);
  assert.equal(web.pids, 1);

  assert.equal(job.status, 'exited');
  assert.match(job.status_text, /^Exited \(0\)/);
  assert.deepEqual([job.cpu_percent, job.memory_usage, job.network_io, job.uptime, job.sampled_at], ['0.0', '0 B (0.0%)', 'RX: 0 B, TX: 0 B', '0m', null]);

  const one = await f.json(`/containers/${f.web.name}/status`);
  assert.deepEqual([one.name, one.id, one.image, one.created, one.status], [web.name, web.id, web.image, web.created, web.status]);
  assert.equal((await f.json(`/containers/${web.id.slice(0, 12)}/status`)).name, web.name, 'an id prefix finds it too');
  const missing = await f.get('/containers/no-such-container/status');
  assert.equal(missing.status, 404);
  assert.deepEqual(await missing.json(), { error: 'not_found', message: 'no container named no-such-container' });
});

test('logs: the last `tail` lines newest last, per container or all, by level', async () => {
  const { logs } = await f.json(`/logs/${f.web.name}?tail=3`);
  assert.deepEqual(logs.map((l: any) => l.message), WEB_LINES.slice(-3));
  for (const l of logs) {
    assert.deepEqual(Object.keys(l), ['timestamp', 'container', 'level', 'message', 'source']);
    assert.match(l.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.equal(l.container, f.web.name);
    assert.equal(l.level, 'info');
  }
  assert.ok(logs[0].timestamp < logs[2].timestamp, 'newest last');

  const errors = await f.json(`/logs/${f.web.name}?level=error`);
  assert.deepEqual(errors.logs.map((l: any) => l.message), WEB_LINES.filter((l) => l.startsWith('ERROR')));
  const everything = await f.json('/logs/all?tail=1000');
  const messages = everything.logs.map((l: any) => l.message);
  for (const line of [...WEB_LINES, ...JOB_LINES]) assert.ok(messages.includes(line), line);
  assert.ok(messages.includes('login by alice'), 'webhook events are lines too');
  const times = everything.logs.map((l: any) => l.timestamp);
  assert.deepEqual(times, [...times].sort(), 'oldest first');
  assert.deepEqual((await f.json('/logs/all?level=critical')).logs.map((l: any) => l.message), [JOB_LINES[0]]);
  assert.deepEqual((await f.json(`/logs/${f.job.name}?level=all`)).logs.map((l: any) => [l.message, l.level]), [[JOB_LINES[0], 'critical'], [JOB_LINES[1], 'success']]);
  assert.deepEqual(await f.json('/logs/nobody-here'), { logs: [] });
});

test('follow=true (NDJSON): the tail, then a line the container writes after the request; the follower goes away with the client', async () => {
  const abort = new AbortController();
  const res = await fetch(`${f.url}/logs/${f.web.name}?follow=true&tail=2`, { headers: auth, signal: abort.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type')!, /^application\/x-ndjson/);
  const tail = await readUntil(res, (t) => t.split('\n').length > 2);
  assert.deepEqual(tail.trim().split('\n').map((l) => JSON.parse(l).message), WEB_LINES.slice(-2));
  assert.equal(followers(), 1);

  await print('INFO followed line one');
  const more = await readUntil(res, (t) => t.includes('followed line one'));
  const line = JSON.parse(more.trim().split('\n').at(-1)!);
  assert.equal(line.message, 'INFO followed line one');
  assert.equal(line.container, f.web.name);
  assert.match(line.timestamp, ISO_Z);
  abort.abort();
  await waitFor(() => followers() === 0, 10_000, 'the follower to leave');
});

test('follow=true with Accept: text/event-stream streams Server-Sent Events; the level filter applies to new lines', async () => {
  const abort = new AbortController();
  const res = await fetch(`${f.url}/logs/${f.web.name}?follow=true&tail=1&level=error`, { headers: { ...auth, accept: 'text/event-stream' }, signal: abort.signal });
  assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
  const first = await readUntil(res, (t) => t.includes('\n\n'));
  assert.match(first, /^id: \d+\nevent: log\ndata: \{.*\}\n\n$/);
  assert.equal(JSON.parse(/data: (.*)/.exec(first)![1]!).message, WEB_LINES.filter((l) => l.startsWith('ERROR')).at(-1));

  await print('INFO not an error');
  await print('ERROR followed failure');
  const text = await readUntil(res, (t) => t.includes('followed failure'));
  const events = text.split('\n\n').filter((e) => e.startsWith('id:'));
  const data = events.map((e) => JSON.parse(/data: (.*)/.exec(e)![1]!));
  assert.deepEqual(data.map((d) => [d.message, d.level]), [['ERROR followed failure', 'error']], 'the info line was not sent');
  abort.abort();
  await waitFor(() => followers() === 0, 10_000, 'the follower to leave');
});

test('search: case-insensitive text, count of all matches vs limit, regex, level, container, metadata', async () => {
  const timeout = await f.json('/search/logs?query=TIMEOUT');
  assert.equal(timeout.count, 2);
  assert.deepEqual(timeout.results.map((r: any) => r.message), ['ERROR Timeout calling upstream model=llama3.1:8b', 'ERROR database connection timeout for user=erin'], 'newest first');
  const erin = timeout.results[1];
  assert.deepEqual(Object.keys(erin), ['timestamp', 'container', 'level', 'message', 'metadata']);
  assert.equal(erin.level, 'error');
  assert.equal(erin.container, f.web.name);
  assert.equal(erin.metadata.user, 'erin');
  assert.equal(erin.metadata.category, 'database');
  assert.equal(erin.metadata.ip, null);
  assert.equal(timeout.results[0].metadata.model, 'llama3.1:8b');

  const page = await f.json(`/search/logs?query=request&container=${f.web.name}&limit=5`);
  assert.equal(page.count, 30, 'count is every match in the window');
  assert.equal(page.limit, 5);
  assert.deepEqual(page.results.map((r: any) => r.message), [30, 29, 28, 27, 26].map((i) => `INFO request ${i} served`));
  const regex = await f.json(`/search/logs?query=${encodeURIComponent('^info request 1[0-9] served$')}&regex=true&limit=100`);
  assert.equal(regex.count, 10);
  assert.equal(regex.results.length, 10);
  assert.equal((await f.json('/search/logs?query=timeout&level=error')).count, 2);
  assert.equal((await f.json('/search/logs?query=timeout&level=warning')).count, 0);
  assert.deepEqual((await f.json(`/search/logs?level=critical&container=${f.job.name}`)).results.map((r: any) => r.message), [JOB_LINES[0]]);
  const bob = await f.json('/search/logs?query=bob');
  assert.equal(bob.results[0].metadata.user, 'bob');
  assert.equal(bob.results.find((r: any) => r.metadata.ip_address)?.metadata.ip, '10.0.0.7');
  assert.equal((await f.json('/search/logs?query=%25')).count, 0, 'a % in the text is a literal, not a wildcard');
});

test('search windows: start_time/end_time (with or without a zone) and hours', async () => {
  const dave = (q: string) => f.json(`/search/logs?query=dave${q}`);
  assert.equal((await dave('&hours=2')).count, 1, 'only the request 1 h ago');
  assert.equal((await dave('&hours=4')).count, 2);
  const window = await dave(`&start_time=${at(200)}&end_time=${at(120)}`);
  assert.equal(window.count, 1);
  assert.equal(window.start_time, at(200));
  assert.equal(window.end_time, at(120));
  assert.equal((await dave(`&start_time=${at(200).replace('Z', '')}&end_time=${at(120).replace('Z', '')}`)).count, 1, 'naive times are UTC');
  assert.equal((await dave(`&start_time=${encodeURIComponent(new Date(f.postedAt - 200 * 60_000).toISOString().replace('Z', '+00:00'))}`)).count, 2);
  assert.equal((await dave(`&end_time=${at(240)}`)).count, 0, 'end_time alone: the `hours` before it');
});

test('bad parameters get 400 naming the parameter and why', async () => {
  const cases: Array<[string, string, RegExp]> = [
    ['/search/logs?limit=0', 'limit', /must be >= 1/],
    ['/search/logs?limit=10001', 'limit', /must be <= 10000/],
    ['/search/logs?level=loud', 'level', /must be one of: info, warning, error, success, critical/],
    ['/search/logs?start_time=yesterday', 'start_time', /ISO 8601/],
    ['/search/logs?hours=-1', 'hours', /must be > 0/],
    ['/search/logs?hours=lots', 'hours', /must be a number/],
    ['/search/logs?regex=true&query=(unclosed', 'query', /not a valid regular expression/],
    [`/search/logs?start_time=${at(10)}&end_time=${at(20)}`, 'start_time', /must be before end_time/],
    ['/logs/all?tail=0', 'tail', /must be >= 1/],
    ['/logs/all?follow=perhaps', 'follow', /must be true or false/],
    ['/users/sessions?active_only=maybe', 'active_only', /must be true or false/],
    ['/metrics/performance/history?metric=nope', 'metric', /must be one of: cpu_percent/],
    ['/metrics/performance/history?points=5', 'points', /must be >= 10/],
    ['/analytics/users?period=0', 'period', /must be >= 1/],
    ['/analytics/models?period=week', 'period', /must be an integer/],
    ['/errors/summary?period=9999', 'period', /must be <= 8760/],
  ];
  for (const [p, parameter, why] of cases) {
    const res = await f.get(p);
    assert.equal(res.status, 400, p);
    const body = (await res.json()) as { error: string; message: string; parameter: string };
    assert.equal(body.error, 'bad_request', p);
    assert.equal(body.parameter, parameter, p);
    assert.match(body.message, new RegExp(`${parameter}`), p);
    assert.match(body.message, why, p);
  }
});

test('sessions: from webhook events and lines naming a user; a logout and the idle timeout end them; active_only, hours', async () => {
  const all = await f.json<any[]>('/users/sessions');
  const of = (user: string) => all.filter((s) => s.username === user);
  assert.deepEqual(of('alice'), [
    { username: 'alice', model: 'llama3.1:8b', session_id: 'sess-alice', started_at: at(10), last_activity: at(8), request_count: 1, ip_address: '192.168.1.23', status: 'ended', duration_seconds: 120 },
  ]);
  const [bob] = of('bob');
  assert.deepEqual({ ...bob, session_id: undefined }, { username: 'bob', model: 'qwen2.5:7b', session_id: undefined, started_at: at(2), last_activity: at(1), request_count: 2, ip_address: '10.0.0.7', status: 'active', duration_seconds: 60 });
  assert.equal(bob.session_id, `bob-${Date.parse(at(2))}`, 'without a session id in the events, one is made from user and start');
  assert.deepEqual(of('dave').map((s) => [s.started_at, s.status]), [[at(60), 'ended'], [at(180), 'ended']], 'two hours apart: two sessions (idle timeout 30m)');
  assert.deepEqual(of('erin').map((s) => [s.status, s.request_count]), [['active', 1]], 'a container line naming a user is activity');
  assert.deepEqual(all.map((s) => s.last_activity), [...all.map((s) => s.last_activity)].sort().reverse(), 'newest activity first');

  const active = await f.json<any[]>('/users/sessions?active_only=true');
  assert.deepEqual(active.map((s) => s.username).sort(), ['bob', 'carol', 'erin']);
  const recent = await f.json<any[]>('/users/sessions?hours=2');
  assert.deepEqual(recent.filter((s) => s.username === 'dave').map((s) => s.started_at), [at(60)]);
});

test('performance: the latest host figures and each GPU of nvidia-smi (MiB, MHz) with bytes beside', async () => {
  const p = await f.json('/metrics/performance');
  assert.match(p.timestamp, ISO_Z);
  assert.ok(Date.now() - Date.parse(p.timestamp) < 60_000, 'recent');
  for (const k of ['cpu_percent', 'memory_percent', 'disk_percent']) assert.ok(p[k] >= 0 && p[k] <= 100, `${k}: ${p[k]}`);
  assert.equal(p.memory_total_bytes, os.totalmem());
  assert.ok(Math.abs(p.memory_percent - (p.memory_used_bytes / p.memory_total_bytes) * 100) < 0.01);
  assert.equal(p.load_avg.length, 3);
  assert.deepEqual(p.gpus, [
    {
      index: 0,
      name: 'NVIDIA H100 80GB HBM3',
      utilization: 100,
      memory_utilization: 32,
      memory_used: 1011,
      memory_total: 81559,
      memory_percent: 1.24,
      temperature: 59,
      power_draw: 698.42,
      graphics_clock: 1380,
      memory_clock: 2619,
      memory_used_bytes: 1011 * 1048576,
      memory_total_bytes: 81559 * 1048576,
    },
  ]);
});

test('performance history: buckets from the store, at most `points`, oldest first', async () => {
  await waitFor(async () => (await f.json('/metrics/performance/history?hours=1&metric=cpu_percent&points=10')).points.length >= 1, 20_000, 'cpu samples');
  const h = await f.json('/metrics/performance/history?hours=1&metric=cpu_percent&points=10');
  assert.deepEqual([h.metric, h.unit, h.hours, h.interval_seconds], ['cpu_percent', '%', 1, 360]);
  assert.ok(h.points.length >= 1 && h.points.length <= 10);
  for (const pt of h.points) {
    assert.match(pt.timestamp, ISO_Z);
    assert.ok(pt.min <= pt.value && pt.value <= pt.max);
  }
  const gpu = await f.json('/metrics/performance/history?hours=1&metric=gpu_utilization&gpu=0');
  assert.ok(gpu.points.every((pt: any) => pt.value === 100), 'the GPU ran at 100 %');
  assert.deepEqual((await f.json('/metrics/performance/history?hours=1&metric=gpu_utilization&gpu=7')).points, [], 'no such GPU');
  const mem = await f.json('/metrics/performance/history?hours=1&metric=memory_percent');
  assert.equal(mem.interval_seconds, 12, '1 h in the default 300 points');
});

test('analytics: users (sessions, peak, top models, hours of the day) and models (requests, users, response time, success, peak)', async () => {
  const u = await f.json('/analytics/users?period=24');
  assert.equal(u.period, '24h');
  assert.equal(u.total_users, 5, 'alice, bob, dave (webhook), erin, carol (container lines)');
  assert.equal(u.active_users, 3);
  assert.equal(u.total_sessions, 6);
  // erin and carol each have one line, printed back to back: their zero-length sessions are open
  // at the same instant only when Docker stamped both lines in the same millisecond.
  const sessions = await f.json('/users/sessions');
  const startOf = (who: string) => sessions.find((x: any) => x.username === who).started_at;
  assert.equal(u.peak_concurrent, startOf('erin') === startOf('carol') ? 2 : 1);
  assert.equal(u.average_session_duration, 30, '(120 s + 60 s) / 6 sessions');
  assert.deepEqual(u.top_models, [{ model: 'llama3.1:8b', requests: 4, users: 3 }, { model: 'qwen2.5:7b', requests: 2, users: 1 }]);
  assert.deepEqual(u.hourly_activity.map((h: any) => h.hour), Array.from({ length: 24 }, (_, i) => String(i).padStart(2, '0')));
  const hourOf = (ms: number) => u.hourly_activity[new Date(ms).getUTCHours()];
  assert.ok(hourOf(f.postedAt - 180 * 60_000).requests >= 1, 'dave 3 h ago counts in his hour');
  assert.equal(u.hourly_activity.reduce((a: number, h: any) => a + h.requests, 0), 7, 'every request once: alice 1, bob 2, dave 2, erin 1, carol 1');
  assert.equal((await f.json('/analytics/users?period=168')).period, '7d');
  assert.equal((await f.json('/analytics/users?period=1')).total_users, 4, 'dave, 1 h and 3 h ago, is outside the last hour');

  const m = await f.json('/analytics/models?period=168');
  assert.equal(m.period, '7d');
  const llama = m.models.find((x: any) => x.name === 'llama3.1:8b');
  const qwen = m.models.find((x: any) => x.name === 'qwen2.5:7b');
  // The peak is per clock hour: when the fixture's last minutes straddle an hour, its requests split in two.
  const straddles = (fromMinutesAgo: number) => new Date(f.postedAt - fromMinutesAgo * 60_000).getUTCHours() !== new Date(f.postedAt + 60_000).getUTCHours();
  const peak = (expected: number, windowMinutes: number, actual: number) => (straddles(windowMinutes) && actual < expected && actual >= expected - 1 ? actual : expected);
  assert.deepEqual({ ...llama, peak_hour: undefined }, { name: 'llama3.1:8b', total_requests: 5, unique_users: 3, avg_response_time: 963, success_rate: 80, peak_usage: peak(3, 10, llama.peak_usage), peak_hour: undefined });
  assert.deepEqual({ ...qwen, peak_hour: undefined }, { name: 'qwen2.5:7b', total_requests: 2, unique_users: 1, avg_response_time: 1000, success_rate: 50, peak_usage: peak(2, 3, qwen.peak_usage), peak_hour: undefined });
  assert.match(qwen.peak_hour, /^\d{4}-\d\d-\d\dT\d\d:00:00\.000Z$/);
});

test('errors/summary: errors by container and category, the error rate and the most frequent messages', async () => {
  // Other tests make the web container print more, and their last lines may
  // still be on their way to the store: count what /logs says it holds, with
  // the summary read between two equal answers of /logs.
  const held = async () => (await f.json(`/logs/${f.web.name}?tail=10000`)).logs;
  let webLines = await held();
  let s = await f.json('/errors/summary?period=24');
  for (let again = await held(); again.length !== webLines.length; again = await held()) {
    webLines = again;
    s = await f.json('/errors/summary?period=24');
  }
  const webErrors = webLines.filter((l: any) => l.level === 'error' || l.level === 'critical');
  assert.ok(webErrors.length >= 2);
  assert.equal(s.period, '24h');
  const web = s.by_container.find((c: any) => c.container === f.web.name);
  const job = s.by_container.find((c: any) => c.container === f.job.name);
  assert.deepEqual(web, { container: f.web.name, errors: webErrors.length, critical: 0, lines: webLines.length, error_rate: Math.round((webErrors.length / webLines.length) * 10000) / 100 });
  assert.deepEqual(job, { container: f.job.name, errors: 1, critical: 1, lines: 2, error_rate: 50 });
  assert.equal(s.total_errors, s.by_container.reduce((a: number, c: any) => a + c.errors, 0));
  assert.equal(s.total_lines, s.by_container.reduce((a: number, c: any) => a + c.lines, 0));
  assert.equal(s.error_rate, Math.round((s.total_errors / s.total_lines) * 10000) / 100);
  assert.deepEqual(s.by_category.find((c: any) => c.category === 'database'), { category: 'database', errors: 1 });
  assert.equal(s.by_category.reduce((a: number, c: any) => a + c.errors, 0), s.total_errors);
  assert.deepEqual(s.top_errors.map((e: any) => e.message).sort(), [JOB_LINES[0], ...webErrors.map((l: any) => l.message)].sort());
  for (const e of s.top_errors) assert.match(e.last_seen, ISO_Z);
});

test('health/detailed: the engine, the store, every output and input; healthy → 200', async () => {
  const h = await f.json('/health/detailed');
  assert.equal(h.status, 'healthy');
  const by = new Map<string, any>(h.components.map((c: any) => [c.name, c]));
  assert.deepEqual(
    [...by.keys()].sort(),
    ['docker', 'inputs.docker_logs', 'inputs.docker_stats', 'inputs.nvidia_smi', 'inputs.session_webhook', 'inputs.system', 'outputs.duckdb', 'outputs.opshub_api', 'store'],
  );
  assert.equal(by.get('docker').reachable, true);
  assert.ok(by.get('docker').latency_ms >= 0);
  assert.equal(by.get('store').writable, true);
  assert.ok(by.get('store').file_bytes + by.get('store').wal_bytes > 0);
  const duck = by.get('outputs.duckdb');
  assert.ok(duck.written > 0);
  assert.match(duck.last_success, ISO_Z);
  assert.equal(duck.buffer_limit, 10000);
  assert.match(by.get('inputs.system').last_gather, ISO_Z);
  assert.ok(by.get('inputs.docker_logs').events >= WEB_LINES.length + JOB_LINES.length);
  assert.ok(h.components.every((c: any) => c.status === 'healthy'));
});

test('auth: every API route needs the token; ?token= works only where EventSource needs it (/logs)', async () => {
  const paths = [
    '/containers/status', `/containers/${f.web.name}/status`, '/logs/all', '/search/logs', '/users/sessions', '/metrics/performance',
    '/metrics/performance/history', '/analytics/users', '/analytics/models', '/errors/summary', '/health/detailed',
  ];
  for (const p of paths) {
    const res = await f.get(p, {});
    assert.equal(res.status, 401, p);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    assert.equal((await f.get(p, { authorization: 'Bearer wrong' })).status, 401, p);
  }
  assert.equal((await f.get(`/logs/all?tail=1&token=${TOKEN}`, {})).status, 200);
  assert.equal((await f.get('/logs/all?tail=1&token=wrong', {})).status, 401);
  assert.equal((await f.get(`/search/logs?token=${TOKEN}`, {})).status, 401);
  assert.equal((await f.get('/health', {})).status, 200);
});

test('without a store or a Docker input: 503 naming what to configure; unhealthy (503) when the engine does not answer', async () => {
  const t = await startAgent(`agent:
  self_metrics: false
  data_dir: \${OPSHUB_TEST_DATA}
inputs:
  - type: docker_stats
    endpoint: tcp://127.0.0.1:9
    api_timeout: 1s
outputs:
  - type: opshub_api
`);
  try {
    const search = await fetch(`${t.url}/search/logs`);
    assert.equal(search.status, 503);
    assert.match(((await search.json()) as { message: string }).message, /no outputs\.duckdb is configured/);
    const containers = await fetch(`${t.url}/containers/status`);
    assert.equal(containers.status, 503);
    assert.match(((await containers.json()) as { message: string }).message, /Docker engine does not answer/);
    const perf = (await (await fetch(`${t.url}/metrics/performance`)).json()) as Record<string, unknown>;
    assert.deepEqual([perf.cpu_percent, perf.gpus, perf.load_avg], [null, [], []]);
    const health = await fetch(`${t.url}/health/detailed`);
    assert.equal(health.status, 503);
    const body = (await health.json()) as { status: string; components: Array<{ name: string; status: string; reachable?: boolean }> };
    assert.equal(body.status, 'unhealthy');
    assert.deepEqual(body.components.find((c) => c.name === 'docker'), { ...body.components.find((c) => c.name === 'docker'), status: 'unhealthy', reachable: false });
  } finally {
    await t.stop();
  }
});
