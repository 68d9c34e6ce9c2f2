// The two bodies Loki's push API accepts.
//
// protobuf (grafana/loki pkg/push/push.proto, package logproto), snappy-compressed:
//   PushRequest   { repeated StreamAdapter streams = 1; }
//   StreamAdapter { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
//   EntryAdapter  { google.protobuf.Timestamp timestamp = 1; string line = 2;
//                   repeated LabelPairAdapter structuredMetadata = 3; }
//   Timestamp     { int64 seconds = 1; int32 nanos = 2; }
//   LabelPairAdapter { string name = 1; string value = 2; }
// `hash` is Loki-internal and left out. Encoded in two passes: sizes first
// (so every length prefix is known), then one write into one buffer.
//
// JSON: {"streams":[{"stream":{"k":"v"},"values":[["<ns>","<line>",{"meta":"v"}]]}]}

export interface LokiEntry {
  /** Nanoseconds since the epoch. */
  ts: bigint;
  line: string;
  /** Structured metadata pairs (name, value). */
  metadata?: Array<[string, string]>;
}

export interface LokiStream {
  /** Label pairs, sorted by name. */
  labels: Array<[string, string]>;
  entries: LokiEntry[];
}

const NS_PER_S = 1_000_000_000n;

/** `{a="x", b="y"}`: the selector form StreamAdapter.labels carries (values quoted Go-style). */
export function labelsString(labels: Array<[string, string]>): string {
  return `{${labels.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}}`;
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Size of a length-delimited field (tag byte + length + body). */
function fieldSize(bodyLength: number): number {
  return 1 + varintSize(bodyLength) + bodyLength;
}

const SHORT = 128;

/** UTF-8 byte length; short ASCII strings are counted in JS. */
function utf8Length(s: string): number {
  const n = s.length;
  if (n > SHORT) return Buffer.byteLength(s);
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s);
  return n;
}

class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  byte(b: number): void {
    this.buf[this.pos++] = b;
  }
  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n & 0x7f) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }
  /** Tag + length + UTF-8 bytes of a string whose byte length is known. */
  string(tag: number, s: string, bytes: number): void {
    this.byte(tag);
    this.varint(bytes);
    if (bytes === s.length && bytes <= SHORT) {
      // Short ASCII (most names, values and many lines): a loop beats a call into C++.
      const buf = this.buf;
      let p = this.pos;
      for (let i = 0; i < bytes; i++) buf[p++] = s.charCodeAt(i);
      this.pos = p;
    } else if (bytes) this.pos += this.buf.write(s, this.pos, bytes, 'utf8');
  }
}

// Field tags: (field number << 3) | wire type (2 = length-delimited, 0 = varint).
const TAG_STREAMS = 0x0a;
const TAG_LABELS = 0x0a;
const TAG_ENTRIES = 0x12;
const TAG_TIMESTAMP = 0x0a;
const TAG_LINE = 0x12;
const TAG_METADATA = 0x1a;
const TAG_PAIR_NAME = 0x0a;
const TAG_PAIR_VALUE = 0x12;
const TAG_SECONDS = 0x08;
const TAG_NANOS = 0x10;

function splitTs(ts: bigint): [number, number] {
  if (ts <= 0n) return [0, 0];
  const sec = ts / NS_PER_S;
  return [Number(sec), Number(ts - sec * NS_PER_S)];
}

/** Encodes a logproto.PushRequest (uncompressed). */
export function encodePushRequest(streams: LokiStream[]): Buffer {
  // Pass 1: sizes. String byte lengths are remembered in visiting order for pass 2.
  const strBytes: number[] = [];
  const secs: number[] = [];
  const nanos: number[] = [];
  const tsSizes: number[] = [];
  const entrySizes: number[] = [];
  const pairSizes: number[] = [];
  const streamSizes: number[] = [];
  const labelTexts: string[] = [];
  let total = 0;
  for (const stream of streams) {
    const labels = labelsString(stream.labels);
    labelTexts.push(labels);
    const lb = utf8Length(labels);
    strBytes.push(lb);
    let size = fieldSize(lb);
    for (const e of stream.entries) {
      const [sec, ns] = splitTs(e.ts);
      const tsBody = (sec ? 1 + varintSize(sec) : 0) + (ns ? 1 + varintSize(ns) : 0);
      secs.push(sec);
      nanos.push(ns);
      tsSizes.push(tsBody);
      const lineBytes = utf8Length(e.line);
      strBytes.push(lineBytes);
      let entry = fieldSize(tsBody) + fieldSize(lineBytes);
      for (const [name, value] of e.metadata ?? []) {
        const nb = utf8Length(name);
        const vb = utf8Length(value);
        strBytes.push(nb, vb);
        const pair = fieldSize(nb) + fieldSize(vb);
        pairSizes.push(pair);
        entry += fieldSize(pair);
      }
      entrySizes.push(entry);
      size += fieldSize(entry);
    }
    streamSizes.push(size);
    total += fieldSize(size);
  }

  // Pass 2: write.
  const w = new Writer(Buffer.allocUnsafe(total));
  let si = 0;
  let ei = 0;
  let pi = 0;
  streams.forEach((stream, s) => {
    w.byte(TAG_STREAMS);
    w.varint(streamSizes[s]!);
    w.string(TAG_LABELS, labelTexts[s]!, strBytes[si++]!);
    for (const e of stream.entries) {
      w.byte(TAG_ENTRIES);
      w.varint(entrySizes[ei]!);
      const sec = secs[ei]!;
      const ns = nanos[ei]!;
      w.byte(TAG_TIMESTAMP);
      w.varint(tsSizes[ei++]!);
      if (sec) {
        w.byte(TAG_SECONDS);
        w.varint(sec);
      }
      if (ns) {
        w.byte(TAG_NANOS);
        w.varint(ns);
      }
      w.string(TAG_LINE, e.line, strBytes[si++]!);
      for (const [name, value] of e.metadata ?? []) {
        w.byte(TAG_METADATA);
        w.varint(pairSizes[pi++]!);
        w.string(TAG_PAIR_NAME, name, strBytes[si++]!);
        w.string(TAG_PAIR_VALUE, value, strBytes[si++]!);
      }
    }
  });
  if (w.pos !== total) throw new Error(`protobuf size mismatch: wrote ${w.pos} of ${total} bytes`);
  return w.buf;
}

/** Encodes the JSON push body. */
export function encodeJsonPush(streams: LokiStream[]): string {
  return JSON.stringify({
    streams: streams.map((s) => ({
      stream: Object.fromEntries(s.labels),
      values: s.entries.map((e) =>
        e.metadata?.length ? [e.ts.toString(), e.line, Object.fromEntries(e.metadata)] : [e.ts.toString(), e.line],
      ),
    })),
  });
}
