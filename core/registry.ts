// Custom plugins: every .ts/.js/.mjs file in `agent.plugin_dir` exports a
// plugin definition (default export, or `plugin`, or an array of them),
// checked against the same contract as the built-ins.

import { readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PluginDefinition } from './plugin.ts';
import { SECTION_OF } from './schema.ts';

const KINDS = new Set(Object.keys(SECTION_OF));

/** Problems with a definition's shape; empty when it honours the contract. */
export function definitionProblems(def: any): string[] {
  const problems: string[] = [];
  if (!def || typeof def !== 'object') return ['is not an object'];
  if (!KINDS.has(def.kind)) problems.push(`kind must be one of ${[...KINDS].join(', ')}`);
  if (typeof def.type !== 'string' || !/^[a-z][a-z0-9_]*$/.test(def.type)) problems.push('type must be lower_snake_case');
  if (typeof def.description !== 'string' || !def.description) problems.push('description is missing');
  if (typeof def.create !== 'function') problems.push('create(config, context) is missing');
  const schema = def.schema;
  if (!schema || schema.type !== 'object' || typeof schema.properties !== 'object') problems.push('schema must be a JSON Schema object with properties');
  else if (schema.additionalProperties !== false) problems.push('schema must set additionalProperties: false');
  return problems;
}

export async function loadCustomPlugins(dir: string, known: PluginDefinition[]): Promise<PluginDefinition[]> {
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => /\.(ts|mts|js|mjs)$/.test(f) && !/\.(test|d)\.[mc]?[tj]s$/.test(f))
      .sort();
  } catch (err) {
    throw new Error(`cannot read plugin directory ${dir}: ${(err as Error).message}`);
  }
  const loaded: PluginDefinition[] = [];
  for (const file of files) {
    const full = path.join(dir, file);
    let mod: any;
    try {
      mod = await import(pathToFileURL(full).href);
    } catch (err) {
      throw new Error(`cannot load custom plugin ${full}: ${(err as Error).message}`);
    }
    const exported = mod.default ?? mod.plugin;
    const defs = Array.isArray(exported) ? exported : [exported];
    for (const def of defs) {
      const problems = definitionProblems(def);
      if (problems.length) throw new Error(`custom plugin ${full}: ${problems.join('; ')}`);
      const clash = [...known, ...loaded].find((k) => SECTION_OF[k.kind] === SECTION_OF[def.kind as PluginDefinition['kind']] && k.type === def.type);
      if (clash) throw new Error(`custom plugin ${full}: type "${def.type}" is already defined`);
      loaded.push(def);
    }
  }
  return loaded;
}
