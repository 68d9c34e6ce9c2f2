// Routing: a processor or output may be limited to some events by kind, by
// input id, by metric name and by label/tag values.

import type { MatchConfig } from './config.ts';
import type { Envelope } from './delivery.ts';
import { own } from './own.ts';

export type EnvelopeFilter = (env: Envelope) => boolean;

function globToRegex(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

export function compileMatch(match: MatchConfig | undefined): EnvelopeFilter {
  if (!match) return () => true;
  const kinds = match.kinds ? new Set(match.kinds) : undefined;
  const inputs = match.inputs ? new Set(match.inputs) : undefined;
  const excluded = match.exclude_inputs ? new Set(match.exclude_inputs) : undefined;
  const names = match.names?.map(globToRegex);
  const labels = Object.entries(match.labels ?? {}).map(([k, v]) => [k, new RegExp(v)] as const);
  return (env) => {
    const e = env.event;
    if (kinds && !kinds.has(e.kind)) return false;
    if (inputs && !inputs.has(env.input)) return false;
    if (excluded?.has(env.input)) return false;
    if (names && (e.kind !== 'metric' || !names.some((re) => re.test(e.name)))) return false;
    if (labels.length) {
      const values = e.kind === 'log' ? e.labels : e.tags;
      for (const [k, re] of labels) {
        const v = own(values, k);
        if (v === undefined || !re.test(v)) return false;
      }
    }
    return true;
  };
}
