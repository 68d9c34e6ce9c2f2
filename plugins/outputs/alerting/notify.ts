// Notifications: Alertmanager, webhooks (OpsHub JSON, Slack, Microsoft Teams)
// and email. Each notifier has its own bounded queue and worker: a delivery
// that fails is retried with backoff (and jitter) until it succeeds or
// `retry_for` passes; a full queue drops its oldest. Evaluation only enqueues,
// so a notifier that is down never blocks it or the pipeline.
//
// What was delivered is recorded on the alert (per notifier), and the
// dispatcher decides from those records what is due at each evaluation:
// a new firing alert, a repeat (unless acknowledged), a resolution. Because
// the records are saved with the alerts, a restart does not notify again.

import { createHmac, randomUUID } from 'node:crypto';
import { backoffDelay, sleep } from '../../../core/backoff.ts';
import type { Logger } from '../../../core/log.ts';
import { errorMessage } from '../../../core/log.ts';
import { parseDuration } from '../../../core/units.ts';
import type { Alert } from './engine.ts';
import { renderTemplate, formatValue } from './rules.ts';
import type { AlertmanagerSpec, EmailSpec, NotifierSpec, NotifySpec, WebhookSpec } from './schema.ts';
import { own, setOwn } from '../../../core/own.ts';

export type Status = 'firing' | 'resolved';

export interface Notification {
  alert: Alert;
  status: Status;
  queuedAt: number;
}

/** A delivery that cannot succeed by retrying (e.g. the receiver refused the payload). */
export class PermanentDeliveryError extends Error {
  override name = 'PermanentDeliveryError';
}

export interface Sender {
  /** How many notifications one delivery may carry. */
  readonly batch: number;
  send(items: Notification[], signal: AbortSignal): Promise<void>;
  close?(): Promise<void>;
}

export interface NotifierStats {
  sent_total: number;
  failed_total: number;
  retries_total: number;
  queued: number;
}

export interface NotifierDeps {
  log: Logger;
  now: () => number;
  /** Called with the live alert's id when a delivery succeeded or was given up. */
  delivered(id: string, notifier: string, status: Status, at: number): void;
  gaveUp(id: string, notifier: string, status: Status, at: number): void;
  random?: () => number;
}

/** The alert as the API and the webhook payload show it (OpsHub's fields first). */
export function alertJson(a: Alert): Record<string, unknown> {
  const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
  return {
    id: a.id,
    alert_type: a.alert_type,
    severity: a.severity,
    message: a.message,
    container_name: a.container_name,
    metric_value: a.value,
    threshold_value: a.threshold,
    timestamp: iso(a.started_at ?? a.active_at),
    resolved: a.state === 'resolved',
    state: a.state,
    rule: a.rule,
    rule_type: a.rule_type,
    labels: a.labels,
    started_at: iso(a.started_at),
    resolved_at: iso(a.resolved_at),
    last_evaluated_at: iso(a.last_evaluated_at),
    acknowledged: a.acknowledged,
    acknowledged_by: a.acknowledged_by,
    acknowledged_at: iso(a.acknowledged_at),
    notes: a.notes,
  };
}

export function templateVars(a: Alert, status: Status): Record<string, string | number | null> {
  return {
    ...a.tags,
    ...a.labels,
    value: a.value,
    threshold: a.threshold,
    message: a.message,
    severity: a.severity,
    rule: a.rule ?? a.alert_type,
    status: status === 'firing' ? 'FIRING' : 'RESOLVED',
    id: a.id,
  };
}

async function post(url: string, body: string, headers: Record<string, string>, signal: AbortSignal): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, signal });
  } catch (err) {
    throw new Error(`POST ${url}: ${errorMessage((err as { cause?: unknown }).cause ?? err)}`);
  }
  const text = await res.text().catch(() => '');
  if (res.ok) return;
  const why = `POST ${url}: HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
  // 408 and 429 are worth retrying; other 4xx mean the payload will never be taken.
  if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) throw new PermanentDeliveryError(why);
  throw new Error(why);
}

// --- Alertmanager ------------------------------------------------------------------------

/** A label name Alertmanager accepts ([a-zA-Z_][a-zA-Z0-9_]*). */
function labelName(name: string): string {
  const clean = name.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[a-zA-Z_]/.test(clean) ? clean : `_${clean}`;
}

export function alertmanagerPayload(items: Notification[], opts: { now: number; resendMs: number; externalUrl: string }): unknown[] {
  return items.map(({ alert: a, status }) => {
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(a.labels)) if (v !== '') setOwn(labels, labelName(k), v);
    const annotations: Record<string, string> = { summary: a.message, description: a.message, alert_id: a.id };
    if (a.value !== null) annotations.value = formatValue(a.value);
    if (a.threshold !== null) annotations.threshold = formatValue(a.threshold);
    if (a.acknowledged) {
      annotations.acknowledged_by = a.acknowledged_by ?? '';
      if (a.notes) annotations.acknowledgement_notes = a.notes;
    }
    const startsAt = new Date(a.started_at ?? a.active_at).toISOString();
    // Firing alerts are valid for 4 resend intervals (as Prometheus does): if the agent stops, Alertmanager resolves them.
    const endsAt = new Date(status === 'resolved' ? (a.resolved_at ?? opts.now) : opts.now + 4 * opts.resendMs).toISOString();
    const query = a.rule ? `?rule=${encodeURIComponent(a.rule)}` : '';
    return { labels, annotations, startsAt, endsAt, generatorURL: `${opts.externalUrl.replace(/\/+$/, '')}/alerts${query}` };
  });
}

function alertmanagerSender(spec: AlertmanagerSpec, deps: { now: () => number; externalUrl: string }): Sender {
  const url = `${spec.url.replace(/\/+$/, '')}/api/v2/alerts`;
  const resendMs = parseDuration(spec.resend_interval);
  return {
    batch: 64,
    send: (items, signal) => post(url, JSON.stringify(alertmanagerPayload(items, { now: deps.now(), resendMs, externalUrl: deps.externalUrl })), spec.headers, signal),
  };
}

// --- webhooks ------------------------------------------------------------------------------

const COLORS: Record<string, string> = { critical: '#d00000', warning: '#f2a900', info: '#2f80ed', resolved: '#2eb67d' };

export function webhookBody(format: WebhookSpec['format'], n: Notification, host: string): unknown {
  const a = n.alert;
  const status = n.status;
  const head = `${status === 'firing' ? 'FIRING' : 'RESOLVED'} [${a.severity.toUpperCase()}] ${a.rule ?? a.alert_type}`;
  const facts: Array<[string, string]> = [
    ['Severity', a.severity],
    ...(a.container_name ? [['Container', a.container_name] as [string, string]] : []),
    ...(a.value !== null ? [['Value', formatValue(a.value)] as [string, string]] : []),
    ...(a.threshold !== null ? [['Threshold', formatValue(a.threshold)] as [string, string]] : []),
    ['Started', new Date(a.started_at ?? a.active_at).toISOString()],
    ...(a.resolved_at !== null ? [['Resolved', new Date(a.resolved_at).toISOString()] as [string, string]] : []),
    ['Host', host],
    ['Alert id', a.id],
  ];
  if (format === 'slack') {
    return {
      text: `${head}: ${a.message}`,
      attachments: [
        {
          color: status === 'resolved' ? COLORS.resolved : COLORS[a.severity],
          title: head,
          text: a.message,
          fields: facts.map(([title, value]) => ({ title, value, short: true })),
          footer: `OpsHub on ${host}`,
          ts: Math.floor((a.resolved_at ?? a.started_at ?? a.active_at) / 1000),
        },
      ],
    };
  }
  if (format === 'teams') {
    return {
      type: 'message',
      attachments: [
        {
          contentType: 'application/vnd.microsoft.card.adaptive',
          contentUrl: null,
          content: {
            $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
            type: 'AdaptiveCard',
            version: '1.4',
            body: [
              { type: 'TextBlock', size: 'Medium', weight: 'Bolder', text: head, color: status === 'resolved' ? 'Good' : a.severity === 'critical' ? 'Attention' : 'Warning', wrap: true },
              { type: 'TextBlock', text: a.message, wrap: true },
              { type: 'FactSet', facts: facts.map(([title, value]) => ({ title, value })) },
            ],
          },
        },
      ],
    };
  }
  return { version: '1', status, host, sent_at: new Date().toISOString(), alert: alertJson(a) };
}

/** `sha256=<hex>` of the body with the secret (the X-OpsHub-Signature-256 header). */
export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

function webhookSender(spec: Pick<WebhookSpec, 'url' | 'format' | 'secret' | 'headers'>, host: string): Sender {
  return {
    batch: 1,
    async send(items, signal) {
      for (const n of items) {
        const body = JSON.stringify(webhookBody(spec.format, n, host));
        const headers: Record<string, string> = { 'user-agent': 'opshub-alerting', 'x-opshub-event': `alert.${n.status}`, 'x-opshub-delivery': randomUUID(), ...spec.headers };
        if (spec.secret) headers['x-opshub-signature-256'] = signature(spec.secret, body);
        await post(spec.url, body, headers, signal);
      }
    },
  };
}

// --- email ------------------------------------------------------------------------------------

function emailSender(spec: EmailSpec, host: string, recipients: (a: Alert) => string[]): Sender {
  let transport: import('nodemailer').Transporter | undefined;
  const timeoutMs = parseDuration(spec.timeout);
  const make = async () => {
    const nodemailer = (await import('nodemailer')).default;
    return nodemailer.createTransport({
      host: spec.host,
      port: spec.port,
      secure: spec.security === 'tls',
      requireTLS: spec.security === 'starttls',
      ignoreTLS: spec.security === 'none',
      auth: spec.username ? { user: spec.username, pass: spec.password } : undefined,
      tls: { rejectUnauthorized: !spec.insecure_skip_verify },
      connectionTimeout: timeoutMs,
      greetingTimeout: timeoutMs,
      socketTimeout: timeoutMs,
    });
  };
  return {
    batch: 1,
    async send(items) {
      transport ??= await make();
      for (const n of items) {
        const a = n.alert;
        const to = recipients(a);
        if (to.length === 0) continue;
        const vars = templateVars(a, n.status);
        const lines = [
          a.message,
          '',
          `Status:    ${n.status === 'firing' ? 'FIRING' : 'RESOLVED'}`,
          `Severity:  ${a.severity}`,
          `Rule:      ${a.rule ?? `(custom) ${a.alert_type}`}`,
          ...(a.container_name ? [`Container: ${a.container_name}`] : []),
          ...(a.value !== null ? [`Value:     ${formatValue(a.value)}`] : []),
          ...(a.threshold !== null ? [`Threshold: ${formatValue(a.threshold)}`] : []),
          `Started:   ${new Date(a.started_at ?? a.active_at).toISOString()}`,
          ...(a.resolved_at !== null ? [`Resolved:  ${new Date(a.resolved_at).toISOString()}`] : []),
          `Host:      ${host}`,
          `Alert id:  ${a.id}`,
          '',
          'Labels:',
          ...Object.entries(a.labels).map(([k, v]) => `  ${k}=${v}`),
        ];
        try {
          await transport.sendMail({
            from: spec.from,
            to,
            subject: renderTemplate(spec.subject, vars),
            text: `${lines.join('\n')}\n`,
            headers: { 'X-OpsHub-Alert-Id': a.id, 'X-OpsHub-Alert-Status': n.status },
          });
        } catch (err) {
          const code = (err as { responseCode?: number }).responseCode;
          // 5xx SMTP replies (bad recipient, refused sender) do not get better by retrying.
          if (code !== undefined && code >= 500 && code < 600) throw new PermanentDeliveryError(`SMTP ${spec.host}:${spec.port}: ${errorMessage(err)}`);
          throw new Error(`SMTP ${spec.host}:${spec.port}: ${errorMessage(err)}`);
        }
      }
    },
    async close() {
      transport?.close();
      transport = undefined;
    },
  };
}

// --- one notifier: queue and worker --------------------------------------------------------

export interface NotifierOptions {
  name: string;
  type: NotifierSpec['type'];
  severities: Set<string>;
  repeatMs: number;
  /** Alertmanager: resend firing alerts this often, acknowledged or not. */
  resendMs?: number;
  sendResolved: boolean;
  timeoutMs: number;
  queueSize: number;
  retryInitialMs: number;
  retryMaxMs: number;
  retryForMs: number;
  /** Only alerts of this rule (a rule's own notify.webhook), and its URL. */
  onlyRule?: string;
  url?: string;
  /** Further say on which alerts it takes (email: those with recipients). */
  accepts?: (a: Alert) => boolean;
}

export class Notifier {
  readonly stats: NotifierStats = { sent_total: 0, failed_total: 0, retries_total: 0, queued: 0 };
  private queue: Notification[] = [];
  private inflight = new Set<string>();
  private wake?: () => void;
  private loop?: Promise<void>;
  /** Aborts a delivery under way (after the stop's grace). */
  private abort = new AbortController();
  /** Ends a backoff wait at once on stop. */
  private halt = new AbortController();
  private stopped = false;

  constructor(readonly opts: NotifierOptions, private sender: Sender, private deps: NotifierDeps) {}

  get name(): string {
    return this.opts.name;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Whether a notification for (alert, status) is queued or being sent. */
  pending(id: string, status: Status): boolean {
    return this.inflight.has(`${id}:${status}`);
  }

  enqueue(alert: Alert, status: Status): void {
    if (this.stopped) return;
    const key = `${alert.id}:${status}`;
    if (this.inflight.has(key)) return;
    if (status === 'resolved') this.cancel(alert.id, 'firing');
    this.inflight.add(key);
    this.queue.push({ alert, status, queuedAt: this.deps.now() });
    while (this.queue.length > this.opts.queueSize) {
      const oldest = this.queue.shift()!;
      this.giveUp([oldest], 'the queue is full');
    }
    this.stats.queued = this.queue.length;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Removes a queued (not yet sending) notification; true when one was removed. */
  cancel(id: string, status: Status): boolean {
    const i = this.queue.findIndex((n, idx) => idx >= this.sendingCount && n.alert.id === id && n.status === status);
    if (i < 0) return false;
    this.queue.splice(i, 1);
    this.inflight.delete(`${id}:${status}`);
    this.stats.queued = this.queue.length;
    return true;
  }

  /** Notifications at the head of the queue that are being sent now (never cancelled). */
  private sendingCount = 0;

  private giveUp(items: Notification[], why: string): void {
    const at = this.deps.now();
    for (const n of items) {
      this.inflight.delete(`${n.alert.id}:${n.status}`);
      this.stats.failed_total++;
      this.deps.gaveUp(n.alert.id, this.name, n.status, at);
    }
    this.deps.log.once(`gave-up:${this.name}`, 'warn', `notifier ${this.name}: gave up ${items.length} notification(s): ${why} (counted in notifications_${metricName(this.name)}_failed_total; logged once)`);
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      if (this.queue.length === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      const batch = this.queue.slice(0, this.sender.batch);
      this.sendingCount = batch.length;
      const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.opts.timeoutMs)]);
      let error: unknown;
      try {
        await this.sender.send(batch, signal);
      } catch (err) {
        error = err;
      }
      this.sendingCount = 0;
      if (error === undefined) {
        this.queue.splice(0, batch.length);
        this.stats.queued = this.queue.length;
        const at = this.deps.now();
        for (const n of batch) {
          this.inflight.delete(`${n.alert.id}:${n.status}`);
          this.stats.sent_total++;
          this.deps.delivered(n.alert.id, this.name, n.status, at);
        }
        if (attempt > 0) {
          this.deps.log.info(`notifier ${this.name}: delivering again after ${attempt} failed attempts`);
          this.deps.log.clear(`failing:${this.name}`);
        }
        attempt = 0;
        continue;
      }
      if (this.stopped) return;
      const now = this.deps.now();
      const expired = batch.filter((n) => error instanceof PermanentDeliveryError || now - n.queuedAt >= this.opts.retryForMs);
      if (expired.length) {
        for (const n of expired) this.queue.splice(this.queue.indexOf(n), 1);
        this.stats.queued = this.queue.length;
        this.giveUp(expired, errorMessage(error));
        if (expired.length === batch.length) {
          attempt = 0;
          continue;
        }
      }
      this.stats.retries_total++;
      const delay = backoffDelay(attempt++, this.opts.retryInitialMs, this.opts.retryMaxMs, this.deps.random);
      this.deps.log.once(`failing:${this.name}`, 'warn', `notifier ${this.name}: delivery failed, retrying with backoff (next in ${delay} ms; logged once): ${errorMessage(error)}`);
      await sleep(delay, this.halt.signal);
    }
  }

  /**
   * Stops the worker. A delivery under way may finish (up to `graceMs`), so
   * that what the receiver got is recorded; what is still queued stays
   * undelivered (the records say so, so it is sent after a restart).
   */
  async stop(graceMs = 2000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.halt.abort();
    const w = this.wake;
    this.wake = undefined;
    w?.();
    if (this.loop) {
      const timer = setTimeout(() => this.abort.abort(), graceMs);
      await this.loop.catch(() => undefined);
      clearTimeout(timer);
    }
    this.abort.abort();
    await this.sender.close?.().catch(() => undefined);
  }
}

export function metricName(name: string): string {
  return name.replace(/[^A-Za-z0-9_]/g, '_');
}

// --- the dispatcher ---------------------------------------------------------------------------

export interface DispatcherOptions {
  log: Logger;
  now: () => number;
  host: string;
  externalUrl: string;
  /** The notify section of an alert's rule (undefined: custom alert or rule without one). */
  notifyOf: (a: Alert) => NotifySpec | undefined;
  delivered: NotifierDeps['delivered'];
  gaveUp: NotifierDeps['gaveUp'];
  random?: () => number;
}

function optionsOf(spec: NotifierSpec, extra: Partial<NotifierOptions> = {}): NotifierOptions {
  return {
    ...extra,
    name: spec.name,
    type: spec.type,
    severities: new Set(spec.severities),
    repeatMs: parseDuration(spec.repeat_interval),
    resendMs: spec.type === 'alertmanager' ? Math.max(1000, parseDuration(spec.resend_interval)) : undefined,
    sendResolved: spec.type === 'alertmanager' ? true : spec.send_resolved,
    timeoutMs: Math.max(100, parseDuration(spec.timeout)),
    queueSize: spec.queue_size,
    retryInitialMs: Math.max(1, parseDuration(spec.retry_initial_backoff)),
    retryMaxMs: Math.max(1, parseDuration(spec.retry_max_backoff)),
    retryForMs: parseDuration(spec.retry_for),
  };
}

/** Defaults of a rule's own webhook (notify.webhook). */
export const RULE_WEBHOOK_DEFAULTS = {
  severities: ['info', 'warning', 'critical'],
  repeat_interval: '4h',
  send_resolved: true,
  timeout: '10s',
  queue_size: 1000,
  retry_initial_backoff: '1s',
  retry_max_backoff: '5m',
  retry_for: '1h',
  format: 'json',
  secret: '',
  headers: {},
} as const;

export class Dispatcher {
  private notifiers = new Map<string, Notifier>();
  /** Names of the configured notifiers (rules' notify.notifiers refer to these). */
  private configured = new Set<string>();
  private started = false;

  constructor(private opts: DispatcherOptions) {}

  private deps(): NotifierDeps {
    return { log: this.opts.log, now: this.opts.now, delivered: this.opts.delivered, gaveUp: this.opts.gaveUp, random: this.opts.random };
  }

  /** Adds the configured notifiers. */
  configure(specs: NotifierSpec[]): void {
    for (const spec of specs) {
      if (this.notifiers.has(spec.name)) throw new Error(`notifiers: the name "${spec.name}" is used twice`);
      const recipients = (a: Alert) => {
        const own = this.opts.notifyOf(a)?.email ?? [];
        return own.length ? own : spec.type === 'email' ? spec.to : [];
      };
      const sender =
        spec.type === 'alertmanager'
          ? alertmanagerSender(spec, { now: this.opts.now, externalUrl: this.opts.externalUrl })
          : spec.type === 'webhook'
            ? webhookSender(spec, this.opts.host)
            : emailSender(spec, this.opts.host, recipients);
      const extra = spec.type === 'email' ? { accepts: (a: Alert) => recipients(a).length > 0 } : {};
      this.notifiers.set(spec.name, new Notifier(optionsOf(spec, extra), sender, this.deps()));
      this.configured.add(spec.name);
    }
  }

  /** Keeps one webhook notifier per rule that names a URL in notify.webhook. */
  syncRuleWebhooks(rules: Array<{ name: string; notify: NotifySpec }>): void {
    const wanted = new Map<string, { rule: string; url: string }>();
    for (const r of rules) if (r.notify.webhook) wanted.set(`rule:${r.name}`, { rule: r.name, url: r.notify.webhook });
    for (const [name, n] of this.notifiers) {
      if (this.configured.has(name)) continue;
      const w = wanted.get(name);
      if (!w || n.opts.onlyRule !== w.rule || n.opts.url !== w.url) {
        void n.stop();
        this.notifiers.delete(name);
      }
    }
    for (const [name, w] of wanted) {
      if (this.notifiers.has(name)) continue;
      const spec = { ...RULE_WEBHOOK_DEFAULTS, name, type: 'webhook' as const, url: w.url, severities: [...RULE_WEBHOOK_DEFAULTS.severities], headers: {} } as WebhookSpec;
      const n = new Notifier(optionsOf(spec, { onlyRule: w.rule, url: w.url }), webhookSender(spec, this.opts.host), this.deps());
      this.notifiers.set(name, n);
      if (this.started) n.start();
    }
  }

  has(name: string): boolean {
    return this.configured.has(name);
  }

  hasEmail(): boolean {
    return [...this.notifiers.values()].some((n) => n.opts.type === 'email');
  }

  start(): void {
    this.started = true;
    for (const n of this.notifiers.values()) n.start();
  }

  private wants(n: Notifier, a: Alert): boolean {
    if (!n.opts.severities.has(a.severity)) return false;
    if (n.opts.onlyRule !== undefined) return a.rule === n.opts.onlyRule;
    if (n.opts.accepts && !n.opts.accepts(a)) return false;
    const notify = this.opts.notifyOf(a);
    if (!notify) return true;
    if (notify.notifiers.length && !notify.notifiers.includes(n.name)) return false;
    return true;
  }

  /** Enqueues what is due for each alert and notifier (new, repeated, resolved). */
  reconcile(alerts: Iterable<Alert>): void {
    const now = this.opts.now();
    for (const a of alerts) {
      if (a.state === 'pending') continue;
      for (const n of this.notifiers.values()) {
        if (!this.wants(n, a)) continue;
        const rec = own(a.notifications, n.name) ?? {};
        const o = n.opts;
        if (a.state === 'firing') {
          if (n.pending(a.id, 'firing')) continue;
          let due: boolean;
          if (!rec.firing_at) due = !rec.gave_up_at || now - rec.gave_up_at >= o.retryForMs;
          else if (o.resendMs !== undefined) due = now - rec.firing_at >= o.resendMs;
          else due = !a.acknowledged && o.repeatMs > 0 && now - rec.firing_at >= o.repeatMs;
          if (due) n.enqueue(a, 'firing');
          continue;
        }
        // Resolved: tell those who were told it fired.
        if (!rec.firing_at) {
          n.cancel(a.id, 'firing');
          continue;
        }
        if (rec.resolved_at || !o.sendResolved || n.pending(a.id, 'resolved')) continue;
        if (rec.gave_up_at && rec.gave_up_at >= (a.resolved_at ?? 0)) continue;
        n.enqueue(a, 'resolved');
      }
    }
  }

  /** Per notifier: sent_total, failed_total, retries_total, queued. */
  stats(): Record<string, NotifierStats> {
    const out: Record<string, NotifierStats> = {};
    for (const [name, n] of this.notifiers) out[name] = { ...n.stats };
    return out;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.notifiers.values()].map((n) => n.stop()));
  }
}
