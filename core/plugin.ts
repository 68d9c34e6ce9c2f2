// The plugin contract. A plugin module exports one PluginDefinition; the
// runtime wraps every instance in a "running" wrapper that owns scheduling,
// filtering, buffering, retry and self-metrics, so plugins never do.

import type { Event, FieldValue, LogEvent, MetricEvent, MetricType } from './events.ts';
import type { Logger } from './log.ts';
import type { HttpMount } from './http.ts';

export type PluginKind = 'input' | 'service_input' | 'processor' | 'output';

/** JSON Schema object for a plugin's own options (the runtime adds the common keys). */
export interface PluginSchema {
  type: 'object';
  description?: string;
  properties: Record<string, Record<string, unknown>>;
  required?: string[];
  additionalProperties: false;
  [key: string]: unknown;
}

export interface PluginContext {
  /** The instance id (config `id`, or the type, numbered when repeated). */
  id: string;
  log: Logger;
  /** A directory this instance owns for state such as checkpoints (created on demand by the plugin). */
  dataDir: string;
  /** The agent's HTTP server, where plugins mount routes and WebSocket endpoints. */
  http: HttpMount;
  /** The agent's host name, for tagging. */
  hostname: string;
  /** Aborted when the instance is being stopped. */
  signal: AbortSignal;
  /**
   * The pipeline's running instances (this one included), for plugins that
   * serve views over others (the REST API): test `plugin` with a type guard
   * for a capability (e.g. `containers()`), read the runtime's figures.
   * Absent where no pipeline runs the plugin (unit tests).
   */
  instances?(): InstanceInfo[];
}

/** A running plugin instance as other plugins see it: read-only. */
export interface InstanceInfo {
  section: 'inputs' | 'processors' | 'outputs';
  id: string;
  type: string;
  kind: PluginKind;
  /** The plugin object, to be tested for a capability with a type guard. */
  plugin: object;
  /** The instance's own options (defaults applied). */
  options: Readonly<Record<string, unknown>>;
  /** Gather interval (pull inputs) or flush interval (outputs), ms. */
  intervalMs: number;
  /**
   * The runtime's counters: inputs events, errors, gathers, gathers_skipped,
   * gather_seconds, last_gather_ms; processors processed, dropped, errors;
   * outputs written, dropped, dropped_overflow, dropped_permanent,
   * write_errors, batches, write_seconds, last_success_ms.
   */
  stats: Readonly<Record<string, number | undefined>>;
  /** Outputs: events waiting in the buffer, and its limit. */
  buffer?: { events: number; limit: number };
}

/**
 * A position in an input's source (e.g. a line of a container's log), saved
 * once the events up to it are delivered.
 */
export interface Checkpoint {
  /** The input instance id that owns it. */
  input: string;
  /** What it is a position in, e.g. a container id. */
  key: string;
  /** Opaque, JSON-serialisable position the input resumes from. */
  value: unknown;
  /**
   * Sort key: positions of one (input, key) compare by plain string order
   * (e.g. zero-padded "<timestamp ns>:<index>"). Outputs that store positions
   * with their rows (the DuckDB output) skip events at or before the position
   * they committed, which makes them exactly-once across restarts.
   */
  order: string;
}

export interface TrackedEmit {
  /** The position of each event (same order as the events); events without one may be left undefined. */
  positions?: Array<Checkpoint | undefined>;
  /**
   * Called once every output that received these events has written them, or
   * dropped them on purpose (permanent error, buffer overflow, filtered out).
   * Only then may the input advance its own checkpoint.
   */
  onDelivered?: () => void;
  /**
   * Called once every output that received these events has taken them into
   * work it will make durable later (an open transaction, see Output.stage),
   * written them, or dropped them; always before onDelivered. An input that
   * limits what it has in flight may read on from here, but must keep its
   * checkpoint where it is until onDelivered: a crash loses staged work.
   */
  onAccepted?: () => void;
}

/** What inputs use to hand events to the pipeline. Never blocks. */
export interface Accumulator {
  emit(event: Event): void;
  emitMany(events: Event[]): void;
  /** Emits events whose delivery the input wants to know about (end-to-end acknowledgement). */
  emitTracked(events: Event[], track: TrackedEmit): void;
  log(partial: Partial<LogEvent> & { message: string }): void;
  metric(name: string, fields: Record<string, FieldValue>, tags?: Record<string, string>, opts?: { type?: MetricType; timestamp?: bigint }): void;
  /** Reports a per-event problem without logging each one (counted in self-metrics). */
  error(err: unknown): void;
  /**
   * Asks every output to write what it holds now rather than wait for a full
   * batch or its flush interval. For an input that stops reading until its
   * lines are acknowledged: otherwise a batch larger than what it lets out
   * would only fill at the flush interval.
   */
  flush(): void;
}

/**
 * Any plugin instance may report its own counters and gauges; the agent
 * exports them with its self-metrics as `opshub_plugin_<name>` (tags plugin,
 * id, host). Names ending in `_total` are counters, the rest gauges.
 */
export interface SelfReporting {
  selfMetrics?(): Record<string, number>;
}

/** Pull input: the runtime calls gather every `interval` (with jitter), never twice at once. */
export interface PullInput extends SelfReporting {
  start?(): Promise<void>;
  gather(acc: Accumulator): Promise<void>;
  stop?(): Promise<void>;
  /** See ServiceInput.close. */
  close?(): Promise<void>;
}

/** Service input: pushes events on its own (log followers, listeners). */
export interface ServiceInput extends SelfReporting {
  start(acc: Accumulator): Promise<void>;
  /** May be called twice or without start; nothing is emitted after it resolves. */
  stop(): Promise<void>;
  /**
   * Called once, after every output has drained at shutdown (or after the
   * instance was removed by a reload and the outputs flushed): deliveries
   * acknowledged during the drain arrive before it, so an input keeps its
   * checkpoint store open until here and saves the last positions.
   */
  close?(): Promise<void>;
}

/** Processor: events in, events out, in config order. Synchronous for throughput. */
export interface Processor extends SelfReporting {
  start?(): Promise<void>;
  /** Return the (possibly modified) event, several events, or null to drop it. */
  process(event: Event): Event | Event[] | null | undefined;
  stop?(): Promise<void>;
}

export interface WriteContext {
  /** Highest position per (input, key) among the events of this batch, to commit with them if the output can. */
  checkpoints: Checkpoint[];
  /** The position of each event of the batch (same order), where its input tracks one. */
  positions: Array<Checkpoint | undefined>;
}

/** Output: start, write a batch, stop. The runtime batches, buffers and retries. */
export interface Output extends SelfReporting {
  start?(): Promise<void>;
  /** Throw RetryableError (or any error) to have the batch retried; PermanentError to drop it. */
  write(events: Event[], ctx: WriteContext): Promise<void>;
  /**
   * Two-phase writing, for an output whose cost per event falls with the
   * size of what it makes durable at once (DuckDB writes a transaction that
   * holds a whole row group straight to the file, skipping its WAL). stage()
   * adds a batch to work not yet durable and resolves once it holds it; the
   * runtime then acknowledges the batch as accepted (see
   * TrackedEmit.onAccepted) and may stage more. commit() makes everything
   * staged durable: only then are the batches delivered. When either throws,
   * everything staged since the last commit is lost, and the runtime stages
   * it again (PermanentError from stage() drops only that batch; from
   * commit(), the lost batches are staged again and committed one at a
   * time, and the one whose commit fails permanently is dropped). Both or
   * neither.
   */
  stage?(events: Event[], ctx: WriteContext): Promise<void>;
  commit?(): Promise<void>;
  /**
   * With stage(): true, once, when the output has committed the staged work
   * on its own since it was last asked (before work of its own that needs no
   * open transaction). The runtime asks after each stage() and commit():
   * what it staged before is then delivered, and not staged again should
   * the next transaction be lost.
   */
  committedAlone?(): boolean;
  /** With stage(): the runtime commits once this many events are staged, */
  readonly commitEvents?: number;
  /** or this long after the first was staged, and before stopping. */
  readonly commitIntervalMs?: number;
  /** Called after the last write during shutdown. */
  stop?(): Promise<void>;
}

interface DefinitionBase<C> {
  /** The config `type`, lower_snake_case. */
  type: string;
  /** One line for `opshub plugins`. */
  description: string;
  schema: PluginSchema;
  /** A minimal valid config (besides `type`) where some options are required; used by docs and the conformance test. */
  example?: Record<string, unknown>;
  /**
   * Inputs that stop reading while this many tracked events are not yet
   * accepted: the (integer) option that says how many, e.g.
   * `max_pending_lines`. A config where an output's buffer_limit is smaller
   * than all such windows together is refused: a busy output would drop
   * their events, which the input counts as handled and never sends again.
   */
  pendingLimitOption?: string;
}

export type PluginDefinition<C = any> =
  | (DefinitionBase<C> & { kind: 'input'; create(config: C, ctx: PluginContext): PullInput })
  | (DefinitionBase<C> & { kind: 'service_input'; create(config: C, ctx: PluginContext): ServiceInput })
  | (DefinitionBase<C> & { kind: 'processor'; create(config: C, ctx: PluginContext): Processor })
  | (DefinitionBase<C> & { kind: 'output'; create(config: C, ctx: PluginContext): Output });

/** An error for which retrying cannot help: the batch is dropped and counted. */
export class PermanentError extends Error {
  override name = 'PermanentError';
}

/** An error worth retrying, optionally after a delay the peer asked for (Retry-After). */
export class RetryableError extends Error {
  override name = 'RetryableError';
  constructor(message: string, readonly retryAfterMs?: number) {
    super(message);
  }
}

export type { Event, LogEvent, MetricEvent };
