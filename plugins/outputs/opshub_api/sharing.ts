// Keeping store reads cheap under many clients: identical requests in flight
// share one query (dashboards polling the same panels), aggregate answers
// are reused for a few seconds, and at most a few queries run at once, so
// the store's threads stay free for ingestion.

/** Runs at most `size` tasks at once; the others wait in order. */
export class Semaphore {
  private active = 0;
  private waiting: Array<() => void> = [];

  constructor(private size: number) {}

  async use<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }

  get queued(): number {
    return this.waiting.length;
  }
}

/**
 * Single-flight with an optional short cache: a request whose key matches
 * one in flight gets that one's answer; with `ttlMs` an answer is also
 * reused by requests arriving within that time after it was computed.
 */
export class Coalescer {
  private inflight = new Map<string, Promise<unknown>>();
  private cache = new Map<string, { until: number; value: unknown }>();
  shared = 0;

  constructor(private now: () => number = Date.now) {}

  run<T>(key: string, ttlMs: number, fn: () => Promise<T>): Promise<T> {
    const hit = this.cache.get(key);
    if (hit && hit.until > this.now()) {
      this.shared++;
      return Promise.resolve(hit.value as T);
    }
    const running = this.inflight.get(key);
    if (running) {
      this.shared++;
      return running as Promise<T>;
    }
    const p = fn().then(
      (value) => {
        if (ttlMs > 0) {
          if (this.cache.size > 1000) this.prune();
          this.cache.set(key, { until: this.now() + ttlMs, value });
        }
        return value;
      },
    );
    this.inflight.set(key, p);
    const done = () => {
      if (this.inflight.get(key) === p) this.inflight.delete(key);
    };
    p.then(done, done);
    return p;
  }

  private prune(): void {
    const now = this.now();
    for (const [k, v] of this.cache) if (v.until <= now) this.cache.delete(k);
    if (this.cache.size > 1000) this.cache.clear();
  }

  clear(): void {
    this.cache.clear();
  }
}

/** A stable key of a route's path and validated query. */
export function requestKey(pathname: string, query: Record<string, unknown>): string {
  return `${pathname}?${Object.keys(query)
    .sort()
    .map((k) => `${k}=${JSON.stringify(query[k])}`)
    .join('&')}`;
}
