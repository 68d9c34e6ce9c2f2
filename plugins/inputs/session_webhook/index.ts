// inputs.session_webhook: receives user-session events on the agent's HTTP
// server (POST /users/session by default): the OpsHub form and batches of it,
// the usage events of the shipped Open WebUI filter function, and Open WebUI's
// own webhook notifications. Each request is authenticated (bearer token or
// ?token=, optionally an HMAC-SHA256 signature of the body), bounded in size,
// and validated as a whole before anything is emitted: a request is recorded
// completely or not at all. Events are logs with attributes.category =
// "session", so they reach the DuckDB activity table and Loki like any log.

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { makeLog, nowNs, type LogEvent } from '../../../core/events.ts';
import { bearerToken, readBody, sendJson, tokensEqual } from '../../../core/http.ts';
import { errorMessage } from '../../../core/log.ts';
import type { Accumulator, PluginContext, PluginDefinition, ServiceInput } from '../../../core/plugin.ts';
import { parseSize } from '../../../core/units.ts';
import { check, compileValidators, OPSHUB_SCHEMA, type SessionRecord } from './payloads.ts';

export interface SessionWebhookConfig {
  path: string;
  auth_token: string;
  allow_query_token: boolean;
  signature_secret: string;
  signature_header: string;
  max_body_bytes: string | number;
  max_batch_events: number;
  source: string;
}

/** Reasons listed in a 400 answer at most (a batch of 1,000 bad items gets the first ones and a count). */
const MAX_REASONS = 50;

/** Verifies `sha256=<hex>` (or bare hex) against HMAC-SHA256(secret, body), in constant time. */
export function signatureValid(header: string | string[] | undefined, secret: string, body: Buffer): boolean {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return false;
  const hex = value.trim().replace(/^sha256=/i, '');
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) return false;
  const expected = createHmac('sha256', secret).update(body).digest();
  return timingSafeEqual(Buffer.from(hex, 'hex'), expected);
}

/** The signature header a client sends: `sha256=<hex of HMAC-SHA256(secret, body)>`. */
export function sign(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export function toLogEvent(record: SessionRecord, source: string, extra: Record<string, unknown>): LogEvent {
  return makeLog({
    timestamp: record.timestamp ?? nowNs(),
    source,
    level: record.level,
    message: record.message,
    // Low-cardinality only: user names, ids and addresses stay in attributes.
    labels: { category: 'session', origin: record.origin },
    attributes: { category: 'session', origin: record.origin, ...record.attributes, ...extra },
  });
}

export function createSessionWebhook(config: SessionWebhookConfig, ctx: PluginContext): ServiceInput {
  const maxBytes = parseSize(config.max_body_bytes);
  const validators = compileValidators();
  let acc: Accumulator | undefined;
  let unmount: (() => void) | undefined;
  let stopped = false;

  const queryToken = (req: IncomingMessage): string | undefined => {
    if (!config.allow_query_token) return undefined;
    return new URL(req.url ?? '/', 'http://localhost').searchParams.get('token') ?? undefined;
  };

  /** Own token when set, else the agent's (when the agent has none, the route is open). */
  const auth = (req: IncomingMessage): string | null => {
    const q = queryToken(req);
    if (config.auth_token) {
      return tokensEqual(bearerToken(req), config.auth_token) || tokensEqual(q, config.auth_token) ? null : 'missing or wrong token';
    }
    if (ctx.http.isAuthorized(req)) return null;
    // The agent's token in ?token= (Open WebUI's webhook cannot send headers).
    if (q && ctx.http.isAuthorized({ headers: { authorization: `Bearer ${q}` } } as IncomingMessage)) return null;
    return 'missing or wrong token';
  };

  const reject = (res: Parameters<typeof sendJson>[0], status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) => {
    acc?.error(new Error(`rejected with ${status}: ${String(body.message)}`));
    ctx.log.once('rejected', 'warn', `rejected a request with ${status} (${String(body.message)}); later rejections are counted in opshub_input_errors_total, not logged`);
    sendJson(res, status, body, headers);
  };

  return {
    async start(accumulator) {
      acc = accumulator;
      stopped = false;
      unmount = ctx.http.route({
        method: 'POST',
        path: config.path,
        auth,
        schema: {
          summary: 'Record user-session events',
          description:
            'One event or a batch (a JSON array) in the OpsHub form below; Open WebUI\'s webhook notifications (generic, Slack, Discord, Teams) and the shipped Open WebUI filter\'s usage events are accepted too. ' +
            'The token: this input\'s own (auth_token) or the agent\'s, as a bearer header or ?token=; with signature_secret an HMAC-SHA256 of the body is required. A batch is recorded whole or not at all.',
          tags: ['users'],
          security: [{ bearerAuth: [] }, { tokenQuery: [] }],
          querystring: { type: 'object', properties: { username: { type: 'string', description: 'User for payloads that name none (Open WebUI notifications).' } } },
          body: { anyOf: [OPSHUB_SCHEMA, { type: 'array', items: OPSHUB_SCHEMA, description: 'A batch.' }] },
          response: {
            200: { description: 'Recorded.', type: 'object', properties: { status: { type: 'string', enum: ['recorded'] }, count: { type: 'integer', description: 'Events recorded.' } } },
            400: { description: 'Not JSON, or an invalid event (`reasons` says where and why).', type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' }, reasons: { type: 'array', items: { type: 'string' } } } },
            413: { description: 'Over max_body_bytes or max_batch_events.', type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } },
          },
        },
        handler: async (req, res, _params, url) => {
          if (stopped) return sendJson(res, 503, { error: 'unavailable', message: 'the session webhook is stopping' });
          let raw: Buffer;
          try {
            raw = await readBody(req, maxBytes);
          } catch (err) {
            const status = (err as { status?: number }).status === 413 ? 413 : 400;
            return reject(res, status, { error: status === 413 ? 'payload_too_large' : 'bad_request', message: errorMessage(err) }, { connection: 'close' });
          }
          if (config.signature_secret && !signatureValid(req.headers[config.signature_header.toLowerCase()], config.signature_secret, raw)) {
            return reject(res, 401, { error: 'unauthorized', message: `missing or wrong ${config.signature_header} (expected sha256=<hex of HMAC-SHA256 of the body>)` });
          }
          let body: unknown;
          try {
            if (raw.length === 0) throw new Error('the body is empty');
            body = JSON.parse(raw.toString('utf8'));
          } catch (err) {
            return reject(res, 400, { error: 'invalid_json', message: 'the body is not valid JSON', reasons: [errorMessage(err)] });
          }

          const batch = Array.isArray(body);
          const items: unknown[] = batch ? (body as unknown[]) : [body];
          if (batch && items.length === 0) return reject(res, 400, { error: 'invalid_body', message: 'the batch is empty', reasons: ['/ must not be an empty array'] });
          if (items.length > config.max_batch_events) {
            return reject(res, 413, { error: 'payload_too_large', message: `a batch of ${items.length} events is over max_batch_events (${config.max_batch_events})` });
          }
          const defaults = { username: url.searchParams.get('username') ?? undefined };
          const records: SessionRecord[] = [];
          const reasons: string[] = [];
          let invalid = 0;
          items.forEach((item, i) => {
            const checked = check(validators, item, batch ? `/${i}` : '', defaults);
            if (checked.ok) records.push(checked.record);
            else {
              invalid++;
              reasons.push(...checked.reasons);
            }
          });
          if (invalid) {
            const shown = reasons.slice(0, MAX_REASONS);
            if (reasons.length > shown.length) shown.push(`... and ${reasons.length - shown.length} more`);
            const message = batch ? `${invalid} of ${items.length} events are invalid; nothing was recorded` : 'the event is invalid; nothing was recorded';
            return reject(res, 400, { error: 'invalid_body', message, reasons: shown });
          }
          if (stopped || !acc) return sendJson(res, 503, { error: 'unavailable', message: 'the session webhook is stopping' });
          const sender = req.socket.remoteAddress;
          acc.emitMany(records.map((r) => toLogEvent(r, config.source, sender ? { sender_ip: sender } : {})));
          sendJson(res, 200, { status: 'recorded', count: records.length });
        },
      });
      ctx.log.debug(`receiving session events at POST ${config.path}`);
    },
    async stop() {
      stopped = true;
      unmount?.();
      unmount = undefined;
    },
  };
}

export const sessionWebhook: PluginDefinition<SessionWebhookConfig> = {
  kind: 'service_input',
  type: 'session_webhook',
  description: "User-session events over HTTP: the OpsHub form (POST /users/session, single or batch), Open WebUI's webhooks and the shipped Open WebUI filter's usage events.",
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      path: {
        type: 'string',
        pattern: '^/',
        default: '/users/session',
        description: "Path on the agent's HTTP server that accepts POSTed events.",
      },
      auth_token: {
        type: 'string',
        default: '',
        description: "Token this endpoint requires (Authorization: Bearer, or ?token=). Empty: the agent's own token (agent.http.auth_token), if any.",
      },
      allow_query_token: {
        type: 'boolean',
        default: true,
        description: "Also accept the token as ?token= in the URL (Open WebUI's built-in webhook cannot send headers). Such URLs end up in proxies' access logs; turn off when every sender can send a header.",
      },
      signature_secret: {
        type: 'string',
        default: '',
        description: 'When set, every request must carry an HMAC-SHA256 of its body under this secret in signature_header; otherwise 401.',
      },
      signature_header: {
        type: 'string',
        minLength: 1,
        default: 'X-OpsHub-Signature',
        description: 'Header holding the signature, as sha256=<hex>.',
      },
      max_body_bytes: {
        type: ['string', 'integer'],
        format: 'size',
        default: '1MiB',
        description: 'Largest request body (a size like 1MiB, or bytes); larger ones get 413.',
      },
      max_batch_events: {
        type: 'integer',
        minimum: 1,
        default: 1000,
        description: 'Most events in one batch (a JSON array); more gets 413.',
      },
      source: {
        type: 'string',
        minLength: 1,
        default: 'webhook',
        description: 'The `source` of the log events.',
      },
    },
  },
  create: (config, ctx) => createSessionWebhook(config, ctx),
};

export default sessionWebhook;
