// Sessions from the activity table (queries.ts sessionsCte): the store sums
// rows per user and bucket before sessionizing, so these tests compare it
// with the plain definition, row by row in JS, on random activity with
// logins, logouts, gaps around the idle timeout and missing fields; and the
// summary /analytics/users shows (count, mean length, active users, peak).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { TABLES_DDL } from '../../../plugins/outputs/duckdb/schema.ts';
import { sessions, sessionSummary, type Session } from '../../../plugins/outputs/opshub_api/queries.ts';

const MIN = 60_000;
const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);

interface Activity {
  ms: number;
  user: string;
  action: string | null;
  model: string | null;
  session: string | null;
  ip: string | null;
}

async function store(rows: Activity[]): Promise<DuckDBConnection> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  for (const ddl of TABLES_DDL) await conn.run(ddl);
  for (let i = 0; i < rows.length; i += 200) {
    const part = rows.slice(i, i + 200);
    const values: Array<string | null> = [];
    const tuples = part.map((r, j) => {
      values.push(r.user, r.action, r.model, r.session, r.ip);
      const p = j * 5;
      const ns = BigInt(r.ms) * 1_000_000n;
      return `(make_timestamp(${ns / 1000n}), ${ns}, $${p + 1}, NULL, NULL, $${p + 3}, $${p + 2}, $${p + 4}, $${p + 5}, NULL, 'webhook', NULL, 'info', '{}')`;
    });
    await conn.run(`INSERT INTO opshub_activity VALUES ${tuples.join(', ')}`, values);
  }
  return conn;
}

const NOT_REQUESTS = ['login', 'logout', 'signup', 'session_start', 'session_end'];

/** The definition, row by row: a gap over `idleMs`, a logout before, or a login starts a session. */
function reference(rows: Activity[], fromMs: number, idleMs: number): Session[] {
  const byUser = new Map<string, Activity[]>();
  for (const r of rows.filter((x) => x.ms >= fromMs).sort((a, b) => a.ms - b.ms)) (byUser.get(r.user) ?? byUser.set(r.user, []).get(r.user)!).push(r);
  const out: Array<Session & { lastAction: string }> = [];
  for (const [user, list] of byUser) {
    let s: (Session & { lastAction: string }) | undefined;
    let prev: Activity | undefined;
    for (const r of list) {
      const action = (r.action ?? '').toLowerCase();
      if (!s || !prev || r.ms - prev.ms > idleMs || (prev.action ?? '').toLowerCase() === 'logout' || action === 'login') {
        if (s) out.push(s);
        s = { username: user, model: null, session_id: '', started_ms: r.ms, last_ms: r.ms, request_count: 0, ip_address: null, ended_by_logout: false, lastAction: '' };
      }
      s.last_ms = r.ms;
      if (r.model !== null) s.model = r.model;
      if (r.session !== null && !s.session_id) s.session_id = r.session;
      if (r.ip !== null) s.ip_address = r.ip;
      if (!NOT_REQUESTS.includes(action)) s.request_count++;
      s.lastAction = action;
      s.ended_by_logout = action === 'logout';
      prev = r;
    }
    if (s) out.push(s);
  }
  return out.map(({ lastAction: _, ...x }) => ({ ...x, session_id: x.session_id || `${x.username}-${x.started_ms}` }));
}

/** Random activity: a few users, times that cluster (many rows per minute) with gaps near the idle timeout, some logins and logouts, fields sometimes missing. */
function randomActivity(seed: number, count: number, idleMs: number): Activity[] {
  let x = seed;
  const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)]!;
  const used = new Set<number>();
  const out: Activity[] = [];
  const clock = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const user = pick(['alice', 'bob', 'carol', 'dave']);
    const step = pick([1, 7, 250, 3_000, 20_000, idleMs - 1, idleMs, idleMs + 1, 3 * idleMs]);
    let ms = (clock.get(user) ?? NOW - 12 * 60 * MIN) + step;
    while (used.has(ms)) ms++; // ties at one instant are ordered arbitrarily by any definition
    used.add(ms);
    clock.set(user, ms);
    const r = rnd();
    out.push({
      ms,
      user,
      action: r < 0.04 ? 'login' : r < 0.08 ? 'LOGOUT' : r < 0.1 ? null : r < 0.12 ? 'signup' : 'request',
      model: rnd() < 0.3 ? null : pick(['llama3.1:8b', 'qwen2.5:7b']),
      session: rnd() < 0.5 ? null : `s${Math.floor(rnd() * 1000)}`,
      ip: rnd() < 0.3 ? null : `10.0.0.${Math.floor(rnd() * 9)}`,
    });
  }
  return out;
}

const byStart = (a: Session, b: Session) => a.username.localeCompare(b.username) || a.started_ms - b.started_ms;

for (const idleMs of [30 * MIN, 45_000, 1]) {
  test(`sessions from summed buckets equal the row-by-row definition (idle ${idleMs} ms)`, async () => {
    for (const seed of [1, 2, 3]) {
      const rows = randomActivity(seed, 1500, idleMs);
      const conn = await store(rows);
      for (const fromMs of [NOW - 24 * 60 * MIN, rows[700]!.ms]) {
        const want = reference(rows, fromMs, idleMs).sort(byStart);
        const got = (await sessions(conn, { fromMs, idleMs })).sort(byStart);
        assert.ok(want.length > 10, `the data has sessions (${want.length})`);
        assert.deepEqual(got, want, `seed ${seed}, from ${fromMs}`);

        const nowMs = rows.at(-1)!.ms + 1000;
        const summary = await sessionSummary(conn, { fromMs, idleMs, nowMs });
        assert.equal(summary.total, want.length);
        assert.ok(Math.abs(summary.meanMs - want.reduce((a, s) => a + s.last_ms - s.started_ms, 0) / want.length) < 1e-6);
        const active = new Set(want.filter((s) => !s.ended_by_logout && nowMs - s.last_ms <= idleMs).map((s) => s.username));
        assert.equal(summary.activeUsers, active.size);
      }
      conn.closeSync();
    }
  });
}

test('peak concurrency counts sessions open at the same instant (openings before closings)', async () => {
  const cases: Array<[Array<[string, number, number]>, number]> = [
    [[], 0],
    [[['a', 0, 10]], 1],
    [[['a', 0, 10], ['b', 5, 15], ['c', 20, 30]], 2],
    [[['a', 0, 10], ['b', 10, 20]], 2], // one ends as the other starts: both open at t=10
    [[['a', 0, 0], ['b', 0, 0], ['c', 0, 0]], 3],
  ];
  for (const [list, peak] of cases) {
    // A session per [user, first, last] (seconds): a login at first, a request at last.
    const rows = list.flatMap(([user, a, z]): Activity[] => {
      const at = (s: number) => NOW - 60 * MIN + s * 1000;
      const login = { ms: at(a), user, action: 'login', model: null, session: null, ip: null };
      return z === a ? [login] : [login, { ...login, ms: at(z), action: 'request' }];
    });
    const conn = await store(rows);
    const summary = await sessionSummary(conn, { fromMs: NOW - 2 * 60 * MIN, idleMs: 30 * MIN, nowMs: NOW });
    assert.equal(summary.peak, peak, JSON.stringify(list));
    conn.closeSync();
  }
});
