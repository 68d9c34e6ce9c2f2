// opshub run | check | test | plugins | schema. Only the CLI calls process.exit.

import { parseArgs } from 'node:util';
import { Agent } from './agent.ts';
import { ConfigError, loadConfig } from './config.ts';
import { builtinPlugins } from './builtins.ts';
import { eventToJSON, type Event } from './events.ts';
import { AgentHttpServer } from './http.ts';
import { createLogger, errorMessage } from './log.ts';
import { Pipeline } from './pipeline.ts';
import { parseDuration } from './units.ts';
import { SECTION_OF, composeSchema } from './schema.ts';

const USAGE = `usage: opshub <command> [options]

commands:
  run     [-c FILE]            run the pipeline (default file config/opshub.yaml)
  check   [-c FILE]            validate the pipeline file; exit 1 with every error
  test    [-c FILE] [--wait 2s] gather every input once, run processors, print events as JSON lines
  plugins                      list the plugins with their descriptions
  schema                       print the pipeline file's JSON Schema
  query   [-c FILE] [--format table|csv|json] [--output ID] [--max-rows N] "SQL"
                               read-only SQL on the DuckDB store (through the running agent, else the file)
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: { config: { type: 'string', short: 'c', default: process.env.OPSHUB_CONFIG || 'config/opshub.yaml' }, wait: { type: 'string', default: '2s' }, help: { type: 'boolean', short: 'h' },
      format: { type: 'string', default: 'table' }, output: { type: 'string' }, 'max-rows': { type: 'string' } },
    allowPositionals: true,
  });
  const file = values.config!;
  switch (command) {
    case 'run':
      return run(file);
    case 'check':
      return check(file);
    case 'test':
      return testOnce(file, values.wait!);
    case 'plugins':
      for (const p of builtinPlugins) console.log(`${`${SECTION_OF[p.kind]}.${p.type}`.padEnd(32)} ${p.description}`);
      return 0;
    case 'query':
      return query(file, positionals, values);
    case 'schema':
      console.log(JSON.stringify(composeSchema(builtinPlugins), null, 2));
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command ? 0 : 2;
    default:
      process.stderr.write(`unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

async function query(file: string, positionals: string[], values: { format?: string; output?: string; 'max-rows'?: string }): Promise<number> {
  const format = values.format ?? 'table';
  const maxRows = values['max-rows'] === undefined ? undefined : Number(values['max-rows']);
  if (positionals.length !== 1 || !['table', 'csv', 'json'].includes(format) || (maxRows !== undefined && !(Number.isInteger(maxRows) && maxRows > 0))) {
    process.stderr.write(`usage: opshub query [-c FILE] [--format table|csv|json] [--output ID] [--max-rows N] "SQL"\n`);
    return 2;
  }
  // Loaded on demand so other commands do not load DuckDB.
  const { queryCommand } = await import('../plugins/outputs/duckdb/client.ts');
  return queryCommand({ file, sql: positionals[0]!, format: format as 'table' | 'csv' | 'json', output: values.output, maxRows, builtins: builtinPlugins });
}

function reportStartError(err: unknown): number {
  if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
  else process.stderr.write(`opshub: ${errorMessage(err)}\n`);
  return 1;
}

async function check(file: string): Promise<number> {
  try {
    const cfg = await loadConfig(file, { builtins: builtinPlugins });
    console.log(`${file}: valid (${cfg.inputs.length} inputs, ${cfg.processors.length} processors, ${cfg.outputs.length} outputs)`);
    return 0;
  } catch (err) {
    return reportStartError(err);
  }
}

async function run(file: string): Promise<number> {
  let agent: Agent;
  try {
    agent = await Agent.start({ file, builtins: builtinPlugins });
  } catch (err) {
    return reportStartError(err);
  }
  process.on('SIGHUP', () => void agent.reload());
  return new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (sig: string) => {
      if (++signals > 1) {
        agent.log.warn(`second ${sig}: exiting now`);
        resolve(1);
        return;
      }
      agent.log.info(`${sig}: shutting down`);
      agent.stop().then(() => resolve(0), (err) => {
        agent.log.error(`shutdown failed: ${errorMessage(err)}`);
        resolve(1);
      });
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
  });
}

async function testOnce(file: string, wait: string): Promise<number> {
  let cfg;
  try {
    cfg = await loadConfig(file, { builtins: builtinPlugins });
  } catch (err) {
    return reportStartError(err);
  }
  const log = createLogger({ level: 'warn' });
  // Routes are mounted (service inputs expect a server) but nothing listens.
  const http = new AgentHttpServer({ listen: cfg.agent.http.listen, log });
  const pipeline = new Pipeline({ http, log });
  await pipeline.apply({ ...cfg, inputs: [], outputs: [] }, { strict: true });
  let failed = false;
  for (const icfg of cfg.inputs) {
    const collected: Event[] = [];
    const input = pipeline.createInput(icfg, (envs) => collected.push(...envs.map((e) => e.event)));
    try {
      await input.collectOnce(parseDuration(wait));
    } catch (err) {
      failed = true;
      process.stderr.write(`inputs.${icfg.id}: ${errorMessage(err)}\n`);
    }
    for (const e of pipeline.process(collected, icfg.id)) process.stdout.write(`${JSON.stringify(eventToJSON(e))}\n`);
  }
  await pipeline.stop(1000);
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`opshub: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
