// The image's pipeline (deploy/opshub.yaml, and the stack's deploy/opshub-stack.yaml)
// takes OpsHub's environment variables: each maps onto a plugin option.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { builtinPlugins } from '../../core/builtins.ts';
import { ConfigError, loadConfig, type PipelineConfig } from '../../core/config.ts';
import { containerFilter } from '../../plugins/common/docker.ts';

const FILES = ['deploy/opshub.yaml', 'deploy/opshub-stack.yaml'];
const load = (file: string, env: NodeJS.ProcessEnv) => loadConfig(file, { builtins: builtinPlugins, env });
const opts = (cfg: PipelineConfig, section: 'inputs' | 'outputs', type: string) => cfg[section].find((p) => p.type === type)!.options as Record<string, any>;

for (const file of FILES) {
  test(`${file}: the defaults without any variable set`, async () => {
    const cfg = await load(file, {});
    assert.equal(cfg.agent.data_dir, '/data');
    assert.equal(cfg.agent.http.listen, '0.0.0.0:8089');
    assert.equal(cfg.hostname, os.hostname(), 'no OPS_HOSTNAME: the machine\'s name');
    for (const type of ['docker_logs', 'docker_stats']) {
      const o = opts(cfg, 'inputs', type);
      assert.equal(o.discover, true);
      const chosen = ['open-webui', 'ollama', 'opshub', 'stack-opshub-1', 'loki', 'stack-loki-1', 'promtail', 'grafana'].filter((n) =>
        containerFilter(o as never, undefined)(n, {}),
      );
      assert.deepEqual(chosen, ['open-webui', 'ollama', 'grafana'], `${type} skips the agent, Loki and Promtail`);
    }
    assert.equal(opts(cfg, 'inputs', 'docker_logs').include_stopped, false);
    assert.equal(opts(cfg, 'inputs', 'nvidia_smi').on_missing, 'disable');
    const duck = opts(cfg, 'outputs', 'duckdb');
    assert.deepEqual(duck.retention, { enabled: true, active_days: 7, archive_days: 30, purge_days: 90, interval: '1h' });
    assert.equal(duck.archive_mode, 'daily-tar');
    assert.equal(cfg.outputs.find((o) => o.type === 'duckdb')!.dataDir, '/data/duckdb');
    assert.equal(opts(cfg, 'outputs', 'prometheus').host_label, 'host');
  });

  test(`${file}: every OPS_* variable takes effect`, async () => {
    const cfg = await load(file, {
      OPS_DISCOVER: 'false',
      OPS_INCLUDE_REGEX: '^(open-webui|ollama)$',
      OPS_EXCLUDE_REGEX: 'ollama',
      OPS_INCLUDE_STOPPED: 'true',
      OPS_RETENTION_ACTIVE_DAYS: '3',
      OPS_RETENTION_ARCHIVE_DAYS: '14',
      OPS_RETENTION_PURGE_DAYS: '365',
      OPS_ARCHIVE_MODE: 'per-container',
      OPS_DATA_DIR: '/srv/opshub',
      OPS_HOSTNAME: 'gpu-07',
      OPSHUB_LISTEN: '127.0.0.1:9999',
      OPSHUB_AUTH_TOKEN: 's3cret',
    });
    for (const type of ['docker_logs', 'docker_stats']) {
      const o = opts(cfg, 'inputs', type);
      assert.equal(o.discover, false);
      assert.deepEqual(o.include, ['^(open-webui|ollama)$']);
      assert.deepEqual(o.exclude, ['ollama']);
      const chosen = ['open-webui', 'ollama', 'grafana'].filter((n) => containerFilter(o as never, undefined)(n, {}));
      assert.deepEqual(chosen, ['open-webui']);
    }
    assert.equal(opts(cfg, 'inputs', 'docker_logs').include_stopped, true);
    const duck = opts(cfg, 'outputs', 'duckdb');
    assert.equal(duck.retention.active_days, 3);
    assert.equal(duck.retention.archive_days, 14);
    assert.equal(duck.retention.purge_days, 365);
    assert.equal(duck.archive_mode, 'per-container');
    assert.equal(cfg.agent.data_dir, '/srv/opshub');
    assert.equal(cfg.outputs.find((o) => o.type === 'duckdb')!.dataDir, path.resolve('/srv/opshub/duckdb'));
    assert.equal(cfg.inputs.find((o) => o.type === 'docker_logs')!.dataDir, path.resolve('/srv/opshub/docker_logs'));
    assert.equal(cfg.hostname, 'gpu-07');
    assert.equal(cfg.agent.http.listen, '127.0.0.1:9999');
    assert.equal(cfg.agent.http.auth_token, 's3cret');
  });

  test(`${file}: OPS_DISCOVER=false without an include regex reads no container`, async () => {
    const cfg = await load(file, { OPS_DISCOVER: 'false' });
    const o = opts(cfg, 'inputs', 'docker_logs');
    assert.deepEqual(['open-webui', 'ollama'].filter((n) => containerFilter(o as never, undefined)(n, {})), []);
  });

  test(`${file}: a bad value is reported with its position`, async () => {
    const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
      [{ OPS_ARCHIVE_MODE: 'weekly' }, /archive_mode: must be equal to one of the allowed values/],
      [{ OPS_RETENTION_ACTIVE_DAYS: 'seven' }, /active_days: must be integer/],
      [{ OPS_INCLUDE_STOPPED: 'yes' }, /include_stopped: must be boolean/],
      [{ OPS_INCLUDE_REGEX: '(' }, /include\/?\[?0\]?: must be a valid regular expression|include\[0\]: must be a valid regular expression/],
    ];
    for (const [env, message] of cases) {
      await assert.rejects(load(file, env), (err: unknown) => err instanceof ConfigError && message.test(err.message), JSON.stringify(env));
    }
  });
}

test('opshub check validates the image pipeline with the variables of the environment', async () => {
  const run = promisify(execFile);
  const env = { ...process.env, OPS_ARCHIVE_MODE: 'per-container', OPS_RETENTION_PURGE_DAYS: '120' };
  const { stdout } = await run(process.execPath, ['bin/opshub.mjs', 'check', '-c', 'deploy/opshub.yaml'], { env });
  assert.match(stdout, /deploy\/opshub\.yaml: valid \(5 inputs, 3 processors, 2 outputs\)/);
  const bad = await run(process.execPath, ['bin/opshub.mjs', 'check', '-c', 'deploy/opshub.yaml'], { env: { ...env, OPS_RETENTION_PURGE_DAYS: 'x' } }).catch((e) => e);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /deploy\/opshub\.yaml:\d+:\d+: outputs\[0\]\.retention\.purge_days: must be integer/);
});

test('deploy/opshub-fleet.yaml: remote write and Loki URLs are required, and every series and stream carries the host', async () => {
  await assert.rejects(load('deploy/opshub-fleet.yaml', {}), (err: unknown) => err instanceof ConfigError && /OPS_REMOTE_WRITE_URL is required/.test(err.message) && /OPS_LOKI_URL is required/.test(err.message));
  const cfg = await load('deploy/opshub-fleet.yaml', { OPS_REMOTE_WRITE_URL: 'http://vminsert:8480/insert/0/prometheus/api/v1/write', OPS_LOKI_URL: 'http://loki:3100', OPS_HOSTNAME: 'gpu-07', OPS_CLUSTER: 'eu-1' });
  assert.equal(cfg.hostname, 'gpu-07');
  const rw = opts(cfg, 'outputs', 'prometheus_remote_write');
  assert.equal(rw.host_label, 'host');
  assert.deepEqual(rw.external_labels, { cluster: 'eu-1' });
  const loki = opts(cfg, 'outputs', 'loki');
  assert.ok(loki.labels.includes('host'));
  assert.deepEqual(loki.static_labels, { cluster: 'eu-1' });
  assert.equal(opts(cfg, 'outputs', 'prometheus').host_label, 'host');
});
