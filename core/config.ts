// Pipeline YAML → environment substitution → ajv validation of the whole file
// against the composed schema → typed config. Every error names file, line,
// column and key path, and all errors are reported at once.

import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { Document, LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, visit, type Node, type Pair, type Scalar } from 'yaml';
import { EnvError, hasEnvRef, substituteEnv } from './env.ts';
import type { PluginDefinition, PluginKind } from './plugin.ts';
import { SECTION_OF, composeSchema } from './schema.ts';
import { isDuration, isSize, parseDuration } from './units.ts';
import { makeLog } from './events.ts';
import { compileMatch } from './match.ts';
import { loadCustomPlugins } from './registry.ts';

export interface ConfigIssue {
  file: string;
  line: number;
  column: number;
  /** Key path, e.g. `inputs[0].interval`. */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
  }
}

export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
}

export interface MatchConfig {
  kinds?: Array<'log' | 'metric'>;
  inputs?: string[];
  exclude_inputs?: string[];
  names?: string[];
  labels?: Record<string, string>;
}

export interface AgentConfig {
  interval: string;
  jitter: string;
  flush_interval: string;
  batch_size: number;
  buffer_limit: number;
  data_dir: string;
  plugin_dir?: string;
  hostname?: string;
  log_level: 'debug' | 'info' | 'warn' | 'error';
  shutdown_timeout: string;
  self_metrics: boolean;
  http: {
    listen: string;
    auth_token: string;
    docs: boolean;
    rate_limit: { requests: number; window: string; trust_proxy: boolean; exempt_paths: string[] };
    cors: { origins: string[]; max_age: string };
  };
}

/** One configured plugin instance, with agent defaults resolved. */
export interface PluginInstanceConfig {
  id: string;
  type: string;
  kind: PluginKind;
  definition: PluginDefinition;
  /** The plugin's own options (common keys removed), defaults applied. */
  options: Record<string, unknown>;
  dataDir: string;
  intervalMs: number;
  jitterMs: number;
  tags: Record<string, string>;
  match?: MatchConfig;
  batchSize: number;
  flushIntervalMs: number;
  bufferLimit: number;
  retryInitialMs: number;
  retryMaxMs: number;
  /** A stable fingerprint of what the user wrote, to tell changed instances on reload. */
  fingerprint: string;
}

export interface PipelineConfig {
  file: string;
  agent: AgentConfig;
  hostname: string;
  inputs: PluginInstanceConfig[];
  processors: PluginInstanceConfig[];
  outputs: PluginInstanceConfig[];
  plugins: PluginDefinition[];
  /** The whole validated document, for sections other issues add (alerts...). */
  raw: Record<string, any>;
}

const COMMON_KEYS = new Set([
  'type', 'id', 'data_dir', 'tags', 'interval', 'match', 'batch_size', 'flush_interval', 'buffer_limit',
  'retry_initial_backoff', 'retry_max_backoff',
]);

export function createAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, coerceTypes: false, allowUnionTypes: true });
  ajv.addFormat('duration', { type: 'string', validate: isDuration });
  ajv.addFormat('size', { type: 'string', validate: isSize });
  ajv.addFormat('regex', {
    type: 'string',
    validate: (s: string) => {
      try {
        new RegExp(s);
        return true;
      } catch {
        return false;
      }
    },
  });
  return ajv;
}

/** Source positions for paths in a parsed YAML document. */
class Locator {
  constructor(private file: string, private doc: Document, private lines: LineCounter) {}

  at(offset: number | undefined, pathText: string, message: string): ConfigIssue {
    const pos = offset === undefined ? { line: 1, col: 1 } : this.lines.linePos(offset);
    return { file: this.file, line: pos.line, column: pos.col, path: pathText, message };
  }

  /** The node at `segments`, or the nearest ancestor that exists. */
  node(segments: Array<string | number>): Node | undefined {
    for (let n = segments.length; n >= 0; n--) {
      const found = this.doc.getIn(segments.slice(0, n), true) as Node | undefined;
      if (found && typeof found === 'object' && 'range' in found) return found;
    }
    return this.doc.contents ?? undefined;
  }

  /** The key node of `key` inside the map at `segments` (for unknown keys). */
  keyNode(segments: Array<string | number>, key: string): Node | undefined {
    const map = this.doc.getIn(segments, true);
    if (isMap(map)) {
      const pair = map.items.find((p: Pair) => isScalar(p.key) && (p.key as Scalar).value === key);
      if (pair && isScalar(pair.key)) return pair.key as Node;
    }
    return this.node(segments);
  }

  issueAt(segments: Array<string | number>, message: string, key?: string): ConfigIssue {
    const node = key === undefined ? this.node(segments) : this.keyNode(segments, key);
    const all = key === undefined ? segments : [...segments, key];
    return this.at(node?.range?.[0], formatPath(all), message);
  }
}

export function formatPath(segments: Array<string | number>): string {
  let out = '';
  for (const s of segments) out += typeof s === 'number' ? `[${s}]` : out ? `.${s}` : s;
  return out;
}

function pointerToSegments(pointer: string): Array<string | number> {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

const PLAIN_NUMBER = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;

/** Substitutes env references in scalar values; plain (unquoted) results that look like numbers/booleans become such. */
function applyEnv(doc: Document, loc: Locator, env: NodeJS.ProcessEnv, issues: ConfigIssue[]): void {
  visit(doc, {
    Scalar(key, node, ancestors) {
      if (key === 'key' || typeof node.value !== 'string' || !hasEnvRef(node.value)) return;
      try {
        const text = substituteEnv(node.value, env);
        if (node.type === 'PLAIN') {
          if (PLAIN_NUMBER.test(text)) node.value = Number(text);
          else if (text === 'true' || text === 'false') node.value = text === 'true';
          else node.value = text;
        } else node.value = text;
      } catch (err) {
        if (!(err instanceof EnvError)) throw err;
        issues.push(loc.at(node.range?.[0], formatPath(keyPath(ancestors, node)), err.message));
      }
    },
  });
}

/** The key path of `node` from the ancestors that yaml's visitor passes. */
function keyPath(ancestors: readonly unknown[], node: unknown): Array<string | number> {
  const out: Array<string | number> = [];
  const chain = [...ancestors, node];
  for (let i = 0; i < chain.length - 1; i++) {
    const here = chain[i];
    const next = chain[i + 1];
    if (isPair(here) && isScalar(here.key)) out.push(String((here.key as Scalar).value));
    else if (isSeq(here)) out.push(here.items.indexOf(next as never));
  }
  return out;
}

function errorMessageFor(e: ErrorObject): string {
  if (e.keyword === 'format' && e.params.format === 'duration') return 'must be a duration like "10s"';
  if (e.keyword === 'format' && e.params.format === 'size') return 'must be a size like "10MiB" or a number of bytes';
  if (e.keyword === 'format' && e.params.format === 'regex') return 'must be a valid regular expression';
  if (e.keyword === 'enum') return `${e.message}: ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  return e.message ?? 'is invalid';
}

function ajvIssues(errors: ErrorObject[], loc: Locator, data: any): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword === 'if') continue; // the branch's own errors say what is wrong
    const segments = pointerToSegments(e.instancePath);
    // An unknown plugin type is reported once with the known ones, not as branch noise.
    const last = segments[segments.length - 1];
    if (e.keyword === 'enum' && last === 'type' && segments.length === 3) {
      const section = segments[0] as string;
      const kindWord = section.slice(0, -1);
      const issue = loc.issueAt(segments, `unknown ${kindWord} type ${JSON.stringify(getAt(data, segments))}; known types: ${(e.params.allowedValues as string[]).join(', ')}`);
      pushUnique(out, seen, issue);
      continue;
    }
    let issue: ConfigIssue;
    if (e.keyword === 'additionalProperties') {
      issue = loc.issueAt(segments, 'unknown key', e.params.additionalProperty as string);
    } else if (e.keyword === 'required') {
      issue = loc.issueAt(segments, `missing required key "${e.params.missingProperty}"`);
      issue.path = formatPath([...segments, e.params.missingProperty as string]);
    } else {
      issue = loc.issueAt(segments, errorMessageFor(e));
    }
    pushUnique(out, seen, issue);
  }
  return out;
}

function byPosition(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.sort((a, b) => a.line - b.line || a.column - b.column);
}

function pushUnique(out: ConfigIssue[], seen: Set<string>, issue: ConfigIssue): void {
  const key = formatIssue(issue);
  if (!seen.has(key)) {
    seen.add(key);
    out.push(issue);
  }
}

function getAt(data: any, segments: Array<string | number>): unknown {
  return segments.reduce((v, s) => (v == null ? undefined : v[s]), data);
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Plugins known before custom ones (the built-ins). */
  builtins: PluginDefinition[];
  /** Text to use instead of reading the file (tests, stdin). */
  text?: string;
}

export async function loadConfig(file: string, opts: LoadOptions): Promise<PipelineConfig> {
  const env = opts.env ?? process.env;
  let text: string;
  try {
    text = opts.text ?? readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, line: 1, column: 1, path: '', message: `cannot read: ${(err as Error).message}` }]);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const loc = new Locator(file, doc, lines);
  if (doc.errors.length) {
    throw new ConfigError(doc.errors.map((e) => loc.at(e.pos[0], '', `YAML syntax: ${e.message.split('\n')[0]}`)));
  }
  const issues: ConfigIssue[] = [];
  applyEnv(doc, loc, env, issues);
  if (issues.length) throw new ConfigError(issues);

  const data = (doc.toJS() ?? {}) as Record<string, any>;
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError([loc.at(0, '', 'the file must be a mapping with agent, inputs, processors and outputs')]);
  }

  // Custom plugins join the schema, so they load before validation.
  let plugins = opts.builtins;
  const pluginDir = data.agent?.plugin_dir;
  if (typeof pluginDir === 'string') {
    try {
      plugins = [...plugins, ...(await loadCustomPlugins(path.resolve(path.dirname(file), pluginDir), plugins))];
    } catch (err) {
      throw new ConfigError([loc.issueAt(['agent', 'plugin_dir'], (err as Error).message)]);
    }
  }

  const ajv = createAjv();
  const validate = ajv.compile(composeSchema(plugins));
  if (!validate(data)) throw new ConfigError(byPosition(ajvIssues(validate.errors ?? [], loc, data)));

  // Rules that span fields, checked after the schema.
  const agent = data.agent as AgentConfig;
  const resolved: Record<'inputs' | 'processors' | 'outputs', PluginInstanceConfig[]> = { inputs: [], processors: [], outputs: [] };
  for (const section of ['inputs', 'processors', 'outputs'] as const) {
    const counts = new Map<string, number>();
    const ids = new Set<string>();
    (data[section] as any[]).forEach((entry, index) => {
      const definition = plugins.find((p) => SECTION_OF[p.kind] === section && p.type === entry.type)!;
      const n = (counts.get(entry.type) ?? 0) + 1;
      counts.set(entry.type, n);
      const id: string = entry.id ?? (n === 1 ? entry.type : `${entry.type}_${n}`);
      if (ids.has(id)) issues.push(loc.issueAt([section, index, ...(entry.id ? ['id'] : [])], `id "${id}" is used twice in ${section}; give each instance its own id`));
      ids.add(id);
      const options: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(entry)) if (!COMMON_KEYS.has(k) || k in definition.schema.properties) options[k] = v;
      resolved[section].push({
        id,
        type: entry.type,
        kind: definition.kind,
        definition,
        options,
        dataDir: path.resolve(entry.data_dir ?? agent.data_dir, entry.data_dir ? '' : id),
        intervalMs: parseDuration(entry.interval ?? agent.interval),
        jitterMs: parseDuration(agent.jitter),
        tags: entry.tags ?? {},
        match: entry.match,
        batchSize: entry.batch_size ?? agent.batch_size,
        flushIntervalMs: parseDuration(entry.flush_interval ?? agent.flush_interval),
        bufferLimit: entry.buffer_limit ?? agent.buffer_limit,
        retryInitialMs: parseDuration(entry.retry_initial_backoff ?? '500ms'),
        retryMaxMs: parseDuration(entry.retry_max_backoff ?? '5m'),
        fingerprint: JSON.stringify([entry, agent.interval, agent.jitter, agent.flush_interval, agent.batch_size, agent.buffer_limit, agent.data_dir]),
      });
    });
  }
  checkMatchRegexes(resolved, loc, issues);
  checkPendingLimits(resolved, loc, issues);
  if (issues.length) throw new ConfigError(issues);

  return {
    file,
    agent,
    hostname: agent.hostname || os.hostname(), // empty (an unset ${VAR:-}) means the machine's
    ...resolved,
    plugins,
    raw: data,
  };
}

/**
 * Inputs that hold back while N events are unaccepted must not meet an
 * output whose buffer holds fewer than their windows together: the output's
 * overflow would drop their events, which they count as handled. (Untracked
 * events are dropped first, see RunningOutput.push.) An output whose match
 * leaves an input out (inputs, exclude_inputs, or kinds without logs: the
 * windowed inputs emit logs) does not count it; label rules cannot be judged
 * before the lines come, so they count.
 */
function checkPendingLimits(resolved: Record<string, PluginInstanceConfig[]>, loc: Locator, issues: ConfigIssue[]): void {
  const windows: Array<{ index: number; id: string; option: string; pending: number }> = [];
  resolved.inputs!.forEach((input, index) => {
    const option = input.definition.pendingLimitOption;
    const pending = option === undefined ? undefined : input.options[option];
    if (option !== undefined && typeof pending === 'number') windows.push({ index, id: input.id, option, pending });
  });
  if (!windows.length) return;
  const reported = new Set<number>();
  const line = makeLog({ message: '' });
  for (const output of resolved.outputs!) {
    const m = output.match;
    const routes = compileMatch(m && { kinds: m.kinds, inputs: m.inputs, exclude_inputs: m.exclude_inputs });
    const feeding = windows.filter((w) => routes({ event: line, input: w.id }));
    const total = feeding.reduce((n, w) => n + w.pending, 0);
    if (total <= output.bufferLimit) continue;
    const last = feeding[feeding.length - 1]!;
    if (reported.has(last.index)) continue; // one issue per key
    reported.add(last.index);
    const what = feeding.length === 1 ? `${last.option} (${total})` : `${feeding.map((w) => `inputs.${w.id}.${w.option} (${w.pending})`).join(' + ')} = ${total}`;
    issues.push(
      loc.issueAt(
        ['inputs', last.index, last.option],
        `${what} is more than outputs.${output.id} (buffer_limit ${output.bufferLimit}) can buffer: a busy output would drop lines of a full window, which are never read again. Lower ${last.option} or raise buffer_limit`,
      ),
    );
  }
}

function checkMatchRegexes(resolved: Record<string, PluginInstanceConfig[]>, loc: Locator, issues: ConfigIssue[]): void {
  for (const section of ['processors', 'outputs']) {
    resolved[section]!.forEach((inst, index) => {
      for (const [label, pattern] of Object.entries(inst.match?.labels ?? {})) {
        try {
          new RegExp(pattern);
        } catch (err) {
          issues.push(loc.issueAt([section, index, 'match', 'labels', label], `invalid regular expression: ${(err as Error).message}`));
        }
      }
    });
  }
}

