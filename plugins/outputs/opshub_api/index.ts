// outputs.opshub_api: the OpsHub REST API on the agent's HTTP server —
// containers, logs (tail and follow), search, sessions, performance,
// analytics, errors and detailed health — with OpsHub's paths, parameters and
// JSON shapes. It is an output because part of what it serves flows through
// the pipeline (new lines for followers, the latest host and GPU figures);
// the rest it reads from the running instances that offer it: the store of
// outputs.duckdb (parameterised SQL on read connections of its own, so a
// query never blocks ingestion), the live container view of
// inputs.docker_stats, and the runtime's figures of every instance.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Event } from '../../../core/events.ts';
import { HttpError, parseIsoTime, type ReplyRoute, type RouteRequest } from '../../../core/http.ts';
import { errorMessage } from '../../../core/log.ts';
import type { Output, PluginContext, PluginDefinition } from '../../../core/plugin.ts';
import { parseDuration, parseSize } from '../../../core/units.ts';
import { CONTAINERS, findProviders, STORE, type LiveContainer, type SqlStore } from '../../common/providers.ts';
import { containerStatus, formatPeriod, iso, isoNs, round } from './format.ts';
import { HealthChecker } from './health.ts';
import { Coalescer, requestKey, Semaphore } from './sharing.ts';
import { MatchCounts } from './match_counts.ts';
import { FollowHub, LatestMetrics, PERFORMANCE_NAMES, type Sample } from './live.ts';
import {
  errorSummary,
  history,
  latestMetrics,
  modelUsage,
  searchLogs,
  sessions,
  sessionSummary,
  sourcesFor,
  tailLogs,
  userActivity,
  withReader,
  type LogRow,
  type MetricRef,
  type Session,
} from './queries.ts';
import {
  containerSchema,
  containersSchema,
  errorsSummarySchema,
  healthSchema,
  historySchema,
  logsSchema,
  modelsAnalyticsSchema,
  performanceSchema,
  searchSchema,
  sessionsSchema,
  usersAnalyticsSchema,
  type HistoryMetric,
} from './schemas.ts';

export interface OpshubApiConfig {
  prefix: string;
  store: string;
  session_idle_timeout: string;
  disk_mount: string;
  history_points: number;
  query_timeout: string;
  max_followers: number;
  follow_heartbeat: string;
  follow_buffer_bytes: string | number;
  allow_query_token: boolean;
  buffer_degraded_percent: number;
  max_concurrent_queries: number;
  aggregate_cache: string;
  live_cache: string;
}

export interface OpshubApi extends Output {
  /** Followers of /logs/{container}?follow=true now. */
  readonly followers: number;
}

const HOUR_MS = 3_600_000;

const lineJson = (r: LogRow) => ({ timestamp: isoNs(r.ns), container: r.container, level: r.level, message: r.message, source: r.source });

export function createOpshubApi(config: OpshubApiConfig, ctx: PluginContext): OpshubApi {
  const prefix = config.prefix;
  const idleMs = parseDuration(config.session_idle_timeout);
  const timeoutMs = parseDuration(config.query_timeout);
  const heartbeatMs = parseDuration(config.follow_heartbeat);
  const followBufferBytes = parseSize(config.follow_buffer_bytes);
  const latest = new LatestMetrics();
  const hub = new FollowHub();
  const health = new HealthChecker(ctx, { bufferDegradedPercent: config.buffer_degraded_percent, dockerSlowMs: 1000, pingTimeoutMs: 3000 });
  const streams = new Set<ServerResponse>();
  let removers: Array<() => void> = [];
  let startedAt = Date.now();
  let stopped = false;
  let followDropped = 0;
  let seeded = false;

  const store = (): SqlStore => {
    const found = findProviders(ctx, STORE, 'outputs').filter((p) => !config.store || p.info.id === config.store);
    if (!found.length) {
      throw new HttpError(503, 'unavailable', config.store ? `no outputs.duckdb with id "${config.store}" is running (option store)` : 'no outputs.duckdb is configured: the API reads logs, sessions and metrics from it');
    }
    return found[0]!.provider.store;
  };
  const queries = new Semaphore(config.max_concurrent_queries);
  // Scans of a whole window (search, analytics) take at most all slots but one, so a
  // quick read (a tail, a series) waits behind at most one of them.
  const heavy = new Semaphore(Math.max(1, config.max_concurrent_queries - 1));
  const sharing = new Coalescer();
  /** Search counts kept per store (see match_counts.ts). */
  const matchCounts = new WeakMap<SqlStore, MatchCounts>();
  const matchCountsOf = (s: SqlStore) => matchCounts.get(s) ?? matchCounts.set(s, new MatchCounts()).get(s)!;
  const aggregateTtlMs = parseDuration(config.aggregate_cache);
  const liveTtlMs = parseDuration(config.live_cache);
  /** A read of its own for this request (aborted with it). */
  const read = <T>(r: RouteRequest, fn: Parameters<typeof withReader<T>>[2]) => {
    const s = store();
    return queries.use(() => withReader(s, { signal: r.signal, timeoutMs }, fn));
  };
  /**
   * The answer of a read-only route, shared by identical requests in flight
   * (and, with `ttlMs`, reused that long): not tied to one client's abort.
   */
  const shared = <T>(
    r: RouteRequest,
    ttlMs: number,
    answer: (read: <U>(fn: Parameters<typeof withReader<U>>[2]) => Promise<U>) => Promise<T>,
    weight: 'light' | 'heavy' = 'heavy',
  ) => {
    const s = store();
    const run = <U>(fn: Parameters<typeof withReader<U>>[2]) => queries.use(() => withReader(s, { timeoutMs }, fn));
    return sharing.run(requestKey(r.url.pathname, r.query), ttlMs, () =>
      answer(weight === 'light' ? run : (fn) => heavy.use(() => run(fn))),
    );
  };

  const containers = async (): Promise<LiveContainer[]> => {
    const sources = findProviders(ctx, CONTAINERS, 'inputs');
    if (!sources.length) throw new HttpError(503, 'unavailable', 'no inputs.docker_stats is configured: container status comes from its live view');
    let lists: LiveContainer[][];
    try {
      lists = await Promise.all(sources.map((s) => s.provider.containers()));
    } catch (err) {
      throw new HttpError(503, 'unavailable', `the Docker engine does not answer: ${errorMessage(err)}`);
    }
    const byId = new Map<string, LiveContainer>();
    for (const c of lists.flat()) if (!byId.has(c.id)) byId.set(c.id, c);
    return [...byId.values()].sort((a, b) => a.name.localeCompare(b.name));
  };

  const levelOf = (level: unknown) => (typeof level === 'string' && level !== 'all' ? level : undefined);

  /** /logs/{container}?follow=true: the tail, then every new line, as NDJSON or SSE, until the client goes away. */
  const follow = async (r: RouteRequest, container: string, level: string | undefined, tail: number) => {
    if (hub.size >= config.max_followers) throw new HttpError(503, 'unavailable', `already ${config.max_followers} followers (max_followers)`);
    const pending: LogRow[] = [];
    let send: ((row: LogRow) => void) | undefined;
    const unsubscribe = hub.add({ container, level, push: (row) => (send ? send(row) : pending.push(row)) });
    let first: LogRow[];
    try {
      first = await read(r, (conn) => tailLogs(conn, { container, level, tail, nowMs: Date.now() }));
    } catch (err) {
      unsubscribe();
      throw err;
    }
    if (stopped) {
      unsubscribe();
      throw new HttpError(503, 'unavailable', 'the API is stopping');
    }
    const sse = /\btext\/event-stream\b/.test(r.raw.headers.accept ?? '');
    const res = r.takeOver();
    res.writeHead(200, {
      'content-type': sse ? 'text/event-stream; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    });
    streams.add(res);
    const write = (row: LogRow) => {
      if (res.writableEnded) return;
      if (res.writableLength > followBufferBytes) {
        followDropped++;
        return;
      }
      const json = JSON.stringify(lineJson(row));
      res.write(sse ? `id: ${row.ns}\nevent: log\ndata: ${json}\n\n` : `${json}\n`);
    };
    for (const row of first) write(row);
    const lastNs = first.at(-1)?.ns;
    const atLast = new Set(first.filter((x) => x.ns === lastNs).map((x) => `${x.container}\u0000${x.message}`));
    for (const row of pending) {
      if (lastNs === undefined || row.ns > lastNs || (row.ns === lastNs && !atLast.has(`${row.container}\u0000${row.message}`))) write(row);
    }
    pending.length = 0;
    send = write;
    const beat = sse && heartbeatMs > 0 ? setInterval(() => res.write(': keepalive\n\n'), heartbeatMs) : undefined;
    beat?.unref();
    res.once('close', () => {
      unsubscribe();
      if (beat) clearInterval(beat);
      streams.delete(res);
    });
  };

  const window = (q: Record<string, any>, now: number): { fromMs: number; toMs: number } => {
    const parse = (name: string): number | undefined => {
      const text = q[name];
      if (text === undefined || text === '') return undefined;
      const ms = parseIsoTime(String(text));
      if (ms === undefined) throw new HttpError(400, 'bad_request', `query parameter ${name} must be an ISO 8601 time`, { parameter: name });
      return ms;
    };
    const start = parse('start_time');
    const end = parse('end_time') ?? now;
    const fromMs = start ?? end - Number(q.hours) * HOUR_MS;
    if (fromMs >= end) throw new HttpError(400, 'bad_request', 'query parameter start_time must be before end_time', { parameter: 'start_time' });
    return { fromMs, toMs: end };
  };

  const sessionView = (s: Session, now: number) => ({
    username: s.username,
    model: s.model,
    session_id: s.session_id,
    started_at: iso(s.started_ms),
    last_activity: iso(s.last_ms),
    request_count: s.request_count,
    ip_address: s.ip_address,
    status: !s.ended_by_logout && now - s.last_ms <= idleMs ? ('active' as const) : ('ended' as const),
    duration_seconds: round((s.last_ms - s.started_ms) / 1000, 3),
  });

  const seedLatest = async () => {
    if (seeded || !latest.empty) return;
    seeded = true;
    try {
      const rows = await withReader(store(), { timeoutMs }, (conn) => latestMetrics(conn, PERFORMANCE_NAMES, Date.now() - 15 * 60_000));
      for (const row of rows) if (row.value !== null) latest.seed(row.name, row.tags, row.field, row.value, row.ns);
    } catch {
      /* no store, or nothing there yet: the figures come with the next gather */
    }
  };

  const performance = () => {
    const used: Sample[] = [];
    const pick = (samples: Sample[]) => {
      const s = samples[0];
      if (s) used.push(s);
      return s?.fields ?? {};
    };
    const cpu = pick(latest.find('system_cpu', { cpu: 'total' }));
    const mem = pick(latest.find('system_memory'));
    const disk = pick(latest.find('system_filesystem', { mount: config.disk_mount }));
    const load = pick(latest.find('system').filter((s) => 'load1' in s.fields));
    const v = (x: number | undefined) => (x === undefined ? null : round(x, 2));
    // One GPU may come as several events (gauges, counters, the info series with extra tags): merge them by index.
    const byIndex = new Map<string, { name: string; fields: Record<string, number> }>();
    for (const s of latest.find('nvidia_smi')) {
      const index = s.tags.index;
      if (index === undefined || !/^\d+$/.test(index)) continue;
      used.push(s);
      const gpu = byIndex.get(index) ?? { name: '', fields: {} };
      gpu.name ||= s.tags.name ?? '';
      Object.assign(gpu.fields, s.fields);
      byIndex.set(index, gpu);
    }
    const gpus = [...byIndex]
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([index, g]) => {
        const f = g.fields;
        const mib = (b: number | undefined) => (b === undefined ? null : round(b / 1048576, 1));
        const mhz = (hz: number | undefined) => (hz === undefined ? null : round(hz / 1e6, 1));
        const used_ = f.memory_used_bytes;
        const total = f.memory_total_bytes;
        return {
          index: Number(index),
          name: g.name,
          utilization: v(f.utilization_gpu_percent),
          memory_utilization: v(f.utilization_memory_percent),
          memory_used: mib(used_),
          memory_total: mib(total),
          memory_percent: used_ !== undefined && total ? round((used_ / total) * 100, 2) : null,
          temperature: v(f.temperature_gpu_celsius),
          power_draw: v(f.power_draw_watts),
          graphics_clock: mhz(f.clocks_graphics_hertz),
          memory_clock: mhz(f.clocks_memory_hertz),
          memory_used_bytes: used_ ?? null,
          memory_total_bytes: total ?? null,
        };
      });
    const newest = used.reduce<bigint | undefined>((a, s) => (a === undefined || s.ns > a ? s.ns : a), undefined);
    return {
      timestamp: newest === undefined ? null : iso(Number(newest / 1_000_000n)),
      cpu_percent: v(cpu.usage_percent),
      memory_percent: v(mem.used_percent),
      disk_percent: v(disk.used_percent),
      load_avg: load.load1 !== undefined ? [load.load1, load.load5 ?? 0, load.load15 ?? 0].map((x) => round(x, 2)) : [],
      gpus,
      memory_used_bytes: mem.used_bytes ?? null,
      memory_total_bytes: mem.total_bytes ?? null,
      disk_used_bytes: disk.used_bytes ?? null,
      disk_total_bytes: disk.size_bytes ?? null,
    };
  };

  const historyRefs = (gpu?: string): Record<HistoryMetric, { ref: MetricRef; unit: string }> => {
    const g = gpu !== undefined ? { index: gpu } : undefined;
    return {
      cpu_percent: { ref: { name: 'system_cpu', field: 'usage_percent', tags: { cpu: 'total' } }, unit: '%' },
      memory_percent: { ref: { name: 'system_memory', field: 'used_percent' }, unit: '%' },
      disk_percent: { ref: { name: 'system_filesystem', field: 'used_percent', tags: { mount: config.disk_mount } }, unit: '%' },
      swap_percent: { ref: { name: 'system_swap', field: 'used_percent' }, unit: '%' },
      load_1m: { ref: { name: 'system', field: 'load1' }, unit: 'load' },
      load_5m: { ref: { name: 'system', field: 'load5' }, unit: 'load' },
      load_15m: { ref: { name: 'system', field: 'load15' }, unit: 'load' },
      gpu_utilization: { ref: { name: 'nvidia_smi', field: 'utilization_gpu_percent', tags: g }, unit: '%' },
      gpu_memory_utilization: { ref: { name: 'nvidia_smi', field: 'utilization_memory_percent', tags: g }, unit: '%' },
      gpu_memory_used_bytes: { ref: { name: 'nvidia_smi', field: 'memory_used_bytes', tags: g }, unit: 'bytes' },
      gpu_temperature: { ref: { name: 'nvidia_smi', field: 'temperature_gpu_celsius', tags: g }, unit: 'celsius' },
      gpu_power_draw: { ref: { name: 'nvidia_smi', field: 'power_draw_watts', tags: g }, unit: 'W' },
    };
  };

  /** ?token= for EventSource clients on the follow route, besides the bearer header. */
  const logsAuth = (req: IncomingMessage): string | null => {
    if (ctx.http.isAuthorized(req)) return null;
    if (config.allow_query_token) {
      const token = new URL(req.url ?? '/', 'http://localhost').searchParams.get('token');
      if (token && ctx.http.isAuthorized({ headers: { authorization: `Bearer ${token}` } } as IncomingMessage)) return null;
    }
    return 'missing or wrong bearer token';
  };

  const routes: ReplyRoute[] = [
    { method: 'GET', path: `${prefix}/containers/status`, schema: containersSchema, reply: async () => (await containers()).map(containerStatus) },
    {
      method: 'GET',
      path: `${prefix}/containers/:name/status`,
      schema: containerSchema,
      reply: async (r) => {
        const name = r.params.name!;
        const all = await containers();
        const byId = name.length >= 12 && /^[0-9a-f]+$/.test(name) ? all.filter((c) => c.id.startsWith(name)) : [];
        const found = all.find((c) => c.name === name) ?? (byId.length === 1 ? byId[0] : undefined);
        if (!found) throw new HttpError(404, 'not_found', `no container named ${name}`);
        return containerStatus(found);
      },
    },
    {
      method: 'GET',
      path: `${prefix}/logs/:container`,
      auth: logsAuth,
      schema: logsSchema,
      reply: async (r) => {
        const container = r.params.container!;
        const level = levelOf(r.query.level);
        const tail = Number(r.query.tail);
        if (r.query.follow === true) return follow(r, container, level, tail);
        return shared(r, liveTtlMs, async (read) => ({ logs: (await read((conn) => tailLogs(conn, { container, level, tail, nowMs: Date.now() }))).map(lineJson) }), 'light');
      },
    },
    {
      method: 'GET',
      path: `${prefix}/search/logs`,
      schema: searchSchema,
      reply: async (r) => {
        const q = r.query;
        const { fromMs, toMs } = window(q, Date.now());
        const query = typeof q.query === 'string' && q.query !== '' ? q.query : undefined;
        const limit = Number(q.limit);
        const source = store();
        const counts = matchCountsOf(source);
        return shared(r, liveTtlMs, async (read) => {
        const found = await read((conn) =>
          searchLogs(conn, { fromMs, toMs, query, regex: q.regex === true, container: q.container || undefined, level: levelOf(q.level), limit }, counts, Date.now(), source.logChanges),
        );
        return {
          results: found.rows.map((row) => {
            const a = row.attributes;
            const pickString = (...keys: string[]) => {
              for (const k of keys) if (typeof a[k] === 'string' && a[k] !== '') return a[k] as string;
              return null;
            };
            return {
              timestamp: isoNs(row.ns),
              container: row.container,
              level: row.level,
              message: row.message,
              metadata: {
                ...a,
                user: pickString('username', 'email', 'user_id'),
                ip: pickString('ip_address', 'client_ip'),
                category: row.category,
                ...(row.containerId ? { container_id: row.containerId } : {}),
                source: row.source,
              },
            };
          }),
          count: found.count,
          limit,
          start_time: iso(fromMs),
          end_time: iso(toMs),
        };
        });
      },
    },
    {
      method: 'GET',
      path: `${prefix}/users/sessions`,
      schema: sessionsSchema,
      reply: async (r) => {
        return shared(r, aggregateTtlMs, async (read) => {
          const now = Date.now();
          const fromMs = now - Number(r.query.hours) * HOUR_MS;
          const list = await read(async (conn) => sessions(conn, { fromMs, idleMs, src: await sourcesFor(conn, fromMs) }));
          const views = list.map((s) => sessionView(s, now));
          return r.query.active_only === true ? views.filter((s) => s.status === 'active') : views;
        });
      },
    },
    {
      method: 'GET',
      path: `${prefix}/metrics/performance`,
      schema: performanceSchema,
      reply: async () => {
        await seedLatest();
        return performance();
      },
    },
    {
      method: 'GET',
      path: `${prefix}/metrics/performance/history`,
      schema: historySchema(config.history_points),
      reply: async (r) => {
        const hours = Number(r.query.hours);
        const points = Number(r.query.points);
        const metric = r.query.metric as HistoryMetric;
        const { ref, unit } = historyRefs(r.query.gpu as string | undefined)[metric];
        const bucketS = Math.max(1, Math.ceil((hours * 3600) / points));
        const now = Date.now();
        const fromMs = now - hours * HOUR_MS;
        let series = await shared(r, 0, (read) => read(async (conn) => history(conn, ref, { fromMs, bucketS, src: await sourcesFor(conn, fromMs) })), 'light');
        if (series.length > points) series = series.slice(series.length - points);
        return {
          metric,
          unit,
          hours,
          interval_seconds: bucketS,
          points: series.map((p) => ({ timestamp: iso(p.ms), value: round(p.value, 3), min: round(p.min, 3), max: round(p.max, 3) })),
        };
      },
    },
    {
      method: 'GET',
      path: `${prefix}/analytics/users`,
      schema: usersAnalyticsSchema,
      reply: async (r) => {
        return shared(r, aggregateTtlMs, async (read) => {
        const period = Number(r.query.period);
        const now = Date.now();
        const fromMs = now - period * HOUR_MS;
        const { activity, summary } = await read(async (conn) => {
          const src = await sourcesFor(conn, fromMs);
          return { activity: await userActivity(conn, fromMs, src), summary: await sessionSummary(conn, { fromMs, idleMs, nowMs: now, src }) };
        });
        const hourly = Array.from({ length: 24 }, (_, h) => {
          const found = activity.hourly.find((x) => x.hour === h);
          return { hour: String(h).padStart(2, '0'), users: found?.users ?? 0, requests: found?.requests ?? 0 };
        });
        return {
          period: formatPeriod(period),
          total_users: activity.totalUsers,
          active_users: summary.activeUsers,
          peak_concurrent: summary.peak,
          total_sessions: summary.total,
          average_session_duration: summary.total ? round(summary.meanMs / 1000, 1) : 0,
          top_models: activity.topModels,
          hourly_activity: hourly,
        };
        });
      },
    },
    {
      method: 'GET',
      path: `${prefix}/analytics/models`,
      schema: modelsAnalyticsSchema,
      reply: async (r) => {
        const period = Number(r.query.period);
        const fromMs = Date.now() - period * HOUR_MS;
        const models = await shared(r, aggregateTtlMs, (read) => read(async (conn) => modelUsage(conn, fromMs, await sourcesFor(conn, fromMs))));
        return {
          period: formatPeriod(period),
          models: models.map(({ peak_hour_ms, ...m }) => ({ ...m, peak_hour: peak_hour_ms === null ? null : iso(peak_hour_ms) })),
        };
      },
    },
    {
      method: 'GET',
      path: `${prefix}/errors/summary`,
      schema: errorsSummarySchema,
      reply: async (r) => {
        const period = Number(r.query.period);
        const fromMs = Date.now() - period * HOUR_MS;
        const s = await shared(r, aggregateTtlMs, (read) => read(async (conn) => errorSummary(conn, fromMs, await sourcesFor(conn, fromMs))));
        const totalErrors = s.byContainer.reduce((a, c) => a + c.errors, 0);
        const totalLines = s.byContainer.reduce((a, c) => a + c.lines, 0);
        const rate = (errors: number, lines: number) => (lines ? round((errors / lines) * 100, 2) : 0);
        return {
          period: formatPeriod(period),
          total_errors: totalErrors,
          total_critical: s.byContainer.reduce((a, c) => a + c.critical, 0),
          total_lines: totalLines,
          error_rate: rate(totalErrors, totalLines),
          by_container: s.byContainer.map((c) => ({ ...c, error_rate: rate(c.errors, c.lines) })),
          by_category: s.byCategory,
          top_errors: s.top.map((t) => ({ message: t.message, container: t.container, count: t.count, last_seen: isoNs(t.last_ns) })),
        };
      },
    },
    {
      method: 'GET',
      path: `${prefix}/health/detailed`,
      schema: healthSchema,
      reply: async (r) => {
        const { status, components } = await health.check();
        if (status === 'unhealthy') r.status(503);
        return { status, timestamp: iso(Date.now()), uptime_seconds: Math.floor((Date.now() - startedAt) / 1000), components };
      },
    },
  ];

  return {
    get followers() {
      return hub.size;
    },

    async start() {
      stopped = false;
      startedAt = Date.now();
      const mounted: Array<() => void> = [];
      try {
        for (const route of routes) mounted.push(ctx.http.route(route));
      } catch (err) {
        for (const remove of mounted) remove();
        throw err;
      }
      removers = mounted;
      health.start();
    },

    async write(events: Event[]) {
      for (const e of events) {
        if (e.kind === 'log') hub.publish(e);
        else latest.observe(e);
      }
    },

    async stop() {
      stopped = true;
      for (const remove of removers) remove();
      removers = [];
      health.stop();
      for (const res of streams) res.end();
      streams.clear();
    },

    selfMetrics: () => ({ followers: hub.size, follow_lines_dropped_total: followDropped, queries_waiting: queries.queued, shared_answers_total: sharing.shared }),
  };
}

export const opshubApi: PluginDefinition<OpshubApiConfig> = {
  kind: 'output',
  type: 'opshub_api',
  description: "The OpsHub REST API on the agent's HTTP server: containers, logs (tail, follow), search, sessions, performance, analytics, errors, detailed health.",
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      prefix: {
        type: 'string',
        pattern: '^(/[A-Za-z0-9._~/-]*[A-Za-z0-9._~-])?$',
        default: '',
        description: "Path prefix of every route, e.g. /api/v1; empty serves OpsHub's own paths (/containers/status, /logs/{container}, …).",
      },
      store: { type: 'string', default: '', description: 'Id of the outputs.duckdb instance to read; empty: the first one.' },
      session_idle_timeout: { type: 'string', format: 'duration', default: '30m', description: 'A user with no activity for this long has ended the session; the next activity starts a new one.' },
      disk_mount: { type: 'string', default: '/', description: 'Mount point whose use is disk_percent (inputs.system reports it).' },
      history_points: { type: 'integer', minimum: 10, maximum: 5000, default: 300, description: 'Default number of points of /metrics/performance/history (the series is averaged into that many buckets).' },
      query_timeout: { type: 'string', format: 'duration', default: '30s', description: 'A store query running longer is interrupted and answered with 503.' },
      max_followers: { type: 'integer', minimum: 1, default: 100, description: 'Most clients following logs (follow=true) at once; more get 503.' },
      follow_heartbeat: { type: 'string', format: 'duration', default: '15s', description: 'SSE followers get a comment line this often, so proxies keep the connection; 0: none.' },
      follow_buffer_bytes: {
        type: ['string', 'integer'],
        format: 'size',
        default: '1MiB',
        description: 'Most bytes queued for a follower that reads too slowly; lines beyond are skipped for it and counted (opshub_plugin_follow_lines_dropped_total).',
      },
      allow_query_token: {
        type: 'boolean',
        default: true,
        description: "Accept the agent's token as ?token= on /logs/{container} (browsers' EventSource cannot send headers).",
      },
      buffer_degraded_percent: { type: 'number', minimum: 1, maximum: 100, default: 80, description: '/health/detailed calls an output degraded when its buffer is fuller than this.' },
      max_concurrent_queries: {
        type: 'integer',
        minimum: 1,
        default: 2,
        description: 'Most store queries the API runs at once; more wait their turn, so reads never take all of the store\'s threads from ingestion.',
      },
      aggregate_cache: {
        type: 'string',
        format: 'duration',
        default: '5s',
        description: 'How long the answers of /analytics/*, /errors/summary and /users/sessions are reused for identical requests; 0: computed for each (identical requests in flight share one query regardless).',
      },
      live_cache: {
        type: 'string',
        format: 'duration',
        default: '250ms',
        description:
          'How long the answers of /logs/{container} (without follow) and /search/logs are reused for identical requests: dashboards polling the same panel then cost one query per this time, not one each, and leave the store to ingestion. Lines reach the store in batches (outputs.duckdb flush_interval) anyway; 0: computed for each.',
      },
    },
  },
  create: (config, ctx) => createOpshubApi(config, ctx),
};

export default opshubApi;
