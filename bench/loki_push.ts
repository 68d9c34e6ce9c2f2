// outputs.loki throughput: log lines/s through the plugin (map to streams,
// encode, compress, POST over one keep-alive connection) and bytes on the
// wire, for protobuf + snappy, JSON and JSON + gzip, against the test Loki
// receiver (test/support/loki_receiver.ts) running in a child process, so its
// decoding does not share the plugin's thread. Run: npx tsx bench/loki_push.ts
// (LINES=200000 by default; DECODE=1 makes the receiver decode and check every push too).

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { makeLog, type Event, type Level } from '../core/events.ts';
import { createLogger } from '../core/log.ts';
import type { PluginContext } from '../core/plugin.ts';
import { createLoki, loki, type LokiConfig } from '../plugins/outputs/loki/index.ts';
import { LokiReceiver } from '../test/support/loki_receiver.ts';

const LINES = Number(process.env.LINES ?? 200_000);
const BATCH = 1000;

interface Counts {
  requests: number;
  bytes: number;
}

if (process.argv[2] === '--receiver') {
  const receiver = await LokiReceiver.start();
  receiver.decode = process.env.DECODE === '1'; // by default count bytes only: measure the sender, not the test decoder
  receiver.keep = false;
  process.on('message', async (msg: string) => {
    if (msg === 'counts') process.send!({ requests: receiver.accepted, bytes: receiver.bytesAccepted });
    if (msg === 'close') {
      await receiver.close();
      process.disconnect();
    }
  });
  process.on('disconnect', () => process.exit(0)); // the bench ended, one way or another
  process.send!(receiver.url);
} else {
  const child = fork(fileURLToPath(import.meta.url), ['--receiver'], { execArgv: ['--import', 'tsx'] });
  process.on('exit', () => child.kill());
  const ask = <T>(msg: string) => new Promise<T>((resolve) => {
    child.once('message', (m) => resolve(m as T));
    if (msg) child.send(msg);
  });
  const url = await ask<string>('');

  // Access-log-like lines from 8 containers, a few levels, some attributes.
  const levels: Level[] = ['info', 'info', 'info', 'warning', 'error', 'debug'];
  const paths = ['/api/v1/models', '/api/chat/completions', '/health', '/api/v1/auths/', '/static/app.js'];
  const events: Event[] = [];
  const t0 = BigInt(Date.now()) * 1_000_000n;
  let rawBytes = 0;
  for (let i = 0; i < LINES; i++) {
    const c = i % 8;
    const message = `172.18.0.${i % 250}:${40000 + (i % 20000)} - "GET ${paths[i % 5]}?n=${i} HTTP/1.1" ${i % 17 ? 200 : 502} ${(i * 7919) % 5000}b ${(i % 900) / 10}ms`;
    rawBytes += Buffer.byteLength(message);
    events.push(makeLog({
      message, timestamp: t0 + BigInt(i) * 1000n, source: `app-${c}`, level: levels[i % levels.length]!,
      labels: { container: `app-${c}`, stream: i % 3 ? 'stdout' : 'stderr' }, attributes: { user: `u${i % 97}`, status: i % 17 ? 200 : 502 },
    }));
  }

  const ctx: PluginContext = {
    id: 'loki', log: createLogger({ level: 'error' }), dataDir: '/tmp', http: undefined as never, hostname: 'bench', signal: new AbortController().signal,
  };
  const defaults = Object.fromEntries(Object.entries(loki.schema.properties).filter(([, p]) => 'default' in p).map(([k, p]) => [k, p.default]));

  console.log(`outputs.loki → test receiver (child process${process.env.DECODE === '1' ? ', decoding' : ', counting bytes'}): ${LINES} lines, ${(rawBytes / LINES).toFixed(0)} B/line of message text, batches of ${BATCH}`);
  console.log('encoding            lines/s  wire B/line  wire MB  wire/message text');
  for (const [name, opts] of [
    ['protobuf+snappy', { encoding: 'protobuf' }],
    ['json', { encoding: 'json' }],
    ['json+gzip', { encoding: 'json', gzip: true }],
    ['protobuf, logfmt', { encoding: 'protobuf', line_format: 'logfmt' }],
    ['json+gzip, logfmt', { encoding: 'json', gzip: true, line_format: 'logfmt' }],
  ] as const) {
    const config = { ...defaults, url, ...opts } as unknown as LokiConfig;
    const out = createLoki(config, ctx);
    await out.start!();
    const none = { checkpoints: [], positions: [] };
    for (let i = 0; i < 20 * BATCH; i += BATCH) await out.write(events.slice(i, i + BATCH), none); // warm up the JIT and the connection
    const warm = await ask<Counts>('counts');
    const pushed = out.stats.entries;
    const started = performance.now();
    for (let i = 0; i < LINES; i += BATCH) await out.write(events.slice(i, i + BATCH), none);
    const seconds = (performance.now() - started) / 1000;
    const after = await ask<Counts>('counts');
    await out.stop!();
    const bytes = after.bytes - warm.bytes;
    if (out.stats.entries - pushed !== LINES) throw new Error(`${name}: ${out.stats.entries - pushed} of ${LINES} entries pushed`);
    console.log(
      `${name.padEnd(18)} ${String(Math.round(LINES / seconds)).padStart(8)}  ${(bytes / LINES).toFixed(1).padStart(11)}  ${(bytes / 1e6).toFixed(1).padStart(7)}  ${((bytes / rawBytes) * 100).toFixed(0).padStart(5)} %`,
    );
  }
  child.send('close');
  await new Promise((resolve) => child.once('exit', resolve));
}
