// `opshub query`: read-only SQL against the store of a pipeline file. While
// the agent runs it holds the database's lock, so the query goes to its query
// route (POST /api/query/<id>, with the agent's token); when nothing listens
// there, the file is opened read-only directly.

import { existsSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { loadConfig, ConfigError, type PluginInstanceConfig } from '../../../core/config.ts';
import { parseListen } from '../../../core/http.ts';
import { errorMessage } from '../../../core/log.ts';
import type { PluginDefinition } from '../../../core/plugin.ts';
import { parseDuration } from '../../../core/units.ts';
import { databaseFile, queryPath, type DuckdbConfig } from './index.ts';
import { duckdbMessage, formatResult, QueryError, runReadQuery, type QueryFormat, type QueryResult } from './query.ts';

export interface QueryCommandOptions {
  file: string;
  sql: string;
  format: QueryFormat;
  /** Id of the duckdb output (default: the first one). */
  output?: string;
  maxRows?: number;
  builtins: PluginDefinition[];
  env?: NodeJS.ProcessEnv;
  out?: (text: string) => void;
  err?: (text: string) => void;
}

class CommandError extends Error {}

/** The agent's address as a client reaches it: a wildcard listen address means this host. */
export function agentBaseUrl(listen: string): string {
  const { host, port } = parseListen(listen);
  const h = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

/** Nothing listens (or can be reached by fetch at all, e.g. a port fetch blocks). */
function refused(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } }).cause;
  const codes = [cause?.code, ...(cause?.errors ?? []).map((e) => e.code)];
  return codes.some((c) => c === 'ECONNREFUSED' || c === 'EADDRNOTAVAIL') || cause?.message === 'bad port';
}

async function viaAgent(url: string, token: string, sql: string, maxRows: number, timeoutMs: number): Promise<QueryResult | undefined> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ sql, max_rows: maxRows }),
      signal: AbortSignal.timeout(timeoutMs + 10_000),
    });
  } catch (err) {
    if (refused(err)) return undefined; // no agent: read the file instead
    throw new CommandError(`cannot reach the agent at ${url}: ${errorMessage((err as { cause?: unknown }).cause ?? err)}`);
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (res.ok) return body as unknown as QueryResult;
  if (res.status === 401) throw new CommandError(`the agent at ${url} refused the token (agent.http.auth_token in the pipeline file)`);
  if (res.status === 404) throw new CommandError(`the agent at ${new URL(url).origin} has no query route ${new URL(url).pathname} (is it running another pipeline file, or query.enabled: false?)`);
  throw new CommandError(String(body.message ?? `HTTP ${res.status}`));
}

async function viaFile(file: string, sql: string, maxRows: number, timeoutMs: number, url: string): Promise<QueryResult> {
  if (!existsSync(file)) throw new CommandError(`no database at ${file} yet (has the agent run with this pipeline file?)`);
  let instance: DuckDBInstance;
  try {
    instance = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });
  } catch (err) {
    const msg = duckdbMessage(err);
    if (/lock/i.test(msg)) throw new CommandError(`${file} is locked by another process, and no agent answers at ${url}: ${msg}`);
    throw new CommandError(`cannot open ${file}: ${msg}`);
  }
  try {
    const conn = await instance.connect();
    try {
      return await runReadQuery(conn, sql, { maxRows, timeoutMs });
    } finally {
      conn.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}

function pickOutput(outputs: PluginInstanceConfig[], id: string | undefined, file: string): PluginInstanceConfig {
  const stores = outputs.filter((o) => o.type === 'duckdb');
  if (stores.length === 0) throw new CommandError(`${file} has no outputs of type duckdb`);
  if (id === undefined) return stores[0]!;
  const found = stores.find((o) => o.id === id);
  if (!found) throw new CommandError(`${file} has no duckdb output with id "${id}" (there are: ${stores.map((o) => o.id).join(', ')})`);
  return found;
}

/** Runs the command; returns the exit code (0 ok, 1 failed or rejected). */
export async function queryCommand(opts: QueryCommandOptions): Promise<number> {
  const out = opts.out ?? ((t: string) => void process.stdout.write(t));
  const err = opts.err ?? ((t: string) => void process.stderr.write(t));
  try {
    let cfg;
    try {
      cfg = await loadConfig(opts.file, { builtins: opts.builtins, env: opts.env });
    } catch (e) {
      throw new CommandError(e instanceof ConfigError ? e.message : errorMessage(e));
    }
    const inst = pickOutput(cfg.outputs, opts.output, opts.file);
    const options = inst.options as unknown as DuckdbConfig;
    const maxRows = opts.maxRows ?? options.query.max_rows;
    const timeoutMs = parseDuration(options.query.timeout);
    const url = `${agentBaseUrl(cfg.agent.http.listen)}${queryPath(inst.id)}`;
    const result =
      (await viaAgent(url, cfg.agent.http.auth_token, opts.sql, maxRows, timeoutMs)) ??
      (await viaFile(databaseFile(options, inst.dataDir), opts.sql, maxRows, timeoutMs, url));
    out(formatResult(result, opts.format));
    return 0;
  } catch (e) {
    if (e instanceof CommandError || e instanceof QueryError) {
      err(`opshub query: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
