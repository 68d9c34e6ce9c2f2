import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { MetricEvent } from '../../../core/events.ts';
import { locate, runCommand } from '../../../plugins/inputs/nvidia_smi/index.ts';
import { flag, meaningful, parseValue, toMetrics } from '../../../plugins/inputs/nvidia_smi/parse.ts';
import { parseXml, XmlError } from '../../../plugins/inputs/nvidia_smi/xml.ts';
import { memoryOutput, startAgent, tempDir, waitFor } from '../../helpers.ts';

const TESTDATA = path.resolve('plugins/inputs/nvidia_smi/testdata');
const fixture = (name: string) => path.join(TESTDATA, name);
const FIXTURES = ['h100-v13-idle.xml', 'h100-v13-load.xml', 't4-v11-driver470.xml', 'p100-v10-driver418.xml', 'dual-a100-v12-mig.xml', 'rtx-v13-unavailable.xml'];

function convert(file: string, opts: { processes?: boolean; migDevices?: boolean } = {}): MetricEvent[] {
  return toMetrics(parseXml(readFileSync(fixture(file), 'utf8')), { timestamp: 1n, processes: opts.processes ?? true, migDevices: opts.migDevices ?? true });
}

/** The gauge event of GPU `index` (the one without the info field), merged with its counter event. */
function gpu(events: MetricEvent[], index: number): Record<string, number> {
  const mine = events.filter((e) => e.name === 'nvidia_smi' && e.tags.index === String(index) && !('info' in e.fields));
  return Object.assign({}, ...mine.map((e) => e.fields));
}

// ---------------------------------------------------------------- XML reader

test('the XML reader decodes entities, CDATA and attributes and skips the prolog, DOCTYPE and comments', () => {
  const doc = parseXml(
    '\ufeff<?xml version="1.0" ?>\n<!DOCTYPE log SYSTEM "x.dtd" [ <!ENTITY a "b"> ]>\n<!-- hi -->\n' +
      "<log a='1' b=\"x &amp; y\"><p>fish &amp; chips &lt;3 &#65;&#x42; &bogus; &constructor; AT&T</p><!-- c --><e/><d><![CDATA[<raw> &amp;]]></d><p>  two  </p></log>",
  );
  assert.equal(doc.name, 'log');
  assert.deepEqual(doc.attributes, { a: '1', b: 'x & y' });
  assert.deepEqual(
    doc.children.map((c) => [c.name, c.text]),
    [
      ['p', 'fish & chips <3 AB &bogus; &constructor; AT&T'],
      ['e', ''],
      ['d', '<raw> &amp;'],
      ['p', 'two'],
    ],
  );
});

for (const [what, xml, message] of [
  ['output cut short', '<a><b>1</b><c>', /<c> is not closed/],
  ['output cut short inside a tag', '<a><b>1</b><c', /cut short/],
  ['a mismatched end tag', '<a><b>1</c></a>', /<\/c> does not close <b>/],
  ['an end tag without a start', '<a></a></b>', /without a start tag/],
  ['two root elements', '<a/><b/>', /second root element/],
  ['text outside the root', 'hello <a/>', /text outside the root/],
  ['no element at all', '<?xml version="1.0"?>', /no root element/],
  ['an unterminated comment', '<a><!-- x</a>', /unterminated comment/],
] as const) {
  test(`the XML reader rejects ${what}`, () => {
    assert.throws(() => parseXml(xml), (err: unknown) => err instanceof XmlError && message.test(err.message));
  });
}

// ---------------------------------------------------------------- values

for (const [text, expected] of [
  ['81559 MiB', { value: 81559, unit: 'MiB' }],
  ['123.98 W', { value: 123.98, unit: 'W' }],
  ['7379430 us', { value: 7379430, unit: 'us' }],
  ['-8 C', { value: -8, unit: 'C' }],
  ['100 %', { value: 100, unit: '%' }],
  ['16x', { value: 16, unit: 'x' }],
  ['10214 KB/s', { value: 10214, unit: 'KB/s' }],
  ['2560 bank(s)', { value: 2560, unit: 'bank(s)' }],
  ['N/A', undefined],
  ['[N/A]', undefined],
  ['Requested functionality has been deprecated', undefined],
  ['[Not Supported]', undefined],
  ['[Unknown Error]', undefined],
  ['0x0000000000000004', undefined],
  ['', undefined],
] as const) {
  test(`a value of "${text}" reads as ${expected ? `${expected.value} ${expected.unit}` : 'missing'}`, () => {
    assert.deepEqual(parseValue(text), expected);
  });
}

test('states read as 0/1 and every "not available" spelling as missing', () => {
  assert.deepEqual(['Active', 'Not Active', 'Enabled', 'Disabled', 'Yes', 'No', 'N/A', '[N/A]'].map(flag), [1, 0, 1, 0, 1, 0, undefined, undefined]);
  for (const t of ['N/A', '[N/A]', 'None', '[Not Supported]', 'Unknown Error', '[Insufficient Permissions]', 'Requested functionality has been deprecated', '  ']) {
    assert.equal(meaningful(t), undefined, t);
  }
  assert.equal(meaningful(' GPU-1 '), 'GPU-1');
});

// ---------------------------------------------------------------- fixtures

const MiB = 1024 * 1024;

test('every fixture parses, and each GPU that reports them has the values the REST API reads', () => {
  const apiFields = ['utilization_gpu_percent', 'utilization_memory_percent', 'memory_used_bytes', 'memory_total_bytes', 'temperature_gpu_celsius', 'power_draw_watts', 'clocks_graphics_hertz', 'clocks_memory_hertz'];
  const complete: Array<[string, number]> = [
    ['h100-v13-idle.xml', 0],
    ['h100-v13-load.xml', 0],
    ['t4-v11-driver470.xml', 0],
    ['p100-v10-driver418.xml', 0],
    ['dual-a100-v12-mig.xml', 1],
  ];
  for (const [file, index] of complete) {
    const fields = gpu(convert(file), index);
    for (const f of apiFields) assert.equal(typeof fields[f], 'number', `${file} GPU ${index}: ${f}`);
  }
  for (const file of FIXTURES) {
    for (const e of convert(file)) {
      for (const [k, v] of Object.entries(e.fields)) assert.ok(typeof v === 'number' && Number.isFinite(v), `${file}: ${e.name}.${k} = ${String(v)}`);
      assert.match(e.tags.index!, /^\d+$/);
      assert.ok(e.tags.uuid?.startsWith('GPU-'), `${file}: uuid tag`);
      assert.ok(e.tags.driver_version, `${file}: driver_version tag`);
    }
  }
});

test('the H100 idle capture: average and instant power, clocks in hertz, MiB in bytes, no processes', () => {
  const events = convert('h100-v13-idle.xml');
  const f = gpu(events, 0);
  assert.equal(f.utilization_gpu_percent, 0);
  assert.equal(f.memory_total_bytes, 81559 * MiB);
  assert.equal(f.memory_used_bytes, 0);
  assert.equal(f.memory_reserved_bytes, 480 * MiB);
  assert.equal(f.temperature_gpu_celsius, 36);
  assert.equal(f.temperature_memory_celsius, 37);
  assert.equal(f.power_draw_watts, 123.98);
  assert.equal(f.power_draw_average_watts, 123.98);
  assert.equal(f.power_draw_instant_watts, 124.65);
  assert.equal(f.power_limit_watts, 700);
  assert.equal(f.clocks_graphics_hertz, 1980e6);
  assert.equal(f.clocks_memory_hertz, 2619e6);
  assert.equal(f.clocks_event_reason_sw_power_cap, 0);
  assert.equal(f.pcie_link_gen_current, 5);
  assert.equal(f.pcie_link_width_current, 16);
  assert.equal(f.pstate, 0);
  assert.equal('fan_speed_percent' in f, false, 'fan speed is N/A on this board');
  assert.equal(events.filter((e) => e.name === 'nvidia_smi_process').length, 0);
  const tags = events[0]!.tags;
  assert.deepEqual(tags, { index: '0', uuid: 'GPU-6ce85e96-425a-4e9c-25db-c6ee03dbdda4', name: 'NVIDIA H100 80GB HBM3', pci_bus_id: '00000000:00:06.0', driver_version: '580.159.04' });
});

test('the H100 under load: power capping shows as a 0/1 reason and as a counter in seconds, and the process has its memory', () => {
  const events = convert('h100-v13-load.xml');
  const f = gpu(events, 0);
  assert.equal(f.utilization_gpu_percent, 100);
  assert.equal(f.utilization_memory_percent, 32);
  assert.equal(f.memory_used_bytes, 1011 * MiB);
  assert.equal(f.power_draw_watts, 698.42);
  assert.equal(f.clocks_graphics_hertz, 1380e6);
  assert.equal(f.clocks_event_reason_sw_power_cap, 1);
  const counters = events.find((e) => e.name === 'nvidia_smi' && e.type === 'counter')!;
  assert.equal(counters.fields.clocks_event_sw_power_cap_seconds_total, 7.37943);
  assert.equal(counters.fields.ecc_errors_volatile_uncorrectable_total, 0);
  for (const name of Object.keys(counters.fields)) assert.match(name, /_total$/);
  const procs = events.filter((e) => e.name === 'nvidia_smi_process');
  assert.equal(procs.length, 1);
  assert.equal(procs[0]!.tags.pid, '403');
  assert.equal(procs[0]!.tags.process_name, 'python3');
  assert.equal(procs[0]!.fields.used_memory_bytes, 1002 * MiB);
});

test('an old driver (DTD v11): clocks_throttle_reasons and power_readings/power_draw, no average or instant power', () => {
  const events = convert('t4-v11-driver470.xml');
  const f = gpu(events, 0);
  assert.equal(f.clocks_event_reason_gpu_idle, 1);
  assert.equal(f.clocks_event_reason_hw_slowdown, 0);
  assert.equal(f.power_draw_watts, 27.35);
  assert.equal(f.power_limit_watts, 70);
  assert.equal('power_draw_average_watts' in f, false);
  assert.equal('power_draw_instant_watts' in f, false);
  assert.equal('memory_reserved_bytes' in f, false);
  assert.equal('temperature_memory_celsius' in f, false);
  assert.equal(f.temperature_shutdown_threshold_celsius, 96);
  assert.equal(f.pstate, 8);
  assert.equal(f.pcie_link_gen_current, 1);
  assert.equal(f.pcie_rx_bytes_per_second, 12 * 1024);
  assert.equal(f.ecc_errors_volatile_correctable_total, 7);
  assert.equal(f.ecc_errors_volatile_uncorrectable_total, 1);
  assert.equal(f.ecc_errors_aggregate_dram_correctable_total, 40);
  assert.equal(f.pcie_replay_total, 3);
  const procs = events.filter((e) => e.name === 'nvidia_smi_process').map((e) => [e.tags.pid, e.tags.type, e.fields.used_memory_bytes]);
  assert.deepEqual(procs, [
    ['2211', 'G', 4 * MiB],
    ['30817', 'C', 2343 * MiB],
  ]);
});

test('an older driver (DTD v10): ECC per memory location under single_bit/double_bit', () => {
  const events = convert('p100-v10-driver418.xml');
  const f = gpu(events, 0);
  assert.equal(f.ecc_errors_volatile_correctable_total, 5);
  assert.equal(f.ecc_errors_volatile_uncorrectable_total, 0);
  assert.equal(f.ecc_errors_volatile_device_memory_correctable_total, 4);
  assert.equal(f.ecc_errors_aggregate_device_memory_uncorrectable_total, 2);
  assert.equal('ecc_errors_volatile_l1_cache_correctable_total' in f, false, 'N/A locations are left out');
  assert.equal(f.clocks_event_reason_hw_slowdown, 1);
  assert.equal('clocks_event_reason_hw_thermal_slowdown' in f, false);
  assert.equal(f.retired_pages_double_bit, 2);
  assert.equal(f.retired_pages_pending, 1);
  assert.equal(f.temperature_slowdown_threshold_celsius, 82);
  const proc = events.find((e) => e.name === 'nvidia_smi_process')!;
  assert.equal(proc.tags.process_name, 'train & eval');
});

test('several GPUs, one in MIG mode: per-GPU series by index, MIG devices and processes per GPU instance', () => {
  const events = convert('dual-a100-v12-mig.xml');
  const g0 = gpu(events, 0);
  const g1 = gpu(events, 1);
  assert.equal('utilization_gpu_percent' in g0, false, 'utilization is N/A on a GPU in MIG mode');
  assert.equal(g0.mig_enabled, 1);
  assert.equal(g0.power_draw_watts, 88.14);
  assert.equal(g1.mig_enabled, 0);
  assert.equal(g1.utilization_gpu_percent, 93);
  assert.equal(g1.memory_used_bytes, 31020 * MiB);
  assert.equal(g1.pcie_tx_bytes_per_second, 512 * 1024);
  assert.equal('pcie_tx_bytes_per_second' in g0, false);
  assert.notEqual(events.find((e) => e.tags.index === '0')!.tags.uuid, events.find((e) => e.tags.index === '1')!.tags.uuid);

  const migs = events.filter((e) => e.name === 'nvidia_smi_mig' && e.type === 'gauge');
  assert.deepEqual(
    migs.map((e) => [e.tags.index, e.tags.mig_index, e.tags.gpu_instance_id, e.fields.memory_used_bytes, e.fields.multiprocessor_count]),
    [
      ['0', '0', '1', 9813 * MiB, 42],
      ['0', '1', '2', 13 * MiB, 42],
    ],
  );
  const migEcc = events.filter((e) => e.name === 'nvidia_smi_mig' && e.type === 'counter').map((e) => e.fields.ecc_errors_volatile_sram_uncorrectable_total);
  assert.deepEqual(migEcc, [0, 1]);

  const procs = events.filter((e) => e.name === 'nvidia_smi_process');
  assert.deepEqual(
    procs.map((e) => [e.tags.index, e.tags.pid, e.tags.gpu_instance_id, e.tags.compute_instance_id]),
    [
      ['0', '51234', '1', '0'],
      ['0', '51377', '2', '0'],
      ['1', '60001', undefined, undefined],
    ],
  );
  const info = events.filter((e) => 'info' in e.fields).map((e) => e.tags.mig_mode);
  assert.deepEqual(info, ['Enabled', 'Disabled']);
});

test('values that are N/A, [N/A], [Not Supported], [Unknown Error] or deprecated are left out, never 0', () => {
  const events = convert('rtx-v13-unavailable.xml');
  const f = gpu(events, 0);
  assert.deepEqual(f, { memory_total_bytes: 24564 * MiB, temperature_gpu_celsius: 52, clocks_graphics_hertz: 2520e6, clocks_event_reason_hw_slowdown: 0 });
  assert.equal(events.filter((e) => e.type === 'counter').length, 0, 'no ECC or clock event counters');
  assert.equal(events.filter((e) => e.name === 'nvidia_smi_process').length, 0, 'a process without a memory value is left out');
});

test('processes: false and mig_devices: false leave those series out', () => {
  const events = convert('dual-a100-v12-mig.xml', { processes: false, migDevices: false });
  assert.equal(events.filter((e) => e.name === 'nvidia_smi_process' || e.name === 'nvidia_smi_mig').length, 0);
  assert.ok(events.some((e) => e.name === 'nvidia_smi'));
});

test('a document that is not nvidia-smi output is refused', () => {
  assert.throws(() => toMetrics(parseXml('<html><body/></html>'), { timestamp: 1n, processes: true, migDevices: true }), /not nvidia-smi XML/);
});

// ---------------------------------------------------------------- the binary

/** Writes an executable shell script. */
function script(file: string, body: string): string {
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

/** A fake nvidia-smi that prints the fixture named in `<dir>/which`, and insists on `-q -x`. */
function fakeNvidiaSmi(dir: string, first: string): { bin: string; show(name: string): void } {
  const which = path.join(dir, 'which');
  writeFileSync(which, fixture(first));
  const bin = script(path.join(dir, 'nvidia-smi'), `[ "$1 $2" = "-q -x" ] || { echo "unexpected arguments: $*"; exit 2; }\nexec cat "$(cat '${which}')"`);
  return { bin, show: (name) => writeFileSync(which, fixture(name)) };
}

const agentYaml = (input: string, extra = '') => `
agent:
  self_metrics: false
  interval: 50ms
  shutdown_timeout: 2s
  data_dir: \${OPSHUB_TEST_DATA}
inputs:
  - type: nvidia_smi
${input}
outputs:
  - type: memory
    flush_interval: 20ms
${extra}`;

const metrics = (events: readonly unknown[]) => (events as MetricEvent[]).filter((e) => e.kind === 'metric' && e.name.startsWith('nvidia_smi'));
const logsOf = (logs: Array<{ scope: string; level: string; message: string }>) => logs.filter((l) => l.scope === 'inputs.nvidia_smi');

test('end to end: a real agent runs a fake nvidia-smi every interval and delivers its metrics, following what it prints', async () => {
  const tmp = tempDir();
  const fake = fakeNvidiaSmi(tmp.dir, 'h100-v13-idle.xml');
  const mem = memoryOutput();
  const t = await startAgent(agentYaml(`    bin_path: ${fake.bin}\n    tags: { rack: r7 }`), { plugins: [mem.definition] });
  try {
    await waitFor(() => metrics(mem.events).some((e) => e.fields.utilization_gpu_percent === 0), 10_000, 'idle metrics');
    const idle = metrics(mem.events).find((e) => 'utilization_gpu_percent' in e.fields)!;
    assert.equal(idle.tags.rack, 'r7', 'the instance tags are added');
    assert.equal(idle.tags.uuid, 'GPU-6ce85e96-425a-4e9c-25db-c6ee03dbdda4');
    assert.equal(idle.fields.power_draw_watts, 123.98);
    assert.ok(idle.timestamp > BigInt(Date.now() - 60_000) * 1_000_000n, 'timestamped at the gather');

    fake.show('h100-v13-load.xml');
    await waitFor(() => metrics(mem.events).some((e) => e.fields.utilization_gpu_percent === 100), 10_000, 'load metrics');
    await waitFor(() => metrics(mem.events).some((e) => e.name === 'nvidia_smi_process' && e.tags.pid === '403'), 10_000, 'the process');
    assert.deepEqual(logsOf(t.logs).filter((l) => l.level === 'error'), [], 'no errors');
  } finally {
    await t.stop();
    tmp.cleanup();
  }
});

test('on_missing: fail stops the agent at start-up with one clear reason', async () => {
  await assert.rejects(
    startAgent(agentYaml('    bin_path: /nonexistent/opshub/nvidia-smi\n    on_missing: fail'), { plugins: [memoryOutput().definition] }),
    (err: Error) => /inputs\.nvidia_smi: cannot start: nvidia-smi not found \(bin_path: "\/nonexistent\/opshub\/nvidia-smi"\)/.test(err.message) && /on_missing/.test(err.message),
  );
});

test('on_missing: disable (the default) logs one warning, turns the input off, and the agent keeps running', async () => {
  const mem = memoryOutput();
  const t = await startAgent(agentYaml('    bin_path: nvidia-smi-opshub-test-absent'), { plugins: [mem.definition] });
  try {
    const running = t.agent.pipeline.inputs.get('nvidia_smi')!;
    await waitFor(() => running.stats.gathers >= 10, 10_000, 'ten gathers');
    const said = logsOf(t.logs);
    assert.equal(said.length, 1, JSON.stringify(said));
    assert.equal(said[0]!.level, 'warn');
    assert.match(said[0]!.message, /nvidia-smi not found \(bin_path: "nvidia-smi-opshub-test-absent", looked up in PATH\).*disabled/);
    assert.equal(running.stats.errors, 0);
    assert.equal(metrics(mem.events).length, 0);
    const health = await fetch(`${t.url}/health`);
    assert.equal(health.status, 200);
  } finally {
    await t.stop();
  }
});

test('on_missing: retry looks again every interval without logging each time, and starts reporting once nvidia-smi appears', async () => {
  const tmp = tempDir();
  const bin = path.join(tmp.dir, 'nvidia-smi');
  const mem = memoryOutput();
  const t = await startAgent(agentYaml(`    bin_path: ${bin}\n    on_missing: retry`), { plugins: [mem.definition] });
  try {
    const running = t.agent.pipeline.inputs.get('nvidia_smi')!;
    await waitFor(() => running.stats.gathers >= 10, 10_000, 'ten gathers');
    assert.equal(logsOf(t.logs).length, 1);
    assert.match(logsOf(t.logs)[0]!.message, /not found.*looking for it again every interval, quietly/);

    fakeNvidiaSmi(tmp.dir, 't4-v11-driver470.xml');
    await waitFor(() => metrics(mem.events).some((e) => e.tags.name === 'Tesla T4'), 10_000, 'metrics after the binary appeared');
    assert.ok(logsOf(t.logs).some((l) => l.level === 'info' && l.message === `found nvidia-smi at ${bin}`));

    // It disappears again: one more warning, then quiet.
    rmSync(bin);
    const before = running.stats.gathers;
    await waitFor(() => running.stats.gathers >= before + 10, 10_000, 'ten more gathers');
    assert.equal(logsOf(t.logs).filter((l) => l.level === 'warn').length, 2);
    assert.equal(running.stats.errors, 0);
  } finally {
    await t.stop();
    tmp.cleanup();
  }
});

test('a hung nvidia-smi is killed after timeout with everything it started, logged once, and the agent keeps gathering', async () => {
  const tmp = tempDir();
  const pidFile = path.join(tmp.dir, 'sleep.pid');
  const bin = script(path.join(tmp.dir, 'nvidia-smi'), `sleep 30 &\necho $! > '${pidFile}'\nwait`);
  const mem = memoryOutput();
  const t = await startAgent(agentYaml(`    bin_path: ${bin}\n    timeout: 300ms`), { plugins: [mem.definition] });
  try {
    const running = t.agent.pipeline.inputs.get('nvidia_smi')!;
    await waitFor(() => running.stats.errors >= 3, 15_000, 'three timed-out gathers');
    const errors = logsOf(t.logs).filter((l) => l.level === 'error');
    assert.equal(errors.length, 1, 'logged once, not per interval');
    assert.match(errors[0]!.message, /gather failed.*nvidia-smi did not answer within 300 ms \(killed\)/);
    const sleeper = Number(readFileSync(pidFile, 'utf8'));
    await waitFor(() => !alive(sleeper), 5000, 'the child of the hung script to be killed');
  } finally {
    await t.stop();
    tmp.cleanup();
  }
});

/** Whether a process runs (a killed one that nobody reaped yet, a zombie, counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

test('a failing nvidia-smi (driver not loaded) is reported once with what it said, and recovery is noticed', async () => {
  const tmp = tempDir();
  const bin = script(
    path.join(tmp.dir, 'nvidia-smi'),
    `echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."\nexit 9`,
  );
  const mem = memoryOutput();
  const t = await startAgent(agentYaml(`    bin_path: ${bin}`), { plugins: [mem.definition] });
  try {
    const running = t.agent.pipeline.inputs.get('nvidia_smi')!;
    await waitFor(() => running.stats.errors >= 3, 10_000, 'three failed gathers');
    const errors = logsOf(t.logs).filter((l) => l.level === 'error');
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /nvidia-smi exited with code 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver/);

    fakeNvidiaSmi(tmp.dir, 'h100-v13-idle.xml');
    await waitFor(() => metrics(mem.events).length > 0, 10_000, 'metrics after recovery');
    await waitFor(() => logsOf(t.logs).some((l) => l.message === 'gather recovered'), 5000, 'the recovery line');
  } finally {
    await t.stop();
    tmp.cleanup();
  }
});

test('output cut short is a parse error, logged once, and nothing half-parsed is delivered', async () => {
  const tmp = tempDir();
  const cut = path.join(tmp.dir, 'cut.xml');
  writeFileSync(cut, readFileSync(fixture('h100-v13-load.xml'), 'utf8').slice(0, 9000));
  const bin = script(path.join(tmp.dir, 'nvidia-smi'), `cat '${cut}'`);
  const mem = memoryOutput();
  const t = await startAgent(agentYaml(`    bin_path: ${bin}`), { plugins: [mem.definition] });
  try {
    const running = t.agent.pipeline.inputs.get('nvidia_smi')!;
    await waitFor(() => running.stats.errors >= 3, 10_000, 'three failed gathers');
    const errors = logsOf(t.logs).filter((l) => l.level === 'error');
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /cannot parse the output of .*nvidia-smi -q -x: .*output cut short/);
    assert.equal(metrics(mem.events).length, 0);
  } finally {
    await t.stop();
    tmp.cleanup();
  }
});

test('locate finds a name in PATH and refuses a file that is not executable', () => {
  const tmp = tempDir();
  try {
    const bin = script(path.join(tmp.dir, 'nvidia-smi'), 'exit 0');
    assert.equal(locate('nvidia-smi', `/nonexistent:${tmp.dir}`), bin);
    assert.equal(locate('nvidia-smi', '/nonexistent'), undefined);
    assert.equal(locate(bin), bin);
    chmodSync(bin, 0o644);
    assert.equal(locate(bin), undefined);
    assert.equal(locate(tmp.dir), undefined, 'a directory is not an executable');
  } finally {
    tmp.cleanup();
  }
});

test('runCommand returns stdout and kills the command when told to stop', async () => {
  const tmp = tempDir();
  try {
    const echo = script(path.join(tmp.dir, 'echo'), 'printf "%s" "$*"');
    assert.equal(await runCommand(echo, ['-q', '-x'], 5000), '-q -x');
    const slow = script(path.join(tmp.dir, 'slow'), 'exec sleep 30');
    const ac = new AbortController();
    const started = Date.now();
    const run = runCommand(slow, [], 60_000, ac.signal);
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(run, /stopped/);
    assert.ok(Date.now() - started < 10_000);
  } finally {
    tmp.cleanup();
  }
});

test('nvidia-smi removed while it runs counts as missing (looked for again, quietly), not as a failed gather', async () => {
  const tmp = tempDir();
  // Fails after deleting itself, as a run caught by a driver upgrade would.
  const bin = script(path.join(tmp.dir, 'nvidia-smi'), `rm -f "$0"\nexit 3`);
  const mem = memoryOutput();
  const t = await startAgent(agentYaml(`    bin_path: ${bin}\n    on_missing: retry`), { plugins: [mem.definition] });
  try {
    const running = t.agent.pipeline.inputs.get('nvidia_smi')!;
    await waitFor(() => running.stats.gathers >= 5, 10_000, 'five gathers');
    assert.equal(running.stats.errors, 0);
    assert.equal(logsOf(t.logs).filter((l) => l.level === 'warn').length, 1);
    assert.match(logsOf(t.logs).find((l) => l.level === 'warn')!.message, /not found.*looking for it again/);
  } finally {
    await t.stop();
    tmp.cleanup();
  }
});
