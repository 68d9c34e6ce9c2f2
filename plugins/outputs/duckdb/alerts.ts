// Rows of opshub_alerts, written by outputs.alerting through this plugin's
// writeAlerts() (plugins/common/providers.ts ALERT_SINK): one transaction on
// the writer connection, queued with the ingestion batches, that replaces the
// rows of the given ids. The table has no primary key (see schema.ts), so a
// row is replaced by delete-then-insert; an alert's row holds its latest state.

import { DuckDBTimestampValue, type DuckDBConnection } from '@duckdb/node-api';
import type { AlertRow } from '../../common/providers.ts';
import { toJson } from './store.ts';

const ts = (ms: number | null) => (ms === null ? null : new DuckDBTimestampValue(BigInt(Math.round(ms)) * 1000n));

export async function upsertAlerts(conn: DuckDBConnection, rows: AlertRow[]): Promise<void> {
  if (rows.length === 0) return;
  // The last row of an id wins.
  const byId = new Map<string, AlertRow>();
  for (const r of rows) byId.set(r.id, r);
  await conn.run('BEGIN TRANSACTION');
  try {
    const ids = [...byId.keys()];
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      await conn.run(`DELETE FROM opshub_alerts WHERE id IN (${chunk.map((_, j) => `$${j + 1}`).join(', ')})`, chunk);
    }
    const appender = await conn.createAppender('opshub_alerts');
    try {
      for (const r of byId.values()) {
        const opt = (v: string | null) => (v === null ? appender.appendNull() : appender.appendVarchar(v));
        const num = (v: number | null) => (v === null || !Number.isFinite(v) ? appender.appendNull() : appender.appendDouble(v));
        const time = (v: number | null) => {
          const t = ts(v);
          if (t === null) appender.appendNull();
          else appender.appendTimestamp(t);
        };
        appender.appendVarchar(r.id);
        opt(r.rule);
        appender.appendVarchar(r.alert_type);
        appender.appendVarchar(r.severity);
        appender.appendVarchar(r.state);
        appender.appendVarchar(toJson(r.labels));
        appender.appendVarchar(r.message);
        opt(r.container_name);
        num(r.value);
        num(r.threshold);
        time(r.started_at);
        time(r.last_evaluated_at);
        time(r.resolved_at);
        appender.appendBoolean(r.acknowledged);
        opt(r.acknowledged_by);
        time(r.acknowledged_at);
        opt(r.notes);
        time(r.notified_at);
        time(r.updated_at);
        appender.endRow();
      }
      appender.closeSync();
    } catch (err) {
      try {
        appender.clear();
        appender.closeSync();
      } catch {
        /* rolled back below */
      }
      throw err;
    }
    await conn.run('COMMIT');
  } catch (err) {
    await conn.run('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
