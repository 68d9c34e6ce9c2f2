// How opshub_api keeps store reads cheap: identical requests in flight share
// one query, aggregate answers are reused for their TTL, at most N queries
// run at once (the rest wait in order).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Coalescer, requestKey, Semaphore } from '../../../plugins/outputs/opshub_api/sharing.ts';
import { formatPeriod, formatUptime, formatMemory, formatNetwork } from '../../../plugins/outputs/opshub_api/format.ts';

const deferred = <T>() => {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
};

test('identical requests in flight share one query; after it answers, the next one runs its own (no TTL)', async () => {
  const c = new Coalescer();
  let runs = 0;
  const gate = deferred<string>();
  const fn = () => {
    runs++;
    return gate.promise;
  };
  const a = c.run('k', 0, fn);
  const b = c.run('k', 0, fn);
  const other = c.run('other', 0, async () => 'x');
  gate.resolve('answer');
  assert.deepEqual(await Promise.all([a, b, other]), ['answer', 'answer', 'x']);
  assert.equal(runs, 1);
  assert.equal(c.shared, 1);
  await c.run('k', 0, async () => {
    runs++;
    return 'fresh';
  });
  assert.equal(runs, 2);
});

test('with a TTL an answer is reused until it expires; a failure is not kept', async () => {
  let now = 1000;
  const c = new Coalescer(() => now);
  assert.equal(await c.run('k', 5000, async () => 'first'), 'first');
  now += 4999;
  assert.equal(await c.run('k', 5000, async () => 'second'), 'first');
  now += 1;
  assert.equal(await c.run('k', 5000, async () => 'third'), 'third');
  await assert.rejects(c.run('bad', 5000, async () => { throw new Error('boom'); }), /boom/);
  assert.equal(await c.run('bad', 5000, async () => 'recovered'), 'recovered');
});

test('the semaphore runs at most N at once and the rest in arrival order', async () => {
  const s = new Semaphore(2);
  let active = 0;
  let peak = 0;
  const order: number[] = [];
  await Promise.all(
    Array.from({ length: 6 }, (_, i) =>
      s.use(async () => {
        active++;
        peak = Math.max(peak, active);
        order.push(i);
        await new Promise((r) => setTimeout(r, 5));
        active--;
      }),
    ),
  );
  assert.equal(peak, 2);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
});

test('request keys ignore the order of query parameters', () => {
  assert.equal(requestKey('/search/logs', { limit: 50, query: 'x' }), requestKey('/search/logs', { query: 'x', limit: 50 }));
  assert.notEqual(requestKey('/search/logs', { limit: 50 }), requestKey('/search/logs', { limit: 51 }));
});

test("OpsHub's human strings", () => {
  const cases: Array<[string, string]> = [
    [formatUptime(0), '0m'],
    [formatUptime(59), '0m'],
    [formatUptime(3 * 3600 + 5 * 60), '3h 5m'],
    [formatUptime(2 * 86400 + 4 * 3600 + 30 * 60 + 12), '2d 4h 30m'],
    [formatMemory(1_200_000_000, 8.5), '1.2 GB (8.5%)'],
    [formatMemory(0, 0), '0 B (0.0%)'],
    [formatNetwork(45_200_000, 12_800_000), 'RX: 45.2 MB, TX: 12.8 MB'],
    [formatPeriod(24), '24h'],
    [formatPeriod(6), '6h'],
    [formatPeriod(168), '7d'],
    [formatPeriod(36), '36h'],
  ];
  for (const [got, want] of cases) assert.equal(got, want);
});
