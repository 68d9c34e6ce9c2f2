// The agent: loads the pipeline file, runs the HTTP server and the pipeline,
// emits self-metrics, and hot-reloads on file change or SIGHUP. A valid
// change swaps the pipeline without losing buffered events; an invalid one is
// reported and the running pipeline stays.

import { watch, type FSWatcher } from 'chokidar';
import { ConfigError, loadConfig, type PipelineConfig } from './config.ts';
import { AgentHttpServer, type HttpPolicies } from './http.ts';
import { createLogger, errorMessage, type Logger, type LogSink } from './log.ts';
import type { PluginDefinition } from './plugin.ts';
import { Pipeline } from './pipeline.ts';
import { parseDuration } from './units.ts';

export interface AgentOptions {
  file: string;
  builtins: PluginDefinition[];
  env?: NodeJS.ProcessEnv;
  logSink?: LogSink;
  /** Watch the file and reload on change (default true). */
  watch?: boolean;
  /** Overrides agent.http.listen (tests use 127.0.0.1:0). */
  listen?: string;
}

export class Agent {
  readonly log: Logger;
  readonly http: AgentHttpServer;
  readonly pipeline: Pipeline;
  private watcher?: FSWatcher;
  private selfTimer?: NodeJS.Timeout;
  private reloading: Promise<boolean> = Promise.resolve(true);
  private stopped?: Promise<void>;
  private debounce?: NodeJS.Timeout;

  private constructor(private opts: AgentOptions, public config: PipelineConfig) {
    this.log = createLogger({ level: config.agent.log_level, sink: opts.logSink });
    this.http = new AgentHttpServer({
      listen: opts.listen ?? config.agent.http.listen,
      authToken: config.agent.http.auth_token,
      log: this.log.child('http'),
      policies: httpPolicies(config),
      starting: true,
    });
    this.pipeline = new Pipeline({ http: this.http, log: this.log });
  }

  /** Loads, validates and starts everything; throws ConfigError or a start-up error. */
  static async start(opts: AgentOptions): Promise<Agent> {
    const config = await loadConfig(opts.file, { builtins: opts.builtins, env: opts.env });
    const agent = new Agent(opts, config);
    await agent.http.start();
    try {
      await agent.pipeline.apply(config, { strict: true, shutdownMs: parseDuration(config.agent.shutdown_timeout) });
      await agent.http.ready();
      agent.http.markStarted();
    } catch (err) {
      await agent.pipeline.stop(1000).catch(() => undefined);
      await agent.http.stop();
      throw err;
    }
    agent.scheduleSelfMetrics();
    if (opts.watch !== false) await agent.watchFile();
    agent.log.info(`started: ${config.inputs.length} inputs, ${config.processors.length} processors, ${config.outputs.length} outputs from ${opts.file}`);
    return agent;
  }

  private scheduleSelfMetrics(): void {
    if (this.selfTimer) clearInterval(this.selfTimer);
    this.selfTimer = undefined;
    if (!this.config.agent.self_metrics) return;
    this.selfTimer = setInterval(() => this.emitSelfMetrics(), parseDuration(this.config.agent.interval));
    this.selfTimer.unref();
  }

  emitSelfMetrics(): void {
    this.pipeline.ingest(this.pipeline.selfMetrics().map((event) => ({ event, input: 'internal' })));
  }

  /** Resolves once the watcher is ready, so a change made right after start is seen. */
  private watchFile(): Promise<void> {
    this.watcher = watch(this.opts.file, { ignoreInitial: true, awaitWriteFinish: { stabilityThreshold: 100, pollInterval: 50 } });
    this.watcher.on('all', (eventName) => {
      if (eventName !== 'change' && eventName !== 'add') return;
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => void this.reload(), 100);
    });
    return new Promise((resolve) => this.watcher!.once('ready', () => resolve()));
  }

  /** Reloads the file; resolves true when the new pipeline runs, false when the old one stays. */
  reload(): Promise<boolean> {
    this.reloading = this.reloading.then(() => this.doReload());
    return this.reloading;
  }

  private async doReload(): Promise<boolean> {
    if (this.stopped) return false;
    let next: PipelineConfig;
    try {
      next = await loadConfig(this.opts.file, { builtins: this.opts.builtins, env: this.opts.env });
    } catch (err) {
      const text = err instanceof ConfigError ? err.message : errorMessage(err);
      this.log.error(`reload rejected, the running pipeline stays:\n${text}`);
      return false;
    }
    if (!this.opts.listen && next.agent.http.listen !== this.config.agent.http.listen) {
      this.log.warn(`agent.http.listen changed to ${next.agent.http.listen}; it takes effect after a restart`);
    }
    this.http.setAuthToken(next.agent.http.auth_token);
    this.http.configure(httpPolicies(next));
    await this.pipeline.apply(next, { strict: false, shutdownMs: parseDuration(next.agent.shutdown_timeout) });
    await this.http.ready().catch((err) => this.log.error(errorMessage(err)));
    this.config = next;
    this.scheduleSelfMetrics();
    this.log.info(`reloaded ${this.opts.file}`);
    return true;
  }

  /** Graceful shutdown: stop inputs, drain processors, flush outputs within the deadline. Safe twice. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      clearTimeout(this.debounce);
      if (this.selfTimer) clearInterval(this.selfTimer);
      await this.watcher?.close();
      await this.reloading.catch(() => undefined);
      await this.pipeline.stop(parseDuration(this.config.agent.shutdown_timeout));
      await this.http.stop();
      this.log.info('stopped');
    })();
    return this.stopped;
  }
}

/** agent.http's rate limit, CORS and docs settings as the HTTP server takes them. */
export function httpPolicies(config: PipelineConfig): HttpPolicies {
  const h = config.agent.http;
  return {
    docs: h.docs,
    rateLimit: { requests: h.rate_limit.requests, windowMs: parseDuration(h.rate_limit.window), trustProxy: h.rate_limit.trust_proxy, exemptPaths: h.rate_limit.exempt_paths },
    cors: { origins: h.cors.origins, maxAgeS: Math.round(parseDuration(h.cors.max_age) / 1000) },
  };
}
