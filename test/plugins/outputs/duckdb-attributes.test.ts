import assert from 'node:assert/strict';
import test from 'node:test';
import { attributesJson, LabelsJson, type AttributeKey } from '../../../plugins/outputs/duckdb/store.ts';

test('attribute JSON equals JSON.stringify of the attributes without the promoted keys (string values), line after line', () => {
  const keys = new Map<string, AttributeKey>();
  const lines: Array<Record<string, unknown>> = [
    { container_id: 'abc', image: 'ghcr.io/open-webui/open-webui:main', category: 'auth', username: 'alice' },
    { container_id: 'abc', image: 'ghcr.io/open-webui/open-webui:main', username: 'bob "the admin"' },
    { image: 'ollama/ollama:latest', http_status: 500, ok: false, n: Number.NaN, big: 12n, nested: { a: [1, 'x'] }, skip: undefined },
    { image: 'ollama/ollama:latest', username: 'alice', 'odd "key"': 'é\n' },
    { username: 'alice', image: 'ghcr.io/open-webui/open-webui:main' },
    {},
    { category: 'auth' },
    // Promoted only as strings (their columns are text): other values stay.
    { image: 42, container_id: { id: 'x' }, username: 'carol' },
  ];
  for (const attrs of lines) {
    const expected: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(attrs)) {
      if (((k === 'category' || k === 'container_id' || k === 'image') && typeof v === 'string') || v === undefined) continue;
      expected[k] = typeof v === 'bigint' ? Number(v) : typeof v === 'number' && !Number.isFinite(v) ? null : v;
    }
    const json = attributesJson(attrs, keys);
    assert.equal(json, JSON.stringify(expected));
    assert.deepEqual(JSON.parse(json), expected);
  }
});

test('labels JSON is that of the labels given, whichever sets interleave and whatever their objects become later', () => {
  const cache = new LabelsJson(2);
  const sets: Array<Record<string, string>> = [
    { container: 'a', stream: 'stdout' },
    { container: 'a', stream: 'stderr' },
    { container: 'a', stream: 'stdout' },
    { container: 'b', stream: 'stdout' },
    { container: 'a', stream: 'stderr' },
    {},
    { container: 'a' },
    { stream: 'stdout', container: 'a' },
    { container: 'a', stream: 'stdout' },
    { a: '1' },
    { b: undefined as unknown as string },
    { x: '1', y: '2' },
    { x: '1', z: undefined as unknown as string },
  ];
  for (const labels of sets) {
    const given = { ...labels };
    assert.deepEqual(JSON.parse(cache.of(given)), JSON.parse(JSON.stringify(labels)));
    given.container = 'changed'; // the event's object, changed after the write
  }
});
