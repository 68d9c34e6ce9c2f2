// ChunkAppender against a real DuckDB: every kind of string entry (inline,
// long, repeated within a chunk, non-ASCII, NUL inside, NULL), fixed-width
// columns, chunk boundaries, and clear() leaving nothing behind.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { ChunkAppender, type ColumnSpec } from '../../../plugins/outputs/duckdb/chunk_appender.ts';

const COLUMNS: ColumnSpec[] = [
  { type: 'TIMESTAMP' },
  { type: 'BIGINT' },
  { type: 'VARCHAR', repeats: true },
  { type: 'VARCHAR' },
  { type: 'DOUBLE' },
  { type: 'JSON', repeats: true },
];

async function table() {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  await conn.run('CREATE TABLE t (ts TIMESTAMP, n BIGINT, r VARCHAR, s VARCHAR, d DOUBLE, j JSON)');
  return { db, conn };
}

/** A varied value for row i: NULL, short, long, unicode, a NUL inside. */
function textOf(i: number): string | undefined {
  switch (i % 7) {
    case 0: return undefined;
    case 1: return '';
    case 2: return `short${i % 100}`;
    case 3: return `a long line number ${i} that does not fit in twelve bytes`;
    case 4: return `héllo ${i}`;
    case 5: return `nul\u0000inside ${i}`;
    default: return `emoji 🚀 ${i} and a rather long tail to go with it`;
  }
}
const repeatedOf = (i: number) => (i % 3 === 0 ? 'c0ffee'.repeat(11) : i % 3 === 1 ? 'tiny' : `ümlaut container ${i % 5}`);
const jsonOf = (i: number) => (i % 2 ? '{}' : `{"container":"app-${i % 4}","stream":"stdout"}`);

test('rows go through data chunks exactly as set, across chunk boundaries', async () => {
  const { db, conn } = await table();
  const rows = 5000; // more than two chunks of 2,048
  await conn.run('BEGIN');
  const a = new ChunkAppender(COLUMNS).attach(await conn.createAppender('t'));
  for (let i = 0; i < rows; i++) {
    a.int64(0, 1_700_000_000_000_000n + BigInt(i));
    if (i % 11 === 0) a.null(1);
    else a.int64(1, BigInt(i) * 1_000_000_007n);
    a.text(2, repeatedOf(i));
    a.optionalText(3, textOf(i));
    if (i % 13 === 0) a.null(4);
    else a.double(4, i / 4);
    a.text(5, jsonOf(i));
    a.endRow();
  }
  a.close();
  await conn.run('COMMIT');
  const reader = await conn.runAndReadAll('SELECT epoch_us(ts), n, r, s, d, j::VARCHAR FROM t ORDER BY ts');
  const got = reader.getRows();
  assert.equal(got.length, rows);
  for (let i = 0; i < rows; i++) {
    const [ts, n, r, s, d, j] = got[i]!;
    assert.equal(ts, 1_700_000_000_000_000n + BigInt(i), `ts of row ${i}`);
    assert.equal(n, i % 11 === 0 ? null : BigInt(i) * 1_000_000_007n, `n of row ${i}`);
    assert.equal(r, repeatedOf(i), `r of row ${i}`);
    assert.equal(s, textOf(i) ?? null, `s of row ${i}`);
    assert.equal(d, i % 13 === 0 ? null : i / 4, `d of row ${i}`);
    assert.equal(j, jsonOf(i), `j of row ${i}`);
  }
  conn.closeSync();
  db.closeSync();
});

test('clear() drops the rows not yet committed', async () => {
  const { db, conn } = await table();
  await conn.run('BEGIN');
  const a = new ChunkAppender(COLUMNS).attach(await conn.createAppender('t'));
  for (let i = 0; i < 3000; i++) {
    a.int64(0, BigInt(i));
    a.int64(1, BigInt(i));
    a.text(2, 'x');
    a.text(3, 'y');
    a.double(4, 1);
    a.text(5, '{}');
    a.endRow();
  }
  a.clear();
  await conn.run('ROLLBACK');
  const reader = await conn.runAndReadAll('SELECT count(*) FROM t');
  assert.equal(reader.getRows()[0]![0], 0n);
  conn.closeSync();
  db.closeSync();
});
