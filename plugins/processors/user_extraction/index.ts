// processors.user_extraction: who / what / where of a log line into
// attributes — username, user_id, email, ip_address, model, session_id,
// http_method, http_path, http_status, duration_ms (and user_agent) — from
// request lines, auth messages, key=value and JSON logs, plus custom regexes
// with named groups. Attributes already set (by an input or json_parse) win.

import type { Event, LogEvent } from '../../../core/events.ts';
import type { PluginDefinition, Processor } from '../../../core/plugin.ts';
import { parseSize } from '../../../core/units.ts';
import { own, setOwn } from '../../../core/own.ts';
import { fromAttributes, fromText, isJunk } from './rules.ts';

export interface UserExtractionConfig {
  patterns: string[];
  default_patterns: boolean;
  ignore_case: boolean;
  scan_bytes: string | number;
}

const NUMERIC = new Set(['http_status', 'duration_ms']);

export function createUserExtraction(config: UserExtractionConfig): Processor {
  const custom = config.patterns.map((p) => new RegExp(p, config.ignore_case ? 'i' : ''));
  const scan = parseSize(config.scan_bytes);

  const extract = (event: LogEvent): void => {
    const full = event.message;
    const msg = full.length > scan ? full.slice(0, scan) : full;
    const attrs = event.attributes;
    for (const re of custom) {
      const m = re.exec(msg);
      if (!m?.groups) continue;
      for (const k in m.groups) {
        const v = m.groups[k];
        // A group name is the user's: own() and setOwn() keep "constructor" or "__proto__" plain data.
        if (v === undefined || isJunk(v) || own(attrs, k) !== undefined) continue;
        setOwn(attrs, k, NUMERIC.has(k) && /^\d+(?:\.\d+)?$/.test(v) ? Number(v) : v);
      }
    }
    if (config.default_patterns) {
      fromAttributes(attrs);
      fromText(msg, attrs);
    }
  };

  return {
    process(event: Event): Event {
      if (event.kind === 'log') extract(event);
      return event;
    },
  };
}

export const userExtraction: PluginDefinition<UserExtractionConfig> = {
  kind: 'processor',
  type: 'user_extraction',
  description: 'Extracts username, user id, email, client IP, model, session id and HTTP method/path/status/duration from log lines into attributes.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      patterns: {
        type: 'array',
        default: [],
        items: { type: 'string', format: 'regex' },
        description:
          'Custom regexes tried before the built-in rules; each named group `(?<name>...)` becomes the attribute `name` (e.g. `(?<username>\\w+) opened chat (?<session_id>\\S+)`). http_status and duration_ms become numbers.',
      },
      default_patterns: {
        type: 'boolean',
        default: true,
        description: 'Apply the built-in rules: Open WebUI/uvicorn/nginx request lines, Ollama [GIN] lines, "Authentication failed for user: X", key=value and JSON fields, emails, model phrases.',
      },
      ignore_case: { type: 'boolean', default: false, description: 'Custom patterns match regardless of case.' },
      scan_bytes: { type: ['string', 'integer'], format: 'size', default: '4KiB', description: 'Only the first this many characters of a line are searched.' },
    },
  },
  create: (config) => createUserExtraction(config),
};

export default userExtraction;
