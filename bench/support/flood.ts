// A bench input that emits realistic container lines (the classifier's
// samples) as fast as the pipeline acknowledges them, or at a set rate, with
// at most `maxPending` lines unacknowledged (so a slow output throttles it,
// as a real input would be).

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { makeLog, nowNs, type LogEvent } from '../../core/events.ts';
import type { Accumulator, PluginDefinition, ServiceInput } from '../../core/plugin.ts';

export interface FloodOptions {
  /** Lines per second; 0: as fast as they are acknowledged. */
  rate?: number;
  /** Keep lines of this many characters. */
  minLength?: number;
  maxLength?: number;
  maxPending?: number;
  /** Lines per emit. */
  chunk?: number;
  /** Vary the samples into this many lines (0: the samples as they are). */
  distinct?: number;
  /** Give each line its own clock (see ClockedLines). */
  clock?: boolean;
}

/**
 * `count` distinct lines built from the classifier's real-looking samples
 * (its testdata), numbers varied so they do not repeat, with the container
 * each came from.
 */
export function variedLines(count: number, minLength: number, maxLength: number): Array<{ container: string; line: string }> {
  const samples = sampleLines(minLength, maxLength);
  const pool: Array<{ container: string; line: string }> = [];
  for (let i = 0; i < count; i++) {
    const s = samples[i % samples.length]!;
    const n = String(i);
    pool.push({ container: s.container, line: s.line.replace(/\d{2}(?=\D*$)/, n.slice(-2).padStart(2, '0')).replace(/:(\d)\d/, `:$1${i % 10}`) });
  }
  return pool;
}

/**
 * Lines whose clock (HH:MM:SS, and .mmm where a line has it) is rewritten
 * per use, as a real log's lines differ at least in their time: the same
 * few thousand lines repeated verbatim would let DuckDB store messages as a
 * dictionary, far cheaper than compressing distinct lines (FSST). Each line
 * is decoded from bytes, as docker_logs decodes its lines.
 */
export class ClockedLines {
  private readonly templates: Array<{ bytes: Buffer; clockAt: number; millis: boolean }>;
  private readonly scratch: Buffer;

  constructor(private readonly lines: readonly string[]) {
    this.templates = lines.map((line) => {
      const clock = /(?<!\d)\d\d:\d\d:\d\d(?:[.,]\d{3})?/.exec(line);
      return { bytes: Buffer.from(line), clockAt: clock ? Buffer.byteLength(line.slice(0, clock.index)) : -1, millis: clock?.[0].length === 12 };
    });
    this.scratch = Buffer.alloc(this.templates.reduce((most, t) => Math.max(most, t.bytes.length), 0));
  }

  /** Line `n` with its clock at `ms` milliseconds into the day (lines without a clock as they are). */
  at(n: number, ms: number): string {
    const t = this.templates[n]!;
    if (t.clockAt < 0) return this.lines[n]!;
    const b = this.scratch;
    t.bytes.copy(b);
    const at = t.clockAt;
    putDigits(b, at, Math.floor(ms / 3_600_000) % 24, 2);
    putDigits(b, at + 3, Math.floor(ms / 60_000) % 60, 2);
    putDigits(b, at + 6, Math.floor(ms / 1000) % 60, 2);
    if (t.millis) putDigits(b, at + 9, ms % 1000, 3);
    return b.toString('utf8', 0, t.bytes.length);
  }
}

function putDigits(b: Buffer, at: number, value: number, digits: number): void {
  for (let d = digits - 1; d >= 0; d--, value = Math.floor(value / 10)) b[at + d] = 48 + (value % 10);
}

/** The classifier's real-looking lines, with the container each came from. */
export function sampleLines(minLength: number, maxLength: number): Array<{ container: string; line: string }> {
  const dir = path.resolve(import.meta.dirname, '../../plugins/processors/regex_classifier/testdata');
  return readdirSync(dir)
    .flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean).map((line) => ({ container: f.replace('.log', ''), line })))
    .filter((s) => s.line.length >= minLength && s.line.length <= maxLength);
}

export function floodInput(opts: FloodOptions = {}): PluginDefinition {
  const rate = opts.rate ?? 0;
  const maxPending = opts.maxPending ?? 40_000;
  const chunk = opts.chunk ?? 1000;
  const min = opts.minLength ?? 60;
  const max = opts.maxLength ?? 300;
  const pool = opts.distinct ? variedLines(opts.distinct, min, max) : sampleLines(min, max);
  const clocked = opts.clock ? new ClockedLines(pool.map((p) => p.line)) : undefined;
  return {
    kind: 'service_input',
    type: 'flood',
    description: 'Bench input: emits container lines as fast as they are acknowledged.',
    schema: { type: 'object', additionalProperties: false, properties: {} },
    create: (): ServiceInput => {
      let stopped = false;
      let pending = 0;
      let seq = 0;
      let acc: Accumulator;
      let timer: NodeJS.Timeout | undefined;
      let budget = 0;
      let last = performance.now();
      let scheduled = false;
      const schedule = () => {
        if (scheduled) return;
        scheduled = true;
        setImmediate(pump);
      };
      const pump = () => {
        scheduled = false;
        if (rate > 0) {
          const now = performance.now();
          budget = Math.min(rate, budget + ((now - last) / 1000) * rate);
          last = now;
        }
        // One chunk per event-loop turn, as a real input gets one socket read
        // per turn: a burst of 40 chunks in one turn would hold the loop
        // (and any HTTP request waiting on it) for ~150 ms.
        if (!stopped && pending < maxPending && (rate === 0 || budget >= chunk)) {
          budget -= chunk;
          const events: LogEvent[] = [];
          for (let i = 0; i < chunk; i++) {
            const n = seq % pool.length;
            const s = pool[n]!;
            const message = clocked ? clocked.at(n, seq) : s.line;
            seq++;
            events.push(makeLog({ timestamp: nowNs(), source: s.container, message, labels: { container: s.container, stream: 'stdout' } }));
          }
          pending += chunk;
          // Accepted (staged by an output that commits later) frees the window, as in docker_logs.
          acc.emitTracked(events, {
            onAccepted: () => {
              pending -= chunk;
              schedule();
            },
          });
          schedule();
        }
        // Paused until acknowledged: outputs need not wait for a fuller batch.
        if (pending >= maxPending) acc.flush();
      };
      return {
        async start(a) {
          acc = a;
          schedule();
          if (rate > 0) timer = setInterval(pump, 10);
        },
        async stop() {
          stopped = true;
          clearInterval(timer);
        },
      };
    },
  };
}

/**
 * The pipeline file the ingestion benches run: the flood input →
 * regex_classifier → user_extraction → outputs.duckdb (retention and
 * scheduled checkpoints off), with `duckdb` lines added to the DuckDB entry
 * and `outputs` (YAML list items) after it.
 */
export function floodPipelineYaml(opts: { dataDir: string; duckdb: string[]; outputs?: string }): string {
  return `agent:
  self_metrics: false
  log_level: warn
  data_dir: ${opts.dataDir}
inputs:
  - type: flood
processors:
  - type: regex_classifier
  - type: user_extraction
outputs:
  - type: duckdb
    flush_interval: ${process.env.FLUSH_INTERVAL ?? '200ms'}
    buffer_limit: ${process.env.BUFFER_LIMIT ?? 100000}
    checkpoint_interval: '0'
    retention: { enabled: false }
${opts.duckdb.map((l) => `    ${l}\n`).join('')}${opts.outputs ?? ''}`;
}
