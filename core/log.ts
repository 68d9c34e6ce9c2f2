// The agent's own diagnostics, on stderr. `once` keeps a failing plugin from
// writing a line per interval: the first occurrence is logged, the rest counted.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface LogRecord {
  time: string;
  level: LogLevel;
  scope: string;
  message: string;
}

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Logs only the first time `key` is seen (until `clear(key)`), e.g. "engine down". */
  once(key: string, level: LogLevel, message: string): void;
  /** Forgets a `once` key, so the next occurrence is logged again (e.g. after recovery). */
  clear(key: string): void;
  child(scope: string): Logger;
}

export type LogSink = (record: LogRecord) => void;

export const stderrSink: LogSink = (r) => {
  process.stderr.write(`${r.time} ${r.level.toUpperCase().padEnd(5)} ${r.scope ? `[${r.scope}] ` : ''}${r.message}\n`);
};

export function createLogger(opts: { level?: LogLevel; sink?: LogSink; scope?: string } = {}): Logger {
  const min = RANK[opts.level ?? 'info'];
  const sink = opts.sink ?? stderrSink;
  const seen = new Set<string>();
  const make = (scope: string): Logger => {
    const write = (level: LogLevel, message: string) => {
      if (RANK[level] >= min) sink({ time: new Date().toISOString(), level, scope, message });
    };
    return {
      debug: (m) => write('debug', m),
      info: (m) => write('info', m),
      warn: (m) => write('warn', m),
      error: (m) => write('error', m),
      once(key, level, message) {
        const k = `${scope}\u0000${key}`;
        if (seen.has(k)) return;
        seen.add(k);
        write(level, message);
      },
      clear(key) {
        seen.delete(`${scope}\u0000${key}`);
      },
      child: (s) => make(scope ? `${scope}.${s}` : s),
    };
  };
  return make(opts.scope ?? '');
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
