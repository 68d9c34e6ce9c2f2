// /health/detailed: the Docker engine (a ping through the Docker inputs'
// connection settings), the store, and every input and output from the
// runtime's own figures (buffer fill, last success, errors, last gather).

import { statSync } from 'node:fs';
import Docker from 'dockerode';
import type { InstanceInfo, PluginContext } from '../../../core/plugin.ts';
import { dockerOptions, endpointName, type DockerConnectionConfig } from '../../common/docker.ts';
import { dockerInstances, findProviders, STORE } from '../../common/providers.ts';
import { iso } from './format.ts';

export type Status = 'healthy' | 'degraded' | 'unhealthy';

export interface Component {
  name: string;
  type: 'docker' | 'store' | 'input' | 'processor' | 'output';
  status: Status;
  message?: string;
  [field: string]: unknown;
}

const RANK: Record<Status, number> = { healthy: 0, degraded: 1, unhealthy: 2 };
export const worst = (statuses: Status[]): Status => statuses.reduce<Status>((a, b) => (RANK[b] > RANK[a] ? b : a), 'healthy');

const RECENT_MS = 5 * 60_000;
const SAMPLE_MS = 15_000;

export interface HealthOptions {
  /** An output whose buffer is fuller than this (%) is degraded. */
  bufferDegradedPercent: number;
  /** A ping slower than this is degraded. */
  dockerSlowMs: number;
  pingTimeoutMs: number;
}

/**
 * Keeps a few minutes of the runtime's error and drop counters (sampled every
 * 15 s and at each check), so that "errors in the last 5 minutes" — not
 * errors since start — decide whether an instance is degraded.
 */
export class HealthChecker {
  private history: Array<{ at: number; counts: Map<string, { errors: number; dropped: number }> }> = [];
  private timer?: NodeJS.Timeout;
  private dockers = new Map<string, Docker>();

  constructor(
    private ctx: PluginContext,
    private opts: HealthOptions,
    private now: () => number = Date.now,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.dockers.clear();
  }

  private counts(infos: InstanceInfo[]): Map<string, { errors: number; dropped: number }> {
    const m = new Map<string, { errors: number; dropped: number }>();
    for (const i of infos) {
      const errors = i.section === 'outputs' ? i.stats.write_errors : i.stats.errors;
      m.set(`${i.section}.${i.id}`, { errors: errors ?? 0, dropped: i.stats.dropped ?? 0 });
    }
    return m;
  }

  private sample(infos = this.ctx.instances?.() ?? []): void {
    const at = this.now();
    this.history.push({ at, counts: this.counts(infos) });
    while (this.history.length > 1 && this.history[1]!.at <= at - RECENT_MS) this.history.shift();
  }

  /** Increase of a counter over the kept window (up to 5 minutes). */
  private recent(key: string, now: Map<string, { errors: number; dropped: number }>): { errors: number; dropped: number } {
    const current = now.get(key) ?? { errors: 0, dropped: 0 };
    const oldest = this.history[0]?.counts.get(key) ?? { errors: 0, dropped: 0 };
    return { errors: Math.max(0, current.errors - oldest.errors), dropped: Math.max(0, current.dropped - oldest.dropped) };
  }

  async check(): Promise<{ status: Status; components: Component[] }> {
    const infos = this.ctx.instances?.() ?? [];
    const counts = this.counts(infos);
    const components: Component[] = [];
    components.push(...(await this.docker()));
    components.push(...this.stores(infos));
    for (const i of infos) {
      if (i.section === 'outputs') components.push(this.output(i, this.recent(`outputs.${i.id}`, counts)));
      else if (i.section === 'inputs') components.push(this.input(i, this.recent(`inputs.${i.id}`, counts)));
    }
    this.sample(infos);
    return { status: worst(components.map((c) => c.status)), components };
  }

  private async docker(): Promise<Component[]> {
    const byEndpoint = new Map<string, DockerConnectionConfig>();
    for (const i of dockerInstances(this.ctx)) {
      const cfg = i.options as unknown as DockerConnectionConfig;
      byEndpoint.set(endpointName(cfg), cfg);
    }
    return Promise.all(
      [...byEndpoint].map(async ([endpoint, cfg]): Promise<Component> => {
        const name = byEndpoint.size > 1 ? `docker ${endpoint}` : 'docker';
        let client = this.dockers.get(endpoint);
        try {
          client ??= new Docker(dockerOptions(cfg, process.env, this.opts.pingTimeoutMs));
          this.dockers.set(endpoint, client);
          const started = performance.now();
          await client.ping();
          const latency = Math.round((performance.now() - started) * 10) / 10;
          const slow = latency > this.opts.dockerSlowMs;
          return {
            name,
            type: 'docker',
            status: slow ? 'degraded' : 'healthy',
            ...(slow ? { message: `the engine took ${latency} ms to answer a ping` } : {}),
            endpoint,
            reachable: true,
            latency_ms: latency,
          };
        } catch (err) {
          return { name, type: 'docker', status: 'unhealthy', message: `the Docker engine does not answer: ${(err as Error).message}`, endpoint, reachable: false };
        }
      }),
    );
  }

  private stores(infos: InstanceInfo[]): Component[] {
    return findProviders(this.ctx, STORE, 'outputs').map(({ info, provider }) => {
      const store = provider.store;
      const running = infos.find((i) => i.section === 'outputs' && i.id === info.id);
      const size = (file: string) => {
        try {
          return statSync(file).size;
        } catch {
          return 0;
        }
      };
      const lastSuccess = running?.stats.last_success_ms;
      const waiting = running?.buffer?.events ?? 0;
      const stuck = waiting > 0 && (lastSuccess === undefined ? false : this.now() - lastSuccess > Math.max(60_000, info.intervalMs * 10));
      const writable = store.isOpen && !stuck;
      return {
        name: findProviders(this.ctx, STORE, 'outputs').length > 1 ? `store ${info.id}` : 'store',
        type: 'store' as const,
        status: !store.isOpen ? 'unhealthy' : stuck ? 'degraded' : 'healthy',
        ...(!store.isOpen ? { message: 'the database is not open' } : stuck ? { message: `no write has succeeded for ${Math.round((this.now() - lastSuccess!) / 1000)} s while ${waiting} events wait` } : {}),
        plugin: info.type,
        writable,
        file: store.file,
        file_bytes: size(store.file),
        wal_bytes: size(`${store.file}.wal`),
        last_checkpoint: store.lastCheckpointMs ? iso(store.lastCheckpointMs) : null,
      } satisfies Component;
    });
  }

  private output(i: InstanceInfo, recent: { errors: number; dropped: number }): Component {
    const events = i.buffer?.events ?? 0;
    const limit = i.buffer?.limit ?? 1;
    const fill = Math.round((events / limit) * 1000) / 10;
    const last = i.stats.last_success_ms;
    let status: Status = 'healthy';
    const why: string[] = [];
    if (recent.dropped > 0) {
      status = 'degraded';
      why.push(`${recent.dropped} events dropped in the last minutes`);
    }
    if (fill >= this.opts.bufferDegradedPercent) {
      status = 'degraded';
      why.push(`the buffer is ${fill}% full`);
    }
    if (recent.errors > 0) {
      if (status === 'healthy') status = 'degraded';
      why.push(`${recent.errors} write errors in the last minutes`);
    }
    return {
      name: `outputs.${i.id}`,
      type: 'output',
      status,
      ...(why.length ? { message: why.join('; ') } : {}),
      plugin: i.type,
      buffer_events: events,
      buffer_limit: limit,
      buffer_fill_percent: fill,
      last_success: last ? iso(last) : null,
      written: i.stats.written ?? 0,
      dropped: i.stats.dropped ?? 0,
      errors: i.stats.write_errors ?? 0,
      recent_errors: recent.errors,
    };
  }

  private input(i: InstanceInfo, recent: { errors: number; dropped: number }): Component {
    const last = i.stats.last_gather_ms;
    const pull = i.kind === 'input';
    let status: Status = 'healthy';
    const why: string[] = [];
    if (recent.errors > 0) {
      status = 'degraded';
      why.push(`${recent.errors} errors in the last minutes`);
    }
    if (pull && last !== undefined && this.now() - last > Math.max(3 * i.intervalMs, 30_000)) {
      status = 'degraded';
      why.push(`no gather for ${Math.round((this.now() - last) / 1000)} s (interval ${i.intervalMs / 1000} s)`);
    }
    return {
      name: `inputs.${i.id}`,
      type: 'input',
      status,
      ...(why.length ? { message: why.join('; ') } : {}),
      plugin: i.type,
      ...(pull ? { last_gather: last ? iso(last) : null } : {}),
      events: i.stats.events ?? 0,
      errors: i.stats.errors ?? 0,
      recent_errors: recent.errors,
    };
  }
}
