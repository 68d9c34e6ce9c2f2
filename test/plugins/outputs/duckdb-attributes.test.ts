import assert from 'node:assert/strict';
import test from 'node:test';
import { AttributesJson, LabelsJson } from '../../../plugins/outputs/duckdb/store.ts';

/** What the attributes JSON must be: JSON.stringify of the attributes without the promoted keys. */
function expectedJson(attrs: Record<string, unknown>): string {
  const expected: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'category' || k === 'container_id' || v === undefined) continue;
    expected[k] = typeof v === 'bigint' ? Number(v) : typeof v === 'number' && !Number.isFinite(v) ? null : v;
  }
  return JSON.stringify(expected);
}

test('attribute JSON equals JSON.stringify of the attributes without the promoted keys, line after line', () => {
  const json = new AttributesJson();
  const nested = { a: [1, 'x'] as unknown[] };
  const lines: Array<Record<string, unknown>> = [
    { container_id: 'abc', image: 'ghcr.io/open-webui/open-webui:main', category: 'auth', username: 'alice' },
    { container_id: 'abc', image: 'ghcr.io/open-webui/open-webui:main', username: 'bob "the admin"' },
    { container_id: 'abc', image: 'ghcr.io/open-webui/open-webui:main', username: 'bob "the admin"', category: 'auth' },
    { container_id: 'abc', image: 'ghcr.io/open-webui/open-webui:main' },
    { container_id: 'abc', image: 'ghcr.io/open-webui/open-webui:main' },
    { container_id: 'abc', image: 'ghcr.io/open-webui/open-webui:main', http_status: 200 },
    { container_id: 'abc', image: 'ghcr.io/open-webui/open-webui:main', http_status: 200 },
    { container_id: 'abc', image: 'ghcr.io/open-webui/open-webui:main', http_status: 404 },
    { image: 'ghcr.io/open-webui/open-webui:main', container_id: 'abc', http_status: 404, skip: undefined },
    { image: 'ollama/ollama:latest', http_status: 500, ok: false, n: Number.NaN, big: 12n, nested, skip: undefined },
    { image: 'ollama/ollama:latest', http_status: 500, ok: false, n: Number.NaN, big: 12n, nested, skip: undefined },
    { image: 'ollama/ollama:latest', http_status: 500, ok: false },
    { image: 'ollama/ollama:latest', http_status: 500, ok: true },
    { image: 'ollama/ollama:latest', http_status: 500, ok: true, n: null },
    { image: 'ollama/ollama:latest', username: 'alice', 'odd "key"': 'é\n' },
    { username: 'alice', image: 'ghcr.io/open-webui/open-webui:main' },
    { image: 'ghcr.io/open-webui/open-webui:main', username: 'alice' },
    {},
    { category: 'auth' },
    { image: 'x' },
    {},
  ];
  for (const attrs of lines) {
    const text = json.of(attrs);
    assert.equal(text, expectedJson(attrs));
    // An object value may change between lines: its JSON must follow.
    if (attrs.nested) (attrs.nested as { a: unknown[] }).a.push(attrs.n === undefined ? 0 : 1);
  }
});

test('attribute JSON follows every change between lines alike (randomised)', () => {
  const json = new AttributesJson();
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  const keys = ['image', 'container_id', 'category', 'username', 'http_status', 'ok', 'model'];
  const values = ['a', 'b', 1, 2, true, undefined, 'a'];
  let last: Record<string, unknown> = {};
  for (let i = 0; i < 5000; i++) {
    const attrs: Record<string, unknown> = rnd(3) === 0 ? { ...last } : {};
    if (Object.keys(attrs).length === 0) for (const k of keys) if (rnd(2)) attrs[k] = values[rnd(values.length)];
    if (rnd(4) === 0) attrs[keys[rnd(keys.length)]!] = values[rnd(values.length)];
    const text = json.of(attrs);
    assert.equal(text, expectedJson(attrs), `line ${i}`);
    last = attrs;
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
