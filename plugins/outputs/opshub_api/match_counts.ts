// Search counts kept between requests. `count` must be every match in the
// window, so a search reads the message of every line its level and
// container let through; over a day that is most of its cost. The lines of
// a stretch of time that has passed rarely change, so their count is kept,
// and a later search over an overlapping window (a dashboard polling the
// same search, the window sliding with the clock) reads the messages of
// only what it has not counted yet: the newest seconds, the window's first
// partial minute, and stretches whose lines changed.
//
// A kept count is trusted only while the lines of its stretch are the same
// as when it was counted. The store says which stretches of time its lines
// changed in since a version (outputs.duckdb's ChangeLog: it is the file's
// only writer), so a search forgets the touched spans and reads nothing to
// trust the rest. Where the store cannot say (too many changes since), the
// lines of every kept stretch (all of them, whatever the search's level and
// container) are checked instead: same number and same sum of timestamps,
// with a read of the timestamp column only. Lines are only appended or
// deleted, never updated, so a late line or a retention delete shows in one
// or the other.
//
// Counts are taken per second; checked by fingerprint, a second is kept once
// it ended SETTLE_NS ago (lines still on their way would change it), with
// the store's changes at once. Kept seconds older than RECENT_NS merge up to
// a clock minute, so a window of a day starting at any time recounts at most
// its first partial minute, and beyond a day up to a clock hour, which bounds
// their number (a week is ~2,000 spans); newer ones stay apart, so the newest
// results can be read from the few seconds that hold them, and a late line
// makes only the recent run be counted again.

export const BUCKET_NS = 1_000_000_000n;
export const SETTLE_NS = 2_000_000_000n;
export const RECENT_NS = 600_000_000_000n;
export const MINUTE_NS = 60_000_000_000n;
export const HOUR_NS = 3_600_000_000_000n;
/** Kept spans this recent merge per clock minute, older ones per clock hour (a week is then ~2,000 spans). */
export const MINUTES_FOR_NS = 86_400_000_000_000n;

/** From when on (a whole clock hour) kept spans merge per minute rather than per hour, for a search at `nowNs`. */
export const minutesFrom = (nowNs: bigint): bigint => bucketOf(nowNs - MINUTES_FOR_NS, HOUR_NS) * HOUR_NS;

/** How long a kept span at `ns` may grow: a clock hour before `minutes`, a clock minute from it on. */
export const spanSize = (ns: bigint, minutes: bigint): bigint => (ns < minutes ? HOUR_NS : MINUTE_NS);

/**
 * A counted stretch [from, to): its lines (all levels and containers) and
 * their timestamps' sum, its fingerprint (`lines` NaN when counted without
 * one, trusting the store's change log: it never passes a check), and the
 * search's matches among them.
 */
export interface Counted {
  from: bigint;
  to: bigint;
  lines: number;
  tsSum: bigint;
  matches: number;
}

/** Floor division, also below the epoch. */
export const bucketOf = (ns: bigint, size = BUCKET_NS): bigint => (ns >= 0n ? ns / size : (ns - size + 1n) / size);

/** Runs of spans that follow each other without a gap; spans from `cut` on start a run of their own. */
export function chains(spans: Counted[], cut: bigint): Counted[][] {
  const runs: Counted[][] = [];
  for (const s of spans) {
    const last = runs.at(-1);
    if (last && last.at(-1)!.to === s.from && (s.from < cut || last[0]!.from >= cut)) last.push(s);
    else runs.push([s]);
  }
  return runs;
}

/** The kept spans of one search: sorted, disjoint, none longer than the clock minute (or, older than a day, hour) it lies in. */
export class SearchCounts {
  private spans: Counted[] = [];
  /** The store's LogChanges version the spans were last known good at. */
  checkedAt?: number;
  /** Bumped by every change of the spans, so a search can tell another one changed them meanwhile. */
  generation = 0;

  /**
   * After a search that began at `generation` counted its spans at `version`:
   * the spans are known good at that version, or, if another search changed
   * them meanwhile, at the older of the two.
   */
  checked(version: number | undefined, generation: number): void {
    const alone = this.generation === generation + 1; // only our own add()
    this.checkedAt = version === undefined || alone || this.checkedAt === undefined ? version : Math.min(version, this.checkedAt);
  }

  constructor(private maxSpans = 10_000) {}

  /**
   * Matches in whole days archived to Parquet, by day and the archive's
   * version of it (its row count and when it was written): a day archived
   * again (late lines) has a new version, so its old count is never reused.
   */
  readonly archivedDays = new Map<string, number>();

  /** The spans wholly inside [from, to), oldest first. */
  within(from: bigint, to: bigint): Counted[] {
    return this.spans.filter((s) => s.from >= from && s.to <= to);
  }

  forget(gone: Set<Counted>): void {
    if (gone.size) this.spans = this.spans.filter((s) => !gone.has(s));
    this.generation++;
  }

  /** Forgets the spans that overlap any of the ranges [from, to]. */
  forgetTouched(touched: Array<[bigint, bigint]>): void {
    if (touched.length) this.spans = this.spans.filter((s) => !touched.some(([from, to]) => from < s.to && to >= s.from));
    this.generation++;
  }

  /**
   * Keeps newly counted spans (sorted, disjoint), replacing any they
   * overlap, and merges neighbours that end before `recent` within a clock
   * minute, or a clock hour before `minutes` (see spanSize). Linear: both
   * lists are sorted.
   */
  add(fresh: Counted[], recent: bigint, minutes = -(2n ** 63n)): void {
    this.generation++;
    if (!fresh.length) return;
    const kept: Counted[] = [];
    let j = 0;
    for (const s of this.spans) {
      while (j < fresh.length && fresh[j]!.to <= s.from) j++;
      if (!(j < fresh.length && fresh[j]!.from < s.to)) kept.push(s);
    }
    const merged: Counted[] = [];
    const push = (s: Counted) => {
      const last = merged.at(-1);
      const size = spanSize(s.to - 1n, minutes);
      if (last && last.to === s.from && s.to <= recent && (last.from < minutes) === (s.to - 1n < minutes) && bucketOf(last.from, size) === bucketOf(s.to - 1n, size)) {
        merged[merged.length - 1] = { from: last.from, to: s.to, lines: last.lines + s.lines, tsSum: last.tsSum + s.tsSum, matches: last.matches + s.matches };
      } else merged.push(s);
    };
    let i = 0;
    j = 0;
    while (i < kept.length || j < fresh.length) {
      if (j >= fresh.length || (i < kept.length && kept[i]!.from < fresh[j]!.from)) push(kept[i++]!);
      else push(fresh[j++]!);
    }
    this.spans = merged.length > this.maxSpans ? merged.slice(merged.length - this.maxSpans) : merged;
  }

  get size(): number {
    return this.spans.length;
  }
}

/** Kept counts per search (text, regex, level, container); the least recently used searches are forgotten first. */
export class MatchCounts {
  private bySearch = new Map<string, SearchCounts>();

  constructor(private maxSearches = 64) {}

  /** The kept counts of one search (created empty), marked as just used. */
  of(key: string): SearchCounts {
    let kept = this.bySearch.get(key);
    if (kept) this.bySearch.delete(key);
    else kept = new SearchCounts();
    this.bySearch.set(key, kept);
    while (this.bySearch.size > this.maxSearches) this.bySearch.delete(this.bySearch.keys().next().value!);
    return kept;
  }

  get size(): number {
    return this.bySearch.size;
  }
}
