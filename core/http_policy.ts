// Policies the agent's HTTP server applies before routing, to every request
// (known route or not): per-client rate limits and CORS for browser
// dashboards. Both are configured under agent.http and can change on reload.

import type { IncomingMessage, ServerResponse } from 'node:http';

export interface RateLimitOptions {
  /** Requests one client may make per window; 0 turns limiting off. */
  requests: number;
  windowMs: number;
  /** Use the first X-Forwarded-For address as the client (behind a reverse proxy). */
  trustProxy: boolean;
  /** Paths never limited (e.g. /health for load balancers). */
  exemptPaths: string[];
}

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until one more request is allowed (when refused). */
  retryAfterS: number;
  client: string;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per client: `requests` tokens, refilled evenly over the
 * window, so a client may burst up to the limit and then gets one request per
 * window/requests. Idle clients are forgotten once their bucket is full again.
 */
export class RateLimiter {
  private buckets = new Map<string, Bucket>();
  private lastSweep = 0;

  constructor(
    private opts: RateLimitOptions,
    private now: () => number = Date.now,
  ) {}

  get enabled(): boolean {
    return this.opts.requests > 0;
  }

  get options(): Readonly<RateLimitOptions> {
    return this.opts;
  }

  configure(opts: RateLimitOptions): void {
    if (opts.requests !== this.opts.requests || opts.windowMs !== this.opts.windowMs) this.buckets.clear();
    this.opts = opts;
  }

  clientOf(req: IncomingMessage): string {
    if (this.opts.trustProxy) {
      const forwarded = req.headers['x-forwarded-for'];
      const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
      if (first) return first;
    }
    return req.socket.remoteAddress ?? 'unknown';
  }

  /** Takes one token for the request's client, unless the path is exempt or limiting is off. */
  take(req: IncomingMessage, pathname: string): RateDecision | undefined {
    const { requests, windowMs } = this.opts;
    if (requests <= 0 || this.opts.exemptPaths.includes(pathname)) return undefined;
    const client = this.clientOf(req);
    const now = this.now();
    const rate = requests / windowMs; // tokens per ms
    this.sweep(now, rate);
    const b = this.buckets.get(client) ?? { tokens: requests, at: now };
    b.tokens = Math.min(requests, b.tokens + (now - b.at) * rate);
    b.at = now;
    this.buckets.set(client, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, limit: requests, remaining: Math.floor(b.tokens), retryAfterS: 0, client };
    }
    return { allowed: false, limit: requests, remaining: 0, retryAfterS: Math.max(1, Math.ceil((1 - b.tokens) / rate / 1000)), client };
  }

  private sweep(now: number, rate: number): void {
    if (now - this.lastSweep < this.opts.windowMs) return;
    this.lastSweep = now;
    for (const [client, b] of this.buckets) if (b.tokens + (now - b.at) * rate >= this.opts.requests) this.buckets.delete(client);
  }
}

/** Headers every rate-limited answer carries, and the 429 itself. */
export function sendRateHeaders(res: ServerResponse, d: RateDecision): void {
  res.setHeader('x-ratelimit-limit', d.limit);
  res.setHeader('x-ratelimit-remaining', d.remaining);
  if (!d.allowed) res.setHeader('retry-after', d.retryAfterS);
}

export interface CorsOptions {
  /** Allowed origins (exact, e.g. "https://grafana.example.com"), or "*" for any; empty: no CORS. */
  origins: string[];
  maxAgeS: number;
}

const EXPOSED = 'Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, Content-Type, Content-Length';

export class Cors {
  constructor(private opts: CorsOptions) {}

  configure(opts: CorsOptions): void {
    this.opts = opts;
  }

  private allowed(origin: string): boolean {
    return this.opts.origins.includes('*') || this.opts.origins.includes(origin);
  }

  /**
   * Adds the CORS headers for an allowed Origin. Answers a preflight (OPTIONS
   * with Access-Control-Request-Method) itself and returns true then.
   */
  apply(req: IncomingMessage, res: ServerResponse): boolean {
    const origin = req.headers.origin;
    if (!origin || this.opts.origins.length === 0) return false;
    const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    if (!this.allowed(origin)) {
      if (!preflight) return false; // the browser refuses the answer without the headers
      const body = JSON.stringify({ error: 'cors_origin_not_allowed', message: `origin ${origin} is not in agent.http.cors.origins` });
      res.writeHead(403, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), vary: 'Origin' });
      res.end(body);
      return true;
    }
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('vary', 'Origin');
    if (!preflight) {
      res.setHeader('access-control-expose-headers', EXPOSED);
      return false;
    }
    res.writeHead(204, {
      'access-control-allow-methods': 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS',
      'access-control-allow-headers': req.headers['access-control-request-headers'] ?? 'authorization, content-type',
      'access-control-max-age': String(this.opts.maxAgeS),
      'content-length': '0',
    });
    res.end();
    return true;
  }
}
