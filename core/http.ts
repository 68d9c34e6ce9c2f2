// The agent's one HTTP server. Plugins mount routes and WebSocket endpoints
// on it (so users get one port, as in the OpsHub API); the core serves
// /health, /openapi.json and /docs, enforces the optional bearer token, the
// per-client rate limit and CORS.
//
// Routing, validation and serialisation are fastify's, with @fastify/swagger
// generating the OpenAPI document from the routes' JSON Schemas (the single
// source of truth) and @fastify/swagger-ui serving /docs from its package's
// assets (no network needed). Fastify cannot add or remove routes once it is
// ready, but plugins mount and unmount theirs at run time (hot reload swaps
// plugin instances). So this server keeps the route table itself, owns the
// node:http server and its `upgrade` events, and dispatches each request to a
// fastify instance built from the current table (`app.routing(req, res)`);
// when the table changes (at start and on reload only) the next request — or
// the agent right after applying a pipeline — builds a fresh instance and
// swaps it in. Requests already dispatched finish on the instance they
// started on (streams included); a build takes ~0.1 s.

import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { readFileSync } from 'node:fs';
import { timingSafeEqual } from 'node:crypto';
import { Ajv } from 'ajv';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Logger } from './log.ts';
import { errorMessage } from './log.ts';
import { Cors, RateLimiter, sendRateHeaders, type CorsOptions, type RateLimitOptions } from './http_policy.ts';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, params: Record<string, string>, url: URL) => void | Promise<void>;
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => void;

/**
 * How a route is protected: 'agent' requires the agent's token (when one is
 * set), 'public' requires nothing, and a function decides by itself (e.g. the
 * webhook's own token or HMAC signature) and returns an error text or null.
 */
export type RouteAuth = 'agent' | 'public' | ((req: IncomingMessage) => string | null);

export type JsonSchema = Record<string, unknown>;

/**
 * A route's contract, in JSON Schema: it validates the query (coerced to the
 * declared types, defaults applied) and, for `reply` routes, the JSON body;
 * it serialises `reply` routes' answers; and it is the route's entry in
 * /openapi.json. Everything is optional.
 */
export interface RouteSchema {
  summary?: string;
  description?: string;
  tags?: string[];
  /** An object schema of the query parameters (each property with a description). */
  querystring?: JsonSchema;
  /** An object schema of the `:name` path segments. */
  params?: JsonSchema;
  /** The body: validated for `reply` routes; documentation only for raw `handler` routes, which read the body themselves. */
  body?: JsonSchema;
  /**
   * Per status code: a JSON Schema with a `description` (JSON answers), or
   * `{ description, content: { '<media type>': { schema } } }` for others.
   */
  response?: Record<number | string, JsonSchema>;
  /** Media types of the body (documentation), default application/json. */
  consumes?: string[];
  /** Media types of the answers (documentation), default application/json. */
  produces?: string[];
  /** OpenAPI security requirements; by default derived from `auth`. */
  security?: Array<Record<string, string[]>>;
  /** Leave the route out of /openapi.json. */
  hide?: boolean;
}

/** What a `reply` route's function gets. */
export interface RouteRequest<Q = Record<string, any>, B = unknown> {
  raw: IncomingMessage;
  params: Record<string, string>;
  /** The query, validated against schema.querystring: coerced to the declared types, defaults applied. */
  query: Q;
  /** The parsed JSON body, validated against schema.body. */
  body: B;
  url: URL;
  /** Aborted when the client goes away (long queries, streams). */
  signal: AbortSignal;
  /** Sets the status of the answer (default 200); the answer is serialised by schema.response[status]. */
  status(code: number): void;
  header(name: string, value: string | number): void;
  /** Takes the response over (e.g. to stream): the route writes it itself; what the function returns is ignored. */
  takeOver(): ServerResponse;
}

interface RouteBase {
  method: string;
  /** Path with `:name` segments, e.g. `/logs/:container`. */
  path: string;
  auth?: RouteAuth;
  schema?: RouteSchema;
}

/** A route that handles the node request and response itself (the body is left unread for it). */
export interface RawRoute extends RouteBase {
  handler: RouteHandler;
  reply?: undefined;
}

/**
 * A route whose function returns the answer (serialised by
 * schema.response[200], or the status it set); errors are thrown as HttpError.
 */
export interface ReplyRoute extends RouteBase {
  reply: (request: RouteRequest) => unknown;
  handler?: undefined;
}

export type Route = RawRoute | ReplyRoute;

export interface HttpMount {
  /** Adds a route; returns a function that removes it (plugins call it on stop). */
  route(route: Route): () => void;
  /**
   * Adds a WebSocket (or other upgrade) endpoint at an exact path; returns its
   * remover. `doc` documents it in /openapi.json (as a GET answering 101).
   */
  upgrade(path: string, handler: UpgradeHandler, auth?: RouteAuth, doc?: RouteSchema): () => void;
  /** Checks a request against the agent's token; true when allowed. */
  isAuthorized(req: IncomingMessage): boolean;
}

/** An error with an HTTP status, for `reply` routes (and raw ones) to throw. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string | number> = {},
  ) {
    super(message);
  }
}

/** The shape of every error answer: `{error, message}` (+ `parameter` for bad input). */
export const ERROR_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['error', 'message'],
  properties: {
    error: { type: 'string', description: 'Stable error code, e.g. bad_request, unauthorized, not_found, rate_limited.' },
    message: { type: 'string', description: 'What went wrong, for people.' },
    parameter: { type: 'string', description: 'The query parameter or body field at fault (bad_request).' },
  },
};

/** A response entry for an error status, for route schemas. */
export function errorResponse(description: string): JsonSchema {
  return { description, ...ERROR_SCHEMA };
}

interface CompiledRoute {
  route: Route;
  pattern: RegExp;
}

function compile(route: Route): CompiledRoute {
  const source = route.path
    .split('/')
    .map((seg) => (seg.startsWith(':') ? '([^/]+)' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return { route, pattern: new RegExp(`^${source}/?$`) };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | number> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Reads a request body up to `limit` bytes; rejects with a `status` of 413 beyond it. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(Object.assign(new Error(`body of ${declared} bytes is over the limit of ${limit}`), { status: 413 }));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(Object.assign(new Error(`body is over the limit of ${limit} bytes`), { status: 413 }));
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice(7).trim();
  return undefined;
}

export function tokensEqual(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const ISO_TIME = /^(\d{4}-\d{2}-\d{2})(?:[Tt ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?))?([Zz]|[+-]\d{2}:?\d{2})?$/;

/**
 * Milliseconds since the epoch of an ISO 8601 time ("2026-05-01T12:00:00Z",
 * "...+02:00", a date alone); a time without a zone is UTC. Undefined when
 * it is not one. Query parameters of `format: date-time` accept exactly these.
 */
export function parseIsoTime(text: string): number | undefined {
  const m = ISO_TIME.exec(text);
  if (!m) return undefined;
  let zone = m[3] ?? 'Z';
  if (zone === 'z') zone = 'Z';
  else if (zone !== 'Z' && !zone.includes(':')) zone = `${zone.slice(0, 3)}:${zone.slice(3)}`;
  let time = m[2] ?? '00:00:00';
  if (time.length === 5) time += ':00';
  // Date.parse keeps milliseconds only; cut finer fractions so it accepts them.
  time = time.replace(/(\.\d{3})\d+$/, '$1');
  const ms = Date.parse(`${m[1]}T${time}${zone}`);
  return Number.isNaN(ms) ? undefined : ms;
}

/** ISO 8601 UTC with milliseconds and Z, the form every answer uses. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

export interface HttpPolicies {
  rateLimit: RateLimitOptions;
  cors: CorsOptions;
  /** Serve /openapi.json and /docs. */
  docs: boolean;
}

export const DEFAULT_POLICIES: HttpPolicies = {
  rateLimit: { requests: 0, windowMs: 60_000, trustProxy: false, exemptPaths: ['/health'] },
  cors: { origins: [], maxAgeS: 600 },
  docs: true,
};

export interface AgentHttpOptions {
  listen: string;
  authToken?: string;
  log: Logger;
  policies?: Partial<HttpPolicies>;
  /** Answer 503 (not 404) to unknown routes until markStarted(): the agent listens before plugins mount theirs. */
  starting?: boolean;
}

const VERSION: string = (() => {
  try {
    return JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

const FORMAT_HINTS: Record<string, string> = {
  'date-time': 'an ISO 8601 time such as 2026-05-01T12:00:00Z (without a zone: UTC)',
};

/** "query parameter limit must be <= 10000" from the first ajv error fastify reports. */
function validationMessage(err: FastifyError): { message: string; parameter?: string } {
  const first = err.validation?.[0];
  const where = err.validationContext === 'querystring' ? 'query parameter' : err.validationContext === 'params' ? 'path parameter' : err.validationContext ?? 'request';
  if (!first) return { message: err.message };
  const params = (first.params ?? {}) as Record<string, unknown>;
  const path = String(first.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  let parameter = path || undefined;
  let why = first.message ?? 'is invalid';
  if (first.keyword === 'required') {
    parameter = [path, String(params.missingProperty)].filter(Boolean).join('.');
    why = 'is required';
  } else if (first.keyword === 'additionalProperties') {
    parameter = [path, String(params.additionalProperty)].filter(Boolean).join('.');
    why = 'is not allowed';
  } else if (first.keyword === 'enum') {
    why = `must be one of: ${(params.allowedValues as unknown[]).map(String).join(', ')}`;
  } else if (first.keyword === 'format') {
    why = `must be ${FORMAT_HINTS[String(params.format)] ?? `a valid ${String(params.format)}`}`;
  } else if (first.keyword === 'type') {
    why = `must be ${params.type === 'integer' ? 'an integer' : params.type === 'boolean' ? 'true or false' : `a ${String(params.type)}`}`;
  }
  if (!parameter) return { message: `${where === 'body' ? 'the body' : where} ${why}` };
  return { message: `${where} ${parameter} ${why}`, parameter };
}

function codeFor(status: number): string {
  return ({ 400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 405: 'method_not_allowed', 406: 'not_acceptable', 408: 'timeout', 413: 'payload_too_large', 415: 'unsupported_media_type', 429: 'rate_limited', 503: 'unavailable' } as Record<number, string>)[status] ?? 'error';
}

/**
 * JSON Schema (draft-07, as routes write it) → an OpenAPI 3.0 Schema Object,
 * for the document only: type lists become `nullable`/`anyOf`, numeric
 * exclusive bounds the 3.0 boolean form, `const` an enum; `$schema`, `$id`
 * and `examples` are left out.
 */
export function toOpenApiSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toOpenApiSchema);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema as Record<string, unknown>)) {
    if (k === '$schema' || k === '$id' || k === '$comment' || k === 'examples') continue;
    if ((k === 'properties' || k === 'patternProperties' || k === 'definitions') && v && typeof v === 'object') {
      out[k] = Object.fromEntries(Object.entries(v).map(([name, sub]) => [name, toOpenApiSchema(sub)]));
    } else if (k === 'items' || k === 'additionalProperties' || k === 'not' || k === 'anyOf' || k === 'oneOf' || k === 'allOf') {
      out[k] = typeof v === 'object' ? toOpenApiSchema(v) : v;
    } else out[k] = v;
  }
  if ('const' in out) {
    out.enum = [out.const];
    delete out.const;
  }
  for (const [ex, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (typeof out[ex] === 'number') {
      out[bound] = out[ex];
      out[ex] = true;
    }
  }
  if (Array.isArray(out.type)) {
    const types = (out.type as string[]).filter((t) => t !== 'null');
    if (types.length < (out.type as string[]).length) out.nullable = true;
    if (types.length === 1) out.type = types[0];
    else {
      delete out.type;
      out.anyOf = types.map((type) => ({ type }));
    }
  }
  return out;
}

/** A route's schema as @fastify/swagger reads it, with every JSON Schema in it made OpenAPI 3.0. */
function openApiRouteSchema(schema: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...schema };
  for (const part of ['querystring', 'params', 'body', 'headers']) if (out[part]) out[part] = toOpenApiSchema(out[part]);
  if (out.response && typeof out.response === 'object') {
    out.response = Object.fromEntries(
      Object.entries(out.response as Record<string, Record<string, unknown>>).map(([status, r]) => {
        if (r && typeof r === 'object' && r.content && typeof r.content === 'object') {
          const content = Object.fromEntries(
            Object.entries(r.content as Record<string, { schema?: unknown }>).map(([media, c]) => [media, { ...c, schema: toOpenApiSchema(c.schema) }]),
          );
          return [status, { ...r, content }];
        }
        return [status, toOpenApiSchema(r)];
      }),
    );
  }
  return out;
}

/** Compiles a route's request schemas as fastify will, so a broken schema fails the plugin's start, not the server. */
function checkSchema(route: Route): void {
  const s = route.schema;
  if (!s) return;
  const ajv = new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: true, strict: false, validateFormats: false });
  for (const part of ['querystring', 'params', 'body'] as const) {
    const schema = s[part];
    if (!schema) continue;
    try {
      ajv.compile(schema);
    } catch (err) {
      throw new Error(`${route.method} ${route.path}: schema.${part} is not a valid JSON Schema: ${errorMessage(err)}`);
    }
  }
}

interface Upgrade {
  handler: UpgradeHandler;
  auth: RouteAuth;
  doc?: RouteSchema;
}

export class AgentHttpServer implements HttpMount {
  private routes: CompiledRoute[] = [];
  private starting: boolean;
  private upgrades = new Map<string, Upgrade>();
  private server?: http.Server;
  private authToken?: string;
  private limiter: RateLimiter;
  private cors: Cors;
  private docs: boolean;
  /** Bumped on every change of the route table; the fastify instance is rebuilt when behind. */
  private version = 0;
  private built?: { version: number; app: FastifyInstance };
  private building?: { version: number; app: Promise<FastifyInstance> };
  readonly log: Logger;
  readonly listen: string;

  constructor(opts: AgentHttpOptions) {
    this.starting = opts.starting ?? false;
    this.listen = opts.listen;
    this.authToken = opts.authToken || undefined;
    this.log = opts.log;
    const policies = { ...DEFAULT_POLICIES, ...opts.policies };
    this.limiter = new RateLimiter(policies.rateLimit);
    this.cors = new Cors(policies.cors);
    this.docs = policies.docs;
    this.route({
      method: 'GET',
      path: '/health',
      auth: 'public',
      schema: {
        summary: 'Liveness',
        description: 'Answers 200 while the agent runs; public (no token), for load balancers. See /health/detailed for components.',
        tags: ['agent'],
        response: {
          200: {
            description: 'The agent is up.',
            type: 'object',
            required: ['status', 'timestamp'],
            properties: { status: { type: 'string', enum: ['ok'] }, timestamp: { type: 'string', format: 'date-time' } },
          },
        },
      },
      reply: () => ({ status: 'ok', timestamp: isoTime(Date.now()) }),
    });
  }

  setAuthToken(token: string | undefined): void {
    this.authToken = token || undefined;
  }

  /** Rate limits, CORS origins and docs; applied to the next request (reload). */
  configure(policies: Partial<HttpPolicies>): void {
    if (policies.rateLimit) this.limiter.configure(policies.rateLimit);
    if (policies.cors) this.cors.configure(policies.cors);
    if (policies.docs !== undefined && policies.docs !== this.docs) {
      this.docs = policies.docs;
      this.version++;
    }
  }

  isAuthorized(req: IncomingMessage): boolean {
    if (!this.authToken) return true;
    return tokensEqual(bearerToken(req), this.authToken);
  }

  route(route: Route): () => void {
    // Two plugins on one path would silently shadow each other: refuse at start.
    if (this.routes.some((r) => r.route.method === route.method && r.route.path === route.path)) {
      throw new Error(`${route.method} ${route.path} is already mounted by another plugin; give one of them another path`);
    }
    if (!route.handler && !route.reply) throw new Error(`${(route as RouteBase).method} ${(route as RouteBase).path}: a route needs a handler or a reply function`);
    checkSchema(route);
    const compiled = compile(route);
    this.routes.push(compiled);
    this.version++;
    return () => {
      const before = this.routes.length;
      this.routes = this.routes.filter((r) => r !== compiled);
      if (this.routes.length !== before) this.version++;
    };
  }

  upgrade(path: string, handler: UpgradeHandler, auth: RouteAuth = 'agent', doc?: RouteSchema): () => void {
    if (this.upgrades.has(path)) throw new Error(`an endpoint is already mounted at ${path}`);
    this.upgrades.set(path, { handler, auth, doc });
    this.version++;
    return () => {
      if (this.upgrades.get(path)?.handler === handler) {
        this.upgrades.delete(path);
        this.version++;
      }
    };
  }

  /** The address actually bound (useful with port 0 in tests). */
  address(): { host: string; port: number } {
    const addr = this.server?.address();
    if (!addr || typeof addr === 'string') throw new Error('HTTP server is not listening');
    return { host: addr.address, port: addr.port };
  }

  url(): string {
    const { host, port } = this.address();
    return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const { host, port } = parseListen(this.listen);
    const server = http.createServer((req, res) => void this.handle(req, res));
    server.on('upgrade', (req, socket, head) => this.handleUpgrade(req, socket, head));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.log.info(`listening on ${this.url()}`);
  }

  /** Builds the router for the current routes now (the agent calls it after applying a pipeline), so no request waits for it. */
  async ready(): Promise<void> {
    await this.app();
  }

  /** The pipeline has started: unknown routes answer 404 from now on (503 before). */
  markStarted(): void {
    this.starting = false;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeIdleConnections?.();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Long-lived responses (follow streams) must not hold shutdown hostage.
      setTimeout(() => server.closeAllConnections?.(), 1000).unref();
    });
  }

  private authFails(auth: RouteAuth, req: IncomingMessage): string | null {
    if (auth === 'public') return null;
    if (auth === 'agent') return this.isAuthorized(req) ? null : 'missing or wrong bearer token';
    return auth(req);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (this.cors.apply(req, res)) return;
      const pathname = pathOf(req.url);
      const decision = this.limiter.take(req, pathname);
      if (decision) {
        sendRateHeaders(res, decision);
        if (!decision.allowed) {
          const window = this.limiterWindow();
          sendJson(res, 429, {
            error: 'rate_limited',
            message: `more than ${decision.limit} requests per ${window} from ${decision.client}; retry in ${decision.retryAfterS} s`,
          });
          return;
        }
      }
      const app = await this.app();
      app.routing(req, res);
    } catch (err) {
      this.log.error(`${req.method} ${req.url}: ${errorMessage(err)}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal', message: errorMessage(err) });
      else res.end();
    }
  }

  private limiterWindow(): string {
    const ms = this.limiter.options.windowMs;
    return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`;
  }

  /** The fastify instance for the current table, built when the table changed. */
  private app(): Promise<FastifyInstance> {
    const version = this.version;
    if (this.built?.version === version) return Promise.resolve(this.built.app);
    if (this.building?.version === version) return this.building.app;
    const app = this.build().then(
      (built) => {
        if (!this.built || this.built.version < version) this.built = { version, app: built };
        return built;
      },
      (err) => {
        if (this.building?.version === version) this.building = undefined;
        throw new Error(`cannot build the HTTP routes: ${errorMessage(err)}`);
      },
    );
    this.building = { version, app };
    return app;
  }

  private async build(): Promise<FastifyInstance> {
    const routes = [...this.routes];
    const upgrades = [...this.upgrades];
    const app = Fastify({
      logger: false,
      // Never listens: requests come from this class's server through app.routing.
      serverFactory: () => http.createServer(),
      routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 1000 },
      return503OnClosing: false,
      ajv: {
        customOptions: { strict: false },
        // Clients written for OpsHub send Python's naive isoformat() times: read them as UTC.
        onCreate: (ajv) => void ajv.addFormat('date-time', { type: 'string', validate: (t: string) => parseIsoTime(t) !== undefined }),
      },
    });
    app.setErrorHandler((err: FastifyError, request, reply) => {
      if (err.validation) {
        const { message, parameter } = validationMessage(err);
        return reply.code(400).send({ error: 'bad_request', message, ...(parameter ? { parameter } : {}) });
      }
      if (err instanceof HttpError) {
        return reply.code(err.status).headers(err.headers).send({ error: err.code, message: err.message, ...err.extra });
      }
      const status = err.statusCode;
      if (status && status >= 400 && status < 500) return reply.code(status).send({ error: codeFor(status), message: err.message });
      this.log.error(`${request.method} ${pathOf(request.url)}: ${errorMessage(err)}`);
      return reply.code(500).send({ error: 'internal', message: errorMessage(err) });
    });
    app.setNotFoundHandler((request, reply) => {
      const pathname = pathOf(request.url);
      const allowed = [...new Set(this.routes.filter((r) => r.pattern.test(pathname)).map((r) => r.route.method))];
      if (allowed.length) {
        return reply
          .code(405)
          .header('allow', allowed.join(', '))
          .send({ error: 'method_not_allowed', message: `${request.method} is not allowed on ${pathname} (allowed: ${allowed.join(', ')})` });
      }
      // Plugins mount their routes while the pipeline starts: until then, "not yet" rather than "never".
      if (this.starting) return reply.code(503).header('retry-after', '1').send({ error: 'unavailable', message: 'the agent is starting' });
      return reply.code(404).send({ error: 'not_found', message: `no route for ${request.method} ${pathname}` });
    });

    if (this.docs) {
      await app.register(swagger, {
        transform: ({ schema, url }) => ({ schema: openApiRouteSchema((schema ?? {}) as Record<string, unknown>) as never, url }),
        openapi: {
          openapi: '3.0.3',
          info: {
            title: 'OpsHub agent API',
            version: VERSION,
            description:
              'The routes of this agent: the OpsHub REST API, the webhook, /metrics and the WebSocket streams of the plugins configured in its pipeline. ' +
              'Routes marked with a lock need `Authorization: Bearer <agent.http.auth_token>` when a token is set. Times are ISO 8601 UTC (`Z`). ' +
              'Errors answer `{"error": code, "message": text}`.',
          },
          components: {
            securitySchemes: {
              bearerAuth: { type: 'http', scheme: 'bearer', description: 'agent.http.auth_token (only checked when one is set)' },
              tokenQuery: {
                type: 'apiKey',
                in: 'query',
                name: 'token',
                description: 'The same token as ?token=, where a client cannot send headers (WebSocket, EventSource)',
              },
            },
          },
        },
      });
      await app.register(swaggerUi, {
        routePrefix: '/docs',
        uiConfig: { docExpansion: 'list', deepLinking: true, persistAuthorization: true, tryItOutEnabled: false },
        staticCSP: true,
      });
      app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
    }

    const rawRoutes = routes.filter((r) => r.route.handler);
    for (const { route } of routes) if (route.reply) app.route(this.fastifyRoute(route));
    // Raw routes read their bodies themselves: in their own context, no body parser consumes the stream.
    await app.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined));
      for (const { route } of rawRoutes) scope.route(this.fastifyRoute(route));
      for (const [path, up] of upgrades) {
        if (routes.some((r) => r.route.method === 'GET' && r.route.path === path)) continue;
        scope.route(this.upgradeDocRoute(path, up));
      }
    });
    await app.ready();
    return app;
  }

  private securityOf(auth: RouteAuth, schema?: RouteSchema): Array<Record<string, string[]>> {
    if (schema?.security) return schema.security;
    return auth === 'public' ? [] : [{ bearerAuth: [] }];
  }

  private fastifyRoute(route: Route): RouteOptions {
    const auth = route.auth ?? 'agent';
    const { body, ...rest } = route.schema ?? {};
    const raw = !!route.handler;
    const schema: Record<string, unknown> = { ...rest, security: this.securityOf(auth, route.schema) };
    if (!rest.response) schema.response = {};
    const responses = schema.response as Record<string, unknown>;
    if (auth !== 'public' && !responses[401]) responses[401] = errorResponse('Missing or wrong token.');
    if (!raw && body) schema.body = body;
    if (!raw && (rest.querystring || body) && !responses[400]) responses[400] = errorResponse('A parameter is invalid; `parameter` names it.');
    return {
      method: route.method,
      url: route.path,
      schema,
      exposeHeadRoute: route.method === 'GET',
      // Raw routes document their body (the stream is theirs to read, so it is not validated here).
      config: raw && body
        ? ({ swaggerTransform: ({ schema: s, url }: { schema: object; url: string }) => ({ schema: openApiRouteSchema({ ...s, body }), url }) } as never)
        : {},
      onRequest: (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
        const denied = this.authFails(auth, request.raw);
        if (!denied) return done();
        reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized', message: denied });
      },
      handler: raw ? this.rawHandler(route as RawRoute) : this.replyHandler(route as ReplyRoute),
    };
  }

  private rawHandler(route: RawRoute) {
    return async (request: FastifyRequest, reply: FastifyReply) => {
      reply.hijack();
      const req = request.raw;
      const res = reply.raw;
      const url = new URL(req.url ?? '/', 'http://localhost');
      try {
        await route.handler(req, res, request.params as Record<string, string>, url);
      } catch (err) {
        this.failRaw(res, req, url, err);
      }
    };
  }

  private failRaw(res: ServerResponse, req: IncomingMessage, url: URL, err: unknown): void {
    if (err instanceof HttpError) {
      if (!res.headersSent) sendJson(res, err.status, { error: err.code, message: err.message, ...err.extra }, err.headers);
      else res.end();
      return;
    }
    this.log.error(`${req.method} ${url.pathname}: ${errorMessage(err)}`);
    if (!res.headersSent) sendJson(res, 500, { error: 'internal', message: errorMessage(err) });
    else res.end();
  }

  private replyHandler(route: ReplyRoute) {
    return async (request: FastifyRequest, reply: FastifyReply) => {
      // Made on first use, and aborted only for a client that went away before
      // the answer: an abort builds a DOMException, a cost on every request otherwise.
      let abort: AbortController | undefined;
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) abort?.abort();
      });
      let taken = false;
      const url = new URL(request.raw.url ?? '/', 'http://localhost');
      const rr: RouteRequest = {
        raw: request.raw,
        params: request.params as Record<string, string>,
        query: (request.query ?? {}) as Record<string, any>,
        body: request.body,
        url,
        get signal() {
          abort ??= new AbortController();
          if (reply.raw.destroyed && !reply.raw.writableFinished) abort.abort();
          return abort.signal;
        },
        status: (code) => void reply.code(code),
        header: (name, value) => void reply.header(name, value),
        takeOver: () => {
          taken = true;
          reply.hijack();
          return reply.raw;
        },
      };
      try {
        const result = await route.reply(rr);
        if (taken) return;
        if (result === undefined) return reply.code(204).send();
        return result;
      } catch (err) {
        if (!taken) throw err;
        this.failRaw(reply.raw, request.raw, url, err);
      }
    };
  }

  /** A WebSocket endpoint in the docs: a GET that answers 426 unless it is an upgrade (which never reaches fastify). */
  private upgradeDocRoute(path: string, up: Upgrade): RouteOptions {
    const auth = up.auth;
    const doc = up.doc ?? {};
    return {
      method: 'GET',
      url: path,
      schema: {
        summary: doc.summary ?? `WebSocket endpoint ${path}`,
        description: doc.description,
        tags: doc.tags ?? ['streams'],
        querystring: doc.querystring,
        security: doc.security ?? (auth === 'public' ? [] : [{ bearerAuth: [] }, { tokenQuery: [] }]),
        response: {
          101: { description: 'Switching Protocols: the WebSocket connection (send `Connection: Upgrade`, `Upgrade: websocket`). Browsers may pass the token as `?token=`.' },
          426: errorResponse('A plain GET: this path only speaks WebSocket.'),
          ...(doc.response ?? {}),
        },
        hide: doc.hide,
      },
      exposeHeadRoute: false,
      handler: async (_request: FastifyRequest, reply: FastifyReply) =>
        reply.code(426).header('upgrade', 'websocket').send({ error: 'upgrade_required', message: `${path} is a WebSocket endpoint; connect with a WebSocket client` }),
    };
  }

  private handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const entry = this.upgrades.get(url.pathname);
    if (!entry) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const decision = this.limiter.take(req, url.pathname);
    if (decision && !decision.allowed) {
      socket.end(`HTTP/1.1 429 Too Many Requests\r\nRetry-After: ${decision.retryAfterS}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    // Browsers cannot set headers on WebSocket requests, so `?token=` is accepted too.
    const denied =
      entry.auth === 'agent' ? (this.isAuthorized(req) || this.queryTokenOk(url) ? null : 'unauthorized') : this.authFails(entry.auth, req);
    if (denied) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    entry.handler(req, socket, head, url);
  }

  /** True when no token is set or `?token=` carries the agent's token (for clients that cannot send headers). */
  queryTokenOk(url: URL): boolean {
    return !this.authToken || tokensEqual(url.searchParams.get('token') ?? undefined, this.authToken);
  }
}

function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  return q < 0 ? raw : raw.slice(0, q);
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen);
  if (!m) throw new Error(`listen address must look like "127.0.0.1:8089", got "${listen}"`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) };
}
