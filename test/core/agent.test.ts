import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CheckpointFile } from '../../core/checkpoint.ts';
import type { PluginDefinition, ServiceInput } from '../../core/plugin.ts';
import { memoryOutput, startAgent, tempDir, waitFor } from '../helpers.ts';

/** A service input that emits `count` numbered lines when told to, with positions, and checkpoints on delivery. */
function checkpointingInput() {
  const control = { emit: (_n: number) => undefined as void, delivered: [] as number[], dataDir: '' };
  const definition: PluginDefinition = {
    kind: 'service_input',
    type: 'numbered',
    description: 'Test input: numbered lines with positions, checkpointed on delivery.',
    schema: { type: 'object', additionalProperties: false, properties: {} },
    create(_config, ctx): ServiceInput {
      const file = new CheckpointFile<number>(ctx.dataDir);
      control.dataDir = ctx.dataDir;
      let next = (file.get('seq') ?? -1) + 1;
      return {
        async start(acc) {
          control.emit = (n) => {
            const first = next;
            const events = [];
            const positions = [];
            for (let i = 0; i < n; i++, next++) {
              events.push({ kind: 'log' as const, timestamp: BigInt(Date.now()) * 1_000_000n, source: 'numbered', level: 'info' as const, message: `line ${next}`, labels: {}, attributes: {} });
              positions.push({ input: ctx.id, key: 'seq', value: next, order: String(next).padStart(10, '0') });
            }
            const last = next - 1;
            acc.emitTracked(events, {
              positions,
              onDelivered: () => {
                control.delivered.push(first, last);
                file.set('seq', last);
              },
            });
          };
        },
        async stop() {},
        async close() {
          await file.flush();
        },
      };
    },
  };
  return { definition, control };
}

const pipelineYaml = (extra = '') => `
agent:
  self_metrics: false
  shutdown_timeout: 500ms
  data_dir: \${OPSHUB_TEST_DATA}
inputs:
  - type: numbered
outputs:
  - type: memory
    flush_interval: 20ms
    retry_initial_backoff: 10ms
    retry_max_backoff: 50ms
  - type: flaky
    flush_interval: 20ms
    retry_initial_backoff: 10ms
    retry_max_backoff: 50ms
${extra}`;

test('an input advances its checkpoint only after every output has written its events', async () => {
  const input = checkpointingInput();
  const good = memoryOutput();
  const flaky = memoryOutput('flaky');
  let down = true;
  flaky.state.fail = () => (down ? new Error('peer down') : undefined);
  const t = await startAgent(pipelineYaml(), { plugins: [input.definition, good.definition, flaky.definition] });
  try {
    input.control.emit(5);
    await waitFor(() => good.events.length === 5, 5000, 'the healthy output');
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(input.control.delivered, [], 'one output still retrying: no acknowledgement');
    down = false;
    await waitFor(() => input.control.delivered.length === 2, 5000, 'acknowledgement');
    assert.deepEqual(input.control.delivered, [0, 4]);
    await waitFor(() => {
      try {
        return JSON.parse(readFileSync(path.join(input.control.dataDir, 'checkpoints.json'), 'utf8')).seq === 4;
      } catch {
        return false;
      }
    }, 5000, 'checkpoint on disk');
    assert.deepEqual(good.state.checkpoints.flat().map((c) => c.order), ['0000000004']);
  } finally {
    await t.stop();
  }
});

test('a failing output never blocks another output or the inputs', async () => {
  const input = checkpointingInput();
  const good = memoryOutput();
  const flaky = memoryOutput('flaky');
  flaky.state.fail = () => new Error('always down');
  const t = await startAgent(pipelineYaml(), { plugins: [input.definition, good.definition, flaky.definition] });
  try {
    for (let i = 0; i < 20; i++) input.control.emit(10);
    await waitFor(() => good.events.length === 200, 5000, 'all events at the healthy output');
    await waitFor(() => flaky.state.writes > 2, 5000, 'the failing output keeps retrying');
    const out = t.agent.pipeline.outputs.get('flaky')!;
    assert.ok(out.stats.write_errors >= 1);
  } finally {
    await t.stop();
  }
});

test('routing: an output limited by match gets only the events it asked for', async () => {
  const input = checkpointingInput();
  const all = memoryOutput();
  const onlyMetrics = memoryOutput('flaky');
  const t = await startAgent(
    pipelineYaml().replace('  - type: flaky\n', '  - type: flaky\n    match:\n      kinds: [metric]\n'),
    { plugins: [input.definition, all.definition, onlyMetrics.definition] },
  );
  try {
    input.control.emit(3);
    t.agent.emitSelfMetrics();
    await waitFor(() => all.events.length >= 3 && onlyMetrics.events.length > 0, 5000);
    assert.ok(onlyMetrics.events.every((e) => e.kind === 'metric'));
    assert.ok(onlyMetrics.events.some((e) => e.kind === 'metric' && e.name === 'opshub_output'));
  } finally {
    await t.stop();
  }
});

test('/health is public, every other route needs the bearer token when one is set', async () => {
  const t = await startAgent('agent:\n  http:\n    auth_token: s3cret\n');
  try {
    const health = await fetch(`${t.url}/health`);
    assert.equal(health.status, 200);
    const body = (await health.json()) as { status: string; timestamp: string };
    assert.equal(body.status, 'ok');
    assert.match(body.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    t.agent.http.route({ method: 'GET', path: '/private', handler: (_q, res) => void res.end('ok') });
    assert.equal((await fetch(`${t.url}/private`)).status, 401);
    assert.equal((await fetch(`${t.url}/private`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await fetch(`${t.url}/private`, { headers: { authorization: 'Bearer s3cret' } })).status, 200);
    assert.equal((await fetch(`${t.url}/nowhere`, { headers: { authorization: 'Bearer s3cret' } })).status, 404);
  } finally {
    await t.stop();
  }
});

test('the example custom plugin loads from agent.plugin_dir and runs', async () => {
  const out = memoryOutput();
  const examples = path.resolve('config/examples/plugins');
  const t = await startAgent(`agent:\n  interval: 50ms\n  self_metrics: false\n  plugin_dir: ${examples}\ninputs:\n  - type: heartbeat\n    message: alive\noutputs:\n  - type: memory\n    flush_interval: 20ms\n`, { plugins: [out.definition] });
  try {
    await waitFor(() => out.events.filter((e) => e.kind === 'log').length >= 2, 5000);
    const first = out.events.find((e) => e.kind === 'log');
    assert.equal(first?.kind === 'log' && first.message, 'alive #1');
  } finally {
    await t.stop();
  }
});

test('a broken custom plugin is a config error at agent.plugin_dir', async () => {
  const tmp = tempDir();
  try {
    writeFileSync(path.join(tmp.dir, 'bad.ts'), 'export default { kind: "input", type: "Bad-Name", schema: {} };\n');
    await assert.rejects(startAgent(`agent:\n  plugin_dir: ${tmp.dir}\n`), /opshub\.yaml:2:15: agent\.plugin_dir: custom plugin .*bad\.ts: type must be lower_snake_case; description is missing; create\(config, context\) is missing; schema must be a JSON Schema object with properties/);
  } finally {
    tmp.cleanup();
  }
});

test('reload: a valid change swaps the pipeline without losing buffered events; an invalid one keeps it', async () => {
  const input = checkpointingInput();
  const out = memoryOutput();
  const yaml = (batch: number) => `agent:\n  self_metrics: false\n  data_dir: \${OPSHUB_TEST_DATA}\ninputs:\n  - type: numbered\noutputs:\n  - type: memory\n    batch_size: ${batch}\n    flush_interval: 1h\n`;
  const t = await startAgent(yaml(1000), { plugins: [input.definition, out.definition], watch: true });
  try {
    input.control.emit(7); // buffered: batch not full, flush interval far away
    assert.equal(out.events.length, 0);
    writeFileSync(t.file, yaml(1000).replace('batch_size: 1000', 'batch_size: nope'));
    await waitFor(() => t.logs.some((l) => l.message.startsWith('reload rejected')), 10_000, 'rejected reload');
    assert.match(t.logs.find((l) => l.message.startsWith('reload rejected'))!.message, /opshub\.yaml:8:17: outputs\[0\]\.batch_size: must be integer/);
    assert.equal(t.agent.pipeline.outputs.get('memory')!.bufferSize, 7, 'the running pipeline stays');

    writeFileSync(t.file, yaml(5));
    await waitFor(() => t.logs.some((l) => l.message.startsWith('reloaded')), 10_000, 'reload');
    assert.ok(t.logs.some((l) => l.message.includes('handed 7 buffered events')));
    input.control.emit(3); // the unchanged input keeps running and feeds the new output
    await waitFor(() => out.events.length === 10, 5000, 'all 10 events');
    assert.deepEqual(out.events.map((e) => (e.kind === 'log' ? e.message : '')), Array.from({ length: 10 }, (_, i) => `line ${i}`));
  } finally {
    await t.stop();
  }
});

test('SIGTERM drains: the CLI flushes a partial batch and exits 0', async () => {
  const tmp = tempDir();
  try {
    const file = path.join(tmp.dir, 'pipe.yaml');
    writeFileSync(file, `agent:\n  interval: 20ms\n  self_metrics: false\n  http:\n    listen: 127.0.0.1:0\n  plugin_dir: ${path.resolve('config/examples/plugins')}\ninputs:\n  - type: heartbeat\noutputs:\n  - type: stdout\n    batch_size: 100000\n    flush_interval: 1h\n`);
    const child = spawn(process.execPath, ['bin/opshub.mjs', 'run', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    await waitFor(() => stderr.includes('started:'), 20_000, 'agent start');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(stdout, '', 'nothing flushed before shutdown');
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, stderr);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.length >= 2);
    const beats = lines.filter((l) => l.kind === 'log').map((l) => l.message);
    assert.deepEqual(beats, beats.map((_, i) => `heartbeat #${i + 1}`), 'every beat, in order, none lost');
  } finally {
    tmp.cleanup();
  }
});

test('two plugins mounting the same route is a start-up error, not a silent shadow', async () => {
  const t = await startAgent('agent:\n  self_metrics: false\n');
  try {
    const remove = t.agent.http.route({ method: 'GET', path: '/x', handler: (_q, res) => void res.end('1') });
    assert.throws(() => t.agent.http.route({ method: 'GET', path: '/x', handler: (_q, res) => void res.end('2') }), /already mounted/);
    remove();
    t.agent.http.route({ method: 'GET', path: '/x', handler: (_q, res) => void res.end('3') });
    assert.equal(await (await fetch(`${t.url}/x`)).text(), '3');
  } finally {
    await t.stop();
  }
});

test('reload of a changed output that mounts a route: the successor takes the route over', async () => {
  const yaml = (expiration: string) => `agent:\n  self_metrics: true\n  interval: 50ms\noutputs:\n  - type: prometheus\n    expiration: ${expiration}\n`;
  const t = await startAgent(yaml('60s'), { watch: true });
  try {
    await waitFor(async () => (await (await fetch(`${t.url}/metrics`)).text()).includes('opshub_output_events_written_total'), 10_000, 'first exposition');
    writeFileSync(t.file, yaml('2m'));
    await waitFor(() => t.logs.some((l) => l.message.startsWith('reloaded')), 10_000, 'reload');
    assert.deepEqual(t.logs.filter((l) => l.level === 'error').map((l) => l.message), []);
    await waitFor(async () => (await (await fetch(`${t.url}/metrics`)).text()).includes('opshub_output_events_written_total'), 10_000, 'exposition after reload');
  } finally {
    await t.stop();
  }
});

test('while the pipeline starts, unknown routes answer 503 with Retry-After, then 404', async () => {
  const { AgentHttpServer } = await import('../../core/http.ts');
  const { createLogger } = await import('../../core/log.ts');
  const http = new AgentHttpServer({ listen: '127.0.0.1:0', log: createLogger({ level: 'error' }), starting: true });
  await http.start();
  try {
    const early = await fetch(`${http.url()}/api/query/duckdb`, { method: 'POST' });
    assert.equal(early.status, 503);
    assert.equal(early.headers.get('retry-after'), '1');
    assert.equal((await fetch(`${http.url()}/health`)).status, 200);
    http.markStarted();
    assert.equal((await fetch(`${http.url()}/api/query/duckdb`, { method: 'POST' })).status, 404);
  } finally {
    await http.stop();
  }
});
