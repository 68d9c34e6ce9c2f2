// processors.regex_classifier: sets each log's level from what the line says
// (level fields and words, HTTP status codes, keywords) and a category from
// rules (attributes.category); custom patterns add categories, levels and
// attributes from named capture groups. Metrics pass through untouched.

import { LEVELS, type Event, type Level, type LogEvent } from '../../../core/events.ts';
import type { PluginDefinition, Processor } from '../../../core/plugin.ts';
import { own, setOwn } from '../../../core/own.ts';
import { parseSize } from '../../../core/units.ts';
import { maxLevel } from '../../common/levels.ts';
import { categoryScanner, DEFAULT_CATEGORIES, explicitLevel, httpStatusOf, keywordLevel, statusLevel, successKeyword } from './rules.ts';

export interface PatternObject {
  regex: string;
  category?: string;
  level?: Level;
  ignore_case?: boolean;
}

export interface RegexClassifierConfig {
  levels: boolean;
  categories: boolean;
  patterns: Record<string, string | PatternObject>;
  mode: 'first' | 'all';
  ignore_case: boolean;
  overwrite_category: boolean;
  scan_bytes: string | number;
}

interface CompiledPattern {
  name: string;
  regex: RegExp;
  category: string;
  level?: Level;
  hasGroups: boolean;
}

export function compilePatterns(patterns: RegexClassifierConfig['patterns'], ignoreCase: boolean): CompiledPattern[] {
  return Object.entries(patterns).map(([name, p]) => {
    const spec: PatternObject = typeof p === 'string' ? { regex: p } : p;
    const regex = new RegExp(spec.regex, (spec.ignore_case ?? ignoreCase) ? 'i' : '');
    return { name, regex, category: spec.category ?? name, level: spec.level, hasGroups: /\(\?<[A-Za-z_]/.test(spec.regex) };
  });
}

/** Level from the line: a stated level, raised by a 4xx/5xx status; keywords only when nothing is stated. */
export function classifyLevel(msg: string, incoming: Level, lower?: string): Level {
  const explicit = explicitLevel(msg);
  let level: Level = explicit ?? incoming;
  const code = httpStatusOf(msg);
  if (code) {
    const s = statusLevel(code);
    return s ? maxLevel(level, s) : level;
  }
  if (explicit === undefined) {
    // Only a line nobody classified yet (the default 'info') is judged by its words.
    if (incoming === 'info') {
      const k = keywordLevel(lower ?? msg.toLowerCase());
      if (k) level = k;
    }
  } else if (explicit === 'info' && successKeyword(lower ?? msg.toLowerCase())) {
    level = 'success';
  }
  return level;
}

export function createRegexClassifier(config: RegexClassifierConfig): Processor {
  const patterns = compilePatterns(config.patterns, config.ignore_case);
  const all = config.mode === 'all';
  const scan = parseSize(config.scan_bytes);
  const rules = config.categories ? DEFAULT_CATEGORIES : [];
  const scanner = categoryScanner(rules);

  const classify = (event: LogEvent): void => {
    const full = event.message;
    const msg = full.length > scan ? full.slice(0, scan) : full;
    const attrs = event.attributes;
    const existing = attrs.category;
    const keepCategory = !config.overwrite_category && typeof existing === 'string' && existing !== '';
    let category: string | undefined;
    let more: string[] | undefined;
    let patternLevel: Level | undefined;

    for (const p of patterns) {
      const m = p.regex.exec(msg);
      if (!m) continue;
      if (p.hasGroups && m.groups) {
        for (const k in m.groups) {
          const v = m.groups[k];
          if (v !== undefined && v !== '' && own(attrs, k) === undefined) setOwn(attrs, k, v);
        }
      }
      patternLevel ??= p.level;
      if (category === undefined) category = p.category;
      else if (p.category !== category) (more ??= [category]).push(p.category);
      if (!all) break;
    }
    let lower: string | undefined;
    if (!keepCategory && category === undefined && !all && rules.length) {
      lower = msg.toLowerCase();
      category = scanner.first(msg, lower);
    } else if (!keepCategory && all) {
      lower = msg.toLowerCase();
      for (const r of rules) {
        if (!r.regex.test(r.raw ? msg : lower)) continue;
        if (category === undefined) category = r.name;
        else if (r.name !== category && !more?.includes(r.name)) (more ??= [category]).push(r.name);
        if (!all) break;
      }
    }
    if (!keepCategory && category !== undefined) {
      attrs.category = category;
      if (more) attrs.categories = more;
    }
    if (patternLevel) event.level = patternLevel;
    else if (config.levels) event.level = classifyLevel(msg, event.level, lower);
  };

  return {
    process(event: Event): Event {
      if (event.kind === 'log') classify(event);
      return event;
    },
  };
}

const patternObject = {
  type: 'object',
  additionalProperties: false,
  required: ['regex'],
  properties: {
    regex: { type: 'string', format: 'regex', description: 'JavaScript regular expression; named groups `(?<name>...)` become attributes.' },
    category: { type: 'string', description: 'Category to set (default: the pattern name).' },
    level: { enum: [...LEVELS], description: 'Level to set when the pattern matches (overrides the built-in level rules).' },
    ignore_case: { type: 'boolean', description: 'Match regardless of case (default: the processor-wide ignore_case).' },
  },
};

export const regexClassifier: PluginDefinition<RegexClassifierConfig> = {
  kind: 'processor',
  type: 'regex_classifier',
  description: 'Sets log levels (level fields, level words, HTTP status, keywords) and categories (attributes.category) from rules and custom regexes.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      levels: { type: 'boolean', default: true, description: 'Set event.level with the built-in level rules.' },
      categories: { type: 'boolean', default: true, description: 'Set attributes.category with the built-in category rules (security, auth, model_load, gpu, api_request, database, performance, system).' },
      patterns: {
        type: 'object',
        default: {},
        description:
          'Custom patterns, tried before the built-in category rules: name → regex, or name → {regex, category, level, ignore_case}. A match sets the category (the name unless `category` is given), the level if given, and named capture groups as attributes.',
        additionalProperties: {
          if: { type: 'string' },
          then: { type: 'string', format: 'regex' },
          else: patternObject,
        },
      },
      mode: {
        enum: ['first', 'all'],
        default: 'first',
        description: 'first: the first matching pattern or rule decides the category; all: every match is applied, attributes.categories lists them all.',
      },
      ignore_case: { type: 'boolean', default: false, description: 'Custom patterns match regardless of case.' },
      overwrite_category: { type: 'boolean', default: false, description: 'Replace a category the event already has (e.g. `session` from the webhook input).' },
      scan_bytes: { type: ['string', 'integer'], format: 'size', default: '4KiB', description: 'Only the first this many characters of a line are searched (protects throughput from huge lines).' },
    },
  },
  create: (config) => createRegexClassifier(config),
};

export default regexClassifier;
