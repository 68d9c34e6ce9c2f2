// A service input that emits whatever the test hands it, for tests that run a
// real agent and need to control exactly which events enter the pipeline.
// Each call makes a fresh definition, so tests never share state.

import type { Event } from '../../core/events.ts';
import type { Accumulator, PluginDefinition, ServiceInput } from '../../core/plugin.ts';

export function pushInput(type = 'push') {
  let acc: Accumulator | undefined;
  const definition: PluginDefinition = {
    kind: 'service_input',
    type,
    description: 'Test input: emits the events the test pushes.',
    schema: { type: 'object', additionalProperties: false, properties: {} },
    create(): ServiceInput {
      return {
        async start(a) {
          acc = a;
        },
        async stop() {
          acc = undefined;
        },
      };
    },
  };
  return {
    definition,
    /** Emits events into the running agent's pipeline (throws when the input is not started). */
    emit(...events: Event[]): void {
      if (!acc) throw new Error(`input ${type} is not running`);
      acc.emitMany(events);
    },
  };
}
