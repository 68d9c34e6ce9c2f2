// The agent's one HTTP server. Plugins mount routes and WebSocket endpoints
// on it (so users get one port, as in the OpsHub API); the core serves /health
// and enforces the optional bearer token on everything else.

import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from './log.ts';
import { errorMessage } from './log.ts';

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, params: Record<string, string>, url: URL) => void | Promise<void>;
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => void;

/**
 * How a route is protected: 'agent' requires the agent's token (when one is
 * set), 'public' requires nothing, and a function decides by itself (e.g. the
 * webhook's own token or HMAC signature) and returns an error text or null.
 */
export type RouteAuth = 'agent' | 'public' | ((req: IncomingMessage) => string | null);

export interface Route {
  method: string;
  /** Path with `:name` segments, e.g. `/logs/:container`. */
  path: string;
  handler: RouteHandler;
  auth?: RouteAuth;
}

export interface HttpMount {
  /** Adds a route; returns a function that removes it (plugins call it on stop). */
  route(route: Route): () => void;
  /** Adds a WebSocket (or other upgrade) endpoint at an exact path; returns its remover. */
  upgrade(path: string, handler: UpgradeHandler, auth?: RouteAuth): () => void;
  /** Checks a request against the agent's token; true when allowed. */
  isAuthorized(req: IncomingMessage): boolean;
}

interface CompiledRoute extends Route {
  pattern: RegExp;
  keys: string[];
}

function compile(route: Route): CompiledRoute {
  const keys: string[] = [];
  const source = route.path
    .split('/')
    .map((seg) => {
      if (seg.startsWith(':')) {
        keys.push(seg.slice(1));
        return '([^/]+)';
      }
      return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return { ...route, pattern: new RegExp(`^${source}/?$`), keys };
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
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

export interface AgentHttpOptions {
  listen: string;
  authToken?: string;
  log: Logger;
}

export class AgentHttpServer implements HttpMount {
  private routes: CompiledRoute[] = [];
  private upgrades = new Map<string, { handler: UpgradeHandler; auth: RouteAuth }>();
  private server?: http.Server;
  private authToken?: string;
  readonly log: Logger;
  readonly listen: string;

  constructor(opts: AgentHttpOptions) {
    this.listen = opts.listen;
    this.authToken = opts.authToken || undefined;
    this.log = opts.log;
    this.route({
      method: 'GET',
      path: '/health',
      auth: 'public',
      handler: (_req, res) => sendJson(res, 200, { status: 'ok', timestamp: new Date().toISOString() }),
    });
  }

  setAuthToken(token: string | undefined): void {
    this.authToken = token || undefined;
  }

  isAuthorized(req: IncomingMessage): boolean {
    if (!this.authToken) return true;
    return tokensEqual(bearerToken(req), this.authToken);
  }

  route(route: Route): () => void {
    // Two plugins on one path would silently shadow each other: refuse at start.
    if (this.routes.some((r) => r.method === route.method && r.path === route.path)) {
      throw new Error(`${route.method} ${route.path} is already mounted by another plugin; give one of them another path`);
    }
    const compiled = compile(route);
    this.routes.push(compiled);
    return () => {
      this.routes = this.routes.filter((r) => r !== compiled);
    };
  }

  upgrade(path: string, handler: UpgradeHandler, auth: RouteAuth = 'agent'): () => void {
    if (this.upgrades.has(path)) throw new Error(`an endpoint is already mounted at ${path}`);
    this.upgrades.set(path, { handler, auth });
    return () => {
      if (this.upgrades.get(path)?.handler === handler) this.upgrades.delete(path);
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
    const url = new URL(req.url ?? '/', 'http://localhost');
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(url.pathname);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== req.method && !(route.method === 'GET' && req.method === 'HEAD')) continue;
      const denied = this.authFails(route.auth ?? 'agent', req);
      if (denied) {
        sendJson(res, 401, { error: 'unauthorized', message: denied }, { 'www-authenticate': 'Bearer' });
        return;
      }
      const params: Record<string, string> = {};
      route.keys.forEach((k, i) => (params[k] = decodeURIComponent(m[i + 1]!)));
      try {
        await route.handler(req, res, params, url);
      } catch (err) {
        this.log.error(`${req.method} ${url.pathname}: ${errorMessage(err)}`);
        if (!res.headersSent) sendJson(res, 500, { error: 'internal', message: errorMessage(err) });
        else res.end();
      }
      return;
    }
    if (pathMatched) sendJson(res, 405, { error: 'method_not_allowed', message: `${req.method} is not allowed on ${url.pathname}` });
    else sendJson(res, 404, { error: 'not_found', message: `no route for ${url.pathname}` });
  }

  private handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const entry = this.upgrades.get(url.pathname);
    if (!entry) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
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

  private queryTokenOk(url: URL): boolean {
    return !this.authToken || tokensEqual(url.searchParams.get('token') ?? undefined, this.authToken);
  }
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(listen);
  if (!m) throw new Error(`listen address must look like "127.0.0.1:8089", got "${listen}"`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) };
}
