// outputs.prometheus: serves the latest value of every metric series at
// GET <path> on the agent's HTTP server, in the Prometheus text format, from
// a prom-client Registry this instance owns. Counters arrive as absolute
// totals, so each series family is a custom collector in that registry (it
// sets values instead of adding to them). Series not written for
// `expiration` disappear from the exposition, as in Telegraf's
// prometheus_client output.

import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import { Counter, Gauge, Registry, collectDefaultMetrics, type MetricValue } from 'prom-client';
import type { Event, MetricEvent, MetricType } from '../../../core/events.ts';
import type { Output, PluginContext, PluginDefinition } from '../../../core/plugin.ts';
import { parseDuration } from '../../../core/units.ts';
import { sanitizeLabelName, seriesName } from '../../common/prometheus_names.ts';

const gzip = promisify(gzipCb);

export interface PrometheusConfig {
  path: string;
  expiration: string;
  process_metrics: boolean;
  host_label: string;
}

interface Series {
  labels: Record<string, string>;
  value: number;
  /** Clock reading (ms) of the last write. */
  seen: number;
}

/**
 * One metric family, registered in the instance's Registry as a prom-client
 * collector: prom-client calls get() at every scrape and writes HELP, TYPE
 * and one line per series.
 */
class Family {
  readonly aggregator = 'sum' as const;
  readonly series = new Map<string, Series>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'untyped',
  ) {}

  get(): { name: string; help: string; type: string; aggregator: 'sum'; values: MetricValue<string>[] } {
    const values: MetricValue<string>[] = [];
    for (const s of this.series.values()) values.push({ labels: s.labels, value: s.value });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  // prom-client's Registry.resetMetrics() calls this; values are set, not accumulated, so nothing to do.
  reset(): void {}
}

const TYPE_OF: Record<MetricType, Family['type']> = { counter: 'counter', gauge: 'gauge', untyped: 'untyped' };

/**
 * Sanitised label set of an event, sorted by name. Tags with empty values are
 * left out (Prometheus treats them as absent); when two tags sanitise to one
 * name ("a.b" and "a_b"), the first keeps it.
 */
function labelsOf(tags: Record<string, string>, cache: Map<string, string>): { labels: Record<string, string>; key: string } {
  const byName = new Map<string, string>();
  for (const tag in tags) {
    const value = tags[tag]!;
    if (value === '') continue;
    let name = cache.get(tag);
    if (name === undefined) {
      name = sanitizeLabelName(tag); // also keeps out of the `__` prefix Prometheus reserves
      if (cache.size < 10_000) cache.set(tag, name);
    }
    if (!byName.has(name)) byName.set(name, value);
  }
  const pairs = [...byName].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const labels: Record<string, string> = {};
  for (const [k, v] of pairs) labels[k] = v;
  return { labels, key: JSON.stringify(pairs) };
}

function numeric(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  return undefined;
}

export interface PrometheusOutput extends Output {
  /** The exposition as served (for tests and `opshub test`-like tools). */
  exposition(): Promise<string>;
  readonly registry: Registry;
}

/**
 * prom-client's default (process) metrics, one Registry per label set for
 * the whole process: collectDefaultMetrics() starts a GC observer and an
 * event-loop-delay monitor that nothing can stop, so calling it per instance
 * leaked one of each at every hot reload of a prometheus output.
 */
const processRegistries = new Map<string, Registry>();

function processMetrics(labels: Record<string, string> | undefined): Registry {
  const key = JSON.stringify(labels ?? {});
  let registry = processRegistries.get(key);
  if (!registry) {
    registry = new Registry();
    collectDefaultMetrics({ register: registry, labels });
    // Gauges named *_total break Prometheus' naming rules (promtool flags them); the
    // same numbers are served per type as nodejs_active_handles{type} etc.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
    processRegistries.set(key, registry);
  }
  return registry;
}

export function createPrometheus(config: PrometheusConfig, ctx: PluginContext, clock: () => number = Date.now): PrometheusOutput {
  const expirationMs = parseDuration(config.expiration);
  const registry = new Registry();
  const families = new Map<string, Family>();
  const labelNames = new Map<string, string>();
  let unmount: (() => void) | undefined;
  let lastSweep = clock();
  const hostTag = ctx.hostname ? config.host_label : '';
  let started = false;
  let processRegistry: Registry | undefined;

  // The output's own counts, served beside the data.
  const skipped = new Counter({
    name: 'opshub_prometheus_fields_skipped_total',
    help: 'Metric fields this output could not serve, by reason: string (not a number), type_conflict (the series name is taken by another type).',
    labelNames: ['reason'],
    registers: [registry],
  });
  const seriesGauge = new Gauge({
    name: 'opshub_prometheus_series',
    help: 'Series this output currently serves (before expiry of stale ones).',
    registers: [registry],
    collect() {
      let n = 0;
      for (const f of families.values()) n += f.series.size;
      this.set(n);
    },
  });
  const expired = new Counter({
    name: 'opshub_prometheus_series_expired_total',
    help: 'Series removed because no event updated them for `expiration`.',
    registers: [registry],
  });
  skipped.inc({ reason: 'string' }, 0);
  skipped.inc({ reason: 'type_conflict' }, 0);

  function family(name: string, type: Family['type'], event: MetricEvent, field: string): Family | undefined {
    const existing = families.get(name);
    if (existing) {
      if (existing.type === type) return existing;
      skipped.inc({ reason: 'type_conflict' });
      ctx.log.once(`conflict:${name}`, 'warn', `${name} arrives as ${type} but is served as ${existing.type} (first seen): skipping the ${type} samples (counted in opshub_prometheus_fields_skipped_total)`);
      return undefined;
    }
    if (registry.getSingleMetric(name) || processRegistry?.getSingleMetric(name)) {
      skipped.inc({ reason: 'type_conflict' });
      ctx.log.once(`conflict:${name}`, 'warn', `${name} is taken by this output's own metrics: skipping it`);
      return undefined;
    }
    const f = new Family(name, `OpsHub metric ${event.name}, field ${field} (${type}).`, type);
    families.set(name, f);
    registry.registerMetric(f as never);
    return f;
  }

  /** Removes series not written for `expiration`, and families left empty. */
  function sweep(now: number): void {
    lastSweep = now;
    if (expirationMs <= 0) return;
    for (const [name, f] of families) {
      for (const [key, s] of f.series) {
        if (now - s.seen >= expirationMs) {
          f.series.delete(key);
          expired.inc();
        }
      }
      if (f.series.size === 0) {
        families.delete(name);
        registry.removeSingleMetric(name);
      }
    }
  }

  async function exposition(): Promise<string> {
    sweep(clock());
    const own = await registry.metrics();
    return processRegistry ? `${own}${await processRegistry.metrics()}` : own;
  }

  return {
    registry,
    exposition,

    async start() {
      if (started) return;
      started = true;
      if (config.process_metrics) processRegistry = processMetrics(hostTag ? { [sanitizeLabelName(hostTag)]: ctx.hostname } : undefined);
      unmount = ctx.http.route({
        method: 'GET',
        path: config.path,
        auth: 'agent',
        schema: {
          summary: 'Prometheus exposition',
          description: 'Every metric the pipeline delivered to outputs.prometheus (and the process metrics), in the Prometheus text format 0.0.4; gzip when the client accepts it.',
          tags: ['metrics'],
          produces: ['text/plain'],
          response: { 200: { description: 'The exposition.', content: { 'text/plain': { schema: { type: 'string' } } } } },
        },
        handler: async (req, res) => {
          const body = await exposition();
          const headers: Record<string, string | number> = { 'content-type': registry.contentType, vary: 'accept-encoding' };
          if (/\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) {
            const zipped = await gzip(body);
            res.writeHead(200, { ...headers, 'content-encoding': 'gzip', 'content-length': zipped.length });
            res.end(zipped);
          } else {
            res.writeHead(200, { ...headers, 'content-length': Buffer.byteLength(body) });
            res.end(body);
          }
        },
      });
    },

    async write(events: Event[]) {
      const now = clock();
      for (const event of events) {
        if (event.kind !== 'metric') continue;
        let labels: ReturnType<typeof labelsOf> | undefined;
        const type = TYPE_OF[event.type] ?? 'untyped';
        for (const field in event.fields) {
          const value = numeric(event.fields[field]);
          if (value === undefined) {
            skipped.inc({ reason: 'string' });
            continue;
          }
          const f = family(seriesName(event.name, field, event.type), type, event, field);
          if (!f) continue;
          labels ??= labelsOf(hostTag && !event.tags[hostTag] ? { ...event.tags, [hostTag]: ctx.hostname } : event.tags, labelNames);
          const s = f.series.get(labels.key);
          if (s) {
            s.value = value;
            s.seen = now;
          } else {
            f.series.set(labels.key, { labels: labels.labels, value, seen: now });
          }
        }
      }
      if (now - lastSweep >= 1000) sweep(now);
    },

    async stop() {
      unmount?.();
      unmount = undefined;
      families.clear();
      registry.clear();
      processRegistry = undefined;
    },
  };
}

export const prometheus: PluginDefinition<PrometheusConfig> = {
  kind: 'output',
  type: 'prometheus',
  description: "Serves metrics for Prometheus to scrape at GET /metrics on the agent's HTTP server.",
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      path: {
        type: 'string',
        pattern: '^/',
        default: '/metrics',
        description: "Path of the endpoint on the agent's HTTP server (agent.http.listen); protected by agent.http.auth_token when one is set.",
      },
      expiration: {
        type: 'string',
        format: 'duration',
        default: '60s',
        description: 'A series not updated for this long is no longer served (e.g. an interface or container that went away); "0s" keeps series forever. Keep it above the inputs\' interval.',
      },
      process_metrics: {
        type: 'boolean',
        default: true,
        description: "Also serve the agent process' own metrics (process_cpu_seconds_total, process_resident_memory_bytes, nodejs_* heap, event loop lag and GC), from prom-client.",
      },
      host_label: {
        type: 'string',
        default: '',
        description: "Label set to the agent's hostname (agent.hostname) on every series that lacks it, e.g. \"host\" when one Prometheus scrapes many agents; empty: none (Prometheus' own `instance` label names the target).",
      },
    },
  },
  create: (config, ctx) => createPrometheus(config, ctx),
};

export default prometheus;
