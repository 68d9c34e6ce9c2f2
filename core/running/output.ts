// The running wrapper of an output: a bounded buffer (drop oldest, counted),
// batching by size and time, retry with backoff for retryable errors and
// drop-and-count for permanent ones. Each output has its own loop, so a slow
// or dead output never stalls the others or the inputs.

import type { PluginInstanceConfig } from '../config.ts';
import { checkpointsFor, type Envelope } from '../delivery.ts';
import type { Logger } from '../log.ts';
import { errorMessage } from '../log.ts';
import { compileMatch, type EnvelopeFilter } from '../match.ts';
import { PermanentError, RetryableError, type Output } from '../plugin.ts';
import { backoffDelay, sleep } from '../backoff.ts';

export interface OutputStats {
  written: number;
  dropped: number;
  dropped_overflow: number;
  dropped_permanent: number;
  write_errors: number;
  batches: number;
  write_seconds: number;
  last_success_ms?: number;
}

export class RunningOutput {
  readonly id: string;
  readonly type: string;
  readonly accepts: EnvelopeFilter;
  readonly stats: OutputStats = { written: 0, dropped: 0, dropped_overflow: 0, dropped_permanent: 0, write_errors: 0, batches: 0, write_seconds: 0 };
  private buffer: Envelope[] = [];
  private head = 0; // index of the oldest live envelope in `buffer`
  private timer?: NodeJS.Timeout;
  private loop?: Promise<void>;
  private wake?: () => void;
  /** Set by flushNow(): the next batch goes out partial. */
  private flushRequested = false;
  private stopping = false;
  private detaching = false;
  private closed = false;
  private abort = new AbortController();

  constructor(
    readonly config: PluginInstanceConfig,
    readonly plugin: Output,
    private log: Logger,
    private random: () => number = Math.random,
  ) {
    this.id = config.id;
    this.type = config.type;
    this.accepts = compileMatch(config.match);
  }

  get bufferSize(): number {
    return this.buffer.length - this.head;
  }

  async start(): Promise<void> {
    await this.plugin.start?.();
    this.timer = setInterval(() => this.kick(), this.config.flushIntervalMs);
    this.timer.unref();
    this.loop = this.run();
  }

  /** Takes an event; never blocks. When the buffer is full the oldest is dropped and counted. */
  push(env: Envelope): void {
    if (this.closed) {
      this.drop([env], 'overflow');
      return;
    }
    env.delivery?.acquire();
    this.buffer.push(env);
    if (this.bufferSize > this.config.bufferLimit) {
      const oldest = this.buffer[this.head]!;
      this.buffer[this.head++] = undefined as unknown as Envelope;
      this.drop([oldest], 'overflow');
      this.log.once('overflow', 'warn', `buffer full (${this.config.bufferLimit} events): dropping the oldest; see opshub_output_events_dropped_total`);
    }
    if (this.bufferSize >= this.config.batchSize) this.kick();
  }

  /**
   * Moves everything still buffered to another output (hot reload of a changed
   * output); with none, what is left is counted as dropped. Closes this one.
   */
  handOverTo(next: RunningOutput | undefined): number {
    this.closed = true;
    const moved = this.takeAll();
    if (!next) {
      this.drop(moved, 'overflow');
      return 0;
    }
    for (const env of moved) {
      next.push(env);
      env.delivery?.release(); // push acquired for `next`; drop our hold
    }
    return moved.length;
  }

  /** Returns an unwritten batch to the front of the buffer, in order. */
  private putBack(batch: Envelope[]): void {
    this.buffer = [...batch, ...this.buffer.slice(this.head)];
    this.head = 0;
  }

  private takeAll(): Envelope[] {
    const all = this.buffer.slice(this.head);
    this.buffer = [];
    this.head = 0;
    return all;
  }

  private take(n: number): Envelope[] {
    const batch = this.buffer.slice(this.head, this.head + n);
    this.head += batch.length;
    // Compact now and then so the array does not grow without bound.
    if (this.head > 4096 && this.head * 2 > this.buffer.length) {
      this.buffer = this.buffer.slice(this.head);
      this.head = 0;
    }
    return batch;
  }

  /** Writes what is buffered without waiting for a full batch (an input waits for acknowledgements). */
  flushNow(): void {
    if (this.bufferSize === 0) return;
    this.flushRequested = true;
    this.kick();
  }

  private kick(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private drop(envs: Envelope[], why: 'overflow' | 'permanent'): void {
    this.stats.dropped += envs.length;
    if (why === 'overflow') this.stats.dropped_overflow += envs.length;
    else this.stats.dropped_permanent += envs.length;
    for (const env of envs) env.delivery?.release();
  }

  private async run(): Promise<void> {
    while (!this.detaching) {
      if (this.bufferSize === 0) {
        if (this.stopping) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      // Wait for a full batch or the flush timer (or stop), unless draining or asked to flush.
      if (this.bufferSize < this.config.batchSize && !this.stopping && !this.flushRequested) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        if (this.bufferSize === 0) continue;
      }
      this.flushRequested = false;
      const batch = this.take(this.config.batchSize);
      await this.writeWithRetry(batch);
    }
  }

  private async writeWithRetry(batch: Envelope[]): Promise<void> {
    const checkpoints = checkpointsFor(batch);
    const positions = batch.map((e) => e.position);
    const events = batch.map((e) => e.event);
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      try {
        await this.plugin.write(events, { checkpoints, positions });
        this.stats.write_seconds += (performance.now() - started) / 1000;
        this.stats.written += batch.length;
        this.stats.batches++;
        this.stats.last_success_ms = Date.now();
        if (attempt > 0) {
          this.log.info(`write succeeded after ${attempt} retries`);
          this.log.clear('retry');
        }
        for (const env of batch) env.delivery?.release();
        return;
      } catch (err) {
        this.stats.write_seconds += (performance.now() - started) / 1000;
        this.stats.write_errors++;
        if (err instanceof PermanentError) {
          this.log.once(`permanent:${err.message}`, 'error', `dropping a batch of ${batch.length} events, retrying cannot help: ${err.message}`);
          this.drop(batch, 'permanent');
          return;
        }
        if (this.detaching) {
          this.putBack(batch);
          return;
        }
        if (this.abort.signal.aborted) {
          this.log.error(`shutdown deadline reached: ${batch.length} events not written (${errorMessage(err)})`);
          this.drop(batch, 'overflow');
          return;
        }
        const retryAfter = err instanceof RetryableError ? err.retryAfterMs : undefined;
        const delay = retryAfter !== undefined
          ? Math.min(retryAfter, this.config.retryMaxMs)
          : backoffDelay(attempt, this.config.retryInitialMs, this.config.retryMaxMs, this.random);
        this.log.once('retry', 'warn', `write failed, retrying with backoff (next in ${delay} ms): ${errorMessage(err)}`);
        await sleep(delay, this.abort.signal);
      }
    }
  }

  /**
   * Flushes what is buffered, then stops the plugin. After `deadlineMs` any
   * retry is abandoned and what is left is counted as dropped. Safe to call twice.
   */
  async stop(deadlineMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.kick();
    const deadline = setTimeout(() => this.abort.abort(), deadlineMs);
    try {
      if (this.loop) await this.loop;
      const left = this.takeAll();
      if (left.length) this.drop(left, 'overflow');
    } finally {
      clearTimeout(deadline);
    }
    try {
      await this.plugin.stop?.();
    } catch (err) {
      this.log.error(`stop failed: ${errorMessage(err)}`);
    }
  }

  /** Stops writing without flushing; keeps buffering events for handOverTo (hot reload). */
  async detach(): Promise<void> {
    this.detaching = true;
    this.abort.abort();
    if (this.timer) clearInterval(this.timer);
    this.kick();
    if (this.loop) await this.loop.catch(() => undefined);
  }
}
