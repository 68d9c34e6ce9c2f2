import assert from 'node:assert/strict';
import test from 'node:test';
import { attributesJson, toJson, type AttributeKey } from '../../../plugins/outputs/duckdb/store.ts';
import { Streams } from '../../../plugins/outputs/duckdb/streams.ts';
import { makeLog } from '../../../core/events.ts';

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

test('lines whose label sets are equal share a stream, whichever sets interleave and whatever their objects become later', () => {
  const streams = new Streams(toJson);
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
  const seen: Array<{ labels: unknown; id: bigint }> = [];
  for (const labels of sets) {
    const given = { ...labels };
    const id = streams.idOf(makeLog({ timestamp: 1n, source: 's', message: 'm', labels: given }));
    const json = JSON.parse(JSON.stringify(labels));
    // The same stream exactly when the labels are equal as JSON (in any key order).
    for (const s of seen) assert.equal(s.id === id, isDeepEqual(s.labels, json), `${JSON.stringify(labels)}`);
    seen.push({ labels: json, id });
    given.container = 'changed'; // the event's object, changed after the write
  }
});

function isDeepEqual(a: unknown, b: unknown): boolean {
  try {
    assert.deepEqual(a, b);
    return true;
  } catch {
    return false;
  }
}
