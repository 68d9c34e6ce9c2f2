// outputs.alerting: rules on metrics and logs, evaluated by the agent itself —
// "GPU 0 is at 87 °C", "open-webui logged 60 errors in the last hour",
// "ollama is down" — with the alert lifecycle (pending → firing → resolved),
// the alerts API on the agent's server, /ws/alerts, and notifications to
// Alertmanager, webhooks (Slack, Teams) and email.
//
// Why an output: an output sees every event it matches (metrics and logs),
// which is what the evaluator needs, and its options hold the rules, so they
// are validated with the rest of the pipeline file (line and column) without
// any change to the core; `match` can narrow what it sees.
//
// State: the alerts (with what each notifier was told), the rules created
// through the API and when each absent-rule series was last seen live in JSON
// files under the instance's data_dir (atomic writes), the source of truth
// that makes a restart resume without notifying again — it works with or
// without a store. Every alert that fires is also written to the DuckDB
// store's opshub_alerts table (through outputs.duckdb's writeAlerts(),
// found among the running instances), where the whole history stays
// queryable with SQL; rows that could not be written are retried, and all
// known alerts are written again after a restart.

import { CheckpointFile } from '../../../core/checkpoint.ts';
import type { Event } from '../../../core/events.ts';
import { errorMessage } from '../../../core/log.ts';
import type { Output, PluginContext, PluginDefinition } from '../../../core/plugin.ts';
import { parseDuration, parseSize } from '../../../core/units.ts';
import { ALERT_SINK, findProviders, type AlertRow, type AlertSink } from '../../common/providers.ts';
import { WsHub, type OnSlow } from '../../common/ws_hub.ts';
import { filterValues } from '../../common/event_filter.ts';
import { alertRoutes, normaliseRuleBody, type AlertsBackend, type RuleView } from './api.ts';
import { Engine, type Alert, type Seen, type Transition } from './engine.ts';
import { alertJson, Dispatcher, metricName, type Status } from './notify.ts';
import { compileRule, DEFAULT_RULES, RuleError, ruleValidator, type CompiledRule } from './rules.ts';
import { NOTIFIER_SCHEMA, RULE_SCHEMA, SEVERITIES, type NotifierSpec, type RuleSpec } from './schema.ts';
import { own, setOwn } from '../../../core/own.ts';

export interface AlertingConfig {
  rules: unknown[];
  default_rules: Record<string, boolean>;
  notifiers: NotifierSpec[];
  evaluation_interval: string;
  external_url: string;
  history: string;
  history_limit: number;
  custom_resolve_after: string;
  store: { enabled: boolean; output: string };
  api: boolean;
  ws: { path: string; send_buffer_limit: string | number; on_slow: OnSlow; heartbeat_interval: string; max_clients: number };
}

export interface AlertingDeps {
  /** The clock (ms since the epoch); tests drive it. */
  now?: () => number;
  random?: () => number;
}

export interface AlertingOutput extends Output {
  readonly engine: Engine;
  readonly dispatcher: Dispatcher;
  /** Runs one evaluation now (the timer does this every evaluation_interval). */
  evaluate(): Transition[];
  /** Writes what changed to the state files and the store now. */
  flush(): Promise<void>;
  backend: AlertsBackend;
  selfMetrics(): Record<string, number>;
}

interface AlertFilter {
  severities?: Set<string>;
  minSeverity?: number;
  containers?: Set<string>;
  rules?: Set<string>;
}

const FILTER_KEYS = ['severity', 'min_severity', 'container', 'rule'];

export function parseAlertFilter(input: Record<string, unknown>): AlertFilter {
  const f: AlertFilter = {};
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined || value === null) continue;
    if (!FILTER_KEYS.includes(key)) throw new Error(`unknown filter "${key}" for alerts (use ${FILTER_KEYS.join(', ')})`);
    const values = filterValues(key, value);
    if (values.length === 0) continue;
    const sev = (v: string) => {
      if (!(SEVERITIES as readonly string[]).includes(v)) throw new Error(`${key}: unknown severity "${v}" (one of ${SEVERITIES.join(', ')})`);
      return v;
    };
    if (key === 'severity') f.severities = new Set(values.map(sev));
    else if (key === 'min_severity') f.minSeverity = SEVERITIES.indexOf(sev(values[0]!) as never);
    else if (key === 'container') f.containers = new Set(values);
    else f.rules = new Set(values);
  }
  return f;
}

function describeAlertFilter(f: AlertFilter): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (f.severities) out.severity = [...f.severities];
  if (f.minSeverity !== undefined) out.min_severity = SEVERITIES[f.minSeverity];
  if (f.containers) out.container = [...f.containers];
  if (f.rules) out.rule = [...f.rules];
  return out;
}

function filterAccepts(f: AlertFilter, a: Alert): boolean {
  if (f.severities && !f.severities.has(a.severity)) return false;
  if (f.minSeverity !== undefined && SEVERITIES.indexOf(a.severity) < f.minSeverity) return false;
  if (f.containers && !f.containers.has(a.container_name ?? '')) return false;
  if (f.rules && !f.rules.has(a.rule ?? a.alert_type)) return false;
  return true;
}

function rowOf(a: Alert): AlertRow {
  return {
    id: a.id,
    rule: a.rule,
    alert_type: a.alert_type,
    severity: a.severity,
    state: a.state,
    labels: a.labels,
    message: a.message,
    container_name: a.container_name,
    value: a.value,
    threshold: a.threshold,
    started_at: a.started_at,
    last_evaluated_at: a.last_evaluated_at,
    resolved_at: a.resolved_at,
    acknowledged: a.acknowledged,
    acknowledged_by: a.acknowledged_by,
    acknowledged_at: a.acknowledged_at,
    notes: a.notes,
    notified_at: a.notified_at,
    updated_at: a.updated_at,
  };
}

export function createAlerting(config: AlertingConfig, ctx: PluginContext, deps: AlertingDeps = {}): AlertingOutput {
  const now = deps.now ?? Date.now;
  const validateRule = ruleValidator();
  const evaluationMs = Math.max(10, parseDuration(config.evaluation_interval));
  const customResolveMs = parseDuration(config.custom_resolve_after);
  const externalUrl = config.external_url || `http://${ctx.hostname}:8089`;

  // The rules of the file: the defaults switched on, then the file's own (one of a default's name replaces it).
  const base = new Map<string, { spec: RuleSpec; origin: 'default' | 'config' }>();
  for (const raw of DEFAULT_RULES) {
    if (config.default_rules[raw.name] === false) continue;
    base.set(raw.name, { spec: validateRule(raw), origin: 'default' });
  }
  const fileNames = new Set<string>();
  config.rules.forEach((raw, i) => {
    let spec: RuleSpec;
    try {
      spec = validateRule(raw);
    } catch (err) {
      throw new Error(`rules[${i}]: ${errorMessage(err)}`);
    }
    if (fileNames.has(spec.name)) throw new Error(`rules[${i}]: the name "${spec.name}" is used twice`);
    fileNames.add(spec.name);
    base.set(spec.name, { spec, origin: 'config' });
  });

  const engine = new Engine({ now, hostname: ctx.hostname, historyMs: parseDuration(config.history), historyLimit: config.history_limit, customResolveMs });
  const dispatcher = new Dispatcher({
    log: ctx.log,
    now,
    host: ctx.hostname,
    externalUrl,
    random: deps.random,
    notifyOf: (a) => (a.rule ? engine.rule(a.rule)?.spec.notify : undefined),
    delivered: (id, notifier, status, at) => record(id, notifier, status, at, true),
    gaveUp: (id, notifier, status, at) => record(id, notifier, status, at, false),
  });
  dispatcher.configure(config.notifiers);

  /** Rules created, replaced or deleted through the API (null: deleted), saved in rules.json. */
  let apiRules = new Map<string, RuleSpec | null>();
  let alertsFile: CheckpointFile<Alert> | undefined;
  let rulesFile: CheckpointFile<RuleSpec | null> | undefined;
  let seenFile: CheckpointFile<Array<[string, Seen]>> | undefined;
  let hub: WsHub<AlertFilter> | undefined;
  const removers: Array<() => void> = [];
  const timers: NodeJS.Timeout[] = [];
  let stopped = false;
  let started = false;
  /** Rows for the store not yet written (latest state per id). */
  const unstored = new Map<string, AlertRow>();
  let storing: Promise<void> | undefined;
  const counts = { evaluations: 0, fired: 0, resolved: 0, store_rows: 0, store_errors: 0, events: 0 };

  /** Checks what the schema cannot: notifier names, email recipients without an email notifier. */
  function checkRule(spec: RuleSpec): void {
    const reasons: string[] = [];
    for (const n of spec.notify.notifiers) if (!dispatcher.has(n)) reasons.push(`notify.notifiers: no notifier named "${n}"`);
    if (spec.notify.email.length && !dispatcher.hasEmail()) reasons.push('notify.email needs an email notifier in `notifiers`');
    try {
      compileRule(spec);
    } catch (err) {
      reasons.push(err instanceof RuleError ? err.message : errorMessage(err));
    }
    if (reasons.length) throw new RuleError(reasons);
  }

  function effective(): RuleView[] {
    const out = new Map<string, RuleView>();
    for (const [name, b] of base) out.set(name, { spec: b.spec, origin: b.origin });
    for (const [name, spec] of apiRules) {
      if (spec === null) out.delete(name);
      else out.set(name, { spec, origin: 'api', ...(base.has(name) ? { overrides: base.get(name)!.origin } : {}) });
    }
    return [...out.values()];
  }

  function applyRules(): void {
    const views = effective();
    const compiled: CompiledRule[] = [];
    for (const v of views) compiled.push(compileRule(v.spec));
    engine.setRules(compiled);
    dispatcher.syncRuleWebhooks(views.map((v) => v.spec));
  }

  for (const b of base.values()) {
    try {
      checkRule(b.spec);
    } catch (err) {
      throw new Error(`rules: ${b.spec.name}: ${errorMessage(err)}`);
    }
  }
  applyRules();

  function record(id: string, notifier: string, status: Status, at: number, ok: boolean): void {
    const a = engine.get(id);
    if (!a) return;
    let rec = own(a.notifications, notifier);
    if (!rec) setOwn(a.notifications, notifier, (rec = {}));
    if (ok) {
      if (status === 'firing') {
        rec.firing_at = at;
        delete rec.gave_up_at;
        a.notified_at ??= at;
      } else rec.resolved_at = at;
    } else rec.gave_up_at = at;
    engine.touch(a);
    persist();
  }

  /** Saves what changed to alerts.json and queues rows for the store. */
  function persist(): void {
    const { changed, forgotten } = engine.drain();
    for (const a of changed) {
      alertsFile?.set(a.id, a);
      if (a.state !== 'pending' && config.store.enabled) unstored.set(a.id, rowOf(a));
    }
    // Pending alerts that never fired, and resolved ones past `history` (the store keeps those).
    for (const id of forgotten) alertsFile?.delete(id);
  }

  function sink(): AlertSink | undefined {
    const found = findProviders(ctx, ALERT_SINK, 'outputs').filter((p) => !config.store.output || p.info.id === config.store.output);
    return found[0]?.provider;
  }

  /** Writes queued rows to the store; keeps them when it cannot (retried at the next evaluation). */
  function store(): Promise<void> {
    if (storing || unstored.size === 0 || !config.store.enabled) return storing ?? Promise.resolve();
    const target = sink();
    if (!target) return Promise.resolve();
    const rows = [...unstored.values()];
    storing = target
      .writeAlerts(rows)
      .then(
        () => {
          for (const r of rows) if (unstored.get(r.id) === r) unstored.delete(r.id);
          counts.store_rows += rows.length;
          ctx.log.clear('store');
        },
        (err) => {
          counts.store_errors++;
          ctx.log.once('store', 'warn', `cannot write alerts to the store (kept, retried at each evaluation; logged once): ${errorMessage(err)}`);
        },
      )
      .finally(() => (storing = undefined));
    return storing;
  }

  function publish(transitions: Transition[]): void {
    for (const t of transitions) {
      if (t.event === 'firing') counts.fired++;
      if (t.event === 'resolved') counts.resolved++;
      if (t.event === 'firing' || t.event === 'resolved') ctx.log.info(`alert ${t.event}: [${t.alert.severity}] ${t.alert.message} (${t.alert.id})`);
      if (t.event === 'pending' || !hub) continue;
      hub.publish(
        (f) => filterAccepts(f, t.alert),
        () => JSON.stringify({ kind: 'alert', event: t.event, alert: alertJson(t.alert) }),
      );
    }
  }

  function evaluate(): Transition[] {
    const transitions = engine.evaluate();
    counts.evaluations++;
    publish(transitions);
    dispatcher.reconcile(engine.all());
    persist();
    void store();
    return transitions;
  }

  const backend: AlertsBackend = {
    alerts: () => engine.all(),
    get: (id) => engine.get(id),
    addCustom(input) {
      const t = engine.addCustom(input);
      publish([t]);
      dispatcher.reconcile([t.alert]);
      persist();
      void store();
      return t.alert;
    },
    acknowledge(id, by, notes) {
      const t = engine.acknowledge(id, by, notes);
      if (!t) return undefined;
      publish([t]);
      persist();
      void store();
      return t.alert;
    },
    rules: effective,
    async configure(raw) {
      const spec = validateRule(normaliseRuleBody(raw));
      checkRule(spec);
      const existed = effective().some((v) => v.spec.name === spec.name);
      apiRules.set(spec.name, spec);
      rulesFile?.set(spec.name, spec);
      applyRules();
      await rulesFile?.flush();
      const view = effective().find((v) => v.spec.name === spec.name)!;
      return { created: !existed, rule: view };
    },
    async deleteRule(name) {
      const current = effective().find((v) => v.spec.name === name);
      if (!current) return undefined;
      let restored: 'default' | 'config' | null = null;
      if (current.origin === 'api' && base.has(name)) {
        // Undo the override: the file's (or the built-in) rule is back.
        apiRules.delete(name);
        rulesFile?.delete(name);
        restored = base.get(name)!.origin;
      } else if (base.has(name)) {
        apiRules.set(name, null);
        rulesFile?.set(name, null);
      } else {
        apiRules.delete(name);
        rulesFile?.delete(name);
      }
      applyRules();
      await rulesFile?.flush();
      return { restored };
    },
  };

  const sendBufferLimit = parseSize(config.ws.send_buffer_limit);

  return {
    engine,
    dispatcher,
    backend,
    evaluate,

    async flush() {
      persist();
      await store();
      await Promise.all([alertsFile?.flush(), rulesFile?.flush(), seenFile?.flush()]);
    },

    async start() {
      if (started || stopped) return;
      started = true;
      alertsFile = new CheckpointFile<Alert>(ctx.dataDir, 'alerts.json');
      rulesFile = new CheckpointFile<RuleSpec | null>(ctx.dataDir, 'rules.json');
      seenFile = new CheckpointFile<Array<[string, Seen]>>(ctx.dataDir, 'absent.json');
      // Rules made through the API: a saved rule that no longer validates is skipped, and said so.
      apiRules = new Map();
      for (const [name, spec] of rulesFile.entries()) {
        if (spec === null) {
          if (base.has(name)) apiRules.set(name, null);
          continue;
        }
        try {
          const valid = validateRule(spec);
          checkRule(valid);
          apiRules.set(name, valid);
        } catch (err) {
          ctx.log.warn(`the saved rule "${name}" is not valid any more and is skipped: ${errorMessage(err)}`);
        }
      }
      applyRules();
      engine.restore(alertsFile.entries().map(([, a]) => a));
      engine.importSeen(Object.fromEntries(seenFile.entries()));
      // The store gets every known alert again (a previous run may have stopped before writing them).
      if (config.store.enabled) for (const a of engine.all()) if (a.state !== 'pending') unstored.set(a.id, rowOf(a));

      if (config.api) {
        for (const route of alertRoutes(backend, { customResolveMs })) removers.push(ctx.http.route(route));
      }
      if (config.ws.path) {
        hub = new WsHub<AlertFilter>({
          log: ctx.log,
          sendBufferLimit,
          onSlow: config.ws.on_slow,
          heartbeatMs: parseDuration(config.ws.heartbeat_interval),
          maxClients: config.ws.max_clients,
          parseFilter: parseAlertFilter,
          describeFilter: describeAlertFilter,
        });
        removers.push(
          ctx.http.upgrade(config.ws.path, hub.handleUpgrade, 'agent', {
            summary: 'Live alerts (WebSocket)',
            description:
              'One JSON message per alert that fires, resolves or is acknowledged: `{"kind":"alert","event":"firing"|"resolved"|"acknowledged","alert":{…as GET /alerts}}`. ' +
              'Control messages have a `type`: `subscribed`, `dropped` (count of messages not sent to a slow client), `error`. Send `{"type":"subscribe", ...filter}` to change the filter.',
            tags: ['alerts', 'streams'],
            querystring: {
              type: 'object',
              additionalProperties: false,
              properties: {
                severity: { type: 'string', description: 'Severities (info, warning, critical). One value, a comma-separated list, or the key repeated.' },
                min_severity: { type: 'string', description: 'This severity or more severe.' },
                container: { type: 'string', description: 'Containers the alerts are about.' },
                rule: { type: 'string', description: 'Rule names (custom alerts: their alert_type).' },
              },
            },
          }),
        );
      }
      dispatcher.start();
      const tick = setInterval(() => {
        if (stopped) return;
        try {
          evaluate();
        } catch (err) {
          ctx.log.once('evaluate', 'error', `evaluation failed (logged once): ${errorMessage(err)}`);
        }
      }, evaluationMs);
      tick.unref();
      timers.push(tick);
      const saveSeen = setInterval(() => {
        for (const [name, entries] of Object.entries(engine.exportSeen())) seenFile?.set(name, entries);
      }, Math.max(evaluationMs, 30_000));
      saveSeen.unref();
      timers.push(saveSeen);
    },

    async write(events: Event[]) {
      if (stopped) return;
      counts.events += events.length;
      engine.ingest(events);
    },

    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers) clearInterval(t);
      for (const remove of removers.splice(0)) remove();
      await hub?.close();
      await dispatcher.stop();
      if (!started) return;
      for (const [name, entries] of Object.entries(engine.exportSeen())) seenFile?.set(name, entries);
      persist();
      await store().catch(() => undefined);
      await Promise.all([alertsFile?.flush(), rulesFile?.flush(), seenFile?.flush()]);
    },

    /** opshub_plugin_* figures: alerts firing by severity, pending; notifications per notifier; store rows. */
    selfMetrics() {
      const out: Record<string, number> = {};
      const active = engine.activeAlerts();
      for (const s of SEVERITIES) out[`alerts_firing_${s}`] = active.filter((a) => a.state === 'firing' && a.severity === s).length;
      out.alerts_pending = active.filter((a) => a.state === 'pending').length;
      out.alerts_fired_total = counts.fired;
      out.alerts_resolved_total = counts.resolved;
      out.rules = effective().filter((v) => v.spec.enabled).length;
      out.evaluations_total = counts.evaluations;
      out.events_total = counts.events;
      for (const [name, s] of Object.entries(dispatcher.stats())) {
        const n = metricName(name);
        out[`notifications_${n}_sent_total`] = s.sent_total;
        out[`notifications_${n}_failed_total`] = s.failed_total;
        out[`notifications_${n}_retries_total`] = s.retries_total;
        out[`notifications_${n}_queued`] = s.queued;
      }
      out.store_rows_written_total = counts.store_rows;
      out.store_errors_total = counts.store_errors;
      out.store_rows_waiting = unstored.size;
      return out;
    },
  };
}

const ruleNames = DEFAULT_RULES.map((r) => r.name);

const DEFAULT_RULE_DOCS: Record<string, string> = {
  gpu_temperature_high: 'GPU temperature > 85 °C for 1 min (critical), per GPU.',
  cpu_high: 'Host CPU > 80 % for 5 min (warning).',
  memory_high: 'Host memory > 90 % for 5 min (warning).',
  disk_space_low: 'A filesystem with < 10 % free (used > 90 %) for 1 min (critical), per mount.',
  container_down: 'A container that was running reports no stats for 2 min: exited, stopped or removed (critical).',
  container_restarting: 'A container restarted (restart count went up) in the last 15 min (warning).',
  container_error_share: 'More than 10 % of a container\'s log lines are errors over 5 min, at least 20 lines (critical).',
  container_error_lines: 'More than 50 error lines from a container in 1 h (warning).',
  request_latency_p95: 'Ollama / Open WebUI request p95 (attribute duration_ms) > 2 s over 5 min, at least 5 requests (warning).',
};

export const alerting: PluginDefinition<AlertingConfig> = {
  kind: 'output',
  type: 'alerting',
  description: 'Evaluates alerting rules on metrics and logs, keeps the alerts (API, /ws/alerts, DuckDB table) and notifies Alertmanager, webhooks (Slack, Teams) and email.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      rules: { type: 'array', items: RULE_SCHEMA, default: [], description: 'Your rules (threshold, log_rate, absent); one named like a default rule replaces it. See the README.' },
      default_rules: {
        type: 'object',
        additionalProperties: false,
        default: Object.fromEntries(ruleNames.map((n) => [n, true])),
        description: 'The built-in rules, each switchable off (false).',
        properties: Object.fromEntries(ruleNames.map((n) => [n, { type: 'boolean', default: true, description: DEFAULT_RULE_DOCS[n] ?? n }])),
      },
      notifiers: { type: 'array', items: NOTIFIER_SCHEMA, default: [], description: 'Where alerts go: alertmanager, webhook (json, slack, teams), email.' },
      evaluation_interval: { type: 'string', format: 'duration', default: '15s', description: 'How often the rules are evaluated (and due notifications queued).' },
      external_url: { type: 'string', default: '', description: 'How people reach this agent, for links in notifications (Alertmanager\'s generatorURL); empty: http://<agent.hostname>:8089.' },
      history: { type: 'string', format: 'duration', default: '7d', description: 'How long resolved alerts are kept for GET /alerts (the DuckDB table keeps them all).' },
      history_limit: { type: 'integer', minimum: 1, default: 1000, description: 'Most resolved alerts kept for GET /alerts.' },
      custom_resolve_after: { type: 'string', format: 'duration', default: '1h', description: 'Custom alerts (POST /alerts) resolve by themselves after this long.' },
      store: {
        type: 'object',
        additionalProperties: false,
        default: { enabled: true, output: '' },
        description: 'Writing alerts to the DuckDB store\'s opshub_alerts table.',
        properties: {
          enabled: { type: 'boolean', default: true, description: 'Write alerts (firing and resolved) to the store.' },
          output: { type: 'string', default: '', description: 'Id of the duckdb output; empty: the first one in the pipeline.' },
        },
      },
      api: { type: 'boolean', default: true, description: 'Mount the alerts API (/alerts, /alerts/active, /alerts/configure, /alerts/rules, /alerts/{id}/acknowledge).' },
      ws: {
        type: 'object',
        additionalProperties: false,
        default: { path: '/ws/alerts', send_buffer_limit: '1MiB', on_slow: 'drop', heartbeat_interval: '30s', max_clients: 100 },
        description: 'The live alert stream, with the same limits as outputs.websocket.',
        properties: {
          path: { type: 'string', pattern: '^(/.*)?$', default: '/ws/alerts', description: 'Path of the stream; empty: none.' },
          send_buffer_limit: { type: ['string', 'integer'], format: 'size', default: '1MiB', description: 'Most bytes queued for a client that does not read fast enough; past it, on_slow applies.' },
          on_slow: { enum: ['drop', 'disconnect'], default: 'drop', description: 'drop: skip messages for that client (it is told how many); disconnect: close it.' },
          heartbeat_interval: { type: 'string', format: 'duration', default: '30s', description: 'Ping every client this often; one that did not answer is disconnected. 0: none.' },
          max_clients: { type: 'integer', minimum: 1, default: 100, description: 'Most clients; more are refused with 503.' },
        },
      },
    },
  },
  create: (config, ctx) => createAlerting(config, ctx),
};

export default alerting;
