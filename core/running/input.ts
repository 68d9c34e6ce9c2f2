// The running wrappers of inputs. A pull input is gathered every interval
// (plus jitter), never twice at once; a failed gather is logged once,
// counted, and retried on the next tick. A service input is started and
// stopped. Both hand events to the pipeline through an Accumulator that adds
// the instance's tags and refuses events after stop.

import type { PluginInstanceConfig } from '../config.ts';
import { Delivery, type Envelope } from '../delivery.ts';
import { makeLog, makeMetric, type Event } from '../events.ts';
import type { Logger } from '../log.ts';
import { errorMessage } from '../log.ts';
import type { Accumulator, PullInput, ServiceInput, TrackedEmit } from '../plugin.ts';
import { own, setOwn } from '../own.ts';

export type Sink = (envs: Envelope[]) => void;

export interface InputStats {
  events: number;
  errors: number;
  gathers: number;
  gathers_skipped: number;
  gather_seconds: number;
  last_gather_ms?: number;
}

export class RunningInput {
  readonly id: string;
  readonly type: string;
  readonly stats: InputStats = { events: 0, errors: 0, gathers: 0, gathers_skipped: 0, gather_seconds: 0 };
  private open = false;
  private started = false;
  private timer?: NodeJS.Timeout;
  private gathering?: Promise<void>;
  private failing = false;
  /** Tracked emits not yet acknowledged by every output. */
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  readonly acc: Accumulator;

  constructor(
    readonly config: PluginInstanceConfig,
    readonly plugin: PullInput | ServiceInput,
    private sink: Sink,
    private log: Logger,
    private onStopped: () => void = () => undefined,
    private flushOutputs: () => void = () => undefined,
  ) {
    this.id = config.id;
    this.type = config.type;
    this.acc = this.makeAccumulator();
  }

  private tag(event: Event): Event {
    const extra = this.config.tags;
    for (const k in extra) {
      const to = event.kind === 'log' ? event.labels : event.tags;
      if (own(to, k) === undefined) setOwn(to, k, extra[k]!);
    }
    return event;
  }

  private makeAccumulator(): Accumulator {
    const send = (events: Event[], delivery?: Delivery, positions?: TrackedEmit['positions']) => {
      if (!this.open) return false;
      this.stats.events += events.length;
      this.sink(events.map((event, i) => ({ event: this.tag(event), input: this.id, delivery, position: positions?.[i] })));
      return true;
    };
    return {
      emit: (event) => void send([event]),
      emitMany: (events) => void send(events),
      emitTracked: (events, track) => {
        this.inFlight++;
        const running = this;
        const delivery = new Delivery({
          ...track,
          // A method, not an arrow function: under tsx (esbuild's keepNames) an
          // arrow made per emit would get its name by defineProperty, ~0.5 µs.
          onDelivered() {
            running.inFlight--;
            track.onDelivered?.();
            if (running.inFlight === 0) for (const w of running.idleWaiters.splice(0)) w();
          },
        });
        if (send(events, delivery, track.positions)) delivery.release(); // fan-out done
      },
      log: (partial) => void send([makeLog({ source: this.id, ...partial })]),
      metric: (name, fields, tags, opts) => void send([makeMetric(name, fields, tags, opts)]),
      error: (err) => {
        this.stats.errors++;
        this.log.debug(errorMessage(err));
      },
      flush: () => {
        if (this.open) this.flushOutputs();
      },
    };
  }

  get isPull(): boolean {
    return this.config.kind === 'input';
  }

  async start(jitter: () => number = Math.random): Promise<void> {
    this.open = true;
    this.started = true;
    if (this.isPull) {
      const plugin = this.plugin as PullInput;
      await plugin.start?.();
      const tick = () => {
        const delay = this.config.jitterMs > 0 ? Math.floor(jitter() * this.config.jitterMs) : 0;
        setTimeout(() => this.gatherOnce(), delay).unref();
      };
      this.timer = setInterval(tick, this.config.intervalMs);
      this.timer.unref();
      tick();
    } else {
      await (this.plugin as ServiceInput).start(this.acc);
    }
  }

  /** Runs one gather unless one is still running. Resolves when it ends. */
  gatherOnce(): Promise<void> {
    if (!this.open) return Promise.resolve();
    if (this.gathering) {
      this.stats.gathers_skipped++;
      this.log.once('overlap', 'warn', `gather takes longer than the interval (${this.config.intervalMs} ms); skipping ticks`);
      return this.gathering;
    }
    const started = performance.now();
    this.gathering = (this.plugin as PullInput)
      .gather(this.acc)
      .then(
        () => {
          if (!this.failing) return;
          this.failing = false;
          this.log.clear('gather');
          this.log.info('gather recovered');
        },
        (err) => {
          this.failing = true;
          this.stats.errors++;
          this.log.once('gather', 'error', `gather failed (will retry every interval, logged once): ${errorMessage(err)}`);
        },
      )
      .finally(() => {
        this.stats.gathers++;
        this.stats.gather_seconds += (performance.now() - started) / 1000;
        this.stats.last_gather_ms = Date.now();
        this.gathering = undefined;
      });
    return this.gathering;
  }

  /** For `opshub test`: gathers once (pull) or listens for `waitMs` (service), then stops. */
  async collectOnce(waitMs: number): Promise<void> {
    if (!this.isPull) {
      await this.start();
      await new Promise((r) => setTimeout(r, waitMs));
      await this.stop();
      return this.close();
    }
    this.open = true;
    this.started = true;
    try {
      await (this.plugin as PullInput).start?.();
      await (this.plugin as PullInput).gather(this.acc);
    } finally {
      await this.stop();
      await this.close();
    }
  }

  /** Resolves when every tracked emit is acknowledged, or after `timeoutMs`. */
  async settled(timeoutMs: number): Promise<void> {
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** After the outputs drained: lets the plugin save acknowledgements that came in meanwhile. */
  async close(): Promise<void> {
    try {
      await this.plugin.close?.();
    } catch (err) {
      this.log.error(`close failed: ${errorMessage(err)}`);
    }
  }

  /** Stops gathering and the plugin; nothing is emitted afterwards. Safe twice. */
  async stop(): Promise<void> {
    if (!this.started) {
      await this.plugin.stop?.().catch(() => undefined);
      return;
    }
    this.started = false;
    if (this.timer) clearInterval(this.timer);
    if (this.gathering) await this.gathering;
    try {
      await this.plugin.stop?.();
    } catch (err) {
      this.log.error(`stop failed: ${errorMessage(err)}`);
    } finally {
      this.open = false;
      this.onStopped();
    }
  }
}
