// A log line's stream: what it shares with every other line of its container
// and output stream (source, container name, id and image, labels), stored
// once in opshub_log_streams and named by number in each opshub_log_lines row.
//
// The ids live in memory: loaded from the table when the store opens, new
// ones handed out as lines arrive and inserted in the transaction that
// appends those lines, so a line never names a stream the file lacks. A
// rolled-back transaction takes its new streams with it: the store then
// reloads() before its next transaction.

import type { DuckDBConnection } from '@duckdb/node-api';
import type { LogEvent } from '../../../core/events.ts';

/** A stream's columns, as opshub_log_streams holds them. */
export interface StreamColumns {
  source: string;
  container_name?: string;
  container_id?: string;
  image?: string;
  /** The labels' JSON text. */
  labels: string;
}

interface Recent {
  source: string;
  name: string | undefined;
  containerId: string | undefined;
  image: string | undefined;
  /** A copy, so that an event's object changed later cannot go stale here. */
  labels: Record<string, string>;
  id: bigint;
}

/** Streams compared field by field before the key text is built (lines of a few containers interleave). */
const RECENT = 8;

/**
 * Most stream keys remembered. Labels that change line by line (an id put in
 * a label) would make a stream of every line: past this many the memory is
 * dropped and starts again, and a stream seen again gets a second row (a
 * harmless duplicate: each line names one).
 */
export const MAX_STREAMS = 100_000;

const textOf = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** A line's container name: the `container_name` label, else `container` (docker_logs' label). */
export const containerNameOf = (e: LogEvent): string | undefined => textOf(e.labels.container_name ?? e.labels.container);
/** A line's container id: the label, else the attribute. */
const containerIdOf = (e: LogEvent): string | undefined => textOf(e.labels.container_id ?? e.attributes.container_id);
/** A line's image: the attribute (docker_logs sets it), when a string. */
const imageOf = (e: LogEvent): string | undefined => textOf(e.attributes.image);

export class Streams {
  private readonly byKey = new Map<string, bigint>();
  private readonly recent: Recent[] = [];
  private last = 0;
  private oldest = 0;
  private next = 1n;
  /** Streams handed out since the last insertFresh(): rows to insert with the lines. */
  private fresh: Array<StreamColumns & { id: bigint; firstSeenUs: bigint }> = [];

  /**
   * @param labelsText the JSON of a label set (built only for a stream not among the last few).
   * @param max most stream keys remembered (MAX_STREAMS).
   */
  constructor(
    private readonly labelsText: (labels: Record<string, string>) => string,
    private readonly max = MAX_STREAMS,
  ) {}

  /** Forgets everything and reads the streams the file holds. */
  async load(conn: DuckDBConnection): Promise<void> {
    this.byKey.clear();
    this.recent.length = 0;
    this.last = this.oldest = 0;
    this.fresh = [];
    const max = await conn.runAndReadAll(`SELECT coalesce(max(stream_id), 0) FROM opshub_log_streams`);
    this.next = BigInt(max.getRows()[0]![0] as bigint) + 1n;
    // The newest streams, oldest first, so that a key stored twice maps to its newest id.
    const reader = await conn.runAndReadAll(
      `SELECT * FROM (SELECT stream_id, source, container_name, container_id, image, labels FROM opshub_log_streams ORDER BY stream_id DESC LIMIT ${this.max}) ORDER BY stream_id`,
    );
    for (const [id, source, name, containerId, image, labels] of reader.getRows() as Array<[bigint, string | null, string | null, string | null, string | null, string | null]>) {
      // The labels as the store writes them now (a file migrated from schema 1 holds the same text, but be sure).
      const text = labels === null ? '{}' : this.labelsText(JSON.parse(labels) as Record<string, string>);
      this.byKey.set(keyOf(source ?? '', name ?? undefined, containerId ?? undefined, image ?? undefined, text), id);
    }
  }

  /** The stream id of a log line, a new one if its stream is new. */
  idOf(e: LogEvent): bigint {
    // A plugin written in JS may leave the source out.
    const source = typeof e.source === 'string' ? e.source : '';
    const labels = e.labels;
    const name = containerNameOf(e);
    const containerId = containerIdOf(e);
    const image = imageOf(e);
    const recent = this.recent;
    // The last stream first (lines come in runs), then the others: the test written out twice, as a
    // shared function measured 1-4 % slower over 3 pairs of bench/processing.ts.
    let r = recent[this.last];
    if (r !== undefined && r.source === source && r.name === name && r.containerId === containerId && r.image === image && sameLabels(labels, r.labels)) return r.id;
    for (let i = 0; i < recent.length; i++) {
      r = recent[i]!;
      if (r.source === source && r.name === name && r.containerId === containerId && r.image === image && sameLabels(labels, r.labels)) {
        this.last = i;
        return r.id;
      }
    }
    const text = this.labelsText(labels);
    const key = keyOf(source, name, containerId, image, text);
    let id = this.byKey.get(key);
    if (id === undefined) {
      id = this.next++;
      if (this.byKey.size >= this.max) this.byKey.clear();
      this.byKey.set(key, id);
      this.fresh.push({ id, source, container_name: name, container_id: containerId, image, labels: text, firstSeenUs: e.timestamp / 1000n });
    }
    const at = recent.length < RECENT ? recent.length : this.oldest;
    this.oldest = (at + 1) % RECENT;
    recent[at] = { source, name, containerId, image, labels: { ...labels }, id };
    this.last = at;
    return id;
  }

  /** Inserts the streams handed out since the last call (inside the transaction that appends their lines). */
  async insertFresh(conn: DuckDBConnection): Promise<void> {
    const fresh = this.fresh;
    this.fresh = [];
    // A few hundred rows a statement: labels that change line by line can make thousands a batch.
    for (let from = 0; from < fresh.length; from += 500) {
      const rows = fresh.slice(from, from + 500);
      const values = rows.map((_, i) => `(CAST($${i * 7 + 1} AS BIGINT), $${i * 7 + 2}, $${i * 7 + 3}, $${i * 7 + 4}, $${i * 7 + 5}, CAST($${i * 7 + 6} AS JSON), make_timestamp(CAST($${i * 7 + 7} AS BIGINT)))`);
      const params = rows.flatMap((s) => [s.id, s.source, s.container_name ?? null, s.container_id ?? null, s.image ?? null, s.labels, s.firstSeenUs]);
      await conn.run(`INSERT INTO opshub_log_streams VALUES ${values.join(', ')}`, params);
    }
  }
}

function keyOf(source: string, name: string | undefined, containerId: string | undefined, image: string | undefined, labels: string): string {
  return JSON.stringify([source, name ?? null, containerId ?? null, image ?? null, labels]);
}

/** Shallow equality of two label sets (inputs often build a fresh but equal object per line). */
function sameLabels(a: Record<string, string>, b: Record<string, string> | undefined): boolean {
  if (!b) return false;
  let n = 0;
  for (const k in a) {
    const v = a[k];
    // An undefined value is not a missing key: the count below would take {b: undefined} for {a: '1'}.
    if (v !== b[k] || (v === undefined && !Object.hasOwn(b, k))) return false;
    n++;
  }
  for (const _ in b) n--;
  return n === 0;
}
