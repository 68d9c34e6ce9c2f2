// The payloads the session webhook understands, their JSON Schemas, and how
// each becomes one session record:
//
// - the OpsHub form: {username, model, action, session_id, ip_address,
//   user_agent, metadata, ...usage}, also what the shipped Open WebUI filter
//   function posts (with client: "openwebui_filter", tokens and latency);
// - Open WebUI's own webhook notifications (Admin Panel → Webhook URL, and a
//   user's Notification Webhook). Open WebUI posts, to a URL that is not Slack,
//   Discord or Teams, its event data as JSON:
//     sign-up:  {"action": "signup", "message": "New user signed up: Tim",
//                "user": "<the user record as a JSON string>"}
//     chat:     {"action": "chat", "message": <response>, "title": <chat title>,
//                "url": "<WEBUI_URL>/c/<chat id>"}
//   and the Slack ({"text"}), Discord ({"content"}) and Teams (MessageCard)
//   shapes when it thinks it talks to those; its documentation also shows
//   {"event": "new_user", "user": {...}} and {"event": "chat_response", "chat": {...}}.

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { LEVELS, type Level } from '../../../core/events.ts';

export type Origin = 'opshub' | 'openwebui_filter' | 'openwebui';

/** One validated event, before it becomes a LogEvent. */
export interface SessionRecord {
  origin: Origin;
  level: Level;
  message: string;
  /** Nanoseconds, when the payload said when it happened. */
  timestamp?: bigint;
  /** username, model, action, session_id, ... (only those known). */
  attributes: Record<string, unknown>;
}

const text = (maxLength: number, description: string) => ({ type: 'string', maxLength, description });
const count = (description: string) => ({ type: 'integer', minimum: 0, description });

export const OPSHUB_SCHEMA = {
  type: 'object',
  description: 'A user-session event in the OpsHub form.',
  required: ['username'],
  additionalProperties: false,
  properties: {
    username: { type: 'string', minLength: 1, maxLength: 256, description: 'Who: the user name (or e-mail) as the application knows it.' },
    action: { type: 'string', minLength: 1, maxLength: 64, description: 'What happened: login, logout, request, signup, ...' },
    model: text(256, 'The model used, e.g. llama3.1:8b.'),
    session_id: text(256, 'The application session.'),
    ip_address: text(64, "The user's address."),
    user_agent: text(1024, "The user's browser or client."),
    metadata: { type: 'object', description: 'Anything else, kept as given.' },
    timestamp: { type: ['string', 'number'], description: 'When it happened: RFC 3339, or a Unix time in s, ms, µs or ns; default: when received.' },
    message: text(4096, 'A human-readable line; default: composed from the fields.'),
    level: { enum: [...LEVELS], description: 'Log level; default info (warning for failed actions).' },
    user_id: text(256, "The application's user id."),
    email: text(320, "The user's e-mail address."),
    role: text(64, "The user's role, e.g. admin, user."),
    chat_id: text(256, 'The chat (conversation) id.'),
    message_id: text(256, 'The message id within the chat.'),
    prompt_tokens: count('Tokens in the prompt.'),
    completion_tokens: count('Tokens in the answer.'),
    total_tokens: count('Prompt and answer tokens.'),
    latency_ms: { type: 'number', minimum: 0, description: 'How long the request took, in milliseconds.' },
    status: text(64, 'Outcome, e.g. success or error.'),
    client: text(64, 'What sent it, e.g. openwebui_filter.'),
  },
} as const;

export const OPENWEBUI_SCHEMA = {
  type: 'object',
  description: "One of Open WebUI's webhook notifications.",
  additionalProperties: true,
  properties: {
    action: text(64, 'signup or chat (the default, non-Slack payload).'),
    event: text(64, 'new_user or chat_response (as in Open WebUI\'s documentation).'),
    message: text(1_000_000, 'The notification text; for chat notifications, the answer.'),
    user: { type: ['string', 'object'], description: 'The user record, as a JSON string (what Open WebUI sends) or an object.' },
    title: text(1024, 'Chat title.'),
    url: text(4096, 'Link to the chat.'),
    chat: { type: 'object', description: 'Chat details: id, title, last_message.' },
    text: text(1_000_000, 'Slack and Google Chat form.'),
    content: text(1_000_000, 'Discord form.'),
    '@type': text(64, 'Microsoft Teams MessageCard.'),
    summary: text(4096, 'Teams: the message.'),
    sections: { type: 'array', description: 'Teams: activity and facts.' },
  },
} as const;

const FAILED = /fail|denied|error|reject|invalid|locked/i;
const SIGNUP_TEXT = /^New user signed up(?::\s*(.+?))?\s*(?:\n|$)/;

export interface Validators {
  opshub: ValidateFunction;
  openwebui: ValidateFunction;
}

/** Compiles the payload schemas (per plugin instance: no module-level state). */
export function compileValidators(): Validators {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  return { opshub: ajv.compile(OPSHUB_SCHEMA), openwebui: ajv.compile(OPENWEBUI_SCHEMA) };
}

function describe(errors: ErrorObject[] | null | undefined, at: string): string[] {
  return (errors ?? []).map((e) => {
    const where = `${at}${e.instancePath}` || '/';
    if (e.keyword === 'additionalProperties') return `${where} has an unknown property "${(e.params as { additionalProperty: string }).additionalProperty}"`;
    if (e.keyword === 'enum') return `${where} ${e.message}: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
    return `${where} ${e.message}`;
  });
}

/**
 * Whether a body without `username` is one of Open WebUI's notifications:
 * the Slack/Discord/Teams/documented shapes, or its default event data (an
 * action it sends, or the user record as JSON text, or a chat link).
 */
function looksLikeOpenWebUI(body: Record<string, unknown>): boolean {
  if ('username' in body) return false;
  if (['event', 'text', 'content', '@type'].some((k) => k in body)) return true;
  return 'action' in body && (body.action === 'signup' || body.action === 'chat' || typeof body.user === 'string' || 'url' in body);
}

/** Nanoseconds from an RFC 3339 string or a Unix time in s/ms/µs/ns (by magnitude); undefined if unreadable. */
export function parseTimestamp(value: string | number): bigint | undefined {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) return undefined;
    if (value < 1e11) return BigInt(Math.round(value * 1e3)) * 1_000_000n;
    if (value < 1e14) return BigInt(Math.round(value)) * 1_000_000n;
    if (value < 1e17) return BigInt(Math.round(value)) * 1_000n;
    return BigInt(Math.round(value));
  }
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) return undefined;
  const frac = /\.(\d+)/.exec(value)?.[1];
  const ns = frac ? BigInt(frac.slice(0, 9).padEnd(9, '0')) % 1_000_000n : 0n;
  return BigInt(ms) * 1_000_000n + ns;
}

export type Checked = { ok: true; record: SessionRecord } | { ok: false; reasons: string[] };

/**
 * Validates one payload and turns it into a record. `at` prefixes the
 * reasons (e.g. "[3]" for the fourth item of a batch); `defaults` come from
 * the query string (a user's personal webhook URL may name the user).
 */
export function check(v: Validators, body: unknown, at = '', defaults: { username?: string } = {}): Checked {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, reasons: [`${at || '/'} must be an object (a session event)`] };
  }
  const obj = body as Record<string, unknown>;
  if (looksLikeOpenWebUI(obj)) {
    if (!v.openwebui(obj)) return { ok: false, reasons: describe(v.openwebui.errors, at) };
    return { ok: true, record: fromOpenWebUI(obj, defaults) };
  }
  if (!v.opshub(obj)) return { ok: false, reasons: describe(v.opshub.errors, at) };
  let timestamp: bigint | undefined;
  if (obj.timestamp !== undefined) {
    timestamp = parseTimestamp(obj.timestamp as string | number);
    if (timestamp === undefined) return { ok: false, reasons: [`${at}/timestamp must be an RFC 3339 time or a Unix time`] };
  }
  return { ok: true, record: fromOpsHub(obj, timestamp) };
}

const ATTRIBUTE_KEYS = [
  'username', 'action', 'model', 'session_id', 'ip_address', 'user_agent', 'user_id', 'email', 'role', 'chat_id', 'message_id',
  'prompt_tokens', 'completion_tokens', 'total_tokens', 'latency_ms', 'status', 'client', 'metadata',
] as const;

function fromOpsHub(obj: Record<string, unknown>, timestamp: bigint | undefined): SessionRecord {
  const attributes: Record<string, unknown> = {};
  for (const k of ATTRIBUTE_KEYS) if (obj[k] !== undefined && obj[k] !== '') attributes[k] = obj[k];
  if (attributes.total_tokens === undefined && typeof obj.prompt_tokens === 'number' && typeof obj.completion_tokens === 'number') {
    attributes.total_tokens = obj.prompt_tokens + obj.completion_tokens;
  }
  const action = obj.action as string | undefined;
  const failed = FAILED.test(action ?? '') || FAILED.test((obj.status as string | undefined) ?? '');
  return {
    origin: obj.client === 'openwebui_filter' ? 'openwebui_filter' : 'opshub',
    level: (obj.level as Level | undefined) ?? (failed ? 'warning' : 'info'),
    message: (obj.message as string | undefined) || compose(attributes),
    timestamp,
    attributes,
  };
}

/** E.g. "request by alice on llama3.1:8b (12 prompt + 80 completion tokens, 2310 ms)". */
function compose(a: Record<string, unknown>): string {
  let line = `${(a.action as string | undefined) ?? 'activity'} by ${a.username as string}`;
  if (a.model) line += ` on ${a.model as string}`;
  const details: string[] = [];
  if (a.prompt_tokens !== undefined || a.completion_tokens !== undefined) {
    details.push(`${a.prompt_tokens ?? '?'} prompt + ${a.completion_tokens ?? '?'} completion tokens`);
  } else if (a.total_tokens !== undefined) details.push(`${a.total_tokens as number} tokens`);
  if (a.latency_ms !== undefined) details.push(`${Math.round(a.latency_ms as number)} ms`);
  if (a.status) details.push(a.status as string);
  return details.length ? `${line} (${details.join(', ')})` : line;
}

/** Open WebUI sends the user record as JSON text (`user.model_dump_json()`); tolerate an object or garbage. */
function userRecord(user: unknown): Record<string, unknown> {
  if (user && typeof user === 'object' && !Array.isArray(user)) return user as Record<string, unknown>;
  if (typeof user === 'string') {
    try {
      const parsed: unknown = JSON.parse(user);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
    } catch {
      /* not JSON: nothing to take from it */
    }
  }
  return {};
}

const shortText = (v: unknown, max = 256): string | undefined => (typeof v === 'string' && v.trim() ? v.trim().slice(0, max) : typeof v === 'number' ? String(v) : undefined);

function fromOpenWebUI(obj: Record<string, unknown>, defaults: { username?: string }): SessionRecord {
  // Teams MessageCard: the action is the end of the subtitle ("Open WebUI (0.6.5) - signup"), user fields are facts.
  const section = Array.isArray(obj.sections) && obj.sections[0] && typeof obj.sections[0] === 'object' ? (obj.sections[0] as Record<string, unknown>) : undefined;
  const facts: Record<string, unknown> = {};
  if (section && Array.isArray(section.facts)) {
    for (const f of section.facts) {
      if (f && typeof f === 'object' && typeof (f as { name?: unknown }).name === 'string') facts[(f as { name: string }).name] = (f as { value?: unknown }).value;
    }
  }
  const notice = shortText(obj.text, 4096) ?? shortText(obj.content, 4096) ?? shortText(obj.summary, 4096) ?? shortText(section?.activityTitle, 4096);
  const signupText = notice ? SIGNUP_TEXT.exec(notice) : null;
  const subtitleAction = typeof section?.activitySubtitle === 'string' ? /-\s*(\w+)\s*$/.exec(section.activitySubtitle)?.[1] : undefined;

  // A chat notification in the Slack/Discord form: "<title> - <WEBUI_URL>/c/<chat id>\n\n<answer>".
  const chatLine = notice && !signupText ? /^(.*?) - (\S*\/c\/([^/?#\s]+))\s*(?:\n|$)/.exec(notice) : null;

  const event = shortText(obj.event, 64);
  const rawAction =
    shortText(obj.action, 64) ??
    subtitleAction ??
    (event === 'new_user' ? 'signup' : event === 'chat_response' ? 'chat' : event) ??
    (signupText ? 'signup' : chatLine ? 'chat' : undefined);
  const action = rawAction === 'chat' ? 'chat_response' : rawAction === 'undefined' ? undefined : rawAction;

  const user = { ...facts, ...userRecord(obj.user) };
  const username = shortText(user.name) ?? shortText(user.email) ?? shortText(signupText?.[1]) ?? defaults.username;

  const attributes: Record<string, unknown> = { action: action ?? 'notification' };
  if (username) attributes.username = username;
  const email = shortText(user.email, 320);
  if (email) attributes.email = email;
  const userId = shortText(user.id);
  if (userId) attributes.user_id = userId;
  const role = shortText(user.role, 64);
  if (role) attributes.role = role;

  const chat = obj.chat && typeof obj.chat === 'object' ? (obj.chat as Record<string, unknown>) : {};
  const url = shortText(obj.url, 4096);
  const chatId = shortText(chat.id) ?? (url ? /\/c\/([^/?#]+)/.exec(url)?.[1] : undefined) ?? chatLine?.[3];
  if (chatId) attributes.chat_id = chatId;
  const title = shortText(obj.title, 1024) ?? shortText(chat.title, 1024) ?? shortText(chatLine?.[1], 1024);
  if (title) attributes.title = title;
  if (event) attributes.event = event;

  let message: string;
  if (action === 'signup') message = shortText(obj.message, 4096) ?? signupText?.[0]?.trim() ?? `New user signed up${username ? `: ${username}` : ''}`;
  else if (action === 'chat_response') message = `chat response ready${title ? `: ${title}` : ''}${username ? ` (${username})` : ''}`;
  // The text of other notifications is kept (bounded); a chat answer is not: it is the user's content.
  else message = (notice ?? shortText(obj.message, 4096) ?? `Open WebUI ${attributes.action as string}`).split('\n')[0]!;

  return { origin: 'openwebui', level: 'info', message, attributes };
}
