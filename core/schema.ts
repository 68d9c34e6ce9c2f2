// The pipeline file's JSON Schema, composed from the agent's own keys, the
// keys the runtime adds to every plugin, and each plugin's schema. One schema
// serves validation (ajv) and editors (schemas/opshub.schema.json).

import type { PluginDefinition, PluginKind, PluginSchema } from './plugin.ts';

export const SECTION_OF: Record<PluginKind, 'inputs' | 'processors' | 'outputs'> = {
  input: 'inputs',
  service_input: 'inputs',
  processor: 'processors',
  output: 'outputs',
};

const duration = (description: string, dflt?: string) => ({
  type: 'string',
  format: 'duration',
  description,
  ...(dflt !== undefined ? { default: dflt } : {}),
});
const size = (description: string, dflt?: string | number) => ({
  type: ['string', 'integer'],
  format: 'size',
  description,
  ...(dflt !== undefined ? { default: dflt } : {}),
});

export const AGENT_SCHEMA = {
  type: 'object',
  description: 'Agent-wide settings; interval, flush_interval, batch_size, buffer_limit and data_dir are defaults each plugin may override.',
  additionalProperties: false,
  default: {},
  properties: {
    interval: duration('How often pull inputs gather.', '10s'),
    jitter: duration('Random delay up to this much added to each gather, so inputs do not all fire at once.', '0s'),
    flush_interval: duration('Longest time an output holds a partial batch.', '1s'),
    batch_size: { type: 'integer', minimum: 1, default: 1000, description: 'Most events an output writes at once.' },
    buffer_limit: { type: 'integer', minimum: 1, default: 10000, description: 'Most events an output buffers while it cannot write; when full the oldest are dropped and counted, those no input tracks first (docker_logs lines wait within max_pending_lines, which must fit in it).' },
    data_dir: { type: 'string', default: './data', description: 'Where plugins keep state such as checkpoints (relative to the working directory).' },
    plugin_dir: { type: 'string', description: 'Directory of custom plugins (.ts, .js, .mjs), each exporting a plugin definition; relative to this file.' },
    hostname: { type: 'string', description: 'Host name to tag data with; defaults to the machine\'s.' },
    log_level: { enum: ['debug', 'info', 'warn', 'error'], default: 'info', description: 'Least severe agent diagnostic written to stderr.' },
    shutdown_timeout: duration('How long shutdown may take to flush outputs before giving up.', '10s'),
    self_metrics: { type: 'boolean', default: true, description: 'Emit opshub_* metrics about the agent itself into the pipeline, every `interval`.' },
    http: {
      type: 'object',
      description: "The agent's HTTP server, where /health, /metrics and plugin routes live.",
      additionalProperties: false,
      default: {},
      properties: {
        listen: { type: 'string', default: '127.0.0.1:8089', description: 'host:port to listen on; use 0.0.0.0:8089 inside a container.' },
        auth_token: { type: 'string', default: '', description: 'When set, every route except /health, /openapi.json and /docs needs `Authorization: Bearer <token>`.' },
        docs: { type: 'boolean', default: true, description: 'Serve the OpenAPI document of every route at /openapi.json and interactive docs at /docs (both public).' },
        rate_limit: {
          type: 'object',
          description: 'Per-client rate limit over all routes: a client (by address) may make `requests` requests per `window`, then gets 429 with Retry-After. Off by default.',
          additionalProperties: false,
          default: {},
          properties: {
            requests: { type: 'integer', minimum: 0, default: 0, description: 'Requests one client may make per window (bursts up to this many, then evenly spread); 0 turns limiting off.' },
            window: duration('The window `requests` are counted over.', '1m'),
            trust_proxy: { type: 'boolean', default: false, description: 'Take the client from the first X-Forwarded-For address (only behind a reverse proxy that sets it).' },
            exempt_paths: { type: 'array', items: { type: 'string' }, default: ['/health'], description: 'Paths never limited (load balancer checks).' },
          },
        },
        cors: {
          type: 'object',
          description: 'CORS for browser dashboards on other origins.',
          additionalProperties: false,
          default: {},
          properties: {
            origins: { type: 'array', items: { type: 'string' }, default: [], description: 'Origins allowed to call the API from a browser, e.g. "https://grafana.example.com", or "*" for any; empty: no CORS headers.' },
            max_age: duration('How long browsers may cache a preflight answer.', '10m'),
          },
        },
      },
    },
  },
} as const;

const MATCH_SCHEMA = {
  type: 'object',
  description: 'Limits this plugin to some events; all conditions given must hold.',
  additionalProperties: false,
  properties: {
    kinds: { type: 'array', items: { enum: ['log', 'metric'] }, description: 'Event kinds to accept.' },
    inputs: { type: 'array', items: { type: 'string' }, description: 'Ids of the inputs whose events to accept.' },
    exclude_inputs: { type: 'array', items: { type: 'string' }, description: 'Ids of inputs whose events to refuse.' },
    names: { type: 'array', items: { type: 'string' }, description: 'Metric names to accept; `*` is a wildcard.' },
    labels: {
      type: 'object',
      additionalProperties: { type: 'string' },
      description: 'Label (log) or tag (metric) name → regular expression its value must match.',
    },
  },
};

const ID = { type: 'string', pattern: '^[A-Za-z0-9_.-]+$', description: 'Instance id, unique in its section; defaults to the type (numbered when repeated).' };
const DATA_DIR = { type: 'string', description: 'Overrides agent.data_dir for this plugin.' };

export function commonProperties(kind: PluginKind): Record<string, unknown> {
  const base: Record<string, unknown> = { type: { type: 'string', description: 'Plugin type.' }, id: ID, data_dir: DATA_DIR };
  if (kind === 'input' || kind === 'service_input') {
    base.tags = { type: 'object', additionalProperties: { type: 'string' }, description: 'Extra labels (logs) or tags (metrics) added to every event.' };
  }
  if (kind === 'input') base.interval = duration('Overrides agent.interval.');
  if (kind === 'processor' || kind === 'output') base.match = MATCH_SCHEMA;
  if (kind === 'output') {
    base.batch_size = { type: 'integer', minimum: 1, description: 'Overrides agent.batch_size.' };
    base.flush_interval = duration('Overrides agent.flush_interval.');
    base.buffer_limit = { type: 'integer', minimum: 1, description: 'Overrides agent.buffer_limit.' };
    base.retry_initial_backoff = duration('First wait before retrying a failed write; doubles each time, with jitter.', '500ms');
    base.retry_max_backoff = duration('Longest wait between retries.', '5m');
  }
  return base;
}

export function defName(def: PluginDefinition): string {
  return `${SECTION_OF[def.kind]}.${def.type}`;
}

export function pluginEntrySchema(def: PluginDefinition): Record<string, unknown> {
  const own: PluginSchema = def.schema;
  return {
    type: 'object',
    description: def.description,
    properties: { ...commonProperties(def.kind), ...own.properties },
    required: ['type', ...(own.required ?? [])],
    additionalProperties: false,
  };
}

function sectionSchema(defs: PluginDefinition[], section: string): Record<string, unknown> {
  const mine = defs.filter((d) => SECTION_OF[d.kind] === section);
  if (mine.length === 0) return { type: 'array', default: [], maxItems: 0, description: `No ${section} plugins are loaded.` };
  return {
    type: 'array',
    default: [],
    items: {
      type: 'object',
      required: ['type'],
      properties: { type: { enum: mine.map((d) => d.type), description: 'Plugin type.' } },
      allOf: mine.map((d) => ({
        if: { type: 'object', properties: { type: { const: d.type } }, required: ['type'] },
        then: { $ref: `#/definitions/${defName(d)}` },
      })),
    },
  };
}

export function composeSchema(defs: PluginDefinition[], extraSections: Record<string, unknown> = {}): Record<string, unknown> {
  const definitions: Record<string, unknown> = {};
  for (const d of defs) definitions[defName(d)] = pluginEntrySchema(d);
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://opshub.dev/schemas/opshub.schema.json',
    title: 'OpsHub pipeline',
    type: 'object',
    additionalProperties: false,
    properties: {
      agent: AGENT_SCHEMA,
      inputs: sectionSchema(defs, 'inputs'),
      processors: sectionSchema(defs, 'processors'),
      outputs: sectionSchema(defs, 'outputs'),
      ...extraSections,
    },
    definitions,
  };
}
