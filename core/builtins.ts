// Built-in plugins, listed explicitly (custom ones load from agent.plugin_dir).

import type { PluginDefinition } from './plugin.ts';
import stdout from '../plugins/outputs/stdout/index.ts';
import dockerLogs from '../plugins/inputs/docker_logs/index.ts';

export const builtinPlugins: PluginDefinition[] = [
  stdout,
  dockerLogs,
];
