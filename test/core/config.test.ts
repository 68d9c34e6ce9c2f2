import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ConfigError, formatIssue, loadConfig } from '../../core/config.ts';
import { builtinPlugins } from '../../core/builtins.ts';
import { substituteEnv } from '../../core/env.ts';
import { parseDuration, parseSize } from '../../core/units.ts';

async function issuesOf(text: string, env: NodeJS.ProcessEnv = {}): Promise<string[]> {
  try {
    await loadConfig('pipe.yaml', { builtins: builtinPlugins, text, env });
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map(formatIssue);
    throw err;
  }
  return [];
}

const cases: Array<{ name: string; yaml: string; env?: NodeJS.ProcessEnv; expect: string[] }> = [
  {
    name: 'a value of the wrong type',
    yaml: 'agent:\n  batch_size: lots\n',
    expect: ['pipe.yaml:2:15: agent.batch_size: must be integer'],
  },
  {
    name: 'an unknown key, pointing at the key',
    yaml: 'outputs:\n  - type: stdout\n    colour: blue\n',
    expect: ['pipe.yaml:3:5: outputs[0].colour: unknown key'],
  },
  {
    name: 'an unknown plugin type, listing the known ones',
    yaml: 'outputs:\n  - type: kafka\n',
    expect: [`pipe.yaml:2:11: outputs[0].type: unknown output type "kafka"; known types: ${builtinPlugins.filter((p) => p.kind === 'output').map((p) => p.type).join(', ')}`],
  },
  {
    name: 'a bad duration',
    yaml: 'agent:\n  interval: 10 seconds\n',
    expect: ['pipe.yaml:2:13: agent.interval: must be a duration like "10s"'],
  },
  {
    name: 'a missing environment variable',
    yaml: 'agent:\n  data_dir: ${NOPE_DIR}\n',
    expect: ['pipe.yaml:2:13: agent.data_dir: environment variable NOPE_DIR is not set (write ${NOPE_DIR:-default} to give a default)'],
  },
  {
    name: 'a required variable with its message',
    yaml: 'agent:\n  http:\n    auth_token: "${TOKEN:?set TOKEN to the shared secret}"\n',
    expect: ['pipe.yaml:3:17: agent.http.auth_token: environment variable TOKEN is required: set TOKEN to the shared secret'],
  },
  {
    name: 'a YAML syntax error',
    yaml: 'agent:\n  interval: [1s\n',
    expect: ['pipe.yaml:3:1: YAML syntax: Flow sequence in block collection must be sufficiently indented and end with a ]'],
  },
  {
    name: 'a missing plugin type',
    yaml: 'outputs:\n  - format: json\n',
    expect: ['pipe.yaml:2:5: outputs[0].type: missing required key "type"'],
  },
  {
    name: 'an id used twice',
    yaml: 'outputs:\n  - type: stdout\n  - type: stdout\n    id: stdout\n',
    expect: ['pipe.yaml:4:9: outputs[1].id: id "stdout" is used twice in outputs; give each instance its own id'],
  },
  {
    name: 'an invalid match regex',
    yaml: 'outputs:\n  - type: stdout\n    match:\n      labels:\n        container: "(open"\n',
    expect: ['pipe.yaml:5:20: outputs[0].match.labels.container: invalid regular expression: Invalid regular expression: /(open/: Unterminated group'],
  },
  {
    name: "an input's window larger than an output's buffer",
    yaml: 'inputs:\n  - type: docker_logs\n    max_pending_lines: 5000\noutputs:\n  - type: stdout\n    buffer_limit: 4000\n  - type: stdout\n    id: big\n',
    expect: [
      'pipe.yaml:3:24: inputs[0].max_pending_lines: max_pending_lines (5000) is more than outputs.stdout (buffer_limit 4000) can buffer: a busy output would drop lines of a full window, which are never read again. Lower max_pending_lines or raise buffer_limit',
    ],
  },
  {
    name: "the default window against a small agent-wide buffer",
    yaml: 'agent:\n  buffer_limit: 500\ninputs:\n  - type: docker_logs\noutputs:\n  - type: stdout\n',
    expect: [
      'pipe.yaml:4:5: inputs[0].max_pending_lines: max_pending_lines (2000) is more than outputs.stdout (buffer_limit 500) can buffer: a busy output would drop lines of a full window, which are never read again. Lower max_pending_lines or raise buffer_limit',
    ],
  },
  {
    name: 'the windows of two inputs together',
    yaml: 'inputs:\n  - type: docker_logs\n    max_pending_lines: 3000\n  - type: docker_logs\n    max_pending_lines: 3000\noutputs:\n  - type: stdout\n    buffer_limit: 5000\n',
    expect: [
      'pipe.yaml:5:24: inputs[1].max_pending_lines: inputs.docker_logs.max_pending_lines (3000) + inputs.docker_logs_2.max_pending_lines (3000) = 6000 is more than outputs.stdout (buffer_limit 5000) can buffer: a busy output would drop lines of a full window, which are never read again. Lower max_pending_lines or raise buffer_limit',
    ],
  },
  {
    name: 'an output whose match leaves the windowed input out is not counted',
    yaml: 'inputs:\n  - type: docker_logs\n  - type: system\noutputs:\n  - type: stdout\n    buffer_limit: 100\n    match: { inputs: [system] }\n  - type: stdout\n    id: metrics\n    buffer_limit: 100\n    match: { kinds: [metric] }\n  - type: stdout\n    id: logs\n    buffer_limit: 100\n    match: { exclude_inputs: [system] }\n',
    expect: [
      'pipe.yaml:2:5: inputs[0].max_pending_lines: max_pending_lines (2000) is more than outputs.logs (buffer_limit 100) can buffer: a busy output would drop lines of a full window, which are never read again. Lower max_pending_lines or raise buffer_limit',
    ],
  },
];

for (const c of cases) {
  test(`config error: ${c.name} names file, line, column and key path`, async () => {
    assert.deepEqual(await issuesOf(c.yaml, c.env), c.expect);
  });
}

test('every problem in a file is reported at once', async () => {
  const issues = await issuesOf('agent:\n  interval: soon\n  batch_size: -1\noutputs:\n  - type: stdout\n    format: xml\n    extra: 1\n');
  assert.deepEqual(issues, [
    'pipe.yaml:2:13: agent.interval: must be a duration like "10s"',
    'pipe.yaml:3:15: agent.batch_size: must be >= 1',
    'pipe.yaml:6:13: outputs[0].format: must be equal to one of the allowed values: "json", "logfmt"',
    'pipe.yaml:7:5: outputs[0].extra: unknown key',
  ]);
});

test('environment substitution: defaults, required values, escapes and typed plain scalars', async () => {
  const env = { SIZE: '250', ON: 'false', HOST: 'box-1', EMPTY: '' };
  assert.equal(substituteEnv('${HOST}', env), 'box-1');
  assert.equal(substituteEnv('${MISSING:-fallback}', env), 'fallback');
  assert.equal(substituteEnv('${EMPTY:-fallback}', env), 'fallback');
  assert.equal(substituteEnv('a-$${HOST}-b', env), 'a-${HOST}-b');
  assert.throws(() => substituteEnv('${EMPTY:?needed}', env), /EMPTY is required: needed/);
  const cfg = await loadConfig('pipe.yaml', {
    builtins: builtinPlugins,
    env,
    text: 'agent:\n  batch_size: ${SIZE}\n  self_metrics: ${ON}\n  hostname: "${SIZE}"\n',
  });
  assert.equal(cfg.agent.batch_size, 250);
  assert.equal(cfg.agent.self_metrics, false);
  assert.equal(cfg.agent.hostname, '250', 'a quoted scalar stays a string');
});

test('defaults are applied and agent settings flow into each plugin unless overridden', async () => {
  const cfg = await loadConfig('/etc/opshub/pipe.yaml', {
    builtins: builtinPlugins,
    env: {},
    text: 'agent:\n  batch_size: 50\n  data_dir: /var/lib/opshub\noutputs:\n  - type: stdout\n  - type: stdout\n    batch_size: 7\n    flush_interval: 250ms\n',
  });
  assert.equal(cfg.agent.interval, '10s');
  assert.equal(cfg.agent.http.listen, '127.0.0.1:8089');
  const [a, b] = cfg.outputs;
  assert.equal(a!.id, 'stdout');
  assert.equal(b!.id, 'stdout_2');
  assert.equal(a!.batchSize, 50);
  assert.equal(b!.batchSize, 7);
  assert.equal(b!.flushIntervalMs, 250);
  assert.equal(a!.options.format, 'json');
  assert.equal(a!.dataDir, path.join('/var/lib/opshub', 'stdout'));
  assert.equal(a!.retryInitialMs, 500);
  assert.equal(a!.retryMaxMs, 300_000);
});

test('an unreadable file is a config error naming the file', async () => {
  await assert.rejects(loadConfig('/nonexistent/opshub.yaml', { builtins: builtinPlugins }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /^\/nonexistent\/opshub\.yaml:1:1: cannot read/);
    return true;
  });
});

test('durations and sizes parse as written in YAML', () => {
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('0'), 0);
  assert.throws(() => parseDuration('10'), /duration/);
  assert.equal(parseSize('16KiB'), 16384);
  assert.equal(parseSize('1MB'), 1_000_000);
  assert.equal(parseSize(42), 42);
});

test('the default pipeline file is valid', async () => {
  const cfg = await loadConfig('config/opshub.yaml', { builtins: builtinPlugins, env: {} });
  assert.ok(cfg.inputs.length >= 1);
});
