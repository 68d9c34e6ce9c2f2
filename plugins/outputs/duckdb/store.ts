// The DuckDB store behind outputs.duckdb: one instance per file (DuckDB's
// instance cache, so a hot reload shares the open file), one writer
// connection fed by batches through Appenders, and a connection per query.
// Every write is one transaction holding the rows and the input positions
// they carry, so a crash leaves both or neither (exactly once with skipping).

import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection, type DuckDBPreparedStatement } from '@duckdb/node-api';
import { ChangeLog } from './changes.ts';
import { ChunkAppender, type ColumnSpec } from './chunk_appender.ts';
import type { Event, LogEvent, MetricEvent } from '../../../core/events.ts';
import type { Checkpoint, WriteContext } from '../../../core/plugin.ts';
import { PermanentError, RetryableError } from '../../../core/plugin.ts';
import { duckdbMessage, runReadQuery, type QueryOptions, type QueryResult } from './query.ts';
import { holdsZstd, SCHEMA_VERSION, STORAGE_VERSION, tablesDdl, VIEWS } from './schema.ts';
import { dropActivityMessage, migrateToStreams } from './migrate.ts';
import { containerNameOf, Streams } from './streams.ts';

export interface StoreOptions {
  file: string;
  memoryLimit?: string;
  /** DuckDB's checkpoint_threshold: the WAL size that triggers an automatic checkpoint. */
  walSize?: string;
  threads?: number;
  /** Diagnostics (the plugin's logger). */
  warn: (key: string, message: string) => void;
  /** What the store does that takes a while (a schema migration). */
  info?: (message: string) => void;
}

export interface WriteStats {
  logs: number;
  metrics: number;
  activity: number;
  /** Events skipped because their position was already committed (replays after a restart). */
  skipped: number;
}

/**
 * The last order stored per (input, key). Nested maps: a lookup per line
 * (lines of many containers interleaved) builds and hashes no key string.
 */
class Orders {
  private readonly byInput = new Map<string, Map<string, string>>();
  size = 0;

  get(input: string, key: string): string | undefined {
    return this.byInput.get(input)?.get(key);
  }

  set(input: string, key: string, order: string): void {
    let keys = this.byInput.get(input);
    if (!keys) this.byInput.set(input, (keys = new Map()));
    if (!keys.has(key)) this.size++;
    keys.set(key, order);
  }

  clear(): void {
    this.byInput.clear();
    this.size = 0;
  }

  *entries(): Generator<[string, string, string]> {
    for (const [input, keys] of this.byInput) for (const [key, order] of keys) yield [input, key, order];
  }
}
/**
 * Files a Store of this process writes. Two writers of one file would hand
 * out the same stream ids for different streams (each counts from what it
 * loaded), and run checkpoints and retention twice: refused.
 */
const writing = new Set<string>();

/** Superseded position rows are dropped at every CHECKPOINT, and after this many saves when checkpoints are off. */
const COMPACT_POSITIONS_EVERY = 10_000;

function isEmpty(obj: Record<string, unknown>): boolean {
  for (const _ in obj) return false;
  return true;
}

/** JSON text of any attribute value: bigints become numbers (or strings beyond 2^53), cycles give "{}". */
export function toJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? 'null';
  } catch {
    try {
      return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? (v <= 9007199254740991n && v >= -9007199254740991n ? Number(v) : v.toString()) : v)) ?? 'null';
    } catch {
      return '{}';
    }
  }
}

/** Attributes kept in columns of opshub_logs (when strings), so left out of its attributes JSON. */
const PROMOTED = new Set(['category', 'container_id', 'image']);

/**
 * What attributesJson knows of a key: its JSON text (`"key":`), or that it
 * is promoted; and the last string value seen under it with that value's
 * JSON, since many values repeat line after line (an image, a model).
 */
export interface AttributeKey {
  prefix: string;
  /** Left out when a string (its column holds it). */
  promoted: boolean;
  last?: string;
  lastJson: string;
}

/** Most keys remembered; keys beyond are escaped each time. */
const MAX_KEYS = 10_000;

/**
 * The attributes as JSON without the promoted keys — built by hand, which is
 * faster than copying the object for JSON.stringify. Values that are not
 * plain strings, numbers or booleans go through toJson (bigints, objects).
 */
export function attributesJson(attrs: Record<string, unknown>, keys: Map<string, AttributeKey>): string {
  let out = '';
  for (const k in attrs) {
    let key = keys.get(k);
    if (key === undefined) {
      key = { prefix: `${JSON.stringify(k)}:`, promoted: PROMOTED.has(k), lastJson: '' };
      if (keys.size < MAX_KEYS) keys.set(k, key);
    }
    const v = attrs[k];
    if (key.promoted && typeof v === 'string') continue;
    let text: string;
    if (typeof v === 'string') {
      if (v !== key.last) {
        key.last = v;
        key.lastJson = JSON.stringify(v);
      }
      text = key.lastJson;
    } else if (typeof v === 'number') text = Number.isFinite(v) ? String(v) : 'null';
    else if (typeof v === 'boolean') text = v ? 'true' : 'false';
    else if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    else text = toJson(v);
    out += out === '' ? `{${key.prefix}${text}` : `,${key.prefix}${text}`;
  }
  return out === '' ? '{}' : `${out}}`;
}

// Column order and types of the tables in schema.ts; `repeats` marks values that recur row after row.
const LOG_COLUMNS: ColumnSpec[] = [
  { type: 'TIMESTAMP' },
  { type: 'BIGINT' },
  { type: 'BIGINT' }, // stream_id
  { type: 'VARCHAR' }, // level
  { type: 'VARCHAR', repeats: true }, // category
  { type: 'VARCHAR' }, // message
  { type: 'JSON' }, // attributes
];
const ACTIVITY_COLUMNS: ColumnSpec[] = [
  { type: 'TIMESTAMP' },
  { type: 'BIGINT' },
  ...['username', 'user_id', 'email', 'model', 'action', 'session_id', 'ip_address', 'user_agent', 'source', 'container_name'].map(() => ({ type: 'VARCHAR' as const, repeats: true })),
  { type: 'VARCHAR' }, // level
  { type: 'JSON' }, // metadata
];
const METRIC_COLUMNS: ColumnSpec[] = [
  { type: 'TIMESTAMP' },
  { type: 'BIGINT' },
  { type: 'VARCHAR', repeats: true }, // name
  { type: 'VARCHAR', repeats: true }, // field
  { type: 'DOUBLE' },
  { type: 'VARCHAR' }, // value_text
  { type: 'VARCHAR' }, // type
  { type: 'JSON', repeats: true }, // tags
];

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v === '' ? undefined : v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  return undefined;
}

/** Data errors cannot be fixed by retrying; everything else (I/O, locks, conflicts) might. */
function classify(err: unknown): Error {
  const msg = duckdbMessage(err);
  if (/^(?:Conversion|Invalid Input|Constraint|Binder|Parser|Catalog|Out of Range) Error|out of (?:int64 )?range/i.test(msg)) {
    return new PermanentError(`DuckDB rejected the batch: ${msg}`);
  }
  return new RetryableError(`DuckDB write failed: ${msg}`);
}

/** Whether the open file's storage version can hold ZSTD-compressed columns. */
async function hasZstd(conn: DuckDBConnection): Promise<boolean> {
  const reader = await conn.runAndReadAll(`SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = current_database()`);
  return holdsZstd(String(reader.getRows()[0]?.[0] ?? ''));
}

export class Store {
  private instance?: DuckDBInstance;
  private writer?: DuckDBConnection;
  private committed = new Orders();
  private committedStale = true;
  /** Position rows saved since the last compaction. */
  private positionRows = 0;
  /** Column buffers of each table, kept from batch to batch. */
  private writers = { logs: new ChunkAppender(LOG_COLUMNS), activity: new ChunkAppender(ACTIVITY_COLUMNS), metrics: new ChunkAppender(METRIC_COLUMNS) };
  /** Prepared position INSERTs on the writer connection, by row count. */
  private positionInserts = new Map<number, DuckDBPreparedStatement>();
  private chain: Promise<unknown> = Promise.resolve();
  private queries = new Set<DuckDBConnection>();
  private closed = false;
  /** Where in time the log lines changed, by version (see changes.ts). */
  readonly logChanges = new ChangeLog();
  /** Log streams by id (loaded when the store opens and after a rollback). */
  private streams = new Streams(toJson);
  private streamsStale = true;
  /** Attribute keys seen so far, to build attribute JSON without re-escaping keys (or repeated values). */
  private keys = new Map<string, AttributeKey>();
  /** settle() committed the open transaction, and the runtime has not been told. */
  private settled = false;
  /** The transaction stage() appends to, until commit(): its rows, the positions it saved, where its lines lie in time. */
  private txn?: {
    rows: number;
    positions: Orders;
    changes: Array<{ events: Event[]; oldest: bigint; newest: bigint }>;
  };
  /** Why an open transaction was lost outside stage() and commit(); thrown by the next of them. */
  private lost?: Error;
  /** Transactions committed (or tried), for their marks. */
  private commits = 0;

  constructor(readonly opts: StoreOptions) {}

  get file(): string {
    return this.opts.file;
  }

  get isOpen(): boolean {
    return this.writer !== undefined;
  }

  /**
   * Runs `fn` after everything queued before it on the writer (writes,
   * checkpoints, retention never overlap). Unless `logsUntouched`, readers
   * are then told that any log line may have changed, and the streams are
   * read again before the next write (retention deletes those no line names).
   */
  exclusive<T>(fn: () => Promise<T>, logsUntouched = false): Promise<T> {
    const run = this.serial(async () => {
      await this.settle();
      try {
        return await fn();
      } finally {
        if (!logsUntouched) this.streamsStale = true;
      }
    });
    return logsUntouched ? run : run.finally(() => this.logChanges.everything());
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  async open(): Promise<void> {
    if (this.writer) return;
    const file = path.resolve(this.opts.file);
    if (writing.has(file)) throw new Error(`${file} is already written by another outputs.duckdb of this agent; give each its own path`);
    mkdirSync(path.dirname(this.opts.file), { recursive: true });
    const options: Record<string, string> = {};
    if (this.opts.memoryLimit) options.memory_limit = this.opts.memoryLimit;
    if (this.opts.threads) options.threads = String(this.opts.threads);
    if (this.opts.walSize) options.checkpoint_threshold = this.opts.walSize;
    // A new file is created readable by DuckDB 1.2 and later, the first with
    // ZSTD for text; a file created before keeps its version.
    options.storage_compatibility_version = STORAGE_VERSION;
    this.instance = await DuckDBInstance.fromCache(this.opts.file, options);
    const conn = await this.instance.connect();
    try {
      for (const ddl of tablesDdl(await hasZstd(conn))) await conn.run(ddl);
      await migrateToStreams(conn, (message) => this.opts.info?.(message));
      await dropActivityMessage(conn);
      await compactPositions(conn);
      await conn.run(`DELETE FROM _opshub_meta WHERE "key" = 'schema_version'`);
      await conn.run(`INSERT INTO _opshub_meta VALUES ('schema_version', '${SCHEMA_VERSION}')`);
      await conn.run(`INSERT INTO _opshub_meta SELECT 'last_commit', '' WHERE NOT EXISTS (SELECT 1 FROM _opshub_meta WHERE "key" = 'last_commit')`);
      for (const [name, sql] of VIEWS) {
        try {
          await conn.run(`CREATE OR REPLACE VIEW ${name} AS ${sql}`);
        } catch (err) {
          // e.g. the user has a table of that name: leave it, say so once.
          this.opts.warn(`view:${name}`, `cannot create view ${name}: ${duckdbMessage(err)}`);
        }
      }
    } catch (err) {
      conn.closeSync();
      this.instance.closeSync();
      this.instance = undefined;
      throw err;
    }
    this.writer = conn;
    writing.add(file);
    this.committedStale = true;
    this.streamsStale = true;
    this.logChanges.everything();
  }

  /** The writer connection, for retention and checkpoints (call inside exclusive()). */
  get connection(): DuckDBConnection {
    if (!this.writer) throw new RetryableError('the DuckDB store is not open');
    return this.writer;
  }

  private async loadCommitted(conn: DuckDBConnection): Promise<void> {
    const reader = await conn.runAndReadAll(`SELECT input, "key", max("order") FROM _opshub_positions GROUP BY ALL`);
    this.committed.clear();
    for (const [input, key, order] of reader.getRows() as Array<[string, string, string]>) this.committed.set(input, key, order);
    this.committedStale = false;
  }

  /** The committed position of every (input, key), as inputs may want to read it. */
  async positions(): Promise<Checkpoint[]> {
    return this.serial(async () => {
      await this.settle();
      const reader = await this.connection.runAndReadAll(
        `SELECT input, "key", arg_max(value, "order"), max("order") FROM _opshub_positions GROUP BY input, "key" ORDER BY input, "key"`,
      );
      return (reader.getRows() as Array<[string, string, string, string]>).map(([input, key, value, order]) => ({ input, key, value: JSON.parse(value), order }));
    });
  }

  /** One batch in a transaction of its own. */
  write(events: Event[], ctx: WriteContext): Promise<WriteStats> {
    return this.serial(async () => {
      const stats = await this.stageNow(events, ctx);
      await this.commitNow();
      return stats;
    });
  }

  /**
   * Appends a batch to the open transaction (begun if none is), with its
   * positions; commit() makes it durable. If this or the commit fails, the
   * whole transaction is rolled back: every batch staged since the last
   * commit must be staged again.
   */
  stage(events: Event[], ctx: WriteContext): Promise<WriteStats> {
    return this.serial(() => this.stageNow(events, ctx));
  }

  /** Commits what stage() appended; throws if it is lost (then stage it all again). */
  commit(): Promise<void> {
    return this.serial(() => this.commitNow());
  }

  /** Rows appended to the open transaction. */
  get stagedRows(): number {
    return this.txn?.rows ?? 0;
  }

  private async stageNow(events: Event[], ctx: WriteContext): Promise<WriteStats> {
    if (this.closed) throw new RetryableError('the DuckDB store is closed');
    this.throwIfLost();
    if (!this.writer) await this.open();
    const conn = this.connection;
    if (!this.txn) {
      try {
        if (this.committedStale) await this.loadCommitted(conn);
        if (this.streamsStale) {
          await this.streams.load(conn);
          this.streamsStale = false;
        }
        await conn.run('BEGIN TRANSACTION');
      } catch (err) {
        // As a failed append: a fatal error here (the database invalidated) must reopen it too.
        throw await this.abandon(err);
      }
      this.txn = { rows: 0, positions: new Orders(), changes: [] };
    }
    const txn = this.txn;
    const stats: WriteStats = { logs: 0, metrics: 0, activity: 0, skipped: 0 };
    const positions = ctx.positions;
    const committed = this.committed;
    const staged = txn.positions;
    // An Appender per batch: one kept open for the whole transaction buffered every row once more in DuckDB (~5 % more CPU a line).
    let logs: ChunkAppender | undefined;
    let metrics: ChunkAppender | undefined;
    let activity: ChunkAppender | undefined;
    let lastInput: string | undefined;
    let lastKey: string | undefined;
    let lastDone: string | undefined;
    let oldest: bigint | undefined;
    let newest: bigint | undefined;
    try {
      for (let i = 0; i < events.length; i++) {
        const p = positions[i];
        if (p !== undefined && (committed.size > 0 || staged.size > 0)) {
          // Runs of lines from one container share a key: look it up once per run.
          if (p.input !== lastInput || p.key !== lastKey) {
            lastInput = p.input;
            lastKey = p.key;
            lastDone = this.doneOrder(p);
          }
          if (lastDone !== undefined && p.order <= lastDone) {
            stats.skipped++;
            continue;
          }
        }
        const e = events[i]!;
        if (e.kind === 'log') {
          logs ??= this.writers.logs.attach(await conn.createAppender('opshub_log_lines'));
          const attrsJson = this.appendLog(logs, e);
          stats.logs++;
          if (oldest === undefined || e.timestamp < oldest) oldest = e.timestamp;
          if (newest === undefined || e.timestamp > newest) newest = e.timestamp;
          if (namesSomeone(e)) {
            activity ??= this.writers.activity.attach(await conn.createAppender('opshub_activity'));
            appendActivity(activity, e, attrsJson);
            stats.activity++;
          }
        } else {
          metrics ??= this.writers.metrics.attach(await conn.createAppender('opshub_metrics'));
          stats.metrics += appendMetric(metrics, e);
        }
      }
      logs?.close();
      metrics?.close();
      activity?.close();
      await this.streams.insertFresh(conn);
      const moved = ctx.checkpoints.filter((cp) => {
        const done = this.doneOrder(cp);
        return done === undefined || cp.order > done;
      });
      if (moved.length) {
        await savePositions(conn, moved, this.positionInserts);
        this.positionRows += moved.length;
        if (this.positionRows >= COMPACT_POSITIONS_EVERY) {
          await compactPositions(conn);
          this.positionRows = 0;
        }
      }
      for (const cp of moved) staged.set(cp.input, cp.key, cp.order);
      if (oldest !== undefined) txn.changes.push({ events, oldest, newest: newest! });
      txn.rows += stats.logs + stats.metrics + stats.activity;
      return stats;
    } catch (err) {
      for (const a of [logs, metrics, activity]) {
        try {
          a?.clear();
        } catch {
          /* the transaction is rolled back next */
        }
      }
      if (oldest !== undefined) txn.changes.push({ events, oldest, newest: newest! });
      throw await this.abandon(err);
    }
  }

  /** The last order of (input, key) stored: staged in the open transaction, else committed. */
  private doneOrder(p: Checkpoint): string | undefined {
    return this.txn?.positions.get(p.input, p.key) ?? this.committed.get(p.input, p.key);
  }

  private async commitNow(): Promise<void> {
    this.throwIfLost();
    const txn = this.txn;
    if (!txn) return;
    // A mark of this transaction, committed with it: DuckDB can report a
    // COMMIT as failed that did land (its automatic checkpoint failed after
    // the commit, which invalidates the database), and events without
    // positions staged again would then be stored twice.
    const mark = `${process.pid}-${++this.commits}-${Date.now()}`;
    try {
      await this.connection.run(`UPDATE _opshub_meta SET value = '${mark}' WHERE "key" = 'last_commit'`);
    } catch (err) {
      throw await this.abandon(err);
    }
    try {
      await this.connection.run('COMMIT');
    } catch (err) {
      const error = await this.abandon(err);
      if (await this.landed(mark)) {
        this.opts.warn('commit-landed', `DuckDB reported the commit as failed, but it landed (${duckdbMessage(err)}); it counts as done`);
        return;
      }
      throw error;
    }
    this.txn = undefined;
    for (const c of txn.changes) this.recordChanges(c.events, c.oldest, c.newest);
    for (const [input, key, order] of txn.positions.entries()) this.committed.set(input, key, order);
  }

  /** Whether the transaction that wrote `mark` committed (asked after a failed COMMIT, once the store is reopened if it had to be). */
  private async landed(mark: string): Promise<boolean> {
    if (!this.writer) return false;
    try {
      const reader = await this.writer.runAndReadAll(`SELECT value FROM _opshub_meta WHERE "key" = 'last_commit'`);
      return reader.getRows()[0]?.[0] === mark;
    } catch {
      return false;
    }
  }

  /** Rolls the open transaction back after `err`; returns the error to throw. */
  private async abandon(err: unknown): Promise<Error> {
    const txn = this.txn;
    this.txn = undefined;
    await this.writer?.run('ROLLBACK').catch(() => undefined);
    // Readers may have been told nothing yet, but the rows' range is marked changed either way (cheap, and safe).
    if (txn) for (const c of txn.changes) this.recordChanges(c.events, c.oldest, c.newest);
    // The commit may or may not have happened: read the positions (and the streams) again before the next write.
    this.committedStale = true;
    this.streamsStale = true;
    if (/invalidated|FATAL/i.test(duckdbMessage(err))) await this.reopen();
    return classify(err);
  }

  /** A staged transaction that other work had to commit, and could not: its batches must be staged again. */
  private throwIfLost(): void {
    const lost = this.lost;
    if (!lost) return;
    this.lost = undefined;
    throw lost;
  }

  /**
   * Commits the open transaction before other work on the writer (a
   * CHECKPOINT, retention, reading positions). A failure is kept for the
   * next stage() or commit(), which tells the runtime to stage it again.
   */
  private async settle(): Promise<void> {
    if (!this.txn) return;
    try {
      await this.commitNow();
      this.settled = true;
    } catch (err) {
      // Retryable whatever it was: the batch that meets it did not cause it.
      this.lost = new RetryableError(`the open transaction could not be committed: ${duckdbMessage(err)}`);
    }
  }

  /** True, once, after settle() committed the open transaction (see Output.committedAlone). */
  committedAlone(): boolean {
    const settled = this.settled;
    this.settled = false;
    return settled;
  }

  /**
   * Tells readers where in time a batch's log lines landed: one range, or,
   * when they spread wider than a few seconds (a backlog replayed beside new
   * lines), the seconds they fill, so that the time between stays trusted.
   */
  private recordChanges(events: Event[], oldest: bigint, newest: bigint): void {
    if (newest - oldest <= SPREAD_NS || oldest < 0n) {
      this.logChanges.record(oldest, newest);
      return;
    }
    const seconds = [...new Set(events.filter((e) => e.kind === 'log').map((e) => e.timestamp / SECOND_NS))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const ranges: Array<[bigint, bigint]> = [];
    let from = seconds[0]!;
    let to = from;
    for (const s of seconds.slice(1)) {
      if (s - to > 1n) {
        ranges.push([from * SECOND_NS, to * SECOND_NS + SECOND_NS - 1n]);
        from = s;
      }
      to = s;
    }
    ranges.push([from * SECOND_NS, to * SECOND_NS + SECOND_NS - 1n]);
    // Lines scattered over many stretches: one range, so that a batch cannot crowd older changes out of the log.
    if (ranges.length > MAX_RANGES_PER_BATCH) this.logChanges.record(oldest, newest);
    else for (const [a, z] of ranges) this.logChanges.record(a, z);
  }

  /** Appends one log row; returns the attributes' JSON for reuse. */
  private appendLog(a: ChunkAppender, e: LogEvent): string {
    const ts = e.timestamp;
    a.int64(0, ts / 1000n);
    a.int64(1, ts);
    a.int64(2, this.streams.idOf(e));
    const attrs = e.attributes;
    a.text(3, e.level);
    const category = attrs.category;
    a.optionalText(4, typeof category === 'string' ? category : undefined);
    a.text(5, e.message);
    const attrsJson = attributesJson(attrs, this.keys);
    a.text(6, attrsJson);
    a.endRow();
    return attrsJson;
  }

  private async reopen(): Promise<void> {
    this.opts.warn('reopen', 'the DuckDB database reported a fatal error; reopening it');
    this.txn = undefined;
    this.closeConnections();
    await this.open().catch(() => undefined);
  }

  async checkpoint(): Promise<void> {
    await this.serial(async () => {
      await this.settle();
      if (this.writer) await this.checkpointNow(this.writer);
    });
  }

  /** Drops superseded positions, then folds the WAL into the file. */
  private async checkpointNow(conn: DuckDBConnection): Promise<void> {
    await compactPositions(conn);
    this.positionRows = 0;
    await conn.run('CHECKPOINT');
    this.lastCheckpointMs = Date.now();
  }

  /** When the last CHECKPOINT finished (ms since the epoch), for health pages. */
  lastCheckpointMs?: number;

  /**
   * Runs `fn` on a connection of its own to this database (never the
   * writer's, so it neither waits for nor blocks ingestion), closed
   * afterwards and interrupted if the store closes meanwhile. For other
   * components' parameterised reads (the REST API).
   */
  async read<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    if (!this.instance || this.closed) throw new RetryableError('the DuckDB store is not open');
    const conn = await this.instance.connect();
    this.queries.add(conn);
    try {
      return await fn(conn);
    } finally {
      this.queries.delete(conn);
      conn.closeSync();
    }
  }

  /** Runs a read-only query on a connection of its own, so it never waits for or blocks the writer. */
  async query(sql: string, opts: QueryOptions): Promise<QueryResult> {
    if (!this.instance || this.closed) throw new RetryableError('the DuckDB store is not open');
    const conn = await this.instance.connect();
    this.queries.add(conn);
    try {
      return await runReadQuery(conn, sql, opts);
    } finally {
      this.queries.delete(conn);
      conn.closeSync();
    }
  }

  private closeConnections(): void {
    for (const q of this.queries) {
      try {
        q.interrupt();
      } catch {
        /* closing anyway */
      }
    }
    for (const insert of this.positionInserts.values()) insert.destroySync();
    this.positionInserts.clear();
    if (this.writer) writing.delete(path.resolve(this.opts.file));
    this.writer?.closeSync();
    this.writer = undefined;
    this.instance?.closeSync();
    this.instance = undefined;
  }

  /** Waits for queued work, checkpoints, and closes. Safe twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.exclusive(async () => {
      this.closed = true;
      if (this.writer) {
        try {
          await this.checkpointNow(this.writer);
        } catch (err) {
          this.opts.warn('checkpoint', `CHECKPOINT at shutdown failed (the WAL is replayed at the next start): ${duckdbMessage(err)}`);
        }
      }
      this.closeConnections();
    });
  }
}

const SECOND_NS = 1_000_000_000n;
/** A batch whose lines lie within this many ns of each other is recorded as one change. */
const SPREAD_NS = 10n * SECOND_NS;
const MAX_RANGES_PER_BATCH = 64;

/** Whether a log belongs in the activity table: a session event, or a line that names a user. */
export function namesSomeone(e: LogEvent): boolean {
  const a = e.attributes;
  return a.category === 'session' || str(a.username) !== undefined || str(a.user_id) !== undefined || str(a.email) !== undefined;
}

function appendActivity(a: ChunkAppender, e: LogEvent, attrsJson: string): void {
  const at = e.attributes;
  a.int64(0, e.timestamp / 1000n);
  a.int64(1, e.timestamp);
  a.optionalText(2, str(at.username));
  a.optionalText(3, str(at.user_id));
  a.optionalText(4, str(at.email));
  a.optionalText(5, str(at.model));
  const action = str(at.action) ?? (at.category === 'session' ? 'session' : at.http_method !== undefined ? 'request' : str(at.category) ?? 'log');
  a.text(6, action);
  a.optionalText(7, str(at.session_id));
  a.optionalText(8, str(at.ip_address));
  a.optionalText(9, str(at.user_agent));
  a.text(10, e.source);
  a.optionalText(11, containerNameOf(e));
  a.text(12, e.level);
  a.text(13, attrsJson);
  a.endRow();
}

/** One row per field; returns how many. */
function appendMetric(a: ChunkAppender, m: MetricEvent): number {
  const micros = m.timestamp / 1000n;
  const tags = isEmpty(m.tags) ? '{}' : toJson(m.tags);
  let n = 0;
  for (const field in m.fields) {
    const v = m.fields[field]!;
    a.int64(0, micros);
    a.int64(1, m.timestamp);
    a.text(2, m.name);
    a.text(3, field);
    if (typeof v === 'string') {
      a.null(4);
      a.text(5, v);
    } else {
      const x = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : v ? 1 : 0;
      if (Number.isFinite(x)) a.double(4, x);
      else a.null(4);
      a.null(5);
    }
    a.text(6, m.type);
    a.text(7, tags);
    a.endRow();
    n++;
  }
  return n;
}

/** Most positions one prepared INSERT takes; more go in several. */
const POSITIONS_PER_INSERT = 16;

/**
 * Appends the batch's positions. Rows are only ever added here (a DELETE per
 * batch cost more than the rows' own append); the latest `order` of a key
 * wins when read, and compactPositions() drops the superseded rows. The
 * INSERT for n rows is prepared once per connection: parsing and planning it
 * for every batch cost about 2 ms.
 */
async function savePositions(conn: DuckDBConnection, moved: Checkpoint[], prepared: Map<number, DuckDBPreparedStatement>): Promise<void> {
  for (let from = 0; from < moved.length; from += POSITIONS_PER_INSERT) {
    const part = moved.slice(from, from + POSITIONS_PER_INSERT);
    let insert = prepared.get(part.length);
    if (!insert) {
      const rows = part.map((_, i) => `($${4 * i + 1}, $${4 * i + 2}, $${4 * i + 3}::JSON, $${4 * i + 4}, now()::TIMESTAMP)`);
      insert = await conn.prepare(`INSERT INTO _opshub_positions VALUES ${rows.join(', ')}`);
      prepared.set(part.length, insert);
    }
    const values: string[] = [];
    for (const cp of part) values.push(cp.input, cp.key, toJson(cp.value ?? null), cp.order);
    insert.bind(values);
    await insert.run();
  }
}

/** Drops positions a later row of the same (input, key) supersedes. */
async function compactPositions(conn: DuckDBConnection): Promise<void> {
  await conn.run(`DELETE FROM _opshub_positions p USING (SELECT input, "key", max("order") AS latest FROM _opshub_positions GROUP BY ALL) l
    WHERE p.input = l.input AND p."key" = l."key" AND p."order" < l.latest`);
}
