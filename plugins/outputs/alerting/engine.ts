// The rule engine: events in (ingest), alerts out (evaluate). It keeps, per
// rule, the state of each series (the last value of a metric per GPU or
// container, counts of log lines per container in time buckets, when each
// series was last seen), and one alert per rule and series through its
// lifecycle: pending (condition true, `for` not yet elapsed) → firing →
// resolved, with keep_firing_for holding a firing alert through short clears.
// The clock is injected, so tests drive time; nothing here does I/O.

import { randomBytes } from 'node:crypto';
import { nsToMs, type Event, type LogEvent, type MetricEvent } from '../../../core/events.ts';
import {
  compare,
  containerOfLog,
  defaultMessage,
  logKeyValue,
  metricMatches,
  numericAttribute,
  renderTemplate,
  type CompiledAbsent,
  type CompiledLogRate,
  type CompiledRule,
  type CompiledThreshold,
} from './rules.ts';
import type { Severity } from './schema.ts';
import { own, setOwn } from '../../../core/own.ts';

export type AlertState = 'pending' | 'firing' | 'resolved';

/** What was delivered to one notifier for one alert (ms since the epoch). */
export interface NotificationRecord {
  /** Last successful delivery of the firing alert. */
  firing_at?: number;
  /** Delivery of the resolution. */
  resolved_at?: number;
  /** When a delivery was last given up (retry_for passed, or dropped from a full queue). */
  gave_up_at?: number;
}

/** One alert: a rule and a series (or a custom alert), from pending to resolved. Persisted as JSON. */
export interface Alert {
  id: string;
  /** Rule name; null for custom alerts (POST /alerts). */
  rule: string | null;
  rule_type: 'threshold' | 'log_rate' | 'absent' | 'custom';
  /** The series within the rule ('' for one-series rules and custom alerts). */
  series: string;
  alert_type: string;
  severity: Severity;
  state: AlertState;
  labels: Record<string, string>;
  /** The series' tags (metric tags, group_by values), for templates and filters. */
  tags: Record<string, string>;
  message: string;
  container_name: string | null;
  value: number | null;
  threshold: number | null;
  /** When the condition first held (pending since). */
  active_at: number;
  /** When it fired; null while pending. */
  started_at: number | null;
  last_evaluated_at: number;
  resolved_at: number | null;
  /** When the condition last stopped holding while firing (keep_firing_for runs from here). */
  cleared_at: number | null;
  acknowledged: boolean;
  acknowledged_by: string | null;
  acknowledged_at: number | null;
  notes: string | null;
  /** First successful notification. */
  notified_at: number | null;
  notifications: Record<string, NotificationRecord>;
  /** Custom alerts: when they resolve by themselves. */
  resolve_at?: number;
  updated_at: number;
}

export type AlertEvent = 'pending' | 'firing' | 'resolved' | 'acknowledged';

export interface Transition {
  event: AlertEvent;
  alert: Alert;
}

export interface EngineOptions {
  now: () => number;
  hostname: string;
  /** Resolved alerts are kept this long (and at most historyLimit of them). */
  historyMs: number;
  historyLimit: number;
  /** Custom alerts resolve after this long unless told otherwise. */
  customResolveMs: number;
}

interface Sample {
  tags: Record<string, string>;
  metric: string;
  last: number;
  at: number;
  /** Values over the window (aggregates other than last). */
  samples?: Array<[at: number, value: number]>;
}

interface LogGroup {
  tags: Record<string, string>;
  /** bucket index → [matching lines, lines in scope]. */
  buckets: Map<number, [number, number]>;
  values: Array<[at: number, value: number]>;
}

export interface Seen {
  tags: Record<string, string>;
  at: number;
}

interface RuleState {
  rule: CompiledRule;
  fingerprint: string;
  series: Map<string, Sample>;
  groups: Map<string, LogGroup>;
  seen: Map<string, Seen>;
}

const CUSTOM = '\u0000custom';

/** A stable key for a set of tags. */
export function seriesKey(tags: Record<string, string>): string {
  const keys = Object.keys(tags).sort();
  let out = '';
  for (const k of keys) out += `${k}=${tags[k]}\u0001`;
  return out;
}

function numeric(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  return undefined;
}

function quantileOf(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

const MAX_VALUES = 10_000;

export function newAlertId(): string {
  return randomBytes(8).toString('hex');
}

/** The lifecycle fields of an alert nobody has resolved, acknowledged or notified yet. */
function freshLifecycle(now: number) {
  return {
    last_evaluated_at: now,
    resolved_at: null,
    cleared_at: null,
    acknowledged: false,
    acknowledged_by: null,
    acknowledged_at: null,
    notes: null,
    notified_at: null,
    notifications: {},
    updated_at: now,
  } satisfies Partial<Alert>;
}

export class Engine {
  private rules = new Map<string, RuleState>();
  /** rule name (or CUSTOM) → series → pending/firing alert. */
  private active = new Map<string, Map<string, Alert>>();
  private history = new Map<string, Alert>();
  /** Alerts restored at start that may not resolve until their rule has seen enough fresh data. */
  private restored = new Set<Alert>();
  private metricIndex = new Map<string, CompiledRule[]>();
  private logRules: Array<CompiledLogRate | CompiledAbsent> = [];
  readonly startedAt: number;
  /** Ids changed since the last drain (to persist and mirror), and ids to forget. */
  private changed = new Set<string>();
  private forgotten = new Set<string>();

  constructor(private opts: EngineOptions) {
    this.startedAt = opts.now();
  }

  get now(): number {
    return this.opts.now();
  }

  // --- rules -------------------------------------------------------------------------

  /** Replaces the rule set; rules whose definition did not change keep their series. */
  setRules(rules: CompiledRule[]): void {
    const next = new Map<string, RuleState>();
    for (const rule of rules) {
      const fingerprint = JSON.stringify(rule.spec);
      const old = this.rules.get(rule.name);
      if (old && old.fingerprint === fingerprint) next.set(rule.name, old);
      else next.set(rule.name, { rule, fingerprint, series: new Map(), groups: new Map(), seen: old?.rule.kind === 'absent' && rule.kind === 'absent' ? old.seen : new Map() });
    }
    this.rules = next;
    this.metricIndex.clear();
    this.logRules = [];
    for (const { rule } of next.values()) {
      if (!rule.spec.enabled) continue;
      if (rule.kind === 'log_rate' || (rule.kind === 'absent' && rule.metric === undefined)) this.logRules.push(rule);
    }
  }

  rule(name: string): CompiledRule | undefined {
    return this.rules.get(name)?.rule;
  }

  /** The threshold and absent rules that watch a metric `<name>_<field>` (memoised). */
  private rulesForMetric(full: string): CompiledRule[] {
    let list = this.metricIndex.get(full);
    if (list) return list;
    list = [];
    for (const { rule } of this.rules.values()) {
      if (!rule.spec.enabled) continue;
      if (rule.kind === 'threshold' && metricMatches(rule.metric, full)) list.push(rule);
      else if (rule.kind === 'absent' && rule.metric !== undefined && metricMatches(rule.metric, full)) list.push(rule);
    }
    if (this.metricIndex.size > 50_000) this.metricIndex.clear();
    this.metricIndex.set(full, list);
    return list;
  }

  // --- ingest ---------------------------------------------------------------------------

  ingest(events: Event[]): void {
    const now = this.opts.now();
    for (const e of events) {
      if (e.kind === 'metric') this.ingestMetric(e, now);
      else if (this.logRules.length) this.ingestLog(e, now);
    }
  }

  private ingestMetric(e: MetricEvent, now: number): void {
    for (const field in e.fields) {
      const full = `${e.name}_${field}`;
      const rules = this.rulesForMetric(full);
      if (rules.length === 0) continue;
      const value = numeric(e.fields[field]);
      for (const rule of rules) {
        if (rule.kind === 'log_rate' || !rule.tags(e.tags)) continue;
        const state = this.rules.get(rule.name)!;
        if (rule.kind === 'threshold') {
          if (value === undefined) continue;
          const key = `${full}\u0002${seriesKey(e.tags)}`;
          let s = state.series.get(key);
          if (!s) {
            s = { tags: { ...e.tags }, metric: full, last: value, at: now };
            state.series.set(key, s);
          }
          s.last = value;
          s.at = now;
          if (rule.aggregate !== 'last') {
            s.samples ??= [];
            s.samples.push([now, value]);
            if (s.samples.length > MAX_VALUES) s.samples.splice(0, s.samples.length - MAX_VALUES);
          }
        } else if (rule.kind === 'absent') {
          const tags: Record<string, string> = {};
          for (const k of rule.groupBy) setOwn(tags, k, own(e.tags, k) ?? '');
          state.seen.set(seriesKey(tags), { tags, at: now });
        }
      }
    }
  }

  private ingestLog(e: LogEvent, now: number): void {
    const container = containerOfLog(e);
    const at = Math.min(nsToMs(e.timestamp), now);
    for (const rule of this.logRules) {
      if (rule.containers && !rule.containers.test(container)) continue;
      if (rule.sources && !rule.sources.test(e.source)) continue;
      const tags: Record<string, string> = {};
      for (const k of rule.groupBy) setOwn(tags, k, logKeyValue(e, k));
      const key = seriesKey(tags);
      const state = this.rules.get(rule.name)!;
      if (rule.kind === 'absent') {
        state.seen.set(key, { tags, at: now });
        continue;
      }
      if (at <= now - rule.windowMs) continue;
      let g = state.groups.get(key);
      if (!g) {
        g = { tags, buckets: new Map(), values: [] };
        state.groups.set(key, g);
      }
      const bucketMs = Math.max(1000, Math.floor(rule.windowMs / 60));
      const idx = Math.floor(at / bucketMs);
      let b = g.buckets.get(idx);
      if (!b) {
        b = [0, 0];
        g.buckets.set(idx, b);
      }
      b[1]++;
      if (!rule.matches(e)) continue;
      b[0]++;
      if (rule.measure === 'avg' || rule.measure === 'max' || rule.measure === 'quantile') {
        const v = numericAttribute(e, rule.attribute);
        if (v !== undefined) {
          g.values.push([at, v]);
          if (g.values.length > MAX_VALUES) g.values.splice(0, g.values.length - MAX_VALUES);
        }
      }
    }
  }

  // --- evaluate ------------------------------------------------------------------------------

  /** Evaluates every rule at the clock's time; returns what changed. */
  evaluate(): Transition[] {
    const now = this.opts.now();
    const out: Transition[] = [];
    for (const state of this.rules.values()) {
      if (!state.rule.spec.enabled) continue;
      const results = this.results(state, now);
      this.apply(state.rule, results, now, out);
    }
    // Alerts whose rule is gone or switched off resolve; custom alerts resolve on time.
    for (const [rule, alerts] of this.active) {
      if (rule === CUSTOM) {
        for (const a of alerts.values()) if (a.resolve_at !== undefined && now >= a.resolve_at) this.resolve(a, now, out);
        continue;
      }
      const state = this.rules.get(rule);
      if (state && state.rule.spec.enabled) continue;
      for (const a of alerts.values()) {
        if (a.state === 'pending') this.drop(a);
        else this.resolve(a, now, out);
      }
    }
    this.prune(now);
    return out;
  }

  /** Current value per series and whether the condition holds. */
  private results(state: RuleState, now: number): Map<string, { value: number; tags: Record<string, string>; holds: boolean; metric?: string }> {
    const rule = state.rule;
    const out = new Map<string, { value: number; tags: Record<string, string>; holds: boolean; metric?: string }>();
    if (rule.kind === 'threshold') {
      for (const [key, s] of state.series) {
        if (now - s.at > rule.staleMs) {
          state.series.delete(key);
          continue;
        }
        const value = this.aggregate(rule, s, now);
        if (value === undefined) continue;
        out.set(key, { value, tags: s.tags, holds: compare(rule.op, value, rule.threshold), metric: s.metric });
      }
    } else if (rule.kind === 'log_rate') {
      const bucketMs = Math.max(1000, Math.floor(rule.windowMs / 60));
      const oldest = Math.floor((now - rule.windowMs) / bucketMs) + 1;
      for (const [key, g] of state.groups) {
        let matched = 0;
        let total = 0;
        for (const [idx, [m, t]] of g.buckets) {
          if (idx < oldest) g.buckets.delete(idx);
          else {
            matched += m;
            total += t;
          }
        }
        let drop = 0;
        while (drop < g.values.length && g.values[drop]![0] <= now - rule.windowMs) drop++;
        if (drop) g.values.splice(0, drop);
        if (total === 0) {
          state.groups.delete(key);
          continue;
        }
        let value: number | undefined;
        if (rule.measure === 'count') value = matched;
        else if (rule.measure === 'share') value = total >= rule.minEvents ? (100 * matched) / total : undefined;
        else if (g.values.length >= rule.minEvents && g.values.length > 0) {
          const vs = g.values.map((v) => v[1]);
          value = rule.measure === 'avg' ? vs.reduce((a, b) => a + b, 0) / vs.length : rule.measure === 'max' ? Math.max(...vs) : quantileOf(vs, rule.quantile);
        }
        if (value === undefined) continue;
        out.set(key, { value, tags: g.tags, holds: compare(rule.op, value, rule.threshold) });
      }
    } else {
      if (rule.groupBy.length === 0 && state.seen.size === 0) state.seen.set('', { tags: {}, at: this.startedAt });
      for (const [key, s] of state.seen) {
        // Data seen before a restart counts from the restart: the agent was not there to see it.
        const last = Math.max(s.at, this.startedAt);
        const silent = now - last;
        if (rule.forgetMs > 0 && silent >= rule.forgetMs) {
          state.seen.delete(key);
          continue;
        }
        out.set(key, { value: Math.round(silent / 1000), tags: s.tags, holds: silent >= rule.forMs });
      }
    }
    return out;
  }

  private aggregate(rule: CompiledThreshold, s: Sample, now: number): number | undefined {
    if (rule.aggregate === 'last') return s.last;
    const samples = s.samples ?? [];
    let drop = 0;
    while (drop < samples.length && samples[drop]![0] <= now - rule.windowMs) drop++;
    if (drop) samples.splice(0, drop);
    if (samples.length === 0) return undefined;
    const values = samples.map((x) => x[1]);
    switch (rule.aggregate) {
      case 'avg': return values.reduce((a, b) => a + b, 0) / values.length;
      case 'min': return Math.min(...values);
      case 'max': return Math.max(...values);
      case 'increase': {
        // Like Prometheus' increase(): a drop is a counter reset, counted from zero.
        let inc = 0;
        for (let i = 1; i < values.length; i++) {
          const d = values[i]! - values[i - 1]!;
          inc += d >= 0 ? d : values[i]!;
        }
        return inc;
      }
    }
  }

  /** Whether a restored alert may resolve: its rule has seen enough data since start. */
  private settled(rule: CompiledRule, present: boolean, now: number): boolean {
    const since = now - this.startedAt;
    if (rule.kind === 'threshold') return present || since >= rule.staleMs;
    if (rule.kind === 'log_rate') return since >= rule.windowMs;
    return since >= rule.forMs;
  }

  private apply(rule: CompiledRule, results: Map<string, { value: number; tags: Record<string, string>; holds: boolean; metric?: string }>, now: number, out: Transition[]): void {
    let alerts = this.active.get(rule.name);
    // An absent rule's `for` is already in its condition (silent for that long).
    const forMs = rule.kind === 'absent' ? 0 : rule.forMs;
    for (const [key, r] of results) {
      const a = alerts?.get(key);
      if (r.holds) {
        if (a) {
          this.update(a, rule, r.value, r.tags, now, r.metric);
          a.cleared_at = null;
          this.restored.delete(a);
          if (a.state === 'pending' && now - a.active_at >= forMs) this.fire(a, now, out);
          continue;
        }
        const alert = this.create(rule, key, r.value, r.tags, now, r.metric);
        if (!alerts) {
          alerts = new Map();
          this.active.set(rule.name, alerts);
        }
        alerts.set(key, alert);
        if (forMs <= 0) this.fire(alert, now, out);
        else out.push({ event: 'pending', alert });
      } else if (a) {
        this.update(a, rule, r.value, r.tags, now, r.metric);
        this.cleared(a, rule, true, now, out);
      }
    }
    if (!alerts) return;
    for (const [key, a] of alerts) {
      if (results.has(key)) continue;
      a.last_evaluated_at = now;
      this.cleared(a, rule, false, now, out);
    }
  }

  private cleared(a: Alert, rule: CompiledRule, present: boolean, now: number, out: Transition[]): void {
    if (this.restored.has(a)) {
      if (!this.settled(rule, present, now)) return;
      this.restored.delete(a);
    }
    if (a.state === 'pending') {
      this.drop(a);
      return;
    }
    if (a.state !== 'firing') return;
    if (rule.keepFiringMs > 0) {
      if (a.cleared_at === null) {
        a.cleared_at = now;
        this.touch(a);
      }
      if (now - a.cleared_at < rule.keepFiringMs) return;
    }
    this.resolve(a, now, out);
  }

  private vars(rule: CompiledRule, a: Pick<Alert, 'value' | 'threshold' | 'severity' | 'tags'>, metric?: string): Record<string, string | number | null> {
    const spec = rule.spec;
    return {
      ...a.tags,
      ...spec.labels,
      value: a.value,
      threshold: a.threshold,
      rule: spec.name,
      severity: a.severity,
      metric: metric ?? ('metric' in spec ? spec.metric : ''),
      condition: 'condition' in spec ? spec.condition : '',
      for: spec.for,
      window: 'window' in spec ? spec.window : '',
      host: this.opts.hostname,
    };
  }

  private create(rule: CompiledRule, key: string, value: number, tags: Record<string, string>, now: number, metric?: string): Alert {
    const spec = rule.spec;
    const threshold = rule.kind === 'absent' ? Math.round(rule.forMs / 1000) : rule.threshold;
    const a: Alert = {
      id: newAlertId(),
      rule: spec.name,
      rule_type: spec.type,
      series: key,
      alert_type: spec.name,
      severity: spec.severity,
      state: 'pending',
      labels: {},
      tags: { ...tags },
      message: '',
      container_name: tags.container_name || tags.container || null,
      value,
      threshold,
      active_at: now,
      started_at: null,
      ...freshLifecycle(now),
    };
    a.labels = this.labelsFor(rule, a.tags);
    a.message = renderTemplate(spec.message || defaultMessage(spec), this.vars(rule, a, metric));
    this.touch(a);
    return a;
  }

  private labelsFor(rule: CompiledRule, tags: Record<string, string>): Record<string, string> {
    return { ...tags, ...rule.spec.labels, alertname: rule.name, severity: rule.spec.severity, host: this.opts.hostname };
  }

  private update(a: Alert, rule: CompiledRule, value: number, tags: Record<string, string>, now: number, metric?: string): void {
    a.value = value;
    a.last_evaluated_at = now;
    a.severity = rule.spec.severity;
    a.threshold = rule.kind === 'absent' ? Math.round(rule.forMs / 1000) : rule.threshold;
    if (seriesKey(a.tags) !== seriesKey(tags)) a.tags = { ...tags };
    a.labels = this.labelsFor(rule, a.tags);
    a.message = renderTemplate(rule.spec.message || defaultMessage(rule.spec), this.vars(rule, a, metric));
    this.touch(a);
  }

  private fire(a: Alert, now: number, out: Transition[]): void {
    a.state = 'firing';
    a.started_at = now;
    a.cleared_at = null;
    this.touch(a);
    out.push({ event: 'firing', alert: a });
  }

  private resolve(a: Alert, now: number, out: Transition[]): void {
    a.state = 'resolved';
    a.resolved_at = now;
    a.cleared_at = null;
    this.active.get(a.rule ?? CUSTOM)?.delete(a.series || a.id);
    this.restored.delete(a);
    this.history.set(a.id, a);
    this.touch(a);
    out.push({ event: 'resolved', alert: a });
  }

  /** A pending alert whose condition cleared: forgotten, as Prometheus does. */
  private drop(a: Alert): void {
    this.active.get(a.rule ?? CUSTOM)?.delete(a.series);
    this.restored.delete(a);
    this.changed.delete(a.id);
    this.forgotten.add(a.id);
  }

  private prune(now: number): void {
    for (const [rule, alerts] of this.active) if (alerts.size === 0) this.active.delete(rule);
    if (this.history.size === 0) return;
    const overflow = this.history.size - this.opts.historyLimit;
    let i = 0;
    for (const [id, a] of this.history) {
      // Insertion order is resolution order: the oldest come first.
      if (i < overflow || now - (a.resolved_at ?? a.updated_at) > this.opts.historyMs) {
        this.history.delete(id);
        this.forgotten.add(id);
        this.changed.delete(id);
      } else break;
      i++;
    }
  }

  /** Marks an alert changed (to be saved and mirrored). */
  touch(a: Alert): void {
    a.updated_at = this.opts.now();
    this.changed.add(a.id);
  }

  /** Ids changed and ids forgotten since the last call. */
  drain(): { changed: Alert[]; forgotten: string[] } {
    const changed: Alert[] = [];
    for (const id of this.changed) {
      const a = this.get(id);
      if (a) changed.push(a);
    }
    const forgotten = [...this.forgotten];
    this.changed.clear();
    this.forgotten.clear();
    return { changed, forgotten };
  }

  // --- custom alerts, acknowledgement, queries ------------------------------------------

  addCustom(input: { alert_type: string; severity: Severity; message: string; container_name?: string | null; metric_value?: number | null; threshold_value?: number | null; labels?: Record<string, string>; resolve_after_ms?: number }): Transition {
    const now = this.opts.now();
    const id = newAlertId();
    const a: Alert = {
      id,
      rule: null,
      rule_type: 'custom',
      series: '',
      alert_type: input.alert_type,
      severity: input.severity,
      state: 'firing',
      labels: {
        ...(input.container_name ? { container_name: input.container_name } : {}),
        ...(input.labels ?? {}),
        alertname: input.alert_type,
        severity: input.severity,
        host: this.opts.hostname,
        alert_id: id,
      },
      tags: input.container_name ? { container_name: input.container_name } : {},
      message: input.message,
      container_name: input.container_name ?? null,
      value: input.metric_value ?? null,
      threshold: input.threshold_value ?? null,
      active_at: now,
      started_at: now,
      ...freshLifecycle(now),
      resolve_at: now + (input.resolve_after_ms ?? this.opts.customResolveMs),
    };
    let custom = this.active.get(CUSTOM);
    if (!custom) {
      custom = new Map();
      this.active.set(CUSTOM, custom);
    }
    custom.set(id, a);
    this.touch(a);
    return { event: 'firing', alert: a };
  }

  acknowledge(id: string, by: string, notes: string | null): Transition | undefined {
    const a = this.get(id);
    if (!a) return undefined;
    a.acknowledged = true;
    a.acknowledged_by = by;
    a.acknowledged_at = this.opts.now();
    a.notes = notes;
    this.touch(a);
    return { event: 'acknowledged', alert: a };
  }

  get(id: string): Alert | undefined {
    const h = this.history.get(id);
    if (h) return h;
    for (const alerts of this.active.values()) for (const a of alerts.values()) if (a.id === id) return a;
    return undefined;
  }

  /** Pending and firing alerts. */
  activeAlerts(): Alert[] {
    const out: Alert[] = [];
    for (const alerts of this.active.values()) out.push(...alerts.values());
    return out;
  }

  /** Every alert held: pending, firing and the resolved ones of the history. */
  all(): Alert[] {
    return [...this.activeAlerts(), ...this.history.values()];
  }

  resolvedAlerts(): Alert[] {
    return [...this.history.values()];
  }

  // --- persistence --------------------------------------------------------------------------

  /** Takes back alerts saved by a previous run: active ones resume (and may not resolve before their rule has fresh data). */
  restore(alerts: Alert[]): void {
    const sorted = [...alerts].sort((a, b) => (a.resolved_at ?? 0) - (b.resolved_at ?? 0));
    for (const a of sorted) {
      if (a.state === 'resolved') {
        this.history.set(a.id, a);
        continue;
      }
      const bucket = a.rule ?? CUSTOM;
      let m = this.active.get(bucket);
      if (!m) {
        m = new Map();
        this.active.set(bucket, m);
      }
      m.set(a.rule === null ? a.id : a.series, a);
      if (a.rule !== null) this.restored.add(a);
    }
  }

  /** When each series of the absent rules was last seen, to save (not the placeholder of a rule that saw nothing yet). */
  exportSeen(): Record<string, Array<[string, Seen]>> {
    const out: Record<string, Array<[string, Seen]>> = {};
    for (const [name, state] of this.rules) {
      if (state.rule.kind !== 'absent') continue;
      setOwn(out, name, [...state.seen].filter(([key, s]) => !(key === '' && s.at === this.startedAt)));
    }
    return out;
  }

  importSeen(saved: Record<string, Array<[string, Seen]>>): void {
    for (const [name, entries] of Object.entries(saved)) {
      const state = this.rules.get(name);
      if (!state || state.rule.kind !== 'absent') continue;
      for (const [key, s] of entries) if (!state.seen.has(key)) state.seen.set(key, s);
    }
  }
}
