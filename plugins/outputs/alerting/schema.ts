// The JSON Schemas of alerting rules and notifiers. One schema serves the
// pipeline YAML (validated by the config loader with line and column) and the
// API (POST /alerts/configure validates with the same schema), so a rule is
// accepted or refused the same way wherever it is written.

export const SEVERITIES = ['info', 'warning', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Comparisons, with OpsHub's words for them. */
export const CONDITION_WORDS: Record<string, Op> = {
  '>': '>', '>=': '>=', '<': '<', '<=': '<=', '==': '==', '!=': '!=',
  greater_than: '>', greater_than_or_equal: '>=', greater_or_equal: '>=',
  less_than: '<', less_than_or_equal: '<=', less_or_equal: '<=',
  equal: '==', equals: '==', not_equal: '!=',
};
export type Op = '>' | '>=' | '<' | '<=' | '==' | '!=';

export const RULE_TYPES = ['threshold', 'log_rate', 'absent'] as const;
export type RuleType = (typeof RULE_TYPES)[number];

const duration = (description: string, dflt: string) => ({ type: 'string', format: 'duration', default: dflt, description });
const regex = (description: string) => ({ type: 'string', format: 'regex', default: '', description });

export const TAG_MATCHERS = {
  type: 'object',
  default: {},
  description:
    'Tag name → the value it must have (a string), or an object with any of `equals`, `not`, `regex`, `not_regex` (all given must hold). A tag that is absent has the value "".',
  additionalProperties: {
    anyOf: [
      { type: 'string' },
      {
        type: 'object',
        additionalProperties: false,
        minProperties: 1,
        properties: {
          equals: { type: 'string', description: 'The value must be this.' },
          not: { type: 'string', description: 'The value must not be this.' },
          regex: { type: 'string', format: 'regex', description: 'The value must match this regular expression (anchor it with ^…$ for a whole match).' },
          not_regex: { type: 'string', format: 'regex', description: 'The value must not match this regular expression.' },
        },
      },
    ],
  },
};

const CONDITION = {
  enum: Object.keys(CONDITION_WORDS),
  default: '>',
  description: 'How the value compares with `threshold`: >, >=, <, <=, ==, != (or OpsHub\'s words: greater_than, less_than, …).',
};

const NOTIFY = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description: 'Where this rule\'s alerts go. Left out: every notifier.',
  properties: {
    notifiers: { type: 'array', items: { type: 'string' }, default: [], description: 'Names of the notifiers to use; empty: all of them.' },
    email: { type: 'array', items: { type: 'string', pattern: '^[^@\\s]+@[^@\\s]+$' }, default: [], description: 'Recipients: the email notifiers send this rule\'s alerts to these addresses instead of their own `to`.' },
    webhook: { type: 'string', pattern: '^(https?://.+)?$', default: '', description: 'An extra webhook URL (the JSON payload) for this rule\'s alerts.' },
  },
};

const COMMON_RULE = {
  name: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,128}$', description: 'Unique name (letters, digits, _ . : -); the alert\'s `alertname` label and `alert_type`.' },
  type: { enum: [...RULE_TYPES], description: 'threshold (a metric compared with a value), log_rate (counting logs in a window), absent (no data for a while).' },
  enabled: { type: 'boolean', default: true, description: 'false keeps the rule but never evaluates it.' },
  severity: { enum: [...SEVERITIES], default: 'warning', description: 'info, warning or critical.' },
  message: {
    type: 'string',
    default: '',
    description: 'Message template: `{{value}}`, `{{threshold}}`, `{{rule}}`, `{{severity}}`, and the series\' tags (`{{gpu_index}}`, `{{container}}`…). Empty: a message made from the rule.',
  },
  labels: { type: 'object', additionalProperties: { type: 'string' }, default: {}, description: 'Extra labels on every alert of the rule (Alertmanager routes on them).' },
  for: duration('How long the condition must hold before the alert fires (pending until then). For absent rules: how long without data.', '0s'),
  keep_firing_for: duration('Once firing, keep firing this long after the condition clears (a value flapping around the threshold gives one alert, not a storm).', '0s'),
  notify: NOTIFY,
};

const THRESHOLD_RULE = {
  metric: { type: 'string', minLength: 1, description: 'Metric as `<name>_<field>` (the Prometheus name), e.g. nvidia_smi_temperature_gpu_celsius; `*` is a wildcard.' },
  tags: TAG_MATCHERS,
  condition: CONDITION,
  threshold: { type: 'number', description: 'The value compared with.' },
  aggregate: {
    enum: ['last', 'avg', 'min', 'max', 'increase'],
    default: 'last',
    description: 'What is compared: the last value, or the avg/min/max over `window`, or the increase over `window` (counter resets handled).',
  },
  window: duration('The window of avg, min, max and increase.', '5m'),
  stale_after: duration('A series not reported for this long is gone (its alert resolves; an absent rule reports it).', '5m'),
};

export const LOG_MATCH = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description: 'Which of the lines in scope count (all conditions given must hold); empty: every line.',
  properties: {
    levels: { type: 'array', items: { enum: ['trace', 'debug', 'info', 'success', 'warning', 'error', 'critical'] }, default: [], description: 'Levels that count.' },
    min_level: { enum: ['', 'trace', 'debug', 'info', 'success', 'warning', 'error', 'critical'], default: '', description: 'This level or more severe counts.' },
    categories: { type: 'array', items: { type: 'string' }, default: [], description: 'Categories (attributes.category) that count.' },
    message: regex('Regular expression the message must match.'),
    attributes: { type: 'object', additionalProperties: { type: 'string', format: 'regex' }, default: {}, description: 'Attribute name → regular expression its value (as text) must match.' },
  },
};

const LOG_RATE_RULE = {
  containers: regex('Lines in scope: containers (label container_name or container, else the source) matching this regular expression; empty: all.'),
  sources: regex('Lines in scope: sources matching this regular expression; empty: all.'),
  match: LOG_MATCH,
  measure: {
    enum: ['count', 'share', 'avg', 'max', 'quantile'],
    default: 'count',
    description: 'count: matching lines in the window; share: matching lines in % of the lines in scope; avg, max, quantile: of the numeric attribute `attribute` of matching lines.',
  },
  attribute: { type: 'string', default: '', description: 'The numeric attribute avg, max and quantile read (e.g. duration_ms).' },
  quantile: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 0.95, description: 'Which quantile (0.95 = p95).' },
  window: duration('The sliding window lines are counted in.', '5m'),
  min_events: { type: 'integer', minimum: 1, default: 1, description: 'share, avg, max, quantile: lines (in scope, resp. with the attribute) needed in the window before the value is compared.' },
  group_by: {
    type: 'array',
    items: { type: 'string' },
    default: ['container'],
    description: 'One alert per value of these: `container`, `source`, `level`, `category`, or a label or attribute name. Empty: one for all lines.',
  },
  condition: CONDITION,
  threshold: { type: 'number', description: 'The value compared with (a % for share).' },
};

const ABSENT_RULE = {
  metric: { type: 'string', default: '', description: 'Metric (`<name>_<field>`, `*` wildcard) that must keep coming; empty: watch logs instead.' },
  tags: TAG_MATCHERS,
  containers: regex('Logs: containers whose lines must keep coming (with an empty `metric`).'),
  sources: regex('Logs: sources whose lines must keep coming (with an empty `metric`).'),
  group_by: {
    type: 'array',
    items: { type: 'string' },
    default: [],
    description: 'One alert per value of these tags (metrics) or of container/source/labels (logs), for series seen before. Empty: one alert when nothing at all arrives.',
  },
  forget_after: duration('A series absent this long is forgotten (its alert resolves); "0": never.', '24h'),
};

/**
 * One branch of a `type`-discriminated schema (rules, notifiers): when
 * `type` is this one, the common keys and this type's own, nothing else.
 */
function typeBranch(common: { type: { description: string } }, type: string, own: Record<string, unknown>, required: string[]) {
  return {
    if: { type: 'object', properties: { type: { const: type } }, required: ['type'] },
    then: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'type', ...required],
      properties: { ...common, ...own, type: { const: type, description: common.type.description } },
    },
  };
}

function ruleBranch(type: RuleType, own: Record<string, unknown>, required: string[]) {
  const keys = type === 'absent' ? { ...own, for: duration('How long without data before the alert fires.', '5m') } : own;
  return typeBranch(COMMON_RULE, type, keys, required);
}

/** One rule (YAML `rules[]` and the API's POST /alerts/configure). */
export const RULE_SCHEMA = {
  type: 'object',
  description: 'An alerting rule; `type` decides which keys apply.',
  required: ['name', 'type'],
  properties: { name: COMMON_RULE.name, type: COMMON_RULE.type },
  allOf: [
    ruleBranch('threshold', THRESHOLD_RULE, ['metric', 'threshold']),
    ruleBranch('log_rate', LOG_RATE_RULE, ['threshold']),
    ruleBranch('absent', ABSENT_RULE, []),
    // avg, max and quantile read an attribute.
    {
      if: { type: 'object', properties: { type: { const: 'log_rate' }, measure: { enum: ['avg', 'max', 'quantile'] } }, required: ['type', 'measure'] },
      then: { type: 'object', properties: { attribute: { type: 'string', minLength: 1 } }, required: ['attribute'] },
    },
  ],
};

// --- notifiers ----------------------------------------------------------------

export const NOTIFIER_TYPES = ['alertmanager', 'webhook', 'email'] as const;
export type NotifierType = (typeof NOTIFIER_TYPES)[number];

const COMMON_NOTIFIER = {
  name: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'Unique name (rules\' `notify.notifiers`, self-metrics).' },
  type: { enum: [...NOTIFIER_TYPES], description: 'alertmanager, webhook (JSON, Slack or Teams) or email.' },
  severities: { type: 'array', items: { enum: [...SEVERITIES] }, default: [...SEVERITIES], description: 'Severities this notifier sends.' },
  repeat_interval: duration('Send a firing alert again this often until it resolves or is acknowledged; "0": once.', '4h'),
  send_resolved: { type: 'boolean', default: true, description: 'Also send when an alert resolves.' },
  timeout: duration('Longest wait for one delivery.', '10s'),
  queue_size: { type: 'integer', minimum: 1, default: 1000, description: 'Most notifications waiting while the receiver is down; beyond, the oldest are dropped (counted as failed).' },
  retry_initial_backoff: duration('First wait before retrying a failed delivery; doubles each time, with jitter.', '1s'),
  retry_max_backoff: duration('Longest wait between retries.', '5m'),
  retry_for: duration('A notification not delivered for this long is given up (counted as failed); a firing alert is tried again after as long.', '1h'),
};

const HEADERS = { type: 'object', additionalProperties: { type: 'string' }, default: {}, description: 'Extra HTTP headers (e.g. Authorization).' };

const ALERTMANAGER_NOTIFIER = {
  url: { type: 'string', pattern: '^https?://', description: 'Alertmanager\'s base URL, e.g. http://alertmanager:9093 (alerts go to <url>/api/v2/alerts).' },
  resend_interval: duration('Firing alerts are sent again this often (as Prometheus does), so Alertmanager keeps them active; acknowledged ones too.', '1m'),
  headers: HEADERS,
};

const WEBHOOK_NOTIFIER = {
  url: { type: 'string', pattern: '^https?://', description: 'Where to POST.' },
  format: { enum: ['json', 'slack', 'teams'], default: 'json', description: 'json: OpsHub\'s payload (see the README); slack: a Slack incoming-webhook message; teams: a Microsoft Teams (Workflows) Adaptive Card message.' },
  secret: { type: 'string', default: '', description: 'When set, each request carries `X-OpsHub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.' },
  headers: HEADERS,
};

const EMAIL_NOTIFIER = {
  host: { type: 'string', minLength: 1, description: 'SMTP server.' },
  port: { type: 'integer', minimum: 1, maximum: 65535, default: 587, description: 'SMTP port (587 STARTTLS, 465 TLS, 25 plain).' },
  security: { enum: ['starttls', 'tls', 'none'], default: 'starttls', description: 'starttls: upgrade the connection (required); tls: TLS from the start (port 465); none: plain (trusted networks only).' },
  username: { type: 'string', default: '', description: 'SMTP login; empty: no authentication.' },
  password: { type: 'string', default: '', description: 'SMTP password (use ${SMTP_PASSWORD}).' },
  insecure_skip_verify: { type: 'boolean', default: false, description: 'Accept any server certificate (self-signed test servers only).' },
  from: { type: 'string', minLength: 3, description: 'Sender, e.g. "OpsHub <opshub@example.com>".' },
  to: { type: 'array', items: { type: 'string' }, default: [], description: 'Recipients (a rule\'s `notify.email` replaces them for its alerts).' },
  subject: { type: 'string', default: '[{{severity}}] {{status}}: {{message}}', description: 'Subject template (the message template\'s keys, plus `{{status}}`: FIRING or RESOLVED).' },
};

function notifierBranch(type: NotifierType, own: Record<string, unknown>, required: string[]) {
  return typeBranch(COMMON_NOTIFIER, type, own, required);
}

export const NOTIFIER_SCHEMA = {
  type: 'object',
  description: 'A destination for alerts; `type` decides which keys apply.',
  required: ['name', 'type'],
  properties: { name: COMMON_NOTIFIER.name, type: COMMON_NOTIFIER.type },
  allOf: [
    notifierBranch('alertmanager', ALERTMANAGER_NOTIFIER, ['url']),
    notifierBranch('webhook', WEBHOOK_NOTIFIER, ['url']),
    notifierBranch('email', EMAIL_NOTIFIER, ['host', 'from']),
  ],
};

// --- the configured shapes -------------------------------------------------------

export type TagMatcher = string | { equals?: string; not?: string; regex?: string; not_regex?: string };

export interface NotifySpec {
  notifiers: string[];
  email: string[];
  webhook: string;
}

interface RuleBase {
  name: string;
  enabled: boolean;
  severity: Severity;
  message: string;
  labels: Record<string, string>;
  for: string;
  keep_firing_for: string;
  notify: NotifySpec;
}

export interface ThresholdSpec extends RuleBase {
  type: 'threshold';
  metric: string;
  tags: Record<string, TagMatcher>;
  condition: string;
  threshold: number;
  aggregate: 'last' | 'avg' | 'min' | 'max' | 'increase';
  window: string;
  stale_after: string;
}

export interface LogMatchSpec {
  levels: string[];
  min_level: string;
  categories: string[];
  message: string;
  attributes: Record<string, string>;
}

export interface LogRateSpec extends RuleBase {
  type: 'log_rate';
  containers: string;
  sources: string;
  match: LogMatchSpec;
  measure: 'count' | 'share' | 'avg' | 'max' | 'quantile';
  attribute: string;
  quantile: number;
  window: string;
  min_events: number;
  group_by: string[];
  condition: string;
  threshold: number;
}

export interface AbsentSpec extends RuleBase {
  type: 'absent';
  metric: string;
  tags: Record<string, TagMatcher>;
  containers: string;
  sources: string;
  group_by: string[];
  forget_after: string;
}

export type RuleSpec = ThresholdSpec | LogRateSpec | AbsentSpec;

interface NotifierBase {
  name: string;
  severities: Severity[];
  repeat_interval: string;
  send_resolved: boolean;
  timeout: string;
  queue_size: number;
  retry_initial_backoff: string;
  retry_max_backoff: string;
  retry_for: string;
}

export interface AlertmanagerSpec extends NotifierBase {
  type: 'alertmanager';
  url: string;
  resend_interval: string;
  headers: Record<string, string>;
}

export interface WebhookSpec extends NotifierBase {
  type: 'webhook';
  url: string;
  format: 'json' | 'slack' | 'teams';
  secret: string;
  headers: Record<string, string>;
}

export interface EmailSpec extends NotifierBase {
  type: 'email';
  host: string;
  port: number;
  security: 'starttls' | 'tls' | 'none';
  username: string;
  password: string;
  insecure_skip_verify: boolean;
  from: string;
  to: string[];
  subject: string;
}

export type NotifierSpec = AlertmanagerSpec | WebhookSpec | EmailSpec;
