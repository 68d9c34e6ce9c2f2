// A time limit (and an optional abort signal) for one DuckDB query: when either
// fires the connection is interrupted, and the caller can tell a timeout from
// another failure. Used by the store's query route and the REST API's reads.

export interface InterruptGuard {
  /** True once the time limit interrupted the query. */
  readonly timedOut: boolean;
  /** Stops the timer and forgets the signal; call it in `finally`. */
  release(): void;
}

export function interruptGuard(conn: { interrupt(): void }, timeoutMs: number, signal?: AbortSignal): InterruptGuard {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.interrupt();
  }, timeoutMs);
  timer.unref();
  const onAbort = () => conn.interrupt();
  signal?.addEventListener('abort', onAbort, { once: true });
  return {
    get timedOut() {
      return timedOut;
    },
    release() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}
