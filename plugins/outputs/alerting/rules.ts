// Rules: validation (the schema in schema.ts, with defaults applied), the
// built-in default rules, and compiling a rule into the matchers and numbers
// the engine evaluates with. Message templates are rendered here too.

import { createAjv } from '../../../core/config.ts';
import { formatPath } from '../../../core/config.ts';
import { levelRank, type LogEvent } from '../../../core/events.ts';
import { parseDuration } from '../../../core/units.ts';
import { CONDITION_WORDS, RULE_SCHEMA, type Op, type RuleSpec, type TagMatcher } from './schema.ts';
import { own } from '../../../core/own.ts';

/** A rule that does not validate; `reasons` name the key and the problem, one each. */
export class RuleError extends Error {
  constructor(readonly reasons: string[]) {
    super(reasons.join('; '));
    this.name = 'RuleError';
  }
}

type Validator = ((data: unknown) => boolean) & { errors?: Array<{ instancePath: string; keyword: string; message?: string; params: Record<string, unknown> }> | null };

type AjvError = { instancePath: string; keyword: string; message?: string; params: Record<string, unknown> };

/** ajv's errors as one sentence each ("threshold is required"), deduplicated; `subject` names the whole value. */
export function validationReasons(errors: AjvError[] | null | undefined, subject: string): string[] {
  const reasons: string[] = [];
  for (const e of errors ?? []) {
    if (e.keyword === 'if') continue;
    const segments = e.instancePath.split('/').slice(1).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    let where = formatPath(segments);
    let why = e.message ?? 'is invalid';
    if (e.keyword === 'additionalProperties') {
      where = formatPath([...segments, String(e.params.additionalProperty)]);
      why = 'is not a known key';
    } else if (e.keyword === 'required') {
      where = formatPath([...segments, String(e.params.missingProperty)]);
      why = 'is required';
    } else if (e.keyword === 'enum') {
      why = `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    } else if (e.keyword === 'format') {
      why = e.params.format === 'duration' ? 'must be a duration like "5m"' : e.params.format === 'regex' ? 'must be a valid regular expression' : why;
    }
    const reason = where ? `${where} ${why}` : `${subject} ${why}`;
    if (!reasons.includes(reason)) reasons.push(reason);
  }
  return reasons;
}

/** A validator per plugin instance (no module-level state). */
export function ruleValidator(): (raw: unknown) => RuleSpec {
  const ajv = createAjv();
  const validate = ajv.compile(RULE_SCHEMA) as Validator;
  return (raw) => {
    const data = structuredClone(raw);
    if (!validate(data)) {
      const reasons = validationReasons(validate.errors, 'the rule');
      throw new RuleError(reasons.length ? reasons : ['the rule is invalid']);
    }
    return data as RuleSpec;
  };
}

// --- the default rules --------------------------------------------------------------

/** The built-in rules, each switchable off with `default_rules.<name>: false` (or replaced by a rule of the same name). */
export const DEFAULT_RULES: Array<Record<string, unknown> & { name: string }> = [
  {
    name: 'gpu_temperature_high',
    type: 'threshold',
    metric: 'nvidia_smi_temperature_gpu_celsius',
    condition: '>',
    threshold: 85,
    for: '1m',
    keep_firing_for: '5m',
    severity: 'critical',
    message: 'GPU {{index}} ({{name}}) temperature is {{value}}°C (over {{threshold}}°C)',
  },
  {
    name: 'cpu_high',
    type: 'threshold',
    metric: 'system_cpu_usage_percent',
    tags: { cpu: 'total' },
    condition: '>',
    threshold: 80,
    for: '5m',
    keep_firing_for: '2m',
    severity: 'warning',
    message: 'CPU usage is {{value}}% (over {{threshold}}% for 5 minutes)',
  },
  {
    name: 'memory_high',
    type: 'threshold',
    metric: 'system_memory_used_percent',
    condition: '>',
    threshold: 90,
    for: '5m',
    keep_firing_for: '2m',
    severity: 'warning',
    message: 'Memory use is {{value}}% (over {{threshold}}% for 5 minutes)',
  },
  {
    name: 'disk_space_low',
    type: 'threshold',
    metric: 'system_filesystem_used_percent',
    condition: '>',
    threshold: 90,
    for: '1m',
    keep_firing_for: '5m',
    severity: 'critical',
    message: 'Filesystem {{mount}} has less than 10% free ({{value}}% used)',
  },
  {
    name: 'container_down',
    type: 'absent',
    metric: 'docker_container_status_uptime_seconds',
    group_by: ['container_name'],
    for: '2m',
    severity: 'critical',
    message: 'Container {{container_name}} is not running (no stats for {{for}})',
  },
  {
    name: 'container_restarting',
    type: 'threshold',
    metric: 'docker_container_status_restart_count',
    aggregate: 'increase',
    window: '15m',
    condition: '>',
    threshold: 0,
    severity: 'warning',
    message: 'Container {{container_name}} restarted {{value}} times in the last 15 minutes',
  },
  {
    name: 'container_error_share',
    type: 'log_rate',
    match: { levels: ['error', 'critical'] },
    measure: 'share',
    window: '5m',
    min_events: 20,
    condition: '>',
    threshold: 10,
    keep_firing_for: '5m',
    severity: 'critical',
    message: '{{value}}% of the log lines of {{container}} are errors (last 5 minutes)',
  },
  {
    name: 'container_error_lines',
    type: 'log_rate',
    match: { levels: ['error', 'critical'] },
    measure: 'count',
    window: '1h',
    condition: '>',
    threshold: 50,
    severity: 'warning',
    message: '{{container}} logged {{value}} error lines in the last hour',
  },
  {
    name: 'request_latency_p95',
    type: 'log_rate',
    containers: 'ollama|open-?webui',
    measure: 'quantile',
    attribute: 'duration_ms',
    quantile: 0.95,
    window: '5m',
    min_events: 5,
    condition: '>',
    threshold: 2000,
    keep_firing_for: '5m',
    severity: 'warning',
    message: 'Requests to {{container}} take {{value}} ms at p95 (over 2 s, last 5 minutes)',
  },
];

export const DEFAULT_RULE_NAMES = DEFAULT_RULES.map((r) => r.name);

// --- compiling ------------------------------------------------------------------------

export function opOf(condition: string): Op {
  const op = own(CONDITION_WORDS, condition);
  if (!op) throw new RuleError([`condition must be one of ${Object.keys(CONDITION_WORDS).join(', ')}`]);
  return op;
}

export function compare(op: Op, value: number, threshold: number): boolean {
  switch (op) {
    case '>': return value > threshold;
    case '>=': return value >= threshold;
    case '<': return value < threshold;
    case '<=': return value <= threshold;
    case '==': return value === threshold;
    case '!=': return value !== threshold;
  }
}

export function globToRegex(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

export type TagTest = (tags: Record<string, string>) => boolean;

export function compileTags(matchers: Record<string, TagMatcher>): TagTest {
  const tests: Array<(tags: Record<string, string>) => boolean> = [];
  for (const [key, m] of Object.entries(matchers)) {
    if (typeof m === 'string') {
      tests.push((t) => (own(t, key) ?? '') === m);
      continue;
    }
    if (m.equals !== undefined) tests.push((t) => (own(t, key) ?? '') === m.equals);
    if (m.not !== undefined) tests.push((t) => (own(t, key) ?? '') !== m.not);
    if (m.regex !== undefined) {
      const re = new RegExp(m.regex);
      tests.push((t) => re.test(own(t, key) ?? ''));
    }
    if (m.not_regex !== undefined) {
      const re = new RegExp(m.not_regex);
      tests.push((t) => !re.test(own(t, key) ?? ''));
    }
  }
  if (tests.length === 0) return () => true;
  return (t) => tests.every((f) => f(t));
}

/** The container a log line belongs to: label container_name or container, else the source. */
export function containerOfLog(e: LogEvent): string {
  return e.labels.container_name ?? e.labels.container ?? e.source;
}

/** A log line's value for a group_by key. */
export function logKeyValue(e: LogEvent, key: string): string {
  switch (key) {
    case 'container': return containerOfLog(e);
    case 'source': return e.source;
    case 'level': return e.level;
    case 'category': {
      const c = e.attributes.category;
      return typeof c === 'string' ? c : '';
    }
  }
  const label = own(e.labels, key);
  if (label !== undefined) return label;
  const attr = own(e.attributes, key);
  return attr === undefined || attr === null ? '' : typeof attr === 'object' ? JSON.stringify(attr) : String(attr);
}

/** A numeric attribute (a number, or a string holding one); undefined otherwise. */
export function numericAttribute(e: LogEvent, key: string): number | undefined {
  const v = e.attributes[key];
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

export interface CompiledBase {
  spec: RuleSpec;
  name: string;
  forMs: number;
  keepFiringMs: number;
}

export interface CompiledThreshold extends CompiledBase {
  kind: 'threshold';
  metric: RegExp | string;
  tags: TagTest;
  op: Op;
  threshold: number;
  aggregate: 'last' | 'avg' | 'min' | 'max' | 'increase';
  windowMs: number;
  staleMs: number;
}

export interface CompiledLogRate extends CompiledBase {
  kind: 'log_rate';
  containers?: RegExp;
  sources?: RegExp;
  /** Whether a line in scope counts. */
  matches: (e: LogEvent) => boolean;
  measure: 'count' | 'share' | 'avg' | 'max' | 'quantile';
  attribute: string;
  quantile: number;
  windowMs: number;
  minEvents: number;
  groupBy: string[];
  op: Op;
  threshold: number;
}

export interface CompiledAbsent extends CompiledBase {
  kind: 'absent';
  /** Undefined: the rule watches logs. */
  metric?: RegExp | string;
  tags: TagTest;
  containers?: RegExp;
  sources?: RegExp;
  groupBy: string[];
  forgetMs: number;
}

export type CompiledRule = CompiledThreshold | CompiledLogRate | CompiledAbsent;

const optionalRegex = (text: string) => (text ? new RegExp(text) : undefined);
const metricMatcher = (metric: string): RegExp | string => (metric.includes('*') ? globToRegex(metric) : metric);

export function metricMatches(m: RegExp | string, full: string): boolean {
  return typeof m === 'string' ? m === full : m.test(full);
}

export function compileRule(spec: RuleSpec): CompiledRule {
  const base = { spec, name: spec.name, forMs: parseDuration(spec.for), keepFiringMs: parseDuration(spec.keep_firing_for) };
  switch (spec.type) {
    case 'threshold':
      return {
        ...base,
        kind: 'threshold',
        metric: metricMatcher(spec.metric),
        tags: compileTags(spec.tags),
        op: opOf(spec.condition),
        threshold: spec.threshold,
        aggregate: spec.aggregate,
        windowMs: Math.max(1, parseDuration(spec.window)),
        staleMs: Math.max(1, parseDuration(spec.stale_after)),
      };
    case 'log_rate': {
      const m = spec.match;
      const levels = m.levels.length ? new Set(m.levels) : undefined;
      const minRank = m.min_level ? levelRank(m.min_level) : undefined;
      const categories = m.categories.length ? new Set(m.categories) : undefined;
      const message = optionalRegex(m.message);
      const attributes = Object.entries(m.attributes).map(([k, re]) => [k, new RegExp(re)] as const);
      const matches = (e: LogEvent) => {
        if (levels && !levels.has(e.level)) return false;
        if (minRank !== undefined && levelRank(e.level) < minRank) return false;
        if (categories && !categories.has(typeof e.attributes.category === 'string' ? e.attributes.category : '')) return false;
        if (message && !message.test(e.message)) return false;
        for (const [k, re] of attributes) {
          const v = own(e.attributes, k);
          if (v === undefined || v === null || !re.test(typeof v === 'object' ? JSON.stringify(v) : String(v))) return false;
        }
        return true;
      };
      return {
        ...base,
        kind: 'log_rate',
        containers: optionalRegex(spec.containers),
        sources: optionalRegex(spec.sources),
        matches,
        measure: spec.measure,
        attribute: spec.attribute,
        quantile: spec.quantile,
        windowMs: Math.max(1000, parseDuration(spec.window)),
        minEvents: spec.min_events,
        groupBy: spec.group_by,
        op: opOf(spec.condition),
        threshold: spec.threshold,
      };
    }
    case 'absent':
      return {
        ...base,
        kind: 'absent',
        metric: spec.metric ? metricMatcher(spec.metric) : undefined,
        tags: compileTags(spec.tags),
        containers: optionalRegex(spec.containers),
        sources: optionalRegex(spec.sources),
        groupBy: spec.group_by,
        forgetMs: parseDuration(spec.forget_after),
      };
  }
}

// --- templates -----------------------------------------------------------------------------

/** A number as people read it: integers as they are, others with at most 2 decimals. */
export function formatValue(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '';
  if (Number.isInteger(v)) return String(v);
  return String(Math.round(v * 100) / 100);
}

/** Fills `{{key}}` (spaces allowed inside the braces); unknown keys become "?". */
export function renderTemplate(template: string, vars: Record<string, string | number | null | undefined>): string {
  return template.replace(/\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g, (_m, key: string) => {
    const v = own(vars, key);
    if (v === undefined || v === null) return '?';
    return typeof v === 'number' ? formatValue(v) : v;
  });
}

/** The message of a rule without a template. */
export function defaultMessage(spec: RuleSpec): string {
  switch (spec.type) {
    case 'threshold':
      return `${spec.metric}${spec.aggregate === 'last' ? '' : ` (${spec.aggregate} over ${spec.window})`} is {{value}} (${spec.condition} {{threshold}})`;
    case 'log_rate': {
      const what = spec.measure === 'count' ? 'matching lines' : spec.measure === 'share' ? '% matching lines' : `${spec.measure === 'quantile' ? `p${Math.round(spec.quantile * 100)}` : spec.measure} of ${spec.attribute}`;
      const who = spec.group_by.length ? ` for ${spec.group_by.map((k) => `{{${k}}}`).join('/')}` : '';
      return `${spec.name}${who}: {{value}} ${what} in ${spec.window} (${spec.condition} {{threshold}})`;
    }
    case 'absent':
      return `${spec.metric || 'logs'}${spec.group_by.length ? ` of ${spec.group_by.map((k) => `{{${k}}}`).join('/')}` : ''}: no data for {{for}}`;
  }
}
