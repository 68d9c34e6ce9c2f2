// Durations ("500ms", "10s", "1m30s") and sizes ("16KiB", "10MB", 1048576) as
// written in pipeline YAML.

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_RE = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/g;

export function isDuration(text: string): boolean {
  return text === '0' || DURATION_RE.test(text);
}

/** Milliseconds in a duration string; throws on a malformed one. */
export function parseDuration(text: string): number {
  if (text === '0') return 0;
  if (!DURATION_RE.test(text)) throw new Error(`must be a duration like "10s", got "${text}"`);
  let total = 0;
  for (const m of text.matchAll(DURATION_PART)) total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
  return total;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3,
};
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?$/i;

export function isSize(text: string): boolean {
  return SIZE_RE.test(text);
}

/** Bytes in a size (a number of bytes, or a string like "16KiB"). */
export function parseSize(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = SIZE_RE.exec(value.trim());
  if (!m) throw new Error(`must be a size like "10MiB", got "${value}"`);
  return Math.round(Number(m[1]) * SIZE_UNITS[(m[2] ?? '').toLowerCase()]!);
}

/** Human form of a byte count, e.g. 1288490188 → "1.2 GB" (decimal units, as `docker stats`). */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let i = 0;
  while (Math.abs(value) >= 1000 && i < units.length - 1) {
    value /= 1000;
    i++;
  }
  return `${i === 0 ? value : value.toFixed(1)} ${units[i]}`;
}
