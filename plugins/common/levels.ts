// Level words as logging libraries write them, mapped to OpsHub's levels.
// Shared by processors.regex_classifier and processors.json_parse.

import { LEVELS, type Level } from '../../core/events.ts';

// A Map, not an object: a word from a log line ("constructor", "toString") must not find Object.prototype's members.
const WORDS = new Map<string, Level>(Object.entries({
  trace: 'trace',
  debug: 'debug', dbg: 'debug', debug1: 'debug', debug2: 'debug', debug3: 'debug', debug4: 'debug', debug5: 'debug', verbose: 'debug', fine: 'debug',
  info: 'info', information: 'info', informational: 'info', notice: 'info', log: 'info', i: 'info',
  success: 'success', ok: 'success',
  warn: 'warning', warni: 'warning', warnin: 'warning', warning: 'warning', w: 'warning',
  error: 'error', err: 'error', eror: 'error', severe: 'error', e: 'error',
  critical: 'critical', crit: 'critical', fatal: 'critical', panic: 'critical', emerg: 'critical', emergency: 'critical', alert: 'critical', f: 'critical',
} satisfies Record<string, Level>));

// The upper-case spellings too, so the common "INFO" / "ERROR" need no lower-casing.
for (const [k, v] of [...WORDS]) WORDS.set(k.toUpperCase(), v);

/** OpsHub level for a level word in any case ("WARN", "Warning", "err", "FATAL"); undefined when unknown. */
export function levelFromWord(word: string): Level | undefined {
  return WORDS.get(word) ?? WORDS.get(word.toLowerCase());
}

/** pino / bunyan numeric levels (10 trace … 60 fatal). */
export function levelFromNumber(n: number): Level | undefined {
  if (!Number.isFinite(n)) return undefined;
  if (n >= 60) return 'critical';
  if (n >= 50) return 'error';
  if (n >= 40) return 'warning';
  if (n >= 30) return 'info';
  if (n >= 20) return 'debug';
  if (n >= 10) return 'trace';
  return undefined;
}

const RANK: Record<string, number> = Object.fromEntries(LEVELS.map((l, i) => [l, i]));

/** The more severe of two levels. */
export function maxLevel(a: Level, b: Level): Level {
  return (RANK[b] ?? 0) > (RANK[a] ?? 0) ? b : a;
}
