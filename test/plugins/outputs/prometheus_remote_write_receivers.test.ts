// outputs.prometheus_remote_write against two real receivers from Debian,
// started here on 127.0.0.1 with free ports and temp dirs: Prometheus with
// --web.enable-remote-write-receiver and VictoriaMetrics. Metric events go
// through a real agent; the samples are read back through each receiver's
// HTTP API, values and timestamps exact. Every receiver and agent is stopped
// and every temp dir removed in t.after, also when an assertion fails.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeMetric, type Event, type MetricType } from '../../../core/events.ts';
import type { RemoteWriteOutput } from '../../../plugins/outputs/prometheus_remote_write/index.ts';
import { startAgent, tempDir, waitFor } from '../../helpers.ts';
import { exportVictoria, freePort, metricsInput, queryPrometheus, remoteWriteYaml, startPrometheus, startVictoria, type Peer } from './remote_write_peers.ts';

// Recent, whole-ms timestamps: receivers reject samples far in the past.
const BASE = Math.floor(Date.now() / 1000) * 1000 - 10 * 60_000;

function metric(name: string, fields: Record<string, number | bigint | boolean | string>, tags: Record<string, string>, ms: number, type: MetricType = 'gauge'): Event {
  return makeMetric(name, fields, tags, { timestamp: BigInt(ms) * 1_000_000n + 123_456n, type });
}

/** Events with values that must come back bit-exact: fractions, large and negative numbers, booleans, bigints. */
function knownEvents(): Event[] {
  const events: Event[] = [];
  const values = [0, 1.5, -273.15, 0.1, 123456789.125, 1e-7];
  values.forEach((v, i) => {
    events.push(metric('rw_gpu', { power_watts: v, busy: i % 2 === 0, mem_bytes: BigInt(1_000_000_000 + i), model: 'H100' }, { gpu: String(i % 2), 'model.family': 'hopper' }, BASE + i * 1000 + i));
    events.push(metric('rw_http', { requests: i * 10 }, { code: '200' }, BASE + i * 1000, 'counter'));
  });
  return events;
}

type Got = Array<{ labels: Record<string, string>; samples: Array<[number, number]> }>;

/** name{sorted labels} → [[ms, value]...] */
function bySeries(got: Got): Record<string, Array<[number, number]>> {
  const out: Record<string, Array<[number, number]>> = {};
  for (const s of got) {
    const { __name__, ...rest } = s.labels;
    const key = `${__name__}{${Object.keys(rest).sort().map((k) => `${k}=${rest[k]}`).join(',')}}`;
    out[key] = s.samples;
  }
  return out;
}

function expectedKnown(extra: string): Record<string, Array<[number, number]>> {
  const values = [0, 1.5, -273.15, 0.1, 123456789.125, 1e-7];
  const out: Record<string, Array<[number, number]>> = {};
  const add = (name: string, labels: string, ms: number, v: number) => (out[`${name}{${labels.split(',').sort().join(',')}}`] ??= []).push([ms, v]);
  values.forEach((v, i) => {
    const gpu = `gpu=${i % 2},${extra},model_family=hopper`;
    const ms = BASE + i * 1000 + i;
    add('rw_gpu_power_watts', gpu, ms, v);
    add('rw_gpu_busy', gpu, ms, i % 2 === 0 ? 1 : 0);
    add('rw_gpu_mem_bytes', gpu, ms, 1_000_000_000 + i);
    add('rw_http_requests_total', `code=200,${extra}`, BASE + i * 1000, i * 10);
  });
  return out;
}

async function agentTo(url: string, extra = '') {
  const input = metricsInput();
  const agent = await startAgent(remoteWriteYaml(url, extra), { plugins: [input.definition] });
  const running = () => agent.agent.pipeline.outputs.get('prometheus_remote_write')!;
  return { agent, emit: input.emit, running, output: () => running().plugin as RemoteWriteOutput };
}

test('Prometheus (remote-write receiver) stores every sample with its exact value, timestamp and labels', async (t) => {
  const prom = await startPrometheus();
  t.after(() => prom.stop());
  const a = await agentTo(`${prom.url}/api/v1/write`, '    external_labels:\n      cluster: lab');
  t.after(() => a.agent.stop());
  a.emit(knownEvents());
  const want = expectedKnown('cluster=lab,host=test-host');
  let got: Record<string, Array<[number, number]>> = {};
  await waitFor(async () => {
    got = bySeries(await queryPrometheus(prom, '{__name__=~"rw_.*"}'));
    return Object.values(got).flat().length >= Object.values(want).flat().length;
  }, 20_000, 'the samples in Prometheus');
  assert.deepEqual(got, want);
  assert.equal(a.output().stats.string_fields_skipped, 6);
});

test('Prometheus answers 400 to an out-of-order sample: the batch is dropped and counted, later samples still arrive', async (t) => {
  const prom = await startPrometheus();
  t.after(() => prom.stop());
  const a = await agentTo(`${prom.url}/api/v1/write`, '    batch_size: 1');
  t.after(() => a.agent.stop());
  a.emit([metric('rw_ooo', { v: 1 }, {}, BASE + 5000)]);
  await waitFor(() => a.running().stats.written === 1, 15_000, 'the first sample written');
  a.emit([metric('rw_ooo', { v: 2 }, {}, BASE + 1000), metric('rw_ooo', { v: 3 }, {}, BASE + 2000)]); // older: out of order
  await waitFor(() => a.running().stats.dropped_permanent === 2, 15_000, 'the out-of-order batches dropped');
  a.emit([metric('rw_ooo', { v: 4 }, {}, BASE + 6000)]);
  await waitFor(() => a.running().stats.written === 2, 15_000, 'the next sample written');
  const got = bySeries(await queryPrometheus(prom, 'rw_ooo_v'));
  assert.deepEqual(got, { 'rw_ooo_v{host=test-host}': [[BASE + 5000, 1], [BASE + 6000, 4]] });
  assert.equal(a.output().stats.samples_rejected, 2);
  assert.equal(a.agent.logs.filter((l) => /HTTP 400: out of order sample/.test(l.message)).length, 1, 'the reason is logged once');
  // The drop shows in the agent's own metrics too.
  const self = a.agent.agent.pipeline.selfMetrics().find((e) => e.kind === 'metric' && e.name === 'opshub_output' && e.tags.plugin === 'prometheus_remote_write');
  assert.equal(self?.kind === 'metric' ? self.fields.events_dropped_total : undefined, 2);
});

test('VictoriaMetrics stores every sample with its exact value, timestamp and labels', async (t) => {
  const vm = await startVictoria();
  t.after(() => vm.stop());
  const a = await agentTo(`${vm.url}/api/v1/write`, '    external_labels:\n      cluster: lab');
  t.after(() => a.agent.stop());
  a.emit(knownEvents());
  const want = expectedKnown('cluster=lab,host=test-host');
  let got: Record<string, Array<[number, number]>> = {};
  await waitFor(async () => {
    got = bySeries(await exportVictoria(vm, '{__name__=~"rw_.*"}'));
    return Object.values(got).flat().length >= Object.values(want).flat().length;
  }, 20_000, 'the samples in VictoriaMetrics');
  assert.deepEqual(got, want);
});

test('VictoriaMetrics down at start and restarted mid-stream: every buffered sample arrives exactly once', async (t) => {
  const port = await freePort();
  const dir = tempDir('opshub-vm-outage-');
  let vm: Peer | undefined;
  t.after(async () => {
    await vm?.stop();
    dir.cleanup();
  });
  const a = await agentTo(`http://127.0.0.1:${port}/api/v1/write`, '    batch_size: 5\n    buffer_limit: 10000');
  t.after(() => a.agent.stop());
  let seq = 0;
  const emitSome = (n: number) => {
    const events: Event[] = [];
    for (let i = 0; i < n; i++, seq++) events.push(metric('rw_outage', { seq, half: seq / 2 }, { phase: 'x' }, BASE + seq * 100));
    a.emit(events);
  };
  const want = () => ({
    'rw_outage_seq{host=test-host,phase=x}': Array.from({ length: seq }, (_, i): [number, number] => [BASE + i * 100, i]),
    'rw_outage_half{host=test-host,phase=x}': Array.from({ length: seq }, (_, i): [number, number] => [BASE + i * 100, i / 2]),
  });
  const settle = async (what: string) => {
    const expected = want();
    const count = Object.values(expected).flat().length;
    let got: Record<string, Array<[number, number]>> = {};
    await waitFor(async () => {
      if (a.running().bufferSize > 0) return false;
      got = bySeries(await exportVictoria(vm!, '{__name__=~"rw_outage_.*"}'));
      return Object.values(got).flat().length >= count;
    }, 30_000, what);
    assert.deepEqual(got, expected, `${what}: nothing lost, nothing duplicated`);
  };

  // 1. Receiver not there yet: the output retries, the buffer holds the batches.
  emitSome(23);
  await waitFor(() => a.running().stats.write_errors >= 2, 15_000, 'failed attempts while VictoriaMetrics is down');
  assert.equal(a.running().stats.written, 0);
  vm = await startVictoria({ port, dir: dir.dir });
  await settle('after VictoriaMetrics came up');

  // 2. Receiver stopped mid-stream, more samples buffered, receiver back on the same data.
  await vm.kill();
  const errorsBefore = a.running().stats.write_errors;
  emitSome(17);
  await waitFor(() => a.running().stats.write_errors > errorsBefore, 15_000, 'failed attempts while VictoriaMetrics is stopped');
  emitSome(11);
  vm = await startVictoria({ port, dir: dir.dir });
  emitSome(9);
  await settle('after VictoriaMetrics restarted');
  assert.equal(a.running().stats.dropped, 0);
});
