// Filters a live-stream client chooses (WebSocket query string or subscribe
// message): container, level (exact) or min_level, source, metric name.
// Shared by outputs.websocket (/ws/logs, /ws/metrics) and the alerts stream.

import { LEVELS, levelRank, type LogEvent, type MetricEvent } from '../../core/events.ts';
import { levelFromWord } from './levels.ts';

export interface EventFilter {
  containers?: Set<string>;
  levels?: Set<string>;
  minLevel?: string;
  sources?: Set<string>;
  /** Metric name globs (`*` wildcard), and the same compiled. */
  names?: string[];
  nameRes?: RegExp[];
}

export type FilterKind = 'log' | 'metric';

const KEYS: Record<FilterKind, string[]> = {
  log: ['container', 'level', 'min_level', 'source'],
  metric: ['container', 'name'],
};

/** Values as a list: "a,b", ["a","b"] or ["a,b","c"]; empty strings ignored. */
export function filterValues(key: string, value: unknown): string[] {
  const items = Array.isArray(value) ? value : [value];
  const out: string[] = [];
  for (const item of items) {
    if (typeof item !== 'string') throw new Error(`${key}: expected a string or a list of strings`);
    for (const part of item.split(',')) if (part.trim()) out.push(part.trim());
  }
  return out;
}

function level(key: string, word: string): string {
  const l = levelFromWord(word);
  if (!l) throw new Error(`${key}: unknown level "${word}" (one of ${LEVELS.join(', ')})`);
  return l;
}

function globToRegex(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/** Parses a filter; unknown keys and bad values throw an Error meant for the client. */
export function parseEventFilter(input: Record<string, unknown>, kind: FilterKind): EventFilter {
  const allowed = KEYS[kind];
  const f: EventFilter = {};
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined || value === null) continue;
    if (!allowed.includes(key)) throw new Error(`unknown filter "${key}" for ${kind}s (use ${allowed.join(', ')})`);
    const values = filterValues(key, value);
    if (values.length === 0) continue;
    if (key === 'container') f.containers = new Set(values);
    else if (key === 'source') f.sources = new Set(values);
    else if (key === 'level') f.levels = new Set(values.map((v) => level(key, v)));
    else if (key === 'min_level') {
      if (values.length > 1) throw new Error('min_level: one level');
      f.minLevel = level(key, values[0]!);
    } else if (key === 'name') {
      f.names = values;
      f.nameRes = values.map(globToRegex);
    }
  }
  return f;
}

/** The filter as plain JSON (for echoing back to the client). */
export function describeEventFilter(f: EventFilter): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (f.containers) out.container = [...f.containers];
  if (f.levels) out.level = [...f.levels];
  if (f.minLevel) out.min_level = f.minLevel;
  if (f.sources) out.source = [...f.sources];
  if (f.names) out.name = f.names;
  return out;
}

/** The container a log line belongs to: its `container` label, else its source. */
function containerOf(e: LogEvent): string {
  return e.labels.container ?? e.source;
}

export function logMatches(f: EventFilter, e: LogEvent): boolean {
  if (f.containers && !f.containers.has(containerOf(e))) return false;
  if (f.levels && !f.levels.has(e.level)) return false;
  if (f.minLevel && levelRank(e.level) < levelRank(f.minLevel)) return false;
  if (f.sources && !f.sources.has(e.source)) return false;
  return true;
}

export function metricMatches(f: EventFilter, e: MetricEvent): boolean {
  if (f.containers && !f.containers.has(e.tags.container ?? '')) return false;
  if (f.nameRes && !f.nameRes.some((re) => re.test(e.name))) return false;
  return true;
}
