// inputs.docker_logs: follows the logs of every (chosen) container through the
// Docker Engine API, with a per-container checkpoint that advances only when
// every output has the lines (end-to-end acknowledgement), so a restart —
// kill -9 included — resumes exactly where the delivered lines end.
//
// Discovery: the events stream (start/destroy) plus a listing at connect.
// Each container has a Follower: it opens GET /logs?follow&timestamps&since,
// parses the stream (parse.ts), tracks positions (position.ts), emits each
// chunk's lines as one tracked batch and saves the position once that batch
// and all before it are delivered. Reading pauses while too many lines are
// unacknowledged, so a slow output slows reading instead of overflowing.

import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import Docker from 'dockerode';
import { backoffDelay, sleep } from '../../../core/backoff.ts';
import { CheckpointFile } from '../../../core/checkpoint.ts';
import { parseRfc3339Ns, type LogEvent } from '../../../core/events.ts';
import { errorMessage } from '../../../core/log.ts';
import type { Accumulator, Checkpoint, PluginContext, PluginDefinition, ServiceInput } from '../../../core/plugin.ts';
import { parseDuration, parseSize } from '../../../core/units.ts';
import {
  composeLabels,
  containerFilter,
  containerFilterSchema,
  containerName,
  dockerConnectionSchema,
  dockerOptions,
  endpointName,
  isConnectionError,
  jsonLines,
  statusOf,
  untimed,
  type ContainerFilter,
  type ContainerFilterConfig,
  type DockerConnectionConfig,
} from '../../common/docker.ts';
import { NotPlainResponse, openLogStream } from '../../common/docker_log_stream.ts';
import { LogStreamParser, looksMultiplexed, type JoinedAfter, type ParsedLine, type StreamName } from './parse.ts';
import { PositionTracker, isAhead, sinceParam, type SavedPosition } from './position.ts';

export interface DockerLogsConfig extends DockerConnectionConfig, ContainerFilterConfig {
  include_stopped: boolean;
  start_from: 'end' | 'beginning';
  tail: number;
  max_line_bytes: string;
  max_pending_lines: number;
}

/** Saved per container id; META_KEY holds when the agent first read this engine. */
interface Meta {
  first: string;
}
const META_KEY = '~meta';

/**
 * Most lines per tracked emit. The position advances when a whole emit is
 * acknowledged, so small emits keep what a kill -9 can repeat to about one
 * output batch (the default batch_size is 1000).
 */
const EMIT_LINES = 100;

/** How a follower starts reading a container it has no checkpoint for. */
type Start = { saved: SavedPosition } | { floor: bigint } | { tail: number };

interface FollowedView {
  id: string;
  name: string;
  image: string;
  reading: boolean;
  lines: number;
  /** How many times its log stream was opened: more than once means it was cut or the container restarted. */
  opens: number;
  unreadable: boolean;
}

/** What a start event says of a container: enough to read a container that is gone before it can be inspected. */
interface StartedAs {
  name: string;
  image: string;
  labels: Record<string, string>;
}

type LogStream = NodeJS.ReadableStream & { destroy: () => void };

const FOLLOW = { follow: true, stdout: true, stderr: true, timestamps: true };

/** A container's name, image and labels as its start event tells them (the labels are the attributes besides name and image). */
function startedAs(id: string, attributes: Record<string, string> | undefined): StartedAs {
  const { name, image, ...labels } = attributes ?? {};
  return { name: containerName(name, id), image: image ?? '', labels };
}

/** The reading position a start gives (a tail start takes its floor from the first line it reads). */
function trackerFor(start: Start): PositionTracker {
  if ('saved' in start) return new PositionTracker({ saved: start.saved });
  if ('floor' in start) return new PositionTracker({ floor: start.floor });
  return new PositionTracker({ floorFromFirstLine: true });
}

/** The logs query for a start, followed or not. */
function logsQuery(start: Start, tracker: PositionTracker, follow: boolean): Record<string, unknown> {
  const query: Record<string, unknown> = { ...FOLLOW, follow };
  if ('tail' in start) query.tail = start.tail;
  else if (tracker.openSince > 0n) query.since = sinceParam(tracker.openSince);
  return query;
}

/** Drops a log stream that was asked for but is not used. */
function discard(stream: Promise<LogStream> | undefined): void {
  stream?.then((s) => s.destroy(), () => undefined);
}

class Follower {
  name: string;
  image = '';
  /** Undefined when the container could not be inspected: told from the stream's first bytes. */
  tty: boolean | undefined = false;
  labels: Record<string, string> = {};
  /** Each stream's line labels (`labels` plus `stream`), and the `labels` they were made from. */
  private lineLabels?: { from: Record<string, string>; stdout: Record<string, string>; stderr: Record<string, string> };
  private tracker?: PositionTracker;
  /** TTY: recent lines that ended without newline; the next run's first line is joined to each in the log. */
  private unterminated: JoinedAfter[] = [];
  private stream?: NodeJS.ReadableStream & { destroy?: () => void };
  private opening = false;
  /** A start event came while a stream's end was being handled: follow again after. */
  private startedMeanwhile = false;
  private retryTimer?: NodeJS.Timeout;
  private failures = 0;
  /** Skipped by the filters, or not running and not wanted. */
  idle = false;
  destroyed = false;
  unreadable = false;
  released = false;
  /** Removed before its log could be read, and counted so. */
  private lost = false;
  /** The last attempt to open the log failed (not: a stream that ended). */
  private openFailed = false;
  /** A log request is on its way. */
  private requesting = false;
  lines = 0;
  opens = 0;
  // Batch being built from the current chunk.
  private events: LogEvent[] = [];
  private positions: Checkpoint[] = [];
  private next = 0;
  // Emitted batches waiting for acknowledgement, oldest first.
  private acks: Array<{ seq: number; position: SavedPosition; done: boolean }> = [];
  private seq = 0;
  private flushQueued = false;

  constructor(
    readonly id: string,
    private readonly owner: DockerLogsInput,
  ) {
    this.name = id.slice(0, 12);
  }

  get reading(): boolean {
    return !!this.stream;
  }

  /**
   * Opens (or re-opens) the log stream, unless already open or not wanted.
   * `started`: the container has just started (its start event).
   */
  async open(started?: StartedAs): Promise<void> {
    const o = this.owner;
    if (this.opening && started) this.startedMeanwhile = true;
    if (this.stream || this.opening || this.destroyed || this.unreadable || o.stopped) return;
    this.opening = true;
    this.startedMeanwhile = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    let early: Promise<LogStream> | undefined;
    try {
      const container = o.docker!.getContainer(this.id);
      // A container that has just started, with no checkpoint, is read from
      // its first line: ask for its log together with its details. A
      // short-lived `--rm` container is gone, log and all, in about the time
      // one inspect takes (20 such containers at once: ~15 % of their lines
      // read after an inspect, ~95 % this way).
      if (started && !this.tracker && !o.hasCheckpoint(this.id) && o.wants(started.name, started.labels, this.id)) {
        early = o.openLogs(this.id, FOLLOW);
        early.catch(() => undefined); // awaited below, or not needed
      }
      let info: Docker.ContainerInspectInfo | undefined;
      try {
        info = await container.inspect();
      } catch (err) {
        // Removed already: its log, if the early request got it, is still worth reading.
        if (!early || statusOf(err) !== 404) throw err;
      }
      if (o.stopped || (this.destroyed && !early)) return discard(early);
      const labels = info ? (info.Config?.Labels ?? {}) : started!.labels;
      this.name = info ? containerName(info.Name, this.id) : started!.name;
      this.image = info ? (info.Config?.Image ?? info.Image ?? '') : started!.image;
      this.tty = info ? !!info.Config?.Tty : undefined;
      this.labels = { container: this.name, ...composeLabels(labels) };
      if (!o.wants(this.name, labels, this.id)) {
        this.idle = true;
        return discard(early);
      }
      let start: Start | undefined;
      if (this.tracker) start = this.resumeFrom(this.tracker);
      else {
        start = info ? o.startFor(this.id, info) : { floor: 0n };
        const saved = start && 'saved' in start ? start.saved.unterminated : undefined;
        if (Array.isArray(saved)) this.unterminated = saved.map((u) => ({ ts: BigInt(u.ts), bytes: u.bytes }));
        if (!start) {
          this.idle = true;
          return discard(early);
        }
      }
      this.idle = false;
      const tracker = trackerFor(start);
      let stream: LogStream;
      this.requesting = true;
      if (early && 'floor' in start && start.floor === 0n) {
        // Read from the first line, as asked early. (Any other start asks again: an old container's whole log is not fetched to be dropped.)
        stream = await early;
      } else {
        discard(early);
        early = undefined;
        stream = await o.openLogs(this.id, logsQuery(start, tracker, true));
      }
      this.requesting = false;
      if (o.stopped || (this.destroyed && !early)) {
        stream.destroy();
        return;
      }
      this.tracker = tracker;
      this.openFailed = false;
      this.attach(stream, tracker);
    } catch (err) {
      // An early stream asked for beside an inspect that failed is not read: closed, not left open.
      if (!this.stream) discard(early);
      this.failed(err);
    } finally {
      this.opening = false;
      this.requesting = false;
    }
    // A start event came while this open looked (it may have seen the container still stopped): look again.
    if (this.startedMeanwhile && !this.stream && !this.destroyed && !o.stopped) this.schedule(0);
  }

  private attach(stream: NodeJS.ReadableStream & { destroy: () => void }, tracker: PositionTracker): void {
    const o = this.owner;
    const opened = Date.now();
    this.stream = untimed(stream);
    this.opens++;
    let parser: LogStreamParser | undefined;
    stream.on('data', (chunk: Buffer) => {
      if (this.stream !== stream || o.stopped) return;
      parser ??= this.parserFor(chunk, tracker);
      parser.push(chunk);
      this.flushSoon();
    });
    // openLogStream's socket comes paused (its first bytes are already in it).
    if (o.paused) stream.pause();
    else stream.resume();
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      if (this.stream !== stream) return;
      this.stream = undefined;
      if (o.stopped) return;
      if (err) {
        if (tracker.replayShort) this.warnShort();
        return this.destroyed ? this.gone() : this.failed(err);
      }
      this.opening = true; // no other open starts meanwhile; a start event is remembered
      void this.afterEnd(tracker, parser, Date.now() - opened < 1000);
    };
    stream.on('end', () => finish());
    stream.on('close', () => finish());
    stream.on('error', (err: Error) => finish(err));
    // Cut while it waited (an early stream, during the inspect): its events are past, so it is read again from the position.
    if ((stream as { destroyed?: boolean }).destroyed) finish(new Error('the log stream was cut before it was read'));
  }

  private parserFor(first: Buffer, tracker: PositionTracker): LogStreamParser {
    const o = this.owner;
    return new LogStreamParser({
      tty: this.tty ?? !looksMultiplexed(first),
      maxLineBytes: o.maxLineBytes,
      onLine: (line) => this.line(line, tracker),
      joinedAfter: this.unterminated,
      onEngineError: (text) => {
        // The engine could not read the log (e.g. removed meanwhile): as good as a failed open.
        this.openFailed = true;
        o.ctx.log.once(`engine-error:${this.id}`, 'warn', `container ${this.name}: the engine reports: ${text}`);
      },
    });
  }

  /**
   * A follow stream ended without error. Mostly the container stopped, but
   * the engine also ends a follow stream early (one asked for as the
   * container starts), and can end it without the container's last output
   * when that has no trailing newline (moby/moby#43860; here 1 exit in 4
   * with a TTY, 1 in 10 without). So ask whether it still runs: if so,
   * follow again from the position; if it stopped, read the rest once, not
   * followed (the tracker drops what was read already).
   */
  private async afterEnd(tracker: PositionTracker, streamParser: LogStreamParser | undefined, quick: boolean): Promise<void> {
    const o = this.owner;
    this.startedMeanwhile = false;
    // Streams that keep ending quickly back off. The first is read back at
    // once: a short-lived `--rm` container is removed, log and all, while a
    // pause waits (seen in CI on a loaded machine: three lines lost unsaid).
    this.failures = quick ? this.failures + 1 : 0;
    if (this.failures > 1) await sleep(backoffDelay(this.failures - 1, 100, 5000), o.signal);
    let running = false;
    let failure: unknown;
    let gone = false;
    try {
      if (o.stopped) return;
      const info = await o.docker!.getContainer(this.id).inspect();
      // Waiting to be restarted by its policy counts as stopped: its log has no live writer.
      running = !!info.State?.Running && !info.State?.Restarting;
      // Being removed (a --rm container): the engine refuses its log, so no request for it.
      gone = info.State?.Dead === true || info.State?.Status === 'removing';
      if (!running && !gone && !o.stopped) await this.readRest(tracker);
    } catch (err) {
      const status = statusOf(err);
      if (status === 404 || (status === 409 && /dead or marked for removal/i.test(errorMessage(err)))) gone = true;
      else failure = err; // the rest is read by a retry, from the position
    } finally {
      this.opening = false;
    }
    if (o.stopped) return;
    if (gone) {
      // The stream's own unterminated rest is its last output.
      streamParser?.end();
      this.destroyed = true;
      // Read from its first line, nothing came, and now nothing can: an empty
      // stream the engine closed early cannot be told from a container that
      // printed nothing, so it is said and counted rather than lost unsaid.
      if (tracker.emptyFromStart) this.openFailed = true;
    }
    // Nothing follows for now, so the outputs need not wait for a fuller batch.
    this.flush();
    o.acc?.flush();
    if (tracker.replayShort || this.tracker?.replayShort) this.warnShort();
    if (this.destroyed) return this.gone();
    if (failure) return this.failed(failure);
    if (!running && !this.startedMeanwhile) return; // idle until its next start event
    // Running again (restart) or still: follow again, even if it stops meanwhile (that open then reads to the end).
    void this.open();
  }

  /**
   * Where to read again after `tracker`: from its position (a resumed tracker
   * knows how many lines at `since` to skip); one that began with `tail` and
   * read nothing has no position, so the same tail again.
   */
  private resumeFrom(tracker: PositionTracker): Start {
    return tracker.waitsForFirstLine ? { tail: this.owner.config.tail } : { saved: tracker.position() };
  }

  /** Reads a stopped container's log from the position to its end, not followed. */
  private async readRest(tracker: PositionTracker): Promise<void> {
    const start = this.resumeFrom(tracker);
    const replay = trackerFor(start);
    const stream = await this.owner.openLogs(this.id, logsQuery(start, replay, false));
    let parser: LogStreamParser | undefined;
    // Read as it comes, not buffered whole: the rest starts a second before the last line read, which a busy container fills with megabytes.
    await new Promise<void>((resolve, reject) => {
      let ended = false;
      stream.on('data', (chunk: Buffer) => {
        if (this.owner.stopped) return stream.destroy();
        parser ??= this.parserFor(chunk, replay);
        parser.push(chunk);
      });
      stream.on('end', () => {
        ended = true;
        resolve();
      });
      stream.on('close', () => (ended || this.owner.stopped ? resolve() : reject(new Error('the log was cut before its end'))));
      stream.on('error', reject);
      stream.resume();
    });
    if (this.owner.stopped) return;
    parser?.end();
    this.tracker = replay;
  }

  private warnShort(): void {
    this.owner.ctx.log.once(`short:${this.id}`, 'warn', `container ${this.name}: its log holds fewer lines than when the checkpoint was saved (rotated or truncated meanwhile?); some lines may be missing`);
  }

  /**
   * A line's own copy of its labels. Copied from a per-stream template:
   * `{ ...labels, stream }` takes V8's generic runtime path, ~1 µs a line,
   * where a copy of an object that has every key already is ~50 ns.
   */
  private labelsOf(stream: StreamName): Record<string, string> {
    const from = this.labels;
    let t = this.lineLabels;
    if (t?.from !== from) this.lineLabels = t = { from, stdout: { ...from, stream: 'stdout' }, stderr: { ...from, stream: 'stderr' } };
    return { ...t[stream] };
  }

  private line(line: ParsedLine, tracker: PositionTracker): void {
    if (!tracker.accept(line.ts)) return;
    const o = this.owner;
    this.lines++;
    const attributes: Record<string, unknown> = { container_id: this.id, image: this.image };
    if (line.truncated) attributes.truncated = true;
    this.events.push({
      kind: 'log',
      timestamp: line.ts,
      source: this.name,
      level: 'info',
      message: line.text,
      labels: this.labelsOf(line.stream),
      attributes,
    });
    const position = tracker.position();
    if (line.unterminated !== undefined) this.unterminated.push({ ts: line.ts, bytes: line.unterminated });
    if (this.unterminated.length) {
      // Kept while a replay may begin before them: such a replay must be cut there too.
      const since = BigInt(position.since);
      this.unterminated = this.unterminated.filter((u) => u.ts >= since);
      if (this.unterminated.length) position.unterminated = this.unterminated.map((u) => ({ ts: u.ts.toString(), bytes: u.bytes }));
    }
    this.positions.push({ input: o.ctx.id, key: this.id, value: position, order: tracker.order() });
    if (this.events.length - this.next >= EMIT_LINES) this.flush();
  }

  /**
   * Emits once the socket read being parsed is done. The engine sends each
   * line as a chunk of its own, so a flush per chunk made a tracked emit (and
   * an acknowledgement, and a position save) per line, which cost more than
   * the line; one socket read holds hundreds.
   */
  private flushSoon(): void {
    if (this.flushQueued || !this.holding) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      if (!this.owner.stopped) this.flush();
    });
  }

  /** Lines parsed and not handed over yet, from `next` on (the window had no room for them yet). */
  get holding(): boolean {
    return this.next < this.events.length;
  }

  /**
   * Hands over the lines parsed so far, in tracked batches of at most
   * EMIT_LINES, as far as the input's window has room: max_pending_lines is
   * a strict bound (an output whose buffer_limit is as large never
   * overflows). Lines beyond it wait here, in order, until acknowledgements
   * make room (the input flushes this follower again). True when none is left.
   */
  flush(): boolean {
    while (this.holding) {
      const room = this.owner.room(this);
      if (room <= 0) return false;
      const from = this.next;
      const to = Math.min(this.events.length, from + Math.min(room, EMIT_LINES));
      // The usual case, all of a read's lines at once, hands the arrays over without a copy.
      const whole = from === 0 && to === this.events.length;
      const events = whole ? this.events : this.events.slice(from, to);
      const positions = whole ? this.positions : this.positions.slice(from, to);
      if (to === this.events.length) {
        this.events = [];
        this.positions = [];
        this.next = 0;
      } else this.next = to;
      this.emit(events, positions);
    }
    this.owner.released(this);
    return true;
  }

  private emit(events: LogEvent[], positions: Checkpoint[]): void {
    const seq = ++this.seq;
    const entry = { seq, position: positions[positions.length - 1]!.value as SavedPosition, done: false };
    this.acks.push(entry);
    // Accepted (staged by an output that commits later) frees the read window; only delivered moves the checkpoint.
    // Delivered implies accepted: an accumulator that only calls onDelivered (a plugin's own harness) must not stall the input.
    const n = events.length;
    const owner = this.owner;
    const follower = this;
    let accepted = false;
    // Methods, not arrow functions: under tsx (esbuild's keepNames) each arrow
    // made here would get its name by defineProperty, ~0.5 µs, and reads that
    // end in a nearly full window emit a few lines at a time.
    const track = {
      positions,
      onAccepted(): void {
        if (accepted) return;
        accepted = true;
        owner.acknowledged(n);
      },
      onDelivered(): void {
        track.onAccepted();
        follower.delivered(entry);
      },
    };
    // Counted before the emit: an acknowledgement may come within it (lines no output takes).
    owner.sending(n);
    owner.acc!.emitTracked(events, track);
    // After the emit: a full window asks the outputs to write what they hold, and these lines must be in it.
    owner.sent();
  }

  private delivered(entry: { done: boolean }): void {
    entry.done = true;
    let last: SavedPosition | undefined;
    while (this.acks.length && this.acks[0]!.done) last = this.acks.shift()!.position;
    if (last && !this.destroyed) this.owner.save(this.id, last);
  }

  private failed(err: unknown): void {
    const o = this.owner;
    if (o.stopped) return;
    const status = statusOf(err);
    const text = errorMessage(err);
    if (status === 404) {
      // Gone when its log was asked for: whatever it wrote was not read.
      if (this.requesting) this.openFailed = true;
      return this.gone();
    }
    if (status === 409 && /dead or marked for removal/i.test(text)) {
      this.lostUnread();
      return this.gone();
    }
    if (status === 501 || /does not support reading|not support reading/i.test(text)) {
      this.unreadable = true;
      o.ctx.log.once(`unreadable:${this.id}`, 'warn', `container ${this.name}: its log driver cannot be read through the Engine API (${text.replace(/^\(HTTP code \d+\)[^-]*- /, '').trim()}); its logs are skipped. Use the json-file, local or journald driver, or keep Docker's dual logging on.`);
      return;
    }
    this.failures++;
    this.openFailed = true;
    // When the whole engine is gone the supervisor says so (once); retries go on quietly.
    if (!isConnectionError(err)) o.ctx.log.once(`open:${this.id}`, 'warn', `container ${this.name}: cannot read logs, retrying with backoff: ${text}`);
    this.schedule(backoffDelay(this.failures, 500, 30_000));
  }

  private schedule(delayMs: number): void {
    const o = this.owner;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(async () => {
      this.retryTimer = undefined;
      if (o.stopped) return;
      // Destroyed while its last open was failing: nothing is left to retry.
      if (this.destroyed) return this.gone();
      await this.open();
    }, delayMs);
    this.retryTimer.unref?.();
  }

  /** The engine says the container is gone: finish reading, then forget it. */
  onDestroy(): void {
    this.destroyed = true;
    if (!this.stream && !this.opening) this.gone();
  }

  /** The container no longer exists: if its log could never be opened, that is said and counted; then it is forgotten. */
  private gone(): void {
    this.destroyed = true;
    if (this.openFailed && this.lines === 0) this.lostUnread();
    this.release();
  }

  /** Removed before its log could be opened (a short-lived `--rm` container): counted as an input error, said once. */
  private lostUnread(): void {
    const o = this.owner;
    if (this.released || this.lost || o.stopped) return;
    this.lost = true;
    o.acc?.error(new Error(`container ${this.name}: removed before its log could be read`));
    o.ctx.log.once(`removed:${this.id}`, 'warn', `container ${this.name} was removed before its log could be read; any lines it wrote are lost (a short-lived --rm container?)`);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    clearTimeout(this.retryTimer);
    this.owner.forget(this.id);
  }

  /** Closes the stream (engine gone or stop); the position stays for re-opening. */
  close(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const s = this.stream;
    this.stream = undefined;
    s?.destroy?.();
  }

  pause(): void {
    this.stream?.pause();
  }

  resume(): void {
    this.stream?.resume();
  }

  view(): FollowedView {
    return { id: this.id, name: this.name, image: this.image, reading: this.reading, lines: this.lines, opens: this.opens, unreadable: this.unreadable };
  }
}

export class DockerLogsInput implements ServiceInput {
  docker?: Docker;
  acc?: Accumulator;
  checkpoints?: CheckpointFile<SavedPosition | Meta>;
  stopped = false;
  paused = false;
  readonly maxLineBytes: number;
  private readonly followers = new Map<string, Follower>();
  private readonly filter: ContainerFilter;
  private readonly abort = new AbortController();
  /** Aborted when the input stops: ends its waits. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }
  private events?: NodeJS.ReadableStream & { destroy?: () => void };
  private running?: Promise<void>;
  private pending = 0;
  /** Followers holding lines the window had no room for, in the order they were held back. */
  private readonly waiting = new Set<Follower>();
  private releaseQueued = false;
  private fastFile?: string;
  private dockerOpts?: Docker.DockerOptions;
  /** Whether log streams are read off the connection (see openLogs). */
  private plainLogs = true;
  private fastPending = false;
  private fastFd?: number;
  private fastSize = 0;
  /** Engine time when this instance first connected (saved): the "end" of start_from: end. */
  private first = 0n;

  constructor(
    readonly config: DockerLogsConfig,
    readonly ctx: PluginContext,
  ) {
    this.maxLineBytes = parseSize(config.max_line_bytes);
    this.filter = containerFilter(config);
  }

  async start(acc: Accumulator): Promise<void> {
    this.acc = acc;
    this.checkpoints = new CheckpointFile(this.ctx.dataDir);
    this.fastFile = path.join(this.ctx.dataDir, 'checkpoints.fast.json');
    this.mergeFast();
    this.dockerOpts = dockerOptions(this.config, process.env, parseDuration(this.config.api_timeout));
    this.docker = new Docker(this.dockerOpts);
    this.running = this.supervise();
  }

  /**
   * A container's log, followed or not: read off the connection (openLogStream, a
   * third of the CPU a line of dockerode's stream under load), or through
   * dockerode where the engine's answer is framed (a proxy speaking HTTP/1.1).
   */
  async openLogs(id: string, query: Record<string, unknown>): Promise<LogStream> {
    if (this.plainLogs) {
      try {
        return await openLogStream(this.dockerOpts!, id, query, this.dockerOpts!.timeout);
      } catch (err) {
        if (!(err instanceof NotPlainResponse)) throw err;
        this.plainLogs = false;
        this.ctx.log.info(`${err.message}: log streams go through the HTTP client from now on`);
      }
    }
    const answer: unknown = await this.docker!.getContainer(id).logs(query as any);
    // Not followed, dockerode answers with the whole log at once.
    return (Buffer.isBuffer(answer) ? Readable.from([answer]) : answer) as LogStream;
  }

  /** Connects, follows, and reconnects with backoff when the engine goes away. */
  private async supervise(): Promise<void> {
    let attempt = 0;
    let down = false;
    while (!this.stopped) {
      let connected = false;
      try {
        await this.session(() => {
          connected = true;
          attempt = 0;
          if (down) {
            down = false;
            this.ctx.log.clear('engine');
            this.ctx.log.info(`Docker engine at ${endpointName(this.config)} is reachable again; resuming`);
          }
        });
        if (!this.stopped) throw new Error('the events stream ended');
      } catch (err) {
        if (this.stopped) break;
        down = true;
        this.ctx.log.once('engine', 'warn', `Docker engine at ${endpointName(this.config)} unreachable (${errorMessage(err)}); retrying with backoff (logged once)`);
      }
      for (const f of this.followers.values()) f.close();
      if (!connected) attempt++;
      await sleep(backoffDelay(attempt, 500, 30_000), this.abort.signal);
    }
  }

  private async session(onConnected: () => void): Promise<void> {
    const docker = this.docker!;
    const info = await docker.info();
    const engineNow = parseRfc3339Ns(String(info.SystemTime ?? '')) ?? BigInt(Date.now()) * 1_000_000n;
    const events = untimed((await docker.getEvents({ filters: { type: ['container'], event: ['start', 'destroy'] } })) as NodeJS.ReadableStream & { destroy?: () => void });
    if (this.stopped) {
      events.destroy?.();
      return;
    }
    this.events = events;
    const ended = new Promise<void>((resolve, reject) => {
      events.on('end', () => resolve());
      events.on('close', () => resolve());
      events.on('error', reject);
    });
    events.on('data', jsonLines((ev) => this.onEvent(ev)));

    const cps = this.checkpoints!;
    const meta = cps.get(META_KEY) as Meta | undefined;
    this.first = meta ? BigInt(meta.first) : engineNow;
    if (!meta) {
      cps.set(META_KEY, { first: engineNow.toString() });
      this.writeFast();
      await cps.flush();
    }
    const list = await docker.listContainers({ all: true });
    if (this.stopped) return;
    onConnected();
    const present = new Set(list.map((c) => c.Id));
    for (const [key] of cps.entries()) if (key !== META_KEY && !present.has(key)) cps.delete(key);
    this.saveSoon();
    for (const c of list) {
      let f = this.followers.get(c.Id);
      if (!f) {
        if (!this.filter(containerName(c.Names, c.Id), c.Labels, c.Id)) continue;
        f = new Follower(c.Id, this);
        this.followers.set(c.Id, f);
      }
      void f.open();
    }
    // Containers removed while the events stream was down: their destroy event was missed.
    for (const [id, f] of this.followers) if (!present.has(id)) f.onDestroy();
    await ended;
  }

  private onEvent(ev: any): void {
    if (this.stopped || ev?.Type !== 'container') return;
    const id: string | undefined = ev.Actor?.ID ?? ev.id;
    if (!id) return;
    const action = String(ev.Action ?? ev.status ?? '');
    let f = this.followers.get(id);
    if (action === 'start') {
      if (!f) {
        f = new Follower(id, this);
        this.followers.set(id, f);
      }
      void f.open(startedAs(id, ev.Actor?.Attributes));
    } else if (action === 'destroy') {
      f?.onDestroy();
      this.checkpoints?.delete(id);
      this.saveSoon();
    }
  }

  /** The name/label filters and the agent's own container. */
  wants(name: string, labels: Record<string, string>, id: string): boolean {
    return this.filter(name, labels, id);
  }

  /**
   * Where to begin reading a container that has no position in memory:
   * its checkpoint; all of it when it was created after the agent first ran;
   * otherwise as `start_from` says. Undefined: not now (stopped, not wanted).
   */
  startFor(id: string, info: Docker.ContainerInspectInfo): Start | undefined {
    const saved = this.checkpoints!.get(id) as SavedPosition | undefined;
    if (saved && typeof saved.since === 'string') return { saved };
    const created = parseRfc3339Ns(info.Created) ?? 0n;
    if (created >= this.first) return { floor: 0n };
    const finished = parseRfc3339Ns(info.State?.FinishedAt ?? '') ?? 0n;
    const ranSinceFirst = info.State?.Running || finished >= this.first;
    if (!ranSinceFirst && !this.config.include_stopped) return undefined;
    if (this.config.start_from === 'end') return { floor: this.first };
    return this.config.tail >= 0 ? { tail: this.config.tail } : { floor: 0n };
  }

  hasCheckpoint(id: string): boolean {
    return this.checkpoints!.get(id) !== undefined;
  }

  forget(id: string): void {
    this.followers.delete(id);
    this.checkpoints?.delete(id);
    this.saveSoon();
  }

  /**
   * Records a delivered position. checkpoints.json is written durably (fsync)
   * but asynchronously, so while one save is on its way the outputs may write
   * several more batches; a kill -9 then would repeat them. A second copy,
   * checkpoints.fast.json, is written synchronously (no fsync: it survives the
   * process being killed, not the machine losing power) at most once per
   * event-loop turn, before the next batch can complete. On start the further
   * position of the two is taken.
   */
  save(id: string, position: SavedPosition): void {
    this.checkpoints!.set(id, position);
    this.saveSoon();
  }

  private saveSoon(): void {
    if (this.fastPending || !this.fastFile) return;
    this.fastPending = true;
    setImmediate(() => {
      this.fastPending = false;
      this.writeFast();
    });
  }

  /**
   * One positional write at offset 0, padded with spaces to the longest
   * content so far: a single write() is never torn by killing the process,
   * and JSON.parse ignores the padding. (A power loss can leave it torn; then
   * it does not parse and checkpoints.json is used.)
   */
  private writeFast(): void {
    if (!this.fastFile || !this.checkpoints) return;
    try {
      if (this.fastFd === undefined) {
        mkdirSync(path.dirname(this.fastFile), { recursive: true });
        this.fastFd = openSync(this.fastFile, 'w');
        this.fastSize = 0;
      }
      let text = JSON.stringify(Object.fromEntries(this.checkpoints.entries()));
      if (text.length < this.fastSize) text = text.padEnd(this.fastSize);
      this.fastSize = text.length;
      writeSync(this.fastFd, text, 0, 'utf8');
    } catch (err) {
      this.ctx.log.once('fast-save', 'warn', `cannot write ${this.fastFile}: ${errorMessage(err)} (positions are still saved to checkpoints.json)`);
    }
  }

  /** Takes positions from checkpoints.fast.json that are further than checkpoints.json's. */
  private mergeFast(): void {
    let fast: Record<string, SavedPosition | Meta>;
    try {
      fast = JSON.parse(readFileSync(this.fastFile!, 'utf8'));
    } catch {
      return; // absent, or torn by a power loss: the durable file stands
    }
    const cps = this.checkpoints!;
    for (const [key, value] of Object.entries(fast)) {
      const durable = cps.get(key);
      if (key === META_KEY) {
        if (!durable) cps.set(key, value);
      } else if (!durable || isAhead(value as SavedPosition, durable as SavedPosition)) cps.set(key, value);
    }
  }

  /**
   * Lines `follower` may hand over now: what the window has left, once the
   * followers held back before it have gone. With none, it is held back
   * too, and flushed again when acknowledgements make room.
   */
  room(follower: Follower): number {
    const room = this.config.max_pending_lines - this.pending;
    const first = this.waiting.values().next().value;
    if (room > 0 && (first === undefined || first === follower)) return room;
    this.waiting.add(follower);
    return 0;
  }

  /** `follower` handed over all it held: the next one held back may go. */
  released(follower: Follower): void {
    if (this.waiting.delete(follower)) this.scheduleRelease();
  }

  /** Lines about to be handed to the pipeline. */
  sending(n: number): void {
    this.pending += n;
  }

  /**
   * After a hand-over: a full window pauses reading, and has the outputs
   * write what they hold. So does a hand-over while paused (held-back lines
   * released by acknowledgements): reading resumes only once half the window
   * is free, and lines that do not fill it would otherwise wait in an output
   * for a fuller batch, or its flush interval, holding the input paused.
   */
  sent(): void {
    if (this.pending < this.config.max_pending_lines && !this.paused) return;
    if (!this.paused) {
      this.paused = true;
      for (const f of this.followers.values()) f.pause();
    }
    // Nothing more comes until these are acknowledged: outputs waiting for a fuller batch write now.
    this.acc?.flush();
  }

  acknowledged(n: number): void {
    this.pending -= n;
    this.scheduleRelease();
  }

  /** Releases held-back lines and reading after the current emit (an acknowledgement may come within one). */
  private scheduleRelease(): void {
    if (this.releaseQueued) return;
    this.releaseQueued = true;
    queueMicrotask(() => {
      this.releaseQueued = false;
      this.release();
    });
  }

  /**
   * Held-back lines go first, oldest follower first, while the window has
   * room; once none is held, reading resumes. A paused input waits until half
   * its window is free, so that it reads on in runs rather than line by line.
   */
  private release(): void {
    if (this.stopped) return;
    const max = this.config.max_pending_lines;
    if (this.paused && this.pending > max / 2) return;
    for (const f of this.waiting) if (!f.flush()) break;
    if (this.paused && this.waiting.size === 0 && this.pending <= max / 2) {
      this.paused = false;
      for (const f of this.followers.values()) f.resume();
    }
  }

  /** The containers this instance knows, for status pages. */
  followed(): FollowedView[] {
    return [...this.followers.values()].filter((f) => !f.idle).map((f) => f.view());
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    this.events?.destroy?.();
    for (const f of this.followers.values()) f.close();
    if (this.running) await Promise.race([this.running, sleep(2000)]);
  }

  /** After the outputs drained: the last acknowledgements are saved. */
  async close(): Promise<void> {
    this.writeFast();
    if (this.fastFd !== undefined) closeSync(this.fastFd);
    this.fastFd = undefined;
    await this.checkpoints?.flush();
  }
}

export const dockerLogs: PluginDefinition<DockerLogsConfig> = {
  kind: 'service_input',
  type: 'docker_logs',
  pendingLimitOption: 'max_pending_lines',
  description: 'Follows the logs of Docker containers (stdout/stderr, TTY or not) with exact resume after restarts.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      ...dockerConnectionSchema,
      ...containerFilterSchema,
      include_stopped: {
        type: 'boolean',
        default: false,
        description: 'Also read containers that are not running and that the agent has not read before (their whole log, as start_from says). Containers that ran since the agent first started are always read.',
      },
      start_from: {
        enum: ['end', 'beginning'],
        default: 'end',
        description: 'For containers that already existed when the agent first ran (no checkpoint yet): "end" reads only lines written from then on; "beginning" reads their whole log (or the last `tail` lines). Containers created later are always read from their first line.',
      },
      tail: {
        type: 'integer',
        minimum: -1,
        default: -1,
        description: 'With start_from: beginning, read only the last N lines of such a container (-1: all).',
      },
      max_line_bytes: {
        type: 'string',
        format: 'size',
        default: '1MiB',
        description: 'Docker splits lines longer than 16 KiB; the pieces are merged back into one line up to this size, then the line is cut and marked truncated: true.',
      },
      max_pending_lines: {
        type: 'integer',
        minimum: 1,
        default: 2000,
        description: 'Reading pauses while this many lines are not yet accepted by every output (a strict bound: lines of a socket read beyond it wait). Must not exceed any output\'s buffer_limit (the config is refused), so that a busy output never drops lines.',
      },
    },
  },
  create: (config, ctx) => new DockerLogsInput(config, ctx),
};

export default dockerLogs;
