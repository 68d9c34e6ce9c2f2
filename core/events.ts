// The two event kinds that flow through a pipeline. Events are plain data:
// whatever the runtime adds (origin, delivery tracking, checkpoints) lives in
// the Envelope beside the event, never inside user fields.

export const LEVELS = ['trace', 'debug', 'info', 'success', 'warning', 'error', 'critical'] as const;
export type Level = (typeof LEVELS)[number];

/** Numeric rank of a level, for "minimum level" filters. */
export function levelRank(level: string): number {
  const i = (LEVELS as readonly string[]).indexOf(level);
  return i < 0 ? LEVELS.indexOf('info') : i;
}

export interface LogEvent {
  kind: 'log';
  /** Nanoseconds since the Unix epoch. */
  timestamp: bigint;
  /** Where the line came from, e.g. the container name or "webhook". */
  source: string;
  level: Level;
  message: string;
  /** Low-cardinality identity (container, stream, host...): safe to index or use as Loki labels. */
  labels: Record<string, string>;
  /** Everything else a processor or input learned about the line. */
  attributes: Record<string, unknown>;
}

export type FieldValue = number | bigint | string | boolean;

export type MetricType = 'gauge' | 'counter' | 'untyped';

export interface MetricEvent {
  kind: 'metric';
  /** Measurement name; exported to Prometheus as `<name>_<field>`. */
  name: string;
  tags: Record<string, string>;
  fields: Record<string, FieldValue>;
  /** Nanoseconds since the Unix epoch. */
  timestamp: bigint;
  /** How the numeric fields behave; counters only ever go up (until a restart). */
  type: MetricType;
}

export type Event = LogEvent | MetricEvent;
export type EventKind = Event['kind'];

const NS_PER_MS = 1_000_000n;

export function nowNs(): bigint {
  // Date.now() has ms resolution; hrtime adds sub-ms ordering within this process.
  return BigInt(Date.now()) * NS_PER_MS + (process.hrtime.bigint() % NS_PER_MS);
}

export function msToNs(ms: number): bigint {
  return BigInt(Math.trunc(ms)) * NS_PER_MS + BigInt(Math.round((ms % 1) * 1e6));
}

export function nsToMs(ns: bigint): number {
  return Number(ns / NS_PER_MS);
}

/** RFC 3339 with nine fractional digits, e.g. 2026-11-23T12:00:00.123456789Z. */
export function formatNs(ns: bigint): string {
  const ms = ns / NS_PER_MS;
  const iso = new Date(Number(ms)).toISOString(); // ...SS.mmmZ
  const frac = (ns % 1_000_000_000n + 1_000_000_000n) % 1_000_000_000n;
  return `${iso.slice(0, 19)}.${frac.toString().padStart(9, '0')}Z`;
}

/** Parses RFC 3339 with up to nine fractional digits (Docker's format) into ns; NaN-safe: returns undefined. */
export function parseRfc3339Ns(text: string): bigint | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})$/.exec(text);
  if (!m) return undefined;
  const seconds = Date.parse(`${m[1]}${m[3] === 'Z' ? 'Z' : m[3]}`);
  if (Number.isNaN(seconds)) return undefined;
  const frac = BigInt((m[2] ?? '').padEnd(9, '0'));
  return BigInt(seconds) * NS_PER_MS + frac;
}

export function makeLog(partial: Partial<LogEvent> & { message: string }): LogEvent {
  return {
    kind: 'log',
    timestamp: partial.timestamp ?? nowNs(),
    source: partial.source ?? '',
    level: partial.level ?? 'info',
    message: partial.message,
    labels: partial.labels ?? {},
    attributes: partial.attributes ?? {},
  };
}

export function makeMetric(
  name: string,
  fields: Record<string, FieldValue>,
  tags: Record<string, string> = {},
  opts: { type?: MetricType; timestamp?: bigint } = {},
): MetricEvent {
  return { kind: 'metric', name, tags, fields, timestamp: opts.timestamp ?? nowNs(), type: opts.type ?? 'gauge' };
}

/** JSON-safe view of an event: bigint timestamps become RFC 3339 strings. */
export function eventToJSON(event: Event): Record<string, unknown> {
  if (event.kind === 'log') {
    return {
      kind: 'log',
      timestamp: formatNs(event.timestamp),
      source: event.source,
      level: event.level,
      message: event.message,
      labels: event.labels,
      attributes: event.attributes,
    };
  }
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(event.fields)) fields[k] = typeof v === 'bigint' ? Number(v) : v;
  return { kind: 'metric', timestamp: formatNs(event.timestamp), name: event.name, type: event.type, tags: event.tags, fields };
}
