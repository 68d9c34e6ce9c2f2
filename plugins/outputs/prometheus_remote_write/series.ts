// Metric events → Prometheus time series. Each numeric field of a metric
// event is one sample of the series `<name>_<field>` (counters end in
// `_total`), labelled with the event's tags plus the configured extra labels
// (external labels, host). Labels are sorted by name (the remote-write spec),
// samples of a series by time; two samples of one series in the same
// millisecond keep the later event's value.

import { nsToMs, type Event, type MetricType } from '../../../core/events.ts';
import { sanitizeLabelName, seriesName } from '../../common/prometheus_names.ts';

export type Label = [name: string, value: string];

export interface Sample {
  value: number;
  /** Milliseconds since the Unix epoch. */
  timestampMs: number;
}

export interface Series {
  /** Sorted by name, `__name__` included. */
  labels: Label[];
  /** Sorted by time. */
  samples: Sample[];
}

export interface MappedBatch {
  series: Series[];
  /** Series name → metric type, for metadata. */
  families: Map<string, MetricType>;
  samples: number;
  /** String fields: Prometheus samples are numbers, so they are not sent. */
  stringFields: number;
  /** Log events reaching this output (its `match` should leave them out). */
  logEvents: number;
  /** Samples replaced by a later one of the same series and millisecond. */
  duplicateSamples: number;
}

const NAME = '__name__';
const CACHE_LIMIT = 10_000;

function byName(a: Label, b: Label): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** Per output instance: keeps sanitised names cached between batches. */
export class SeriesMapper {
  private names = new Map<string, string>();
  private labelNames = new Map<string, string>();

  /** `extra`: labels added to every series unless a tag of the same name is present (external labels, host). */
  constructor(private extra: Label[]) {}

  map(events: Event[]): MappedBatch {
    const out: MappedBatch = { series: [], families: new Map(), samples: 0, stringFields: 0, logEvents: 0, duplicateSamples: 0 };
    const byKey = new Map<string, Series>();
    for (const event of events) {
      if (event.kind !== 'metric') {
        out.logEvents++;
        continue;
      }
      const base = this.labels(event.tags);
      let baseKey: string | undefined;
      const timestampMs = nsToMs(event.timestamp);
      for (const field in event.fields) {
        const raw = event.fields[field]!;
        let value: number;
        if (typeof raw === 'number') value = raw;
        else if (typeof raw === 'boolean') value = raw ? 1 : 0;
        else if (typeof raw === 'bigint') value = Number(raw);
        else {
          out.stringFields++;
          continue;
        }
        const name = this.name(event.name, field, event.type);
        baseKey ??= base.map((l) => `${l[0]}\u0001${l[1]}`).join('\u0002');
        const key = `${name}\u0002${baseKey}`;
        let series = byKey.get(key);
        if (!series) {
          series = { labels: withName(base, name), samples: [] };
          byKey.set(key, series);
          out.series.push(series);
          if (!out.families.has(name)) out.families.set(name, event.type);
        }
        series.samples.push({ value, timestampMs });
      }
    }
    for (const series of out.series) {
      out.duplicateSamples += orderSamples(series.samples);
      out.samples += series.samples.length;
    }
    return out;
  }

  private name(metric: string, field: string, type: MetricType): string {
    const key = `${type}\u0000${metric}\u0000${field}`;
    let name = this.names.get(key);
    if (name === undefined) {
      if (this.names.size >= CACHE_LIMIT) this.names.clear();
      name = seriesName(metric, field, type);
      this.names.set(key, name);
    }
    return name;
  }

  private labelName(tag: string): string {
    let name = this.labelNames.get(tag);
    if (name === undefined) {
      if (this.labelNames.size >= CACHE_LIMIT) this.labelNames.clear();
      name = sanitizeLabelName(tag);
      this.labelNames.set(tag, name);
    }
    return name;
  }

  /** The tags as sorted labels (empty values left out, `__x` names become `_x`), plus the extra labels they lack. */
  private labels(tags: Record<string, string>): Label[] {
    const labels: Label[] = [];
    const seen = new Set<string>();
    for (const tag of Object.keys(tags).sort()) {
      const value = tags[tag]!;
      if (value === '') continue;
      const name = this.labelName(tag);
      if (seen.has(name)) continue; // first of two tags that sanitise alike wins
      seen.add(name);
      labels.push([name, value]);
    }
    for (const label of this.extra) if (!seen.has(label[0])) labels.push(label);
    return labels.sort(byName);
  }
}

function withName(base: Label[], name: string): Label[] {
  const labels: Label[] = [];
  let placed = false;
  for (const label of base) {
    if (!placed && NAME < label[0]) {
      labels.push([NAME, name]);
      placed = true;
    }
    labels.push(label);
  }
  if (!placed) labels.push([NAME, name]);
  return labels;
}

/** Sorts samples by time (stable) and keeps the last of equal timestamps; returns how many were removed. */
function orderSamples(samples: Sample[]): number {
  if (samples.length < 2) return 0;
  let sorted = true;
  for (let i = 1; i < samples.length; i++) {
    if (samples[i]!.timestampMs < samples[i - 1]!.timestampMs) {
      sorted = false;
      break;
    }
  }
  if (!sorted) samples.sort((a, b) => a.timestampMs - b.timestampMs);
  let w = 0;
  for (let r = 0; r < samples.length; r++) {
    const s = samples[r]!;
    if (w > 0 && samples[w - 1]!.timestampMs === s.timestampMs) samples[w - 1] = s;
    else samples[w++] = s;
  }
  const removed = samples.length - w;
  samples.length = w;
  return removed;
}

/** Splits series into requests of at most `max` samples each; a long series continues, in time order, in the next request. */
export function splitBySamples(series: Series[], max: number): Series[][] {
  const requests: Series[][] = [];
  let current: Series[] = [];
  let count = 0;
  for (const s of series) {
    let start = 0;
    while (start < s.samples.length) {
      const take = Math.min(max - count, s.samples.length - start);
      current.push(start === 0 && take === s.samples.length ? s : { labels: s.labels, samples: s.samples.slice(start, start + take) });
      count += take;
      start += take;
      if (count >= max) {
        requests.push(current);
        current = [];
        count = 0;
      }
    }
  }
  if (current.length) requests.push(current);
  return requests;
}
