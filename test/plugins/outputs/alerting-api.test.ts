// The alerts API over real HTTP on a real agent: every route, bad bodies
// (400 with reasons), auth, /ws/alerts, the OpenAPI document; and, with a
// controllable clock, repeat notifications that acknowledging stops.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import SwaggerParser from '@apidevtools/swagger-parser';
import WebSocket from 'ws';
import { builtinPlugins } from '../../../core/builtins.ts';
import { loadConfig } from '../../../core/config.ts';
import { makeMetric } from '../../../core/events.ts';
import { AgentHttpServer } from '../../../core/http.ts';
import { createLogger } from '../../../core/log.ts';
import { createAlerting, type AlertingConfig } from '../../../plugins/outputs/alerting/index.ts';
import { startAgent, tempDir, waitFor, type TestAgent } from '../../helpers.ts';
import { startWebhookReceiver } from '../../support/alert_peers.ts';

const TOKEN = 't0ken';

async function call(a: TestAgent, method: string, path: string, body?: unknown, opts: { token?: string | null; raw?: string } = {}): Promise<{ status: number; body: any }> {
  const token = opts.token === undefined ? TOKEN : opts.token;
  const res = await fetch(`${a.url}${path}`, {
    method,
    headers: { ...(body !== undefined || opts.raw !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: opts.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed };
}

async function withAgent(fn: (a: TestAgent) => Promise<void>, opts: { notifiers?: string; rules?: string } = {}): Promise<void> {
  const a = await startAgent(`
agent:
  data_dir: \${OPSHUB_TEST_DATA}
  self_metrics: false
  shutdown_timeout: 2s
  http: { auth_token: ${TOKEN} }
outputs:
  - type: alerting
    evaluation_interval: 100ms
    notifiers:
      - { name: hooks, type: webhook, url: 'http://127.0.0.1:9/unused' }
${opts.notifiers ?? ''}
    rules:
${opts.rules ?? '      []'}
`);
  try {
    await fn(a);
  } finally {
    await a.stop();
  }
}

const ROUTES: Array<[string, string, unknown?]> = [
  ['GET', '/alerts'],
  ['GET', '/alerts/active'],
  ['POST', '/alerts', { alert_type: 'x', severity: 'info', message: 'm' }],
  ['POST', '/alerts/configure', { name: 'x', type: 'absent' }],
  ['GET', '/alerts/rules'],
  ['DELETE', '/alerts/rules/cpu_high'],
  ['POST', '/alerts/abc/acknowledge', { acknowledged_by: 'me' }],
];

test('every alerts route needs the agent token; /ws/alerts too (header or ?token=)', async () => {
  await withAgent(async (a) => {
    for (const [method, path, body] of ROUTES) {
      const r = await call(a, method, path, body, { token: null });
      assert.equal(r.status, 401, `${method} ${path} without token`);
      const wrong = await call(a, method, path, body, { token: 'wrong' });
      assert.equal(wrong.status, 401, `${method} ${path} with a wrong token`);
    }
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${a.url.replace('http', 'ws')}/ws/alerts`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => undefined);
    });
    assert.equal(refused, 401);
  });
});

test('custom alerts: POST /alerts records one (201); GET /alerts filters it; /alerts/active counts it; acknowledge records who', async () => {
  await withAgent(async (a) => {
    const created = await call(a, 'POST', '/alerts', {
      alert_type: 'high_error_rate', severity: 'critical', message: 'open-webui is failing', container_name: 'open-webui', metric_value: 42.5, threshold_value: 10,
    });
    assert.equal(created.status, 201);
    const alert = created.body;
    assert.match(alert.id, /^[0-9a-f]{16}$/);
    assert.equal(alert.alert_type, 'high_error_rate');
    assert.equal(alert.severity, 'critical');
    assert.equal(alert.message, 'open-webui is failing');
    assert.equal(alert.container_name, 'open-webui');
    assert.equal(alert.metric_value, 42.5);
    assert.equal(alert.threshold_value, 10);
    assert.equal(alert.resolved, false);
    assert.equal(alert.state, 'firing');
    assert.equal(alert.rule, null);
    assert.equal(alert.acknowledged, false);
    assert.equal(alert.labels.alertname, 'high_error_rate');
    assert.ok(Math.abs(Date.parse(alert.timestamp) - Date.now()) < 60_000);
    await call(a, 'POST', '/alerts', { alert_type: 'deploy', severity: 'info', message: 'deploying', resolve_after: '1h' });

    const all = await call(a, 'GET', '/alerts');
    assert.equal(all.status, 200);
    assert.deepEqual(all.body.map((x: { alert_type: string }) => x.alert_type).sort(), ['deploy', 'high_error_rate']);
    const cases: Array<[string, string[]]> = [
      ['?severity=critical', ['high_error_rate']],
      ['?severity=warning', []],
      ['?resolved=true', []],
      ['?resolved=false&hours=1', ['deploy', 'high_error_rate']],
      ['?container=open-webui', ['high_error_rate']],
      ['?state=firing&limit=1', ['deploy']],
    ];
    for (const [query, expected] of cases) {
      const r = await call(a, 'GET', `/alerts${query}`);
      assert.equal(r.status, 200, query);
      assert.deepEqual(r.body.map((x: { alert_type: string }) => x.alert_type).sort(), expected, query);
    }
    const active = await call(a, 'GET', '/alerts/active');
    assert.deepEqual(
      { active: active.body.active_count, critical: active.body.critical_count, warning: active.body.warning_count, info: active.body.info_count },
      { active: 2, critical: 1, warning: 0, info: 1 },
    );
    assert.equal(active.body.alerts[0].severity, 'critical', 'most severe first');

    const ack = await call(a, 'POST', `/alerts/${alert.id}/acknowledge`, { acknowledged_by: 'alice', notes: 'looking' });
    assert.equal(ack.status, 200);
    assert.equal(ack.body.acknowledged, true);
    assert.equal(ack.body.acknowledged_by, 'alice');
    assert.equal(ack.body.notes, 'looking');
    assert.equal((await call(a, 'POST', '/alerts/0123456789abcdef/acknowledge', { acknowledged_by: 'alice' })).status, 404);
  });
});

const BAD: Array<[string, string, unknown, RegExp[]]> = [
  ['POST', '/alerts', {}, [/alert_type is required/, /severity is required/, /message is required/]],
  ['POST', '/alerts', { alert_type: 'x', severity: 'urgent', message: 'm', metric_value: 'high' }, [/severity must be one of "info", "warning", "critical"/, /metric_value must be number/]],
  ['POST', '/alerts', { alert_type: 'x', severity: 'info', message: 'm', colour: 'red' }, [/colour is not a known key/]],
  ['POST', '/alerts', { alert_type: 'x', severity: 'info', message: 'm', resolve_after: 'later' }, [/resolve_after must be a duration/]],
  ['POST', '/alerts/configure', { name: 'x', type: 'threshold' }, [/metric is required/, /threshold is required/]],
  ['POST', '/alerts/configure', { name: 'x', type: 'threshold', metric: 'm', threshold: 1, condition: 'bigger' }, [/condition must be one of/]],
  ['POST', '/alerts/configure', { name: 'x', type: 'threshold', metric: 'm', threshold: 1, for: '1m', duration_seconds: 60 }, [/either for or duration_seconds/]],
  ['POST', '/alerts/configure', { name: 'x', type: 'threshold', metric: 'm', threshold: 1, notify: { notifiers: ['pager'] } }, [/no notifier named "pager"/]],
  ['POST', '/alerts/configure', { name: 'x', type: 'threshold', metric: 'm', threshold: 1, notify: { email: ['a@example.com'] } }, [/notify.email needs an email notifier/]],
  ['POST', '/alerts/configure', { name: 'x', type: 'log_rate', threshold: 1, containers: '(' }, [/containers must be a valid regular expression/]],
  ['POST', '/alerts/configure', [1, 2], [/must be a JSON object/]],
  ['POST', '/alerts/x/acknowledge', {}, [/acknowledged_by is required/]],
  ['POST', '/alerts/x/acknowledge', { acknowledged_by: '' }, [/acknowledged_by must NOT have fewer than 1 characters/]],
];

test('bad bodies are refused with 400 and every reason', async () => {
  await withAgent(async (a) => {
    for (const [method, path, body, reasons] of BAD) {
      const r = await call(a, method, path, body);
      assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error, 'bad_request');
      for (const reason of reasons) assert.ok(r.body.reasons.some((x: string) => reason.test(x)), `${path} ${JSON.stringify(body)}: ${reason} in ${JSON.stringify(r.body.reasons)}`);
      assert.equal(r.body.message, r.body.reasons.join('; '));
    }
    const notJson = await call(a, 'POST', '/alerts', undefined, { raw: '{"alert_type":' });
    assert.equal(notJson.status, 400);
    assert.match(notJson.body.message, /not JSON/);
    for (const query of ['?hours=-1', '?severity=urgent', '?resolved=maybe', '?limit=0']) {
      const r = await call(a, 'GET', `/alerts${query}`);
      assert.equal(r.status, 400, query);
      assert.equal(r.body.error, 'bad_request');
    }
  });
});

test('rules: configure creates (201) and replaces (200), GET lists every rule with its origin, DELETE removes or restores', async () => {
  await withAgent(async (a) => {
    const opshub = { name: 'gpu_warm', type: 'threshold', metric: 'nvidia_smi_temperature_gpu_celsius', condition: 'greater_than', threshold: 80, duration_seconds: 300, severity: 'warning', notify: { email: ['ml@example.com'] } };
    const created = await call(a, 'POST', '/alerts/configure', opshub);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.status, 'created');
    assert.equal(created.body.rule.for, '300s');
    assert.equal(created.body.rule.origin, 'api');
    assert.deepEqual(created.body.rule.notify, { notifiers: [], email: ['ml@example.com'], webhook: '' });
    const replaced = await call(a, 'POST', '/alerts/configure', { ...opshub, threshold: 82 });
    assert.equal(replaced.status, 200);
    assert.equal(replaced.body.status, 'replaced');
    assert.equal(replaced.body.rule.threshold, 82);

    const rules = await call(a, 'GET', '/alerts/rules');
    assert.equal(rules.status, 200);
    const byName = Object.fromEntries(rules.body.rules.map((r: { name: string }) => [r.name, r]));
    assert.equal(rules.body.count, rules.body.rules.length);
    assert.equal(byName.gpu_warm.origin, 'api');
    assert.equal(byName.cpu_high.origin, 'default');
    assert.equal(byName.cpu_high.threshold, 80);
    assert.equal(byName.file_rule.origin, 'config');
    assert.equal(byName.file_rule.severity, 'info');

    // A default replaced through the API, then restored by DELETE.
    const override = await call(a, 'POST', '/alerts/configure', { name: 'memory_high', type: 'threshold', metric: 'system_memory_used_percent', threshold: 95 });
    assert.equal(override.status, 200);
    assert.equal(override.body.rule.overrides, 'default');
    const restored = await call(a, 'DELETE', '/alerts/rules/memory_high');
    assert.deepEqual(restored.body, { deleted: 'memory_high', restored: 'default' });
    assert.equal((await call(a, 'GET', '/alerts/rules')).body.rules.find((r: { name: string }) => r.name === 'memory_high').threshold, 90);

    // Deleting: an API rule, a default, a file rule; unknown → 404.
    for (const name of ['gpu_warm', 'cpu_high', 'file_rule']) {
      const del = await call(a, 'DELETE', `/alerts/rules/${name}`);
      assert.equal(del.status, 200, name);
      assert.deepEqual(del.body, { deleted: name, restored: null });
    }
    const after = (await call(a, 'GET', '/alerts/rules')).body.rules.map((r: { name: string }) => r.name);
    for (const name of ['gpu_warm', 'cpu_high', 'file_rule']) assert.ok(!after.includes(name), name);
    const missing = await call(a, 'DELETE', '/alerts/rules/gpu_warm');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error, 'not_found');
  }, {
    rules: '      - { name: file_rule, type: threshold, metric: m_x, threshold: 1, severity: info }',
    notifiers: "      - { name: mail, type: email, host: 127.0.0.1, port: 9, security: none, from: 'a@example.com' }",
  });
});

test('/ws/alerts streams firing and acknowledged alerts to the clients whose filter takes them', async () => {
  await withAgent(async (a) => {
    const connect = (query: string) =>
      new Promise<{ ws: WebSocket; messages: any[] }>((resolve, reject) => {
        const ws = new WebSocket(`${a.url.replace('http', 'ws')}/ws/alerts?token=${TOKEN}${query}`);
        const messages: any[] = [];
        ws.on('message', (d) => {
          const m = JSON.parse(d.toString());
          if (m.type === 'subscribed') resolve({ ws, messages });
          else messages.push(m);
        });
        ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
        ws.on('error', reject);
      });
    const critical = await connect('&min_severity=warning');
    const all = await connect('');
    await assert.rejects(connect('&severity=urgent'), { status: 400 });
    await assert.rejects(connect('&colour=red'), { status: 400 });
    const info = await call(a, 'POST', '/alerts', { alert_type: 'deploy', severity: 'info', message: 'deploying' });
    const crit = await call(a, 'POST', '/alerts', { alert_type: 'oom', severity: 'critical', message: 'killed', container_name: 'ollama' });
    await call(a, 'POST', `/alerts/${crit.body.id}/acknowledge`, { acknowledged_by: 'bob' });
    await waitFor(() => all.messages.length === 3 && critical.messages.length === 2, 10_000, 'alert messages');
    assert.deepEqual(all.messages.map((m) => [m.kind, m.event, m.alert.id]), [
      ['alert', 'firing', info.body.id],
      ['alert', 'firing', crit.body.id],
      ['alert', 'acknowledged', crit.body.id],
    ]);
    assert.deepEqual(critical.messages.map((m) => m.event), ['firing', 'acknowledged']);
    assert.equal(critical.messages[1].alert.acknowledged_by, 'bob');
    critical.ws.close();
    all.ws.close();
  });
});

test('/openapi.json documents every alerts route with its schemas, and is a valid OpenAPI document', async () => {
  await withAgent(async (a) => {
    const doc = (await call(a, 'GET', '/openapi.json')).body;
    await SwaggerParser.validate(structuredClone(doc));
    const paths = doc.paths as Record<string, Record<string, any>>;
    assert.ok(paths['/alerts']?.get && paths['/alerts']?.post);
    assert.ok(paths['/alerts/active']?.get);
    assert.ok(paths['/alerts/configure']?.post?.requestBody);
    assert.ok(paths['/alerts/rules']?.get);
    assert.ok(paths['/alerts/rules/{name}']?.delete);
    assert.ok(paths['/alerts/{id}/acknowledge']?.post?.requestBody);
    assert.ok(paths['/ws/alerts']?.get);
    assert.deepEqual(paths['/alerts']!.get.parameters.map((p: { name: string }) => p.name).sort(), ['container', 'hours', 'limit', 'resolved', 'rule', 'severity', 'state']);
    const configure = paths['/alerts/configure']!.post.requestBody.content['application/json'].schema;
    assert.equal(configure.oneOf.length, 3, 'the three rule shapes');
  });
});

test('with a controllable clock: a firing alert is notified again every repeat_interval until acknowledged; the resolution is still sent', async (t) => {
  const hook = await startWebhookReceiver();
  t.after(() => hook.stop());
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const cfg = await loadConfig('x.yaml', {
    builtins: builtinPlugins,
    env: {},
    text: `
outputs:
  - type: alerting
    default_rules: { gpu_temperature_high: false }
    rules:
      - { name: gpu_hot, type: threshold, metric: nvidia_smi_temperature_gpu_celsius, threshold: 85, severity: critical }
    notifiers:
      - { name: hook, type: webhook, url: '${hook.url}/x', repeat_interval: 10m }
`,
  });
  const log = createLogger({ level: 'error', sink: () => undefined });
  const clock = { t: Date.parse('2026-03-11T07:00:00Z') };
  const out = createAlerting(cfg.outputs[0]!.options as unknown as AlertingConfig, {
    id: 'alerting', log, dataDir: tmp.dir, http: new AgentHttpServer({ listen: '127.0.0.1:0', log }), hostname: 'h', signal: new AbortController().signal,
  }, { now: () => clock.t });
  t.after(() => out.stop!());
  await out.start!();
  const hot = () => out.write([makeMetric('nvidia_smi', { temperature_gpu_celsius: 90 }, { index: '0' })], { checkpoints: [], positions: [] });
  const sent = () => out.dispatcher.stats().hook!;

  await hot();
  out.evaluate();
  await waitFor(() => sent().sent_total === 1, 10_000, 'the first notification');
  assert.equal(hook.requests.length, 1);
  clock.t += 5 * 60_000;
  await hot();
  out.evaluate();
  assert.equal(sent().queued, 0, 'not yet due');
  clock.t += 5 * 60_000;
  await hot();
  out.evaluate();
  await waitFor(() => sent().sent_total === 2, 10_000, 'the repeat');
  assert.equal(hook.requests.length, 2);
  assert.equal(hook.requests[1]!.body.alert.id, hook.requests[0]!.body.alert.id);

  out.backend.acknowledge(hook.requests[0]!.body.alert.id, 'alice', null);
  for (let i = 0; i < 3; i++) {
    clock.t += 10 * 60_000;
    await hot();
    out.evaluate();
    assert.equal(sent().queued, 0, 'acknowledged: no repeat');
  }
  assert.equal(sent().sent_total, 2);

  clock.t += 60_000;
  await out.write([makeMetric('nvidia_smi', { temperature_gpu_celsius: 60 }, { index: '0' })], { checkpoints: [], positions: [] });
  out.evaluate();
  await waitFor(() => hook.requests.length === 3, 10_000, 'the resolution');
  assert.equal(hook.requests[2]!.body.status, 'resolved');
  assert.equal(hook.requests[2]!.body.alert.acknowledged_by, 'alice');
  assert.equal(hook.requests.length, 3);
});
