// The alerting rule engine with a controllable clock: `for` durations,
// per-series alerts, log-rate windows, absent data, flapping, resolution,
// restored alerts, and rule validation.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeLog, makeMetric, msToNs, type Event, type Level } from '../../../core/events.ts';
import { Engine, type Transition } from '../../../plugins/outputs/alerting/engine.ts';
import { compileRule, DEFAULT_RULES, renderTemplate, RuleError, ruleValidator } from '../../../plugins/outputs/alerting/rules.ts';

const T0 = Date.parse('2026-03-11T07:00:00Z');
const S = 1000;
const M = 60_000;

function setup(rules: Array<Record<string, unknown>>, opts: { start?: number } = {}) {
  const clock = { t: opts.start ?? T0 };
  const engine = new Engine({ now: () => clock.t, hostname: 'gpu-01', historyMs: 7 * 24 * 3600 * S, historyLimit: 1000, customResolveMs: 3600 * S });
  const validate = ruleValidator();
  engine.setRules(rules.map((r) => compileRule(validate(r))));
  const log: Transition[] = [];
  return {
    clock,
    engine,
    /** Advances the clock, feeds events stamped now, evaluates; returns the transitions as "event rule series-tag". */
    step(ms: number, events: Event[] = []): string[] {
      clock.t += ms;
      engine.ingest(events.map((e) => ({ ...e, timestamp: msToNs(clock.t) })));
      const t = engine.evaluate();
      log.push(...t);
      return t.map((x) => `${x.event} ${x.alert.rule}${Object.keys(x.alert.tags).length ? ` ${Object.values(x.alert.tags).join('/')}` : ''}`);
    },
    log,
  };
}

const gpuTemp = (index: string, celsius: number) => makeMetric('nvidia_smi', { temperature_gpu_celsius: celsius }, { index, name: 'NVIDIA H100' });
const errLine = (container: string, level: Level = 'error', attributes: Record<string, unknown> = {}) =>
  makeLog({ source: container, level, message: `${level} line`, labels: { container }, attributes });

const HOT = { name: 'gpu_hot', type: 'threshold', metric: 'nvidia_smi_temperature_gpu_celsius', condition: '>', threshold: 85, for: '1m', severity: 'critical', message: 'GPU {{index}} temperature is {{value}}°C' };

test('a threshold alert is pending until `for` has elapsed, then fires, once per series (per GPU)', () => {
  const s = setup([HOT]);
  assert.deepEqual(s.step(10 * S, [gpuTemp('0', 87), gpuTemp('1', 60)]), ['pending gpu_hot 0/NVIDIA H100']);
  assert.deepEqual(s.step(30 * S, [gpuTemp('0', 88), gpuTemp('1', 61)]), []);
  assert.deepEqual(s.step(30 * S, [gpuTemp('0', 89.456), gpuTemp('1', 62)]), ['firing gpu_hot 0/NVIDIA H100']);
  const [alert] = s.engine.activeAlerts();
  assert.equal(alert!.message, 'GPU 0 temperature is 89.46°C');
  assert.equal(alert!.started_at, T0 + 70 * S);
  assert.equal(alert!.active_at, T0 + 10 * S);
  assert.deepEqual(alert!.labels, { index: '0', name: 'NVIDIA H100', alertname: 'gpu_hot', severity: 'critical', host: 'gpu-01' });
  assert.equal(alert!.threshold, 85);
  assert.deepEqual(s.step(15 * S, [gpuTemp('0', 90), gpuTemp('1', 95)]), ['pending gpu_hot 1/NVIDIA H100'], 'the second GPU has its own alert');
  assert.equal(s.engine.activeAlerts().length, 2);
});

test('an alert resolves when the value goes back, with its resolution time; a pending one that clears is forgotten', () => {
  const s = setup([HOT]);
  s.step(S, [gpuTemp('0', 90), gpuTemp('1', 90)]);
  s.step(M, [gpuTemp('0', 90), gpuTemp('1', 70)]);
  assert.deepEqual(s.log.map((t) => `${t.event} ${t.alert.tags.index}`), ['pending 0', 'pending 1', 'firing 0']);
  assert.equal(s.engine.activeAlerts().length, 1, 'GPU 1 cleared while pending: no alert left');
  assert.deepEqual(s.step(15 * S, [gpuTemp('0', 80)]), ['resolved gpu_hot 0/NVIDIA H100']);
  const [resolved] = s.engine.resolvedAlerts();
  assert.equal(resolved!.state, 'resolved');
  assert.equal(resolved!.resolved_at, T0 + M + 16 * S);
  assert.equal(resolved!.value, 80);
});

test('flapping around the threshold gives one alert: keep_firing_for holds it through short clears', () => {
  const s = setup([{ ...HOT, for: '0s', keep_firing_for: '2m' }]);
  const events: string[] = [];
  // 86, 84, 86, 84, … every 20 s for 5 minutes.
  for (let i = 0; i < 15; i++) events.push(...s.step(20 * S, [gpuTemp('0', i % 2 === 0 ? 86 : 84)]));
  assert.deepEqual(events, ['firing gpu_hot 0/NVIDIA H100']);
  // Then it stays below: resolved 2 minutes after it last cleared, not before.
  assert.deepEqual(s.step(20 * S, [gpuTemp('0', 80)]), []);
  assert.deepEqual(s.step(80 * S, [gpuTemp('0', 80)]), []);
  assert.deepEqual(s.step(40 * S, [gpuTemp('0', 80)]), ['resolved gpu_hot 0/NVIDIA H100']);
});

test('without keep_firing_for the same flapping notifies every crossing', () => {
  const s = setup([{ ...HOT, for: '0s' }]);
  const events: string[] = [];
  for (let i = 0; i < 6; i++) events.push(...s.step(20 * S, [gpuTemp('0', i % 2 === 0 ? 86 : 84)]));
  assert.equal(events.filter((e) => e.startsWith('firing')).length, 3);
});

test('a series that stops reporting goes stale and its alert resolves', () => {
  const s = setup([{ ...HOT, for: '0s', stale_after: '1m' }]);
  assert.deepEqual(s.step(S, [gpuTemp('0', 90)]), ['firing gpu_hot 0/NVIDIA H100']);
  assert.deepEqual(s.step(59 * S), []);
  assert.deepEqual(s.step(2 * S), ['resolved gpu_hot 0/NVIDIA H100']);
});

test('tag matchers pick series: exact value, not, regex', () => {
  const s = setup([
    { name: 'cpu', type: 'threshold', metric: 'system_cpu_usage_percent', tags: { cpu: 'total' }, threshold: 80 },
    { name: 'disk', type: 'threshold', metric: 'system_filesystem_used_percent', tags: { mount: { regex: '^/(data|)$' }, fstype: { not: 'tmpfs' } }, threshold: 90 },
  ]);
  const events = [
    makeMetric('system_cpu', { usage_percent: 95 }, { cpu: 'total' }),
    makeMetric('system_cpu', { usage_percent: 99 }, { cpu: '3' }),
    makeMetric('system_filesystem', { used_percent: 95 }, { mount: '/', fstype: 'ext4' }),
    makeMetric('system_filesystem', { used_percent: 95 }, { mount: '/data', fstype: 'tmpfs' }),
    makeMetric('system_filesystem', { used_percent: 95 }, { mount: '/boot', fstype: 'ext4' }),
  ];
  assert.deepEqual(s.step(S, events).sort(), ['firing cpu total', 'firing disk //ext4']);
});

test('aggregate increase over a window catches a container restarting (counter resets counted from zero)', () => {
  const restarts = DEFAULT_RULES.find((r) => r.name === 'container_restarting')!;
  const s = setup([restarts]);
  const status = (n: number) => makeMetric('docker_container_status', { restart_count: n, status: 'running' }, { container_name: 'ollama', container_image: 'ollama/ollama' });
  assert.deepEqual(s.step(S, [status(3)]), []);
  assert.deepEqual(s.step(10 * S, [status(3)]), []);
  assert.deepEqual(s.step(10 * S, [status(4)]), ['firing container_restarting ollama/ollama/ollama']);
  assert.equal(s.engine.activeAlerts()[0]!.message, 'Container ollama restarted 1 times in the last 15 minutes');
  for (let i = 0; i < 15; i++) s.step(M, [status(4)]);
  assert.equal(s.log.at(-1)!.event, 'resolved', 'no restart in the last 15 minutes');
});

const ERRORS_PER_WINDOW = { name: 'errors', type: 'log_rate', match: { levels: ['error', 'critical'] }, window: '1m', condition: '>', threshold: 2, message: '{{container}}: {{value}} errors' };

test('log_rate counts matching lines per container within a sliding window', () => {
  const s = setup([ERRORS_PER_WINDOW]);
  assert.deepEqual(s.step(S, [errLine('open-webui'), errLine('open-webui'), errLine('ollama'), errLine('open-webui', 'info')]), []);
  assert.deepEqual(s.step(10 * S, [errLine('open-webui', 'critical'), errLine('ollama', 'warning')]), ['firing errors open-webui']);
  assert.equal(s.engine.activeAlerts()[0]!.message, 'open-webui: 3 errors');
  assert.equal(s.engine.activeAlerts()[0]!.container_name, 'open-webui');
  // A minute later the first lines have left the window.
  assert.deepEqual(s.step(55 * S), ['resolved errors open-webui']);
});

test('log lines are counted at their own time: lines older than the window do not count', () => {
  const s = setup([ERRORS_PER_WINDOW]);
  s.clock.t += M * 10;
  const old = [errLine('a'), errLine('a'), errLine('a')].map((e) => ({ ...e, timestamp: msToNs(s.clock.t - 2 * M) }));
  s.engine.ingest(old);
  assert.deepEqual(s.engine.evaluate(), []);
});

test('log_rate share: % of a container\'s lines that match, once min_events lines are in the window', () => {
  const share = DEFAULT_RULES.find((r) => r.name === 'container_error_share')!;
  const s = setup([share]);
  const lines = (container: string, errors: number, total: number) => [
    ...Array.from({ length: errors }, () => errLine(container)),
    ...Array.from({ length: total - errors }, () => errLine(container, 'info')),
  ];
  assert.deepEqual(s.step(S, [...lines('tiny', 3, 5), ...lines('quiet', 1, 30), ...lines('noisy', 6, 30)]), ['firing container_error_share noisy']);
  const a = s.engine.activeAlerts()[0]!;
  assert.equal(a.value, 20);
  assert.equal(a.message, '20% of the log lines of noisy are errors (last 5 minutes)');
  assert.equal(a.severity, 'critical');
});

test('log_rate quantile: p95 of duration_ms of Ollama / Open WebUI request lines', () => {
  const p95 = DEFAULT_RULES.find((r) => r.name === 'request_latency_p95')!;
  const s = setup([p95]);
  const req = (container: string, ms: number | string) => errLine(container, 'info', { duration_ms: ms, http_status: 200 });
  const fast = Array.from({ length: 20 }, (_, i) => req('ollama', 100 + i));
  const slow = [...Array.from({ length: 18 }, () => req('open-webui', '300')), req('open-webui', 5000), req('open-webui', 6000)];
  const others = Array.from({ length: 20 }, () => req('nginx', 9000));
  assert.deepEqual(s.step(S, [...fast, ...slow, ...others, errLine('ollama', 'info')]), ['firing request_latency_p95 open-webui']);
  assert.ok(Math.abs(s.engine.activeAlerts()[0]!.value! - 5050) < 1e-6);
});

test('absent: a container that stops reporting fires after `for`, and resolves when it is back', () => {
  const down = DEFAULT_RULES.find((r) => r.name === 'container_down')!;
  const s = setup([down]);
  const up = (name: string) => makeMetric('docker_container_status', { uptime_seconds: 100, status: 'running' }, { container_name: name, container_image: 'x' });
  s.step(S, [up('ollama'), up('open-webui')]);
  for (let i = 0; i < 3; i++) assert.deepEqual(s.step(30 * S, [up('open-webui')]), []);
  assert.deepEqual(s.step(29 * S, [up('open-webui')]), []);
  assert.deepEqual(s.step(S, [up('open-webui')]), ['firing container_down ollama']);
  const a = s.engine.activeAlerts()[0]!;
  assert.equal(a.message, 'Container ollama is not running (no stats for 2m)');
  assert.equal(a.value, 120);
  assert.equal(a.threshold, 120);
  assert.deepEqual(s.step(10 * S, [up('ollama'), up('open-webui')]), ['resolved container_down ollama']);
});

test('absent without group_by fires when nothing at all arrives, counted from start', () => {
  const s = setup([{ name: 'no_gpu_data', type: 'absent', metric: 'nvidia_smi_*', for: '1m', severity: 'warning' }]);
  assert.deepEqual(s.step(59 * S), []);
  assert.deepEqual(s.step(2 * S), ['firing no_gpu_data']);
  assert.deepEqual(s.step(S, [gpuTemp('0', 50)]), ['resolved no_gpu_data']);
});

test('absent on logs: a container that stops logging', () => {
  const s = setup([{ name: 'silent', type: 'absent', containers: '^worker', group_by: ['container'], for: '5m' }]);
  s.step(S, [errLine('worker-1', 'info'), errLine('worker-2', 'info'), errLine('web', 'info')]);
  for (let i = 0; i < 5; i++) s.step(M, [errLine('worker-2', 'info')]);
  assert.deepEqual(s.log.map((t) => `${t.event} ${t.alert.tags.container}`), ['firing worker-1']);
});

test('a forgotten absent series resolves its alert', () => {
  const s = setup([{ name: 'gone', type: 'absent', metric: 'nvidia_smi_temperature_gpu_celsius', group_by: ['index'], for: '1m', forget_after: '10m' }]);
  s.step(S, [gpuTemp('0', 40)]);
  assert.deepEqual(s.step(2 * M), ['firing gone 0']);
  assert.deepEqual(s.step(9 * M), ['resolved gone 0']);
});

test('acknowledging records who and why; the alert still resolves by itself', () => {
  const s = setup([{ ...HOT, for: '0s' }]);
  s.step(S, [gpuTemp('0', 90)]);
  const id = s.engine.activeAlerts()[0]!.id;
  const t = s.engine.acknowledge(id, 'alice', 'fan replaced');
  assert.equal(t!.alert.acknowledged, true);
  assert.equal(t!.alert.acknowledged_by, 'alice');
  assert.equal(t!.alert.acknowledged_at, s.clock.t);
  assert.equal(s.engine.acknowledge('nope', 'x', null), undefined);
  assert.deepEqual(s.step(S, [gpuTemp('0', 70)]), ['resolved gpu_hot 0/NVIDIA H100']);
});

test('custom alerts fire at once and resolve after their time', () => {
  const s = setup([]);
  const t = s.engine.addCustom({ alert_type: 'deploy', severity: 'info', message: 'deploying', container_name: 'ollama', resolve_after_ms: M });
  assert.equal(t.alert.state, 'firing');
  assert.equal(t.alert.labels.alertname, 'deploy');
  assert.deepEqual(s.step(59 * S), []);
  assert.deepEqual(s.step(S).length, 1);
  assert.equal(s.engine.get(t.alert.id)!.state, 'resolved');
});

test('alerts of a rule that is removed resolve at the next evaluation', () => {
  const s = setup([{ ...HOT, for: '0s' }]);
  s.step(S, [gpuTemp('0', 90)]);
  s.engine.setRules([]);
  assert.deepEqual(s.step(S), ['resolved gpu_hot 0/NVIDIA H100']);
});

test('restored firing alerts do not resolve before their rule has fresh data (no re-notification after a restart)', () => {
  const first = setup([{ ...HOT, for: '0s' }, ERRORS_PER_WINDOW]);
  first.step(S, [gpuTemp('0', 90), errLine('a'), errLine('a'), errLine('a')]);
  const saved = structuredClone(first.engine.all());
  assert.equal(saved.length, 2);

  const second = setup([{ ...HOT, for: '0s', stale_after: '5m' }, ERRORS_PER_WINDOW], { start: first.clock.t + 30 * S });
  second.engine.restore(saved);
  // No data yet: both stay firing (the GPU series until it is seen or stale, the log window until a window has passed).
  assert.deepEqual(second.step(15 * S), []);
  assert.deepEqual(second.step(15 * S, [gpuTemp('0', 91), errLine('a'), errLine('a'), errLine('a')]), [], 'still firing: the same alerts, nothing new');
  assert.equal(second.engine.activeAlerts().length, 2);
  assert.deepEqual(second.engine.activeAlerts().map((a) => a.id).sort(), saved.map((a) => a.id).sort());
  assert.deepEqual(second.step(15 * S, [gpuTemp('0', 70)]), ['resolved gpu_hot 0/NVIDIA H100'], 'fresh data that clears resolves it');
  assert.deepEqual(second.step(M), ['resolved errors a']);
});

test('the default rules validate and compile', () => {
  const validate = ruleValidator();
  for (const r of DEFAULT_RULES) compileRule(validate(r));
});

test('templates fill tags and values; unknown keys show as ?', () => {
  assert.equal(renderTemplate('GPU {{ gpu_index }} at {{value}}°C, {{nope}}', { gpu_index: '1', value: 86.456 }), 'GPU 1 at 86.46°C, ?');
});

const INVALID: Array<[string, Record<string, unknown>, RegExp]> = [
  ['a threshold rule without a threshold', { name: 'x', type: 'threshold', metric: 'm' }, /threshold is required/],
  ['an unknown condition', { name: 'x', type: 'threshold', metric: 'm', threshold: 1, condition: 'bigger' }, /condition must be one of/],
  ['a condition named like an Object.prototype member', { name: 'x', type: 'threshold', metric: 'm', threshold: 1, condition: 'constructor' }, /condition must be one of/],
  ['an unknown key', { name: 'x', type: 'threshold', metric: 'm', threshold: 1, colour: 'red' }, /colour is not a known key/],
  ['a bad duration', { name: 'x', type: 'threshold', metric: 'm', threshold: 1, for: 'soon' }, /for must be a duration/],
  ['a bad regular expression', { name: 'x', type: 'log_rate', threshold: 1, containers: '(' }, /containers must be a valid regular expression/],
  ['a quantile without attribute', { name: 'x', type: 'log_rate', threshold: 1, measure: 'quantile' }, /attribute/],
  ['an unknown type', { name: 'x', type: 'magic' }, /type must be one of/],
  ['a name with a space', { name: 'a b', type: 'absent' }, /name must match pattern/],
  ['a threshold given as text', { name: 'x', type: 'threshold', metric: 'm', threshold: '85' }, /threshold must be number/],
];

for (const [what, rule, reason] of INVALID) {
  test(`rule validation refuses ${what}`, () => {
    const validate = ruleValidator();
    assert.throws(() => validate(rule), (err: unknown) => err instanceof RuleError && err.reasons.some((r) => reason.test(r)));
  });
}

test('a bad rule in the pipeline file is reported with its line, column and key path', async () => {
  const { loadConfig, ConfigError } = await import('../../../core/config.ts');
  const { builtinPlugins } = await import('../../../core/builtins.ts');
  const text = [
    'outputs:',
    '  - type: alerting',
    '    rules:',
    '      - name: gpu_hot',
    '        type: threshold',
    '        metric: nvidia_smi_temperature_gpu_celsius',
    '        threshold: high',
    '        for: soon',
    '      - { name: silent, type: absent, colour: red }',
  ].join('\n');
  await assert.rejects(loadConfig('p.yaml', { builtins: builtinPlugins, env: {}, text }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    const issues = err.issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`);
    assert.ok(issues.includes('7:20 outputs[0].rules[0].threshold: must be number'), issues.join('\n'));
    assert.ok(issues.includes('8:14 outputs[0].rules[0].for: must be a duration like "10s"'), issues.join('\n'));
    assert.ok(issues.some((i) => /^9:\d+ outputs\[0\]\.rules\[1\]\.colour: unknown key$/.test(i)), issues.join('\n'));
    return true;
  });
});

test('absent series saved before a restart: a container that never comes back is reported `for` after the start', () => {
  const rule = { name: 'down', type: 'absent', metric: 'docker_container_status_uptime_seconds', group_by: ['container_name'], for: '2m' };
  const first = setup([rule]);
  first.step(S, [makeMetric('docker_container_status', { uptime_seconds: 5 }, { container_name: 'ollama' })]);
  const saved = first.engine.exportSeen();
  const second = setup([rule], { start: first.clock.t + 60 * M });
  second.engine.importSeen(saved);
  assert.deepEqual(second.step(119 * S), [], 'not before `for` has passed since the start');
  assert.deepEqual(second.step(S), ['firing down ollama']);
});

test("the README's sample pipeline (testdata/readme-sample.yaml) is valid", async () => {
  const { loadConfig } = await import('../../../core/config.ts');
  const { builtinPlugins } = await import('../../../core/builtins.ts');
  const { readFileSync } = await import('node:fs');
  const text = readFileSync(new URL('../../../plugins/outputs/alerting/testdata/readme-sample.yaml', import.meta.url), 'utf8');
  const cfg = await loadConfig('readme-sample.yaml', { builtins: builtinPlugins, env: { SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T/B/X', SMTP_PASSWORD: 'x' }, text });
  const options = cfg.outputs.find((o) => o.type === 'alerting')!.options as { rules: unknown[]; notifiers: unknown[] };
  assert.equal(options.rules.length, 3);
  assert.equal(options.notifiers.length, 3);
  const validate = ruleValidator();
  for (const r of options.rules) compileRule(validate(r));
});
