// An example custom plugin: a pull input that emits a heartbeat log line and a
// counter every interval. Copy this file into your `agent.plugin_dir` and
// list it in the pipeline like any built-in:
//
//   agent:
//     plugin_dir: ./plugins
//   inputs:
//     - type: heartbeat
//       message: "still here"
//
// A custom plugin follows the same contract as the built-ins
// (core/plugin.ts): one default-exported definition with a JSON Schema whose
// every option has a description and a default, and a create() that does no I/O.

import type { PluginDefinition, PullInput } from '../../../core/plugin.ts';

interface HeartbeatConfig {
  message: string;
  level: 'debug' | 'info';
}

const heartbeat: PluginDefinition<HeartbeatConfig> = {
  kind: 'input',
  type: 'heartbeat',
  description: 'Example custom input: a heartbeat log line and counter every interval.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      message: { type: 'string', default: 'heartbeat', description: 'Text of the log line.' },
      level: { enum: ['debug', 'info'], default: 'info', description: 'Level of the log line.' },
    },
  },
  create(config, ctx): PullInput {
    let beats = 0; // per instance, never module-level
    return {
      async gather(acc) {
        beats++;
        acc.log({ source: ctx.id, level: config.level, message: `${config.message} #${beats}`, labels: { host: ctx.hostname } });
        acc.metric('heartbeat', { beats_total: beats }, { host: ctx.hostname }, { type: 'counter' });
      },
    };
  },
};

export default heartbeat;
