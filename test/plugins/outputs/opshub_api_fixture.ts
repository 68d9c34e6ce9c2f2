// A real agent with realistic data for the REST API tests: two real Docker
// containers (one running, one exited) read by docker_logs and sampled by
// docker_stats, session events posted to the webhook, host metrics from
// inputs.system and GPU metrics from a fake nvidia-smi (the one outside thing
// we cannot run here), classified and extracted by the processors, stored by
// outputs.duckdb and served by outputs.opshub_api.

import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { requireDocker, runContainer, waitExited } from '../../docker.ts';
import { startAgent, tempDir, waitFor, type TestAgent } from '../../helpers.ts';

export const TOKEN = 'api-test-token';
export const auth = { authorization: `Bearer ${TOKEN}` };

/** What the running container prints at start (then it sleeps; tests make it print more with docker exec). */
export const WEB_LINES = [
  'INFO server started on port 8080',
  'ERROR database connection timeout for user=erin',
  'WARNING slow query took 2500ms',
  'ERROR Timeout calling upstream model=llama3.1:8b',
  'model=llama3.1:8b user=carol POST /api/chat 200 812ms',
  ...Array.from({ length: 30 }, (_, i) => `INFO request ${i + 1} served`),
];
export const JOB_LINES = ['CRITICAL out of memory while loading weights', 'job finished successfully'];

export interface ApiFixture {
  t: TestAgent;
  url: string;
  web: { name: string; container: Docker.Container };
  job: { name: string; container: Docker.Container };
  /** When the sessions were posted (ms). */
  postedAt: number;
  get(pathAndQuery: string, headers?: Record<string, string>): Promise<Response>;
  json<T = any>(pathAndQuery: string): Promise<T>;
  stop(): Promise<void>;
}

const sh = (lines: string[]) => lines.map((l) => `echo '${l}'`).join('; ');

export async function startApiFixture(opts: { agentYaml?: string; outputYaml?: string } = {}): Promise<ApiFixture> {
  await requireDocker();
  const prefix = `opshub-apitest-${process.pid}`;
  const tmp = tempDir('opshub-api-');
  const web = { name: `${prefix}-web`, container: undefined as unknown as Docker.Container };
  const job = { name: `${prefix}-job`, container: undefined as unknown as Docker.Container };
  let t: TestAgent | undefined;
  // Only ours: other tests may have containers of their own running meanwhile.
  const removeOurs = () => Promise.all([web.container, job.container].map((c) => c?.remove({ force: true }).catch(() => undefined)));
  try {
    web.container = await runContainer(`${sh(WEB_LINES)}; exec sleep 3600`, { name: web.name });
    job.container = await runContainer(sh(JOB_LINES), { name: job.name });
    await waitExited(job.container);

    // The GPU: a fake nvidia-smi printing a real H100 report (the input's own fixture).
    const bin = path.join(tmp.dir, 'nvidia-smi');
    const xml = path.resolve('plugins/inputs/nvidia_smi/testdata/h100-v13-load.xml');
    writeFileSync(bin, `#!/bin/sh\nexec cat '${xml}'\n`);
    chmodSync(bin, 0o755);

    t = await startAgent(
      `agent:
  interval: 1s
  self_metrics: false
  shutdown_timeout: 3s
  data_dir: \${OPSHUB_TEST_DATA}
  http:
    auth_token: ${TOKEN}
${opts.agentYaml ?? ''}
inputs:
  - type: docker_logs
    include: ['^${prefix}-']
    start_from: beginning
    include_stopped: true
  - type: docker_stats
    include: ['^${prefix}-']
    interval: 2s
  - type: session_webhook
  - type: system
    collect: [cpu, memory, disk, load]
  - type: nvidia_smi
    bin_path: ${bin}
processors:
  - type: regex_classifier
  - type: user_extraction
outputs:
  - type: duckdb
    flush_interval: 100ms
    retention: { enabled: false }
  - type: opshub_api
    flush_interval: 100ms
    aggregate_cache: '0'   # the tests change data and ask again at once
    live_cache: '0'
${opts.outputYaml ?? ''}`,
      { dir: tmp.dir },
    );
    const url = t.url;
    const get = (p: string, headers: Record<string, string> = auth) => fetch(`${url}${p}`, { headers });
    const json = async <T = any>(p: string): Promise<T> => {
      const res = await get(p);
      if (!res.ok) throw new Error(`GET ${p}: ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    };

    // Sessions: alice logs in, asks, logs out; bob asks now; dave twice, two hours apart (two sessions).
    const now = Date.now();
    const at = (minutesAgo: number) => new Date(now - minutesAgo * 60_000).toISOString();
    const events = [
      { username: 'alice', action: 'login', session_id: 'sess-alice', ip_address: '192.168.1.23', timestamp: at(10) },
      { username: 'alice', action: 'request', model: 'llama3.1:8b', session_id: 'sess-alice', latency_ms: 1840, status: 'success', timestamp: at(9) },
      { username: 'alice', action: 'logout', session_id: 'sess-alice', timestamp: at(8) },
      { username: 'bob', action: 'request', model: 'qwen2.5:7b', ip_address: '10.0.0.7', latency_ms: 900, status: 'success', timestamp: at(2) },
      { username: 'bob', action: 'request', model: 'qwen2.5:7b', latency_ms: 1100, status: 'error', timestamp: at(1) },
      { username: 'dave', action: 'request', model: 'llama3.1:8b', latency_ms: 500, timestamp: at(180) },
      { username: 'dave', action: 'request', model: 'llama3.1:8b', latency_ms: 700, timestamp: at(60) },
    ];
    const posted = await fetch(`${url}/users/session`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(events) });
    if (posted.status !== 200) throw new Error(`webhook: ${posted.status} ${await posted.text()}`);

    // Everything is in: lines of both containers, sessions, a stats sample, host and GPU figures.
    await waitFor(async () => (await json(`/logs/${web.name}?tail=1000`)).logs.length >= WEB_LINES.length, 30_000, 'the web container\'s lines in the store');
    await waitFor(async () => (await json(`/logs/${job.name}?tail=1000`)).logs.length >= JOB_LINES.length, 30_000, 'the job container\'s lines');
    await waitFor(async () => (await json('/users/sessions')).length >= 6, 30_000, 'the sessions');
    await waitFor(async () => (await json(`/containers/${web.name}/status`)).sampled_at !== null, 30_000, 'a docker_stats sample');
    await waitFor(async () => {
      const p = await json('/metrics/performance');
      return p.cpu_percent !== null && p.gpus.length > 0 && p.load_avg.length === 3;
    }, 30_000, 'host and GPU figures');
    await waitFor(async () => (await json('/metrics/performance/history?hours=1&metric=gpu_utilization')).points.length > 0, 30_000, 'GPU figures in the store');

    const agent = t;
    return {
      t,
      url,
      web,
      job,
      postedAt: now,
      get,
      json,
      async stop() {
        await agent.stop();
        await removeOurs();
        tmp.cleanup();
      },
    };
  } catch (err) {
    await t?.stop().catch(() => undefined);
    await removeOurs();
    tmp.cleanup();
    throw err;
  }
}
