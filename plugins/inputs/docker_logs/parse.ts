// Parses the body of GET /containers/{id}/logs?timestamps=1 into lines.
//
// What the engine sends (verified against Docker 20.10, see the tests):
// - Without a TTY the body is multiplexed: frames of an 8-byte header
//   [stream, 0, 0, 0, size (uint32 BE)] and `size` bytes. Each frame is one
//   log message: "<RFC 3339 ts with 9 digits> <content>", where content ends
//   with "\n" unless it is a piece of a longer line. Stream 3 carries the
//   engine's own errors ("Error grabbing logs: ...").
// - With a TTY the body is raw: the same messages back to back, no headers.
// - Docker's log copier cuts lines longer than 16 KiB into 16,384-byte pieces
//   without newline; every piece of one line carries the timestamp of the
//   first. A line still unterminated when the container exits is stored
//   without newline too. So: pieces with the same timestamp on one stream are
//   merged; a piece followed by a different timestamp ended its line.
// Frames and pieces may be split across network chunks anywhere.

import { parseRfc3339Ns } from '../../../core/events.ts';

export type StreamName = 'stdout' | 'stderr';

export interface ParsedLine {
  stream: StreamName;
  /** Docker's timestamp of the line (of its first piece), ns since the epoch. */
  ts: bigint;
  text: string;
  /** The line was longer than max_line_bytes and was cut. */
  truncated: boolean;
  /**
   * TTY only: the line ended without newline when the stream ended, with
   * this many bytes. The container's next run is joined to it in the log.
   */
  unterminated?: number;
}

/** A TTY line read before as unterminated: where, in a replay, the next run's first message begins. */
export interface JoinedAfter {
  /** The line's timestamp (ns since the epoch). */
  ts: bigint;
  /** Its length in bytes. */
  bytes: number;
}

/** Docker's copier buffer: longer lines arrive in pieces of exactly this size. */
export const DOCKER_PIECE_BYTES = 16 * 1024;

interface Partial {
  ts: bigint;
  chunks: Buffer[];
  bytes: number;
  /** Content bytes received, including any cut at max_line_bytes. */
  raw: number;
  truncated: boolean;
}

const NL = 0x0a;
const CR = 0x0d;
const SP = 0x20;
/** Docker's timestamp: "2026-11-23T12:00:00.123456789Z". */
const STAMP_BYTES = 30;
const EMPTY = Buffer.alloc(0);

/** Whether data[at] begins the engine's timestamp and its space: "2026-11-23T12:00:00.123456789Z ". */
function startsWithStamp(data: Buffer, at: number): boolean {
  return STAMP.test(data.toString('latin1', at, at + 36));
}

// With "Z", or with an offset: Docker 20.10's local driver keeps the daemon's zone.
const STAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(?:Z|[+-]\d\d:\d\d) /;

/**
 * Whether a log stream's first bytes are a multiplexed frame header (stream
 * 0-2, then three zero bytes) rather than a TTY's raw output, which starts
 * with a timestamp's digits. For a container that could not be inspected.
 */
export function looksMultiplexed(head: Buffer): boolean {
  return head.length > 0 && head[0]! <= 2 && (head.length < 4 || (head[1] === 0 && head[2] === 0 && head[3] === 0));
}

export class LogStreamParser {
  private rest: Buffer = EMPTY;
  private partial: Record<StreamName, Partial | undefined> = { stdout: undefined, stderr: undefined };
  /** The second of the last stamp parsed ("2026-11-23T12:00:00", as bytes) and its nanoseconds; none until one is. */
  private readonly lastSecs = new Uint8Array(19);
  private lastSecsNs = 0n;
  private hasLastSecs = false;
  /** Malformed messages (no timestamp), counted. */
  malformed = 0;

  constructor(
    private readonly opts: {
      tty: boolean;
      maxLineBytes: number;
      onLine: (line: ParsedLine) => void;
      /** Errors the engine reports in-band (multiplexed stream 3). */
      onEngineError?: (text: string) => void;
      /**
       * TTY: lines read before that ended without newline. The raw stream
       * runs the container's next output into such a line ("<ts1> rest<ts2>
       * next\n", as long as both are in the range asked for), so a replay
       * cuts those messages after the known bytes.
       */
      joinedAfter?: readonly JoinedAfter[];
    },
  ) {
    if (opts.joinedAfter?.length) {
      this.joined = new Map(opts.joinedAfter.map((j) => [j.ts, j.bytes]));
      this.lastJoined = opts.joinedAfter.reduce((max, j) => (j.ts > max ? j.ts : max), 0n);
    }
  }

  /** Timestamp → bytes still to come of that unterminated line; cleared once the replay is past them. */
  private joined?: Map<bigint, number>;
  private lastJoined = 0n;
  private ending = false;

  push(chunk: Buffer): void {
    const data = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    const used = this.opts.tty ? this.parseRaw(data, false) : this.parseFrames(data);
    // Keep a copy of a small remainder so the (possibly large) chunk can be freed.
    const left = data.length - used;
    this.rest = left === 0 ? EMPTY : left < 4096 ? Buffer.from(data.subarray(used)) : data.subarray(used);
  }

  /** The stream ended: whatever is left is the container's last, unterminated output. */
  end(): void {
    this.ending = true;
    if (this.opts.tty && this.rest.length) this.parseRaw(this.rest, true);
    this.rest = EMPTY;
    for (const stream of ['stdout', 'stderr'] as const) this.flushPartial(stream);
  }

  private parseFrames(data: Buffer): number {
    let off = 0;
    while (data.length - off >= 8) {
      const type = data[off]!;
      const size = data.readUInt32BE(off + 4);
      const start = off + 8;
      const end = start + size;
      if (end > data.length) break;
      if (type === 1 || type === 2) this.message(type === 1 ? 'stdout' : 'stderr', data, start, end);
      else if (type === 3) this.opts.onEngineError?.(data.toString('utf8', start, end).trim());
      off = end;
    }
    return off;
  }

  /** Raw (TTY) stream: "<ts> <content>\n", or a 16 KiB piece with no newline. */
  private parseRaw(data: Buffer, atEnd: boolean): number {
    let off = 0;
    while (off < data.length) {
      const sp = data.indexOf(SP, off);
      if (sp < 0 || sp - off > 40) {
        if (sp < 0 && data.length - off <= 40 && !atEnd) break; // the timestamp is not all here yet
        // Not a timestamp: count it and resynchronise after the next newline.
        const nl = data.indexOf(NL, off);
        if (nl < 0 && !atEnd) break;
        this.malformed++;
        off = nl < 0 ? data.length : nl + 1;
        continue;
      }
      const contentStart = sp + 1;
      const limit = Math.min(data.length, contentStart + DOCKER_PIECE_BYTES);
      const nl = data.subarray(contentStart, limit).indexOf(NL);
      let end: number;
      if (nl >= 0) end = contentStart + nl + 1;
      else if (limit - contentStart === DOCKER_PIECE_BYTES || atEnd) end = limit;
      else break; // the piece is not complete yet
      if (this.joined) end = this.cutJoined(data, off, sp, contentStart, end);
      this.message('stdout', data, off, end);
      off = end;
    }
    return off;
  }

  /**
   * While replaying up to the line read before as unterminated: the end of
   * the message at [off, end), cut where the next run's first message begins
   * inside it. A 16 KiB piece of that line counts down its bytes.
   */
  private cutJoined(data: Buffer, off: number, sp: number, contentStart: number, end: number): number {
    const joined = this.joined!;
    const ts = this.timestamp(data.toString('latin1', off, sp));
    if (ts === undefined) return end;
    const bytes = joined.get(ts);
    if (bytes === undefined) {
      if (ts > this.lastJoined) this.joined = undefined; // past them all
      return end;
    }
    if (bytes >= DOCKER_PIECE_BYTES) {
      joined.set(ts, bytes - (end - contentStart));
      return end;
    }
    joined.delete(ts);
    const cut = contentStart + bytes;
    return cut < end && startsWithStamp(data, cut) ? cut : end;
  }

  /** One log message: "<ts> <content>" in data[start, end). */
  private message(stream: StreamName, data: Buffer, start: number, end: number): void {
    let sp = start + STAMP_BYTES;
    let ts = sp < end ? this.sameSecond(data, start) : undefined;
    if (ts === undefined) {
      sp = data.indexOf(SP, start);
      ts = sp > start && sp < end ? this.timestamp(data.toString('latin1', start, sp)) : undefined;
    }
    if (ts === undefined) {
      this.malformed++;
      return;
    }
    const contentStart = sp + 1;
    const complete = end > contentStart && data[end - 1] === NL;
    let p = this.partial[stream];
    if (p && p.ts !== ts) {
      // A piece with another timestamp: the pending one was a whole (unterminated) line.
      this.flushPartial(stream);
      p = undefined;
    }
    if (complete && !p) {
      this.emitSlice(stream, ts, data, contentStart, end - 1);
      return;
    }
    if (!p) {
      p = { ts, chunks: [], bytes: 0, raw: 0, truncated: false };
      this.partial[stream] = p;
    }
    this.append(p, data, contentStart, complete ? end - 1 : end);
    if (complete) this.flushPartial(stream);
  }

  /**
   * The timestamp of a message that begins with Docker's 30-byte stamp, a
   * space, in the same second as the last one parsed: read from the bytes.
   * (Decoding the stamp to a string and slicing it cost more per line than
   * the rest of the parsing.) Undefined for anything else, which then goes
   * the general way; both give the same answer where both apply.
   */
  private sameSecond(data: Buffer, start: number): bigint | undefined {
    if (!this.hasLastSecs || data[start + STAMP_BYTES] !== SP || data[start + 19] !== 0x2e || data[start + 29] !== 0x5a) return undefined;
    const secs = this.lastSecs;
    for (let i = 0; i < 19; i++) if (data[start + i] !== secs[i]) return undefined;
    let frac = 0;
    for (let i = start + 20; i < start + 29; i++) {
      const digit = data[i]! - 0x30;
      if (digit < 0 || digit > 9) return undefined;
      frac = frac * 10 + digit;
    }
    return this.lastSecsNs + BigInt(frac);
  }

  private inLastSecond(text: string): boolean {
    if (!this.hasLastSecs) return false;
    for (let i = 0; i < 19; i++) if (text.charCodeAt(i) !== this.lastSecs[i]) return false;
    return true;
  }

  /** Docker's "2026-11-23T12:00:00.123456789Z", with the seconds of the last one cached (lines come in bursts). */
  private timestamp(text: string): bigint | undefined {
    if (text.length === STAMP_BYTES && text.charCodeAt(19) === 0x2e && text.charCodeAt(29) === 0x5a) {
      if (!this.inLastSecond(text)) {
        const ms = Date.parse(`${text.slice(0, 19)}Z`);
        if (Number.isNaN(ms)) return parseRfc3339Ns(text);
        for (let i = 0; i < 19; i++) this.lastSecs[i] = text.charCodeAt(i); // latin1: one byte a character
        this.lastSecsNs = BigInt(ms) * 1_000_000n;
        this.hasLastSecs = true;
      }
      const frac = Number(text.slice(20, 29));
      if (Number.isInteger(frac) && frac >= 0) return this.lastSecsNs + BigInt(frac);
    }
    return parseRfc3339Ns(text);
  }

  private append(p: Partial, data: Buffer, start: number, end: number): void {
    p.raw += end - start;
    const room = this.opts.maxLineBytes - p.bytes;
    const take = Math.min(room, end - start);
    if (take < end - start) p.truncated = true;
    if (take > 0) {
      p.chunks.push(Buffer.from(data.subarray(start, start + take)));
      p.bytes += take;
    }
  }

  private flushPartial(stream: StreamName): void {
    const p = this.partial[stream];
    if (!p) return;
    this.partial[stream] = undefined;
    const buf = p.chunks.length === 1 ? p.chunks[0]! : Buffer.concat(p.chunks, p.bytes);
    // At the end of a TTY stream a pending line is the container's last output, left without newline.
    this.emitSlice(stream, p.ts, buf, 0, buf.length, p.truncated, this.ending && this.opts.tty ? p.raw : undefined);
  }

  private emitSlice(stream: StreamName, ts: bigint, data: Buffer, start: number, end: number, truncated = false, unterminated?: number): void {
    if (end > start && data[end - 1] === CR) end--;
    if (end - start > this.opts.maxLineBytes) {
      end = start + this.opts.maxLineBytes;
      truncated = true;
    }
    if (truncated) end = utf8Boundary(data, start, end);
    const line: ParsedLine = { stream, ts, text: data.toString('utf8', start, end), truncated };
    if (unterminated !== undefined) line.unterminated = unterminated;
    this.opts.onLine(line);
  }
}

/** Moves `end` back so that it does not cut a UTF-8 sequence in two. */
function utf8Boundary(data: Buffer, start: number, end: number): number {
  let i = end;
  // Back over continuation bytes (10xxxxxx), at most 3.
  while (i > start && end - i < 3 && (data[i - 1]! & 0xc0) === 0x80) i--;
  if (i > start) {
    const lead = data[i - 1]!;
    const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (need > 1 && end - (i - 1) < need) return i - 1; // incomplete sequence: drop it
  }
  return end;
}
