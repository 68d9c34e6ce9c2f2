// Shared test helpers: temp dirs, a real agent from YAML text, an in-memory
// output to observe what the pipeline delivers, and polling.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../core/agent.ts';
import { builtinPlugins } from '../core/builtins.ts';
import type { Event } from '../core/events.ts';
import type { LogRecord } from '../core/log.ts';
import type { Checkpoint, Output, PluginDefinition, WriteContext } from '../core/plugin.ts';

export function tempDir(prefix = 'opshub-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * An output that keeps what it is given, for assertions. Each call makes a
 * fresh definition (type `memory` unless named), so tests never share state.
 * `fail` lets a test make writes throw.
 */
export function memoryOutput(type = 'memory') {
  const state = {
    events: [] as Event[],
    batches: [] as Event[][],
    checkpoints: [] as Checkpoint[][],
    contexts: [] as WriteContext[],
    fail: undefined as undefined | ((events: Event[]) => Error | undefined),
    writes: 0,
  };
  const definition: PluginDefinition = {
    kind: 'output',
    type,
    description: 'Test output that keeps events in memory.',
    schema: { type: 'object', additionalProperties: false, properties: {} },
    create: (): Output => ({
      async write(events, ctx) {
        state.writes++;
        const err = state.fail?.(events);
        if (err) throw err;
        state.events.push(...events);
        state.batches.push(events);
        state.checkpoints.push(ctx.checkpoints);
        state.contexts.push(ctx);
      },
    }),
  };
  return { definition, state, events: state.events };
}

export interface TestAgent {
  agent: Agent;
  url: string;
  logs: LogRecord[];
  file: string;
  dir: string;
  stop(): Promise<void>;
}

/** Starts a real agent from YAML text on 127.0.0.1 with a free port. */
export async function startAgent(yaml: string, opts: { plugins?: PluginDefinition[]; env?: NodeJS.ProcessEnv; watch?: boolean; dir?: string } = {}): Promise<TestAgent> {
  const own = opts.dir ? undefined : tempDir();
  const dir = opts.dir ?? own!.dir;
  const file = path.join(dir, 'opshub.yaml');
  writeFileSync(file, yaml);
  const logs: LogRecord[] = [];
  let agent: Agent;
  try {
    agent = await Agent.start({
      file,
      builtins: [...builtinPlugins, ...(opts.plugins ?? [])],
      env: { OPSHUB_TEST_DATA: path.join(dir, 'data'), ...(opts.env ?? process.env) },
      logSink: (r) => logs.push(r),
      watch: opts.watch ?? false,
      listen: '127.0.0.1:0',
    });
  } catch (err) {
    own?.cleanup();
    throw err;
  }
  return {
    agent,
    url: agent.http.url(),
    logs,
    file,
    dir,
    async stop() {
      await agent.stop();
      own?.cleanup();
    },
  };
}
