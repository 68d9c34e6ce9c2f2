// outputs.stdout: prints events as JSON lines or logfmt, for debugging pipelines.

import { eventToJSON, type Event } from '../../../core/events.ts';
import type { Output, PluginDefinition } from '../../../core/plugin.ts';

export interface StdoutConfig {
  format: 'json' | 'logfmt';
}

function logfmtValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s);
}

/** One logfmt line: fixed keys first, then labels/tags and attributes/fields. */
export function toLogfmt(event: Event): string {
  const j = eventToJSON(event) as Record<string, any>;
  const pairs: Array<[string, unknown]> = [['ts', j.timestamp], ['kind', j.kind]];
  if (event.kind === 'log') {
    pairs.push(['level', j.level], ['source', j.source], ['msg', j.message]);
    for (const [k, v] of Object.entries(j.labels)) pairs.push([k, v]);
    for (const [k, v] of Object.entries(j.attributes)) pairs.push([k, v]);
  } else {
    pairs.push(['name', j.name], ['type', j.type]);
    for (const [k, v] of Object.entries(j.tags)) pairs.push([k, v]);
    for (const [k, v] of Object.entries(j.fields)) pairs.push([k, v]);
  }
  return pairs.map(([k, v]) => `${k}=${logfmtValue(v)}`).join(' ');
}

export function createStdout(config: StdoutConfig, stream: NodeJS.WritableStream = process.stdout): Output {
  const format = config.format === 'logfmt' ? toLogfmt : (e: Event) => JSON.stringify(eventToJSON(e));
  return {
    async write(events) {
      let text = '';
      for (const e of events) text += `${format(e)}\n`;
      // Respect backpressure: a slow terminal or pipe slows this output, not the agent.
      if (!stream.write(text)) await new Promise<void>((resolve) => stream.once('drain', () => resolve()));
    },
  };
}

export const stdout: PluginDefinition<StdoutConfig> = {
  kind: 'output',
  type: 'stdout',
  description: 'Prints events to standard output as JSON lines or logfmt, for debugging pipelines.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      format: { enum: ['json', 'logfmt'], default: 'json', description: 'json: one JSON object per line; logfmt: key=value pairs.' },
    },
  },
  create: (config) => createStdout(config),
};

export default stdout;
