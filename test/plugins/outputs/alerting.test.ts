// outputs.alerting end to end: metrics and container logs flow through a real
// agent, rules fire, and a real Alertmanager, a webhook receiver (JSON with
// HMAC signature, Slack format) and an SMTP server get the alerts; the DuckDB
// store holds them; a restart notifies nothing twice and keeps API rules; a
// receiver that is down delays nothing else.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { makeLog, makeMetric, type Level } from '../../../core/events.ts';
import type { AlertingOutput } from '../../../plugins/outputs/alerting/index.ts';
import { startAgent, tempDir, waitFor, type TestAgent } from '../../helpers.ts';
import { startAlertmanager, startSmtpServer, startWebhookReceiver } from '../../support/alert_peers.ts';
import { pushInput } from '../../support/push_input.ts';

const gpu = (index: string, celsius: number) => makeMetric('test_gpu', { temperature_celsius: celsius }, { index });
const line = (container: string, level: Level, message = `${level} in ${container}`) => makeLog({ source: container, level, message, labels: { container } });

function alertingOf(a: TestAgent): AlertingOutput {
  return a.agent.pipeline.outputs.get('alerting')!.plugin as unknown as AlertingOutput;
}

async function api(a: TestAgent, path: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${a.url}${path}`, { ...init, headers: { 'content-type': 'application/json', authorization: 'Bearer t0ken', ...(init.headers ?? {}) } });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const RULES = `
    default_rules: { cpu_high: false, memory_high: false, gpu_temperature_high: false, disk_space_low: false, container_down: false, container_restarting: false, container_error_share: false, container_error_lines: false, request_latency_p95: false }
    rules:
      - name: gpu_hot
        type: threshold
        metric: test_gpu_temperature_celsius
        condition: '>'
        threshold: 85
        severity: critical
        labels: { team: ml }
        message: 'GPU {{index}} temperature is {{value}}°C'
      - name: webui_errors
        type: log_rate
        containers: '^open-webui$'
        match: { levels: [error, critical] }
        window: 1m
        threshold: 2
        severity: warning
        message: '{{container}} logged {{value}} errors in a minute'
        notify: { notifiers: [hooks] }
`;

test('metrics and logs through a real agent fire alerts that reach Alertmanager, a signed webhook, Slack format, email and the DuckDB store; resolution follows', async (t) => {
  const am = await startAlertmanager();
  t.after(() => am.stop());
  const hook = await startWebhookReceiver();
  t.after(() => hook.stop());
  const smtp = await startSmtpServer();
  t.after(() => smtp.stop());
  const input = pushInput();
  const a = await startAgent(
    `
agent:
  data_dir: \${OPSHUB_TEST_DATA}
  self_metrics: false
  hostname: gpu-01
  shutdown_timeout: 3s
  http: { auth_token: t0ken }
inputs:
  - type: push
outputs:
  - type: duckdb
    flush_interval: 100ms
    retention: { enabled: false }
  - type: alerting
    flush_interval: 100ms
    evaluation_interval: 200ms
    external_url: http://ops.example:8089
${RULES}
    notifiers:
      - { name: am, type: alertmanager, url: '${am.url}', resend_interval: 1s }
      - { name: hooks, type: webhook, url: '${hook.url}/opshub', secret: s3cret }
      - { name: slack, type: webhook, format: slack, url: '${hook.url}/slack', severities: [critical] }
      - name: mail
        type: email
        host: 127.0.0.1
        port: ${smtp.port}
        security: none
        username: opshub
        password: secret
        from: 'OpsHub <opshub@example.com>'
        to: [oncall@example.com]
        severities: [critical]
`,
    { plugins: [input.definition] },
  );
  t.after(() => a.stop());

  input.emit(gpu('0', 91), gpu('1', 50), line('open-webui', 'error'), line('open-webui', 'error'), line('open-webui', 'critical'), line('open-webui', 'info'), line('ollama', 'error'));

  // Alertmanager lists the GPU alert (and the log alert: it goes to every notifier the rule names — not am).
  await waitFor(async () => (await am.alerts()).some((x) => x.labels.alertname === 'gpu_hot'), 15_000, 'Alertmanager to list gpu_hot');
  const listed = (await am.alerts()).filter((x) => x.labels.alertname === 'gpu_hot');
  assert.equal(listed.length, 1, 'only GPU 0 is hot');
  const amAlert = listed[0]!;
  assert.deepEqual(amAlert.labels, { alertname: 'gpu_hot', severity: 'critical', index: '0', team: 'ml', host: 'gpu-01' });
  assert.equal(amAlert.annotations.summary, 'GPU 0 temperature is 91°C');
  assert.equal(amAlert.annotations.value, '91');
  assert.equal(amAlert.status.state, 'active');
  assert.match(amAlert.generatorURL, /^http:\/\/ops\.example:8089\/alerts\?rule=gpu_hot$/);
  assert.ok(Date.parse(amAlert.endsAt) > Date.now(), 'a firing alert ends in the future');
  assert.ok(!(await am.alerts()).some((x) => x.labels.alertname === 'webui_errors'), 'webui_errors only goes to hooks');

  // The signed JSON webhook got both alerts; the Slack one only the critical one.
  await waitFor(() => hook.requests.filter((r) => r.path === '/opshub').length >= 2 && hook.requests.some((r) => r.path === '/slack'), 15_000, 'webhook deliveries');
  const json = hook.requests.filter((r) => r.path === '/opshub');
  for (const r of json) {
    assert.equal(r.headers['x-opshub-signature-256'], `sha256=${createHmac('sha256', 's3cret').update(r.raw).digest('hex')}`, 'the signature is the HMAC of the raw body');
    assert.equal(r.body.version, '1');
    assert.equal(r.body.status, 'firing');
    assert.equal(r.body.host, 'gpu-01');
  }
  const byRule = Object.fromEntries(json.map((r) => [r.body.alert.rule, r.body.alert]));
  assert.equal(byRule.gpu_hot.message, 'GPU 0 temperature is 91°C');
  assert.equal(byRule.gpu_hot.severity, 'critical');
  assert.equal(byRule.gpu_hot.metric_value, 91);
  assert.equal(byRule.gpu_hot.threshold_value, 85);
  assert.equal(byRule.gpu_hot.resolved, false);
  assert.equal(byRule.webui_errors.message, 'open-webui logged 3 errors in a minute');
  assert.equal(byRule.webui_errors.container_name, 'open-webui');
  const slack = hook.requests.filter((r) => r.path === '/slack');
  assert.equal(slack.length, 1, 'the slack notifier takes critical alerts only');
  assert.match(slack[0]!.body.text, /^FIRING \[CRITICAL\] gpu_hot: GPU 0 temperature is 91°C$/);
  assert.equal(slack[0]!.body.attachments[0].color, '#d00000');

  // The email.
  await waitFor(() => smtp.messages.length >= 1, 15_000, 'the email');
  assert.deepEqual(smtp.logins, ['opshub']);
  const mail = smtp.messages[0]!;
  assert.deepEqual(mail.to, ['oncall@example.com']);
  assert.equal(mail.from, 'opshub@example.com');
  assert.match(mail.subject, /\[critical\] FIRING: GPU 0 temperature is 91/);
  assert.match(mail.raw, /Severity:  critical/);

  // The API says the same.
  const active = await api(a, '/alerts/active');
  assert.equal(active.status, 200);
  assert.equal(active.body.active_count, 2);
  assert.equal(active.body.critical_count, 1);
  assert.equal(active.body.warning_count, 1);

  // Resolution: the GPU cools down.
  input.emit(gpu('0', 70));
  await waitFor(async () => {
    const x = (await am.alerts()).find((y) => y.labels.alertname === 'gpu_hot');
    return x === undefined || Date.parse(x.endsAt) <= Date.now();
  }, 15_000, 'Alertmanager to see gpu_hot resolved');
  await waitFor(() => hook.requests.some((r) => r.path === '/opshub' && r.body.status === 'resolved'), 15_000, 'the resolved webhook');
  const resolved = hook.requests.find((r) => r.path === '/opshub' && r.body.status === 'resolved')!;
  assert.equal(resolved.body.alert.rule, 'gpu_hot');
  assert.equal(resolved.body.alert.resolved, true);
  assert.ok(resolved.body.alert.resolved_at);
  await waitFor(() => smtp.messages.some((m) => /RESOLVED/.test(m.subject)), 15_000, 'the resolved email');

  // The store has the history, queryable with SQL.
  await waitFor(async () => {
    const q = await api(a, '/api/query/duckdb', { method: 'POST', body: JSON.stringify({ sql: "SELECT rule, state FROM opshub_alerts WHERE rule = 'gpu_hot'" }) });
    return q.status === 200 && q.body.rows.length === 1 && q.body.rows[0][1] === 'resolved';
  }, 15_000, 'opshub_alerts to hold the resolved alert');
  const q = await api(a, '/api/query/duckdb', {
    method: 'POST',
    body: JSON.stringify({ sql: "SELECT rule, severity, value, threshold, labels->>'index', started_at IS NOT NULL, resolved_at IS NOT NULL, notified_at IS NOT NULL FROM opshub_alerts ORDER BY rule" }),
  });
  assert.deepEqual(q.body.rows, [
    ['gpu_hot', 'critical', 70, 85, '0', true, true, true],
    ['webui_errors', 'warning', 3, 2, null, true, false, true],
  ]);

  const figures = alertingOf(a).selfMetrics();
  assert.equal(figures.alerts_firing_warning, 1);
  assert.equal(figures.alerts_firing_critical, 0);
  assert.ok(figures.notifications_hooks_sent_total! >= 3);
  assert.ok(figures.notifications_mail_sent_total! >= 2);
  assert.equal(figures.notifications_mail_failed_total, 0);
});

test('a restart resumes the alerts without notifying again, and rules made through the API are still there', async (t) => {
  const hook = await startWebhookReceiver();
  t.after(() => hook.stop());
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const yaml = `
agent:
  data_dir: ${tmp.dir}/data
  self_metrics: false
  shutdown_timeout: 3s
  http: { auth_token: t0ken }
inputs:
  - type: push
outputs:
  - type: alerting
    flush_interval: 100ms
    evaluation_interval: 200ms
${RULES}
    notifiers:
      - { name: hooks, type: webhook, url: '${hook.url}/opshub', repeat_interval: 1h }
`;
  const run = async () => {
    const input = pushInput();
    const a = await startAgent(yaml, { plugins: [input.definition], dir: tmp.dir });
    return { a, input };
  };

  let { a, input } = await run();
  input.emit(gpu('0', 95));
  await waitFor(() => hook.requests.length === 1, 15_000, 'the first notification');
  const first = hook.requests[0]!.body.alert;
  const created = await api(a, '/alerts/configure', {
    method: 'POST',
    body: JSON.stringify({ name: 'gpu_warm', type: 'threshold', metric: 'test_gpu_temperature_celsius', condition: 'greater_than', threshold: 80, duration_seconds: 0, severity: 'warning' }),
  });
  assert.equal(created.status, 201);
  input.emit(gpu('0', 95));
  await waitFor(() => hook.requests.length === 2, 15_000, 'the API rule\'s alert');
  assert.equal(hook.requests[1]!.body.alert.rule, 'gpu_warm');
  await a.stop();

  ({ a, input } = await run());
  t.after(() => a.stop());
  const out = alertingOf(a);
  // The GPU stays hot; let the restarted agent evaluate many times.
  const evaluations = out.selfMetrics().evaluations_total!;
  for (let i = 0; i < 10; i++) {
    input.emit(gpu('0', 96));
    await waitFor(() => out.selfMetrics().evaluations_total! >= evaluations + i + 1, 10_000, 'an evaluation');
  }
  await waitFor(() => out.selfMetrics().evaluations_total! >= evaluations + 15, 10_000, 'more evaluations');
  assert.equal(hook.requests.length, 2, `nothing was notified again after the restart: ${JSON.stringify(hook.requests.map((r) => [r.body.status, r.body.alert.rule, r.body.alert.id, r.body.alert.state]))}`);
  const active = await api(a, '/alerts/active');
  assert.equal(active.body.active_count, 2);
  assert.ok(active.body.alerts.some((x: { id: string }) => x.id === first.id), 'the same alert (same id) is still firing');
  const rules = await api(a, '/alerts/rules');
  const warm = rules.body.rules.find((r: { name: string }) => r.name === 'gpu_warm');
  assert.equal(warm.origin, 'api');
  assert.equal(warm.for, '0s');
  assert.equal(warm.condition, 'greater_than');

  // Resolution after the restart is still notified once.
  input.emit(gpu('0', 20));
  await waitFor(() => hook.requests.filter((r) => r.body.status === 'resolved').length === 2, 15_000, 'two resolutions');
});

test('a notifier that is down delays nothing else: evaluation and the other notifiers go on, and it delivers once back', async (t) => {
  const down = await startWebhookReceiver();
  t.after(() => down.stop());
  const up = await startWebhookReceiver();
  t.after(() => up.stop());
  down.status = 503;
  const input = pushInput();
  const a = await startAgent(
    `
agent:
  data_dir: \${OPSHUB_TEST_DATA}
  self_metrics: false
  shutdown_timeout: 2s
  http: { auth_token: t0ken }
inputs:
  - type: push
outputs:
  - type: alerting
    flush_interval: 100ms
    evaluation_interval: 200ms
${RULES.replace('notify: { notifiers: [hooks] }', '')}
    notifiers:
      - { name: flaky, type: webhook, url: '${down.url}/x', retry_initial_backoff: 100ms, retry_max_backoff: 300ms }
      - { name: fine, type: webhook, url: '${up.url}/x' }
`,
    { plugins: [input.definition] },
  );
  t.after(() => a.stop());
  const out = alertingOf(a);
  input.emit(gpu('0', 99));
  await waitFor(() => up.requests.length === 1, 15_000, 'the working notifier');
  await waitFor(() => out.selfMetrics().notifications_flaky_retries_total! >= 2, 15_000, 'retries of the failing one');
  // Evaluation goes on: a second alert fires and reaches the working notifier meanwhile.
  input.emit(line('open-webui', 'error'), line('open-webui', 'error'), line('open-webui', 'error'));
  await waitFor(() => up.requests.length === 2, 15_000, 'the second alert');
  assert.equal(down.requests.length, 0);
  down.status = 200;
  await waitFor(() => down.requests.length === 2, 15_000, 'delivery once the receiver is back');
  assert.deepEqual(down.requests.map((r) => r.body.alert.rule).sort(), ['gpu_hot', 'webui_errors']);
  assert.equal(out.selfMetrics().notifications_flaky_failed_total, 0);
});

test("a rule's notify section: its own recipients through the email notifier, its own webhook, and a Teams card", async (t) => {
  const hook = await startWebhookReceiver();
  t.after(() => hook.stop());
  const smtp = await startSmtpServer();
  t.after(() => smtp.stop());
  const input = pushInput();
  const a = await startAgent(
    `
agent:
  data_dir: \${OPSHUB_TEST_DATA}
  self_metrics: false
  shutdown_timeout: 2s
inputs:
  - type: push
outputs:
  - type: alerting
    flush_interval: 100ms
    evaluation_interval: 200ms
    default_rules: { gpu_temperature_high: false }
    rules:
      - name: gpu_hot
        type: threshold
        metric: test_gpu_temperature_celsius
        threshold: 85
        severity: critical
        notify: { notifiers: [mail, teams], email: [ml@example.com], webhook: '${hook.url}/rule' }
      - { name: gpu_warm, type: threshold, metric: test_gpu_temperature_celsius, threshold: 80, severity: warning }
    notifiers:
      - { name: teams, type: webhook, format: teams, url: '${hook.url}/teams', severities: [critical] }
      - { name: mail, type: email, host: 127.0.0.1, port: ${smtp.port}, security: none, username: opshub, password: secret, from: opshub@example.com, to: [oncall@example.com] }
`,
    { plugins: [input.definition] },
  );
  t.after(() => a.stop());
  input.emit(gpu('0', 90));
  await waitFor(() => smtp.messages.length === 2 && hook.requests.length === 2, 15_000, 'two mails and two webhook calls');
  const to = Object.fromEntries(smtp.messages.map((m) => [/gpu_hot|gpu_warm/.exec(m.raw)![0], m.to]));
  assert.deepEqual(to, { gpu_hot: ['ml@example.com'], gpu_warm: ['oncall@example.com'] });
  const rule = hook.requests.find((r) => r.path === '/rule')!;
  assert.equal(rule.body.alert.rule, 'gpu_hot');
  const teams = hook.requests.find((r) => r.path === '/teams')!;
  const card = teams.body.attachments[0];
  assert.equal(teams.body.type, 'message');
  assert.equal(card.contentType, 'application/vnd.microsoft.card.adaptive');
  assert.equal(card.content.type, 'AdaptiveCard');
  assert.equal(card.content.body[0].text, 'FIRING [CRITICAL] gpu_hot');
  assert.ok(card.content.body[2].facts.some((f: { title: string; value: string }) => f.title === 'Value' && f.value === '90'));
});
