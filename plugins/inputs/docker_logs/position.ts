// Where a container's log was read up to, in a form that resumes exactly.
//
// Docker can only restart a log at a time (`since`, inclusive, ns-precise on
// the json-file/local drivers), and its timestamps are not strictly ordered:
// stdout and stderr are stamped by two goroutines (lines come out of order by
// up to milliseconds under load), every piece of a long line carries the time
// of its first piece, and several lines may share one timestamp. So a
// position is not "the last timestamp" but:
//
//   hwm    the highest timestamp read so far (the high-water mark);
//   k      how many lines were read since hwm last rose;
//   since  max(hwm - SLACK, floor): where to restart the log;
//   skip   how many of the lines Docker returns from `since` were already read.
//
// Every line with a timestamp >= since is returned again on restart, in the
// original order; the tracker keeps those timestamps (a sorted window) so
// `skip` is exact. Lines that arrive more than SLACK behind the high-water
// mark would be missed by a restart in between; SLACK is 1 s, far above the
// out-of-order distance seen in practice. `order` ("<hwm>:<k>", zero-padded)
// sorts in reading order and is the same for the same line after a restart,
// which lets an output skip lines it already stored.

export interface SavedPosition {
  /** Restart the log here (ns since the epoch, decimal string). */
  since: string;
  /** Lines at or after `since` that were already read. */
  skip: number;
  /** Highest timestamp read (ns, decimal string; "0" when none). */
  hwm: string;
  /** Lines read since the high-water mark last rose. */
  k: number;
  /** TTY: lines read at or after `since` that had no newline when their stream ended: timestamp (ns) and length (see JoinedAfter). */
  unterminated?: Array<{ ts: string; bytes: number }>;
}

export const SLACK_NS = 1_000_000_000n;

/** The sort key of line `k` at the high-water mark `hwm` (decimal nanoseconds). */
export function orderOf(hwm: string, k: number): string {
  return `${hwm.padStart(20, '0')}:${k.toString().padStart(10, '0')}`;
}

/** Whether position a is further along the same log than b. */
export function isAhead(a: SavedPosition, b: SavedPosition): boolean {
  const ha = BigInt(a.hwm);
  const hb = BigInt(b.hwm);
  return ha > hb || (ha === hb && a.k > b.k);
}

/** Docker's `since` query value: seconds with nine fractional digits. */
export function sinceParam(ns: bigint): string {
  const s = ns / 1_000_000_000n;
  const frac = ns % 1_000_000_000n;
  return `${s}.${frac.toString().padStart(9, '0')}`;
}

export class PositionTracker {
  private hwm = 0n;
  private k = 0;
  /** Lower bound of this reading chain: the `since` the log was opened with. */
  private floor: bigint;
  /** Sorted timestamps of the lines read with ts >= the current `since`. */
  private window: bigint[] = [];
  private head = 0;
  /** Replayed lines still to skip after a restart. */
  private toSkip = 0;
  private resume?: { hwm: bigint; k: number };
  /** Set when the replay was shorter than recorded (log rotated or truncated meanwhile). */
  replayShort = false;
  /** Lines dropped because they were before `floor` (Docker's since is inclusive and exact; this is a guard). */
  beforeFloor = 0;
  /** The floor is set by the first line (reading began with `tail`). */
  private floorFromFirst: boolean;

  constructor(start: { saved?: SavedPosition; floor?: bigint; floorFromFirstLine?: boolean } = {}) {
    this.floorFromFirst = !!start.floorFromFirstLine && !start.saved;
    if (start.saved) {
      this.floor = BigInt(start.saved.since);
      this.toSkip = start.saved.skip;
      this.resume = { hwm: BigInt(start.saved.hwm), k: start.saved.k };
      if (this.toSkip === 0) this.restore();
    } else {
      this.floor = start.floor ?? 0n;
    }
  }

  /** Began with `tail` and has read no line yet: it has no position to resume from. */
  get waitsForFirstLine(): boolean {
    return this.floorFromFirst;
  }

  /** Reading began at the log's first line and no line has been read since: as far as is known, the log holds nothing. */
  get emptyFromStart(): boolean {
    return this.floor === 0n && this.hwm === 0n && !this.resume && !this.floorFromFirst;
  }

  /** The `since` to open the log with. */
  get openSince(): bigint {
    return this.floor;
  }

  private restore(): void {
    if (!this.resume) return;
    this.hwm = this.resume.hwm;
    this.k = this.resume.k;
    this.resume = undefined;
  }

  /**
   * Takes the next line's timestamp, in stream order. Returns false when the
   * line was already read before a restart (or lies before the floor).
   */
  accept(ts: bigint): boolean {
    if (this.floorFromFirst) {
      this.floorFromFirst = false;
      this.floor = ts;
    }
    if (ts < this.floor) {
      this.beforeFloor++;
      return false;
    }
    if (this.toSkip > 0) {
      if (ts <= this.resume!.hwm) {
        this.toSkip--;
        this.insert(ts);
        if (this.toSkip === 0) this.restore();
        return false;
      }
      // A line newer than everything read before, while replayed lines are
      // still expected: the replay is shorter than recorded.
      this.replayShort = true;
      this.toSkip = 0;
      this.restore();
    }
    if (ts > this.hwm) {
      this.hwm = ts;
      this.k = 0;
    } else this.k++;
    this.insert(ts);
    this.trim();
    return true;
  }

  private insert(ts: bigint): void {
    const w = this.window;
    if (w.length === this.head || ts >= w[w.length - 1]!) {
      w.push(ts);
      return;
    }
    // Out of order: binary search for the insertion point (rare, near the end).
    let lo = this.head;
    let hi = w.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (w[mid]! <= ts) lo = mid + 1;
      else hi = mid;
    }
    w.splice(lo, 0, ts);
  }

  private get since(): bigint {
    const s = this.hwm - SLACK_NS;
    return s > this.floor ? s : this.floor;
  }

  private trim(): void {
    const since = this.since;
    const w = this.window;
    while (this.head < w.length && w[this.head]! < since) this.head++;
    if (this.head > 8192 && this.head * 2 > w.length) {
      this.window = w.slice(this.head);
      this.head = 0;
    }
  }

  /** hwm in decimal, kept for the value it was written from: position() and order() both need it for every line (~50 ns a conversion). */
  private hwmText = { of: 0n, text: '0' };

  private hwmString(): string {
    const memo = this.hwmText;
    if (memo.of !== this.hwm) {
      memo.of = this.hwm;
      memo.text = this.hwm.toString();
    }
    return memo.text;
  }

  /** Sort key of the last accepted line. */
  order(): string {
    return orderOf(this.hwmString(), this.k);
  }

  /** Position after the last accepted line (what to save once it is delivered). */
  position(): SavedPosition {
    if (this.resume) {
      // Still replaying: nothing new was read; the recorded position stands.
      return { since: this.floor.toString(), skip: this.window.length - this.head + this.toSkip, hwm: this.resume.hwm.toString(), k: this.resume.k };
    }
    this.trim();
    return { since: this.since.toString(), skip: this.window.length - this.head, hwm: this.hwmString(), k: this.k };
  }
}
