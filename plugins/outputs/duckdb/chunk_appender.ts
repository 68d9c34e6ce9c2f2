// A columnar writer over DuckDB's Appender: rows are set column by column
// into JS-side buffers and handed over a data chunk (2,048 rows) at a time.
//
// Why not appendVarchar() per value: each of those is a native call that
// builds a DuckDB Value and casts it (JSON columns are parsed to validate
// them), about 0.7 µs a value. Here fixed-width columns go over in one copy
// per chunk; short ASCII strings are written inline into the vector's
// 16-byte string entries by JS; the other strings of a column (messages)
// go over in one native call per chunk, as one arena string whose bytes the
// rows' entries then point into; a string that repeats within a chunk (a
// container id, a labels object) is sent once and its entry reused.
//
// The entry layout is duckdb_string_t from duckdb.h: uint32 length, then
// either the string (up to 12 bytes) inlined or a 4-byte prefix and a
// pointer into the vector's own string heap, which lives until the chunk is
// reset — after the Appender has copied the rows.

import os from 'node:os';
import duckdb from '@duckdb/node-bindings';
import {
  BIGINT,
  DOUBLE,
  DuckDBDataChunk,
  DuckDBVarCharType,
  TIMESTAMP,
  VARCHAR,
  type DuckDBAppender,
  type DuckDBType,
} from '@duckdb/node-api';

/** JSON columns get a JSON-typed vector, so the Appender stores our (valid by construction) text without re-parsing it. */
export type ColumnType = 'TIMESTAMP' | 'BIGINT' | 'DOUBLE' | 'VARCHAR' | 'JSON';

export interface ColumnSpec {
  type: ColumnType;
  /** The same value recurs across rows (an id, a labels object): sent once per chunk. */
  repeats?: boolean;
}

// The entries are written as little-endian words, as on every platform Node's DuckDB binaries ship for.
if (os.endianness() !== 'LE') throw new Error('outputs.duckdb needs a little-endian CPU');

const CHUNK_ROWS = duckdb.vector_size();
const ENTRY = 16;
const INLINE = 12;
/** Strings sent to the arena in one native call. */
const WRITE_GROUP = 64;
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

const duckdbType = (t: ColumnType): DuckDBType =>
  t === 'TIMESTAMP' ? TIMESTAMP : t === 'BIGINT' ? BIGINT : t === 'DOUBLE' ? DOUBLE : t === 'JSON' ? DuckDBVarCharType.create('JSON') : VARCHAR;

/** Row validity bits as DuckDB keeps them (uint64 words, bit set = not NULL). */
class Validity {
  readonly bits = new Uint8Array(Math.ceil(CHUNK_ROWS / 64) * 8).fill(0xff);
  hasNull = false;

  setNull(row: number): void {
    this.bits[row >> 3]! &= ~(1 << (row & 7));
    this.hasNull = true;
  }

  flush(vector: duckdb.Vector, rows: number): void {
    if (!this.hasNull) return;
    duckdb.vector_ensure_validity_writable(vector);
    duckdb.copy_data_to_vector_validity(vector, 0, this.bits.buffer, 0, Math.ceil(rows / 64) * 8);
  }

  reset(): void {
    if (this.hasNull) this.bits.fill(0xff);
    this.hasNull = false;
  }
}

interface Column {
  set(row: number, value: unknown): void;
  setNull(row: number): void;
  flush(vector: duckdb.Vector, rows: number): void;
  reset(): void;
}

/** An 8-byte fixed-width column: its values go to the vector in one copy. */
abstract class FixedColumn<T extends BigInt64Array | Float64Array> implements Column {
  protected readonly validity = new Validity();

  constructor(protected readonly values: T) {}

  abstract set(row: number, value: unknown): void;

  setNull(row: number): void {
    this.validity.setNull(row);
  }

  flush(vector: duckdb.Vector, rows: number): void {
    duckdb.copy_data_to_vector(vector, 0, this.values.buffer as ArrayBuffer, 0, rows * 8);
    this.validity.flush(vector, rows);
  }

  reset(): void {
    this.validity.reset();
  }
}

class Int64Column extends FixedColumn<BigInt64Array> {
  constructor() {
    super(new BigInt64Array(CHUNK_ROWS));
  }

  set(row: number, value: bigint): void {
    // A typed array would wrap silently; DuckDB's own appender refuses such a value, so do we.
    if (value > INT64_MAX || value < INT64_MIN) throw new RangeError(`Conversion Error: ${value} is out of int64 range`);
    this.values[row] = value;
  }
}

class DoubleColumn extends FixedColumn<Float64Array> {
  constructor() {
    super(new Float64Array(CHUNK_ROWS));
  }

  set(row: number, value: number): void {
    this.values[row] = value;
  }
}

class VarcharColumn implements Column {
  /** The string entries of the chunk's rows, as they go to the vector. */
  private readonly entries = new Uint8Array(CHUNK_ROWS * ENTRY);
  private readonly words = new Uint32Array(this.entries.buffer);
  private arena = Buffer.allocUnsafe(64 * 1024);
  private readonly lengths = new Int32Array(CHUNK_ROWS);
  /** Rows whose string goes through the arena, and the strings (fixed-size: arrays emptied per chunk would regrow). */
  private readonly arenaRows = new Int32Array(CHUNK_ROWS);
  private readonly arenaValues: string[] = new Array<string>(CHUNK_ROWS).fill('');
  private arenaCount = 0;
  /** Rows that repeat an earlier row's string, and that row: its entry is reused. */
  private readonly copyRows = new Int32Array(CHUNK_ROWS);
  private readonly copyFrom = new Int32Array(CHUNK_ROWS);
  private copyCount = 0;
  private readonly validity = new Validity();
  private readonly firstRowOf?: Map<string, number>;

  constructor(repeats: boolean) {
    if (repeats) this.firstRowOf = new Map();
  }

  set(row: number, s: string): void {
    const n = s.length;
    if (n <= INLINE && this.writeInline(row, s, n)) return;
    const seen = this.firstRowOf;
    if (seen) {
      const first = seen.get(s);
      if (first !== undefined) {
        this.copyRows[this.copyCount] = row;
        this.copyFrom[this.copyCount++] = first;
        return;
      }
      seen.set(s, row);
    }
    this.arenaRows[this.arenaCount] = row;
    this.arenaValues[this.arenaCount++] = s;
  }

  /** Writes an ASCII string of at most 12 characters into its entry; false for other text (it goes through the arena). */
  private writeInline(row: number, s: string, n: number): boolean {
    const at = row * ENTRY;
    const e = this.entries;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f || c === 0) return false;
      e[at + 4 + i] = c;
    }
    for (let i = at + 4 + n; i < at + ENTRY; i++) e[i] = 0;
    e[at] = n; // length, little-endian uint32 (n ≤ 12)
    e[at + 1] = e[at + 2] = e[at + 3] = 0;
    return true;
  }

  setNull(row: number): void {
    this.entries.fill(0, row * ENTRY, row * ENTRY + ENTRY);
    this.validity.setNull(row);
  }

  flush(vector: duckdb.Vector, rows: number): void {
    if (this.arenaCount) this.writeArena(vector);
    // Four word moves per entry: copyWithin is a runtime call for 16 bytes.
    const w = this.words;
    for (let i = 0; i < this.copyCount; i++) {
      const from = this.copyFrom[i]! * 4;
      const to = this.copyRows[i]! * 4;
      w[to] = w[from]!;
      w[to + 1] = w[from + 1]!;
      w[to + 2] = w[from + 2]!;
      w[to + 3] = w[from + 3]!;
    }
    duckdb.copy_data_to_vector(vector, 0, this.entries.buffer, 0, rows * ENTRY);
    this.validity.flush(vector, rows);
  }

  /**
   * The long strings go over in one native call: their UTF-8 bytes, back to
   * back, are assigned as one string (the arena) to the first such row,
   * which puts them in this vector's string heap; each row's entry then
   * points into it. The arena row's own entry is overwritten by its real one.
   */
  private writeArena(vector: duckdb.Vector): void {
    const rows = this.arenaRows;
    const values = this.arenaValues;
    const count = this.arenaCount;
    let chars = 0;
    for (let i = 0; i < count; i++) chars += values[i]!.length;
    if (this.arena.length < chars * 3) this.arena = Buffer.allocUnsafe(chars * 3 + 1024);
    const arena = this.arena;
    // Written WRITE_GROUP strings at a time: a native call per string costs
    // more than encoding a log line. A group whose bytes are as many as its
    // characters is ASCII, so each string's length is its byte length;
    // otherwise the group is written again string by string, for each one's.
    // (Groups, not the whole chunk: a string of 512 KB is a large object,
    // mapped afresh each time.)
    const lengths = this.lengths;
    let size = 0;
    for (let g = 0; g < count; g += WRITE_GROUP) {
      const end = Math.min(count, g + WRITE_GROUP);
      let joined = values[g]!;
      for (let i = g + 1; i < end; i++) joined += values[i]!;
      if (arena.write(joined, size) === joined.length) {
        for (let i = g; i < end; i++) lengths[i] = values[i]!.length;
        size += joined.length;
        continue;
      }
      for (let i = g; i < end; i++) {
        const n = arena.write(values[i]!, size);
        lengths[i] = n;
        size += n;
      }
    }
    const first = rows[0]!;
    duckdb.vector_assign_string_element_len(vector, first, arena.subarray(0, size));
    const head = duckdb.vector_get_data(vector, (first + 1) * ENTRY);
    const at = first * ENTRY + 8;
    const baseLo = (head[at]! | (head[at + 1]! << 8) | (head[at + 2]! << 16)) + head[at + 3]! * 0x1000000;
    const baseHi = (head[at + 4]! | (head[at + 5]! << 8) | (head[at + 6]! << 16)) + head[at + 7]! * 0x1000000;
    const e = this.entries;
    const words = this.words;
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const len = lengths[i]!;
      const r = rows[i]!;
      const w = r * 4;
      words[w] = len;
      if (len <= INLINE) {
        e.fill(0, r * ENTRY + 4, r * ENTRY + ENTRY);
        arena.copy(e, r * ENTRY + 4, offset, offset + len);
      } else {
        e[r * ENTRY + 4] = arena[offset]!;
        e[r * ENTRY + 5] = arena[offset + 1]!;
        e[r * ENTRY + 6] = arena[offset + 2]!;
        e[r * ENTRY + 7] = arena[offset + 3]!;
        let lo = baseLo + offset;
        let hi = baseHi;
        if (lo >= 0x100000000) {
          lo -= 0x100000000;
          hi += 1;
        }
        words[w + 2] = lo;
        words[w + 3] = hi;
      }
      offset += len;
    }
  }

  reset(): void {
    this.arenaValues.fill('', 0, this.arenaCount); // the chunk's strings are not kept alive until the next one
    this.arenaCount = 0;
    this.copyCount = 0;
    this.firstRowOf?.clear();
    this.validity.reset();
  }
}

/**
 * Appends rows to one table through data chunks. attach() a DuckDB Appender
 * (one per transaction), set each column of a row (every column: nothing is
 * assumed NULL), then endRow(). close() sends the last chunk and closes the
 * Appender; clear() drops what was not sent yet (the caller rolls the
 * transaction back). The column buffers stay for the next attach().
 */
export class ChunkAppender {
  private readonly columns: Column[];
  private readonly chunk: DuckDBDataChunk;
  private appender?: DuckDBAppender;
  private row = 0;

  constructor(specs: readonly ColumnSpec[]) {
    this.columns = specs.map((s) =>
      s.type === 'BIGINT' || s.type === 'TIMESTAMP' ? new Int64Column() : s.type === 'DOUBLE' ? new DoubleColumn() : new VarcharColumn(s.repeats === true),
    );
    this.chunk = DuckDBDataChunk.create(specs.map((s) => duckdbType(s.type)));
  }

  /** Starts writing through `appender`; the previous one must be closed or cleared. */
  attach(appender: DuckDBAppender): this {
    if (this.appender) throw new Error('ChunkAppender: the previous Appender is still open');
    this.appender = appender;
    return this;
  }

  /** BIGINT, or TIMESTAMP in microseconds since the epoch. */
  int64(col: number, value: bigint): void {
    (this.columns[col] as Int64Column).set(this.row, value);
  }

  double(col: number, value: number): void {
    (this.columns[col] as DoubleColumn).set(this.row, value);
  }

  text(col: number, value: string): void {
    (this.columns[col] as VarcharColumn).set(this.row, value);
  }

  /** The string, or NULL when undefined. */
  optionalText(col: number, value: string | undefined): void {
    if (value === undefined) this.columns[col]!.setNull(this.row);
    else (this.columns[col] as VarcharColumn).set(this.row, value);
  }

  null(col: number): void {
    this.columns[col]!.setNull(this.row);
  }

  endRow(): void {
    if (++this.row === CHUNK_ROWS) this.flush();
  }

  private flush(): void {
    const rows = this.row;
    if (rows === 0) return;
    if (!this.appender) throw new Error('ChunkAppender: no Appender attached');
    this.chunk.rowCount = rows;
    const raw = this.chunk.chunk;
    for (let c = 0; c < this.columns.length; c++) this.columns[c]!.flush(duckdb.data_chunk_get_vector(raw, c), rows);
    this.appender.appendDataChunk(this.chunk);
    this.reset();
  }

  private reset(): void {
    this.chunk.reset();
    for (const column of this.columns) column.reset();
    this.row = 0;
  }

  close(): void {
    try {
      this.flush();
      this.appender?.closeSync();
    } finally {
      this.appender = undefined;
      this.reset();
    }
  }

  clear(): void {
    const appender = this.appender;
    this.appender = undefined;
    this.reset();
    appender?.clear();
    appender?.closeSync();
  }
}
