import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PluginInstanceConfig } from '../../core/config.ts';
import { Delivery, type Envelope } from '../../core/delivery.ts';
import { makeLog, type Event } from '../../core/events.ts';
import { createLogger, type LogRecord } from '../../core/log.ts';
import { PermanentError, RetryableError, type Output } from '../../core/plugin.ts';
import { RunningOutput } from '../../core/running/output.ts';
import { waitFor } from '../helpers.ts';

function outputConfig(over: Partial<PluginInstanceConfig> = {}): PluginInstanceConfig {
  return {
    id: 'out', type: 'test', kind: 'output', definition: undefined as never, options: {}, dataDir: '/tmp',
    intervalMs: 1000, jitterMs: 0, tags: {}, batchSize: 100, flushIntervalMs: 3_600_000, bufferLimit: 1000,
    retryInitialMs: 5, retryMaxMs: 50, fingerprint: '', ...over,
  };
}

const line = (n: number): Envelope => ({ event: makeLog({ message: `line ${n}` }), input: 'in' });
const texts = (events: Event[]) => events.map((e) => (e.kind === 'log' ? e.message : e.name));

function recorder(behaviour: (attempt: number, events: Event[]) => Promise<void> | void = () => undefined) {
  const written: Event[] = [];
  let attempts = 0;
  const plugin: Output = {
    async write(events) {
      await behaviour(attempts++, events);
      written.push(...events);
    },
  };
  return { plugin, written, attempts: () => attempts };
}

function quietLog(records: LogRecord[] = []) {
  return createLogger({ level: 'debug', sink: (r) => records.push(r) });
}

test('a full buffer drops the oldest events and counts them', async () => {
  const rec = recorder();
  const out = new RunningOutput(outputConfig({ bufferLimit: 5 }), rec.plugin, quietLog());
  await out.start();
  for (let i = 0; i < 12; i++) out.push(line(i));
  assert.equal(out.bufferSize, 5);
  assert.equal(out.stats.dropped, 7);
  assert.equal(out.stats.dropped_overflow, 7);
  await out.stop(1000);
  assert.deepEqual(texts(rec.written), ['line 7', 'line 8', 'line 9', 'line 10', 'line 11']);
});

test('a failing write is retried with backoff until it succeeds, once and in order', async () => {
  const rec = recorder((attempt) => {
    if (attempt < 3) throw new Error('connection refused');
  });
  const out = new RunningOutput(outputConfig({ batchSize: 3 }), rec.plugin, quietLog());
  await out.start();
  for (let i = 0; i < 6; i++) out.push(line(i));
  await waitFor(() => rec.written.length === 6, 5000, 'all lines written');
  assert.deepEqual(texts(rec.written), ['line 0', 'line 1', 'line 2', 'line 3', 'line 4', 'line 5']);
  assert.equal(out.stats.write_errors, 3);
  assert.equal(out.stats.written, 6);
  assert.equal(out.stats.dropped, 0);
  await out.stop(1000);
});

test('Retry-After from the peer is honoured before the next attempt', async () => {
  const times: number[] = [];
  const rec = recorder((attempt) => {
    times.push(performance.now());
    if (attempt === 0) throw new RetryableError('429 too many requests', 300);
  });
  const out = new RunningOutput(outputConfig({ batchSize: 1, retryMaxMs: 10_000 }), rec.plugin, quietLog());
  await out.start();
  out.push(line(0));
  await waitFor(() => rec.written.length === 1, 5000);
  assert.ok(times[1]! - times[0]! >= 290, `waited ${times[1]! - times[0]!} ms`);
  await out.stop(1000);
});

test('a permanent error drops that batch, counts it, logs once and goes on', async () => {
  const logs: LogRecord[] = [];
  const rec = recorder((_attempt, events) => {
    if (texts(events).some((t) => t.startsWith('bad'))) throw new PermanentError('400 entry too far behind');
  });
  const out = new RunningOutput(outputConfig({ batchSize: 2 }), rec.plugin, quietLog(logs));
  await out.start();
  out.push({ event: makeLog({ message: 'bad 1' }), input: 'in' });
  out.push(line(1));
  out.push({ event: makeLog({ message: 'bad 2' }), input: 'in' });
  out.push(line(2));
  out.push(line(3));
  out.push(line(4));
  await waitFor(() => rec.written.length === 2 && out.stats.dropped === 4, 5000);
  assert.deepEqual(texts(rec.written), ['line 3', 'line 4']);
  assert.equal(out.stats.dropped_permanent, 4);
  assert.equal(logs.filter((l) => l.message.includes('retrying cannot help')).length, 1);
  await out.stop(1000);
});

test('stop flushes a partial batch before the flush interval', async () => {
  const rec = recorder();
  const out = new RunningOutput(outputConfig({ batchSize: 1000 }), rec.plugin, quietLog());
  await out.start();
  for (let i = 0; i < 3; i++) out.push(line(i));
  assert.equal(rec.written.length, 0);
  await out.stop(1000);
  assert.deepEqual(texts(rec.written), ['line 0', 'line 1', 'line 2']);
  await out.stop(1000); // twice is fine
});

test('stop gives up on a dead peer at the deadline and counts what is left', async () => {
  const rec = recorder(() => {
    throw new Error('down');
  });
  const out = new RunningOutput(outputConfig({ batchSize: 2 }), rec.plugin, quietLog());
  await out.start();
  for (let i = 0; i < 5; i++) out.push(line(i));
  const started = Date.now();
  await out.stop(300);
  assert.ok(Date.now() - started < 3000);
  assert.equal(out.stats.written, 0);
  assert.equal(out.stats.dropped, 5);
});

test('the flush interval writes a partial batch', async () => {
  const rec = recorder();
  const out = new RunningOutput(outputConfig({ batchSize: 1000, flushIntervalMs: 50 }), rec.plugin, quietLog());
  await out.start();
  out.push(line(0));
  await waitFor(() => rec.written.length === 1, 5000);
  await out.stop(1000);
});

test('flushNow writes a partial batch at once, also when asked during a write', async () => {
  let release!: () => void;
  const rec = recorder((attempt) => (attempt === 0 ? new Promise<void>((r) => (release = r)) : undefined));
  const out = new RunningOutput(outputConfig({ batchSize: 1000, flushIntervalMs: 3_600_000 }), rec.plugin, quietLog());
  await out.start();
  out.flushNow(); // nothing buffered: nothing to do
  out.push(line(0));
  out.flushNow();
  await waitFor(() => rec.attempts() === 1, 5000, 'the first partial batch goes out');
  // Asked while that write is in flight: the next batch does not wait for the flush interval either.
  out.push(line(1));
  out.flushNow();
  release();
  await waitFor(() => rec.written.length === 2, 5000, 'the second partial batch');
  assert.equal(out.stats.batches, 2);
  await out.stop(1000);
});

test('delivery is acknowledged only once written, or dropped on purpose', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const rec = recorder(() => gate);
  const out = new RunningOutput(outputConfig({ batchSize: 2 }), rec.plugin, quietLog());
  await out.start();
  let delivered = 0;
  const delivery = new Delivery({ onDelivered: () => delivered++ });
  out.push({ ...line(0), delivery });
  out.push({ ...line(1), delivery });
  delivery.release(); // fan-out done
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(delivered, 0, 'not before the write completes');
  release();
  await waitFor(() => delivered === 1, 5000);

  const dropped = new Delivery({ onDelivered: () => delivered++ });
  const small = new RunningOutput(outputConfig({ bufferLimit: 1 }), recorder().plugin, quietLog());
  small.push({ ...line(2), delivery: dropped });
  small.push({ ...line(3), delivery: new Delivery({}) }); // pushes line 2 out of the buffer
  dropped.release();
  assert.equal(delivered, 2, 'an overflow drop acknowledges too');
  await out.stop(1000);
  await small.stop(1000);
});

test('a full buffer drops the oldest untracked event first: tracked lines wait, bounded by their input\'s window', async () => {
  const rec = recorder();
  const out = new RunningOutput(outputConfig({ bufferLimit: 4, batchSize: 100 }), rec.plugin, quietLog());
  let delivered = 0;
  const tracked = new Delivery({ onDelivered: () => delivered++ });
  // A tracked line first, then untracked events (metrics, say) flooding in while the output is busy.
  out.push({ ...line(0), delivery: tracked });
  tracked.release();
  for (let i = 1; i <= 6; i++) out.push(line(i));
  assert.equal(out.stats.dropped_overflow, 3);
  assert.equal(delivered, 0, 'the tracked line is still waiting, not acknowledged as dropped');
  await out.start();
  await out.stop(1000);
  assert.deepEqual(texts(rec.written), ['line 0', 'line 4', 'line 5', 'line 6']);
  assert.equal(delivered, 1);
});

test('overflow among tracked events: drops follow the rule exactly, also behind a batch in flight, and the rest is written once and in order', async () => {
  // A model of the rule, checked against random pushes: over the limit, the oldest untracked event goes, or the oldest of all.
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const limit = 20;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const rec = recorder((attempt) => (attempt === 0 ? gate : undefined));
  const out = new RunningOutput(outputConfig({ bufferLimit: limit, batchSize: 8 }), rec.plugin, quietLog());
  const model: Array<{ n: number; tracked: boolean }> = [];
  const deliveries: Delivery[] = [];
  let n = 0;
  const pushSome = (count: number) => {
    for (let i = 0; i < count; i++, n++) {
      const tracked = random() < 0.3;
      const delivery = tracked ? new Delivery({}) : undefined;
      if (delivery) deliveries.push(delivery);
      out.push({ ...line(n), ...(delivery ? { delivery } : {}) });
      model.push({ n, tracked });
      if (model.length > limit) {
        const at = model.findIndex((m) => !m.tracked);
        model.splice(at < 0 ? 0 : at, 1);
      }
      assert.equal(out.bufferSize, model.length);
    }
  };
  pushSome(6000); // enough for the buffer to be rebuilt without its holes (past 4,096)
  // Evicted events leave holes until the buffer is rebuilt: its array stays within a bound while nothing is taken.
  const slots = () => (out as unknown as { buffer: unknown[] }).buffer.length;
  assert.ok(slots() <= limit + 4096 + 1, `array of ${slots()} slots`);
  await out.start();
  // The first batch is taken (past holes) and its write hangs; overflow goes on behind it.
  await waitFor(() => rec.attempts() === 1, 5000, 'the first write');
  const inFlight = model.splice(0, 8);
  pushSome(300);
  assert.ok(slots() <= 2 * limit + 4096 + 1, `array of ${slots()} slots`);
  release();
  await out.stop(5000);
  assert.deepEqual(texts(rec.written), [...inFlight, ...model].map((m) => `line ${m.n}`));
  assert.equal(out.stats.dropped_overflow, n - rec.written.length);
  for (const d of deliveries) d.release();
});

test('a full buffer of untracked events only, or tracked events only, keeps its array bounded while nothing is taken', () => {
  for (const tracked of [false, true]) {
    const out = new RunningOutput(outputConfig({ bufferLimit: 100 }), recorder().plugin, quietLog());
    const delivery = new Delivery({});
    for (let i = 0; i < 50_000; i++) out.push({ ...line(i), ...(tracked ? { delivery } : {}) });
    assert.equal(out.bufferSize, 100);
    assert.equal(out.stats.dropped_overflow, 49_900);
    const slots = (out as unknown as { buffer: unknown[] }).buffer.length;
    assert.ok(slots <= 2 * 4096 + 100, `array of ${slots} slots (${tracked ? 'tracked' : 'untracked'})`);
  }
});

test('each batch carries the highest position per source for stores that commit them', async () => {
  const seen: Array<{ checkpoints: unknown; positions: unknown[] }> = [];
  const out = new RunningOutput(outputConfig({ batchSize: 3 }), {
    async write(_events, ctx) {
      seen.push({ checkpoints: ctx.checkpoints, positions: ctx.positions });
    },
  }, quietLog());
  await out.start();
  const pos = (key: string, order: string) => ({ input: 'in', key, value: order, order });
  out.push({ ...line(0), position: pos('a', '001') });
  out.push({ ...line(1), position: pos('b', '005') });
  out.push({ ...line(2), position: pos('a', '002') });
  await waitFor(() => seen.length === 1, 5000);
  assert.deepEqual(seen[0]!.checkpoints, [pos('a', '002'), pos('b', '005')]);
  assert.equal(seen[0]!.positions.length, 3);
  await out.stop(1000);
});

/** An output that stages batches and commits them later, as outputs.duckdb does; `fail` decides per call. */
function stager(opts: { commitEvents?: number; commitIntervalMs?: number; fail?: (what: 'stage' | 'commit', call: number, events: Event[]) => Error | undefined } = {}) {
  const committed: Event[][] = [];
  let open: Event[][] = [];
  const calls = { stage: 0, commit: 0 };
  let gate: Promise<void> | undefined;
  const plugin: Output = {
    commitEvents: opts.commitEvents ?? 1_000_000,
    commitIntervalMs: opts.commitIntervalMs ?? 3_600_000,
    async write() {
      throw new Error('write() is not used by a staging output');
    },
    async stage(events) {
      await gate;
      const err = opts.fail?.('stage', calls.stage++, events);
      if (err) {
        open = []; // the transaction is rolled back
        throw err;
      }
      open.push(events);
    },
    async commit() {
      const err = opts.fail?.('commit', calls.commit++, open.flat());
      const batches = open;
      open = [];
      if (err) throw err;
      committed.push(batches.flat());
    },
  };
  let alone = false;
  plugin.committedAlone = () => {
    const was = alone;
    alone = false;
    return was;
  };
  /** The output commits the open transaction on its own (as outputs.duckdb does before a CHECKPOINT). */
  const settle = () => {
    committed.push(open.flat());
    open = [];
    alone = true;
  };
  return { plugin, committed, calls, settle, hold: (p: Promise<void> | undefined) => (gate = p), staged: () => open.flat() };
}

test('staging: batches join one transaction until it holds commitEvents (a batch cut to fit) or is commitIntervalMs old; accepted at stage, delivered at commit', async () => {
  const s = stager({ commitEvents: 5, commitIntervalMs: 200 });
  let release!: () => void;
  s.hold(new Promise<void>((r) => (release = r)));
  const out = new RunningOutput(outputConfig({ batchSize: 2 }), s.plugin, quietLog());
  await out.start();
  let accepted = 0;
  let delivered = 0;
  const delivery = new Delivery({ onAccepted: () => accepted++, onDelivered: () => delivered++ });
  for (let i = 0; i < 8; i++) out.push({ ...line(i), delivery });
  delivery.release(); // fan-out done
  release();
  // 8 waiting: batches of 2, 2 and 1 (cut to fill the transaction) make the first; the other 3 wait for the interval.
  await waitFor(() => s.committed.length === 1, 5000, 'the first commit');
  assert.deepEqual(s.committed.map(texts), [['line 0', 'line 1', 'line 2', 'line 3', 'line 4']]);
  assert.equal(delivered, 0);
  await waitFor(() => s.committed.length === 2, 5000, 'the second commit, by the interval');
  assert.equal(accepted, 1);
  assert.deepEqual(texts(s.committed[1]!), ['line 5', 'line 6', 'line 7']);
  assert.equal(delivered, 1);
  assert.equal(out.stats.written, 8);
  assert.equal(out.stats.batches, 5);

  // Accepted once staged, delivered only when committed.
  const later = new Delivery({ onAccepted: () => accepted++, onDelivered: () => delivered++ });
  let commitGate!: () => void;
  const commit = s.plugin.commit!.bind(s.plugin);
  s.plugin.commit = async () => {
    await new Promise<void>((r) => (commitGate = r));
    await commit();
  };
  out.push({ ...line(8), delivery: later });
  later.release();
  out.flushNow();
  await waitFor(() => accepted === 2, 5000, 'accepted once staged');
  await waitFor(() => commitGate !== undefined, 5000, 'the commit, after the interval');
  assert.equal(delivered, 1, 'not delivered before the commit');
  commitGate();
  await waitFor(() => delivered === 2, 5000, 'delivered at the commit');
  await out.stop(1000);
});

test('staging: a failed commit or stage stages every lost batch again, in order, none twice', async () => {
  const s = stager({
    commitEvents: 4,
    fail: (what, call) => ((what === 'commit' && call === 0) || (what === 'stage' && call === 4) ? new Error('disk I/O error') : undefined),
  });
  const out = new RunningOutput(outputConfig({ batchSize: 2 }), s.plugin, quietLog());
  for (let i = 0; i < 8; i++) out.push(line(i));
  await out.start();
  await waitFor(() => s.committed.flat().length === 8, 5000, 'all committed');
  assert.deepEqual(texts(s.committed.flat()), ['line 0', 'line 1', 'line 2', 'line 3', 'line 4', 'line 5', 'line 6', 'line 7']);
  assert.equal(out.stats.write_errors, 2);
  assert.equal(out.stats.written, 8);
  await out.stop(1000);
});

/** Pushes lines 0..n-1; those in `tracked` share one delivery, whose acknowledgements are counted. */
function pushLines(out: RunningOutput, n: number, tracked: number[]) {
  const acks = { accepted: 0, delivered: 0 };
  const delivery = new Delivery({ onAccepted: () => acks.accepted++, onDelivered: () => acks.delivered++ });
  for (let i = 0; i < n; i++) out.push(tracked.includes(i) ? { ...line(i), delivery } : line(i));
  delivery.release(); // fan-out done
  return acks;
}

test('staging: a permanent error drops only its own batch; what was staged before is staged again', async () => {
  const s = stager({ commitEvents: 100, commitIntervalMs: 50, fail: (what, _call, events) => (what === 'stage' && texts(events).includes('line 2') ? new PermanentError('out of range') : undefined) });
  const out = new RunningOutput(outputConfig({ batchSize: 2 }), s.plugin, quietLog());
  const bad = pushLines(out, 6, [2, 3]);
  await out.start();
  await waitFor(() => s.committed.flat().length === 4, 5000, 'the rest committed');
  assert.deepEqual(texts(s.committed.flat()), ['line 0', 'line 1', 'line 4', 'line 5']);
  assert.equal(out.stats.dropped_permanent, 2);
  assert.deepEqual([bad.accepted, bad.delivered], [1, 1], 'a dropped batch is acknowledged');
  await out.stop(1000);
});

test('staging: a commit that fails permanently is not retried forever: its batches are committed one by one and only the one at fault is dropped', async () => {
  const poisoned = (events: Event[]) => texts(events).includes('line 4');
  const s = stager({ commitEvents: 6, commitIntervalMs: 50, fail: (what, _call, events) => (what === 'commit' && poisoned(events) ? new PermanentError('constraint violated at commit') : undefined) });
  const records: LogRecord[] = [];
  const out = new RunningOutput(outputConfig({ batchSize: 2 }), s.plugin, quietLog(records));
  const bad = pushLines(out, 8, [4, 5]);
  await out.start();
  await waitFor(() => out.stats.written + out.stats.dropped === 8, 5000, 'every event written or dropped');
  assert.deepEqual(texts(s.committed.flat()), ['line 0', 'line 1', 'line 2', 'line 3', 'line 6', 'line 7']);
  assert.equal(out.stats.dropped_permanent, 2);
  assert.equal(s.calls.commit, 5, 'the transaction of 6, then its 3 batches alone, then the last batch');
  assert.deepEqual([bad.accepted, bad.delivered], [1, 1], 'the dropped batch is acknowledged');
  assert.ok(records.some((r) => /one by one/.test(r.message)));
  await out.stop(1000);
});

test('staging: a transaction open under a steady stream is committed after commitIntervalMs, and at stop', async () => {
  const s = stager({ commitIntervalMs: 100 });
  const out = new RunningOutput(outputConfig({ batchSize: 1 }), s.plugin, quietLog());
  await out.start();
  // One event every 10 ms with a slow stage: the buffer never empties, so only the interval commits.
  const stage = s.plugin.stage!.bind(s.plugin);
  s.plugin.stage = async (events, ctx) => {
    await new Promise((r) => setTimeout(r, 15));
    await stage(events, ctx);
  };
  let n = 0;
  const feed = setInterval(() => out.push(line(n++)), 10);
  await waitFor(() => s.committed.length >= 2, 5000, 'commits by the interval');
  clearInterval(feed);
  assert.ok(s.committed[0]!.length > 1, `several batches in one transaction (${s.committed[0]!.length})`);
  await out.stop(5000);
  assert.equal(s.staged().length, 0, 'nothing left staged after stop');
  assert.deepEqual(texts(s.committed.flat()), Array.from({ length: n }, (_, i) => `line ${i}`));
});

test('staging: a lost transaction is staged again outside buffer_limit: newer events overflow, never the accepted ones put back', async () => {
  let commitGate!: () => void;
  const s = stager({ commitEvents: 4, fail: (what, call) => (what === 'commit' && call === 0 ? new Error('disk I/O error') : undefined) });
  const commit = s.plugin.commit!.bind(s.plugin);
  s.plugin.commit = async () => {
    if (s.calls.commit === 0) await new Promise<void>((r) => (commitGate = r));
    await commit();
  };
  const out = new RunningOutput(outputConfig({ batchSize: 2, bufferLimit: 4, retryInitialMs: 300, retryMaxMs: 300 }), s.plugin, quietLog());
  await out.start();
  let accepted = 0;
  const delivery = new Delivery({ onAccepted: () => accepted++ });
  for (let i = 0; i < 4; i++) out.push({ ...line(i), delivery });
  delivery.release();
  await waitFor(() => commitGate !== undefined, 5000, 'the first commit');
  assert.equal(accepted, 1, 'the four were accepted at stage: their input reads on');
  for (let i = 4; i < 8; i++) out.push(line(i));
  commitGate();
  await waitFor(() => out.stats.write_errors === 1, 5000, 'the commit fails');
  // During the backoff the input goes on: the buffer overflows, and the oldest *new* events go.
  for (let i = 8; i < 11; i++) out.push(line(i));
  await out.stop(5000);
  assert.equal(out.stats.dropped_overflow, 3);
  assert.deepEqual(texts(s.committed.flat()), ['line 0', 'line 1', 'line 2', 'line 3', 'line 7', 'line 8', 'line 9', 'line 10']);
});

test('staging: a transaction the output committed on its own is delivered, and not staged again when the next one is lost', async () => {
  const s = stager({ fail: (what, call) => (what === 'stage' && call === 1 ? new Error('disk I/O error') : undefined) });
  const out = new RunningOutput(outputConfig({ batchSize: 2 }), s.plugin, quietLog());
  let delivered = 0;
  const first = new Delivery({ onDelivered: () => delivered++ });
  out.push({ ...line(0), delivery: first });
  out.push({ ...line(1), delivery: first });
  first.release();
  await out.start();
  await waitFor(() => s.staged().length === 2, 5000, 'the first batch staged');
  s.settle(); // e.g. before a CHECKPOINT
  out.push(line(2));
  out.push(line(3)); // a full batch: staged into a new transaction, which fails
  await waitFor(() => delivered === 1, 5000, 'the batch committed alone is delivered');
  await out.stop(5000);
  assert.deepEqual(texts(s.committed.flat()), ['line 0', 'line 1', 'line 2', 'line 3'], 'each line once');
  assert.equal(out.stats.written, 4);
});

test('staging: a flush asked for also writes what is left after a batch cut to fit the transaction', async () => {
  const s = stager({ commitEvents: 3, commitIntervalMs: 50 });
  const out = new RunningOutput(outputConfig({ batchSize: 10 }), s.plugin, quietLog());
  await out.start();
  for (let i = 0; i < 5; i++) out.push(line(i));
  out.flushNow(); // an input paused for acknowledgements; the flush timer is an hour away
  await waitFor(() => s.committed.flat().length === 5, 5000, 'all five committed');
  assert.deepEqual(s.committed.map((b) => b.length), [3, 2]);
  await out.stop(1000);
});
