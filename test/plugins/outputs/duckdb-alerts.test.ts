// outputs.duckdb's writeAlerts(): rows of opshub_alerts replaced by id in one
// transaction, on a real database file, readable with SQL afterwards.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { AlertRow } from '../../../plugins/common/providers.ts';
import { ALERT_SINK } from '../../../plugins/common/providers.ts';
import { tempDir } from '../../helpers.ts';
import { makeDuckdb, queryFile } from './duckdb-helpers.ts';

const T0 = Date.parse('2026-03-11T07:00:00Z');

function row(id: string, over: Partial<AlertRow> = {}): AlertRow {
  return {
    id, rule: 'gpu_temperature_high', alert_type: 'gpu_temperature_high', severity: 'critical', state: 'firing',
    labels: { alertname: 'gpu_temperature_high', index: '0' }, message: 'GPU 0 temperature is 91°C', container_name: null,
    value: 91, threshold: 85, started_at: T0, last_evaluated_at: T0 + 15_000, resolved_at: null,
    acknowledged: false, acknowledged_by: null, acknowledged_at: null, notes: null, notified_at: T0 + 1000, updated_at: T0 + 15_000,
    ...over,
  };
}

test('writeAlerts inserts rows and replaces them by id; history is queryable with SQL', async () => {
  const tmp = tempDir();
  const out = makeDuckdb(tmp.dir);
  try {
    assert.ok(ALERT_SINK.has(out), 'the duckdb output offers the alert sink capability');
    await out.start!();
    await out.writeAlerts([row('a1'), row('b2', { rule: null, alert_type: 'deploy', severity: 'info', container_name: 'ollama', value: null, threshold: null })]);
    await out.writeAlerts([row('a1', { state: 'resolved', resolved_at: T0 + 60_000, acknowledged: true, acknowledged_by: 'ops', acknowledged_at: T0 + 30_000, notes: 'fan' })]);
    await out.stop!();
    const rows = await queryFile(
      path.join(tmp.dir, 'opshub.duckdb'),
      `SELECT id, rule, state, labels->>'index', value, threshold, strftime(started_at, '%H:%M:%S'), strftime(resolved_at, '%H:%M:%S'), acknowledged, acknowledged_by, notes, container_name
         FROM opshub_alerts ORDER BY id`,
    );
    assert.deepEqual(rows, [
      ['a1', 'gpu_temperature_high', 'resolved', '0', 91, 85, '07:00:00', '07:01:00', true, 'ops', 'fan', null],
      ['b2', null, 'firing', '0', null, null, '07:00:00', null, false, null, null, 'ollama'],
    ]);
  } finally {
    await out.stop!();
    tmp.cleanup();
  }
});

test('writeAlerts on a stopped store fails as retryable, so the caller keeps the rows for later', async () => {
  const tmp = tempDir();
  const out = makeDuckdb(tmp.dir);
  try {
    await assert.rejects(out.writeAlerts([row('x')]), { name: 'RetryableError' });
  } finally {
    await out.stop!();
    tmp.cleanup();
  }
});
