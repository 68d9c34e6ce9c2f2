// inputs.docker_logs survives kill -9: the real CLI (`node bin/opshub.mjs run`)
// runs as a child process with an output that appends every event it is given
// to a file (fsync per batch); the child is SIGKILLed several times while
// containers keep logging, a container is restarted meanwhile, and at the end
// every line Docker holds was recorded; the only repeats are the last batches
// written before a kill whose acknowledgement was not yet saved, and they
// carry the same position order as the first time.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseRfc3339Ns } from '../../../core/events.ts';
import { tempDir, waitFor } from '../../helpers.ts';
import { cliLogs, removeTestContainers, requireDocker, runContainer, uniqueName, waitExited } from '../../docker.ts';

before(async () => {
  await requireDocker();
  await removeTestContainers();
});
after(removeTestContainers);

// Like a real output it waits for its I/O (an HTTP or database write yields
// to the event loop too); a write is on disk (fsync) before it returns.
const RECORDER = `
import { open } from 'node:fs/promises';
export default {
  kind: 'output',
  type: 'record',
  description: 'Test output: appends each event as a JSON line and fsyncs every batch.',
  schema: { type: 'object', additionalProperties: false, required: ['file'], properties: { file: { type: 'string', description: 'where' } } },
  create(config) {
    let fh;
    return {
      async start() {
        fh = await open(config.file, 'a+');
        // A kill in the middle of a write leaves a torn last line (that batch was never
        // acknowledged, so it comes again): start on a fresh line.
        const { size } = await fh.stat();
        if (size > 0) {
          const last = Buffer.alloc(1);
          await fh.read(last, 0, 1, size - 1);
          if (last[0] !== 10) await fh.write('\\n');
        }
      },
      async write(events, ctx) {
        let text = '';
        events.forEach((e, i) => {
          text += JSON.stringify({ pid: process.pid, c: e.source, s: e.labels.stream, ts: e.timestamp.toString(), m: e.message, o: ctx.positions[i]?.order }) + '\\n';
        });
        await fh.write(text);
        await fh.sync();
      },
      async stop() { await fh?.close(); fh = undefined; },
    };
  },
};
`;

interface Rec {
  pid: number;
  c: string;
  s: string;
  ts: string;
  m: string;
  o: string;
}

/**
 * The records on disk. A line that does not parse is a write cut short: either
 * the one in progress right now, or one torn by a kill (never acknowledged, so
 * its events come again) — neither is a delivered record.
 */
function readRecords(file: string): Rec[] {
  if (!existsSync(file)) return [];
  const out: Rec[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as Rec);
    } catch {
      /* a torn or in-progress write */
    }
  }
  return out;
}

const BATCH = 100;
const MAX_REPEATS = 3 * BATCH;

test('kill -9 while containers keep logging, restart, count: every line arrives; repeats only from the last unacknowledged batch', { timeout: 240_000 }, async () => {
  const tmp = tempDir();
  const tag = uniqueName('opshub-test-crash');
  const out = path.join(tmp.dir, 'records.jsonl');
  mkdirSync(path.join(tmp.dir, 'plugins'));
  writeFileSync(path.join(tmp.dir, 'plugins', 'record.mjs'), RECORDER);
  const config = path.join(tmp.dir, 'opshub.yaml');
  writeFileSync(
    config,
    `
agent:
  data_dir: ${path.join(tmp.dir, 'data')}
  plugin_dir: ./plugins
  flush_interval: 50ms
  batch_size: ${BATCH}
  self_metrics: false
  log_level: warn
  http: { listen: "127.0.0.1:0" }
inputs:
  - type: docker_logs
    include: ['^${tag}-']
outputs:
  - type: record
    file: ${out}
`,
  );
  let child: ChildProcess | undefined;
  let stderr = '';
  const startAgent = () => {
    child = spawn(process.execPath, ['bin/opshub.mjs', 'run', '-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d) => (stderr += d));
    return child;
  };
  const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));
  try {
    // The agent runs first, so every container is new to it and read from its first line.
    let agent = startAgent();
    await waitFor(() => existsSync(path.join(tmp.dir, 'data', 'docker_logs', 'checkpoints.json')), 30_000, 'agent connected');
    const a = await runContainer(
      `i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo "a $i"; echo "e $i" >&2; ` +
        `if [ $((i%500)) = 0 ]; then head -c 40000 /dev/zero | tr '\\0' L; echo " $i"; fi; ` +
        `if [ $((i%50)) = 0 ]; then sleep 0.1; fi; done`,
      { name: `${tag}-a` },
    );
    const t = await runContainer(`i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo "t $i"; if [ $((i%40)) = 0 ]; then sleep 0.1; fi; done`, { name: `${tag}-t`, tty: true });
    const r = await runContainer(`i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo "r $i"; done; sleep 0.5`, { name: `${tag}-r` });

    const kills = 5;
    for (let k = 0; k < kills; k++) {
      const before = readRecords(out).length;
      await waitFor(() => readRecords(out).length >= before + 400, 60_000, `progress before kill ${k + 1}`);
      agent.kill('SIGKILL');
      await exited(agent);
      if (k === 1) {
        // A container restarted while the agent is down: its second run is read too.
        await waitExited(r);
        await r.start();
      }
      await new Promise((res) => setTimeout(res, 100 + Math.random() * 400));
      agent = startAgent();
    }
    await Promise.all([waitExited(a, 120_000), waitExited(t, 120_000), waitExited(r, 120_000)]);

    // Every line Docker holds, keyed by container, stream, timestamp and text.
    const key = (c: string, s: string, ts: string | bigint, m: string) => `${c}|${s}|${ts}|${m}`;
    const want = new Set<string>();
    for (const [c, name] of [[a, `${tag}-a`], [t, `${tag}-t`], [r, `${tag}-r`]] as const) {
      for (const l of await cliLogs(c)) want.add(key(name, l.stream, parseRfc3339Ns(l.ts)!, l.text));
    }
    assert.equal(want.size, 3000 * 2 + 6 + 3000 + 600, 'lines Docker holds');
    await waitFor(() => new Set(readRecords(out).map((x) => key(x.c, x.s, x.ts, x.m))).size >= want.size, 60_000, 'all lines recorded');
    agent.kill('SIGTERM');
    await exited(agent);

    const recs = readRecords(out);
    const got = new Set(recs.map((x) => key(x.c, x.s, x.ts, x.m)));
    const missing = [...want].filter((w) => !got.has(w));
    const extra = [...got].filter((g) => !want.has(g));
    assert.deepEqual(missing, [], 'no line lost');
    assert.deepEqual(extra, [], 'nothing that Docker does not hold');

    // Repeats: only the tail of what a killed run wrote, with the same order.
    const firstSeen = new Map<string, Rec>();
    const pids = [...new Set(recs.map((x) => x.pid))];
    assert.equal(pids.length, kills + 1, 'one agent process per run');
    let repeats = 0;
    const perKill: number[] = [];
    for (const [i, pid] of pids.entries()) {
      const run = recs.filter((x) => x.pid === pid);
      const runKeys = new Set(run.map((y) => key(y.c, y.s, y.ts, y.m)));
      const repeatedLater = new Set<string>();
      for (const x of recs.filter((y) => pids.indexOf(y.pid) > i)) {
        const k = key(x.c, x.s, x.ts, x.m);
        if (runKeys.has(k)) repeatedLater.add(k);
      }
      repeats += repeatedLater.size;
      perKill.push(repeatedLater.size);
      // Repeated: the part of the input's last emit that the output had
      // written when the kill came (its acknowledgement needs the rest), and
      // what was written after the last position save (one event-loop turn;
      // measured 0-200 lines with batch_size 100).
      assert.ok(repeatedLater.size <= MAX_REPEATS, `run ${i + 1}: ${repeatedLater.size} lines repeated after the kill`);
      // Per container, the repeated lines are the last ones this run wrote.
      for (const c of new Set(run.map((x) => x.c))) {
        const mine = run.filter((x) => x.c === c).map((x) => key(x.c, x.s, x.ts, x.m));
        const n = mine.filter((k) => repeatedLater.has(k)).length;
        assert.deepEqual(mine.slice(mine.length - n).filter((k) => repeatedLater.has(k)).length, n, `run ${i + 1}, ${c}: repeats are a suffix`);
      }
      for (const x of run) {
        const k = key(x.c, x.s, x.ts, x.m);
        const seen = firstSeen.get(k);
        if (seen) assert.equal(x.o, seen.o, 'a repeated line has the same position order');
        else firstSeen.set(k, x);
      }
    }
    // Positions sort in reading order: new lines always come after what was recorded before.
    const lastOrder = new Map<string, string>();
    for (const x of recs) {
      const k = key(x.c, x.s, x.ts, x.m);
      if (firstSeen.get(k) !== x) continue;
      const prev = lastOrder.get(x.c);
      assert.ok(prev === undefined || x.o > prev, `order increases for ${x.c}`);
      lastOrder.set(x.c, x.o);
    }
    console.log(`# ${recs.length} records for ${want.size} lines over ${kills} kills; repeated per run: ${perKill.join(', ')}`);
  } catch (err) {
    console.log(stderr.slice(-3000));
    throw err;
  } finally {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    tmp.cleanup();
  }
});
