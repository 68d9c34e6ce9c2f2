// Wires inputs → processors (in config order) → outputs, and reconciles a
// running pipeline with a new config (hot reload): unchanged instances keep
// running with their buffers and checkpoints, changed outputs hand their
// buffered events to their successors, removed ones drain.
// Start order: outputs, processors, inputs; stop order: the reverse, so data drains.

import type { PipelineConfig, PluginInstanceConfig } from './config.ts';
import type { Envelope } from './delivery.ts';
import { makeMetric, type Event } from './events.ts';
import type { HttpMount, Route, RouteAuth, RouteSchema, UpgradeHandler } from './http.ts';
import type { Logger } from './log.ts';
import { errorMessage } from './log.ts';
import type { InstanceInfo, Output, PluginContext, Processor, PullInput, SelfReporting, ServiceInput } from './plugin.ts';
import { RunningInput } from './running/input.ts';
import { RunningOutput } from './running/output.ts';
import { RunningProcessor } from './running/processor.ts';

export interface PipelineDeps {
  http: HttpMount;
  log: Logger;
  /** Overridable in tests. */
  random?: () => number;
}

/** An HttpMount that remembers what one instance mounted, to unmount it on stop. */
class ScopedMount implements HttpMount {
  private removers: Array<() => void> = [];
  constructor(private parent: HttpMount) {}
  route(route: Route): () => void {
    const remove = this.parent.route(route);
    this.removers.push(remove);
    return remove;
  }
  upgrade(path: string, handler: UpgradeHandler, auth?: RouteAuth, doc?: RouteSchema): () => void {
    const remove = this.parent.upgrade(path, handler, auth, doc);
    this.removers.push(remove);
    return remove;
  }
  isAuthorized(req: Parameters<HttpMount['isAuthorized']>[0]): boolean {
    return this.parent.isAuthorized(req);
  }
  unmountAll(): void {
    for (const r of this.removers.splice(0)) r();
  }
}

interface Instance {
  abort: AbortController;
  mount: ScopedMount;
}

export class Pipeline {
  readonly inputs = new Map<string, RunningInput>();
  processors: RunningProcessor[] = [];
  readonly outputs = new Map<string, RunningOutput>();
  private instances = new WeakMap<object, Instance>();
  private hostname = '';
  private shutdownMs = 10_000;

  constructor(private deps: PipelineDeps) {}

  /** Runs events through the processors and hands them to every output that accepts them. */
  readonly ingest = (envs: Envelope[]): void => {
    let current = envs;
    for (const p of this.processors) {
      const next: Envelope[] = [];
      for (const env of current) p.apply(env, next);
      current = next;
    }
    const outputs = [...this.outputs.values()];
    for (const env of current) {
      for (const o of outputs) if (o.accepts(env)) o.push(env);
    }
  };

  /** Runs events through the processors only (for `opshub test`). */
  process(events: Event[], input = 'test'): Event[] {
    let current: Envelope[] = events.map((event) => ({ event, input }));
    for (const p of this.processors) {
      const next: Envelope[] = [];
      for (const env of current) p.apply(env, next);
      current = next;
    }
    return current.map((e) => e.event);
  }

  private context(cfg: PluginInstanceConfig, section: string): { ctx: PluginContext; inst: Instance } {
    const inst: Instance = { abort: new AbortController(), mount: new ScopedMount(this.deps.http) };
    const ctx: PluginContext = {
      id: cfg.id,
      log: this.deps.log.child(`${section}.${cfg.id}`),
      dataDir: cfg.dataDir,
      http: inst.mount,
      hostname: this.hostname,
      signal: inst.abort.signal,
      instances: () => this.instanceInfos(),
    };
    return { ctx, inst };
  }

  private release(running: object): void {
    const inst = this.instances.get(running);
    inst?.abort.abort();
    inst?.mount.unmountAll();
  }

  createOutput(cfg: PluginInstanceConfig): RunningOutput {
    const { ctx, inst } = this.context(cfg, 'outputs');
    const plugin = (cfg.definition.create as (c: unknown, x: PluginContext) => Output)(cfg.options, ctx);
    const running = new RunningOutput(cfg, plugin, ctx.log, this.deps.random);
    this.instances.set(running, inst);
    return running;
  }

  createProcessor(cfg: PluginInstanceConfig): RunningProcessor {
    const { ctx, inst } = this.context(cfg, 'processors');
    const plugin = (cfg.definition.create as (c: unknown, x: PluginContext) => Processor)(cfg.options, ctx);
    const running = new RunningProcessor(cfg, plugin, ctx.log);
    this.instances.set(running, inst);
    return running;
  }

  createInput(cfg: PluginInstanceConfig, sink: (envs: Envelope[]) => void = this.ingest): RunningInput {
    const { ctx, inst } = this.context(cfg, 'inputs');
    const plugin = (cfg.definition.create as (c: unknown, x: PluginContext) => PullInput | ServiceInput)(cfg.options, ctx);
    const running: RunningInput = new RunningInput(cfg, plugin, sink, ctx.log, () => this.release(running), () => {
      for (const o of this.outputs.values()) o.flushNow();
    });
    this.instances.set(running, inst);
    return running;
  }

  /**
   * Makes the running pipeline match `config`. With `strict` (first start) any
   * failure is thrown; on reload a failing new instance is reported and skipped.
   */
  async apply(config: PipelineConfig, opts: { strict: boolean; shutdownMs?: number }): Promise<void> {
    this.hostname = config.hostname;
    this.shutdownMs = opts.shutdownMs ?? this.shutdownMs;
    const log = this.deps.log;
    const attempt = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await fn();
      } catch (err) {
        if (opts.strict) throw new Error(`${what}: ${errorMessage(err)}`);
        log.error(`${what}: ${errorMessage(err)} (kept the previous one, if any)`);
        return undefined;
      }
    };

    // 1. Outputs first, so nothing emitted later finds no destination.
    const nextOutputs = new Map<string, RunningOutput>();
    const replaced: Array<[RunningOutput, RunningOutput]> = [];
    for (const cfg of config.outputs) {
      const old = this.outputs.get(cfg.id);
      if (old && old.config.fingerprint === cfg.fingerprint) {
        nextOutputs.set(cfg.id, old);
        continue;
      }
      const start = async (c: PluginInstanceConfig) => {
        const o = this.createOutput(c);
        try {
          await o.start();
        } catch (err) {
          this.release(o);
          throw err;
        }
        return o;
      };
      if (old) {
        // The successor may mount the same routes: stop the old plugin first, keeping
        // its buffer (it still accepts events) to hand over once the successor runs.
        await old.detach();
        await old.plugin.stop?.().catch((err) => log.error(`outputs.${old.id}: stop failed: ${errorMessage(err)}`));
        this.release(old);
      }
      let fresh = await attempt(`outputs.${cfg.id}: cannot start`, () => start(cfg));
      if (!fresh && old) {
        fresh = await attempt(`outputs.${cfg.id}: cannot restart with the previous config`, () => start(old.config));
      }
      if (fresh) {
        nextOutputs.set(cfg.id, fresh);
        if (old) replaced.push([old, fresh]);
      } else if (old) {
        old.handOverTo(undefined); // nothing can take them: counted as dropped
      }
    }

    // 2. Processors, reused when unchanged.
    const nextProcessors: RunningProcessor[] = [];
    for (const cfg of config.processors) {
      const old = this.processors.find((p) => p.id === cfg.id && p.config.fingerprint === cfg.fingerprint);
      if (old) {
        nextProcessors.push(old);
        continue;
      }
      const fresh = await attempt(`processors.${cfg.id}: cannot start`, async () => {
        const p = this.createProcessor(cfg);
        await p.plugin.start?.();
        return p;
      });
      if (fresh) nextProcessors.push(fresh);
      else {
        const previous = this.processors.find((p) => p.id === cfg.id);
        if (previous) nextProcessors.push(previous);
      }
    }

    // 3. Swap: from here on, events flow through the new chain.
    const oldOutputs = [...this.outputs.values()];
    const oldProcessors = this.processors;
    this.processors = nextProcessors;
    this.outputs.clear();
    for (const [id, o] of nextOutputs) this.outputs.set(id, o);

    for (const [old, fresh] of replaced) {
      const moved = old.handOverTo(fresh);
      if (moved) log.info(`outputs.${fresh.id}: handed ${moved} buffered events to the reconfigured output`);
    }
    const replacedOld = new Set(replaced.map(([o]) => o));
    for (const p of oldProcessors) {
      if (!nextProcessors.includes(p)) {
        await p.plugin.stop?.().catch(() => undefined);
        this.release(p);
      }
    }

    // 4. Inputs: changed or removed ones stop before their successors start.
    const wanted = new Map(config.inputs.map((c) => [c.id, c]));
    const stoppedInputs: RunningInput[] = [];
    for (const [id, running] of [...this.inputs]) {
      const cfg = wanted.get(id);
      if (!cfg || cfg.fingerprint !== running.config.fingerprint) {
        await running.stop();
        this.inputs.delete(id);
        if (cfg) {
          // Its successor reads the same checkpoints: let the old one save its last acknowledgements first.
          await running.settled(this.shutdownMs);
          await running.close();
        } else stoppedInputs.push(running);
      }
    }
    for (const cfg of config.inputs) {
      if (this.inputs.has(cfg.id)) continue;
      const fresh = await attempt(`inputs.${cfg.id}: cannot start`, async () => {
        const i = this.createInput(cfg);
        try {
          await i.start(this.deps.random);
        } catch (err) {
          await i.stop().catch(() => undefined);
          throw err;
        }
        return i;
      });
      if (fresh) this.inputs.set(cfg.id, fresh);
    }

    // 5. Outputs that are gone drain in the background of the new pipeline.
    await Promise.all(
      oldOutputs
        .filter((o) => !replacedOld.has(o) && !nextOutputs.has(o.id))
        .map(async (o) => {
          await o.stop(this.shutdownMs);
          this.release(o);
        }),
    );
    await Promise.all(stoppedInputs.map((i) => i.close()));
  }

  /** Stops inputs, then processors, then flushes and stops outputs within the deadline. Safe twice. */
  async stop(deadlineMs = this.shutdownMs): Promise<void> {
    const inputs = [...this.inputs.values()];
    await Promise.all(inputs.map((i) => i.stop()));
    this.inputs.clear();
    for (const p of this.processors) {
      await p.plugin.stop?.().catch(() => undefined);
      this.release(p);
    }
    this.processors = [];
    const outputs = [...this.outputs.values()];
    this.outputs.clear();
    await Promise.all(
      outputs.map(async (o) => {
        await o.stop(deadlineMs);
        this.release(o);
      }),
    );
    await Promise.all(inputs.map((i) => i.close()));
  }

  /** The running instances, read-only (PluginContext.instances). */
  instanceInfos(): InstanceInfo[] {
    const info = (section: InstanceInfo['section'], r: RunningInput | RunningProcessor | RunningOutput, intervalMs: number): InstanceInfo => ({
      section,
      id: r.id,
      type: r.type,
      kind: r.config.kind,
      plugin: r.plugin,
      options: r.config.options,
      intervalMs,
      stats: { ...r.stats },
    });
    return [
      ...[...this.inputs.values()].map((i) => info('inputs', i, i.config.intervalMs)),
      ...this.processors.map((p) => info('processors', p, 0)),
      ...[...this.outputs.values()].map((o) => ({ ...info('outputs', o, o.config.flushIntervalMs), buffer: { events: o.bufferSize, limit: o.config.bufferLimit } })),
    ];
  }

  /** The agent's own health as opshub_* metric events. */
  selfMetrics(): Event[] {
    const events: Event[] = [];
    for (const i of this.inputs.values()) {
      const tags = { plugin: i.type, id: i.id, host: this.hostname };
      events.push(
        makeMetric('opshub_input', {
          events_total: i.stats.events,
          errors_total: i.stats.errors,
          gathers_total: i.stats.gathers,
          gathers_skipped_total: i.stats.gathers_skipped,
          gather_seconds_total: i.stats.gather_seconds,
        }, tags, { type: 'counter' }),
      );
    }
    for (const p of this.processors) {
      events.push(
        makeMetric('opshub_processor', { events_total: p.stats.processed, events_dropped_total: p.stats.dropped, errors_total: p.stats.errors },
          { plugin: p.type, id: p.id, host: this.hostname }, { type: 'counter' }),
      );
    }
    for (const o of this.outputs.values()) {
      const tags = { plugin: o.type, id: o.id, host: this.hostname };
      events.push(
        makeMetric('opshub_output', {
          events_written_total: o.stats.written,
          events_dropped_total: o.stats.dropped,
          write_errors_total: o.stats.write_errors,
          batches_total: o.stats.batches,
          write_seconds_total: o.stats.write_seconds,
        }, tags, { type: 'counter' }),
        makeMetric('opshub_output_buffer', { events: o.bufferSize, limit_events: o.config.bufferLimit }, tags, { type: 'gauge' }),
      );
    }
    for (const running of [...this.inputs.values(), ...this.processors, ...this.outputs.values()]) {
      events.push(...pluginSelfMetrics(running.plugin, { plugin: running.type, id: running.id, host: this.hostname }));
    }
    return events;
  }
}

/** A plugin's own figures as two metric events: counters (`*_total`) and gauges. */
function pluginSelfMetrics(plugin: SelfReporting, tags: Record<string, string>): Event[] {
  let figures: Record<string, number> | undefined;
  try {
    figures = plugin.selfMetrics?.();
  } catch {
    return [];
  }
  if (!figures) return [];
  const counters: Record<string, number> = {};
  const gauges: Record<string, number> = {};
  for (const [name, value] of Object.entries(figures)) {
    if (typeof value !== 'number' || !Number.isFinite(value)) continue;
    (name.endsWith('_total') ? counters : gauges)[name] = value;
  }
  const out: Event[] = [];
  if (Object.keys(counters).length) out.push(makeMetric('opshub_plugin', counters, { ...tags }, { type: 'counter' }));
  if (Object.keys(gauges).length) out.push(makeMetric('opshub_plugin', gauges, { ...tags }, { type: 'gauge' }));
  return out;
}
