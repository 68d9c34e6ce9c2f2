// A stand-in for Loki's push endpoint on 127.0.0.1, for tests and bench/loki_push.ts.
// It decodes the real wire formats independently of the plugin's encoder:
// snappy (block format, via the snappyjs package) + logproto.PushRequest
// protobuf (a small reader written against grafana/loki pkg/push/push.proto),
// and the JSON body, plain or gzip. Tests script its answers: 429 with
// Retry-After, 5xx, 400, 413 over a size, or a dropped connection.

import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { snappyUncompress } from '../../plugins/common/snappy.ts';

export interface ReceivedEntry {
  ts: bigint;
  line: string;
  metadata: Record<string, string>;
}

export interface ReceivedStream {
  labels: Record<string, string>;
  /** The labels as sent: the selector string (protobuf) or the JSON object re-serialised. */
  labelsText: string;
  entries: ReceivedEntry[];
}

export interface ReceivedPush {
  encoding: 'protobuf' | 'json';
  gzip: boolean;
  /** Body bytes on the wire. */
  bytes: number;
  headers: http.IncomingHttpHeaders;
  streams: ReceivedStream[];
}

/** What the receiver answers to one request. `reset` drops the connection without an answer. */
export type Answer = { status: number; headers?: Record<string, string>; body?: string } | 'reset';

// --- protobuf reading ---------------------------------------------------------

type Field = { no: number; wire: number; int?: bigint; bytes?: Buffer };

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++]!;
    result |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) return [result, pos];
    shift += 7n;
    if (shift > 63n) throw new Error('varint too long');
  }
}

/** Splits one protobuf message into its fields (wire types 0, 1, 2, 5). */
export function protoFields(buf: Buffer): Field[] {
  const fields: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [key, p] = readVarint(buf, pos);
    pos = p;
    const no = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [v, q] = readVarint(buf, pos);
      fields.push({ no, wire, int: v });
      pos = q;
    } else if (wire === 2) {
      const [len, q] = readVarint(buf, pos);
      const end = q + Number(len);
      if (end > buf.length) throw new Error(`field ${no}: length ${len} runs past the end`);
      fields.push({ no, wire, bytes: buf.subarray(q, end) });
      pos = end;
    } else if (wire === 1) {
      fields.push({ no, wire, bytes: buf.subarray(pos, pos + 8) });
      pos += 8;
    } else if (wire === 5) {
      fields.push({ no, wire, bytes: buf.subarray(pos, pos + 4) });
      pos += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
  return fields;
}

/** Parses `{a="x", b="y"}` (Go-quoted values). */
export function parseLabelsText(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const body = text.trim();
  if (!body.startsWith('{') || !body.endsWith('}')) throw new Error(`not a label selector: ${text}`);
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*("(?:[^"\\]|\\.)*")\s*(,|$)/y;
  const inner = body.slice(1, -1);
  re.lastIndex = 0;
  while (re.lastIndex < inner.length) {
    const m = re.exec(inner);
    if (!m) throw new Error(`bad label selector: ${text}`);
    labels[m[1]!] = JSON.parse(m[2]!) as string;
  }
  return labels;
}

/** Decodes an (uncompressed) logproto.PushRequest. */
export function decodePushRequest(buf: Buffer): ReceivedStream[] {
  const streams: ReceivedStream[] = [];
  for (const f of protoFields(buf)) {
    if (f.no !== 1 || f.wire !== 2) throw new Error(`PushRequest: unexpected field ${f.no}/${f.wire}`);
    let labelsText = '';
    const entries: ReceivedEntry[] = [];
    for (const sf of protoFields(f.bytes!)) {
      if (sf.no === 1 && sf.wire === 2) labelsText = sf.bytes!.toString('utf8');
      else if (sf.no === 2 && sf.wire === 2) {
        const entry: ReceivedEntry = { ts: 0n, line: '', metadata: {} };
        for (const ef of protoFields(sf.bytes!)) {
          if (ef.no === 1 && ef.wire === 2) {
            let seconds = 0n;
            let nanos = 0n;
            for (const tf of protoFields(ef.bytes!)) {
              if (tf.no === 1 && tf.wire === 0) seconds = BigInt.asIntN(64, tf.int!);
              else if (tf.no === 2 && tf.wire === 0) nanos = BigInt.asIntN(32, tf.int!);
              else throw new Error(`Timestamp: unexpected field ${tf.no}/${tf.wire}`);
            }
            entry.ts = seconds * 1_000_000_000n + nanos;
          } else if (ef.no === 2 && ef.wire === 2) entry.line = ef.bytes!.toString('utf8');
          else if (ef.no === 3 && ef.wire === 2) {
            let name = '';
            let value = '';
            for (const pf of protoFields(ef.bytes!)) {
              if (pf.no === 1 && pf.wire === 2) name = pf.bytes!.toString('utf8');
              else if (pf.no === 2 && pf.wire === 2) value = pf.bytes!.toString('utf8');
              else throw new Error(`LabelPairAdapter: unexpected field ${pf.no}/${pf.wire}`);
            }
            entry.metadata[name] = value;
          } else throw new Error(`EntryAdapter: unexpected field ${ef.no}/${ef.wire}`);
        }
        entries.push(entry);
      } else if (sf.no === 3 && sf.wire === 0) {
        /* hash: Loki-internal */
      } else throw new Error(`StreamAdapter: unexpected field ${sf.no}/${sf.wire}`);
    }
    streams.push({ labels: parseLabelsText(labelsText), labelsText, entries });
  }
  return streams;
}

/** Decodes the JSON push body. */
export function decodeJsonPush(text: string): ReceivedStream[] {
  const doc = JSON.parse(text) as { streams: Array<{ stream: Record<string, string>; values: Array<[string, string, Record<string, string>?]> }> };
  if (!Array.isArray(doc.streams)) throw new Error('JSON push: no streams array');
  return doc.streams.map((s) => {
    for (const v of s.values) if (typeof v[0] !== 'string' || !/^\d+$/.test(v[0])) throw new Error(`JSON push: timestamp must be a string of ns, got ${JSON.stringify(v[0])}`);
    return {
      labels: s.stream,
      labelsText: JSON.stringify(s.stream),
      entries: s.values.map(([ts, line, metadata]) => ({ ts: BigInt(ts), line, metadata: metadata ?? {} })),
    };
  });
}

// --- the server ---------------------------------------------------------------

export class LokiReceiver {
  /** Pushes answered 2xx, in arrival order. */
  readonly pushes: ReceivedPush[] = [];
  /** Every request's answer status (0 for a dropped connection). */
  readonly answers: number[] = [];
  /** Requests whose body could not be decoded (a test failure). */
  readonly decodeErrors: string[] = [];
  /** Answers to give, in order, before the default; or a function deciding each one. */
  script: Answer[] = [];
  decide?: (push: ReceivedPush) => Answer | undefined;
  /** Answer 413 to bodies larger than this. */
  maxBodyBytes = Infinity;
  /** Keep decoded pushes. */
  keep = true;
  /** Decode bodies (false in the benchmark, so that only the sender is measured: bodies are then counted, not checked). */
  decode = true;
  /** Requests answered 2xx. */
  accepted = 0;
  /** Total bytes of accepted bodies. */
  bytesAccepted = 0;
  /** Entries accepted. */
  entriesAccepted = 0;
  private server: http.Server;
  private constructor(private tls?: https.ServerOptions) {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.handle(req, res);
    this.server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    this.server.keepAliveTimeout = 30_000;
  }

  /** Starts on 127.0.0.1 with a free port; with `tls`, over https. */
  static async start(tls?: https.ServerOptions): Promise<LokiReceiver> {
    const r = new LokiReceiver(tls);
    await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
    return r;
  }

  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  }

  /** Accepted entries of every push, flattened in arrival order (with their stream labels). */
  entries(): Array<ReceivedEntry & { labels: Record<string, string> }> {
    return this.pushes.flatMap((p) => p.streams.flatMap((s) => s.entries.map((e) => ({ ...e, labels: s.labels }))));
  }

  lines(): string[] {
    return this.entries().map((e) => e.line);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = (a: Answer) => {
        if (a === 'reset') {
          this.answers.push(0);
          req.socket.destroy();
          return;
        }
        this.answers.push(a.status);
        res.writeHead(a.status, { 'content-type': 'text/plain', ...(a.headers ?? {}) });
        res.end(a.body ?? '');
      };
      if (req.method !== 'POST' || req.url !== '/loki/api/v1/push') return answer({ status: 404, body: `no route ${req.method} ${req.url}` });
      const raw = Buffer.concat(chunks);
      const scripted = this.script.shift();
      if (scripted === 'reset') return answer(scripted);
      if (raw.length > this.maxBodyBytes) return answer({ status: 413, body: `request body too large: ${raw.length} > ${this.maxBodyBytes}` });
      if (!this.decode) {
        const a = scripted ?? { status: 204 };
        if (a.status < 300) {
          this.accepted++;
          this.bytesAccepted += raw.length;
        }
        return answer(a);
      }
      let push: ReceivedPush;
      try {
        push = this.decodeBody(req, raw);
      } catch (err) {
        this.decodeErrors.push(String(err));
        return answer({ status: 400, body: `cannot decode: ${String(err)}` });
      }
      const a = scripted ?? this.decide?.(push) ?? { status: 204 };
      if (a !== 'reset' && a.status >= 200 && a.status < 300) {
        this.accepted++;
        this.bytesAccepted += push.bytes;
        for (const s of push.streams) this.entriesAccepted += s.entries.length;
        if (this.keep) this.pushes.push(push);
      }
      answer(a);
    });
  }

  private decodeBody(req: http.IncomingMessage, raw: Buffer): ReceivedPush {
    const type = req.headers['content-type'] ?? '';
    const gzip = req.headers['content-encoding'] === 'gzip';
    if (type.startsWith('application/x-protobuf')) {
      if (req.headers['content-encoding']) throw new Error(`protobuf with content-encoding ${req.headers['content-encoding']}`);
      const plain = snappyUncompress(raw);
      return { encoding: 'protobuf', gzip: false, bytes: raw.length, headers: req.headers, streams: decodePushRequest(plain) };
    }
    if (type.startsWith('application/json')) {
      const text = (gzip ? gunzipSync(raw) : raw).toString('utf8');
      return { encoding: 'json', gzip, bytes: raw.length, headers: req.headers, streams: decodeJsonPush(text) };
    }
    throw new Error(`unexpected content-type "${type}"`);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
