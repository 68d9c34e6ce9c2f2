// The alerts API on the agent's HTTP server (OpsHub's paths and shapes) and
// its route schemas, which validate queries and document every route in
// /openapi.json. Bodies are read and validated here, strictly (unknown keys
// and wrong types are refused with every reason, never coerced or dropped),
// with the same rule schema the pipeline YAML uses.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERROR_SCHEMA, errorResponse, readBody, sendJson, type JsonSchema, type Route, type RouteSchema } from '../../../core/http.ts';
import { createAjv } from '../../../core/config.ts';
import { parseDuration } from '../../../core/units.ts';
import type { Alert } from './engine.ts';
import { alertJson } from './notify.ts';
import { RuleError, validationReasons } from './rules.ts';
import { RULE_SCHEMA, SEVERITIES, type RuleSpec, type Severity } from './schema.ts';

export interface RuleView {
  spec: RuleSpec;
  origin: 'default' | 'config' | 'api';
  /** For API rules that replace a rule of the pipeline file or a default. */
  overrides?: 'default' | 'config';
}

/** What the routes need from the plugin. */
export interface AlertsBackend {
  alerts(): Alert[];
  get(id: string): Alert | undefined;
  addCustom(input: CustomAlertInput): Alert;
  acknowledge(id: string, by: string, notes: string | null): Alert | undefined;
  rules(): RuleView[];
  /** Validates and stores a rule; returns whether it replaced one. Throws RuleError. */
  configure(raw: unknown): Promise<{ created: boolean; rule: RuleView }>;
  /** Removes a rule; undefined when there is none of that name. */
  deleteRule(name: string): Promise<{ restored: 'default' | 'config' | null } | undefined>;
}

export interface CustomAlertInput {
  alert_type: string;
  severity: Severity;
  message: string;
  container_name?: string | null;
  metric_value?: number | null;
  threshold_value?: number | null;
  labels?: Record<string, string>;
  resolve_after_ms?: number;
}

// --- schemas --------------------------------------------------------------------------------

const nstr = (description: string): JsonSchema => ({ type: 'string', nullable: true, description });
const nnum = (description: string): JsonSchema => ({ type: 'number', nullable: true, description });
const ntime = (description: string): JsonSchema => ({ type: 'string', format: 'date-time', nullable: true, description });

export const ALERT_SCHEMA: JsonSchema = {
  type: 'object',
  description: 'An alert: one per rule and series (GPU, container…), or a custom alert.',
  required: ['id', 'alert_type', 'severity', 'message', 'container_name', 'metric_value', 'threshold_value', 'timestamp', 'resolved', 'state', 'rule', 'labels', 'started_at', 'resolved_at', 'acknowledged', 'acknowledged_by'],
  properties: {
    id: { type: 'string', description: 'Alert id (16 hex digits).' },
    alert_type: { type: 'string', description: 'The rule\'s name, or the alert_type of a custom alert.' },
    severity: { type: 'string', enum: [...SEVERITIES], description: 'info, warning or critical.' },
    message: { type: 'string', description: 'The rule\'s message with the series\' tags and value filled in.' },
    container_name: nstr('The container the alert is about (tag or group container_name / container), if any.'),
    metric_value: nnum('The value that was compared (for absent rules: seconds without data).'),
    threshold_value: nnum('The threshold (for absent rules: the `for` in seconds).'),
    timestamp: { type: 'string', format: 'date-time', description: 'When it fired (pending alerts: since when the condition holds).' },
    resolved: { type: 'boolean', description: 'Whether it has resolved.' },
    state: { type: 'string', enum: ['pending', 'firing', 'resolved'], description: 'pending (condition true, `for` not yet elapsed), firing, resolved.' },
    rule: nstr('Rule name; null for custom alerts.'),
    rule_type: { type: 'string', enum: ['threshold', 'log_rate', 'absent', 'custom'], description: 'The kind of rule.' },
    labels: { type: 'object', additionalProperties: { type: 'string' }, description: 'alertname, severity, host, the rule\'s labels and the series\' tags.' },
    started_at: ntime('When it fired; null while pending.'),
    resolved_at: ntime('When it resolved; null while not resolved.'),
    last_evaluated_at: ntime('Last evaluation.'),
    acknowledged: { type: 'boolean', description: 'Acknowledged (no repeat notifications).' },
    acknowledged_by: nstr('Who acknowledged it.'),
    acknowledged_at: ntime('When.'),
    notes: nstr('Acknowledgement notes.'),
  },
};

const ERRORS = {
  400: {
    ...ERROR_SCHEMA,
    description: 'The body is not valid: `message` lists every reason, `reasons` has them one by one.',
    properties: { ...(ERROR_SCHEMA.properties as object), reasons: { type: 'array', items: { type: 'string' }, description: 'Every problem, e.g. "threshold must be number".' } },
  },
};

/** The rule schema in OpenAPI 3.0's dialect (no if/then/const): one of the three rule shapes. */
export function openApiSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(openApiSchema);
  if (typeof schema !== 'object' || schema === null) return schema;
  const s = schema as Record<string, unknown>;
  if (Array.isArray(s.allOf) && s.allOf.some((x) => typeof x === 'object' && x !== null && 'if' in x)) {
    const shapes = (s.allOf as Array<Record<string, any>>).filter((x) => x.then?.properties?.type).map((x) => openApiSchema(x.then));
    return { description: s.description, oneOf: shapes };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === 'const') out.enum = [v];
    // Valid in both dialects (OpenAPI 3.0's exclusiveMinimum is a boolean, JSON Schema's a number).
    else if (k === 'exclusiveMinimum' && typeof v === 'number') out.minimum = v;
    else if (k === 'properties' || k === 'patternProperties') {
      out[k] = Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([pk, pv]) => [pk, openApiSchema(pv)]));
    } else if (['items', 'additionalProperties', 'anyOf', 'oneOf', 'not'].includes(k)) out[k] = openApiSchema(v);
    else out[k] = v;
  }
  return out;
}

const CONFIGURE_BODY = (() => {
  const doc = openApiSchema(RULE_SCHEMA) as { oneOf: Array<Record<string, any>> };
  for (const shape of doc.oneOf) {
    shape.properties.duration_seconds = { type: 'number', minimum: 0, description: 'OpsHub\'s name for `for`, in seconds.' };
  }
  return { ...doc, description: 'A rule, as in the pipeline file\'s `rules` (OpsHub\'s `condition` words and `duration_seconds` are accepted).' };
})();

const CUSTOM_BODY: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['alert_type', 'severity', 'message'],
  properties: {
    alert_type: { type: 'string', minLength: 1, maxLength: 200, description: 'What kind of alert (the `alertname` label).' },
    severity: { type: 'string', enum: [...SEVERITIES], description: 'info, warning or critical.' },
    message: { type: 'string', minLength: 1, maxLength: 10_000, description: 'What happened.' },
    container_name: { type: 'string', nullable: true, description: 'The container it is about.' },
    metric_value: { type: 'number', nullable: true, description: 'A value to show.' },
    threshold_value: { type: 'number', nullable: true, description: 'The threshold it passed.' },
    labels: { type: 'object', additionalProperties: { type: 'string' }, description: 'Extra labels (Alertmanager routes on them).' },
    resolve_after: { type: 'string', format: 'duration', description: 'Resolves by itself after this long (default: the plugin\'s custom_resolve_after).' },
  },
};

const ACK_BODY: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['acknowledged_by'],
  properties: {
    acknowledged_by: { type: 'string', minLength: 1, maxLength: 200, description: 'Who acknowledges.' },
    notes: { type: 'string', nullable: true, maxLength: 10_000, description: 'Why, what is being done.' },
  },
};

const RULE_VIEW: JsonSchema = {
  type: 'object',
  description: 'A rule in force, with defaults applied, and where it comes from.',
  required: ['name', 'type', 'origin'],
  additionalProperties: true,
  properties: {
    name: { type: 'string', description: 'Rule name.' },
    type: { type: 'string', enum: ['threshold', 'log_rate', 'absent'], description: 'Kind of rule.' },
    origin: { type: 'string', enum: ['default', 'config', 'api'], description: 'default: a built-in rule; config: the pipeline file; api: POST /alerts/configure (kept across restarts).' },
    overrides: { type: 'string', enum: ['default', 'config'], description: 'An API rule replacing a built-in or pipeline-file rule of the same name.' },
  },
};

const TAGS = ['alerts'];

// --- validation ------------------------------------------------------------------------------

type Validator = ((data: unknown) => boolean) & { errors?: Array<{ instancePath: string; keyword: string; message?: string; params: Record<string, unknown> }> | null };

function reasonsOf(validate: Validator): string[] {
  return validationReasons(validate.errors, 'the body');
}

function badRequest(res: ServerResponse, reasons: string[]): void {
  sendJson(res, 400, { error: 'bad_request', message: reasons.join('; '), reasons });
}

async function jsonBody(req: IncomingMessage, res: ServerResponse): Promise<{ ok: true; value: unknown } | { ok: false }> {
  let text: string;
  try {
    text = (await readBody(req, 256 * 1024)).toString('utf8');
  } catch (err) {
    const status = (err as { status?: number }).status ?? 400;
    sendJson(res, status, { error: status === 413 ? 'payload_too_large' : 'bad_request', message: (err as Error).message });
    return { ok: false };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    badRequest(res, [`the body is not JSON: ${(err as Error).message}`]);
    return { ok: false };
  }
}

// --- routes ------------------------------------------------------------------------------------

export function alertRoutes(backend: AlertsBackend, opts: { customResolveMs: number }): Route[] {
  const ajv = createAjv();
  // ajv reads OpenAPI's `nullable` itself.
  const validateCustom = ajv.compile(CUSTOM_BODY) as Validator;
  const validateAck = ajv.compile(ACK_BODY) as Validator;

  const listSchema: RouteSchema = {
    summary: 'Alerts',
    description:
      'Alerts that were pending, firing or resolved in the last `hours` hours (pending and firing ones whatever their age), newest first. ' +
      'The agent keeps resolved alerts for the `history` option (default 7 days); the DuckDB table opshub_alerts has them all.',
    tags: TAGS,
    querystring: {
      type: 'object',
      properties: {
        severity: { type: 'string', enum: [...SEVERITIES], description: 'Only this severity.' },
        resolved: { type: 'boolean', description: 'true: only resolved alerts; false: only pending and firing ones.' },
        hours: { type: 'number', exclusiveMinimum: 0, maximum: 8760, default: 24, description: 'How far back (hours; fractions allowed).' },
        state: { type: 'string', enum: ['pending', 'firing', 'resolved'], description: 'Only this state.' },
        rule: { type: 'string', description: 'Only alerts of this rule.' },
        container: { type: 'string', description: 'Only alerts about this container.' },
        limit: { type: 'integer', minimum: 1, maximum: 10000, default: 1000, description: 'Most alerts returned.' },
      },
    },
    response: { 200: { description: 'The alerts, newest first.', type: 'array', items: ALERT_SCHEMA } },
  };

  const activeSchema: RouteSchema = {
    summary: 'Firing alerts',
    description: 'Alerts firing now (pending ones are not counted), most severe first.',
    tags: TAGS,
    response: {
      200: {
        description: 'Firing alerts and counts by severity.',
        type: 'object',
        required: ['alerts', 'active_count', 'critical_count', 'warning_count'],
        properties: {
          alerts: { type: 'array', items: ALERT_SCHEMA, description: 'Firing alerts.' },
          active_count: { type: 'integer', description: 'How many fire.' },
          critical_count: { type: 'integer', description: 'Of which critical.' },
          warning_count: { type: 'integer', description: 'Of which warning.' },
          info_count: { type: 'integer', description: 'Of which info.' },
          pending_count: { type: 'integer', description: 'Alerts pending (condition true, `for` not yet elapsed).' },
        },
      },
    },
  };

  const sevRank = (s: string) => SEVERITIES.indexOf(s as Severity);
  const newest = (a: Alert, b: Alert) => (b.started_at ?? b.active_at) - (a.started_at ?? a.active_at);

  return [
    {
      method: 'GET',
      path: '/alerts',
      auth: 'agent',
      schema: listSchema,
      reply: (r) => {
        const q = r.query as { severity?: string; resolved?: boolean; hours: number; state?: string; rule?: string; container?: string; limit: number };
        const cutoff = Date.now() - q.hours * 3_600_000;
        return backend
          .alerts()
          .filter((a) => a.state !== 'resolved' || (a.resolved_at ?? 0) >= cutoff)
          .filter((a) => (q.severity ? a.severity === q.severity : true))
          .filter((a) => (q.resolved === undefined ? true : (a.state === 'resolved') === q.resolved))
          .filter((a) => (q.state ? a.state === q.state : true))
          .filter((a) => (q.rule ? a.rule === q.rule : true))
          .filter((a) => (q.container ? a.container_name === q.container : true))
          .sort(newest)
          .slice(0, q.limit)
          .map(alertJson);
      },
    },
    {
      method: 'GET',
      path: '/alerts/active',
      auth: 'agent',
      schema: activeSchema,
      reply: () => {
        const all = backend.alerts();
        const firing = all.filter((a) => a.state === 'firing').sort((a, b) => sevRank(b.severity) - sevRank(a.severity) || newest(a, b));
        const count = (s: Severity) => firing.filter((a) => a.severity === s).length;
        return {
          alerts: firing.map(alertJson),
          active_count: firing.length,
          critical_count: count('critical'),
          warning_count: count('warning'),
          info_count: count('info'),
          pending_count: all.filter((a) => a.state === 'pending').length,
        };
      },
    },
    {
      method: 'POST',
      path: '/alerts',
      auth: 'agent',
      schema: {
        summary: 'Record a custom alert',
        description: 'A custom alert fires at once and is notified like any other; it resolves by itself after `resolve_after` (default: the plugin\'s custom_resolve_after).',
        tags: TAGS,
        body: CUSTOM_BODY,
        response: { 201: { ...ALERT_SCHEMA, description: 'The alert recorded.' }, ...ERRORS },
      },
      handler: async (req, res) => {
        const body = await jsonBody(req, res);
        if (!body.ok) return;
        if (!validateCustom(body.value)) return badRequest(res, reasonsOf(validateCustom));
        const b = body.value as Omit<CustomAlertInput, 'resolve_after_ms'> & { resolve_after?: string };
        const { resolve_after, ...rest } = b;
        const alert = backend.addCustom({ ...rest, resolve_after_ms: resolve_after ? parseDuration(resolve_after) : opts.customResolveMs });
        sendJson(res, 201, alertJson(alert));
      },
    },
    {
      method: 'POST',
      path: '/alerts/configure',
      auth: 'agent',
      schema: {
        summary: 'Create or replace a rule',
        description:
          'Validated like the pipeline file\'s rules (400 lists every reason). The rule is kept across restarts; one with the name of a pipeline-file or built-in rule replaces it (DELETE brings the original back).',
        tags: TAGS,
        body: CONFIGURE_BODY,
        response: {
          200: { description: 'A rule of that name was replaced.', type: 'object', required: ['status', 'rule'], properties: { status: { type: 'string', enum: ['replaced'], description: 'replaced' }, rule: RULE_VIEW } },
          201: { description: 'The rule was created.', type: 'object', required: ['status', 'rule'], properties: { status: { type: 'string', enum: ['created'], description: 'created' }, rule: RULE_VIEW } },
          ...ERRORS,
        },
      },
      handler: async (req, res) => {
        const body = await jsonBody(req, res);
        if (!body.ok) return;
        try {
          const { created, rule } = await backend.configure(body.value);
          sendJson(res, created ? 201 : 200, { status: created ? 'created' : 'replaced', rule: ruleJson(rule) });
        } catch (err) {
          if (err instanceof RuleError) return badRequest(res, err.reasons);
          throw err;
        }
      },
    },
    {
      method: 'GET',
      path: '/alerts/rules',
      auth: 'agent',
      schema: {
        summary: 'Rules in force',
        description: 'Every rule (built-in, pipeline file, API) with its defaults applied.',
        tags: TAGS,
        response: {
          200: {
            description: 'The rules.',
            type: 'object',
            required: ['rules', 'count'],
            properties: { rules: { type: 'array', items: RULE_VIEW, description: 'The rules, by name.' }, count: { type: 'integer', description: 'How many.' } },
          },
        },
      },
      reply: () => {
        const rules = backend.rules().sort((a, b) => a.spec.name.localeCompare(b.spec.name)).map(ruleJson);
        return { rules, count: rules.length };
      },
    },
    {
      method: 'DELETE',
      path: '/alerts/rules/:name',
      auth: 'agent',
      schema: {
        summary: 'Delete a rule',
        description:
          'Removes a rule (kept removed across restarts); its alerts resolve at the next evaluation. Deleting an API rule that replaced a pipeline-file or built-in rule brings that one back (`restored`).',
        tags: TAGS,
        params: { type: 'object', properties: { name: { type: 'string', description: 'Rule name.' } }, required: ['name'] },
        response: {
          200: {
            description: 'Deleted.',
            type: 'object',
            required: ['deleted', 'restored'],
            properties: {
              deleted: { type: 'string', description: 'The rule\'s name.' },
              restored: { type: 'string', nullable: true, enum: ['default', 'config', null], description: 'The rule now in force under that name, if any.' },
            },
          },
          404: errorResponse('No rule of that name.'),
        },
      },
      reply: async (r) => {
        const name = r.params.name!;
        const done = await backend.deleteRule(name);
        if (!done) {
          r.status(404);
          return { error: 'not_found', message: `no rule named "${name}"` };
        }
        return { deleted: name, restored: done.restored };
      },
    },
    {
      method: 'POST',
      path: '/alerts/:id/acknowledge',
      auth: 'agent',
      schema: {
        summary: 'Acknowledge an alert',
        description: 'Stops repeat notifications of the alert (it still resolves by itself, and the resolution is still sent).',
        tags: TAGS,
        params: { type: 'object', properties: { id: { type: 'string', description: 'Alert id.' } }, required: ['id'] },
        body: ACK_BODY,
        response: { 200: { ...ALERT_SCHEMA, description: 'The alert, acknowledged.' }, 404: errorResponse('No alert with that id (resolved alerts are kept for the `history` option).'), ...ERRORS },
      },
      handler: async (req, res, params) => {
        const body = await jsonBody(req, res);
        if (!body.ok) return;
        if (!validateAck(body.value)) return badRequest(res, reasonsOf(validateAck));
        const b = body.value as { acknowledged_by: string; notes?: string | null };
        const id = decodeURIComponent(params.id ?? '');
        const alert = backend.acknowledge(id, b.acknowledged_by, b.notes ?? null);
        if (!alert) return sendJson(res, 404, { error: 'not_found', message: `no alert with id "${id}"` });
        sendJson(res, 200, alertJson(alert));
      },
    },
  ];
}

export function ruleJson(r: RuleView): Record<string, unknown> {
  return { ...r.spec, origin: r.origin, ...(r.overrides ? { overrides: r.overrides } : {}) };
}

/** Turns OpsHub's aliases into the rule schema's keys: duration_seconds → for. */
export function normaliseRuleBody(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new RuleError(['the body must be a JSON object (a rule)']);
  const body = { ...(raw as Record<string, unknown>) };
  if ('duration_seconds' in body) {
    const s = body.duration_seconds;
    if (typeof s !== 'number' || !Number.isFinite(s) || s < 0) throw new RuleError(['duration_seconds must be a number of seconds >= 0']);
    if ('for' in body) throw new RuleError(['give either for or duration_seconds, not both']);
    delete body.duration_seconds;
    body.for = `${s}s`;
  }
  return body;
}
