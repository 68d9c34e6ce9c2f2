import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from '../helpers.ts';

const run = promisify(execFile);

async function opshub(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['bin/opshub.mjs', ...args], { env: { ...process.env, OPSHUB_CONFIG: '' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('opshub check: exit 0 on a valid file, 1 with every error on an invalid one', async () => {
  const tmp = tempDir();
  try {
    const good = path.join(tmp.dir, 'good.yaml');
    const bad = path.join(tmp.dir, 'bad.yaml');
    writeFileSync(good, 'outputs:\n  - type: stdout\n');
    writeFileSync(bad, 'agent:\n  interval: often\noutputs:\n  - type: stdout\n    format: yaml\n');
    const ok = await opshub('check', '-c', good);
    assert.equal(ok.code, 0);
    assert.match(ok.stdout, /valid \(0 inputs, 0 processors, 1 outputs\)/);
    const ko = await opshub('check', '-c', bad);
    assert.equal(ko.code, 1);
    assert.deepEqual(ko.stderr.trim().split('\n'), [
      `${bad}:2:13: agent.interval: must be a duration like "10s"`,
      `${bad}:5:13: outputs[0].format: must be equal to one of the allowed values: "json", "logfmt"`,
    ]);
  } finally {
    tmp.cleanup();
  }
});

test('opshub test: gathers every input once and prints JSON lines without starting outputs', async () => {
  const tmp = tempDir();
  try {
    const file = path.join(tmp.dir, 'p.yaml');
    writeFileSync(file, `agent:\n  plugin_dir: ${path.resolve('config/examples/plugins')}\ninputs:\n  - type: heartbeat\n    message: probe\noutputs:\n  - type: stdout\n`);
    const r = await opshub('test', '-c', file);
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(events.map((e) => e.kind), ['log', 'metric'], 'one gather, printed once (the stdout output is not started)');
    assert.equal(events[0].message, 'probe #1');
  } finally {
    tmp.cleanup();
  }
});

test('opshub plugins and opshub schema describe the built-ins', async () => {
  const list = await opshub('plugins');
  assert.equal(list.code, 0);
  assert.match(list.stdout, /^outputs\.stdout\s+Prints events/m);
  const schema = await opshub('schema');
  assert.equal(JSON.parse(schema.stdout).title, 'OpsHub pipeline');
  const unknown = await opshub('frobnicate');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
});

test('opshub run reloads on SIGHUP and keeps running', async () => {
  const { spawn } = await import('node:child_process');
  const tmp = tempDir();
  try {
    const file = path.join(tmp.dir, 'p.yaml');
    writeFileSync(file, 'agent:\n  self_metrics: false\n  http:\n    listen: 127.0.0.1:0\noutputs:\n  - type: stdout\n');
    const child = spawn(process.execPath, ['bin/opshub.mjs', 'run', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const until = async (text: string) => {
      for (let i = 0; i < 400 && !stderr.includes(text); i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(stderr.includes(text), `expected "${text}" in:\n${stderr}`);
    };
    await until('started:');
    child.kill('SIGHUP');
    await until(`reloaded ${file}`);
    child.kill('SIGTERM');
    assert.equal(await new Promise((resolve) => child.on('exit', resolve)), 0);
  } finally {
    tmp.cleanup();
  }
});
