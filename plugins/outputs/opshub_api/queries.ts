// The API's reads from the store (outputs.duckdb's tables), each on a
// connection of its own, with every value bound as a parameter: the SQL text
// is put together only from fixed clauses of this file, never from input.

import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api';
import { HttpError } from '../../../core/http.ts';
import { errorMessage } from '../../../core/log.ts';
import type { LogChanges, SqlStore } from '../../common/providers.ts';
import { interruptGuard } from '../../common/interrupt_guard.ts';
import { BUCKET_NS, bucketOf, chains, HOUR_NS, MatchCounts, MINUTE_NS, minutesFrom, RECENT_NS, SETTLE_NS, spanSize, type Counted, type SearchCounts } from './match_counts.ts';

const NS_PER_MS = 1_000_000n;
export const msToNs = (ms: number): bigint => BigInt(Math.floor(ms)) * NS_PER_MS;

/** Positional parameters: `p(value)` gives "$n" for the SQL text and keeps the value. */
class Params {
  readonly values: DuckDBValue[] = [];
  p(value: DuckDBValue): string {
    this.values.push(value);
    // A JS bigint binds as HUGEINT, which would turn arithmetic and comparisons with BIGINT columns into 128-bit ones (division ~100x slower).
    return typeof value === 'bigint' ? `$${this.values.length}::BIGINT` : `$${this.values.length}`;
  }
}

export type Row = Record<string, unknown>;

/** DuckDB's error text without its caret display. */
function duckMessage(err: unknown): string {
  return errorMessage(err).split('\n\nLINE ')[0]!.trim();
}

export interface ReadOptions {
  signal?: AbortSignal;
  timeoutMs: number;
}

/**
 * Runs `fn` on a read connection of the store; the statement is interrupted
 * when the client goes away or after the timeout (503).
 */
export async function withReader<T>(store: SqlStore, opts: ReadOptions, fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
  if (!store.isOpen) throw new HttpError(503, 'unavailable', 'the store (outputs.duckdb) is not open');
  return store.read(async (conn) => {
    const guard = interruptGuard(conn, opts.timeoutMs, opts.signal);
    try {
      return await fn(conn);
    } catch (err) {
      if (guard.timedOut) throw new HttpError(503, 'timeout', `the query ran longer than ${opts.timeoutMs} ms and was interrupted`);
      throw err;
    } finally {
      guard.release();
    }
  });
}

async function rows(conn: DuckDBConnection, sql: string, params: Params): Promise<Row[]> {
  const reader = await conn.runAndReadAll(sql, params.values);
  return reader.getRowObjectsJS() as Row[];
}

const n = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const nn = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

// --- log lines -----------------------------------------------------------------

export interface LogRow {
  ns: bigint;
  container: string;
  level: string;
  message: string;
  source: string;
}

/**
 * The newest `limit` rows of `where`, in one statement: the time of the
 * `limit`-th newest (an aggregate over the timestamp column), then the rows
 * from that time on. DuckDB's ORDER BY … LIMIT (top-N) costs several
 * milliseconds even over a few rows, and reads every projected column of
 * the range; the aggregate costs ~15 ns a line.
 */
async function newestRows(conn: DuckDBConnection, columns: string, where: (ps: Params) => string, limit: number, table = 'opshub_logs'): Promise<Row[]> {
  const ps = new Params();
  const lim = ps.p(limit);
  const found = await rows(
    conn,
    `WITH t AS (SELECT list_min(max(timestamp_ns, ${lim})) AS since FROM ${table} WHERE ${where(ps)})
     SELECT ${columns} FROM ${table} WHERE ${where(ps)} AND timestamp_ns >= (SELECT since FROM t) ORDER BY timestamp_ns DESC`,
    ps,
  );
  return found.slice(0, limit);
}

/** How far back a tail looks, widening until it has its lines: a busy store has them in the last second. */
const TAIL_WINDOWS_MS = [1_000, 10_000, 60_000, 600_000, 3_600_000, 86_400_000, 7 * 86_400_000, Number.POSITIVE_INFINITY];

/** Lines of one container (or all), newest `tail`, returned oldest first. Recent windows first, widened until enough lines. */
export async function tailLogs(conn: DuckDBConnection, opts: { container: string; level?: string; tail: number; nowMs: number }): Promise<LogRow[]> {
  let found: Row[] = [];
  for (const w of TAIL_WINDOWS_MS) {
    const where = (ps: Params) => {
      const all = ['TRUE'];
      if (Number.isFinite(w)) all.push(`timestamp_ns >= ${ps.p(msToNs(opts.nowMs - w))}`);
      if (opts.container !== 'all') all.push(`COALESCE(container_name, source) = ${ps.p(opts.container)}`);
      if (opts.level) all.push(`level = ${ps.p(opts.level)}`);
      return all.join(' AND ');
    };
    found = await newestRows(conn, 'timestamp_ns, COALESCE(container_name, source) AS container, level, message, source', where, opts.tail);
    if (found.length >= opts.tail) break;
  }
  return found.reverse().map((r) => ({
    ns: r.timestamp_ns as bigint,
    container: String(r.container ?? ''),
    level: String(r.level ?? 'info'),
    message: String(r.message ?? ''),
    source: String(r.source ?? ''),
  }));
}

export interface SearchOptions {
  fromMs: number;
  toMs: number;
  query?: string;
  regex: boolean;
  container?: string;
  level?: string;
  limit: number;
}

export interface SearchRow extends LogRow {
  category: string | null;
  containerId: string | null;
  attributes: Record<string, unknown>;
}

/** The time range, level and container: columns DuckDB filters in the scan, reading no message. */
function selectWhere(o: SearchOptions, ps: Params, fromNs: bigint, toNs: bigint): string {
  const where = [`timestamp_ns >= ${ps.p(fromNs)}`, `timestamp_ns < ${ps.p(toNs)}`];
  if (o.level) where.push(`level = ${ps.p(o.level)}`);
  if (o.container) where.push(`COALESCE(container_name, source) = ${ps.p(o.container)}`);
  return where.join(' AND ');
}

/**
 * The text match on `message`, or TRUE without a query. DuckDB's ILIKE is
 * LIKE on both sides lower-cased, so contains(lower(message), lower(query))
 * is the same case-insensitive match, with no wildcards to escape, and
 * costs about half as much per line.
 */
function textMatch(o: SearchOptions, ps: Params): string {
  if (!o.query) return 'TRUE';
  if (o.regex) return `regexp_matches(message, ${ps.p(o.query)}, 'i')`;
  return `contains(lower(message), lower(${ps.p(o.query)}))`;
}

const searchKey = (o: SearchOptions) => JSON.stringify([o.query ?? '', o.query ? o.regex : false, o.level ?? '', o.container ?? '']);
const big = (v: unknown): bigint => (v === null || v === undefined ? 0n : BigInt(v as bigint | number | string));

type BucketCount = Omit<Counted, 'from' | 'to'>;

/** A stretch of the window [from, to) and the matches in it. */
interface Piece {
  from: bigint;
  to: bigint;
  matches: number;
}

/** Most runs of kept spans checked in one search; older ones are counted afresh. */
const MAX_KEPT_RUNS = 8;

/** The stretches of [fromNs, toNs) that the sorted spans leave out. */
function gapsBetween(spans: Counted[], fromNs: bigint, toNs: bigint): Array<[bigint, bigint]> {
  const gaps: Array<[bigint, bigint]> = [];
  let at = fromNs;
  for (const s of spans) {
    if (at < s.from) gaps.push([at, s.from]);
    at = s.to;
  }
  if (at < toNs) gaps.push([at, toNs]);
  return gaps;
}

/**
 * Where counts read lines: opshub_logs joins every line with its stream (a
 * hash-join probe a row), which only a container filter needs; the lines
 * table alone has the time, level and message.
 */
const countedIn = (o?: SearchOptions) => (o?.container ? 'opshub_logs' : 'opshub_log_lines');

/** Only the time range: the lines a kept span's fingerprint covers, whatever a search's level and container. */
const inRange = (ps: Params, fromNs: bigint, toNs: bigint) => `timestamp_ns >= ${ps.p(fromNs)} AND timestamp_ns < ${ps.p(toNs)}`;

/**
 * One statement, so one snapshot and one round trip: for each run of kept
 * spans, the number and timestamp sum of its lines now (a read of the
 * timestamp column only); for each gap, the same per span to keep, and the
 * matches. The text match is an aggregate's FILTER, which DuckDB evaluates
 * after the scan, on the lines the level and container let through; as a
 * WHERE clause pushed into the scan it costs about twice as much.
 */
async function checkAndCount(
  conn: DuckDBConnection,
  o: SearchOptions,
  runs: Counted[][],
  gaps: Array<{ from: bigint; to: bigint; keepFrom?: bigint; keepTo?: bigint }>,
  recent: bigint,
  minutes: bigint,
  fingerprints: boolean,
) {
  const ps = new Params();
  const matches = `count(*) FILTER (WHERE hit) AS matches`;
  const parts = [
    ...runs.map((run, i) => `SELECT 'run' AS part, ${i} AS k, count(*) AS lines, sum(timestamp_ns) AS ts_sum, 0 AS matches FROM ${countedIn()} WHERE ${inRange(ps, run[0]!.from, run.at(-1)!.to)}`),
    ...gaps.flatMap((g, j) => {
      const selected = `SELECT timestamp_ns, ${textMatch(o, ps)} AS hit FROM ${countedIn(o)} WHERE ${selectWhere(o, ps, g.from, g.to)}`;
      if (g.keepFrom === undefined) return [`SELECT 'gap' AS part, ${j} AS k, 0 AS lines, 0 AS ts_sum, ${matches} FROM (${selected})`];
      // The key of the span a line is kept in (see keepable): the second it starts, per hour before `minutes`, per minute before `recent`, per second after; -1 before any.
      const key = () => {
        const keep = ps.p(g.keepFrom!);
        return `CASE WHEN timestamp_ns < ${keep} THEN -1
          WHEN timestamp_ns < ${ps.p(recent)} AND timestamp_ns < ${ps.p(g.keepTo!)} THEN greatest(CASE WHEN timestamp_ns < ${ps.p(minutes)} THEN (timestamp_ns // ${ps.p(HOUR_NS)}) * ${ps.p(HOUR_NS)}
                                 ELSE (timestamp_ns // ${ps.p(MINUTE_NS)}) * ${ps.p(MINUTE_NS)} END, ${keep}) // ${ps.p(BUCKET_NS)}
          ELSE timestamp_ns // ${ps.p(BUCKET_NS)} END`;
      };
      // Built only when used: each part binds its own parameters.
      const spans = () => `SELECT 'span' AS part, k, count(*) AS lines, sum(timestamp_ns) AS ts_sum, 0 AS matches
           FROM (SELECT timestamp_ns, ${key()} AS k FROM ${countedIn()} WHERE ${inRange(ps, g.from, g.to)}) WHERE k <> -1 GROUP BY k`;
      return [
        ...(fingerprints ? [spans()] : []),
        `SELECT CASE WHEN k = -1 THEN 'gap' ELSE 'bucket' END AS part, CASE WHEN k = -1 THEN ${j} ELSE k END AS k, 0 AS lines, 0 AS ts_sum, ${matches}
           FROM (SELECT hit, ${key()} AS k FROM (${selected})) GROUP BY k`,
      ];
    }),
  ];
  const found = parts.length ? await rows(conn, parts.join(' UNION ALL '), ps) : [];
  const now = runs.map(() => ({ lines: 0, tsSum: 0n }));
  const buckets = new Map<bigint, BucketCount>();
  const bucket = (k: unknown) => buckets.get(big(k)) ?? buckets.set(big(k), { lines: 0, tsSum: 0n, matches: 0 }).get(big(k))!;
  const whole = new Map<number, number>();
  for (const r of found) {
    if (r.part === 'run') now[Number(r.k)] = { lines: n(r.lines), tsSum: big(r.ts_sum) };
    else if (r.part === 'gap') whole.set(Number(r.k), n(r.matches));
    else if (r.part === 'span') Object.assign(bucket(r.k), { lines: n(r.lines), tsSum: big(r.ts_sum) });
    else bucket(r.k).matches = n(r.matches);
  }
  return { now, buckets, whole };
}

/** The spans of a run whose lines changed since they were counted (a range join of the lines with the spans). */
async function changedSpans(conn: DuckDBConnection, run: Counted[]): Promise<Counted[]> {
  const ps = new Params();
  const spans = run.map((s, i) => `(${ps.p(s.from)}::BIGINT, ${ps.p(s.to)}::BIGINT, ${i})`).join(', ');
  const found = await rows(
    conn,
    `SELECT s.i, count(*) AS lines, sum(l.timestamp_ns) AS ts_sum
       FROM ${countedIn()} l JOIN (VALUES ${spans}) s(f, t, i) ON l.timestamp_ns >= s.f AND l.timestamp_ns < s.t
      WHERE ${inRange(ps, run[0]!.from, run.at(-1)!.to)} GROUP BY s.i`,
    ps,
  );
  const now = new Map(found.map((r) => [Number(r.i), { lines: n(r.lines), tsSum: big(r.ts_sum) }]));
  return run.filter((span, i) => (now.get(i)?.lines ?? 0) !== span.lines || (now.get(i)?.tsSum ?? 0n) !== span.tsSum);
}

const up = (ns: bigint, size: bigint) => bucketOf(ns + size - 1n, size) * size;
const down = (ns: bigint, size: bigint) => bucketOf(ns, size) * size;

/**
 * The spans of the gaps worth keeping, still empty: whole seconds that have
 * settled, outside the window's first, partial span unless recent (a
 * later search starts later and could not use a span reaching before its
 * start); a span per clock hour before `minutes`, per clock minute before
 * RECENT_NS, per second after it.
 */
function keepable(gaps: Array<[bigint, bigint]>, fromNs: bigint, nowNs: bigint, settleNs: bigint, minutes: bigint): Counted[] {
  const firstSpan = up(fromNs, spanSize(fromNs, minutes));
  const settled = down(nowNs - settleNs, BUCKET_NS);
  const recent = down(nowNs - RECENT_NS, BUCKET_NS);
  const spans: Counted[] = [];
  for (const [a, z] of gaps) {
    const lowest = firstSpan < recent ? firstSpan : recent;
    let at = up(a, BUCKET_NS) > lowest ? up(a, BUCKET_NS) : lowest;
    const end = down(z, BUCKET_NS) < settled ? down(z, BUCKET_NS) : settled;
    while (at < end) {
      const size = spanSize(at, minutes);
      const spanEnd = down(at, size) + size;
      let to = at < recent ? (recent < spanEnd ? recent : spanEnd) : at + BUCKET_NS;
      if (to > end) to = end;
      spans.push({ from: at, to, lines: 0, tsSum: 0n, matches: 0 });
      at = to;
    }
  }
  return spans;
}

/**
 * The window's matches as pieces of time (see match_counts.ts): kept spans
 * whose lines are unchanged, and the gaps between them counted now, in one
 * statement; what has settled is kept. With the store's `changes`, the spans
 * it touched since they were last known good are forgotten and the others
 * trusted as they are. Otherwise their lines are checked in the same
 * statement; when a run of kept spans changed, the changed spans are
 * forgotten and the window counted again (the third time without kept spans
 * at all).
 */
async function matchesOverTime(conn: DuckDBConnection, o: SearchOptions, fromNs: bigint, toNs: bigint, kept: SearchCounts, nowNs: bigint, changes?: LogChanges): Promise<Piece[]> {
  // Read before the statement, which then sees every change up to it.
  const version = changes?.version;
  const touched = changes && kept.checkedAt !== undefined ? changes.since(kept.checkedAt) : undefined;
  if (touched) kept.forgetTouched(touched);
  // The log answers for every kept span (or there are none yet): no span is checked, and none needs a fingerprint.
  const trustLog = touched !== undefined || (changes !== undefined && kept.size === 0);
  const generation = kept.generation;
  const minutes = minutesFrom(nowNs);
  for (let attempt = 0; ; attempt++) {
    const runs = trustLog || attempt >= 2 ? [] : chains(kept.within(fromNs, toNs), nowNs - RECENT_NS).slice(-MAX_KEPT_RUNS);
    const trusted = trustLog ? kept.within(fromNs, toNs) : runs.flat();
    const between = gapsBetween(trusted, fromNs, toNs);
    const fresh = keepable(between, fromNs, nowNs, trustLog ? 0n : SETTLE_NS, minutes);
    // Each gap is counted per span to keep, and what lies before its first span (the window's first, partial minute or hour) as a whole.
    const gaps = between.map(([from, to]) => {
      const mine = fresh.filter((s) => s.from >= from && s.to <= to);
      return { from, to, keepFrom: mine[0]?.from, keepTo: mine.at(-1)?.to };
    });
    // Told what changes, the spans need no fingerprint (NaN: never equal, should one be checked later).
    const { now, buckets, whole } = await checkAndCount(conn, o, runs, gaps, down(nowNs - RECENT_NS, BUCKET_NS), minutes, !trustLog);
    const changed = runs.filter((run, i) => run.reduce((a, s) => a + s.lines, 0) !== now[i]!.lines || run.reduce((a, s) => a + s.tsSum, 0n) !== now[i]!.tsSum);
    if (changed.length) {
      for (const run of changed) kept.forget(new Set(await changedSpans(conn, run)));
      continue;
    }
    const pieces: Piece[] = trusted.map((s) => ({ from: s.from, to: s.to, matches: s.matches }));
    for (const [j, matches] of whole) if (matches) pieces.push({ from: gaps[j]!.from, to: gaps[j]!.keepFrom ?? gaps[j]!.to, matches });
    const counted = [...buckets].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    let f = 0;
    for (const [b, c] of counted) {
      const at = b * BUCKET_NS;
      while (f < fresh.length && fresh[f]!.to <= at) f++;
      const span = fresh[f] && fresh[f]!.from <= at ? fresh[f] : undefined;
      if (span) {
        span.lines += c.lines;
        span.tsSum += c.tsSum;
        span.matches += c.matches;
      }
      const to = span ? span.to : at + BUCKET_NS;
      if (c.matches) pieces.push({ from: at > fromNs ? at : fromNs, to: to < toNs ? to : toNs, matches: c.matches });
    }
    if (trustLog) for (const span of fresh) span.lines = Number.NaN;
    kept.add(fresh, nowNs - RECENT_NS, minutes);
    kept.checked(version, generation);
    return pieces;
  }
}

const DAY_NS = 86_400_000_000_000n;
/** Most archived days' counts one search keeps. */
const MAX_ARCHIVED_DAYS = 1_000;
const isoDay = (ns: bigint) => new Date(Number(ns / NS_PER_MS)).toISOString().slice(0, 10);

/**
 * The matches among the days retention archived to Parquet that overlap
 * [fromNs, toNs), a piece per day (the database leg counts the lines still in
 * the database, late ones of an archived day included, so nothing is counted
 * twice). A day archived once does not change until it is archived again, so
 * the count of a day wholly in the window is kept per search and version.
 */
async function archivedPieces(conn: DuckDBConnection, o: SearchOptions, fromNs: bigint, toNs: bigint, kept: SearchCounts): Promise<Piece[]> {
  const ds = new Params();
  const days = await rows(
    conn,
    `SELECT CAST(day AS VARCHAR) AS day, "rows", CAST(updated_at AS VARCHAR) AS updated FROM _opshub_archive
     WHERE table_name = 'opshub_logs' AND pending IS NULL AND day >= CAST(${ds.p(isoDay(fromNs))} AS DATE) AND day <= CAST(${ds.p(isoDay(toNs - 1n))} AS DATE) ORDER BY day`,
    ds,
  );
  if (days.length === 0) return [];
  const pieces: Piece[] = [];
  const toCount: Array<{ from: bigint; to: bigint; key?: string }> = [];
  for (const d of days) {
    const start = BigInt(Date.parse(`${String(d.day)}T00:00:00Z`)) * NS_PER_MS;
    const from = start > fromNs ? start : fromNs;
    const to = start + DAY_NS < toNs ? start + DAY_NS : toNs;
    const whole = from === start && to === start + DAY_NS;
    const key = whole ? `${String(d.day)}|${String(d.rows)}|${String(d.updated)}` : undefined;
    const known = key === undefined ? undefined : kept.archivedDays.get(key);
    if (known !== undefined) pieces.push({ from, to, matches: known });
    else toCount.push({ from, to, key });
  }
  if (toCount.length) {
    const ps = new Params();
    const within = toCount.map(({ from, to }) => `(timestamp_ns >= ${ps.p(from)} AND timestamp_ns < ${ps.p(to)})`).join(' OR ');
    const counted = await rows(
      conn,
      `SELECT timestamp_ns // ${DAY_NS} AS d, count(*) AS n FROM opshub_logs_archive
       WHERE ${selectWhere(o, ps, toCount[0]!.from, toCount.at(-1)!.to)} AND (${within}) AND ${textMatch(o, ps)} GROUP BY d`,
      ps,
    ).catch((err: unknown) => {
      // The first archived day, recorded a moment before retention creates the view over the files.
      if (/Catalog Error/i.test(duckMessage(err))) return undefined;
      throw err;
    });
    if (counted === undefined) return pieces;
    const byDay = new Map(counted.map((r) => [big(r.d), n(r.n)]));
    if (kept.archivedDays.size > MAX_ARCHIVED_DAYS) kept.archivedDays.clear();
    for (const c of toCount) {
      const matches = byDay.get(c.from / DAY_NS) ?? 0;
      if (c.key !== undefined) kept.archivedDays.set(c.key, matches);
      pieces.push({ from: c.from, to: c.to, matches });
    }
  }
  return pieces;
}

/** Most stretches a results statement names one by one; more are read as one range. */
const MAX_RESULT_RANGES = 32;

/**
 * The window's matches over time (see matchesOverTime), whose sum is
 * `count`; then the newest `limit` rows, read only from the newest stretches
 * that hold that many (the seconds and minutes in between, whatever they hold,
 * are not read). Two statements: a line written between them can be among
 * the results but not yet in `count`.
 */
export async function searchLogs(
  conn: DuckDBConnection,
  o: SearchOptions,
  counts = new MatchCounts(),
  nowMs = Date.now(),
  changes?: LogChanges,
): Promise<{ rows: SearchRow[]; count: number }> {
  const fromNs = msToNs(o.fromMs);
  const toNs = msToNs(o.toMs);
  try {
    const kept = counts.of(searchKey(o));
    const pieces = await matchesOverTime(conn, o, fromNs, toNs, kept, msToNs(nowMs), changes);
    const archived = await archivedPieces(conn, o, fromNs, toNs, kept);
    pieces.push(...archived);
    pieces.sort((a, b) => (a.from < b.from ? 1 : a.from > b.from ? -1 : 0));
    let count = 0;
    let newest = 0;
    /** The stretches holding the newest `limit` matches, newest first, neighbours merged. */
    const ranges: Array<[bigint, bigint]> = [];
    for (const piece of pieces) {
      count += piece.matches;
      if (newest < o.limit && piece.matches > 0) {
        newest += piece.matches;
        const last = ranges.at(-1);
        if (last && last[0] === piece.to) last[0] = piece.from;
        else ranges.push([piece.from, piece.to]);
      }
    }
    let found: Row[] = [];
    if (count > 0) {
      const columns = 'timestamp_ns, COALESCE(container_name, source) AS container, level, message, source, category, container_id, attributes';
      const since = ranges.at(-1)![0];
      const until = ranges[0]![1];
      const within = (ps: Params) =>
        ranges.length === 1 || ranges.length > MAX_RESULT_RANGES ? 'TRUE' : `(${ranges.map(([a, z]) => `(timestamp_ns >= ${ps.p(a)} AND timestamp_ns < ${ps.p(z)})`).join(' OR ')})`;
      // Results that reach into an archived day are read with the Parquet files (the _all view).
      const table = archived.some((p) => p.matches > 0 && p.to > since) ? 'opshub_logs_all' : 'opshub_logs';
      found = await newestRows(conn, columns, (ps) => `${selectWhere(o, ps, since, until)} AND ${within(ps)} AND ${textMatch(o, ps)}`, o.limit, table);
    }
    return {
      count,
      rows: found.map((r) => ({
        ns: r.timestamp_ns as bigint,
        container: String(r.container ?? ''),
        level: String(r.level ?? 'info'),
        message: String(r.message ?? ''),
        source: String(r.source ?? ''),
        category: (r.category as string | null) ?? null,
        containerId: (r.container_id as string | null) ?? null,
        attributes: parseJson(r.attributes),
      })),
    };
  } catch (err) {
    if (o.regex && /regular expression|regex|missing \)|invalid/i.test(duckMessage(err)) && !/interrupt/i.test(duckMessage(err))) {
      throw new HttpError(400, 'bad_request', `query parameter query is not a valid regular expression: ${duckMessage(err)}`, { parameter: 'query' });
    }
    throw err;
  }
}

function parseJson(v: unknown): Record<string, unknown> {
  if (typeof v !== 'string') return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  try {
    const parsed = JSON.parse(v) as unknown;
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

// --- sessions ----------------------------------------------------------------------

export interface Session {
  username: string;
  model: string | null;
  session_id: string;
  started_ms: number;
  last_ms: number;
  request_count: number;
  ip_address: string | null;
  ended_by_logout: boolean;
}

/** The tables the analytics read: OpsHub's own, or their `_all` views (the database and the Parquet days together). */
export interface Sources {
  logs: string;
  activity: string;
  metrics: string;
}

export const DATABASE_ONLY: Sources = { logs: 'opshub_logs', activity: 'opshub_activity', metrics: 'opshub_metrics' };

/**
 * The tables for a window starting at `fromMs`: a table whose days retention
 * has archived to Parquet reaches into the window is read through its `_all`
 * view, so a period longer than `active_days` counts the archived days too.
 * Otherwise the table itself (no Parquet is opened).
 */
export async function sourcesFor(conn: DuckDBConnection, fromMs: number): Promise<Sources> {
  const ps = new Params();
  const found = await rows(conn, `SELECT DISTINCT table_name FROM _opshub_archive WHERE day >= CAST(epoch_ms(CAST(${ps.p(Math.floor(fromMs))} AS BIGINT)) AS DATE)`, ps);
  const archived = new Set(found.map((r) => String(r.table_name)));
  const pick = (table: string) => (archived.has(table) ? `${table}_all` : table);
  return { logs: pick('opshub_logs'), activity: pick('opshub_activity'), metrics: pick('opshub_metrics') };
}

/** Actions that open or close a session rather than use it. */
const NOT_REQUESTS = ['login', 'logout', 'signup', 'session_start', 'session_end'];

/**
 * The CTEs that end in `sess(who, started, last, model, session_id,
 * ip_address, requests, ended)`: sessions per user from the activity table
 * (session events and lines naming a user). A gap over the idle timeout, a
 * logout, or a login starts a new one.
 *
 * A window function over every activity row costs ~0.5 µs a row (a sort per
 * user and a running sum), so rows are first summed per user and bucket of
 * min(idle, 1 min): two rows of a bucket are closer than the idle timeout,
 * so no session can start inside one unless a login or logout is there.
 * Buckets holding one stay row by row. The sessions are the same as from the
 * rows themselves; the window functions run over ~100x fewer units.
 */
function sessionsCte(ps: Params, fromNs: bigint, idleNs: bigint, activity: string): string {
  const from = ps.p(fromNs);
  const idle = ps.p(idleNs);
  const bucket = ps.p(idleNs < MINUTE_NS ? (idleNs > 0n ? idleNs : 1n) : MINUTE_NS);
  const list = NOT_REQUESTS.map((a) => ps.p(a)).join(', ');
  const login = ps.p('login');
  const logout = ps.p('logout');
  const marks = `${login}, ${logout}`;
  return `
    a AS (
      SELECT COALESCE(username, email, user_id) AS who, model, lower(COALESCE(action, '')) AS action, session_id, ip_address,
             timestamp_ns AS ts, timestamp_ns // ${bucket} AS k
        FROM ${activity}
       WHERE timestamp_ns >= ${from} AND COALESCE(username, email, user_id) IS NOT NULL
    ), marked AS (
      SELECT DISTINCT who, k FROM a WHERE action IN (${marks})
    ), u AS (
      SELECT who, min(ts) AS first, max(ts) AS last, count(*) FILTER (WHERE action NOT IN (${list})) AS requests,
             arg_max(model, ts) FILTER (WHERE model IS NOT NULL) AS model, max(ts) FILTER (WHERE model IS NOT NULL) AS model_ts,
             arg_min(session_id, ts) FILTER (WHERE session_id IS NOT NULL) AS session_id, min(ts) FILTER (WHERE session_id IS NOT NULL) AS session_ts,
             arg_max(ip_address, ts) FILTER (WHERE ip_address IS NOT NULL) AS ip_address, max(ts) FILTER (WHERE ip_address IS NOT NULL) AS ip_ts,
             '' AS action
        FROM a ANTI JOIN marked USING (who, k) GROUP BY who, k
      UNION ALL
      SELECT who, ts, ts, CASE WHEN action NOT IN (${list}) THEN 1 ELSE 0 END, model, CASE WHEN model IS NOT NULL THEN ts END,
             session_id, CASE WHEN session_id IS NOT NULL THEN ts END, ip_address, CASE WHEN ip_address IS NOT NULL THEN ts END, action
        FROM a SEMI JOIN marked USING (who, k)
    ), g AS (
      SELECT *, CASE WHEN lag(last) OVER w IS NULL OR first - lag(last) OVER w > ${idle} OR lag(action) OVER w = ${logout} OR action = ${login}
                     THEN 1 ELSE 0 END AS starts
        FROM u WINDOW w AS (PARTITION BY who ORDER BY first, last)
    ), s AS (
      SELECT *, sum(starts) OVER (PARTITION BY who ORDER BY first, last ROWS UNBOUNDED PRECEDING) AS n FROM g
    ), sess AS MATERIALIZED (
      SELECT who, min(first) AS started, max(last) AS last,
             arg_max(model, model_ts) FILTER (WHERE model IS NOT NULL) AS model,
             arg_min(session_id, session_ts) FILTER (WHERE session_id IS NOT NULL) AS session_id,
             arg_max(ip_address, ip_ts) FILTER (WHERE ip_address IS NOT NULL) AS ip_address,
             sum(requests) AS requests,
             arg_max(action, last) = ${logout} AS ended
        FROM s GROUP BY who, n
    )`;
}

/** Sessions per user (see sessionsCte), the most recently active first. */
export async function sessions(conn: DuckDBConnection, opts: { fromMs: number; idleMs: number; src?: Sources }): Promise<Session[]> {
  const ps = new Params();
  const sql = `WITH ${sessionsCte(ps, msToNs(opts.fromMs), msToNs(opts.idleMs), (opts.src ?? DATABASE_ONLY).activity)}
    SELECT who, started, last, model, session_id, ip_address, requests, ended FROM sess ORDER BY last DESC`;
  return (await rows(conn, sql, ps)).map((r) => {
    const started = Number((r.started as bigint) / NS_PER_MS);
    return {
      username: String(r.who),
      model: (r.model as string | null) ?? null,
      session_id: (r.session_id as string | null) ?? `${String(r.who)}-${started}`,
      started_ms: started,
      last_ms: Number((r.last as bigint) / NS_PER_MS),
      request_count: n(r.requests),
      ip_address: (r.ip_address as string | null) ?? null,
      ended_by_logout: r.ended === true,
    };
  });
}

/**
 * What /analytics/users needs of the sessions, summed in the store rather
 * than read row by row: their number, mean length, the users with one still
 * active at `nowMs`, and the most open at once (a session is open from its
 * first to its last activity; openings before closings at the same instant).
 */
export async function sessionSummary(
  conn: DuckDBConnection,
  opts: { fromMs: number; idleMs: number; nowMs: number; src?: Sources },
): Promise<{ total: number; activeUsers: number; peak: number; meanMs: number }> {
  const ps = new Params();
  const active = ps.p(msToNs(opts.nowMs - opts.idleMs));
  const ms = ps.p(NS_PER_MS);
  // In whole milliseconds, as the API shows the times.
  const sql = `WITH ${sessionsCte(ps, msToNs(opts.fromMs), msToNs(opts.idleMs), (opts.src ?? DATABASE_ONLY).activity)},
    edges AS (SELECT started // ${ms} AS t, 1 AS d FROM sess UNION ALL SELECT last // ${ms}, -1 FROM sess)
    SELECT (SELECT count(*) FROM sess) AS total,
           (SELECT avg(last // ${ms} - started // ${ms}) FROM sess) AS mean_ms,
           (SELECT count(DISTINCT who) FROM sess WHERE NOT ended AND last >= ${active}) AS active_users,
           (SELECT max(open) FROM (SELECT sum(d) OVER (ORDER BY t, d DESC ROWS UNBOUNDED PRECEDING) AS open FROM edges)) AS peak`;
  const [r] = await rows(conn, sql, ps);
  return { total: n(r?.total), activeUsers: n(r?.active_users), peak: n(r?.peak), meanMs: n(r?.mean_ms) };
}

// --- analytics -----------------------------------------------------------------------

/**
 * Users, top models and activity per hour of the day, from one scan of the
 * activity table summed per user, model and hour (at most users x models x
 * 24 rows), the rest in JS.
 */
export async function userActivity(conn: DuckDBConnection, fromMs: number, src: Sources = DATABASE_ONLY): Promise<{
  totalUsers: number;
  topModels: Array<{ model: string; requests: number; users: number }>;
  hourly: Array<{ hour: number; users: number; requests: number }>;
}> {
  const ps = new Params();
  const from = ps.p(msToNs(fromMs));
  const list = NOT_REQUESTS.map((a) => ps.p(a)).join(', ');
  const found = await rows(
    conn,
    `SELECT COALESCE(username, email, user_id) AS who, model, hour("timestamp") AS h, count(*) FILTER (WHERE lower(COALESCE(action, '')) NOT IN (${list})) AS requests
       FROM ${src.activity} WHERE timestamp_ns >= ${from} AND COALESCE(username, email, user_id) IS NOT NULL GROUP BY ALL`,
    ps,
  );
  type Tally = { requests: number; users: Set<string> };
  /** Adds a row's requests and user to the tally of `key`. */
  const count = <K>(tallies: Map<K, Tally>, key: K, who: string, requests: number) => {
    const t = tallies.get(key) ?? tallies.set(key, { requests: 0, users: new Set() }).get(key)!;
    t.requests += requests;
    t.users.add(who);
  };
  const users = new Set<string>();
  const models = new Map<string, Tally>();
  const hours = new Map<number, Tally>();
  for (const r of found) {
    const who = String(r.who);
    users.add(who);
    if (r.model !== null && r.model !== undefined) count(models, String(r.model), who, n(r.requests));
    count(hours, n(r.h), who, n(r.requests));
  }
  const topModels = [...models]
    .map(([model, m]) => ({ model, requests: m.requests, users: m.users.size }))
    .sort((a, b) => b.requests - a.requests || b.users - a.users || (a.model < b.model ? -1 : a.model > b.model ? 1 : 0))
    .slice(0, 10);
  return {
    totalUsers: users.size,
    topModels,
    hourly: [...hours].map(([hour, x]) => ({ hour, users: x.users.size, requests: x.requests })),
  };
}

export async function modelUsage(conn: DuckDBConnection, fromMs: number, src: Sources = DATABASE_ONLY): Promise<
  Array<{ name: string; total_requests: number; unique_users: number; avg_response_time: number | null; success_rate: number; peak_usage: number; peak_hour_ms: number | null }>
> {
  const ps = new Params();
  const from = ps.p(msToNs(fromMs));
  const list = NOT_REQUESTS.map((a) => ps.p(a)).join(', ');
  const sql = `
    WITH r AS (
      SELECT (attributes->>'model') AS model,
             COALESCE(attributes->>'username', (attributes->>'email'), (attributes->>'user_id')) AS who,
             COALESCE(TRY_CAST(attributes->>'latency_ms' AS DOUBLE), TRY_CAST(attributes->>'duration_ms' AS DOUBLE)) AS ms,
             NOT (level IN ('error', 'critical')
                  OR lower(COALESCE(attributes->>'status', '')) IN ('error', 'failed', 'failure')
                  OR COALESCE(TRY_CAST(attributes->>'http_status' AS INTEGER), 0) >= 400) AS ok,
             time_bucket(INTERVAL 1 HOUR, "timestamp") AS hour
        FROM ${src.logs}
       WHERE timestamp_ns >= ${from} AND (attributes->>'model') IS NOT NULL
         AND lower(COALESCE(attributes->>'action', 'request')) NOT IN (${list})
    ), hours AS (
      SELECT model, hour, count(*) AS c FROM r GROUP BY ALL
    ), peaks AS (
      SELECT model, max(c) AS peak, arg_max(hour, c) AS peak_hour FROM hours GROUP BY model
    )
    SELECT r.model, count(*) AS requests, count(DISTINCT who) AS users, avg(ms) AS avg_ms,
           100.0 * count(*) FILTER (WHERE ok) / count(*) AS success, any_value(p.peak) AS peak, any_value(p.peak_hour) AS peak_hour
      FROM r JOIN peaks p USING (model) GROUP BY r.model ORDER BY requests DESC, r.model`;
  return (await rows(conn, sql, ps)).map((r) => ({
    name: String(r.model),
    total_requests: n(r.requests),
    unique_users: n(r.users),
    avg_response_time: r.avg_ms === null || r.avg_ms === undefined ? null : Math.round(Number(r.avg_ms) * 10) / 10,
    success_rate: Math.round(n(r.success) * 100) / 100,
    peak_usage: n(r.peak),
    peak_hour_ms: r.peak_hour instanceof Date ? r.peak_hour.getTime() : null,
  }));
}

export async function errorSummary(conn: DuckDBConnection, fromMs: number, src: Sources = DATABASE_ONLY) {
  const ps = new Params();
  const from = ps.p(msToNs(fromMs));
  const base = `SELECT COALESCE(container_name, source) AS container, level, category, message, timestamp_ns FROM ${src.logs} WHERE timestamp_ns >= ${from}`;
  const byContainer = await rows(
    conn,
    `WITH l AS (${base})
     SELECT container, count(*) FILTER (WHERE level IN ('error', 'critical')) AS errors, count(*) FILTER (WHERE level = 'critical') AS critical, count(*) AS lines
       FROM l GROUP BY container ORDER BY errors DESC, lines DESC, container`,
    ps,
  );
  const byCategory = await rows(
    conn,
    `WITH l AS (${base})
     SELECT COALESCE(category, 'uncategorized') AS category, count(*) AS errors FROM l WHERE level IN ('error', 'critical') GROUP BY ALL ORDER BY errors DESC, category`,
    ps,
  );
  const top = await rows(
    conn,
    `WITH l AS (${base})
     SELECT message, container, count(*) AS c, max(timestamp_ns) AS last FROM l WHERE level IN ('error', 'critical')
      GROUP BY ALL ORDER BY c DESC, last DESC LIMIT 10`,
    ps,
  );
  return {
    byContainer: byContainer.map((r) => ({ container: String(r.container ?? ''), errors: n(r.errors), critical: n(r.critical), lines: n(r.lines) })),
    byCategory: byCategory.map((r) => ({ category: String(r.category), errors: n(r.errors) })),
    top: top.map((r) => ({ message: String(r.message ?? ''), container: String(r.container ?? ''), count: n(r.c), last_ns: r.last as bigint })),
  };
}

// --- metrics --------------------------------------------------------------------------

/** Where a figure lives in the metrics table: measurement, field, and tags it must have. */
export interface MetricRef {
  name: string;
  field: string;
  tags?: Record<string, string>;
}

function tagClauses(tags: Record<string, string> | undefined, ps: Params): string {
  // Tag names are constants of this plugin; their values are bound.
  return Object.entries(tags ?? {})
    .map(([k, v]) => {
      if (!/^[a-z_]+$/.test(k)) throw new Error(`tag name ${k} is not a plain name`);
      return ` AND (tags->>'${k}') = ${ps.p(v)}`;
    })
    .join('');
}

export async function history(conn: DuckDBConnection, ref: MetricRef, opts: { fromMs: number; bucketS: number; src?: Sources }): Promise<Array<{ ms: number; value: number; min: number; max: number }>> {
  const ps = new Params();
  const sql = `
    WITH s AS (
      SELECT "timestamp", avg(value) AS value FROM ${(opts.src ?? DATABASE_ONLY).metrics}
       WHERE name = ${ps.p(ref.name)} AND field = ${ps.p(ref.field)} AND timestamp_ns >= ${ps.p(msToNs(opts.fromMs))} AND value IS NOT NULL${tagClauses(ref.tags, ps)}
       GROUP BY "timestamp"
    )
    SELECT time_bucket(to_seconds(CAST(${ps.p(opts.bucketS)} AS BIGINT)), "timestamp") AS t, avg(value) AS value, min(value) AS min, max(value) AS max
      FROM s GROUP BY t ORDER BY t`;
  return (await rows(conn, sql, ps)).map((r) => ({ ms: (r.t as Date).getTime(), value: n(r.value), min: n(r.min), max: n(r.max) }));
}

/** The newest value of each field of `name` since `fromMs`, per tag set: for the latest figures after a restart. */
export async function latestMetrics(conn: DuckDBConnection, names: string[], fromMs: number): Promise<Array<{ name: string; field: string; tags: Record<string, string>; value: number | null; ns: bigint }>> {
  const ps = new Params();
  const list = names.map((x) => ps.p(x)).join(', ');
  const sql = `SELECT name, field, tags, arg_max(value, timestamp_ns) AS value, max(timestamp_ns) AS ns FROM opshub_metrics
                WHERE timestamp_ns >= ${ps.p(msToNs(fromMs))} AND name IN (${list}) GROUP BY name, field, tags`;
  return (await rows(conn, sql, ps)).map((r) => ({
    name: String(r.name),
    field: String(r.field),
    tags: parseJson(r.tags) as Record<string, string>,
    value: nn(r.value),
    ns: r.ns as bigint,
  }));
}
