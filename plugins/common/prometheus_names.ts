// Prometheus naming rules shared by the outputs that speak Prometheus: a
// metric event `<name>` with field `<field>` becomes the series
// `<name>_<field>`; counters end in `_total`. Names are sanitised to the data
// model's character sets (invalid characters become `_`, a leading digit gets
// a `_` prefix).

import type { MetricType } from '../../core/events.ts';

const METRIC_NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A valid metric name: [a-zA-Z_:][a-zA-Z0-9_:]* */
export function sanitizeMetricName(name: string): string {
  if (METRIC_NAME_RE.test(name)) return name;
  const out = name.replace(/[^a-zA-Z0-9_:]/g, '_');
  return /^[a-zA-Z_:]/.test(out) ? out : `_${out}`;
}

/**
 * A valid label name for user data: [a-zA-Z_][a-zA-Z0-9_]*, and not starting
 * with `__` (reserved for Prometheus' own labels such as `__name__`): a
 * leading run of underscores becomes one.
 */
export function sanitizeLabelName(name: string): string {
  let out = LABEL_NAME_RE.test(name) ? name : name.replace(/[^a-zA-Z0-9_]/g, '_');
  if (!/^[a-zA-Z_]/.test(out)) out = `_${out}`;
  return out.startsWith('__') ? out.replace(/^__+/, '_') : out;
}

/** The series name of one field of a metric event, e.g. ("gpu", "power_watts", gauge) → "gpu_power_watts". */
export function seriesName(metric: string, field: string, type: MetricType): string {
  const name = sanitizeMetricName(`${metric}_${field}`);
  return type === 'counter' && !name.endsWith('_total') ? `${name}_total` : name;
}
