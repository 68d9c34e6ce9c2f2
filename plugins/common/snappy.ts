// Snappy block compression (the raw format, not the framed/stream one), as
// Prometheus remote write and Loki's push API expect. Backed by `snappyjs`, a
// pure-JavaScript implementation: no native binary to match the platform of a
// Docker image or an ARM host, and fast enough for request bodies of a few
// hundred KiB (see bench/prometheus_remote_write.ts).

import { createRequire } from 'node:module';

interface SnappyJs {
  compress(input: Buffer): Buffer;
  uncompress(input: Buffer, maxLength?: number): Buffer;
}

const snappyjs = createRequire(import.meta.url)('snappyjs') as SnappyJs;

/** Compresses `input` into one snappy block. */
export function snappyCompress(input: Buffer): Buffer {
  return snappyjs.compress(input);
}

/** Decompresses one snappy block; throws when it is invalid or would exceed `maxLength` bytes. */
export function snappyUncompress(input: Buffer, maxLength?: number): Buffer {
  return snappyjs.uncompress(input, maxLength);
}
