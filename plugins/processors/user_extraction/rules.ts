// The built-in extraction rules of processors.user_extraction: Open WebUI /
// uvicorn / nginx request lines, Ollama [GIN] lines, Keycloak-style
// "Authentication failed for user: X", key=value and JSON logs, and the
// attribute names structured loggers use. Compiled once; substring checks
// decide which regexes a line sees.

export type Attrs = Record<string, unknown>;

/** Values that name nobody. */
const JUNK = new Set(['', '-', 'null', 'none', 'None', 'NULL', 'nil', 'undefined', 'unknown', 'anonymous', '<nil>']);
/** The longest junk value: longer ones skip the set, whose lookup hashes every fresh substring. */
const JUNK_MAX = Math.max(...[...JUNK].map((v) => v.length));

export function isJunk(v: string): boolean {
  return v.length <= JUNK_MAX && JUNK.has(v);
}

/** Sets `key` unless it is already set (earlier rules and parsed JSON win) or the value names nothing. */
export function put(attrs: Attrs, key: string, value: unknown): void {
  if (value === undefined || value === null || attrs[key] !== undefined) return;
  if (typeof value === 'string' && isJunk(value)) return;
  attrs[key] = value;
}

const UNIT_MS: Record<string, number> = { ns: 1e-6, 'µs': 1e-3, 'μs': 1e-3, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of "1.5s", "250ms", "3m2.5s" (Go), "850µs"; undefined without a unit. */
export function durationMs(text: string): number | undefined {
  let total = 0;
  let matched = 0;
  const re = /(\d+(?:\.\d+)?)(ns|µs|μs|us|ms|s|m|h)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    matched += m[0].length;
  }
  if (matched === 0 || matched !== text.length) return undefined;
  return Math.round(total * 1000) / 1000;
}

const IPV4 = '\\d{1,3}(?:\\.\\d{1,3}){3}';
const IPV6 = '[0-9a-fA-F]*:[0-9a-fA-F:]+';

// [GIN] 2025/01/15 - 10:23:45 | 200 |  2.512345678s |      172.18.0.3 | POST     "/api/chat"
const GIN = /^\[GIN\] [^|]*\|\s*(\d{3})\s*\|\s*(\S+)\s*\|\s*(\S+)\s*\|\s*([A-Z]+)\s+"([^"]*)"/;

// uvicorn / Open WebUI: `172.18.0.1:44088 - "GET /api/models HTTP/1.1" 200`;
// nginx combined: `172.18.0.1 - alice [15/Jan/2025:10:23:45 +0000] "GET /x HTTP/1.1" 200 1534 "ref" "UA"`.
const ACCESS = new RegExp(
  `(?:^|[\\s|])\\[?(${IPV4}|${IPV6})\\]?(?::\\d+)? - (?:(\\S+) \\[[^\\]]*\\] )?"([A-Z]+) (\\S+) HTTP/[\\d.]+" (\\d{3})(?: (?:\\d+|-) "[^"]*" "([^"]*)")?`,
);

// App middleware lines: `POST /auth/login 401 55.0ms`, `GET /api/chat 200 in 1.2s`.
const REQUEST = /(?:^|[\s|:-])(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (\/\S*) ([1-5]\d\d)\b(?:\s+(?:in\s+)?(\d+(?:\.\d+)?(?:ns|µs|us|ms|s)))?/;

// Keycloak / Postgres / apps: `Authentication failed for user: bob`, `password authentication failed for user "openwebui"`,
// `Login successful for user alice@example.com`, `user alice logged in`.
const FOR_USER =
  /\b(?:fail(?:ed|ure)|successful(?:ly)?|succeeded|denied|granted|authenticated|authorized|logged (?:in|out)|locked|login|logout|signed (?:in|out|up))\b[^.]{0,40}?\b(?:for|by|of) user:?\s+["']?([\w.@+-]+)["']?/i;
const USER_ACTION = /\buser:?\s+["']?([\w.@+-]+)["']?\s+(?:logged|signed|authenticated|created|deleted|registered)\b/i;

// key=value and "key": value pairs under the names loggers use.
const KV =
  /(?:^|[\s{,;(\[])["']?(username|user_name|userName|user|user_id|userId|userid|uid|email|mail|ip|client_ip|clientIp|client_addr|remote_addr|remoteAddr|remote_ip|ip_address|ipAddress|source_ip|sourceIp|client|model|model_name|modelName|model_id|session_id|sessionId|method|http_method|path|http_path|status|status_code|statusCode|http_status|duration_ms|latency_ms|elapsed_ms|response_time_ms|duration|latency|elapsed)["']?\s*[=:]\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([^\s,;{}[\]"']+))/g;

// An address: the local part is found by walking back from each '@' (a regex
// starting with it retries the local part at every character of a long word).
const EMAIL_DOMAIN = /[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/y;
const isLocalPartChar = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;

/** The first e-mail address in the text (what /[A-Za-z0-9._%+-]+@domain/ finds first), or undefined. */
export function firstEmail(text: string): string | undefined {
  for (let at = text.indexOf('@'); at !== -1; at = text.indexOf('@', at + 1)) {
    let start = at;
    while (start > 0 && isLocalPartChar(text.charCodeAt(start - 1))) start--;
    if (start === at) continue;
    EMAIL_DOMAIN.lastIndex = at + 1;
    if (EMAIL_DOMAIN.test(text)) return text.slice(start, EMAIL_DOMAIN.lastIndex);
  }
  return undefined;
}
const IP_LIKE = new RegExp(`^(?:${IPV4}|${IPV6})$`);

// `loaded model llama3.1:8b`, `switching to model: qwen2.5:7b`, `Model llama3.1:8b not found` (a name:tag).
const MODEL_PHRASE =
  /\b(?:load(?:ed|ing)?|unload(?:ed|ing)?|pull(?:ed|ing)?|using|switch(?:ed|ing)? to|selected) model[:\s]+["']?([A-Za-z0-9][\w.\/:-]*)|\b[Mm]odel[:=\s]\s*["']?([A-Za-z0-9][\w.\/-]*:[\w.-]+)/i;

// `connected with session ID Xq3vKz9ZbA1c`, `session id: 42c1...`.
const SESSION_PHRASE = /\bsession[ _-]?id\b[:=\s]\s*["']?([\w-]{6,})/i;
/** The gate of SESSION_PHRASE: the regex engine skips ahead on the word, where includes() stops at every 'e'. */
const SESSION_WORD = /session/i;

/** Whether the text holds ' /' (a request path): found from its slashes, rarer than spaces. */
function hasSpaceSlash(text: string): boolean {
  for (let i = text.indexOf('/'); i >= 0; i = text.indexOf('/', i + 1)) if (i > 0 && text.charCodeAt(i - 1) === 32) return true;
  return false;
}

/** Canonical attribute for a key as loggers spell it (a Map: a JSON key such as "constructor" must not find Object.prototype's members). */
const KEY_TO_ATTR = new Map<string, string>(Object.entries({
  username: 'username', user_name: 'username', userName: 'username', user: 'username', login: 'username',
  user_id: 'user_id', userId: 'user_id', userid: 'user_id', uid: 'user_id',
  email: 'email', mail: 'email',
  ip: 'ip_address', client_ip: 'ip_address', clientIp: 'ip_address', client_addr: 'ip_address', remote_addr: 'ip_address', remoteAddr: 'ip_address',
  remote_ip: 'ip_address', ip_address: 'ip_address', ipAddress: 'ip_address', source_ip: 'ip_address', sourceIp: 'ip_address', client: 'ip_address',
  model: 'model', model_name: 'model', modelName: 'model', model_id: 'model',
  session_id: 'session_id', sessionId: 'session_id',
  method: 'http_method', http_method: 'http_method', verb: 'http_method', request_method: 'http_method',
  path: 'http_path', http_path: 'http_path', request_uri: 'http_path', request_path: 'http_path', uri: 'http_path',
  status: 'http_status', status_code: 'http_status', statusCode: 'http_status', http_status: 'http_status', response_status: 'http_status',
  duration_ms: 'duration_ms', latency_ms: 'duration_ms', elapsed_ms: 'duration_ms', response_time_ms: 'duration_ms',
  duration: 'duration', latency: 'duration', elapsed: 'duration',
  user_agent: 'user_agent', userAgent: 'user_agent', http_user_agent: 'user_agent',
}));

/** Puts one (key, value) under its canonical attribute, checking that the value fits. Returns whether it set something. */
function assign(attrs: Attrs, attr: string, raw: unknown): void {
  if (raw === undefined || raw === null) return;
  switch (attr) {
    case 'ip_address': {
      const s = String(raw);
      if (IP_LIKE.test(s)) put(attrs, attr, s);
      return;
    }
    case 'email': {
      const s = String(raw);
      if (s.includes('@')) put(attrs, attr, s);
      return;
    }
    case 'model': {
      const s = String(raw);
      // Ollama logs the blob path of a model, which names no model.
      if (!s.includes('/blobs/') && !s.startsWith('sha256')) put(attrs, attr, s);
      return;
    }
    case 'http_method': {
      const s = String(raw).toUpperCase();
      if (/^[A-Z]{3,7}$/.test(s)) put(attrs, attr, s);
      return;
    }
    case 'http_path': {
      const s = String(raw);
      if (s.startsWith('/')) put(attrs, attr, s);
      return;
    }
    case 'http_status': {
      const n = typeof raw === 'number' ? raw : Number(raw);
      if (Number.isInteger(n) && n >= 100 && n <= 599) put(attrs, attr, n);
      return;
    }
    case 'duration_ms': {
      const n = typeof raw === 'number' ? raw : Number(raw);
      if (Number.isFinite(n)) put(attrs, attr, n);
      else if (typeof raw === 'string') put(attrs, attr, durationMs(raw));
      return;
    }
    case 'duration': {
      // Only with a unit: a bare number could be seconds or milliseconds.
      if (typeof raw === 'string') put(attrs, 'duration_ms', durationMs(raw));
      return;
    }
    case 'username': {
      if (typeof raw === 'object') {
        // Open WebUI audit log: "user": {"id", "name", "email", "role"}.
        const u = raw as Record<string, unknown>;
        if (typeof u.name === 'string') put(attrs, 'username', u.name);
        if (typeof u.username === 'string') put(attrs, 'username', u.username);
        if (typeof u.email === 'string') assign(attrs, 'email', u.email);
        if (typeof u.id === 'string' || typeof u.id === 'number') put(attrs, 'user_id', String(u.id));
        return;
      }
      put(attrs, attr, String(raw));
      return;
    }
    default:
      put(attrs, attr, typeof raw === 'object' ? raw : String(raw));
  }
}

/** Normalises attributes a JSON parser lifted (userId, client_ip, user:{…}, status_code…) to the canonical names. */
export function fromAttributes(attrs: Attrs): void {
  let found: Array<[string, unknown]> | undefined;
  for (const k in attrs) {
    const attr = KEY_TO_ATTR.get(k);
    if (attr !== undefined && attr !== k) (found ??= []).push([attr, attrs[k]]);
  }
  if (found) for (const [attr, v] of found) assign(attrs, attr, v);
}

/** The built-in rules on a line's text. */
export function fromText(msg: string, attrs: Attrs): void {
  const first = msg.charCodeAt(0);
  let request = false;
  if (first === 91 /* [ */ && msg.startsWith('[GIN] ')) {
    const m = GIN.exec(msg);
    if (m) {
      request = true;
      put(attrs, 'http_status', Number(m[1]));
      put(attrs, 'duration_ms', durationMs(m[2]!));
      const ip = m[3]!;
      if (IP_LIKE.test(ip)) put(attrs, 'ip_address', ip);
      put(attrs, 'http_method', m[4]);
      put(attrs, 'http_path', m[5]);
    }
  }
  // Gates search for their rarest part: includes() scans with memchr for the
  // first character, and a space or an 'e' occurs every few characters.
  if (!request && msg.includes('HTTP/')) {
    const m = ACCESS.exec(msg);
    if (m) {
      request = true;
      put(attrs, 'ip_address', m[1]);
      if (m[2] !== undefined) put(attrs, 'username', m[2]);
      put(attrs, 'http_method', m[3]);
      put(attrs, 'http_path', m[4]);
      put(attrs, 'http_status', Number(m[5]));
      if (m[6] !== undefined) put(attrs, 'user_agent', m[6]);
    }
  }
  if (!request && hasSpaceSlash(msg)) {
    const m = REQUEST.exec(msg);
    if (m) {
      put(attrs, 'http_method', m[1]);
      put(attrs, 'http_path', m[2]);
      put(attrs, 'http_status', Number(m[3]));
      if (m[4] !== undefined) put(attrs, 'duration_ms', durationMs(m[4]));
    }
  }
  if (msg.includes('=') || msg.includes('":')) {
    KV.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = KV.exec(msg))) {
      const attr = KEY_TO_ATTR.get(m[1]!)!;
      let v = m[2] ?? m[3] ?? m[4]!;
      if (m[2] !== undefined && v.includes('\\')) v = v.replace(/\\(.)/g, '$1');
      // `path=` is only an HTTP path when the line is a request (else it is likely a file).
      if (attr === 'http_path' && attrs.http_method === undefined && !/(?:^|[\s{,"])(?:method|status)["']?\s*[=:]/.test(msg)) continue;
      assign(attrs, attr, v);
    }
  }
  if (attrs.username === undefined && (msg.includes('user') || msg.includes('User'))) {
    const m = FOR_USER.exec(msg) ?? USER_ACTION.exec(msg);
    if (m) put(attrs, 'username', m[1]);
  }
  if (attrs.email === undefined) put(attrs, 'email', firstEmail(msg));
  if (attrs.model === undefined && (msg.includes('model') || msg.includes('Model'))) {
    const m = MODEL_PHRASE.exec(msg);
    if (m) assign(attrs, 'model', (m[1] ?? m[2])!.replace(/[.,;:]+$/, ''));
  }
  if (attrs.session_id === undefined && SESSION_WORD.test(msg)) {
    const m = SESSION_PHRASE.exec(msg);
    if (m) put(attrs, 'session_id', m[1]);
  }
}
