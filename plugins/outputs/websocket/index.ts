// outputs.websocket: live logs and metrics for dashboards, on the agent's own
// HTTP server (/ws/logs, /ws/metrics), one JSON event per message, filtered
// per client. Client handling (filters, slow clients, heartbeat) lives in
// plugins/common/ws_hub.ts so other streams (alerts) share it.

import { eventToJSON, type Event } from '../../../core/events.ts';
import type { RouteSchema } from '../../../core/http.ts';
import type { Output, PluginContext, PluginDefinition } from '../../../core/plugin.ts';
import { parseDuration, parseSize } from '../../../core/units.ts';
import { describeEventFilter, logMatches, metricMatches, parseEventFilter, type EventFilter } from '../../common/event_filter.ts';
import { WsHub, type OnSlow, type WsHubStats } from '../../common/ws_hub.ts';

export interface WebsocketConfig {
  logs_path: string;
  metrics_path: string;
  send_buffer_limit: string | number;
  on_slow: OnSlow;
  heartbeat_interval: string;
  max_clients: number;
}

export interface WebsocketOutput extends Output {
  /** The hubs' counters, per endpoint (while started). */
  stats(): { logs?: WsHubStats; metrics?: WsHubStats };
}

const LIST = 'One value, a comma-separated list, or the key repeated.';

/** The endpoints' entries in /openapi.json. */
function endpointDoc(kind: 'log' | 'metric'): RouteSchema {
  const common = {
    container: { type: 'string', description: `Container names. ${kind === 'log' ? 'Logs: the container label, else the source.' : 'Metrics: the container tag.'} ${LIST}` },
  };
  const own =
    kind === 'log'
      ? {
          level: { type: 'string', description: `Exact levels (trace, debug, info, success, warning, error, critical; aliases such as warn, err). ${LIST}` },
          min_level: { type: 'string', description: 'This level or more severe.' },
          source: { type: 'string', description: `Event sources. ${LIST}` },
        }
      : { name: { type: 'string', description: `Metric names, * as wildcard (docker_*). ${LIST}` } };
  return {
    summary: kind === 'log' ? 'Live logs (WebSocket)' : 'Live metrics (WebSocket)',
    description:
      `One JSON ${kind} event per text message (it has \`kind\`). Control messages have a \`type\`: \`subscribed\` (the filter in force), ` +
      '`dropped` (count of events not sent to a slow client), `error`. Send `{"type":"subscribe", ...filter}` to change the filter. ' +
      'A bad filter is refused with 400, a full server with 503.',
    tags: ['streams'],
    querystring: { type: 'object', additionalProperties: false, properties: { ...common, ...own } },
  };
}

export function createWebsocket(config: WebsocketConfig, ctx: PluginContext): WebsocketOutput {
  const sendBufferLimit = parseSize(config.send_buffer_limit);
  const heartbeatMs = parseDuration(config.heartbeat_interval);
  if (config.logs_path && config.logs_path === config.metrics_path) throw new Error('logs_path and metrics_path must differ');
  let logs: WsHub<EventFilter> | undefined;
  let metrics: WsHub<EventFilter> | undefined;
  let removers: Array<() => void> = [];
  let stopped = false;

  const hub = (kind: 'log' | 'metric') =>
    new WsHub<EventFilter>({
      log: ctx.log,
      sendBufferLimit,
      onSlow: config.on_slow,
      heartbeatMs,
      maxClients: config.max_clients,
      parseFilter: (input) => parseEventFilter(input, kind),
      describeFilter: describeEventFilter,
    });

  return {
    async start() {
      if (config.logs_path) {
        logs = hub('log');
        removers.push(ctx.http.upgrade(config.logs_path, logs.handleUpgrade, 'agent', endpointDoc('log')));
      }
      if (config.metrics_path) {
        metrics = hub('metric');
        removers.push(ctx.http.upgrade(config.metrics_path, metrics.handleUpgrade, 'agent', endpointDoc('metric')));
      }
    },

    async write(events: Event[]) {
      if (stopped) return;
      for (const e of events) {
        if (e.kind === 'log') logs?.publish((f) => logMatches(f, e), () => JSON.stringify(eventToJSON(e)));
        else metrics?.publish((f) => metricMatches(f, e), () => JSON.stringify(eventToJSON(e)));
      }
    },

    async stop() {
      stopped = true;
      for (const remove of removers) remove();
      removers = [];
      await Promise.all([logs?.close(), metrics?.close()]);
    },

    stats: () => ({ logs: logs?.stats, metrics: metrics?.stats }),

    /** opshub_plugin_websocket: logs_* and metrics_* (clients and max_buffered_bytes are gauges). */
    selfMetrics() {
      const out: Record<string, number> = {};
      for (const [prefix, hub] of [['logs', logs], ['metrics', metrics]] as const) {
        if (hub) for (const [k, v] of Object.entries(hub.stats)) out[`${prefix}_${k}`] = v;
      }
      return out;
    },
  };
}

export const websocket: PluginDefinition<WebsocketConfig> = {
  kind: 'output',
  type: 'websocket',
  description: "Streams logs and metrics live to WebSocket clients on the agent's HTTP server, filtered per client.",
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      logs_path: { type: 'string', pattern: '^(/.*)?$', default: '/ws/logs', description: 'Path of the log stream; empty: no log stream.' },
      metrics_path: { type: 'string', pattern: '^(/.*)?$', default: '/ws/metrics', description: 'Path of the metric stream; empty: no metric stream.' },
      send_buffer_limit: {
        type: ['string', 'integer'], format: 'size', default: '1MiB',
        description: 'Most bytes queued for one client that does not read fast enough; past it, on_slow applies.',
      },
      on_slow: {
        enum: ['drop', 'disconnect'], default: 'drop',
        description: 'drop: skip messages for that client (counted; it is sent {"type":"dropped","count":N}); disconnect: close it (1008).',
      },
      heartbeat_interval: {
        type: 'string', format: 'duration', default: '30s',
        description: 'Ping every client this often; one that has not answered the previous ping is disconnected. 0: no heartbeat.',
      },
      max_clients: { type: 'integer', minimum: 1, default: 100, description: 'Most clients per stream; more are refused with 503.' },
    },
  },
  create: (config, ctx) => createWebsocket(config, ctx),
};

export default websocket;
