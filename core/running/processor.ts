// The running wrapper of a processor: applies its match filter and counts.
// A processor that throws passes the event on unchanged (never lose data).

import type { PluginInstanceConfig } from '../config.ts';
import type { Envelope } from '../delivery.ts';
import type { Logger } from '../log.ts';
import { errorMessage } from '../log.ts';
import { compileMatch, type EnvelopeFilter } from '../match.ts';
import type { Processor } from '../plugin.ts';

export interface ProcessorStats {
  processed: number;
  dropped: number;
  errors: number;
}

export class RunningProcessor {
  readonly id: string;
  readonly type: string;
  readonly accepts: EnvelopeFilter;
  readonly stats: ProcessorStats = { processed: 0, dropped: 0, errors: 0 };

  constructor(readonly config: PluginInstanceConfig, readonly plugin: Processor, private log: Logger) {
    this.id = config.id;
    this.type = config.type;
    this.accepts = compileMatch(config.match);
  }

  /** Appends to `out` what becomes of `env`. */
  apply(env: Envelope, out: Envelope[]): void {
    if (!this.accepts(env)) {
      out.push(env);
      return;
    }
    this.stats.processed++;
    let result;
    try {
      result = this.plugin.process(env.event);
    } catch (err) {
      this.stats.errors++;
      this.log.once('process', 'error', `processing failed, passing events on unchanged (logged once): ${errorMessage(err)}`);
      out.push(env);
      return;
    }
    if (result == null) {
      this.stats.dropped++;
      return;
    }
    if (!Array.isArray(result)) {
      out.push(result === env.event ? env : { ...env, event: result });
      return;
    }
    for (const event of result) out.push({ ...env, event });
  }
}
