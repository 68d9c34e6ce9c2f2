import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Event } from '../../core/events.ts';
import type { PluginDefinition, Processor } from '../../core/plugin.ts';
import { memoryOutput, startAgent, waitFor } from '../helpers.ts';

/** A processor that appends its `mark` to log messages, can split or drop, or throw. */
const marker: PluginDefinition = {
  kind: 'processor',
  type: 'marker',
  description: 'Test processor: appends a mark to messages.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      mark: { type: 'string', default: '+', description: 'Text appended.' },
      mode: { enum: ['mark', 'split', 'drop', 'throw'], default: 'mark', description: 'What to do.' },
    },
  },
  create(config: { mark: string; mode: string }): Processor {
    let marked = 0;
    return {
      selfMetrics: () => ({ marked_total: marked, cache_entries: 3 }),
      process(event: Event) {
        marked++;
        if (event.kind !== 'log') return event;
        if (config.mode === 'throw') throw new Error('boom');
        if (config.mode === 'drop' && event.message.includes('drop')) return null;
        if (config.mode === 'split') return event.message.split(' ').map((part) => ({ ...event, message: part }));
        event.message += config.mark;
        return event;
      },
    };
  },
};

const heartbeatDir = new URL('../../config/examples/plugins', import.meta.url).pathname;

async function run(processors: string, count = 1) {
  const out = memoryOutput();
  const t = await startAgent(
    `agent:\n  interval: 1h\n  self_metrics: false\n  plugin_dir: ${heartbeatDir}\ninputs:\n  - type: heartbeat\n    message: "a drop"\nprocessors:\n${processors}\noutputs:\n  - type: memory\n    flush_interval: 10ms\n`,
    { plugins: [marker, out.definition] },
  );
  try {
    await waitFor(() => out.events.filter((e) => e.kind === 'log').length >= count && out.events.some((e) => e.kind === 'metric'), 5000);
    await new Promise((r) => setTimeout(r, 50));
    return { logs: out.events.filter((e) => e.kind === 'log').map((e) => (e.kind === 'log' ? e.message : '')), t };
  } finally {
    await t.stop();
  }
}

test('processors run in config order', async () => {
  const { logs } = await run('  - type: marker\n    mark: "1"\n  - type: marker\n    mark: "2"\n');
  assert.deepEqual(logs, ['a drop #112']);
});

test('a processor may split one event into several', async () => {
  const { logs } = await run('  - type: marker\n    mode: split\n  - type: marker\n', 3);
  assert.deepEqual(logs, ['a+', 'drop+', '#1+']);
});

test('a processor limited by match leaves other events alone', async () => {
  const { logs } = await run('  - type: marker\n    match:\n      kinds: [metric]\n');
  assert.deepEqual(logs, ['a drop #1']);
});

test('a processor that throws passes the event on unchanged and counts the error', async () => {
  const out = memoryOutput();
  const t = await startAgent(
    `agent:\n  interval: 1h\n  self_metrics: false\n  plugin_dir: ${heartbeatDir}\ninputs:\n  - type: heartbeat\nprocessors:\n  - type: marker\n    mode: throw\noutputs:\n  - type: memory\n    flush_interval: 10ms\n`,
    { plugins: [marker, out.definition] },
  );
  try {
    await waitFor(() => out.events.some((e) => e.kind === 'log'), 5000);
    assert.equal(t.agent.pipeline.processors[0]!.stats.errors, 1);
    assert.equal(t.logs.filter((l) => l.message.includes('passing events on unchanged')).length, 1);
  } finally {
    await t.stop();
  }
});

test('a processor returning null drops the event', async () => {
  const out = memoryOutput();
  const t = await startAgent(
    `agent:\n  interval: 1h\n  self_metrics: false\n  plugin_dir: ${heartbeatDir}\ninputs:\n  - type: heartbeat\n    message: "please drop"\nprocessors:\n  - type: marker\n    mode: drop\noutputs:\n  - type: memory\n    flush_interval: 10ms\n`,
    { plugins: [marker, out.definition] },
  );
  try {
    await waitFor(() => out.events.some((e) => e.kind === 'metric'), 5000);
    assert.equal(out.events.filter((e) => e.kind === 'log').length, 0);
    assert.equal(t.agent.pipeline.processors[0]!.stats.dropped, 1);
  } finally {
    await t.stop();
  }
});

test('self-metrics describe every plugin as ordinary metric events', async () => {
  const out = memoryOutput();
  const t = await startAgent(`agent:\n  interval: 50ms\n  plugin_dir: ${heartbeatDir}\ninputs:\n  - type: heartbeat\nprocessors:\n  - type: marker\noutputs:\n  - type: memory\n    flush_interval: 10ms\n`, { plugins: [marker, out.definition] });
  try {
    await waitFor(() => out.events.some((e) => e.kind === 'metric' && e.name === 'opshub_output' && Number(e.fields.events_written_total) > 0), 5000);
    const names = new Set(out.events.filter((e) => e.kind === 'metric').map((e) => (e.kind === 'metric' ? e.name : '')));
    for (const n of ['opshub_input', 'opshub_processor', 'opshub_output', 'opshub_output_buffer', 'opshub_plugin']) assert.ok(names.has(n), n);
    const own = out.events.filter((e) => e.kind === 'metric' && e.name === 'opshub_plugin' && e.tags.id === 'marker');
    assert.ok(own.some((e) => e.kind === 'metric' && e.type === 'counter' && 'marked_total' in e.fields), 'a plugin\'s own counter');
    assert.ok(own.some((e) => e.kind === 'metric' && e.type === 'gauge' && e.fields.cache_entries === 3), 'a plugin\'s own gauge');
    const input = out.events.find((e) => e.kind === 'metric' && e.name === 'opshub_input');
    assert.equal(input?.kind === 'metric' && input.tags.id, 'heartbeat');
    assert.equal(input?.kind === 'metric' && input.type, 'counter');
  } finally {
    await t.stop();
  }
});
