// Read-only SQL over the store: exactly one statement, of a reading kind
// (SELECT, WITH, FROM, VALUES, SHOW, DESCRIBE, SUMMARIZE, PRAGMA table_info,
// EXPLAIN), decided by DuckDB's own parser, then run inside a READ ONLY
// transaction so nothing can write even if a reading statement tried to.
// Results come back as JSON-safe rows and can be printed as a table, CSV or JSON.

import { DuckDBTypeId, StatementType, type DuckDBConnection, type DuckDBType } from '@duckdb/node-api';
import { interruptGuard } from '../../common/interrupt_guard.ts';

export class QueryError extends Error {
  override name = 'QueryError';
  constructor(message: string, readonly status = 400) {
    super(message);
  }
}

export interface QueryColumn {
  name: string;
  type: string;
}

export interface QueryResult {
  columns: QueryColumn[];
  rows: unknown[][];
  /** Rows returned (at most max_rows). */
  row_count: number;
  /** True when the statement produced more rows than max_rows. */
  truncated: boolean;
  elapsed_ms: number;
}

export interface QueryOptions {
  maxRows: number;
  timeoutMs: number;
}

const READING = new Set<number>([StatementType.SELECT, StatementType.EXPLAIN]);

/** Throws a QueryError unless `sql` is exactly one reading statement. */
export async function assertReadOnly(conn: DuckDBConnection, sql: string): Promise<void> {
  if (!sql.trim()) throw new QueryError('the query is empty');
  let extracted;
  try {
    extracted = await conn.extractStatements(sql);
  } catch (err) {
    throw new QueryError(duckdbMessage(err));
  }
  if (extracted.count !== 1) throw new QueryError(`exactly one statement is allowed, got ${extracted.count}`);
  let type: number;
  try {
    const prepared = await extracted.prepare(0);
    type = prepared.statementType;
    prepared.destroySync();
  } catch (err) {
    const message = duckdbMessage(err);
    // A write to a view (opshub_logs, logs, …) fails to bind before its type is known.
    if (/^Binder Error: Can only \w+(?: \w+)? base table|^Catalog Error: \S+ is not an? table/.test(message)) throw new QueryError(`only read statements are allowed (${message})`);
    throw new QueryError(message);
  }
  if (!READING.has(type)) {
    throw new QueryError(
      `only read statements are allowed (SELECT, WITH, SHOW, DESCRIBE, SUMMARIZE, EXPLAIN, PRAGMA table_info); this one is ${StatementType[type] ?? type}`,
    );
  }
}

/** DuckDB's error text without the noise of its multi-line caret display. */
export function duckdbMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n\nLINE ')[0]!.trim();
}

const INTEGER_TYPES = new Set<number>([
  DuckDBTypeId.TINYINT, DuckDBTypeId.SMALLINT, DuckDBTypeId.INTEGER, DuckDBTypeId.BIGINT, DuckDBTypeId.HUGEINT,
  DuckDBTypeId.UTINYINT, DuckDBTypeId.USMALLINT, DuckDBTypeId.UINTEGER, DuckDBTypeId.UBIGINT, DuckDBTypeId.UHUGEINT,
]);

type Convert = (v: unknown) => unknown;

function converterFor(type: DuckDBType): Convert | undefined {
  if ((type as { alias?: string }).alias === 'JSON') {
    return (v) => {
      if (typeof v !== 'string') return v;
      try {
        return JSON.parse(v);
      } catch {
        return v;
      }
    };
  }
  if (INTEGER_TYPES.has(type.typeId)) {
    return (v) => {
      if (typeof v !== 'string') return v;
      const n = Number(v);
      return Number.isSafeInteger(n) ? n : v;
    };
  }
  if (type.typeId === DuckDBTypeId.DECIMAL) return (v) => (typeof v === 'string' ? Number(v) : v);
  return undefined;
}

/** Runs one read statement on `conn` (a connection of its own) and returns at most maxRows rows. */
export async function runReadQuery(conn: DuckDBConnection, sql: string, opts: QueryOptions): Promise<QueryResult> {
  const started = performance.now();
  await assertReadOnly(conn, sql);
  const guard = interruptGuard(conn, opts.timeoutMs);
  await conn.run('BEGIN TRANSACTION READ ONLY');
  try {
    const reader = await conn.streamAndReadUntil(sql, opts.maxRows + 1);
    const types = reader.columnTypes();
    const columns = reader.columnNames().map((name, i) => ({ name, type: typeName(types[i]!) }));
    const converters = types.map(converterFor);
    let rows = reader.getRowsJson() as unknown[][];
    const truncated = rows.length > opts.maxRows || !reader.done;
    if (rows.length > opts.maxRows) rows = rows.slice(0, opts.maxRows);
    if (converters.some(Boolean)) {
      for (const row of rows) {
        for (let c = 0; c < row.length; c++) {
          const conv = converters[c];
          if (conv) row[c] = conv(row[c]);
        }
      }
    }
    return { columns, rows, row_count: rows.length, truncated, elapsed_ms: Math.round(performance.now() - started) };
  } catch (err) {
    if (guard.timedOut) throw new QueryError(`the query ran longer than ${opts.timeoutMs} ms and was interrupted`, 408);
    throw new QueryError(duckdbMessage(err));
  } finally {
    guard.release();
    await conn.run('ROLLBACK').catch(() => undefined);
  }
}

function typeName(type: DuckDBType): string {
  return (type as { alias?: string }).alias ?? type.toString();
}

// --- Printing -------------------------------------------------------------

function cellText(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

const MAX_CELL = 100;

/** A boxed text table like the duckdb shell's, long cells cut at 100 characters. */
export function formatTable(result: QueryResult): string {
  const names = result.columns.map((c) => c.name);
  const body = result.rows.map((row) =>
    row.map((v) => {
      const t = cellText(v).replace(/[\r\n\t]+/g, ' ');
      return t.length > MAX_CELL ? `${t.slice(0, MAX_CELL - 1)}…` : t;
    }),
  );
  const widths = names.map((n, i) => Math.max(n.length, result.columns[i]!.type.length, ...body.map((r) => r[i]!.length)));
  const numeric = result.columns.map((c) => /INT|DOUBLE|FLOAT|DECIMAL|REAL/.test(c.type));
  const line = (l: string, m: string, r: string) => `${l}${widths.map((w) => '─'.repeat(w + 2)).join(m)}${r}`;
  const row = (cells: string[], right: boolean[] = []) =>
    `│${cells.map((c, i) => ` ${right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)} `).join('│')}│`;
  const out = [line('┌', '┬', '┐'), row(names), row(result.columns.map((c) => c.type)), line('├', '┼', '┤')];
  for (const r of body) out.push(row(r, numeric));
  out.push(line('└', '┴', '┘'));
  out.push(`${result.row_count} row${result.row_count === 1 ? '' : 's'}${result.truncated ? ' (truncated: more rows exist; add LIMIT or raise --max-rows)' : ''}`);
  return `${out.join('\n')}\n`;
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const t = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\r\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}

/** RFC 4180 CSV with a header row; NULL is an empty field. */
export function formatCsv(result: QueryResult): string {
  const lines = [result.columns.map((c) => csvCell(c.name)).join(',')];
  for (const row of result.rows) lines.push(row.map(csvCell).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** A JSON array of row objects, one per line. */
export function formatJson(result: QueryResult): string {
  if (result.rows.length === 0) return '[]\n';
  const names = result.columns.map((c) => c.name);
  const lines = result.rows.map((row) => JSON.stringify(Object.fromEntries(names.map((n, i) => [n, row[i] ?? null]))));
  return `[\n${lines.join(',\n')}\n]\n`;
}

export type QueryFormat = 'table' | 'csv' | 'json';

export function formatResult(result: QueryResult, format: QueryFormat): string {
  if (format === 'csv') return formatCsv(result);
  if (format === 'json') return formatJson(result);
  return formatTable(result);
}
