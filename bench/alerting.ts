// outputs.alerting's rule engine: events ingested per second with the default
// rules (and 3 extra log rules), and the cost of one evaluation over many
// series. Run: npx tsx bench/alerting.ts

import { makeLog, makeMetric, type Event } from '../core/events.ts';
import { Engine } from '../plugins/outputs/alerting/engine.ts';
import { compileRule, DEFAULT_RULES, ruleValidator } from '../plugins/outputs/alerting/rules.ts';

const validate = ruleValidator();
const rules = [
  ...DEFAULT_RULES,
  { name: 'http_5xx', type: 'log_rate', match: { attributes: { http_status: '^5' } }, window: '5m', threshold: 10 },
  { name: 'timeouts', type: 'log_rate', match: { message: 'timeout|timed out' }, window: '10m', threshold: 5 },
  { name: 'silent', type: 'absent', group_by: ['container'], for: '10m' },
].map((r) => compileRule(validate(r)));

let now = Date.now();
const engine = new Engine({ now: () => now, hostname: 'bench', historyMs: 7 * 86_400_000, historyLimit: 1000, customResolveMs: 3_600_000 });
engine.setRules(rules);

const containers = Array.from({ length: 50 }, (_, i) => `app-${i}`);
const levels = ['info', 'info', 'info', 'warning', 'error'] as const;
const logs: Event[] = Array.from({ length: 100_000 }, (_, i) =>
  makeLog({ source: containers[i % 50]!, level: levels[i % 5]!, message: i % 97 === 0 ? 'upstream timeout' : 'GET /api/chat 200', labels: { container: containers[i % 50]! }, attributes: { http_status: i % 31 === 0 ? 502 : 200, duration_ms: (i % 400) * 7 } }),
);
const metrics: Event[] = [];
for (let round = 0; round < 200; round++) {
  for (const c of containers) {
    metrics.push(
      makeMetric('docker_container_cpu', { usage_percent: 12, online_cpus: 8 }, { container_name: c, container_image: 'img' }),
      makeMetric('docker_container_mem', { usage_bytes: 1e9, limit_bytes: 8e9, usage_percent: 12.5, cache_bytes: 1e6 }, { container_name: c, container_image: 'img' }),
      makeMetric('docker_container_status', { pids: 12, restart_count: 0, uptime_seconds: 100, started_at_seconds: 1, status: 'running' }, { container_name: c, container_image: 'img' }),
    );
  }
  for (let g = 0; g < 8; g++) metrics.push(makeMetric('nvidia_smi', { temperature_gpu_celsius: 60, utilization_gpu_percent: 50, memory_used_bytes: 1e9, power_draw_watts: 300 }, { index: String(g), uuid: `GPU-${g}`, name: 'H100' }));
}

function time(what: string, n: number, unit: string, fn: () => void): void {
  fn(); // warm up
  const t0 = performance.now();
  fn();
  const ms = performance.now() - t0;
  console.log(`${what}: ${Math.round((n / ms) * 1000).toLocaleString('en')} ${unit}/s (${ms.toFixed(1)} ms for ${n.toLocaleString('en')})`);
}

time('ingest logs (12 rules, 50 containers)', logs.length, 'lines', () => engine.ingest(logs));
const fields = metrics.reduce((s, m) => s + (m.kind === 'metric' ? Object.keys(m.fields).length : 0), 0);
time('ingest metrics (docker_stats + nvidia_smi shapes)', fields, 'fields', () => engine.ingest(metrics));
// Evaluations with every series live: each round feeds fresh data first (not timed).
let spent = 0;
const rounds = 50;
for (let i = 0; i < rounds; i++) {
  now += 15_000;
  engine.ingest(metrics.slice(0, 166 * 3));
  engine.ingest(logs.slice(0, 5000));
  const t = performance.now();
  engine.evaluate();
  spent += performance.now() - t;
}
console.log(`evaluate (${rules.length} rules, ${containers.length} containers, 8 GPUs, every series live): ${(spent / rounds).toFixed(2)} ms per evaluation`);
