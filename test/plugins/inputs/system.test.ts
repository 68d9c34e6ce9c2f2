import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { statfs as realStatfs } from 'node:fs/promises';
import os from 'node:os';
import { stringify } from 'yaml';
import { builtinPlugins } from '../../../core/builtins.ts';
import { loadConfig } from '../../../core/config.ts';
import type { MetricEvent } from '../../../core/events.ts';
import { createLogger, type LogRecord } from '../../../core/log.ts';
import type { Accumulator, PluginContext } from '../../../core/plugin.ts';
import { createSystem, cpuUsagePercent, type SystemConfig } from '../../../plugins/inputs/system/index.ts';
import { parseMounts, parseNetDev, parseProcStat } from '../../../plugins/inputs/system/procfs.ts';
import { linuxReader, portableReader, defaultReader, type HostReader } from '../../../plugins/inputs/system/readers.ts';
import { waitFor } from '../../helpers.ts';

const TESTDATA = 'plugins/inputs/system/testdata/proc';

/** The plugin's defaults as the real config loader resolves them, plus `extra`. */
let defaults: Promise<SystemConfig> | undefined;
async function options(extra: Partial<SystemConfig> = {}): Promise<SystemConfig> {
  defaults ??= loadConfig('system.yaml', {
    builtins: builtinPlugins,
    env: {},
    text: stringify({ agent: { self_metrics: false }, inputs: [{ type: 'system' }] }),
  }).then((cfg) => cfg.inputs[0]!.options as unknown as SystemConfig);
  return { ...(await defaults), ...extra };
}

function context(logs: LogRecord[] = []): PluginContext {
  return {
    id: 'system',
    log: createLogger({ level: 'debug', sink: (r) => logs.push(r) }),
    dataDir: os.tmpdir(),
    http: undefined as never,
    hostname: os.hostname(),
    signal: new AbortController().signal,
  };
}

function collector() {
  const events: MetricEvent[] = [];
  const errors: unknown[] = [];
  const acc = {
    emit: (e) => void events.push(e as MetricEvent),
    emitMany: (es) => void events.push(...(es as MetricEvent[])),
    emitTracked: (es) => void events.push(...(es as MetricEvent[])),
    log: () => undefined,
    metric: () => undefined,
    error: (err) => void errors.push(err),
    flush: () => undefined,
  } satisfies Accumulator;
  return { acc, events, errors, reset: () => events.splice(0) };
}

/** `<name>_<field>` → { type, label sets, values }, as the Prometheus output would serve them. */
function series(events: MetricEvent[]) {
  const out = new Map<string, { type: string; labels: Set<string>; values: Array<{ tags: Record<string, string>; value: number }> }>();
  for (const e of events) {
    for (const [field, value] of Object.entries(e.fields)) {
      const name = `${e.name}_${field}`;
      const s = out.get(name) ?? { type: e.type, labels: new Set(), values: [] };
      s.labels.add(Object.keys(e.tags).sort().join(','));
      s.values.push({ tags: e.tags, value: Number(value) });
      out.set(name, s);
    }
  }
  return out;
}

const one = (s: ReturnType<typeof series>, name: string, tags: Record<string, string> = {}) => {
  const v = s.get(name)?.values.find((x) => Object.entries(tags).every(([k, val]) => x.tags[k] === val));
  assert.ok(v, `${name}${JSON.stringify(tags)} is reported`);
  return v.value;
};

test('one gather on this host reports every collector with node_exporter-like names, types and labels', async () => {
  const input = createSystem(await options({ include_mount_points: ['/'], exclude_fs_types: [] }), context());
  const { acc, events, errors } = collector();
  await input.gather(acc);
  assert.deepEqual(errors, []);
  const s = series(events);

  const expected: Array<[name: string, type: string, labels: string]> = [
    ['system_cpus', 'gauge', ''],
    ['system_cpu_seconds_total', 'counter', 'cpu,mode'],
    ['system_memory_total_bytes', 'gauge', ''],
    ['system_memory_used_bytes', 'gauge', ''],
    ['system_memory_available_bytes', 'gauge', ''],
    ['system_memory_free_bytes', 'gauge', ''],
    ['system_memory_cached_bytes', 'gauge', ''],
    ['system_memory_buffers_bytes', 'gauge', ''],
    ['system_memory_used_percent', 'gauge', ''],
    ['system_swap_total_bytes', 'gauge', ''],
    ['system_swap_used_bytes', 'gauge', ''],
    ['system_swap_free_bytes', 'gauge', ''],
    ['system_swap_used_percent', 'gauge', ''],
    ['system_filesystem_size_bytes', 'gauge', 'device,fstype,mount'],
    ['system_filesystem_used_bytes', 'gauge', 'device,fstype,mount'],
    ['system_filesystem_avail_bytes', 'gauge', 'device,fstype,mount'],
    ['system_filesystem_free_bytes', 'gauge', 'device,fstype,mount'],
    ['system_filesystem_used_percent', 'gauge', 'device,fstype,mount'],
    ['system_filesystem_files', 'gauge', 'device,fstype,mount'],
    ['system_filesystem_files_free', 'gauge', 'device,fstype,mount'],
    ['system_network_receive_bytes_total', 'counter', 'interface'],
    ['system_network_receive_packets_total', 'counter', 'interface'],
    ['system_network_receive_errors_total', 'counter', 'interface'],
    ['system_network_receive_drops_total', 'counter', 'interface'],
    ['system_network_transmit_bytes_total', 'counter', 'interface'],
    ['system_network_transmit_packets_total', 'counter', 'interface'],
    ['system_network_transmit_errors_total', 'counter', 'interface'],
    ['system_network_transmit_drops_total', 'counter', 'interface'],
    ['system_load1', 'gauge', ''],
    ['system_load5', 'gauge', ''],
    ['system_load15', 'gauge', ''],
    ['system_uptime_seconds', 'gauge', ''],
    ['system_boot_time_seconds', 'gauge', ''],
  ];
  // No usage on the first gather: it needs two samples.
  assert.deepEqual([...s.keys()].sort(), expected.map(([n]) => n).sort());
  for (const [name, type, labels] of expected) {
    assert.equal(s.get(name)!.type, type, `${name} type`);
    assert.deepEqual([...s.get(name)!.labels], [labels], `${name} labels`);
  }
  for (const e of events) assert.ok(Object.values(e.fields).every((v) => typeof v === 'number' && Number.isFinite(v)), `${e.name} fields are finite numbers`);

  // Sanity of the values against node:os.
  const ncpu = os.cpus().length;
  assert.equal(one(s, 'system_cpus'), ncpu);
  const cpuLabels = new Set(s.get('system_cpu_seconds_total')!.values.map((v) => v.tags.cpu));
  assert.deepEqual([...cpuLabels].sort(), Array.from({ length: ncpu }, (_, i) => String(i)).sort());
  for (const mode of ['user', 'system', 'idle']) assert.ok(one(s, 'system_cpu_seconds_total', { cpu: '0', mode }) >= 0);
  assert.ok(one(s, 'system_cpu_seconds_total', { cpu: '0', mode: 'idle' }) > 0);

  const total = one(s, 'system_memory_total_bytes');
  assert.ok(Math.abs(total - os.totalmem()) / os.totalmem() < 0.01, 'memory total matches os.totalmem()');
  assert.ok(one(s, 'system_memory_available_bytes') <= total);
  assert.equal(one(s, 'system_memory_used_bytes'), total - one(s, 'system_memory_available_bytes'));
  const usedPct = one(s, 'system_memory_used_percent');
  assert.ok(usedPct > 0 && usedPct < 100, `memory used_percent ${usedPct}`);

  const root = { mount: '/' };
  assert.ok(one(s, 'system_filesystem_size_bytes', root) > 0);
  assert.ok(one(s, 'system_filesystem_avail_bytes', root) <= one(s, 'system_filesystem_free_bytes', root));
  assert.ok(one(s, 'system_filesystem_free_bytes', root) <= one(s, 'system_filesystem_size_bytes', root));
  assert.deepEqual(s.get('system_filesystem_size_bytes')!.values.map((v) => v.tags.mount), ['/']);

  assert.ok(s.get('system_network_receive_bytes_total')!.values.some((v) => v.tags.interface === 'lo'), 'loopback is listed');

  const [l1] = os.loadavg();
  assert.ok(Math.abs(one(s, 'system_load1') - l1!) < 5);
  assert.ok(Math.abs(one(s, 'system_uptime_seconds') - os.uptime()) < 5);
  const boot = one(s, 'system_boot_time_seconds');
  assert.ok(Math.abs(boot - (Date.now() / 1000 - os.uptime())) < 5, 'boot time = now - uptime');
});

test('cpu usage appears from the second gather, per cpu and in total, between 0 and 100', async () => {
  const input = createSystem(await options({ collect: ['cpu'] }), context());
  const { acc, events, reset } = collector();
  await input.gather(acc);
  assert.equal(series(events).has('system_cpu_usage_percent'), false, 'none on the first gather');
  // Usage needs cpu time to pass between two samples (the kernel counts in 10 ms ticks).
  let usage: ReturnType<typeof series> extends Map<string, infer V> ? V | undefined : never;
  for (let i = 0; i < 200 && !usage; i++) {
    await new Promise((r) => setTimeout(r, 25));
    reset();
    await input.gather(acc);
    usage = series(events).get('system_cpu_usage_percent');
  }
  assert.ok(usage, 'usage reported once cpu time passed');
  assert.equal(usage.type, 'gauge');
  assert.deepEqual([...usage.labels], ['cpu']);
  const cpus = usage.values.map((v) => v.tags.cpu);
  assert.ok(cpus.includes('total'));
  for (const v of usage.values) assert.ok(v.value >= 0 && v.value <= 100, `${v.tags.cpu}: ${v.value}`);
});

test('per_cpu: false reports the counters and usage of all cpus together as cpu="total"', async () => {
  const input = createSystem(await options({ collect: ['cpu'], per_cpu: false }), context(), () => linuxReader({ proc: TESTDATA }));
  const { acc, events } = collector();
  await input.gather(acc);
  await input.gather(acc); // same counters: no time passed, so no usage
  const s = series(events);
  assert.deepEqual(new Set(s.get('system_cpu_seconds_total')!.values.map((v) => v.tags.cpu)), new Set(['total']));
  assert.equal(one(s, 'system_cpu_seconds_total', { cpu: 'total', mode: 'user' }), 292.12);
  assert.equal(s.has('system_cpu_usage_percent'), false);
  assert.equal(one(s, 'system_cpus'), 2);
});

test('collect runs only the listed collectors', async () => {
  const table: Array<[SystemConfig['collect'], string[]]> = [
    [['memory'], ['system_memory', 'system_swap']],
    [['load'], ['system']],
    [['network'], ['system_network']],
    [['disk'], ['system_filesystem']],
    [['cpu'], ['system', 'system_cpu']],
    [['load', 'memory'], ['system', 'system_memory', 'system_swap']],
  ];
  for (const [collect, names] of table) {
    const input = createSystem(await options({ collect }), context(), () => linuxReader({ proc: TESTDATA }));
    const { acc, events } = collector();
    await input.gather(acc);
    assert.deepEqual([...new Set(events.map((e) => e.name))].sort(), names, collect.join(','));
  }
});

test('mount point and filesystem type filters choose the filesystems reported', async () => {
  // testdata's mounts claim real directories (/, /etc, /usr, /tmp) so statfs answers on any Linux.
  const table: Array<[Partial<SystemConfig>, string[]]> = [
    [{}, ['/', '/etc', '/usr']], // tmpfs, proc, sysfs, overlay and /var/lib/docker/* excluded by default
    [{ include_fs_types: ['ext4'] }, ['/']],
    [{ include_fs_types: ['nfs*', 'xfs'] }, ['/etc', '/usr']],
    [{ exclude_fs_types: ['proc', 'sysfs', 'devtmpfs', 'overlay'] }, ['/', '/etc', '/tmp', '/usr']],
    [{ include_mount_points: ['/e*'] }, ['/etc']],
    [{ exclude_mount_points: ['/u*', '/var/*'] }, ['/', '/etc']],
    [{ include_mount_points: ['/var/lib/docker/overlay2/*'], exclude_mount_points: [], exclude_fs_types: [] }, []], // its directory does not exist: skipped quietly
  ];
  for (const [extra, mounts] of table) {
    const input = createSystem(await options({ collect: ['disk'], ...extra }), context(), () => linuxReader({ proc: TESTDATA }));
    const { acc, events, errors } = collector();
    await input.gather(acc);
    assert.deepEqual(errors, []);
    assert.deepEqual(events.map((e) => e.tags.mount).sort(), mounts, JSON.stringify(extra));
  }
  const input = createSystem(await options({ collect: ['disk'] }), context(), () => linuxReader({ proc: TESTDATA }));
  const { acc, events } = collector();
  await input.gather(acc);
  const byMount = Object.fromEntries(events.map((e) => [e.tags.mount, e.tags]));
  assert.deepEqual(byMount['/'], { mount: '/', fstype: 'ext4', device: '/dev/vda1' });
  assert.deepEqual(byMount['/usr'], { mount: '/usr', fstype: 'nfs4', device: 'server:/export' });
});

test('interface filters choose the interfaces reported; counters come from /proc/net/dev', async () => {
  const table: Array<[Partial<SystemConfig>, string[]]> = [
    [{}, ['docker0', 'eth0', 'lo', 'vethf17e482']],
    [{ include_interfaces: ['eth*'] }, ['eth0']],
    [{ exclude_interfaces: ['lo', 'veth*'] }, ['docker0', 'eth0']],
  ];
  for (const [extra, names] of table) {
    const input = createSystem(await options({ collect: ['network'], ...extra }), context(), () => linuxReader({ proc: TESTDATA }));
    const { acc, events } = collector();
    await input.gather(acc);
    assert.deepEqual(events.map((e) => e.tags.interface).sort(), names, JSON.stringify(extra));
    for (const e of events) assert.equal(e.type, 'counter');
  }
  const input = createSystem(await options({ collect: ['network'], include_interfaces: ['eth0'] }), context(), () => linuxReader({ proc: TESTDATA }));
  const { acc, events } = collector();
  await input.gather(acc);
  assert.deepEqual(events[0]!.fields, {
    receive_bytes_total: 195367944,
    receive_packets_total: 4885,
    receive_errors_total: 2,
    receive_drops_total: 3,
    transmit_bytes_total: 349602,
    transmit_packets_total: 3140,
    transmit_errors_total: 4,
    transmit_drops_total: 5,
  });
});

test('a failing collector is logged once and counted while the others keep reporting', async () => {
  const logs: LogRecord[] = [];
  const base = linuxReader({ proc: TESTDATA });
  let broken = true;
  const reader: HostReader = {
    ...base,
    network: async () => {
      if (broken) throw new Error('no /proc/net/dev here');
      return base.network();
    },
  };
  const input = createSystem(await options({ collect: ['memory', 'network'] }), context(logs), () => reader);
  const { acc, events, errors } = collector();
  await input.gather(acc);
  await input.gather(acc);
  assert.equal(errors.length, 2, 'each failure counted');
  assert.deepEqual([...new Set(events.map((e) => e.name))].sort(), ['system_memory', 'system_swap']);
  assert.equal(logs.filter((l) => l.message.includes('network collector failed')).length, 1, 'logged once');
  broken = false;
  await input.gather(acc);
  assert.ok(events.some((e) => e.name === 'system_network'));
  assert.equal(logs.filter((l) => l.message.includes('network collector recovered')).length, 1);

  const allBroken: HostReader = { ...base, memory: async () => Promise.reject(new Error('gone')) };
  const failing = createSystem(await options({ collect: ['memory'] }), context(), () => allBroken);
  await assert.rejects(failing.gather(collector().acc), /every collector failed: gone/);
});

test('a filesystem whose statfs hangs (dead NFS server) is skipped, logged once and counted, and not asked again until it answers', async () => {
  const logs: LogRecord[] = [];
  const calls: string[] = [];
  let answer!: () => void;
  const hung = new Promise<void>((r) => (answer = r));
  const statfs = async (p: string) => {
    calls.push(p);
    if (p !== '/usr') return realStatfs(p);
    await hung; // the nfs4 mount of testdata
    return { blocks: 100, bsize: 4096, bfree: 50, bavail: 40, files: 10, ffree: 5 };
  };
  const input = createSystem(await options({ collect: ['disk'] }), context(logs), (hooks) => linuxReader({ proc: TESTDATA, statfsTimeoutMs: 500, statfs, ...hooks }));
  const { acc, events, errors, reset } = collector();
  await input.gather(acc);
  assert.deepEqual(events.map((e) => e.tags.mount).sort(), ['/', '/etc']);
  assert.equal(errors.length, 1);
  reset();
  await input.gather(acc);
  assert.deepEqual(events.map((e) => e.tags.mount).sort(), ['/', '/etc']);
  assert.equal(errors.length, 2, 'counted on every gather it is skipped');
  assert.equal(calls.filter((c) => c === '/usr').length, 1, 'no second statfs while the first hangs');
  assert.equal(logs.filter((l) => l.message.includes('statfs(/usr) does not answer')).length, 1, 'logged once');
  answer();
  await waitFor(async () => {
    reset();
    await input.gather(acc);
    return events.some((e) => e.tags.mount === '/usr');
  }, 10_000, '/usr reported again');
  const usr = events.find((e) => e.tags.mount === '/usr')!;
  assert.deepEqual(usr.fields, { size_bytes: 409600, used_bytes: 204800, avail_bytes: 163840, free_bytes: 204800, used_percent: (100 * 204800) / (204800 + 163840), files: 10, files_free: 5 });
});

test('the portable reader (node:os, systeminformation) yields the same names, without packets and Linux-only cpu modes', async () => {
  const config = await options({ include_mount_points: ['/'], exclude_fs_types: [] });
  const names = async (reader: HostReader) => {
    const { acc, events } = collector();
    await createSystem(config, context(), () => reader).gather(acc);
    return { s: series(events), keys: [...series(events).keys()].sort() };
  };
  const linux = await names(defaultReader());
  const portable = await names(portableReader());
  assert.deepEqual(portable.keys, linux.keys.filter((n) => !n.includes('_packets_') && !/_files(_free)?$/.test(n)));
  const modes = new Set(portable.s.get('system_cpu_seconds_total')!.values.map((v) => v.tags.mode));
  assert.deepEqual([...modes].sort(), ['idle', 'irq', 'nice', 'system', 'user']);
  const totalMem = (s: typeof linux.s) => s.get('system_memory_total_bytes')!.values[0]!.value;
  assert.equal(totalMem(portable.s), totalMem(linux.s));
});

test('/proc parsers read cpu times in seconds, boot time, interfaces and escaped mount points', () => {
  const stat = parseProcStat(readFileSync(`${TESTDATA}/stat`, 'utf8'));
  assert.equal(stat.bootTime, 1795435521);
  assert.deepEqual(stat.cpus.map((c) => c.cpu), ['total', '0', '1']);
  assert.deepEqual(stat.cpus[1]!.seconds, { user: 133.88, nice: 1, system: 45.95, idle: 1889.97, iowait: 0.99, irq: 0.05, softirq: 0.34, steal: 0.37 });

  const dev = parseNetDev(readFileSync(`${TESTDATA}/net/dev`, 'utf8'));
  assert.deepEqual(dev.map((d) => d.interface), ['lo', 'eth0', 'docker0', 'vethf17e482']);
  assert.deepEqual(dev[2]!.transmit, { bytes: 6906, packets: 63, errors: 0, drops: 7 });

  const mounts = parseMounts(readFileSync(`${TESTDATA}/self/mounts`, 'utf8'));
  assert.ok(mounts.some((m) => m.mount === '/no/such/mount point'), 'octal escapes decoded');
  assert.equal(mounts.filter((m) => m.mount === '/').length, 1, 'a mount point mounted over is listed once');
  assert.equal(mounts[3]!.mount, '/', 'in the place of its first entry');
});

test('cpu usage is the busy share of the time that passed, and none when a counter went back', () => {
  const table: Array<[Record<string, number>, Record<string, number>, number | undefined]> = [
    [{ user: 10, system: 5, idle: 85, iowait: 0 }, { user: 20, system: 10, idle: 165, iowait: 5 }, 15],
    [{ user: 10, idle: 90 }, { user: 10, idle: 100 }, 0],
    [{ user: 10, idle: 90 }, { user: 20, idle: 90 }, 100],
    [{ user: 10, idle: 90 }, { user: 10, idle: 90 }, undefined],
    [{ user: 10, idle: 90 }, { user: 5, idle: 95 }, undefined],
  ];
  for (const [prev, cur, expected] of table) assert.equal(cpuUsagePercent(prev, cur), expected, JSON.stringify([prev, cur]));
});
