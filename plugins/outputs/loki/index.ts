// outputs.loki: pushes logs to Grafana Loki's push API, as snappy-compressed
// protobuf (Loki's preferred form) or JSON (optionally gzip). Labels are a
// small configured set with a cardinality guard; everything else goes to
// structured metadata or into the line. The runtime batches by count and time
// and retries; this plugin splits batches by bytes and maps HTTP statuses to
// retryable / permanent errors as Loki means them.

import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import type { Event, LogEvent } from '../../../core/events.ts';
import { errorMessage } from '../../../core/log.ts';
import { PermanentError, RetryableError, type Output, type PluginContext, type PluginDefinition } from '../../../core/plugin.ts';
import { parseDuration, parseSize } from '../../../core/units.ts';
import { encodeJsonPush, encodePushRequest, type LokiStream } from './encode.ts';
import { EntryMapper, labelConfigProblems, toStreams, type LineFormat, type MappedEntry } from './entries.ts';
import { snappyCompress } from '../../common/snappy.ts';

const gzip = promisify(gzipCb);

export interface LokiConfig {
  url: string;
  encoding: 'protobuf' | 'json';
  gzip: boolean;
  labels: string[];
  static_labels: Record<string, string>;
  max_label_values: number;
  structured_metadata: boolean;
  line_format: LineFormat;
  batch_max_bytes: string | number;
  timeout: string;
  tenant_id: string;
  basic_auth: { username: string; password: string };
  bearer_token: string;
  headers: Record<string, string>;
  tls: { ca_file: string; cert_file: string; key_file: string; insecure_skip_verify: boolean };
}

export interface LokiStats {
  /** Successful push requests. */
  pushes: number;
  /** Entries Loki accepted. */
  entries: number;
  /** Body bytes sent in successful pushes (after compression). */
  bytes_sent: number;
  /** Metric events received and ignored (Loki stores logs). */
  metrics_ignored: number;
  /** Entries in pushes Loki refused with 400 (or another non-retryable status). */
  entries_rejected: number;
  /** Single entries Loki refused with 413 even alone; dropped. */
  entries_too_large: number;
  /** Pushes split in halves after a 413. */
  splits: number;
  /** Entries whose label value was left out of the stream labels by the max_label_values guard. */
  label_values_overflowed: number;
}

export class HttpStatusError extends Error {
  constructor(readonly status: number, readonly body: string, readonly retryAfterMs?: number) {
    super(`Loki answered ${status} ${http.STATUS_CODES[status] ?? ''}${body ? `: ${body}` : ''}`.trim());
  }
}

/** Retry-After as seconds or an HTTP date, in ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** The push endpoint for a configured URL (a base URL, or the full push URL). */
export function pushUrl(base: string): URL {
  const url = new URL(base);
  if (!/\/loki\/api\/v1\/push\/?$/.test(url.pathname)) url.pathname = `${url.pathname.replace(/\/+$/, '')}/loki/api/v1/push`;
  return url;
}

function oneLine(text: string, max = 300): string {
  const s = text.replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

interface Progress {
  first: Event | undefined;
  length: number;
  /** Log events of this batch already pushed (or deliberately dropped), a prefix in batch order. */
  done: number;
}

export function createLoki(config: LokiConfig, ctx: PluginContext): Output & { stats: LokiStats } {
  const problems = labelConfigProblems(config.labels, config.static_labels);
  if (config.gzip && config.encoding !== 'json') problems.push('gzip applies to encoding: json only (protobuf is always snappy-compressed)');
  if (config.basic_auth.username && config.bearer_token) problems.push('set basic_auth or bearer_token, not both');
  if (Boolean(config.tls.cert_file) !== Boolean(config.tls.key_file)) problems.push('tls.cert_file and tls.key_file go together');
  let url: URL;
  try {
    url = pushUrl(config.url);
  } catch {
    throw new Error(`url: not a valid URL: "${config.url}"`);
  }
  if (problems.length) throw new Error(problems.join('; '));

  const maxBytes = parseSize(config.batch_max_bytes);
  const timeoutMs = parseDuration(config.timeout);
  const mapper = new EntryMapper({
    labels: config.labels,
    staticLabels: config.static_labels,
    structuredMetadata: config.structured_metadata,
    lineFormat: config.line_format,
    maxLabelValues: config.max_label_values,
    hostname: ctx.hostname,
  });
  mapper.onOverflow = (label) =>
    ctx.log.once(`overflow:${label}`, 'warn', `label "${label}" reached max_label_values (${config.max_label_values}); new values go to structured metadata or the line instead`);

  const stats: LokiStats = {
    pushes: 0, entries: 0, bytes_sent: 0, metrics_ignored: 0, entries_rejected: 0, entries_too_large: 0, splits: 0, label_values_overflowed: 0,
  };
  const headers: Record<string, string> = { 'user-agent': 'opshub', ...config.headers };
  if (config.tenant_id) headers['x-scope-orgid'] = config.tenant_id;
  if (config.bearer_token) headers.authorization = `Bearer ${config.bearer_token}`;
  else if (config.basic_auth.username) {
    headers.authorization = `Basic ${Buffer.from(`${config.basic_auth.username}:${config.basic_auth.password}`).toString('base64')}`;
  }
  if (config.encoding === 'protobuf') headers['content-type'] = 'application/x-protobuf';
  else {
    headers['content-type'] = 'application/json';
    if (config.gzip) headers['content-encoding'] = 'gzip';
  }

  let agent: http.Agent | undefined;
  let progress: Progress | undefined;
  let stopped = false;

  async function body(streams: LokiStream[]): Promise<Buffer> {
    if (config.encoding === 'protobuf') return snappyCompress(encodePushRequest(streams));
    const json = encodeJsonPush(streams);
    return config.gzip ? gzip(json) : Buffer.from(json);
  }

  function post(payload: Buffer): Promise<void> {
    const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]);
    const request = url.protocol === 'https:' ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = request(url, { method: 'POST', agent, signal, headers: { ...headers, 'content-length': String(payload.length) } }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < 4096) chunks.push(c);
          size += c.length;
        });
        res.on('error', (err) => reject(new RetryableError(`reading Loki's answer: ${errorMessage(err)}`)));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve();
          const text = oneLine(Buffer.concat(chunks).toString('utf8'));
          const retryAfter = parseRetryAfter(res.headers['retry-after'] as string | undefined);
          reject(new HttpStatusError(status, text, retryAfter));
        });
      });
      req.on('error', (err) => {
        const why = signal.aborted && !ctx.signal.aborted ? `no answer within ${config.timeout}` : errorMessage(err);
        reject(new RetryableError(`cannot reach Loki at ${url.origin}: ${why}`));
      });
      req.end(payload);
    });
  }

  /**
   * Pushes entries (in batch order); on 413 pushes each half. Returns how many
   * entries were settled (pushed or dropped as too large): all of them, unless
   * it throws. `settle` is told after each successful push, so a retry resumes
   * after what Loki already has.
   */
  async function push(entries: MappedEntry[], settle: (n: number) => void): Promise<void> {
    const payload = await body(toStreams(entries));
    try {
      await post(payload);
      stats.pushes++;
      stats.entries += entries.length;
      stats.bytes_sent += payload.length;
      settle(entries.length);
    } catch (err) {
      if (!(err instanceof HttpStatusError)) throw err;
      const { status } = err;
      if (status === 413) {
        if (entries.length === 1) {
          stats.entries_too_large++;
          ctx.log.once('413-single', 'warn', `Loki refused a single entry as too large (413), dropping it: ${err.body}`);
          settle(1);
          return;
        }
        stats.splits++;
        const half = Math.ceil(entries.length / 2);
        await push(entries.slice(0, half), settle);
        await push(entries.slice(half), settle);
        return;
      }
      if (status === 429 || status === 408 || status >= 500) throw new RetryableError(err.message, err.retryAfterMs);
      throw err; // 400 and other 4xx: the caller counts and moves on
    }
  }

  return {
    stats,

    /** opshub_plugin_loki: every counter of `stats`, as `<name>_total`. */
    selfMetrics() {
      return Object.fromEntries(Object.entries(stats).map(([k, v]) => [`${k}_total`, v]));
    },

    async start() {
      const tls = config.tls;
      agent =
        url.protocol === 'https:'
          ? new https.Agent({
              keepAlive: true,
              maxSockets: 4,
              ca: tls.ca_file ? readFileSync(tls.ca_file) : undefined,
              cert: tls.cert_file ? readFileSync(tls.cert_file) : undefined,
              key: tls.key_file ? readFileSync(tls.key_file) : undefined,
              rejectUnauthorized: !tls.insecure_skip_verify,
            })
          : new http.Agent({ keepAlive: true, maxSockets: 4 });
    },

    async write(events) {
      if (stopped) throw new RetryableError('output is stopped');
      // A retry of the same batch resumes after what Loki already accepted: nothing twice.
      if (!progress || progress.first !== events[0] || progress.length !== events.length) {
        progress = { first: events[0], length: events.length, done: 0 };
        for (const e of events) if (e.kind !== 'log') stats.metrics_ignored++;
      }
      const state = progress;
      const logs = events.filter((e): e is LogEvent => e.kind === 'log').slice(state.done);
      if (logs.length === 0) {
        progress = undefined;
        return;
      }

      // Split by bytes: chunks of consecutive entries, each at most batch_max_bytes (or one entry).
      const chunks: MappedEntry[][] = [];
      let chunk: MappedEntry[] = [];
      let size = 0;
      for (const e of logs) {
        const m = mapper.map(e);
        if (chunk.length && size + m.bytes > maxBytes) {
          chunks.push(chunk);
          chunk = [];
          size = 0;
        }
        chunk.push(m);
        size += m.bytes;
      }
      if (chunk.length) chunks.push(chunk);
      stats.label_values_overflowed = mapper.stats.label_values_overflowed;

      let refused: HttpStatusError | undefined;
      const settle = (n: number) => (state.done += n);
      for (const c of chunks) {
        try {
          await push(c, settle);
        } catch (err) {
          if (!(err instanceof HttpStatusError)) throw err; // retryable: the runtime backs off and calls again, `progress` stays
          // 400 and other 4xx: retrying cannot help. Loki may have kept part of it; never resend.
          stats.entries_rejected += c.length;
          state.done += c.length;
          ctx.log.once(`status:${err.status}`, 'error', `${err.message} (${c.length} entries dropped; further ${err.status}s are counted, not logged)`);
          refused ??= err;
        }
      }
      progress = undefined; // settled: the next call is a new batch
      if (refused) throw new PermanentError(`Loki answered ${refused.status} ${http.STATUS_CODES[refused.status] ?? ''}`.trim());
    },

    async stop() {
      stopped = true;
      agent?.destroy();
      agent = undefined;
    },
  };
}

const str = (description: string, dflt = '') => ({ type: 'string', default: dflt, description });

export const loki: PluginDefinition<LokiConfig> = {
  kind: 'output',
  type: 'loki',
  description: "Pushes logs to Grafana Loki's push API (snappy protobuf or JSON), with a small bounded label set.",
  example: { url: 'http://127.0.0.1:3100' },
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['url'],
    properties: {
      url: { type: 'string', pattern: '^https?://', description: "Loki's base URL, e.g. http://loki:3100; /loki/api/v1/push is appended unless already there." },
      encoding: { enum: ['protobuf', 'json'], default: 'protobuf', description: 'protobuf: snappy-compressed logproto.PushRequest (what Promtail and Alloy send); json: the JSON push body.' },
      gzip: { type: 'boolean', default: false, description: 'Gzip the JSON body (encoding: json only).' },
      labels: {
        type: 'array',
        items: { type: 'string', minLength: 1 },
        maxItems: 15,
        default: ['container', 'level', 'host', 'job'],
        description: 'Event fields that become stream labels: level, source, or a name looked up in the event labels, then its attributes (host falls back to the agent host name, job to "opshub"). Names are sanitised to [a-zA-Z_][a-zA-Z0-9_]*; id-like names are refused.',
      },
      static_labels: { type: 'object', additionalProperties: { type: 'string' }, default: {}, description: 'Labels added to every stream, e.g. {env: prod}; an event value of the same name wins.' },
      max_label_values: {
        type: 'integer', minimum: 1, default: 1000,
        description: 'Cardinality guard: distinct values one label may take; later new values are kept out of the stream labels (into structured metadata or the line), counted and logged once.',
      },
      structured_metadata: {
        type: 'boolean', default: true,
        description: 'With line_format raw, send what is not a label (source, other labels, attributes) as structured metadata (Loki 3+; set false for Loki 2.x).',
      },
      line_format: { enum: ['raw', 'json', 'logfmt'], default: 'raw', description: 'raw: the message; json or logfmt: the message with every field that is not a stream label.' },
      batch_max_bytes: { type: ['string', 'integer'], format: 'size', default: '1MiB', description: 'Largest push (uncompressed); a larger batch is split into several pushes.' },
      timeout: { type: 'string', format: 'duration', default: '10s', description: 'How long one push may take before it is retried.' },
      tenant_id: str('Sent as X-Scope-OrgID (multi-tenant Loki); empty: not sent.'),
      basic_auth: {
        type: 'object',
        additionalProperties: false,
        default: { username: '', password: '' },
        description: 'HTTP basic auth (e.g. Grafana Cloud: user id and API token).',
        properties: { username: str('User name; empty: no basic auth.'), password: str('Password or token.') },
      },
      bearer_token: str('Sent as Authorization: Bearer <token>; empty: not sent.'),
      headers: { type: 'object', additionalProperties: { type: 'string' }, default: {}, description: 'Extra HTTP headers on every push.' },
      tls: {
        type: 'object',
        additionalProperties: false,
        default: { ca_file: '', cert_file: '', key_file: '', insecure_skip_verify: false },
        description: 'TLS for https URLs.',
        properties: {
          ca_file: str('PEM file of the CA that signed the server certificate; empty: the system CAs.'),
          cert_file: str('PEM client certificate, for mutual TLS.'),
          key_file: str('PEM key of the client certificate.'),
          insecure_skip_verify: { type: 'boolean', default: false, description: "Skip verifying the server's certificate (testing only)." },
        },
      },
    },
  },
  create: (config, ctx) => createLoki(config, ctx),
};

export default loki;
