// The OpsHub API's contract as JSON Schema: query parameters (validated and
// coerced by the agent's HTTP server) and answers (serialised by them and
// published in /openapi.json). Field names and shapes are OpsHub's; human
// strings have numeric siblings.

import { errorResponse, type JsonSchema, type RouteSchema } from '../../../core/http.ts';

const str = (description: string, extra: JsonSchema = {}): JsonSchema => ({ type: 'string', description, ...extra });
const nstr = (description: string): JsonSchema => ({ type: 'string', nullable: true, description });
const num = (description: string, extra: JsonSchema = {}): JsonSchema => ({ type: 'number', description, ...extra });
const nnum = (description: string): JsonSchema => ({ type: 'number', nullable: true, description });
const int = (description: string, extra: JsonSchema = {}): JsonSchema => ({ type: 'integer', description, ...extra });
const time = (description: string): JsonSchema => ({ type: 'string', format: 'date-time', description });
const ntime = (description: string): JsonSchema => ({ type: 'string', format: 'date-time', nullable: true, description });
const obj = (properties: Record<string, JsonSchema>, description?: string, extra: JsonSchema = {}): JsonSchema => ({
  type: 'object',
  ...(description ? { description } : {}),
  required: Object.keys(properties),
  properties,
  ...extra,
});
const arr = (items: JsonSchema, description?: string): JsonSchema => ({ type: 'array', items, ...(description ? { description } : {}) });

export const LOG_LEVELS = ['info', 'warning', 'error', 'success', 'critical', 'debug', 'trace'] as const;
const levelParam = (what: string): JsonSchema => ({ type: 'string', enum: [...LOG_LEVELS, 'all'], description: `${what}; \`all\` (or leaving it out) for every level.` });

const hoursParam = (dflt: number, what: string): JsonSchema => ({
  type: 'number',
  exclusiveMinimum: 0,
  maximum: 8760,
  default: dflt,
  description: `${what} (hours back from now; fractions allowed, at most a year).`,
});
const periodParam = (dflt: number): JsonSchema => ({ type: 'integer', minimum: 1, maximum: 8760, default: dflt, description: 'The period in hours back from now (24 = the last day, 168 = the last week).' });

const ERRORS = {
  503: errorResponse('A component the answer needs is not there or not reachable (no store or Docker input configured, the store is closed, the engine is down, a query ran too long).'),
};

// --- /containers -----------------------------------------------------------

const CONTAINER = obj(
  {
    name: str('Container name.'),
    status: str('State: created, running, paused, restarting, exited or dead.'),
    image: str('Image.'),
    created: time('When the container was created.'),
    cpu_percent: str('CPU use of the last sample, "15.2" (100 = one core busy); "0.0" when not running.'),
    memory_usage: str('Memory use and share of the limit, "1.2 GB (8.5%)" (decimal units, page cache excluded, as `docker stats`).'),
    network_io: str('Bytes received and sent since the container started, "RX: 45.2 MB, TX: 12.8 MB".'),
    uptime: str('Time since the container (re)started, "2d 4h 30m"; "0m" when not running.'),
    id: str('Container id (64 hex digits).'),
    status_text: str('Docker\'s own status line, e.g. "Up 3 hours (healthy)", "Exited (0) 2 minutes ago".'),
    health: nstr('Health check state (healthy, unhealthy, starting), null without a health check.'),
    cpu_percent_value: num('cpu_percent as a number.'),
    memory_usage_bytes: int('Memory use in bytes (memory_usage as a number).'),
    memory_limit_bytes: int('The memory limit (the container\'s, else the host\'s), bytes.'),
    memory_percent: num('Memory use in % of the limit.'),
    network_rx_bytes: int('Bytes received (network_io as numbers).'),
    network_tx_bytes: int('Bytes sent.'),
    uptime_seconds: int('uptime in seconds.'),
    restart_count: int('Restarts by Docker\'s restart policy.'),
    pids: int('Processes and threads.'),
    sampled_at: ntime('When the figures were sampled (the last gather of inputs.docker_stats); null when not running then.'),
  },
  'A container, from the Docker inputs\' live view.',
);

export const containersSchema: RouteSchema = {
  summary: 'Status of every container',
  description:
    'Every container inputs.docker_stats chooses, running or stopped, listed from the engine now, with the figures of its last gather. ' +
    'Human strings as OpsHub answered them, with numeric siblings.',
  tags: ['containers'],
  response: { 200: { description: 'The containers, by name.', ...arr(CONTAINER) }, ...ERRORS },
};

export const containerSchema: RouteSchema = {
  summary: 'Status of one container',
  tags: ['containers'],
  params: obj({ name: str('Container name (or id, or a unique id prefix of at least 12 digits).') }),
  response: { 200: { description: 'The container.', ...CONTAINER }, 404: errorResponse('No such container.'), ...ERRORS },
};

// --- /logs ------------------------------------------------------------------

const LOG_LINE = obj(
  {
    timestamp: time('When the line was written (ns precision).'),
    container: str('Container name (the source for lines not from a container, e.g. webhook).'),
    level: str('Log level (set by regex_classifier): info, warning, error, success, critical, debug, trace.'),
    message: str('The line.'),
    source: str('Where it came from: the input (docker_logs, webhook…).'),
  },
  'A log line.',
);

export const logsSchema: RouteSchema = {
  summary: 'Recent log lines of a container (or all), optionally followed',
  description:
    'The last `tail` lines, newest last, from the store. With `follow=true` the answer stays open and streams each new line as it is ingested ' +
    '(after the tail): NDJSON (`application/x-ndjson`, one line object per line) or, when the client accepts `text/event-stream`, Server-Sent Events ' +
    '(`event: log`, the line object as data, `id` its time in ns); until the client goes away. EventSource clients may pass the token as `?token=`.',
  tags: ['logs'],
  params: obj({ container: str('Container name, or `all`.') }),
  querystring: {
    type: 'object',
    properties: {
      level: levelParam('Only lines of this level'),
      tail: int('How many of the most recent lines.', { minimum: 1, maximum: 10000, default: 100 }),
      follow: { type: 'boolean', default: false, description: 'Keep the answer open and stream new lines (NDJSON, or SSE for text/event-stream).' },
    },
  },
  produces: ['application/json', 'application/x-ndjson', 'text/event-stream'],
  security: [{ bearerAuth: [] }, { tokenQuery: [] }],
  response: { 200: { description: 'The lines, newest last (with follow: a stream of line objects).', ...obj({ logs: arr(LOG_LINE) }) }, ...ERRORS },
};

// --- /search/logs -------------------------------------------------------------

export const searchSchema: RouteSchema = {
  summary: 'Search log lines',
  description:
    'Lines in a time window matching a text (case-insensitive substring, or a regular expression with `regex=true`), a container and a level. ' +
    '`count` is the number of all matches in the window; `results` the newest `limit` of them, newest first. ' +
    'The window is `start_time`..`end_time` when given (end defaults to now), else the last `hours`.',
  tags: ['logs'],
  querystring: {
    type: 'object',
    properties: {
      query: str('Text the line contains (case-insensitive), or with regex=true a regular expression (RE2 syntax, case-insensitive).', { maxLength: 1000 }),
      container: str('Only this container (name).', { maxLength: 500 }),
      level: levelParam('Only this level'),
      start_time: time('Window start (ISO 8601; without a zone: UTC).'),
      end_time: time('Window end (ISO 8601; default now).'),
      hours: hoursParam(24, 'Window length when start_time is not given'),
      limit: int('Most results returned (count still counts all).', { minimum: 1, maximum: 10000, default: 100 }),
      regex: { type: 'boolean', default: false, description: '`query` is a regular expression.' },
    },
  },
  response: {
    200: {
      description: 'The matches.',
      ...obj({
        results: arr(
          obj({
            timestamp: time('When the line was written.'),
            container: str('Container name (or source).'),
            level: str('Log level.'),
            message: str('The line.'),
            metadata: {
              type: 'object',
              description: 'What processors learned about the line: `user` and `ip` (when known), `category`, `source`, and every other attribute (http_status, model, duration_ms, …).',
              additionalProperties: true,
              properties: { user: nstr('User named by the line.'), ip: nstr('Client address named by the line.'), category: nstr('Category (regex_classifier).'), source: str('The input.') },
            },
          }),
        ),
        count: int('Number of all matches in the window.'),
        limit: int('The limit applied.'),
        start_time: time('Window start.'),
        end_time: time('Window end.'),
      }),
    },
    ...ERRORS,
  },
};

// --- /users/sessions --------------------------------------------------------------

const SESSION = obj(
  {
    username: str('User.'),
    model: nstr('The model used last in the session.'),
    session_id: str('The session id the events carried, else one made from the user and the start time.'),
    started_at: time('First event of the session (in the window).'),
    last_activity: time('Last event of the session.'),
    request_count: int('Events other than login/logout/signup.'),
    ip_address: nstr('The address seen last.'),
    status: { type: 'string', enum: ['active', 'ended'], description: 'active: an event within the idle timeout and no logout since; ended otherwise.' },
    duration_seconds: num('last_activity - started_at.'),
  },
  'A user session.',
);

export const sessionsSchema: RouteSchema = {
  summary: 'User sessions',
  description:
    'Sessions built from session events (POST /users/session, Open WebUI) and from log lines that name a user, per user: a gap longer than ' +
    'the idle timeout, a logout or a login starts a new one. Newest activity first.',
  tags: ['users'],
  querystring: {
    type: 'object',
    properties: {
      active_only: { type: 'boolean', default: false, description: 'Only sessions still active.' },
      hours: hoursParam(24, 'Sessions with activity in the last'),
    },
  },
  response: { 200: { description: 'The sessions.', ...arr(SESSION) }, ...ERRORS },
};

// --- /metrics/performance -----------------------------------------------------------

const GPU = obj(
  {
    index: int('GPU index as nvidia-smi lists it.'),
    name: str('Product name.'),
    utilization: nnum('GPU utilization, %.'),
    memory_utilization: nnum('Memory controller utilization, %.'),
    memory_used: nnum('Memory used, MiB (as nvidia-smi).'),
    memory_total: nnum('Memory total, MiB.'),
    memory_percent: nnum('memory_used / memory_total, %.'),
    temperature: nnum('GPU temperature, °C.'),
    power_draw: nnum('Power draw, W.'),
    graphics_clock: nnum('Graphics clock, MHz.'),
    memory_clock: nnum('Memory clock, MHz.'),
    memory_used_bytes: nnum('Memory used, bytes.'),
    memory_total_bytes: nnum('Memory total, bytes.'),
  },
  'One GPU (inputs.nvidia_smi).',
);

export const performanceSchema: RouteSchema = {
  summary: 'Latest host and GPU figures',
  description:
    'The latest values gathered by inputs.system and inputs.nvidia_smi, as they passed through the pipeline (or, right after a start, the latest in the store). ' +
    'Null where no value is known yet; `gpus` is empty without GPUs.',
  tags: ['metrics'],
  response: {
    200: {
      description: 'The latest figures.',
      ...obj({
        timestamp: ntime('Time of the newest value used.'),
        cpu_percent: nnum('Host CPU busy, % (all cpus).'),
        memory_percent: nnum('Memory used, %.'),
        disk_percent: nnum('Used space of the configured mount (disk_mount), %.'),
        load_avg: { type: 'array', items: { type: 'number' }, description: 'Load average over 1, 5 and 15 minutes (empty when unknown).' },
        gpus: arr(GPU),
        memory_used_bytes: nnum('Memory used, bytes.'),
        memory_total_bytes: nnum('Memory total, bytes.'),
        disk_used_bytes: nnum('Used space of disk_mount, bytes.'),
        disk_total_bytes: nnum('Size of disk_mount, bytes.'),
      }),
    },
  },
};

export const HISTORY_METRICS = [
  'cpu_percent', 'memory_percent', 'disk_percent', 'swap_percent', 'load_1m', 'load_5m', 'load_15m',
  'gpu_utilization', 'gpu_memory_utilization', 'gpu_memory_used_bytes', 'gpu_temperature', 'gpu_power_draw',
] as const;
export type HistoryMetric = (typeof HISTORY_METRICS)[number];

export function historySchema(points: number): RouteSchema {
  return {
    summary: 'A host or GPU figure over time',
    description: `One figure from the store, averaged into at most \`points\` buckets (default ${points}) over the last \`hours\`; gpu_* figures average the GPUs unless \`gpu\` names one.`,
    tags: ['metrics'],
    querystring: {
      type: 'object',
      properties: {
        hours: hoursParam(24, 'The window'),
        metric: { type: 'string', enum: [...HISTORY_METRICS], default: 'cpu_percent', description: 'Which figure.' },
        gpu: str('Only this GPU (its index), for gpu_* figures.', { pattern: '^\\d+$' }),
        points: int('Most points returned.', { minimum: 10, maximum: 5000, default: points }),
      },
    },
    response: {
      200: {
        description: 'The series, oldest first.',
        ...obj({
          metric: str('The figure.'),
          unit: str('Its unit: %, load, bytes, celsius, W.'),
          hours: num('The window.'),
          interval_seconds: int('Bucket width.'),
          points: arr(obj({ timestamp: time('Bucket start.'), value: num('Average in the bucket.'), min: num('Lowest sample.'), max: num('Highest sample.') })),
        }),
      },
      ...ERRORS,
    },
  };
}

// --- /analytics -------------------------------------------------------------------

export const usersAnalyticsSchema: RouteSchema = {
  summary: 'User activity over a period',
  description: 'Users, sessions (as /users/sessions builds them), the most used models and activity by hour of day (UTC) over the last `period` hours.',
  tags: ['analytics'],
  querystring: { type: 'object', properties: { period: periodParam(24) } },
  response: {
    200: {
      description: 'The figures.',
      ...obj({
        period: str('The period, "24h" or "7d".'),
        total_users: int('Users with any activity.'),
        active_users: int('Users with an active session now.'),
        peak_concurrent: int('Most sessions open at the same time.'),
        total_sessions: int('Sessions.'),
        average_session_duration: num('Average session length, seconds.'),
        top_models: arr(obj({ model: str('Model.'), requests: int('Requests.'), users: int('Distinct users.') }), 'The 10 most used models.'),
        hourly_activity: arr(obj({ hour: str('Hour of day, UTC, "00".."23".'), users: int('Distinct users.'), requests: int('Requests.') }), 'Every hour of the day.'),
      }),
    },
    ...ERRORS,
  },
};

export const modelsAnalyticsSchema: RouteSchema = {
  summary: 'Model usage over a period',
  description:
    'Per model, from log lines and session events that name one (Open WebUI, the OpsHub filter, Ollama lines with a model): requests, users, ' +
    'response time (latency_ms or duration_ms), success (status, HTTP status, level) and the busiest hour.',
  tags: ['analytics'],
  querystring: { type: 'object', properties: { period: periodParam(168) } },
  response: {
    200: {
      description: 'The models, most requested first.',
      ...obj({
        period: str('The period, "24h" or "7d".'),
        models: arr(
          obj({
            name: str('Model.'),
            total_requests: int('Requests.'),
            unique_users: int('Distinct users.'),
            avg_response_time: nnum('Average response time, ms (null when no line says).'),
            success_rate: num('Requests that succeeded, %.'),
            peak_usage: int('Most requests in one hour.'),
            peak_hour: ntime('Start of that hour.'),
          }),
        ),
      }),
    },
    ...ERRORS,
  },
};

export const errorsSummarySchema: RouteSchema = {
  summary: 'Errors by container and category',
  description: 'Error and critical lines over the last `period` hours, by container and by category (regex_classifier), the error rate, and the most frequent error messages.',
  tags: ['logs'],
  querystring: { type: 'object', properties: { period: periodParam(24) } },
  response: {
    200: {
      description: 'The summary.',
      ...obj({
        period: str('The period.'),
        total_errors: int('Error and critical lines.'),
        total_critical: int('Critical lines.'),
        total_lines: int('All lines.'),
        error_rate: num('total_errors / total_lines, %.'),
        by_container: arr(obj({ container: str('Container (or source).'), errors: int('Error and critical lines.'), critical: int('Critical lines.'), lines: int('All lines.'), error_rate: num('%.') })),
        by_category: arr(obj({ category: str('Category, "uncategorized" when none.'), errors: int('Error and critical lines.') })),
        top_errors: arr(obj({ message: str('The message.'), container: str('Container (or source).'), count: int('Occurrences.'), last_seen: time('Latest occurrence.') }), 'The 10 most frequent error messages.'),
      }),
    },
    ...ERRORS,
  },
};

// --- /health/detailed ----------------------------------------------------------------

const STATUS = { type: 'string', enum: ['healthy', 'degraded', 'unhealthy'] };
const COMPONENT: JsonSchema = {
  type: 'object',
  required: ['name', 'type', 'status'],
  description: 'One component. Fields by type: docker (reachable, latency_ms, endpoint), store (writable, file_bytes, wal_bytes, last_checkpoint), output (buffer_*, last_success, written, dropped, errors), input (last_gather, events, errors).',
  properties: {
    name: str('e.g. docker, store, outputs.duckdb, inputs.docker_logs.'),
    type: { type: 'string', enum: ['docker', 'store', 'input', 'processor', 'output'] },
    status: { ...STATUS, description: 'This component\'s state.' },
    message: str('Why it is not healthy.'),
    endpoint: str('Docker Engine address.'),
    reachable: { type: 'boolean', description: 'The engine answered a ping.' },
    latency_ms: num('Ping round trip.'),
    writable: { type: 'boolean', description: 'The store is open and its writes succeed.' },
    file: str('Database file.'),
    file_bytes: int('Database file size.'),
    wal_bytes: int('Write-ahead log size.'),
    last_checkpoint: ntime('Last CHECKPOINT by the agent (null: none since start).'),
    plugin: str('Plugin type.'),
    buffer_events: int('Events waiting to be written.'),
    buffer_limit: int('Buffer capacity.'),
    buffer_fill_percent: num('buffer_events / buffer_limit, %.'),
    last_success: ntime('Last successful write.'),
    written: int('Events written since start.'),
    dropped: int('Events dropped since start.'),
    errors: int('Errors since start (write errors for outputs, gather/event errors for inputs).'),
    recent_errors: int('Errors in the last 5 minutes.'),
    last_gather: ntime('Last gather (pull inputs).'),
    events: int('Events emitted since start.'),
  },
};

export const healthSchema: RouteSchema = {
  summary: 'Health of every component',
  description:
    'healthy, degraded or unhealthy overall (the worst component) and per component: the Docker engine, the store, each output and each input. ' +
    'Answers 503 when unhealthy, so load balancers can use it.',
  tags: ['agent'],
  response: {
    200: {
      description: 'Healthy or degraded.',
      ...obj({ status: STATUS, timestamp: time('Now.'), uptime_seconds: int('Since this API started.'), components: arr(COMPONENT) }),
    },
    503: {
      description: 'Unhealthy (same body).',
      ...obj({ status: STATUS, timestamp: time('Now.'), uptime_seconds: int('Since this API started.'), components: arr(COMPONENT) }),
    },
  },
};
