// A fleet on one machine: N agents (default 20), each a child process of the real
// CLI with its own host name, data dir and port, pushing metrics to one
// VictoriaMetrics (outputs.prometheus_remote_write, host label) and logs to one
// Loki test receiver (outputs.loki, host label). Each agent runs the system input
// and the example heartbeat input (a log line "heartbeat #n" and a counter
// heartbeat_beats_total = n per gather), so what the receivers got can be
// checked exactly: every host's beats 1..n, in both, nothing missing or doubled.
//
//   npx tsx bench/fleet.ts [agents=20] [steady_seconds=20]
//
// Prints: start-up time, CPU and memory (RSS) per agent over the steady window,
// per-host and cross-host queries on VictoriaMetrics (with their latency), and
// the receivers' counts. Needs victoria-metrics (Debian package; scripts/ensure-peers.sh).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort, startVictoria } from '../test/plugins/outputs/remote_write_peers.ts';
import { LokiReceiver } from '../test/support/loki_receiver.ts';
import { tempDir, waitFor } from '../test/helpers.ts';

const AGENTS = Number(process.argv[2] ?? 20);
const STEADY_S = Number(process.argv[3] ?? 20);
const TICK = Number(process.env.SC_CLK_TCK ?? 100); // clock ticks per second (/proc/<pid>/stat)

interface Agent {
  host: string;
  port: number;
  child: ChildProcess;
  log: string;
  exit: Promise<number | null>;
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK; // utime + stime
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

const fmt = (n: number, d = 1) => n.toFixed(d);
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0]!, median: s[Math.floor(s.length / 2)]!, max: s.at(-1)!, sum: s.reduce((a, b) => a + b, 0) };
};

async function main(): Promise<void> {
  const tmp = tempDir('opshub-fleet-');
  const vm = await startVictoria();
  const loki = await LokiReceiver.start();
  const pluginDir = path.resolve('config/examples/plugins');
  const agents: Agent[] = [];
  const t0 = performance.now();
  try {
    for (let i = 1; i <= AGENTS; i++) {
      const host = `agent-${String(i).padStart(2, '0')}`;
      const port = await freePort();
      const dir = path.join(tmp.dir, host);
      mkdirSync(dir, { recursive: true });
      const file = path.join(dir, 'opshub.yaml');
      writeFileSync(
        file,
        stringify({
          agent: { hostname: host, interval: '1s', data_dir: path.join(dir, 'data'), plugin_dir: pluginDir, shutdown_timeout: '10s', http: { listen: `127.0.0.1:${port}` } },
          inputs: [{ type: 'system', collect: ['cpu', 'memory', 'load'] }, { type: 'heartbeat', interval: '500ms' }],
          outputs: [
            { type: 'prometheus_remote_write', url: `${vm.url}/api/v1/write`, match: { kinds: ['metric'] }, flush_interval: '1s' },
            { type: 'loki', url: loki.url, match: { kinds: ['log'] }, flush_interval: '1s' },
          ],
        }),
      );
      const child = spawn(process.execPath, ['bin/opshub.mjs', 'run', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
      const agent: Agent = { host, port, child, log: '', exit: new Promise((r) => child.once('exit', (code) => r(code))) };
      child.stderr!.on('data', (d) => (agent.log = (agent.log + d).slice(-4000)));
      agents.push(agent);
    }
    await Promise.all(
      agents.map((a) =>
        waitFor(async () => (await fetch(`http://127.0.0.1:${a.port}/health`).catch(() => undefined))?.ok === true, 120_000, `${a.host} to start (${a.log})`),
      ),
    );
    const startedS = (performance.now() - t0) / 1000;
    console.log(`fleet: ${AGENTS} agents started in ${fmt(startedS)} s (child processes of bin/opshub.mjs; 2-core machine: start-up is CPU-bound)`);

    // Steady window: CPU and memory per agent.
    const cpu0 = agents.map((a) => cpuSeconds(a.child.pid!));
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, STEADY_S * 1000));
    const wall = (performance.now() - w0) / 1000;
    const cpuPct = agents.map((a, i) => (100 * (cpuSeconds(a.child.pid!) - cpu0[i]!)) / wall);
    const rss = agents.map((a) => rssBytes(a.child.pid!) / 2 ** 20);
    const c = stats(cpuPct);
    const m = stats(rss);
    console.log(`per agent over ${fmt(wall)} s steady (system 1 s + heartbeat 0.5 s, remote_write + loki, flush 1 s):`);
    console.log(`  CPU % of one core: min ${fmt(c.min)}  median ${fmt(c.median)}  max ${fmt(c.max)}  (all ${AGENTS}: ${fmt(c.sum)} %)`);
    console.log(`  RSS MiB:           min ${fmt(m.min)}  median ${fmt(m.median)}  max ${fmt(m.max)}  (all ${AGENTS}: ${fmt(m.sum, 0)} MiB)`);

    // Graceful stop: every agent drains its outputs and exits 0.
    const s0 = performance.now();
    for (const a of agents) a.child.kill('SIGTERM');
    const codes = await Promise.all(agents.map((a) => a.exit));
    console.log(`stop: SIGTERM to all, exit codes ${JSON.stringify([...new Set(codes)])}, drained in ${fmt((performance.now() - s0) / 1000)} s`);

    // Queries: per host and across hosts.
    await fetch(`${vm.url}/internal/force_flush`).catch(() => undefined);
    const q = async (expr: string) => {
      const t = performance.now();
      const res = (await (await fetch(`${vm.url}/api/v1/query?${new URLSearchParams({ query: expr, latency_offset: '0s', nocache: '1' })}`)).json()) as any;
      return { ms: performance.now() - t, result: res.data?.result as Array<{ metric: Record<string, string>; value: [number, string] }> };
    };
    const hosts = await q('count by (host) (last_over_time(system_memory_total_bytes[10m]))');
    const one = await q('last_over_time(heartbeat_beats_total{host="agent-07"}[10m])');
    const across = await q('sum(last_over_time(heartbeat_beats_total[10m]))');
    const cpuByHost = await q('topk(3, avg by (host) (avg_over_time(system_cpu_usage_percent{cpu="total"}[10m])))');
    console.log(`VictoriaMetrics queries:`);
    console.log(`  hosts reporting:                     ${hosts.result.length}  (${fmt(hosts.ms)} ms)`);
    console.log(`  beats of agent-07:                   ${one.result[0]?.value[1]}  (${fmt(one.ms)} ms)`);
    console.log(`  beats across all hosts:              ${across.result[0]?.value[1]}  (${fmt(across.ms)} ms)`);
    console.log(`  top-3 host cpu % (all the same box): ${cpuByHost.result.map((r) => `${r.metric.host} ${fmt(Number(r.value[1]))}`).join(', ')}  (${fmt(cpuByHost.ms)} ms)`);

    // Exact accounting: each host's beats 1..n in VictoriaMetrics and in Loki, once each.
    const exported = await fetch(`${vm.url}/api/v1/export?${new URLSearchParams({ 'match[]': 'heartbeat_beats_total', start: '0' })}`).then((r) => r.text());
    const vmBeats = new Map<string, number[]>();
    for (const line of exported.split('\n').filter(Boolean)) {
      const r = JSON.parse(line) as { metric: Record<string, string>; values: number[] };
      vmBeats.set(r.metric.host!, [...(vmBeats.get(r.metric.host!) ?? []), ...r.values]);
    }
    const lokiBeats = new Map<string, number[]>();
    for (const e of loki.entries()) {
      const n = /^heartbeat #(\d+)$/.exec(e.line);
      if (n) lokiBeats.set(e.labels.host!, [...(lokiBeats.get(e.labels.host!) ?? []), Number(n[1])]);
    }
    const problems: string[] = [];
    let vmSamples = 0;
    let lokiLines = 0;
    for (const a of agents) {
      for (const [what, map] of [['victoria-metrics', vmBeats], ['loki', lokiBeats]] as const) {
        const got = [...(map.get(a.host) ?? [])].sort((x, y) => x - y);
        if (what === 'loki') lokiLines += got.length;
        else vmSamples += got.length;
        const complete = got.length > 0 && got.every((v, i) => v === i + 1);
        if (!complete) problems.push(`${a.host} in ${what}: ${got.length} beats, max ${got.at(-1)}`);
      }
      if (vmBeats.get(a.host)?.length !== lokiBeats.get(a.host)?.length) problems.push(`${a.host}: ${vmBeats.get(a.host)?.length} beats in victoria-metrics, ${lokiBeats.get(a.host)?.length} in loki`);
    }
    console.log(`receivers: victoria-metrics ${vmSamples} heartbeat samples from ${vmBeats.size} hosts; loki ${loki.accepted} pushes, ${loki.entriesAccepted} entries (${lokiLines} heartbeat lines) from ${lokiBeats.size} hosts`);
    console.log(problems.length ? `MISSING OR DOUBLED:\n  ${problems.join('\n  ')}` : 'nothing missing: every host\'s beats 1..n arrived once in both receivers');
    if (problems.length) process.exitCode = 1;
  } finally {
    for (const a of agents) if (a.child.exitCode === null) a.child.kill('SIGKILL');
    await vm.stop();
    await loki.close();
    tmp.cleanup();
  }
}

await main();
