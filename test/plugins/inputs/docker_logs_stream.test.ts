// The pieces of inputs.docker_logs that need no engine: parsing the logs
// body (frames split anywhere, TTY raw streams, 16 KiB pieces) and positions
// that resume exactly. The engine tests are in docker_logs.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogStreamParser, looksMultiplexed, type JoinedAfter, type ParsedLine } from '../../../plugins/inputs/docker_logs/parse.ts';
import { PositionTracker, SLACK_NS } from '../../../plugins/inputs/docker_logs/position.ts';
import { formatNs } from '../../../core/events.ts';

const BASE = 1_795_000_000_000_000_000n;
const MS = 1_000_000n;

function frame(stream: number, payload: Buffer | string): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const h = Buffer.alloc(8);
  h[0] = stream;
  h.writeUInt32BE(body.length, 4);
  return Buffer.concat([h, body]);
}

function msg(ts: bigint, content: string): string {
  return `${formatNs(ts)} ${content}`;
}

function parseAll(chunks: Buffer[], tty: boolean, maxLineBytes = 1 << 20): ParsedLine[] {
  const out: ParsedLine[] = [];
  const p = new LogStreamParser({ tty, maxLineBytes, onLine: (l) => out.push(l) });
  for (const c of chunks) p.push(c);
  p.end();
  return out;
}

/** Splits a buffer at every position in turn (two chunks), and into single bytes. */
function splits(buf: Buffer): Buffer[][] {
  const out: Buffer[][] = [[buf], [...buf].map((b) => Buffer.from([b]))];
  for (let i = 1; i < buf.length; i += Math.max(1, Math.floor(buf.length / 97))) out.push([buf.subarray(0, i), buf.subarray(i)]);
  return out;
}

const piece = (ch: string) => ch.repeat(16384);

const MUX = Buffer.concat([
  frame(1, msg(BASE, 'one\n')),
  frame(2, msg(BASE + 1n, 'err one\n')),
  frame(1, msg(BASE + 2n, piece('a'))), // a 40,000-byte line in three pieces,
  frame(2, msg(BASE + 3n, 'err two\n')), // interleaved with the other stream
  frame(1, msg(BASE + 2n, piece('a'))),
  frame(1, msg(BASE + 2n, 'a'.repeat(40000 - 32768) + '\n')),
  frame(1, msg(BASE + 4n, 'crlf\r\n')),
  frame(1, msg(BASE + 5n, 'ünïcödé ✓\n')),
  frame(1, msg(BASE + 6n, 'unterminated at exit')),
  frame(1, msg(BASE + 7n, 'after restart\n')),
]);

const MUX_WANT = [
  ['stdout', BASE, 'one'],
  ['stderr', BASE + 1n, 'err one'],
  ['stderr', BASE + 3n, 'err two'],
  ['stdout', BASE + 2n, 'a'.repeat(40000)],
  ['stdout', BASE + 4n, 'crlf'],
  ['stdout', BASE + 5n, 'ünïcödé ✓'],
  ['stdout', BASE + 6n, 'unterminated at exit'],
  ['stdout', BASE + 7n, 'after restart'],
];

test('multiplexed stream: frames split anywhere give the same lines, long lines merged per stream', () => {
  for (const chunks of splits(MUX)) {
    const got = parseAll(chunks, false).map((l) => [l.stream, l.ts, l.text]);
    assert.deepEqual(got, MUX_WANT, `split into ${chunks.length} chunks at ${chunks[0]!.length}`);
  }
});

test('timestamps: lines within one second, across seconds, and stamps that are not Docker\'s usual 30 bytes', () => {
  const lines = [
    '2026-11-23T12:00:00.123456789Z first',
    '2026-11-23T12:00:00.123456790Z same second',
    '2026-11-23T12:00:01.000000000Z next second',
    '2026-11-23T12:00:01.00000000xZ a letter in the fraction',
    '2026-11-23T12:00:01.000000001+00:00 an offset',
    '2026-11-23T12:00:01.5Z a short fraction',
    '2026-11-23T12:00:01.000000002Z ',
    '2026-11-23T12:00:01.000000003Z\tno space after the stamp',
    'no stamp at all, but long enough to reach byte thirty',
  ];
  const got = parseAll([Buffer.concat(lines.map((l) => frame(1, `${l}\n`)))], false).map((l) => [formatNs(l.ts), l.text]);
  assert.deepEqual(got, [
    ['2026-11-23T12:00:00.123456789Z', 'first'],
    ['2026-11-23T12:00:00.123456790Z', 'same second'],
    ['2026-11-23T12:00:01.000000000Z', 'next second'],
    ['2026-11-23T12:00:01.000000001Z', 'an offset'],
    ['2026-11-23T12:00:01.500000000Z', 'a short fraction'],
    ['2026-11-23T12:00:01.000000002Z', ''],
  ]);
  // A stamp must be followed by a space: the tab line and the line without a stamp are not lines (the parser counts them as malformed).
  // Before any stamp was parsed there is no cached second for stray bytes to match.
  assert.deepEqual(parseAll([frame(1, `${'\0'.repeat(19)}.000000001Z not a stamp\n`)], false), []);
});

test('TTY stream: raw messages with 16 KiB pieces glued together are split and merged', () => {
  const raw = Buffer.from(
    msg(BASE, 'one\r\n') + msg(BASE + 2n, piece('x')) + msg(BASE + 2n, '\r\n') + msg(BASE + 3n, piece('y')) + msg(BASE + 3n, 'yy\r\n') + msg(BASE + 4n, 'last'),
  );
  for (const chunks of splits(raw)) {
    const got = parseAll(chunks, true).map((l) => [l.stream, l.ts, l.text]);
    assert.deepEqual(got, [
      ['stdout', BASE, 'one'],
      ['stdout', BASE + 2n, 'x'.repeat(16384)],
      ['stdout', BASE + 3n, 'y'.repeat(16386)],
      ['stdout', BASE + 4n, 'last'],
    ]);
  }
});

test('TTY: a last line without newline is marked; a replay that runs the next run into it is cut after its bytes', () => {
  // The first run ended on an unterminated line; the raw log runs the next run's first message into it.
  const first = Buffer.from(msg(BASE, 'one\r\n') + msg(BASE + 1n, 'prompt> '));
  const lines = parseAll([first], true);
  assert.deepEqual(
    lines.map((l) => [l.text, l.unterminated]),
    [['one', undefined], ['prompt> ', 8]],
  );
  const replayOf = (tail: string) => Buffer.from(msg(BASE, 'one\r\n') + msg(BASE + 1n, tail) + msg(BASE + 5n, 'next run\r\n') + msg(BASE + 6n, 'more\r\n'));
  const parse = (chunks: Buffer[], joined?: JoinedAfter) => {
    const out: ParsedLine[] = [];
    const p = new LogStreamParser({ tty: true, maxLineBytes: 1 << 20, onLine: (l) => out.push(l), joinedAfter: joined && [joined] });
    for (const c of chunks) p.push(c);
    p.end();
    return out.map((l) => [l.ts, l.text]);
  };
  for (const chunks of splits(replayOf('prompt> '))) {
    assert.deepEqual(parse(chunks, { ts: BASE + 1n, bytes: 8 }), [
      [BASE, 'one'],
      [BASE + 1n, 'prompt> '],
      [BASE + 5n, 'next run'],
      [BASE + 6n, 'more'],
    ]);
  }
  // Without the hint the two are one line, stamped with the first one's time (what a tracker would skip).
  assert.deepEqual(parse([replayOf('prompt> ')]).slice(1, 2), [[BASE + 1n, `prompt> ${formatNs(BASE + 5n)} next run`]]);
  // A tail longer than a 16 KiB piece: the pieces count down its bytes.
  const long = 'z'.repeat(16384 + 100);
  const longReplay = Buffer.from(msg(BASE + 1n, piece('z')) + msg(BASE + 1n, 'z'.repeat(100)) + msg(BASE + 5n, 'next run\r\n'));
  assert.deepEqual(parse(splits(longReplay)[0]!, { ts: BASE + 1n, bytes: long.length }), [
    [BASE + 1n, long],
    [BASE + 5n, 'next run'],
  ]);
  // Two runs that each ended unterminated, both in the replay: each is cut.
  const twice = Buffer.from(msg(BASE + 1n, 'p1') + msg(BASE + 2n, 'run two\r\n') + msg(BASE + 3n, 'p2') + msg(BASE + 4n, 'run three\r\n'));
  const out: ParsedLine[] = [];
  const p2 = new LogStreamParser({ tty: true, maxLineBytes: 1 << 20, onLine: (l) => out.push(l), joinedAfter: [{ ts: BASE + 1n, bytes: 2 }, { ts: BASE + 3n, bytes: 2 }] });
  p2.push(twice);
  p2.end();
  assert.deepEqual(out.map((l) => l.text), ['p1', 'run two', 'p2', 'run three']);
  // Docker 20.10's local driver writes the daemon's zone: the same instants, with an offset.
  const zoned = (ts: bigint) => formatNs(ts + 3_600_000_000_000n).replace('Z', '+01:00');
  const zonedReplay = Buffer.from(`${zoned(BASE + 1n)} prompt> ${zoned(BASE + 5n)} next run\r\n`);
  assert.deepEqual(parse([zonedReplay], { ts: BASE + 1n, bytes: 8 }), [
    [BASE + 1n, 'prompt> '],
    [BASE + 5n, 'next run'],
  ]);
  // The hint is only taken where the next message really begins: content that merely goes on is left whole.
  const noJoin = Buffer.from(msg(BASE + 1n, 'prompt> typed\r\n') + msg(BASE + 5n, 'next run\r\n'));
  assert.deepEqual(parse([noJoin], { ts: BASE + 1n, bytes: 8 }), [
    [BASE + 1n, 'prompt> typed'],
    [BASE + 5n, 'next run'],
  ]);
});

test('a stream is told multiplexed or TTY from its first bytes (for a container gone before it could be inspected)', () => {
  const ts = '2026-03-11T06:48:58.120000000Z ';
  assert.equal(looksMultiplexed(frame(1, `${ts}hello\n`)), true);
  assert.equal(looksMultiplexed(frame(2, `${ts}oops\n`)), true);
  assert.equal(looksMultiplexed(Buffer.from(`${ts}hello\r\n`)), false);
  assert.equal(looksMultiplexed(Buffer.from([1, 0])), true); // a header cut short
  assert.equal(looksMultiplexed(Buffer.alloc(0)), false);
});

test('lines over max_line_bytes are cut on a character boundary and marked truncated', () => {
  const cases: Array<{ text: string; max: number; want: string }> = [
    { text: 'abcdef', max: 4, want: 'abcd' },
    { text: 'ab€cd', max: 4, want: 'ab' }, // € is 3 bytes: not cut in half
    { text: 'ab€cd', max: 5, want: 'ab€' },
  ];
  for (const { text, max, want } of cases) {
    for (const tty of [false, true]) {
      const body = msg(BASE, `${text}\n`);
      const got = parseAll([tty ? Buffer.from(body) : frame(1, body)], tty, max);
      assert.deepEqual(got.map((l) => [l.text, l.truncated]), [[want, true]]);
    }
  }
  const long = Buffer.concat([frame(1, msg(BASE, piece('z'))), frame(1, msg(BASE, piece('z'))), frame(1, msg(BASE, 'z\n'))]);
  assert.deepEqual(parseAll([long], false, 20000).map((l) => [l.text.length, l.truncated]), [[20000, true]]);
});

test('engine errors in the stream are reported, not taken as lines', () => {
  const errors: string[] = [];
  const out: ParsedLine[] = [];
  const p = new LogStreamParser({ tty: false, maxLineBytes: 100, onLine: (l) => out.push(l), onEngineError: (t) => errors.push(t) });
  p.push(Buffer.concat([frame(3, 'Error grabbing logs: boom\n'), frame(1, msg(BASE, 'ok\n'))]));
  assert.deepEqual(errors, ['Error grabbing logs: boom']);
  assert.deepEqual(out.map((l) => l.text), ['ok']);
});

/** Timestamps in reading order: ties, out of order within the slack, long gaps. */
const TS = [0n, 0n, 0n, 1n * MS, 1n * MS, -2n * MS, 1500n * MS, 1500n * MS, 1200n * MS, 1500n * MS, 3000n * MS, 3000n * MS, 2999n * MS, 9000n * MS].map((d) => BASE + d);

test('positions resume exactly after any line: Docker replays from since, the tracker skips what was read', () => {
  const full = new PositionTracker();
  const orders = TS.map((t) => (full.accept(t), full.order()));
  for (let i = 1; i < orders.length; i++) assert.ok(orders[i - 1]! < orders[i]!, 'orders sort in reading order');
  for (let cut = 0; cut <= TS.length; cut++) {
    const first = new PositionTracker();
    TS.slice(0, cut).forEach((t) => first.accept(t));
    const saved = JSON.parse(JSON.stringify(first.position())); // as stored on disk
    const replay = TS.map((t, i) => ({ t, i })).filter((x) => x.t >= BigInt(saved.since));
    const second = new PositionTracker({ saved });
    const taken: number[] = [];
    const takenOrders: string[] = [];
    for (const x of replay) {
      if (second.accept(x.t)) {
        taken.push(x.i);
        takenOrders.push(second.order());
      }
    }
    assert.deepEqual(taken, TS.map((_, i) => i).slice(cut), `resumed after ${cut} lines`);
    assert.deepEqual(takenOrders, orders.slice(cut), 'the same line gets the same order after a restart');
    assert.ok(BigInt(saved.since) >= BigInt(saved.hwm) - SLACK_NS || cut === 0);
  }
});

test('a resume chain (restart after restart) stays exact', () => {
  let saved = new PositionTracker().position();
  const taken: number[] = [];
  for (let cut = 1; cut <= TS.length; cut += 2) {
    const t = new PositionTracker({ saved });
    for (const [i, ts] of TS.entries()) {
      if (i >= cut) break;
      if (ts >= BigInt(saved.since) && t.accept(ts)) taken.push(i);
    }
    saved = t.position();
  }
  assert.deepEqual(taken, TS.map((_, i) => i).slice(0, taken.length));
  assert.equal(new Set(taken).size, taken.length);
});

test('a replay shorter than recorded (log rotated meanwhile) is noticed and new lines still arrive', () => {
  const first = new PositionTracker();
  TS.slice(0, 5).forEach((t) => first.accept(t));
  const saved = first.position();
  const second = new PositionTracker({ saved });
  // The old lines are gone; only newer ones come.
  assert.equal(second.accept(BASE + 5000n * MS), true);
  assert.equal(second.replayShort, true);
});

test('a log read from its first line is empty from the start until a line is read; a resumed or later start is not', () => {
  const fresh = new PositionTracker();
  assert.equal(fresh.emptyFromStart, true);
  fresh.accept(TS[0]!);
  assert.equal(fresh.emptyFromStart, false);
  // Resumed from a checkpoint: lines were read before, by an earlier run.
  assert.equal(new PositionTracker({ saved: fresh.position() }).emptyFromStart, false);
  // Begun later in the log (start_from: end) or from a tail: what came before is unknown.
  assert.equal(new PositionTracker({ floor: BASE }).emptyFromStart, false);
  assert.equal(new PositionTracker({ floorFromFirstLine: true }).emptyFromStart, false);
});
