// Built-in plugins, listed explicitly (custom ones load from agent.plugin_dir).
// Order: inputs, processors, outputs — the order `opshub plugins` prints.

import type { PluginDefinition } from './plugin.ts';
import dockerLogs from '../plugins/inputs/docker_logs/index.ts';
import dockerStats from '../plugins/inputs/docker_stats/index.ts';
import nvidiaSmi from '../plugins/inputs/nvidia_smi/index.ts';
import sessionWebhook from '../plugins/inputs/session_webhook/index.ts';
import system from '../plugins/inputs/system/index.ts';
import jsonParse from '../plugins/processors/json_parse/index.ts';
import regexClassifier from '../plugins/processors/regex_classifier/index.ts';
import userExtraction from '../plugins/processors/user_extraction/index.ts';
import alerting from '../plugins/outputs/alerting/index.ts';
import duckdb from '../plugins/outputs/duckdb/index.ts';
import loki from '../plugins/outputs/loki/index.ts';
import opshubApi from '../plugins/outputs/opshub_api/index.ts';
import prometheus from '../plugins/outputs/prometheus/index.ts';
import prometheusRemoteWrite from '../plugins/outputs/prometheus_remote_write/index.ts';
import stdout from '../plugins/outputs/stdout/index.ts';
import websocket from '../plugins/outputs/websocket/index.ts';

export const builtinPlugins: PluginDefinition[] = [
  system,
  dockerLogs,
  dockerStats,
  nvidiaSmi,
  sessionWebhook,
  jsonParse,
  regexClassifier,
  userExtraction,
  alerting,
  duckdb,
  loki,
  opshubApi,
  prometheus,
  prometheusRemoteWrite,
  stdout,
  websocket,
];
