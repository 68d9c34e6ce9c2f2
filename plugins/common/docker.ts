// What the Docker inputs share: connecting to the engine (socket, DOCKER_HOST,
// TCP with TLS), and choosing containers by name and label.

import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import os from 'node:os';
import Docker from 'dockerode';
import { own } from '../../core/own.ts';

export interface DockerConnectionConfig {
  endpoint: string;
  tls_ca: string;
  tls_cert: string;
  tls_key: string;
  api_timeout: string;
}

export interface ContainerFilterConfig {
  discover: boolean;
  include: string[];
  exclude: string[];
  include_labels: string[];
  exclude_labels: string[];
}

/** Default `exclude`: the agent's own container ("opshub", "stack-opshub-1", "stack_opshub_1"). */
export const DEFAULT_EXCLUDE = ['(^|[-_.])opshub([-_.]\\d+)?$'];

export const dockerConnectionSchema = {
  endpoint: {
    type: 'string',
    default: '',
    description: 'Docker Engine API address: unix:///path/to/docker.sock or tcp://host:port. Empty: $DOCKER_HOST, else unix:///var/run/docker.sock.',
  },
  tls_ca: { type: 'string', default: '', description: 'CA certificate file for a tcp:// endpoint with TLS (as with `docker --tlsverify`). Setting tls_cert/tls_key/tls_ca switches to https.' },
  tls_cert: { type: 'string', default: '', description: 'Client certificate file for a TLS tcp:// endpoint.' },
  tls_key: { type: 'string', default: '', description: 'Client key file for a TLS tcp:// endpoint.' },
  api_timeout: { type: 'string', format: 'duration', default: '10s', description: 'Timeout of one Engine API request, until its response begins; the events and log streams that follow may stay quiet for longer.' },
} as const;

export const containerFilterSchema = {
  discover: {
    type: 'boolean',
    default: true,
    description: 'true: every container the other filters let through; false: only containers whose name matches an `include` regex (opt-in; with no include regex, none).',
  },
  include: {
    type: 'array',
    items: { type: 'string', format: 'regex' },
    default: [],
    description: 'Regexes on the container name (without the leading "/"); when not empty, only containers matching one of them are read. Empty strings are ignored (so `["${OPS_INCLUDE_REGEX:-}"]` means no filter when the variable is unset).',
  },
  exclude: {
    type: 'array',
    items: { type: 'string', format: 'regex' },
    default: DEFAULT_EXCLUDE,
    description: 'Regexes on the container name; matching containers are skipped. Empty strings are ignored. The default skips the agent itself (named opshub, or <project>-opshub-<n> by compose); the container the agent runs in is always skipped.',
  },
  include_labels: {
    type: 'array',
    items: { type: 'string' },
    default: [],
    description: 'Label conditions that must all hold: "key" (label present) or "key=value".',
  },
  exclude_labels: {
    type: 'array',
    items: { type: 'string' },
    default: [],
    description: 'Label conditions; a container matching any of them is skipped.',
  },
} as const;

/** Endpoint → dockerode options. Empty endpoint: DOCKER_HOST, else the default socket. */
export function dockerOptions(cfg: DockerConnectionConfig, env: NodeJS.ProcessEnv = process.env, timeoutMs?: number): Docker.DockerOptions {
  const endpoint = cfg.endpoint || env.DOCKER_HOST || 'unix:///var/run/docker.sock';
  const tls = !!(cfg.tls_ca || cfg.tls_cert || cfg.tls_key);
  const read = (file: string) => (file ? readFileSync(file) : undefined);
  const base: Docker.DockerOptions = timeoutMs ? { timeout: timeoutMs } : {};
  if (endpoint.startsWith('unix://')) return { ...base, socketPath: endpoint.slice('unix://'.length) };
  if (endpoint.startsWith('/')) return { ...base, socketPath: endpoint };
  const m = /^(tcp|http|https):\/\/([^:/]+|\[[^\]]+\])(?::(\d+))?\/?$/.exec(endpoint);
  if (!m) throw new Error(`endpoint "${endpoint}" is not unix:///path or tcp://host:port`);
  const https = tls || m[1] === 'https';
  return {
    ...base,
    protocol: https ? 'https' : 'http',
    host: m[2]!.replace(/^\[|\]$/g, ''),
    port: Number(m[3] ?? (https ? 2376 : 2375)),
    ca: read(cfg.tls_ca),
    cert: read(cfg.tls_cert),
    key: read(cfg.tls_key),
  };
}

/**
 * Lifts api_timeout off a streaming response (events, followed logs).
 * dockerode's timeout is the socket's inactivity timeout, so it would also
 * cut a stream that is merely quiet; it stays in force until the response
 * headers arrive, which bounds a hung request.
 */
export function untimed<T extends NodeJS.ReadableStream>(stream: T): T {
  const socket = (stream as { socket?: Socket }).socket;
  if (socket) untimedSocket(socket);
  return stream;
}

/** untimed() for the socket a stream is read from: no inactivity timeout, TCP keep-alive. */
export function untimedSocket(socket: Socket): void {
  socket.setTimeout(0);
  // Over tcp://, a peer that vanished without closing is still noticed (a no-op on unix sockets).
  socket.setKeepAlive(true, 30_000);
}

/** A printable name of the endpoint, for messages. */
export function endpointName(cfg: DockerConnectionConfig, env: NodeJS.ProcessEnv = process.env): string {
  return cfg.endpoint || env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

/** The container name without Docker's leading "/". */
export function containerName(names: string[] | string | undefined, id: string): string {
  const n = Array.isArray(names) ? names[0] : names;
  return n ? n.replace(/^\//, '') : id.slice(0, 12);
}

/** The id prefix of the container this process runs in, when it runs in one. */
export function ownContainerId(): string | undefined {
  try {
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const m = /\/containers\/([0-9a-f]{64})\/(?:hostname|resolv\.conf|hosts)/.exec(line);
      if (m) return m[1];
    }
  } catch {
    /* not Linux, or no procfs */
  }
  const host = os.hostname();
  return /^[0-9a-f]{12}$/.test(host) ? host : undefined;
}

export interface ContainerFilter {
  (name: string, labels: Record<string, string> | undefined, id?: string): boolean;
}

export function containerFilter(cfg: ContainerFilterConfig, self = ownContainerId()): ContainerFilter {
  // An empty pattern is "not set" (an unset ${VAR:-} in the pipeline file), not "match everything".
  const include = cfg.include.filter((r) => r !== '').map((r) => new RegExp(r));
  const exclude = cfg.exclude.filter((r) => r !== '').map((r) => new RegExp(r));
  const discover = cfg.discover ?? true;
  const cond = (spec: string) => {
    const eq = spec.indexOf('=');
    const key = eq < 0 ? spec : spec.slice(0, eq);
    const value = eq < 0 ? undefined : spec.slice(eq + 1);
    return (labels: Record<string, string>) => (value === undefined ? Object.hasOwn(labels, key) : own(labels, key) === value);
  };
  const must = cfg.include_labels.map(cond);
  const mustNot = cfg.exclude_labels.map(cond);
  return (name, labels = {}, id) => {
    if (self && id?.startsWith(self)) return false;
    if ((include.length || !discover) && !include.some((r) => r.test(name))) return false;
    if (exclude.some((r) => r.test(name))) return false;
    if (!must.every((c) => c(labels))) return false;
    if (mustNot.some((c) => c(labels))) return false;
    return true;
  };
}

/** Compose project/service labels, when the container was created by compose. */
export function composeLabels(labels: Record<string, string> | undefined): { compose_project?: string; compose_service?: string } {
  const out: { compose_project?: string; compose_service?: string } = {};
  const project = labels?.['com.docker.compose.project'];
  const service = labels?.['com.docker.compose.service'];
  if (project) out.compose_project = project;
  if (service) out.compose_service = service;
  return out;
}

/** Error status of a failed Engine API call (dockerode sets statusCode). */
export function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown })?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** The engine cannot be reached at all (as opposed to refusing one request). */
export function isConnectionError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return statusOf(err) === undefined && !!code && /^(ECONNREFUSED|ENOENT|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EACCES|EAI_AGAIN|ENOTFOUND)$/.test(code);
}

/** Splits a stream of newline-delimited JSON (the events endpoint) into objects. */
export function jsonLines(onObject: (obj: any) => void): (chunk: Buffer) => void {
  let rest = '';
  return (chunk) => {
    rest += chunk.toString('utf8');
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, nl).trim();
      rest = rest.slice(nl + 1);
      if (!line) continue;
      try {
        onObject(JSON.parse(line));
      } catch {
        /* a torn or foreign line: skip */
      }
    }
  };
}
