// The built-in level and category rules of processors.regex_classifier,
// tuned on real Open WebUI (loguru + uvicorn), Ollama (Go slog + GIN),
// nginx, Postgres and Keycloak lines (see testdata/). Every regex is compiled
// once; cheap substring checks run first so most lines see few regexes.

import type { Level } from '../../../core/events.ts';
import { levelFromNumber, levelFromWord } from '../../common/levels.ts';

/** How much of a line's start is searched for a level word (timestamps, pids and logger names come first). */
const HEAD = 160;

// JSON: "level":"warn", "levelname":"ERROR", "severity":"INFO", pino's "level":30.
const JSON_LEVEL = /"(?:level|levelname|severity|lvl|loglevel|log\.level|level_name)"\s*:\s*(?:"([A-Za-z]+\d?)"|(\d{1,2})\b)/;
// logfmt / Go slog / Ollama: level=INFO, lvl=warn, severity="error".
const KV_LEVEL = /(?:^|[\s,{])(?:level|lvl|severity|loglevel)=["']?([A-Za-z]+\d?)\b/;
// A level word standing as a token near the start: "INFO:     ...", "| WARNING  |", "UTC [68] FATAL:  ",
// "2024-... WARN  [org.keycloak]", "[INFO]", "- ERROR -", nginx "[error]", Open WebUI's old "WARNI [".
const TOKEN_LEVEL =
  /(?:^|[\s|\[(])(TRACE|DEBUG[1-5]?|INFO|NOTICE|LOG|SUCCESS|WARNI?N?G?|ERROR|ERR|CRITICAL|CRIT|FATAL|PANIC|SEVERE|EMERG|ALERT)(?=$|[\s\]|):])|\[(trace|debug|info|notice|warn|warning|error|crit|critical|alert|emerg|fatal)\]/;
// glog / klog: E0501 12:00:00.123456 ...
const GLOG_LEVEL = /^([IWEF])\d{4} \d\d:\d\d:\d\d/;

// HTTP access logs: nginx / uvicorn / Open WebUI `"GET /x HTTP/1.1" 500`, GIN `| 500 |`, structured `status=500`.
const ACCESS_STATUS = /HTTP\/[\d.]+" (\d{3})\b/;
const GIN_STATUS = /^\[GIN\][^|]*\|\s*(\d{3})\s*\|/;
const KV_STATUS = /(?:^|[\s,{])"?(?:status|status_code|statusCode)"?\s*[=:]\s*"?([1-5]\d\d)\b/;

// Keywords, used when the line names no level. They run on the lower-cased
// line (computed once per line), which lets the regex engine scan for
// literal prefixes instead of trying every case at every position.
const KEYWORD_ANY = /panic|fatal|segmentation|core dumped|traceback|error|exception|fail|unable to|cannot|refused|warn|deprecat|succe/;
const KEYWORD_CRITICAL = /panic:|\bfatal\b|segmentation fault|core dumped/;
const KEYWORD_ERROR = /traceback \(most recent call last\)|\w*(?:error|exception)\b|\b(?:fail(?:ed|ure|s)|unable to|cannot|refused)\b/;
const KEYWORD_WARNING = /\b(?:warn|warning|deprecated|deprecation)\b/;
const KEYWORD_SUCCESS = /\bsucce(?:ss|ssful|ssfully|eded)\b/;

/** The level a line states, if any. */
export function explicitLevel(msg: string): Level | undefined {
  const first = msg.charCodeAt(0);
  if (first === 123 /* { */) {
    const m = JSON_LEVEL.exec(msg);
    if (m) return m[1] !== undefined ? levelFromWord(m[1]) : levelFromNumber(Number(m[2]));
  }
  // One search for '=' spares most lines the three below.
  if (msg.includes('=') && (msg.includes('level=') || msg.includes('lvl=') || msg.includes('severity='))) {
    const m = KV_LEVEL.exec(msg);
    if (m) {
      const l = levelFromWord(m[1]!);
      if (l) return l;
    }
  }
  if (first === 91 /* [ */ && msg.startsWith('[GIN-debug]')) return 'debug';
  const head = msg.length > HEAD ? msg.slice(0, HEAD) : msg;
  const t = TOKEN_LEVEL.exec(head);
  if (t) {
    const l = levelFromWord((t[1] ?? t[2])!);
    if (l) return l;
  }
  if (first >= 69 && first <= 87) {
    const g = GLOG_LEVEL.exec(head);
    if (g) return levelFromWord(g[1]!);
  }
  return undefined;
}

/** The HTTP status code of an access-log line (nginx, uvicorn, GIN, `status=`), or 0. */
export function httpStatusOf(msg: string): number {
  let m: RegExpExecArray | null = null;
  if (msg.startsWith('[GIN]')) m = GIN_STATUS.exec(msg);
  else if (msg.includes('HTTP/')) m = ACCESS_STATUS.exec(msg);
  if (!m && msg.includes('tatus')) m = KV_STATUS.exec(msg);
  return m ? Number(m[1]) : 0;
}

/** The level an HTTP status implies: 5xx error, 4xx warning, otherwise none. */
export function statusLevel(code: number): Level | undefined {
  if (code >= 500) return 'error';
  if (code >= 400) return 'warning';
  return undefined;
}

/** The most severe keyword level in the (lower-cased) line: critical > error > warning > success. */
export function keywordLevel(lower: string): Level | undefined {
  if (!KEYWORD_ANY.test(lower)) return undefined;
  if (KEYWORD_CRITICAL.test(lower)) return 'critical';
  if (KEYWORD_ERROR.test(lower)) return 'error';
  if (KEYWORD_WARNING.test(lower)) return 'warning';
  if (KEYWORD_SUCCESS.test(lower)) return 'success';
  return undefined;
}

export function successKeyword(lower: string): boolean {
  return lower.includes('succe') && KEYWORD_SUCCESS.test(lower);
}

export interface CategoryRule {
  name: string;
  /** The whole rule: what `mode: all` runs, and what the scanner must agree with. */
  regex: RegExp;
  /** Run on the line as written instead of lower-cased (rules that need upper case, e.g. HTTP methods). */
  raw?: boolean;
  /** Words and phrases matched between word boundaries (regex fragments, lower case). */
  words?: string[];
  /** The rule's other alternatives (regex fragments, lower case). */
  other?: string[];
}

/** A lower-case rule: `\b(?:word|…)\b` or any of `other`. */
function wordRule(name: string, words: string[], other: string[] = []): CategoryRule {
  return { name, words, other, regex: new RegExp([`\\b(?:${words.join('|')})\\b`, ...other].join('|')) };
}

/**
 * Built-in categories, first match wins (in `first` mode): the more specific
 * ones come first. Written in lower case: they run on the lower-cased line.
 * Each word must begin with three literal characters (the scanner indexes
 * words by them and refuses a rule set where one does not).
 */
export const DEFAULT_CATEGORIES: CategoryRule[] = [
  wordRule(
    'security',
    ['forbidden', 'permission denied', 'access denied', 'csrf', 'xss', 'sql injection', 'brute[- ]?force', 'intrusion', 'suspicious', 'blocked ip', 'banned', 'invalid (?:api[- ]?key|signature)', 'rate[- ]limit(?:ed|ing)?', 'too many requests'],
    ['http\\/[\\d.]+" (?:403|429)\\b', '^\\[gin\\][^|]*\\|\\s*(?:403|429)\\s*\\|'],
  ),
  wordRule(
    'auth',
    ['auth\\w*', 'unauthori[sz]ed', 'log(?:ged)?[ _-]?in', 'log(?:ged)?[ _-]?out', 'sign(?:ed)?[ _-]?(?:in|up|out)', 'signin', 'signup', 'password', 'credentials?', 'oauth2?', 'oidc', 'openid', 'jwt', 'sso', 'ldap', 'api[_ -]?key', 'access token', 'session (?:created|expired|started|ended|invalid)', 'login_error'],
    ['http\\/[\\d.]+" 401\\b', '^\\[gin\\][^|]*\\|\\s*401\\s*\\|'],
  ),
  wordRule('model_load', [
    'load(?:ed|ing)? (?:the )?model',
    'model (?:load(?:ed|ing)?|unload(?:ed|ing)?)',
    'llama_model_load(?:er)?',
    'llm_load_\\w+',
    'llama runner (?:started|starting)',
    'starting llama server',
    'offload(?:ed|ing)? \\d+',
    'pulling (?:manifest|model)',
    'embedding model',
    'loading weights',
    'unload(?:ing)? model',
    'model weights',
  ]),
  wordRule('gpu', ['gpus?', 'cuda\\w*', 'cudnn', 'cublas', 'nvidia', 'nvml', 'vram', 'rocm', 'tensor cores?', 'compute capability']),
  {
    name: 'api_request',
    raw: true,
    regex: /"(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) \S+ HTTP\/[\d.]+"|^\[GIN\] |(?:^|\s)(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) \/\S*/,
  },
  wordRule(
    'database',
    ['database', 'postgres(?:ql)?', 'psql', 'psycopg2?', 'sqlite3?', 'mysql', 'mariadb', 'redis', 'mongo(?:db)?', 'sqlalchemy', 'peewee', 'alembic', 'migrations?', 'duplicate key', 'deadlock(?: detected)?', 'checkpoint (?:starting|complete)', 'autovacuum', 'connection pool', 'chroma(?:db)?', 'qdrant', 'milvus', 'pgvector', 'vector (?:db|database|store)'],
    // Postgres' own log prefix: "2024-05-01 12:00:00.123 UTC [68] log:  ".
    ['relation "', '^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d(?:\\.\\d+)? \\w+ \\[\\d+\\] [a-z]+\\d?: {2}'],
  ),
  wordRule('performance', ['slow(?:ly)?', 'latency', 'time(?:d)? ?out', 'timeout', 'took \\d', 'high (?:cpu|memory|load)', 'out of memory', 'oom(?:killed)?', 'throttl\\w*', 'memory (?:usage|pressure)', 'tokens?\\/s', 'tokens per second', 'eval rate', 'response time']),
  wordRule('system', ['start(?:ed|ing)?', 'startup', 'shut(?:ting)? ?down', 'stopp(?:ed|ing)', 'listening', 'running on', 'server process', 'workers?', 'booting', 'signal', 'restart\\w*', 'version', 'configur\\w*', 'health ?check', 'healthy', 'environment', 'initiali[sz]\\w*', 'ready', 'installing', 'scheduler']),
];

/** Finds the first category rule (in rule order) that matches a line. */
export interface CategoryScanner {
  /** The first rule (in rule order) that matches, or undefined. */
  first(msg: string, lower: string): string | undefined;
}

const UNKNOWN = 0;
const PRESENT = 1;
const ABSENT = 2;

/** How many characters of a word's start select the rules worth trying there. */
const KEY_CHARS = 3;
const KEY_MASK = (1 << 13) - 1;

/** A hash of the KEY_CHARS characters at `i` (past the end counts as NaN, which hashes to 0). */
function keyAt(s: string, i: number): number {
  return (((s.charCodeAt(i) * 31 + s.charCodeAt(i + 1)) * 31 + s.charCodeAt(i + 2)) & KEY_MASK) >>> 0;
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** The characters a regex fragment matches literally at its start, before any class, group or optional character. */
export function literalStart(fragment: string): string {
  let out = '';
  for (let i = 0; i < fragment.length; i++) {
    let c = fragment[i]!;
    let next = i + 1;
    if (c === '\\') {
      const e = fragment[i + 1];
      if (e === undefined || /[A-Za-z0-9]/.test(e)) break; // \d, \w, \b…: not a literal
      c = e;
      next = i + 2;
    } else if ('()[]{}.|^$?*+'.includes(c)) break;
    const q = fragment[next];
    if (q === '?' || q === '*' || q === '{') break; // optional: the match may not hold it
    out += c;
    i = next - 1;
  }
  return out;
}

/**
 * The category rules as one scan of the line. Each rule's words start with
 * at least three literal characters, so the line is walked once: at each word
 * start, a table keyed by its first three characters names the rules that have
 * a word beginning there, and only those are tried, at that position alone.
 * Other alternatives run only for rules that rank above the best match so
 * far, behind a substring check of their literal start. The answer is what
 * trying each whole rule in order gives (a test checks this on real lines).
 */
export function categoryScanner(rules: CategoryRule[]): CategoryScanner {
  const lowerRules = rules.filter((r) => !r.raw);
  if (lowerRules.length > 32) throw new Error('categoryScanner: at most 32 lower-case rules');
  const rank = new Map(rules.map((r, i) => [r.name, i]));
  const table = new Uint32Array(KEY_MASK + 1);
  const starts = new Set<string>();
  const needs: string[] = [];
  const needIndex = (literal: string) => {
    if (literal === '') return -1;
    const i = needs.indexOf(literal);
    return i >= 0 ? i : needs.push(literal) - 1;
  };
  const scans = lowerRules.map((rule, bit) => {
    const words = rule.words ?? [];
    for (const w of words) {
      const start = literalStart(w);
      if (start.length < KEY_CHARS || start !== start.toLowerCase()) throw new Error(`category rule ${rule.name}: "${w}" must start with ${KEY_CHARS} literal lower-case characters`);
      table[keyAt(start, 0)]! |= 1 << bit;
      starts.add(start.slice(0, KEY_CHARS));
    }
    // A rule given as a whole regex (no words) is tried as its own "other" alternative.
    const others = rule.words ? (rule.other ?? []) : [rule.regex.source];
    return {
      rank: rank.get(rule.name)!,
      words: new RegExp(`\\b(?:${words.join('|')})\\b`, 'y'),
      others: others.map((o) => {
        // An anchored alternative can only match where the line begins with its literal start.
        const anchored = o.startsWith('^');
        return { regex: new RegExp(o), need: needIndex(anchored ? '' : literalStart(o)), prefix: anchored ? literalStart(o.slice(1)) : '' };
      }),
    };
  });
  // Whether the line holds each literal start: looked up once per line, as several alternatives share one (http/).
  const needState = new Uint8Array(needs.length);
  const raws = rules.filter((r) => r.raw).map((r) => ({ rule: r, rank: rank.get(r.name)! }));
  // Word starts that begin some rule's word; the regex engine finds them faster than a loop over the characters.
  const wordStarts = new RegExp(`\\b(?:${[...starts].map(escapeRegex).join('|')})`, 'g');

  return {
    first(msg, lower) {
      let best = Infinity;
      wordStarts.lastIndex = 0;
      while (wordStarts.test(lower)) {
        const i = wordStarts.lastIndex - KEY_CHARS;
        let mask = table[keyAt(lower, i)]!;
        while (mask) {
          const bit = 31 - Math.clz32(mask & -mask);
          const scan = scans[bit]!;
          if (scan.rank >= best) break;
          scan.words.lastIndex = i;
          if (scan.words.test(lower)) {
            best = scan.rank;
            break;
          }
          mask &= mask - 1;
        }
        if (best === 0) return rules[0]!.name;
      }
      // A loop, not fill(): the builtin's call costs more than clearing the few entries.
      for (let n = 0; n < needState.length; n++) needState[n] = UNKNOWN;
      others: for (const scan of scans) {
        if (scan.rank >= best) break;
        for (const o of scan.others) {
          if (o.prefix !== '' && !lower.startsWith(o.prefix)) continue;
          if (o.need >= 0) {
            let state = needState[o.need]!;
            if (state === UNKNOWN) needState[o.need] = state = lower.includes(needs[o.need]!) ? PRESENT : ABSENT;
            if (state === ABSENT) continue;
          }
          if (o.regex.test(lower)) {
            best = scan.rank;
            break others;
          }
        }
      }
      for (const { rule, rank: r } of raws) {
        if (r < best && rule.regex.test(msg)) best = r;
      }
      return best === Infinity ? undefined : rules[best]!.name;
    },
  };
}
