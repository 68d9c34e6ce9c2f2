// The running wrapper of an output: a bounded buffer (drop oldest, counted),
// batching by size and time, retry with backoff for retryable errors and
// drop-and-count for permanent ones. Each output has its own loop, so a slow
// or dead output never stalls the others or the inputs.

import type { PluginInstanceConfig } from '../config.ts';
import { checkpointsFor, type Envelope } from '../delivery.ts';
import type { Logger } from '../log.ts';
import { errorMessage } from '../log.ts';
import { compileMatch, type EnvelopeFilter } from '../match.ts';
import { PermanentError, RetryableError, type Output, type WriteContext } from '../plugin.ts';
import type { Event } from '../events.ts';
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

/** A batch's events and the positions they carry, as write() and stage() take them. */
function writeArgs(batch: Envelope[]): [Event[], WriteContext] {
  return [batch.map((e) => e.event), { checkpoints: checkpointsFor(batch), positions: batch.map((e) => e.position) }];
}

export class RunningOutput {
  readonly id: string;
  readonly type: string;
  readonly accepts: EnvelopeFilter;
  readonly stats: OutputStats = { written: 0, dropped: 0, dropped_overflow: 0, dropped_permanent: 0, write_errors: 0, batches: 0, write_seconds: 0 };
  /** Buffered envelopes, oldest first, from `head` on; an evicted one leaves a hole (undefined) that live() skips. */
  private buffer: Array<Envelope | undefined> = [];
  private head = 0; // index of the oldest envelope in `buffer`: never a hole (evict() and live() move past them)
  /**
   * Holes at or after `head`. Taking an event out of the middle of a large
   * buffer (an untracked one behind tracked ones) with splice() copied
   * everything behind it, on every push of a full buffer: ~40 µs a push at
   * the default buffer_limit of 10,000, ~5.7 ms at 1,000,000
   * (bench/output_overflow.ts); now ~0.1-0.9 µs.
   */
  private holes = 0;
  /** Where evict() looks next: from `head` up to here are only tracked events and holes. */
  private evictFrom = 0;
  private timer?: NodeJS.Timeout;
  private loop?: Promise<void>;
  private wake?: () => void;
  /** Set by flushNow(): the next batch goes out partial. */
  private flushRequested = false;
  private stopping = false;
  private detaching = false;
  private closed = false;
  private abort = new AbortController();
  /** Batches staged (Output.stage) and not yet committed, oldest first; their events, and when the first was staged. */
  private staged: Envelope[][] = [];
  private stagedEvents = 0;
  private stagedSince = 0;
  /**
   * Envelopes acknowledged as accepted, then lost with a failed transaction
   * and put back: their release must not count them again. (Staged ones are
   * all accepted; a set of every accepted envelope cost ~2 % of the CPU.)
   */
  private acceptedBefore = new Set<Envelope>();
  /**
   * Staged work to stage again (its transaction was lost), oldest first, taken
   * before the buffer. Outside buffer_limit: those events were accepted, so
   * their inputs read on, and overflow must not drop them for newer ones.
   */
  private retrying: Envelope[] = [];

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
    return this.retrying.length + this.buffer.length - this.head - this.holes;
  }

  async start(): Promise<void> {
    await this.plugin.start?.();
    this.timer = setInterval(() => this.kick(), this.config.flushIntervalMs);
    this.timer.unref();
    this.loop = this.run();
  }

  /**
   * Takes an event; never blocks. When the buffer is full the oldest event
   * that no input tracks is dropped and counted: a tracked one (docker_logs'
   * lines) is bounded by its input's window, which the config keeps within
   * buffer_limit, and dropping it would count as handled a line the input
   * could have kept. Only a buffer of tracked events alone drops its oldest.
   */
  push(env: Envelope): void {
    if (this.closed) {
      this.drop([env], 'overflow');
      return;
    }
    env.delivery?.acquire();
    this.buffer.push(env);
    if (this.buffer.length - this.head - this.holes > this.config.bufferLimit) {
      this.drop([this.evict()], 'overflow');
      this.log.once('overflow', 'warn', `buffer full (${this.config.bufferLimit} events): dropping the oldest; see opshub_output_events_dropped_total`);
    }
    if (this.bufferSize >= this.config.batchSize) this.kick();
  }

  /** Takes the oldest untracked event out of the full buffer (the oldest of all if every one is tracked). */
  private evict(): Envelope {
    const buffer = this.buffer;
    let i = Math.max(this.evictFrom, this.head);
    while (i < buffer.length && (buffer[i] === undefined || buffer[i]!.delivery)) i++;
    this.evictFrom = i;
    // Every event is tracked: the oldest goes.
    if (i === buffer.length) i = this.head;
    const env = buffer[i]!;
    buffer[i] = undefined;
    if (i === this.head) {
      this.head++;
      this.skipHoles();
      this.compact();
    } else if (++this.holes > Math.max(4096, buffer.length - this.head - this.holes)) this.closeHoles();
    return env;
  }

  /** Moves `head` past holes, so that the oldest envelope is found at once. */
  private skipHoles(): void {
    const buffer = this.buffer;
    while (this.holes > 0 && this.head < buffer.length && buffer[this.head] === undefined) {
      this.head++;
      this.holes--;
    }
  }

  /** Drops the slots before `head` now and then, so the array does not grow without bound (also while nothing is taken). */
  private compact(): void {
    if (this.head > 4096 && this.head * 2 > this.buffer.length) {
      this.buffer = this.buffer.slice(this.head);
      this.evictFrom = Math.max(0, this.evictFrom - this.head);
      this.head = 0;
    }
  }

  /** Rebuilds the buffer without its holes: while nothing is taken (a write hanging on a dead peer) they would pile up. */
  private closeHoles(): void {
    this.buffer = this.live(this.buffer.length);
    this.head = 0;
    this.evictFrom = 0;
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
      this.release(env); // push acquired for `next`; drop our hold
    }
    return moved.length;
  }

  /** Returns an unwritten batch to the front of the buffer, in order. */
  private putBack(batch: Envelope[]): void {
    this.buffer = [...batch, ...this.buffer.slice(this.head)];
    this.head = 0;
    this.evictFrom = 0;
  }

  /** Returns staged batches to be staged again, before anything buffered, in order. */
  private stageAgain(envs: Envelope[]): void {
    this.retrying = [...envs, ...this.retrying];
  }

  private takeAll(): Envelope[] {
    const all = [...this.retrying, ...this.live(this.buffer.length)];
    this.retrying = [];
    this.buffer = [];
    this.head = 0;
    this.evictFrom = 0;
    return all;
  }

  private take(n: number): Envelope[] {
    if (this.retrying.length) {
      const again = this.retrying.slice(0, n);
      this.retrying = this.retrying.slice(again.length);
      return again.length < n ? [...again, ...this.take(n - again.length)] : again;
    }
    const batch = this.live(n);
    this.compact();
    return batch;
  }

  /** Takes up to `n` envelopes from the front of the buffer, skipping holes. */
  private live(n: number): Envelope[] {
    const buffer = this.buffer;
    if (this.holes === 0) {
      const batch = buffer.slice(this.head, this.head + n) as Envelope[];
      this.head += batch.length;
      return batch;
    }
    const batch: Envelope[] = [];
    let i = this.head;
    for (; i < buffer.length && batch.length < n; i++) {
      const env = buffer[i];
      if (env === undefined) this.holes--;
      else batch.push(env);
    }
    this.head = i;
    this.skipHoles();
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
    for (const env of envs) this.release(env);
  }

  /** Drops a batch that retrying cannot help (said once per message); it no longer counts among the events being isolated. */
  private dropPermanent(batch: Envelope[], err: PermanentError): void {
    this.log.once(`permanent:${err.message}`, 'error', `dropping a batch of ${batch.length} events, retrying cannot help: ${err.message}`);
    this.isolating = Math.max(0, this.isolating - batch.length);
    this.drop(batch, 'permanent');
  }

  private release(env: Envelope, accepted = false): void {
    if (this.acceptedBefore.size && this.acceptedBefore.delete(env)) accepted = true;
    env.delivery?.release(accepted);
  }

  private get stages(): boolean {
    return this.plugin.stage !== undefined && this.plugin.commit !== undefined;
  }

  /**
   * Staged work is committed when it is large or old enough, and before
   * stopping. Not merely because the buffer is empty: under load the input
   * shares this thread and refills it only after the stage, so "nothing
   * waits" held after nearly every batch and the transactions stayed small.
   */
  private shouldCommit(): boolean {
    if (this.staged.length === 0) return false;
    if (this.stopping || this.detaching || this.isolating > 0) return true;
    return this.stagedEvents >= (this.plugin.commitEvents ?? 0) || this.commitDueInMs() <= 0;
  }

  private commitDueInMs(): number {
    return this.stagedSince + (this.plugin.commitIntervalMs ?? 0) - performance.now();
  }

  /** Waits for events (a full batch, the flush timer, flushNow, stop), or until staged work is due. */
  private async idle(): Promise<void> {
    const due = this.staged.length ? setTimeout(() => this.kick(), Math.max(0, this.commitDueInMs())) : undefined;
    await new Promise<void>((resolve) => (this.wake = resolve));
    clearTimeout(due);
  }

  private async run(): Promise<void> {
    while (!this.detaching) {
      if (this.shouldCommit()) {
        await this.commitStaged();
        continue;
      }
      if (this.bufferSize === 0) {
        if (this.stopping) return;
        await this.idle();
        continue;
      }
      // Wait for a full batch or the flush timer (or stop), unless draining or asked to flush.
      if (this.bufferSize < this.config.batchSize && !this.stopping && !this.flushRequested) {
        await this.idle();
        if (this.bufferSize === 0) continue;
      }
      if (this.stages) {
        // A transaction holds exactly commitEvents when it can: DuckDB writes whole row groups straight to the file, a remainder goes through its WAL.
        const room = (this.plugin.commitEvents ?? Infinity) - this.stagedEvents;
        const batch = this.take(Math.max(1, Math.min(this.config.batchSize, room)));
        // A flush asked for holds until the buffer is drained: a batch cut to fit the transaction leaves the rest to go next, not at the flush timer.
        if (this.bufferSize === 0) this.flushRequested = false;
        await this.stage(batch);
        continue;
      }
      this.flushRequested = false;
      const batch = this.take(this.config.batchSize);
      await this.writeWithRetry(batch);
    }
    // Detached (hot reload): what is staged is committed, or handed over with the buffer.
    if (this.staged.length) await this.commitStaged();
  }

  /** Stages a batch; on failure puts it back with everything staged before it (lost with the transaction), then backs off. */
  private async stage(batch: Envelope[]): Promise<void> {
    const started = performance.now();
    try {
      await this.plugin.stage!(...writeArgs(batch));
    } catch (err) {
      this.stats.write_seconds += (performance.now() - started) / 1000;
      this.stats.write_errors++;
      this.adoptCommitted();
      const lost = this.lose();
      if (err instanceof PermanentError) {
        this.dropPermanent(batch, err);
        if (lost.length) this.stageAgain(lost);
        return;
      }
      await this.retryLater([...lost, ...batch], err, this.stagedAttempts++);
      return;
    }
    this.stats.write_seconds += (performance.now() - started) / 1000;
    this.adoptCommitted();
    if (this.staged.length === 0) this.stagedSince = performance.now();
    this.staged.push(batch);
    this.stagedEvents += batch.length;
    const again = this.acceptedBefore;
    for (const env of batch) {
      if (again.size && again.delete(env)) continue; // staged before, lost, and staged again
      env.delivery?.accept();
    }
  }

  /** Failed stage() or commit() calls in a row, for the backoff. */
  private stagedAttempts = 0;
  /**
   * Events of a transaction whose commit failed permanently, still to be
   * staged again: each batch of them is committed on its own, so that only
   * the batch at fault is dropped (and the commit is not retried forever).
   */
  private isolating = 0;

  private async commitStaged(): Promise<void> {
    const started = performance.now();
    try {
      await this.plugin.commit!();
    } catch (err) {
      this.stats.write_seconds += (performance.now() - started) / 1000;
      this.stats.write_errors++;
      this.adoptCommitted();
      if (err instanceof PermanentError) {
        const batches = this.staged.length;
        const lost = this.lose();
        if (this.isolating > 0 || batches <= 1) this.dropPermanent(lost, err);
        else {
          this.isolating = lost.length;
          this.log.warn(`a transaction of ${lost.length} events cannot be committed (${err.message}): committing its batches one by one, to drop only the one at fault`);
          this.stageAgain(lost);
        }
        return;
      }
      await this.retryLater(this.lose(), err, this.stagedAttempts++);
      return;
    }
    this.stats.write_seconds += (performance.now() - started) / 1000;
    this.plugin.committedAlone?.(); // all staged is committed, whoever did it
    this.delivered();
  }

  /**
   * The output committed the open transaction on its own (before work of its
   * own, such as a CHECKPOINT): what was staged until then is durable, and
   * must not be staged again if the next transaction is lost. Asked after
   * each stage() or commit(), before the batch just staged joins the rest.
   */
  private adoptCommitted(): void {
    const alone = this.plugin.committedAlone?.();
    if (alone && this.staged.length) this.delivered();
  }

  /** Everything staged is committed: counted as written and delivered. */
  private delivered(): void {
    // Batch by batch: one flat array of a transaction's events (~1 MB) would be a large object, mapped afresh each time.
    const batches = this.staged;
    this.isolating = Math.max(0, this.isolating - this.stagedEvents);
    this.stats.batches += batches.length;
    this.stats.written += this.stagedEvents;
    this.staged = [];
    this.stagedEvents = 0;
    this.stats.last_success_ms = Date.now();
    if (this.stagedAttempts > 0) {
      this.log.info(`write succeeded after ${this.stagedAttempts} retries`);
      this.log.clear('retry');
      this.stagedAttempts = 0;
    }
    for (const batch of batches) for (const env of batch) env.delivery?.release(true);
  }

  /** The staged batches, lost with their transaction: accepted already, to be staged again. */
  private lose(): Envelope[] {
    const lost = this.unstage();
    for (const env of lost) this.acceptedBefore.add(env);
    return lost;
  }

  /** Forgets the staged batches, returning their envelopes in order. */
  private unstage(): Envelope[] {
    const all = this.staged.flat();
    this.staged = [];
    this.stagedEvents = 0;
    return all;
  }

  /** Puts staged envelopes whose transaction was lost back to be staged first, and waits out the backoff (or drops them past the shutdown deadline). */
  private async retryLater(envs: Envelope[], err: unknown, attempt: number): Promise<void> {
    if (!envs.length) return;
    if (this.abort.signal.aborted && !this.detaching) {
      this.log.error(`shutdown deadline reached: ${envs.length} events not written (${errorMessage(err)})`);
      this.drop(envs, 'overflow');
      return;
    }
    this.stageAgain(envs);
    if (this.detaching) return;
    await this.backOff(err, attempt);
  }

  /** Waits before the next attempt: what the peer asked for (Retry-After), or the backoff. */
  private async backOff(err: unknown, attempt: number): Promise<void> {
    const retryAfter = err instanceof RetryableError ? err.retryAfterMs : undefined;
    const delay = retryAfter !== undefined
      ? Math.min(retryAfter, this.config.retryMaxMs)
      : backoffDelay(attempt, this.config.retryInitialMs, this.config.retryMaxMs, this.random);
    this.log.once('retry', 'warn', `write failed, retrying with backoff (next in ${delay} ms): ${errorMessage(err)}`);
    await sleep(delay, this.abort.signal);
  }

  private async writeWithRetry(batch: Envelope[]): Promise<void> {
    const [events, ctx] = writeArgs(batch);
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      try {
        await this.plugin.write(events, ctx);
        this.stats.write_seconds += (performance.now() - started) / 1000;
        this.stats.written += batch.length;
        this.stats.batches++;
        this.stats.last_success_ms = Date.now();
        if (attempt > 0) {
          this.log.info(`write succeeded after ${attempt} retries`);
          this.log.clear('retry');
        }
        for (const env of batch) this.release(env);
        return;
      } catch (err) {
        this.stats.write_seconds += (performance.now() - started) / 1000;
        this.stats.write_errors++;
        if (err instanceof PermanentError) {
          this.dropPermanent(batch, err);
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
        await this.backOff(err, attempt);
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
