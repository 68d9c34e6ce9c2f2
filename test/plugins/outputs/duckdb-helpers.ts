// Helpers shared by the DuckDB output's tests: a plugin context on a real
// (unstarted) HTTP mount, opening a database file after the output closed it,
// and a test input that emits lines with positions.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { AgentHttpServer } from '../../../core/http.ts';
import { createLogger, type LogRecord } from '../../../core/log.ts';
import type { Checkpoint, PluginContext, PluginDefinition, ServiceInput } from '../../../core/plugin.ts';
import type { LogEvent } from '../../../core/events.ts';
import { createDuckdb, type DuckdbConfig } from '../../../plugins/outputs/duckdb/index.ts';

export const DUCKDB_DEFAULTS: DuckdbConfig = {
  path: '',
  archive_dir: '',
  archive_mode: 'daily',
  checkpoint_interval: '5m',
  commit_events: 122880,
  commit_interval: '1s',
  memory_limit: '256MiB',
  wal_size: '128MiB',
  threads: 1,
  retention: { enabled: false, active_days: 7, archive_days: 30, purge_days: 90, interval: '1h' },
  query: { enabled: true, max_rows: 10000, timeout: '30s' },
};

export function pluginContext(dataDir: string, logs: LogRecord[] = []): PluginContext {
  const log = createLogger({ level: 'debug', sink: (r) => logs.push(r) });
  return { id: 'duckdb', log, dataDir, http: new AgentHttpServer({ listen: '127.0.0.1:0', log }), hostname: 'test', signal: new AbortController().signal };
}

export function makeDuckdb(dataDir: string, config: Partial<DuckdbConfig> = {}, now?: () => number) {
  return createDuckdb({ ...DUCKDB_DEFAULTS, ...config }, pluginContext(dataDir), { now });
}

/** Opens the file (after the output has closed it) and runs `sql`, returning plain rows. */
export async function queryFile(file: string, sql: string): Promise<unknown[][]> {
  const db = await DuckDBInstance.create(file);
  try {
    const conn = await db.connect();
    try {
      return (await conn.runAndReadAll(sql)).getRowsJS() as unknown[][];
    } finally {
      conn.closeSync();
    }
  } finally {
    db.closeSync();
  }
}

/** Real-looking container logs from the classifier's testdata, one container per file. */
export function sampleContainers(): Array<{ container: string; lines: string[] }> {
  const dir = path.resolve(import.meta.dirname, '../../../plugins/processors/regex_classifier/testdata');
  const read = (f: string) => readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean);
  return [
    { container: 'open-webui', lines: read('open-webui.log') },
    { container: 'ollama', lines: read('ollama.log') },
    { container: 'nginx', lines: read('nginx.log') },
    { container: 'postgres', lines: read('postgres.log') },
    { container: 'keycloak', lines: read('keycloak.log') },
    {
      container: 'json-app',
      lines: [
        '{"timestamp":"2026-03-11T06:50:00.123456Z","level":"info","logger":"api","message":"chat completed","user_id":"u-42","username":"heidi","model":"mistral:7b","duration_ms":812}',
        '{"timestamp":"2026-03-11T06:50:01.5Z","level":"error","logger":"api","message":"upstream timeout","user_id":"u-42","model":"mistral:7b","path":"/api/chat","method":"POST","status":504}',
      ],
    },
  ];
}

/** A service input that emits each sample container's lines with per-container positions and reports delivery. */
export function sampleInput() {
  const control = { delivered: 0, total: 0 };
  const definition: PluginDefinition = {
    kind: 'service_input',
    type: 'sample_lines',
    description: 'Test input: realistic container lines with positions.',
    schema: { type: 'object', additionalProperties: false, properties: {} },
    create(_config, ctx): ServiceInput {
      return {
        async start(acc) {
          let t = 1_773_212_400_000_000_000n; // 2026-03-11T07:00:00Z
          for (const { container, lines } of sampleContainers()) {
            const events: LogEvent[] = [];
            const positions: Checkpoint[] = [];
            lines.forEach((message, i) => {
              events.push({ kind: 'log', timestamp: (t += 1_000_123n), source: container, level: 'info', message, labels: { container, stream: 'stdout' }, attributes: { container_id: `${container}-id` } });
              positions.push({ input: ctx.id, key: `${container}-id`, value: { line: i }, order: String(i).padStart(8, '0') });
            });
            control.total += events.length;
            acc.emitTracked(events, { positions, onDelivered: () => (control.delivered += events.length) });
          }
        },
        async stop() {},
      };
    },
  };
  return { definition, control };
}

export async function postQuery(url: string, sql: string, token?: string, extra: Record<string, unknown> = {}) {
  const res = await fetch(`${url}/api/query/duckdb`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ sql, ...extra }),
  });
  return { status: res.status, body: (await res.json()) as { rows: unknown[][]; columns: Array<{ name: string }>; truncated: boolean; message?: string } };
}
