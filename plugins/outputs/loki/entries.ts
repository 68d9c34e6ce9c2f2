// From log events to Loki streams: which fields become stream labels (a
// small, bounded set), which go to structured metadata, and what the line is.

import type { LogEvent } from '../../../core/events.ts';
import type { LokiEntry, LokiStream } from './encode.ts';
import { own, setOwn } from '../../../core/own.ts';

export type LineFormat = 'raw' | 'json' | 'logfmt';

/** Loki's default limit of label names per stream (limits_config.max_label_names_per_series). */
export const MAX_LABELS = 15;
/** Loki's default limit on a label value (limits_config.max_label_value_length). */
export const MAX_LABEL_VALUE_LENGTH = 2048;

/** A label name Loki accepts: `[a-zA-Z_][a-zA-Z0-9_]*`. */
export function sanitizeLabelName(name: string): string {
  const s = name.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[0-9]/.test(s) || s === '' ? `_${s}` : s;
}

/**
 * Names whose values are unbounded by nature (ids, times, free text): each
 * distinct value would make a new stream, which is what kills a Loki.
 */
export function isUnboundedLabelName(name: string): boolean {
  const lower = name.toLowerCase();
  if (/(^|_)(id|uuid|guid)$/.test(lower) || /[a-z0-9]Id$/.test(name) || /(uuid|guid)$/.test(lower)) return true;
  return ['timestamp', 'time', 'ts', 'date', 'message', 'msg', 'line', 'log', 'text', 'body', 'url', 'uri', 'path', 'query'].includes(lower);
}

export interface MapperOptions {
  /** Event fields to use as stream labels (names as written in config). */
  labels: string[];
  staticLabels: Record<string, string>;
  structuredMetadata: boolean;
  lineFormat: LineFormat;
  /** Distinct values one label name may take before new values stop being labels. */
  maxLabelValues: number;
  hostname: string;
}

/** Checks the label configuration; returns the problems (empty when fine). */
export function labelConfigProblems(labels: string[], staticLabels: Record<string, string>): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  for (const name of [...labels, ...Object.keys(staticLabels)]) {
    if (isUnboundedLabelName(name)) {
      problems.push(`"${name}" cannot be a label: its values are unbounded (one stream per value); it goes to structured metadata or the line instead`);
    }
    const clean = sanitizeLabelName(name);
    if (clean.startsWith('__')) problems.push(`"${name}" cannot be a label: names starting with __ are reserved by Loki`);
    names.add(clean);
  }
  if (names.size > MAX_LABELS) problems.push(`${names.size} labels configured; Loki allows at most ${MAX_LABELS} per stream`);
  return problems;
}

export interface MapperStats {
  /** Entries whose label value was not used because that label already had max_label_values values. */
  label_values_overflowed: number;
}

function scalar(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return undefined;
}

function text(v: unknown): string {
  return scalar(v) ?? JSON.stringify(v) ?? '';
}

function logfmtValue(v: string): string {
  return v !== '' && /^[^\s"=\\]+$/.test(v) ? v : JSON.stringify(v);
}

export interface MappedEntry {
  key: string;
  labels: Array<[string, string]>;
  entry: LokiEntry;
  /** Rough uncompressed size on the wire, for batch_max_bytes. */
  bytes: number;
}

/** Turns log events into entries with their stream; keeps the cardinality guard's state. */
export class EntryMapper {
  readonly stats: MapperStats = { label_values_overflowed: 0 };
  private readonly names: Array<{ from: string; to: string }>;
  private readonly statics: Record<string, string>;
  /** Every label name a stream can have, sorted (Loki's order). */
  private readonly order: string[];
  private readonly seen = new Map<string, Set<string>>();
  /** Label pairs per stream key, so each event does not rebuild them (bounded). */
  private readonly streamLabels = new Map<string, Array<[string, string]>>();
  /** Sanitised structured-metadata names (bounded). */
  private readonly cleanNames = new Map<string, string>();
  onOverflow?: (label: string) => void;

  constructor(private opts: MapperOptions) {
    this.names = opts.labels.map((from) => ({ from, to: sanitizeLabelName(from) }));
    this.statics = Object.fromEntries(Object.entries(opts.staticLabels).map(([k, v]) => [sanitizeLabelName(k), v]));
    this.order = [...new Set([...Object.keys(this.statics), ...this.names.map((n) => n.to), 'job'])].sort();
  }

  /** The value a configured label name takes for an event. */
  private valueOf(event: LogEvent, name: string): string | undefined {
    if (name === 'level') return event.level;
    if (name === 'source') return event.source || undefined;
    const fromLabels = own(event.labels, name);
    if (fromLabels !== undefined) return fromLabels;
    return scalar(own(event.attributes, name));
  }

  /** Values for `host` and `job` when neither the event nor static_labels has one. */
  private fallback(name: string): string | undefined {
    if (name === 'host') return this.opts.hostname || undefined;
    if (name === 'job') return 'opshub';
    return undefined;
  }

  /** Whether a value may become (or already is) a label value, under max_label_values. */
  private admit(name: string, value: string): boolean {
    if (value.length > MAX_LABEL_VALUE_LENGTH) return false;
    let values = this.seen.get(name);
    if (!values) this.seen.set(name, (values = new Set()));
    if (values.has(value)) return true;
    if (values.size >= this.opts.maxLabelValues) {
      this.stats.label_values_overflowed++;
      this.onOverflow?.(name);
      return false;
    }
    values.add(value);
    return true;
  }

  private cleanName(name: string): string {
    let clean = this.cleanNames.get(name);
    if (clean === undefined) {
      if (this.cleanNames.size > 10_000) this.cleanNames.clear();
      this.cleanNames.set(name, (clean = sanitizeLabelName(name)));
    }
    return clean;
  }

  map(event: LogEvent): MappedEntry {
    const chosen: Record<string, string> = {};
    const used: string[] = []; // event fields consumed as labels
    let overflow: Array<[string, string]> | undefined;
    for (const { from, to } of this.names) {
      let value = this.valueOf(event, from);
      if (value === undefined && own(this.statics, to) === undefined) value = this.fallback(from);
      if (value === undefined || value === '') continue;
      if (this.admit(to, value)) {
        setOwn(chosen, to, value);
        used.push(from);
      } else (overflow ??= []).push([from, value]);
    }
    let key = '';
    for (const name of this.order) {
      const v = own(chosen, name) ?? own(this.statics, name);
      if (v !== undefined) key += `${name}\u0000${v}\u0001`;
    }
    if (key === '') key = 'job\u0000opshub\u0001'; // Loki refuses a stream without labels
    let labels = this.streamLabels.get(key);
    if (!labels) {
      if (this.streamLabels.size > 10_000) this.streamLabels.clear();
      labels = [];
      for (const name of this.order) {
        const v = own(chosen, name) ?? own(this.statics, name);
        if (v !== undefined) labels.push([name, v]);
      }
      if (labels.length === 0) labels.push(['job', 'opshub']);
      this.streamLabels.set(key, labels);
    }

    // Everything that is not a stream label.
    const extras: Array<[string, unknown]> = [];
    if (!used.includes('level')) extras.push(['level', event.level]);
    if (!used.includes('source') && event.source) extras.push(['source', event.source]);
    for (const k in event.labels) if (!used.includes(k)) extras.push([k, event.labels[k]]);
    for (const k in event.attributes) {
      const v = event.attributes[k];
      if (v !== undefined && !used.includes(k)) extras.push([k, v]);
    }
    if (overflow) extras.push(...overflow);

    let line: string;
    let metadata: Array<[string, string]> | undefined;
    let bytes = 32;
    if (this.opts.lineFormat === 'raw') {
      line = event.message;
      if (this.opts.structuredMetadata && extras.length) {
        metadata = [];
        for (const [k, v] of extras) {
          const name = this.cleanName(k);
          if (metadata.some(([n]) => n === name)) continue;
          const value = text(v);
          metadata.push([name, value]);
          bytes += name.length + value.length + 8;
        }
      }
    } else {
      const obj: Record<string, unknown> = { message: event.message };
      for (const [k, v] of extras) if (!Object.hasOwn(obj, k)) setOwn(obj, k, v);
      line =
        this.opts.lineFormat === 'json'
          ? JSON.stringify(obj, (_k, v) => (typeof v === 'bigint' ? Number(v) : v))
          : Object.entries(obj).map(([k, v]) => `${k}=${logfmtValue(text(v))}`).join(' ');
    }
    bytes += line.length;
    return { key, labels, entry: metadata ? { ts: event.timestamp, line, metadata } : { ts: event.timestamp, line }, bytes };
  }
}

/** Groups entries by stream (streams in order of first appearance) and sorts each stream by time (stable). */
export function toStreams(mapped: MappedEntry[]): LokiStream[] {
  const streams = new Map<string, LokiStream>();
  for (const m of mapped) {
    let s = streams.get(m.key);
    if (!s) streams.set(m.key, (s = { labels: m.labels, entries: [] }));
    s.entries.push(m.entry);
  }
  for (const s of streams.values()) s.entries.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
  return [...streams.values()];
}
