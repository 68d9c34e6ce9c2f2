// kill -9 the real agent (`node bin/opshub.mjs run`) several times while an
// input keeps emitting numbered lines with positions; the input resumes from
// its own checkpoint, which deliberately lags (300 lines behind what was
// delivered), so every restart replays lines DuckDB already has. At the end every line is in
// the database exactly once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir, waitFor } from '../../helpers.ts';
import { queryFile } from './duckdb-helpers.ts';
import { freePort, REPO, startCli, type Child } from './duckdb-cli.ts';

const TOTAL = 15000;

const numberedInput = (total: number) => `
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { CheckpointFile } from ${JSON.stringify(path.join(REPO, 'core', 'checkpoint.ts'))};

// The checkpoint is saved 300 lines behind what was delivered: it lags on purpose. (Saved every
// 500 lines instead, it matched the store exactly whenever a commit ended on such a line.)
const LAG = 300;

export default {
  kind: 'service_input',
  type: 'numbered',
  description: 'Test input: numbered lines with positions, resuming from its own lagging checkpoint.',
  schema: { type: 'object', additionalProperties: false, properties: {} },
  create(_config, ctx) {
    const file = new CheckpointFile(ctx.dataDir);
    let next = (file.get('seq') ?? -1) + 1;
    let timer;
    return {
      async start(acc) {
        mkdirSync(ctx.dataDir, { recursive: true });
        appendFileSync(path.join(ctx.dataDir, 'starts.log'), next + '\\n');
        timer = setInterval(() => {
          const events = [];
          const positions = [];
          for (let i = 0; i < 50 && next < ${total}; i++, next++) {
            events.push({
              kind: 'log', timestamp: BigInt(Date.now()) * 1000000n + BigInt(next % 1000), source: 'numbered', level: 'info',
              message: 'line ' + next + ' user=u' + (next % 7) + ' model=llama3.1:8b status=200',
              labels: { container: 'numbered' }, attributes: { seq: next },
            });
            positions.push({ input: ctx.id, key: 'seq', value: next, order: String(next).padStart(10, '0') });
          }
          if (!events.length) return;
          const last = next - 1;
          acc.emitTracked(events, {
            positions,
            onDelivered: () => {
              if (last - LAG > (file.get('seq') ?? -1)) file.set('seq', last - LAG);
            },
          });
        }, 20);
      },
      async stop() {
        clearInterval(timer);
        await file.flush();
      },
    };
  },
};
`;

async function count(url: string): Promise<number> {
  try {
    const res = await fetch(`${url}/api/query/duckdb`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer k' },
      body: JSON.stringify({ sql: 'SELECT count(*) FROM opshub_logs' }),
    });
    if (!res.ok) return -1;
    const body = (await res.json()) as { rows: number[][] };
    return body.rows[0]![0]!;
  } catch {
    return -1; // not up yet
  }
}

test('kill -9 during the run, several times: after restarts every line is in DuckDB exactly once', { timeout: 240_000 }, async (t) => {
  const tmp = tempDir();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dataDir = path.join(tmp.dir, 'data');
  mkdirSync(path.join(tmp.dir, 'plugins'));
  writeFileSync(path.join(tmp.dir, 'plugins', 'numbered.mjs'), numberedInput(TOTAL));
  const file = path.join(tmp.dir, 'opshub.yaml');
  writeFileSync(
    file,
    `
agent:
  data_dir: ${dataDir}
  plugin_dir: plugins
  self_metrics: false
  log_level: warn
  http:
    listen: 127.0.0.1:${port}
    auth_token: k
inputs:
  - type: numbered
processors:
  - type: regex_classifier
  - type: user_extraction
outputs:
  - type: duckdb
    batch_size: 100
    flush_interval: 20ms
    memory_limit: 256MiB
    threads: 1
    retention:
      enabled: false
`,
  );
  let child: Child | undefined;
  const killedAt: number[] = [];
  try {
    for (let round = 0; round < 4; round++) {
      child = startCli(['run', '-c', file], tmp.dir);
      // Capped: commits come a second apart, so a round may already have committed the rest.
      const floor = Math.min((killedAt.at(-1) ?? 0) + 400, TOTAL);
      await waitFor(async () => (await count(url)) >= floor, 60_000, `round ${round}: ${floor} rows committed\n${child.output()}`);
      child.proc.kill('SIGKILL');
      await child.exited;
      killedAt.push(await countAfterDeath(path.join(dataDir, 'duckdb', 'opshub.duckdb')));
    }
    child = startCli(['run', '-c', file], tmp.dir);
    await waitFor(async () => (await count(url)) >= TOTAL, 90_000, `all ${TOTAL} rows\n${child.output()}`);
    child.proc.kill('SIGTERM');
    assert.equal(await child.exited, 0, child.output());
    child = undefined;

    const rows = await queryFile(
      path.join(dataDir, 'duckdb', 'opshub.duckdb'),
      `SELECT count(*), count(DISTINCT CAST(attributes->>'seq' AS INTEGER)), min(CAST(attributes->>'seq' AS INTEGER)), max(CAST(attributes->>'seq' AS INTEGER)) FROM opshub_logs`,
    );
    assert.deepEqual(rows, [[BigInt(TOTAL), BigInt(TOTAL), 0, TOTAL - 1]], 'every line once, none missing');
    const users = await queryFile(path.join(dataDir, 'duckdb', 'opshub.duckdb'), `SELECT count(*) FROM opshub_activity`);
    assert.deepEqual(users, [[BigInt(TOTAL)]], 'each line named a user once');

    // The input really did replay lines the store already had: each restart resumed before what was committed.
    const starts = readFileSync(path.join(dataDir, 'numbered', 'starts.log'), 'utf8').trim().split('\n').map(Number);
    assert.equal(starts.length, 5);
    t.diagnostic(`resumed at ${starts.join(', ')}; committed at each kill ${killedAt.join(', ')}`);
    const replays = starts.slice(1).filter((resume, i) => resume < killedAt[i]!);
    assert.ok(replays.length >= 3, `restarts replayed committed lines: starts ${starts.join(',')} vs committed at kill ${killedAt.join(',')}`);
  } finally {
    child?.proc.kill('SIGKILL');
    if (child) await child.exited;
    tmp.cleanup();
  }
});

/** Rows committed when the agent died: read straight from the file (after WAL replay), now that no process holds it. */
async function countAfterDeath(dbFile: string): Promise<number> {
  const rows = await queryFile(dbFile, 'SELECT count(*) FROM opshub_logs');
  return Number(rows[0]![0]);
}
