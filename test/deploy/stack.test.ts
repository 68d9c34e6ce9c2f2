// The compose stack in deploy/: the compose file as Debian's docker-compose reads
// it, Prometheus' configuration and alert rules (promtool check + promtool test),
// Alertmanager's (amtool), Loki's rules, Grafana's provisioning — and every
// PromQL query of the dashboards evaluated by a real Prometheus that scraped a
// real agent running the image's pipeline (deploy/opshub.yaml) with Docker
// containers and a fake nvidia-smi feeding it: each must return data.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { DOCKER_CLI, TEST_IMAGE, requireDocker } from '../docker.ts';
import { startAgent, tempDir, waitFor, type TestAgent } from '../helpers.ts';
import { freePort } from './image_support.ts';

const run = promisify(execFile);
const DEPLOY = path.resolve('deploy');
const HOST = 'stack-test';
const tag = `${process.pid}`;
const containers = [`opshub-stack-app-${tag}`, `opshub-stack-web-${tag}`];

interface Target {
  dashboard: string;
  panel: string;
  expr: string;
  datasource: string;
}

function dashboards(): Array<{ file: string; json: any }> {
  const dir = path.join(DEPLOY, 'grafana/dashboards');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ file: f, json: JSON.parse(readFileSync(path.join(dir, f), 'utf8')) }));
}

function targets(): Target[] {
  const out: Target[] = [];
  for (const { file, json } of dashboards()) {
    for (const panel of json.panels ?? []) {
      for (const t of panel.targets ?? []) {
        out.push({ dashboard: file, panel: panel.title, expr: t.expr, datasource: (t.datasource ?? panel.datasource)?.type });
      }
    }
  }
  return out;
}

/** Grafana's variables and macros replaced with concrete values, as Grafana would before sending the query. */
function concrete(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '30s')
    .replaceAll('$__interval', '15s')
    .replaceAll('$__range', '5m')
    .replaceAll('$host', HOST)
    .replaceAll('$container', `${containers[0]}|${containers[1]}`)
    .replaceAll('$gpu', '0');
}

// ------------------------------------------------------------ static checks

test('docker-compose (Debian\'s compose CLI) reads the stack, alone and with the GPU override; every file it mounts exists', async () => {
  for (const files of [['docker-compose.yml'], ['docker-compose.yml', 'docker-compose.gpu.yml']]) {
    const { stdout } = await run('docker-compose', [...files.flatMap((f) => ['-f', f]), 'config'], { cwd: DEPLOY, env: { ...process.env, DOCKER_GID: '999' } });
    const cfg = parse(stdout) as { services: Record<string, any>; volumes: Record<string, unknown> };
    assert.deepEqual(Object.keys(cfg.services).sort(), ['alertmanager', 'grafana', 'loki', 'opshub', 'prometheus']);
    for (const [name, svc] of Object.entries(cfg.services)) {
      for (const v of svc.volumes ?? []) {
        const source = typeof v === 'string' ? v.split(':')[0] : v.source;
        if (source?.startsWith('/') && source !== '/var/run/docker.sock') assert.ok(existsSync(source), `${name} mounts ${source}, which exists`);
      }
    }
    const opshub = cfg.services.opshub;
    assert.ok(opshub.volumes.some((v: any) => (typeof v === 'string' ? v : `${v.source}:${v.target}:${v.read_only ? 'ro' : ''}`).startsWith('/var/run/docker.sock:/var/run/docker.sock:ro')), 'docker.sock mounted read-only');
    assert.deepEqual(opshub.group_add, ['999']);
    if (files.length === 2) assert.equal(opshub.deploy.resources.reservations.devices[0].driver, 'nvidia');
  }
});

test('promtool accepts the Prometheus configuration and the alert rules, and the rules pass their unit tests', async () => {
  const config = await run('promtool', ['check', 'config', path.join(DEPLOY, 'prometheus/prometheus.yml')]);
  assert.match(config.stdout + config.stderr, /SUCCESS/);
  const rules = readdirSync(path.join(DEPLOY, 'prometheus/rules')).filter((f) => f.endsWith('.rules.yml')).map((f) => path.join(DEPLOY, 'prometheus/rules', f));
  const checked = await run('promtool', ['check', 'rules', ...rules]);
  assert.match(checked.stdout, /SUCCESS: \d+ rules found/);
  const tests = readdirSync(path.join(DEPLOY, 'prometheus/rules')).filter((f) => f.endsWith('.test.yml')).map((f) => path.join(DEPLOY, 'prometheus/rules', f));
  assert.ok(tests.length > 0);
  const tested = await run('promtool', ['test', 'rules', ...tests]);
  assert.match(tested.stdout, /SUCCESS/);
  // Every default alert of the agent that metrics can express has a rule.
  const names = rules.flatMap((f) => (parse(readFileSync(f, 'utf8')) as any).groups.flatMap((g: any) => g.rules.map((r: any) => r.alert)));
  for (const alert of ['GpuTemperatureHigh', 'HostCpuHigh', 'HostMemoryHigh', 'HostDiskFreeLow', 'ContainerExited', 'ContainerRestarting']) assert.ok(names.includes(alert), alert);
});

test('amtool accepts the Alertmanager configuration; the Loki rules are well-formed alerts on the agent\'s streams', async () => {
  const am = await run('amtool', ['check-config', path.join(DEPLOY, 'alertmanager/alertmanager.yml')]);
  assert.match(am.stdout, /SUCCESS/);
  const loki = parse(readFileSync(path.join(DEPLOY, 'loki/rules/fake/opshub.rules.yml'), 'utf8')) as any;
  const rules = loki.groups.flatMap((g: any) => g.rules);
  assert.deepEqual(rules.map((r: any) => r.alert).sort(), ['ContainerErrorLines', 'ContainerErrorShareHigh', 'RequestLatencyHigh']);
  for (const r of rules) {
    assert.match(r.expr, /\{job="opshub"/, `${r.alert} reads the agent's streams`);
    assert.ok(['warning', 'critical'].includes(r.labels.severity));
    assert.equal(r.expr.split('(').length, r.expr.split(')').length, `${r.alert}: balanced parentheses`);
  }
});

test('Grafana provisioning: datasources with the uids the dashboards use; dashboards are valid, uniquely named and cover the five views', () => {
  const ds = parse(readFileSync(path.join(DEPLOY, 'grafana/provisioning/datasources/opshub.yml'), 'utf8')) as any;
  const uids = new Set(ds.datasources.map((d: any) => d.uid));
  const provider = parse(readFileSync(path.join(DEPLOY, 'grafana/provisioning/dashboards/opshub.yml'), 'utf8')) as any;
  assert.equal(provider.providers[0].options.path, '/var/lib/grafana/dashboards/opshub');
  const all = dashboards();
  assert.deepEqual(all.map((d) => d.json.uid).sort(), ['opshub-agent', 'opshub-gpus', 'opshub-host-containers', 'opshub-logs', 'opshub-users-models']);
  for (const { file, json } of all) {
    assert.equal(`${json.uid}.json`, file);
    const ids = new Set<number>();
    for (const panel of json.panels) {
      assert.ok(!ids.has(panel.id), `${file}: panel ids are unique`);
      ids.add(panel.id);
      assert.ok(panel.gridPos && panel.gridPos.w > 0 && panel.gridPos.x + panel.gridPos.w <= 24, `${file}: ${panel.title} fits the grid`);
      if (panel.type === 'row') continue;
      assert.ok(uids.has(panel.datasource.uid), `${file}: ${panel.title} uses a provisioned datasource`);
      assert.ok(panel.targets.length > 0 && panel.targets.every((t: any) => typeof t.expr === 'string' && t.expr.length > 0), `${file}: ${panel.title} has queries`);
    }
    for (const v of json.templating.list) assert.ok(uids.has(v.datasource.uid), `${file}: variable ${v.name}`);
  }
  const logs = targets().filter((t) => t.datasource === 'loki');
  assert.ok(logs.some((t) => t.dashboard === 'opshub-logs.json' && /sum by \(level\)/.test(t.expr)), 'logs by level');
  assert.ok(logs.some((t) => t.dashboard === 'opshub-users-models.json' && /by \(model\)/.test(t.expr)), 'usage by model');
});

// ------------------------------------------------------------ every PromQL query against real data

let agent: TestAgent | undefined;
let prometheus: ChildProcess | undefined;
let promLog = '';
let promUrl = '';
const tmp = tempDir('opshub-stack-');

async function promQuery(expr: string): Promise<{ status: string; error?: string; result: unknown[] }> {
  const res = await fetch(`${promUrl}/api/v1/query?${new URLSearchParams({ query: expr })}`);
  const body = (await res.json()) as { status: string; error?: string; data?: { result: unknown[] } };
  return { status: body.status, error: body.error, result: body.data?.result ?? [] };
}

before(async () => {
  await requireDocker();
  for (const name of containers) await run(DOCKER_CLI, ['rm', '-f', name]).catch(() => undefined);

  // A fake nvidia-smi printing a real H100 capture under load.
  const fixture = path.resolve('plugins/inputs/nvidia_smi/testdata/h100-v13-load.xml');
  const fake = path.join(tmp.dir, 'nvidia-smi');
  writeFileSync(fake, `#!/bin/sh\n[ "$1 $2" = "-q -x" ] || exit 2\nexec cat '${fixture}'\n`);
  chmodSync(fake, 0o755);

  // The image's pipeline, as shipped, with the fake nvidia-smi and faster intervals.
  const pipeline = parse(readFileSync(path.join(DEPLOY, 'opshub.yaml'), 'utf8'));
  for (const input of pipeline.inputs) {
    if (input.type === 'nvidia_smi') input.bin_path = fake;
    if (input.type === 'docker_logs') input.start_from = 'beginning';
  }
  for (const output of pipeline.outputs) output.flush_interval = '200ms';
  agent = await startAgent(stringify(pipeline), {
    env: {
      ...process.env,
      OPS_DATA_DIR: path.join(tmp.dir, 'data'),
      OPS_HOSTNAME: HOST,
      OPS_INTERVAL: '1s',
      OPS_INCLUDE_REGEX: `^opshub-stack-(app|web)-${tag}$`,
    },
  });

  // Containers for docker_stats and docker_logs: one with a health check; both log, one with errors.
  await run(DOCKER_CLI, ['run', '-d', '--name', containers[0]!, '--label', 'opshub-deploy-test=1', '--network', 'none', TEST_IMAGE,
    'sh', '-c', 'i=0; while true; do i=$((i+1)); echo "request $i done in 12 ms"; [ $((i % 3)) -eq 0 ] && echo "ERROR: upstream failed ($i)" >&2; sleep 0.5; done']);
  await run(DOCKER_CLI, ['run', '-d', '--name', containers[1]!, '--label', 'opshub-deploy-test=1', '--network', 'none',
    '--health-cmd', 'true', '--health-interval', '1s', '--health-start-period', '1s', '--memory', '64m', TEST_IMAGE,
    'sh', '-c', 'while true; do echo "user=alice model=llama3.1:8b chat ok"; sleep 1; done']);
  // A session event through the webhook, as Open WebUI's filter sends it.
  const posted = await fetch(`${agent.url}/users/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'alice', action: 'login', model: 'llama3.1:8b' }) });
  assert.ok(posted.status < 300, `webhook answered ${posted.status}`);

  // Prometheus with the stack's configuration, pointed at the agent, with the stack's rules.
  const cfg = parse(readFileSync(path.join(DEPLOY, 'prometheus/prometheus.yml'), 'utf8'));
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  cfg.global = { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' };
  delete cfg.alerting;
  cfg.rule_files = cfg.rule_files.map((f: string) => path.join(DEPLOY, 'prometheus', f));
  for (const job of cfg.scrape_configs) {
    if (job.job_name === 'opshub') job.static_configs = [{ targets: [new URL(agent.url).host] }];
    if (job.job_name === 'prometheus') job.static_configs = [{ targets: [`127.0.0.1:${port}`] }];
  }
  const file = path.join(tmp.dir, 'prometheus.yml');
  writeFileSync(file, stringify(cfg));
  prometheus = spawn('prometheus', [`--config.file=${file}`, `--storage.tsdb.path=${path.join(tmp.dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  prometheus.stdout!.on('data', (d) => (promLog = (promLog + d).slice(-4000)));
  prometheus.stderr!.on('data', (d) => (promLog = (promLog + d).slice(-4000)));

  // Enough scrapes for rate() over 30 s windows, and the slower inputs' series.
  await waitFor(async () => {
    const ready = await promQuery(`count(docker_container_health_healthy{host="${HOST}"}) and count(nvidia_smi_utilization_gpu_percent{host="${HOST}"}) and count(docker_container_cpu_usage_percent{host="${HOST}"} ) == 2`).catch(() => undefined);
    return !!ready && ready.result.length > 0;
  }, 90_000, `Prometheus to have scraped the agent (${promLog})`);
  await new Promise((r) => setTimeout(r, 6000));
});

after(async () => {
  prometheus?.kill('SIGKILL');
  await agent?.stop();
  for (const name of containers) await run(DOCKER_CLI, ['rm', '-f', name]).catch(() => undefined);
  tmp.cleanup();
});

test('every PromQL query of the dashboards returns data from a real Prometheus that scraped the agent', async () => {
  const promql = targets().filter((t) => t.datasource === 'prometheus');
  assert.ok(promql.length >= 60, `${promql.length} PromQL queries`);
  const empty: string[] = [];
  for (const t of promql) {
    const expr = concrete(t.expr);
    const r = await promQuery(expr);
    assert.equal(r.status, 'success', `${t.dashboard} / ${t.panel}: ${expr}: ${r.error}`);
    if (r.result.length === 0) empty.push(`${t.dashboard} / ${t.panel}: ${expr}`);
  }
  assert.deepEqual(empty, [], 'queries without data');
});

test('every dashboard variable query finds values in the scraped data', async () => {
  for (const { file, json } of dashboards()) {
    for (const v of json.templating.list) {
      if (v.datasource.type !== 'prometheus') continue;
      const m = /^label_values\((.*), (\w+)\)$/.exec(v.definition);
      assert.ok(m, `${file}: ${v.name} is label_values(selector, label)`);
      const r = await promQuery(concrete(m[1]!));
      const values = new Set(r.result.map((s: any) => s.metric[m[2]!]).filter(Boolean));
      assert.ok(values.size > 0, `${file}: $${v.name} has values (${v.definition})`);
    }
  }
});

test('the stack\'s alert rules evaluate without error on the agent\'s series', async () => {
  await waitFor(async () => {
    const res = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as any;
    const rules = res.data.groups.flatMap((g: any) => g.rules);
    return rules.length > 0 && rules.every((r: any) => r.lastEvaluation && !r.lastEvaluation.startsWith('0001'));
  }, 30_000, 'every rule evaluated once');
  const res = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as any;
  for (const rule of res.data.groups.flatMap((g: any) => g.rules)) assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError}`);
  // The series each rule reads exist (a renamed metric would leave a rule silently never firing).
  for (const selector of [
    `system_cpu_usage_percent{cpu="total", host="${HOST}"}`,
    `system_memory_used_percent{host="${HOST}"}`,
    `system_filesystem_used_percent{host="${HOST}"}`,
    `nvidia_smi_temperature_gpu_celsius{host="${HOST}"}`,
    `docker_container_status_uptime_seconds{host="${HOST}"}`,
    `docker_container_status_restart_count{host="${HOST}"}`,
    `docker_container_health_failing_streak{host="${HOST}"}`,
    'up{job="opshub"}',
    `opshub_output_events_dropped_total{host="${HOST}"}`,
  ]) {
    assert.ok((await promQuery(selector)).result.length > 0, selector);
  }
});
