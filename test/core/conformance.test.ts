// One conformance test over every built-in plugin: the schema documents every
// option, defaults validate, unknown keys are rejected, the README documents
// every option, and stop() works twice, with or without start().

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { builtinPlugins } from '../../core/builtins.ts';
import { ConfigError, loadConfig } from '../../core/config.ts';
import { AgentHttpServer } from '../../core/http.ts';
import { createLogger } from '../../core/log.ts';
import { Pipeline } from '../../core/pipeline.ts';
import type { PluginDefinition } from '../../core/plugin.ts';
import { SECTION_OF } from '../../core/schema.ts';
import { tempDir } from '../helpers.ts';

function undocumented(schema: Record<string, any>, at: string, out: string[]): void {
  const required = new Set<string>(schema.required ?? []);
  for (const [name, prop] of Object.entries<Record<string, any>>(schema.properties ?? {})) {
    if (!prop.description) out.push(`${at}${name}: no description`);
    if (!('default' in prop) && !required.has(name)) out.push(`${at}${name}: neither a default nor required`);
    if (prop.type === 'object' && prop.properties) {
      if (prop.additionalProperties !== false) out.push(`${at}${name}: nested object without additionalProperties: false`);
      undocumented(prop, `${at}${name}.`, out);
    }
  }
}

function entryYaml(def: PluginDefinition, extra: Record<string, unknown> = {}, dataDir = '/tmp/opshub-conformance'): string {
  return stringify({
    agent: { data_dir: dataDir, self_metrics: false, http: { listen: '127.0.0.1:0' } },
    [SECTION_OF[def.kind]]: [{ type: def.type, ...(def.example ?? {}), ...extra }],
  });
}

for (const def of builtinPlugins) {
  const name = `${SECTION_OF[def.kind]}.${def.type}`;

  test(`${name}: every option has a description and a default or is required`, () => {
    assert.equal(def.schema.additionalProperties, false);
    assert.ok(def.description.length > 10);
    const problems: string[] = [];
    undocumented(def.schema, '', problems);
    assert.deepEqual(problems, []);
  });

  test(`${name}: the README shows a sample and documents every option`, () => {
    const readme = `plugins/${SECTION_OF[def.kind]}/${def.type}/README.md`;
    assert.ok(existsSync(readme), `${readme} exists`);
    const text = readFileSync(readme, 'utf8');
    assert.match(text, /```ya?ml[\s\S]*type: /, 'has a YAML sample');
    for (const option of Object.keys(def.schema.properties)) assert.ok(text.includes(option), `${readme} mentions ${option}`);
  });

  test(`${name}: defaults validate and an unknown key is rejected`, async () => {
    const cfg = await loadConfig('conformance.yaml', { builtins: builtinPlugins, env: {}, text: entryYaml(def) });
    const inst = [...cfg.inputs, ...cfg.processors, ...cfg.outputs][0]!;
    for (const [key, prop] of Object.entries<Record<string, unknown>>(def.schema.properties)) {
      if ('default' in prop && !(def.example && key in def.example)) assert.deepEqual(inst.options[key], prop.default, `default of ${key}`);
    }
    await assert.rejects(
      loadConfig('conformance.yaml', { builtins: builtinPlugins, env: {}, text: entryYaml(def, { no_such_option: 1 }) }),
      (err: unknown) => err instanceof ConfigError && err.issues.some((i) => i.message === 'unknown key' && i.path.endsWith('no_such_option')),
    );
  });

  test(`${name}: stop works twice, without start and after start`, async () => {
    const tmp = tempDir();
    const http = new AgentHttpServer({ listen: '127.0.0.1:0', log: createLogger({ level: 'error' }) });
    try {
      const cfg = await loadConfig('conformance.yaml', { builtins: builtinPlugins, env: {}, text: entryYaml(def, {}, tmp.dir) });
      const pipeline = new Pipeline({ http, log: createLogger({ level: 'error', sink: () => undefined }) });
      const inst = [...cfg.inputs, ...cfg.processors, ...cfg.outputs][0]!;
      const create = () =>
        inst.kind === 'output' ? pipeline.createOutput(inst) : inst.kind === 'processor' ? pipeline.createProcessor(inst) : pipeline.createInput(inst);

      const never = create();
      await never.plugin.stop?.();
      await never.plugin.stop?.();

      const once = create();
      // A peer may be missing here (e.g. no GPU); start may fail, stop must still work twice.
      try {
        if ('isPull' in once) await once.start();
        else await once.plugin.start?.();
      } catch {
        /* reported by the agent at start-up; not this test's concern */
      }
      if ('isPull' in once) {
        await once.stop();
        await once.stop();
      } else {
        await once.plugin.stop?.();
        await once.plugin.stop?.();
      }
    } finally {
      await http.stop();
      tmp.cleanup();
    }
  });
}

test('schemas/opshub.schema.json is generated from the plugins (run `npm run schema` after changing one)', async () => {
  const { composeSchema } = await import('../../core/schema.ts');
  const committed = JSON.parse(readFileSync('schemas/opshub.schema.json', 'utf8'));
  assert.deepEqual(committed, JSON.parse(JSON.stringify(composeSchema(builtinPlugins))));
});
