// processors.json_parse: structured JSON log lines lifted into the event —
// message, level and timestamp from their usual keys, everything else into
// attributes under conventional names (logger, function, line, request_id,
// user_id, ip_address...). Lines that are not a JSON object pass untouched;
// only lines starting with `{` are parsed at all.

import { parseRfc3339Ns, type Event, type Level, type LogEvent } from '../../../core/events.ts';
import type { PluginDefinition, Processor } from '../../../core/plugin.ts';
import { own, setOwn } from '../../../core/own.ts';
import { parseSize } from '../../../core/units.ts';
import { levelFromNumber, levelFromWord } from '../../common/levels.ts';

export interface JsonParseConfig {
  message_keys: string[];
  level_keys: string[];
  timestamp_keys: string[];
  use_timestamp: boolean;
  rename: Record<string, string>;
  keep_raw: boolean;
  max_bytes: string | number;
}

export const DEFAULT_RENAME: Record<string, string> = {
  name: 'logger',
  logger_name: 'logger',
  loggerName: 'logger',
  funcName: 'function',
  func_name: 'function',
  func: 'function',
  lineno: 'line',
  line_number: 'line',
  filename: 'file',
  requestId: 'request_id',
  req_id: 'request_id',
  reqId: 'request_id',
  correlation_id: 'request_id',
  userId: 'user_id',
  uid: 'user_id',
  client_ip: 'ip_address',
  clientIp: 'ip_address',
  remote_addr: 'ip_address',
  remoteAddr: 'ip_address',
  ip: 'ip_address',
  ipAddress: 'ip_address',
  source_ip: 'ip_address',
};

const NS_PER_MS = 1_000_000n;

/** ns since the epoch from a JSON timestamp: RFC 3339 (with or without zone, then UTC), "2024-05-01 12:00:00,123", or epoch s/ms/µs/ns. */
export function timestampNs(v: unknown): bigint | undefined {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v <= 0) return undefined;
    if (v < 1e11) return BigInt(Math.round(v * 1e6)) * 1000n; // seconds (float)
    if (v < 1e14) return BigInt(Math.round(v * 1000)) * 1000n; // ms
    if (v < 1e17) return BigInt(Math.round(v)) * 1000n; // µs
    return BigInt(Math.round(v)); // ns (precision limited by the double)
  }
  if (typeof v !== 'string' || v.length < 19 || v.length > 40) return undefined;
  let s = v;
  if (s.charCodeAt(10) === 32 /* space */) s = `${s.slice(0, 10)}T${s.slice(11)}`;
  if (s.charCodeAt(19) === 44 /* , */) s = `${s.slice(0, 19)}.${s.slice(20)}`;
  if (!/(?:Z|[+-]\d\d:?\d\d)$/.test(s)) s += 'Z';
  const ns = parseRfc3339Ns(s.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
  if (ns !== undefined) return ns;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? undefined : BigInt(ms) * NS_PER_MS;
}

function levelOf(v: unknown): Level | undefined {
  if (typeof v === 'string') return levelFromWord(v);
  if (typeof v === 'number') return levelFromNumber(v);
  return undefined;
}

/** Whether the text is a candidate JSON object: first and last non-blank characters are braces. */
function looksLikeObject(text: string): boolean {
  let i = 0;
  while (i < text.length && text.charCodeAt(i) <= 32) i++;
  if (text.charCodeAt(i) !== 123) return false;
  let j = text.length - 1;
  while (j > i && text.charCodeAt(j) <= 32) j--;
  return text.charCodeAt(j) === 125;
}

export function createJsonParse(config: JsonParseConfig): Processor {
  const maxBytes = parseSize(config.max_bytes);
  const messageKeys = config.message_keys;
  const levelKeys = config.level_keys;
  const timestampKeys = config.timestamp_keys;
  // A Map, not the config object: a JSON key such as "constructor" must not find Object.prototype's members.
  const rename = new Map(Object.entries(config.rename));

  const lift = (event: LogEvent): void => {
    const raw = event.message;
    if (raw.length > maxBytes || raw.length < 2 || !looksLikeObject(raw)) return;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch {
      return;
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return;
    const data = obj as Record<string, unknown>;
    const taken = new Set<string>();

    for (const k of messageKeys) {
      const v = data[k];
      if (typeof v === 'string') {
        event.message = v;
        taken.add(k);
        break;
      }
    }
    for (const k of levelKeys) {
      const v = data[k];
      if (v === undefined) continue;
      const level = levelOf(v);
      if (level) {
        event.level = level;
        taken.add(k);
      }
      break;
    }
    if (config.use_timestamp) {
      for (const k of timestampKeys) {
        const v = data[k];
        if (v === undefined) continue;
        const ns = timestampNs(v);
        if (ns !== undefined) {
          event.timestamp = ns;
          taken.add(k);
        }
        break;
      }
    }
    const attrs = event.attributes;
    for (const k in data) {
      if (taken.has(k)) continue;
      const name = rename.get(k) ?? k;
      // A key such as "constructor" or "__proto__" is data, not Object.prototype's member.
      if (own(attrs, name) === undefined) setOwn(attrs, name, data[k]);
    }
    if (config.keep_raw) attrs.raw_log = raw;
  };

  return {
    process(event: Event): Event {
      if (event.kind === 'log') lift(event);
      return event;
    },
  };
}

export const jsonParse: PluginDefinition<JsonParseConfig> = {
  kind: 'processor',
  type: 'json_parse',
  description: 'Lifts JSON log lines into the event: message, level, timestamp and attributes (logger, function, line, request_id, user_id, ...).',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      message_keys: {
        type: 'array',
        items: { type: 'string' },
        default: ['message', 'msg', 'event', 'text', 'log'],
        description: 'Keys tried in order for the message; the first string value becomes event.message (without one, the raw line stays the message).',
      },
      level_keys: {
        type: 'array',
        items: { type: 'string' },
        default: ['level', 'levelname', 'severity', 'lvl', 'log.level', 'loglevel'],
        description: 'Keys tried in order for the level: words in any case (WARN, warning, err, fatal...) or pino/bunyan numbers (30 info, 50 error).',
      },
      timestamp_keys: {
        type: 'array',
        items: { type: 'string' },
        default: ['timestamp', 'time', 'ts', '@timestamp', 'asctime', 'datetime', 't'],
        description: 'Keys tried in order for the timestamp: RFC 3339 (no zone means UTC), "2024-05-01 12:00:00,123", or epoch seconds/ms/µs/ns.',
      },
      use_timestamp: { type: 'boolean', default: true, description: "Replace the event's timestamp with the line's own; false keeps the input's (e.g. Docker's) and leaves the key in attributes." },
      rename: {
        type: 'object',
        additionalProperties: { type: 'string' },
        default: DEFAULT_RENAME,
        description: 'JSON key → attribute name, for the names loggers use (name → logger, funcName → function, lineno → line, requestId → request_id, client_ip → ip_address...). Replaces the default map when given.',
      },
      keep_raw: { type: 'boolean', default: false, description: 'Keep the original line in attributes.raw_log (the DuckDB `logs` view shows it as raw_log).' },
      max_bytes: { type: ['string', 'integer'], format: 'size', default: '1MiB', description: 'Lines longer than this are left as they are, unparsed.' },
    },
  },
  create: (config) => createJsonParse(config),
};

export default jsonParse;
