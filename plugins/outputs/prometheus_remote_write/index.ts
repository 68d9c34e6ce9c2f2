// outputs.prometheus_remote_write: pushes metric events to anything that
// speaks the Prometheus remote-write 1.0 protocol (Prometheus with
// --web.enable-remote-write-receiver, VictoriaMetrics, Mimir, Thanos receive,
// Cortex): snappy-compressed protobuf WriteRequests over HTTP(S). The runtime
// batches, buffers and retries; this output maps, encodes, splits and sends.

import { createRequire } from 'node:module';
import type { Event } from '../../../core/events.ts';
import { PermanentError, type Output, type PluginContext, type PluginDefinition } from '../../../core/plugin.ts';
import { parseDuration } from '../../../core/units.ts';
import { sanitizeLabelName } from '../../common/prometheus_names.ts';
import { snappyCompress } from '../../common/snappy.ts';
import { RejectedError, RemoteWriteClient } from './client.ts';
import { encodeWriteRequest, type Metadata } from './protobuf.ts';
import { SeriesMapper, splitBySamples, type Label } from './series.ts';

export interface RemoteWriteConfig {
  url: string;
  headers: Record<string, string>;
  basic_auth: { username: string; password: string };
  bearer_token: string;
  tls: { ca_file: string; cert_file: string; key_file: string; insecure_skip_verify: boolean };
  timeout: string;
  external_labels: Record<string, string>;
  host_label: string;
  send_metadata: boolean;
  max_samples_per_request: number;
}

/** What this output counts besides the runtime's opshub_output_* figures. */
export interface RemoteWriteStats {
  requests: number;
  samples_sent: number;
  /** Samples in requests the receiver rejected (4xx other than 429). */
  samples_rejected: number;
  string_fields_skipped: number;
  log_events_ignored: number;
  duplicate_samples_merged: number;
}

const VERSION = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;

/** A batch being sent: its encoded requests and how many went through, so a retry resends only the rest. */
interface Job {
  events: Event[];
  bodies: Array<{ body: Buffer; samples: number }>;
  next: number;
  rejected: RejectedError[];
}

export class RemoteWriteOutput implements Output {
  readonly stats: RemoteWriteStats = { requests: 0, samples_sent: 0, samples_rejected: 0, string_fields_skipped: 0, log_events_ignored: 0, duplicate_samples_merged: 0 };
  private client: RemoteWriteClient;
  private mapper: SeriesMapper;
  private job?: Job;
  private stopped = false;

  constructor(private config: RemoteWriteConfig, private ctx: PluginContext) {
    const url = new URL(config.url);
    const { username, password } = config.basic_auth;
    if ((username || password) && config.bearer_token) throw new Error('set basic_auth or bearer_token, not both');
    const headers: Record<string, string> = { ...config.headers };
    if (username || password) headers.Authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    if (config.bearer_token) headers.Authorization = `Bearer ${config.bearer_token}`;
    Object.assign(headers, {
      'Content-Encoding': 'snappy',
      'Content-Type': 'application/x-protobuf',
      'X-Prometheus-Remote-Write-Version': '0.1.0',
      'User-Agent': `opshub/${VERSION}`,
    });
    const extra = new Map<string, string>();
    for (const [name, value] of Object.entries(config.external_labels)) if (value !== '') extra.set(sanitizeLabelName(name), value);
    if (config.host_label && ctx.hostname && !extra.has(sanitizeLabelName(config.host_label))) {
      extra.set(sanitizeLabelName(config.host_label), ctx.hostname);
    }
    this.mapper = new SeriesMapper([...extra].map(([n, v]): Label => [n, v]));
    this.client = new RemoteWriteClient({
      url,
      headers,
      timeoutMs: parseDuration(config.timeout),
      tls: config.tls,
      signal: ctx.signal,
    });
  }

  async start(): Promise<void> {
    await this.client.open();
  }

  async write(events: Event[]): Promise<void> {
    // The runtime retries a failed batch with the same array: resume where it stopped.
    let job = this.job;
    if (!job || job.events !== events) job = this.job = { events, bodies: this.encode(events), next: 0, rejected: [] };
    while (job.next < job.bodies.length) {
      const { body, samples } = job.bodies[job.next]!;
      try {
        await this.client.post(body);
        this.stats.samples_sent += samples;
      } catch (err) {
        if (!(err instanceof RejectedError)) throw err;
        this.stats.samples_rejected += samples;
        job.rejected.push(err);
        this.ctx.log.once(`rejected:${err.status}`, 'warn', `the receiver answered HTTP ${err.status}${err.body ? `: ${err.body}` : ''}`);
      }
      this.stats.requests++;
      job.next++;
    }
    this.job = undefined;
    if (job.rejected.length) {
      throw new PermanentError(`${job.rejected.length} of ${job.bodies.length} requests rejected with HTTP ${job.rejected.map((e) => e.status).join(', ')}`);
    }
  }

  /** Maps a batch to series and encodes it into compressed requests of at most max_samples_per_request samples. */
  private encode(events: Event[]): Job['bodies'] {
    const mapped = this.mapper.map(events);
    if (mapped.stringFields) {
      this.stats.string_fields_skipped += mapped.stringFields;
      this.ctx.log.once('strings', 'info', 'string fields are not sent (Prometheus samples are numbers); they are counted and skipped');
    }
    if (mapped.logEvents) {
      this.stats.log_events_ignored += mapped.logEvents;
      this.ctx.log.once('logs', 'info', 'log events are ignored; add `match: {kinds: [metric]}` to this output to keep them out');
    }
    this.stats.duplicate_samples_merged += mapped.duplicateSamples;
    const bodies: Job['bodies'] = [];
    for (const request of splitBySamples(mapped.series, this.config.max_samples_per_request)) {
      const metadata: Metadata[] = [];
      if (this.config.send_metadata) {
        const names = new Set<string>();
        for (const s of request) {
          const name = s.labels.find((l) => l[0] === '__name__')![1];
          if (names.has(name)) continue;
          names.add(name);
          metadata.push({ name, type: mapped.families.get(name) ?? 'untyped' });
        }
      }
      let samples = 0;
      for (const s of request) samples += s.samples.length;
      bodies.push({ body: snappyCompress(encodeWriteRequest(request, metadata)), samples });
    }
    return bodies;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.client.close();
  }
}

export const prometheusRemoteWrite: PluginDefinition<RemoteWriteConfig> = {
  kind: 'output',
  type: 'prometheus_remote_write',
  description: 'Pushes metrics with the Prometheus remote-write protocol (Prometheus, VictoriaMetrics, Mimir, Thanos receive).',
  example: { url: 'http://127.0.0.1:8428/api/v1/write' },
  schema: {
    type: 'object',
    additionalProperties: false,
    required: ['url'],
    properties: {
      url: { type: 'string', pattern: '^https?://', description: 'The receiver\'s remote-write endpoint, e.g. http://victoria:8428/api/v1/write or http://prometheus:9090/api/v1/write.' },
      headers: { type: 'object', additionalProperties: { type: 'string' }, default: {}, description: 'Extra HTTP headers on every request, e.g. X-Scope-OrgID for a Mimir tenant.' },
      basic_auth: {
        type: 'object',
        additionalProperties: false,
        default: { username: '', password: '' },
        description: 'HTTP basic authentication; off when both are empty.',
        properties: {
          username: { type: 'string', default: '', description: 'User name.' },
          password: { type: 'string', default: '', description: 'Password (use ${ENV} substitution rather than writing it in the file).' },
        },
      },
      bearer_token: { type: 'string', default: '', description: 'Sent as `Authorization: Bearer <token>`; empty: none. Not together with basic_auth.' },
      tls: {
        type: 'object',
        additionalProperties: false,
        default: { ca_file: '', cert_file: '', key_file: '', insecure_skip_verify: false },
        description: 'TLS for https:// URLs.',
        properties: {
          ca_file: { type: 'string', default: '', description: 'PEM file of the CA(s) to trust besides the system ones.' },
          cert_file: { type: 'string', default: '', description: 'PEM client certificate, for mutual TLS.' },
          key_file: { type: 'string', default: '', description: 'PEM key of the client certificate.' },
          insecure_skip_verify: { type: 'boolean', default: false, description: 'Accept any server certificate (testing only).' },
        },
      },
      timeout: { type: 'string', format: 'duration', default: '30s', description: 'How long one request may take, answer included; a timeout is retried.' },
      external_labels: {
        type: 'object',
        additionalProperties: { type: 'string' },
        default: {},
        description: 'Labels added to every series that lacks them, e.g. {cluster: prod, host: "${HOSTNAME}"}.',
      },
      host_label: { type: 'string', default: 'host', description: 'Label set to the agent\'s hostname on every series that lacks it (external_labels win); empty: none.' },
      send_metadata: { type: 'boolean', default: true, description: 'Send the type (counter/gauge) of each metric family with the samples.' },
      max_samples_per_request: { type: 'integer', minimum: 1, default: 2000, description: 'A batch with more samples is sent as several requests, in order.' },
    },
  },
  create: (config, ctx) => new RemoteWriteOutput(config, ctx),
};

export default prometheusRemoteWrite;
