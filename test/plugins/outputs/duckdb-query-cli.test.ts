// `opshub query` with the real CLI, both ways: straight to the file when no
// agent runs, and through the running agent's query route while it holds the
// file's lock.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeLog } from '../../../core/events.ts';
import { tempDir, waitFor } from '../../helpers.ts';
import { makeDuckdb } from './duckdb-helpers.ts';
import { freePort, runCli, startCli } from './duckdb-cli.ts';

const T = 1_773_212_400_000_000_000n;

async function seed(file: string): Promise<void> {
  const out = makeDuckdb(path.dirname(file), { path: file });
  await out.start!();
  const events = [
    makeLog({ timestamp: T, source: 'ollama', labels: { container: 'ollama' }, level: 'error', message: 'CUDA error: out of memory', attributes: { model: 'llama3.1:8b' } }),
    makeLog({ timestamp: T + 1n, source: 'open-webui', labels: { container: 'open-webui' }, message: 'chat, "quoted"', attributes: { username: 'alice', model: 'llama3.1:8b' } }),
  ];
  await out.write(events, { positions: [undefined, undefined], checkpoints: [] });
  await out.stop!();
}

function pipeline(dir: string, port: number, token: string, db: string): string {
  const file = path.join(dir, `opshub-${token}.yaml`);
  writeFileSync(
    file,
    `
agent:
  data_dir: ${path.join(dir, 'data')}
  self_metrics: false
  log_level: warn
  http:
    listen: 127.0.0.1:${port}
    auth_token: ${token}
outputs:
  - type: duckdb
    path: ${db}
    memory_limit: 256MiB
    threads: 1
    retention:
      enabled: false
`,
  );
  return file;
}

const SQL = `SELECT container_name, level, message FROM logs ORDER BY timestamp_ns`;

test('opshub query reads the file directly when no agent runs: table, CSV and JSON; non-read statements are refused', async () => {
  const tmp = tempDir();
  try {
    const db = path.join(tmp.dir, 'store.duckdb');
    await seed(db);
    const cfg = pipeline(tmp.dir, await freePort(), 'k', db); // nothing listens on that port

    const json = await runCli(['query', '-c', cfg, '--format', 'json', SQL], tmp.dir);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), [
      { container_name: 'ollama', level: 'error', message: 'CUDA error: out of memory' },
      { container_name: 'open-webui', level: 'info', message: 'chat, "quoted"' },
    ]);

    const csv = await runCli(['query', '-c', cfg, '--format', 'csv', SQL], tmp.dir);
    assert.equal(csv.code, 0, csv.stderr);
    assert.equal(csv.stdout, 'container_name,level,message\r\nollama,error,CUDA error: out of memory\r\nopen-webui,info,"chat, ""quoted"""\r\n');

    const table = await runCli(['query', '-c', cfg, `SELECT model, requests FROM model_usage`], tmp.dir);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /│ model\s+│ requests │/);
    assert.match(table.stdout, /│ llama3\.1:8b │\s+2 │/);
    assert.match(table.stdout, /1 row\n$/);

    const refused = await runCli(['query', '-c', cfg, 'DELETE FROM opshub_logs'], tmp.dir);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /only read statements are allowed/);
    const usage = await runCli(['query', '-c', cfg, '--format', 'xml', SQL], tmp.dir);
    assert.equal(usage.code, 2);
  } finally {
    tmp.cleanup();
  }
});

test('opshub query goes through the running agent, which holds the file, with its token', async () => {
  const tmp = tempDir();
  const db = path.join(tmp.dir, 'store.duckdb');
  await seed(db);
  const port = await freePort();
  const cfg = pipeline(tmp.dir, port, 'right', db);
  const agent = startCli(['run', '-c', cfg], tmp.dir);
  try {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)), 30_000, `the agent\n${agent.output()}`);
    const json = await runCli(['query', '-c', cfg, '--format', 'json', `SELECT count(*) AS n FROM logs WHERE level = 'error'`], tmp.dir);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), [{ n: 1 }]);

    // Same agent, a pipeline file with another token: the agent refuses, and the CLI does not fall back to the locked file.
    const wrong = await runCli(['query', '-c', pipeline(tmp.dir, port, 'wrong', db), 'SELECT 1'], tmp.dir);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /refused the token/);
  } finally {
    agent.proc.kill('SIGTERM');
    assert.equal(await agent.exited, 0, agent.output());
    tmp.cleanup();
  }
});
