// Hand-written protobuf encoding of the remote-write 1.0 `prometheus.WriteRequest`
// (prompb/remote.proto, prompb/types.proto):
//
//   WriteRequest   { repeated TimeSeries timeseries = 1; repeated MetricMetadata metadata = 3; }
//   TimeSeries     { repeated Label labels = 1; repeated Sample samples = 2; }
//   Label          { string name = 1; string value = 2; }
//   Sample         { double value = 1; int64 timestamp = 2; }   // timestamp in ms
//   MetricMetadata { MetricType type = 1; string metric_family_name = 2; string help = 4; string unit = 5; }
//
// Two passes: sizes first, then one exact-size buffer is filled.

import type { MetricType } from '../../../core/events.ts';
import type { Series } from './series.ts';

/** MetricMetadata.MetricType values. */
export const METADATA_TYPE: Record<MetricType, number> = { untyped: 0, counter: 1, gauge: 2 };

export interface Metadata {
  name: string;
  type: MetricType;
  help?: string;
  unit?: string;
}

// Field keys: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited).
const KEY_TIMESERIES = 0x0a; // 1, LEN
const KEY_METADATA = 0x1a; // 3, LEN
const KEY_LABELS = 0x0a; // 1, LEN
const KEY_SAMPLES = 0x12; // 2, LEN
const KEY_NAME = 0x0a; // 1, LEN
const KEY_VALUE_STR = 0x12; // 2, LEN
const KEY_VALUE_DOUBLE = 0x09; // 1, I64
const KEY_TIMESTAMP = 0x10; // 2, VARINT
const KEY_META_TYPE = 0x08; // 1, VARINT
const KEY_META_FAMILY = 0x12; // 2, LEN
const KEY_META_HELP = 0x22; // 4, LEN
const KEY_META_UNIT = 0x2a; // 5, LEN

function varintSize(v: number): number {
  if (v < 0) return 10; // negative int64: two's complement, ten bytes
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function writeVarint(buf: Buffer, pos: number, v: number): number {
  if (v < 0) {
    let u = BigInt.asUintN(64, BigInt(v));
    while (u >= 128n) {
      buf[pos++] = Number(u & 127n) | 128;
      u >>= 7n;
    }
    buf[pos++] = Number(u);
    return pos;
  }
  while (v >= 128) {
    buf[pos++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  return pos;
}

function sampleSize(timestampMs: number): number {
  // value (key + 8 bytes) + timestamp (key + varint); omitted when zero (proto3 defaults)
  return 9 + (timestampMs === 0 ? 0 : 1 + varintSize(timestampMs));
}

function stringFieldSize(bytes: number): number {
  return bytes === 0 ? 0 : 1 + varintSize(bytes) + bytes;
}

function lenFieldSize(inner: number): number {
  return 1 + varintSize(inner) + inner;
}

/** Encodes a WriteRequest: the series (labels already sorted, samples in order) and optional metadata. */
export function encodeWriteRequest(series: Series[], metadata: Metadata[] = []): Buffer {
  // Pass 1: sizes. String byte lengths are kept in the order pass 2 writes them.
  const strLens: number[] = [];
  const seriesSizes: number[] = [];
  const labelSizes: number[] = [];
  let total = 0;
  for (const s of series) {
    let size = 0;
    for (const [name, value] of s.labels) {
      const n = Buffer.byteLength(name);
      const v = Buffer.byteLength(value);
      strLens.push(n, v);
      const inner = stringFieldSize(n) + stringFieldSize(v);
      labelSizes.push(inner);
      size += lenFieldSize(inner);
    }
    for (const sample of s.samples) size += lenFieldSize(sampleSize(sample.timestampMs));
    seriesSizes.push(size);
    total += lenFieldSize(size);
  }
  const metaSizes: number[] = [];
  for (const m of metadata) {
    const f = Buffer.byteLength(m.name);
    const h = Buffer.byteLength(m.help ?? '');
    const u = Buffer.byteLength(m.unit ?? '');
    strLens.push(f, h, u);
    const type = METADATA_TYPE[m.type];
    const inner = (type === 0 ? 0 : 2) + stringFieldSize(f) + stringFieldSize(h) + stringFieldSize(u);
    metaSizes.push(inner);
    total += lenFieldSize(inner);
  }

  // Pass 2: write.
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  let si = 0;
  let li = 0;
  const writeString = (key: number, text: string): void => {
    const len = strLens[si++]!;
    if (len === 0) return;
    buf[pos++] = key;
    pos = writeVarint(buf, pos, len);
    pos += buf.write(text, pos, len, 'utf8');
  };
  for (let i = 0; i < series.length; i++) {
    const s = series[i]!;
    buf[pos++] = KEY_TIMESERIES;
    pos = writeVarint(buf, pos, seriesSizes[i]!);
    for (const [name, value] of s.labels) {
      buf[pos++] = KEY_LABELS;
      pos = writeVarint(buf, pos, labelSizes[li++]!);
      writeString(KEY_NAME, name);
      writeString(KEY_VALUE_STR, value);
    }
    for (const sample of s.samples) {
      buf[pos++] = KEY_SAMPLES;
      buf[pos++] = sampleSize(sample.timestampMs); // at most 20: a one-byte varint
      buf[pos++] = KEY_VALUE_DOUBLE;
      pos = buf.writeDoubleLE(sample.value, pos);
      if (sample.timestampMs !== 0) {
        buf[pos++] = KEY_TIMESTAMP;
        pos = writeVarint(buf, pos, sample.timestampMs);
      }
    }
  }
  for (let i = 0; i < metadata.length; i++) {
    const m = metadata[i]!;
    buf[pos++] = KEY_METADATA;
    pos = writeVarint(buf, pos, metaSizes[i]!);
    const type = METADATA_TYPE[m.type];
    if (type !== 0) {
      buf[pos++] = KEY_META_TYPE;
      buf[pos++] = type;
    }
    writeString(KEY_META_FAMILY, m.name);
    writeString(KEY_META_HELP, m.help ?? '');
    writeString(KEY_META_UNIT, m.unit ?? '');
  }
  if (pos !== total) throw new Error(`remote-write encoding: wrote ${pos} of ${total} bytes`);
  return buf;
}
