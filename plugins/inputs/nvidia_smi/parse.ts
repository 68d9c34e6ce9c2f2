// `nvidia-smi -q -x` → metric events. Pure: a parsed document in, events out.
//
// Drivers differ (DTD v10–v13): clocks_throttle_reasons became
// clocks_event_reasons (535), power_readings became gpu_power_readings and
// power_draw became average_power_draw/instant_power_draw (570), ECC counters
// changed shape (single_bit/double_bit → sram_*/dram_*). Values carry units
// ("81559 MiB", "123.98 W", "1980 MHz", "7379430 us") or say that there is no
// value ("N/A", "[N/A]", "Requested functionality has been deprecated",
// "[Not Supported]", "Unknown Error"): such values are left out, never 0.

import type { FieldValue, MetricEvent } from '../../../core/events.ts';
import { child, childrenNamed, textAt, type XmlElement } from './xml.ts';

const NUMBER = /^([-+]?\d+(?:\.\d+)?)\s*([A-Za-z%/()]*)$/;

/** The number at the start of a value and its unit ("81559 MiB" → [81559, "MiB"]); undefined for N/A and the like. */
export function parseValue(text: string | undefined): { value: number; unit: string } | undefined {
  if (text === undefined) return undefined;
  const m = NUMBER.exec(text.trim());
  if (!m) return undefined;
  const value = Number(m[1]);
  return Number.isFinite(value) ? { value, unit: m[2]! } : undefined;
}

const BYTES: Record<string, number> = { '': 1, B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };
const HERTZ: Record<string, number> = { Hz: 1, kHz: 1e3, KHz: 1e3, MHz: 1e6, GHz: 1e9 };
const WATTS: Record<string, number> = { W: 1, mW: 1e-3, kW: 1e3 };
const SECONDS: Record<string, number> = { s: 1, ms: 1e-3, us: 1e-6, µs: 1e-6, ns: 1e-9 };

function scaled(text: string | undefined, units: Record<string, number>, bare?: number): number | undefined {
  const v = parseValue(text);
  if (!v) return undefined;
  const factor = v.unit === '' && bare !== undefined ? bare : units[v.unit];
  if (factor === undefined) return undefined;
  // Round away float noise (e.g. 1.38 GHz → 1380000000, not 1379999999.9999998).
  return Number((v.value * factor).toPrecision(12));
}

/** Bytes; nvidia-smi's KB/MB/GB are binary (NVML reports KiB), and a bare number is MiB when `bareMiB`. */
export const bytes = (t: string | undefined, bareMiB = false) => scaled(t, BYTES, bareMiB ? 1024 ** 2 : undefined);
export const hertz = (t: string | undefined) => scaled(t, HERTZ, 1e6);
export const watts = (t: string | undefined) => scaled(t, WATTS, 1);
export const seconds = (t: string | undefined) => scaled(t, SECONDS, 1e-6);
export const plain = (t: string | undefined) => parseValue(t)?.value;

/** "Active"/"Enabled"/"Yes" → 1, "Not Active"/"Disabled"/"No" → 0, anything else (N/A) → undefined. */
export function flag(text: string | undefined): number | undefined {
  switch (text?.trim().toLowerCase()) {
    case 'active':
    case 'enabled':
    case 'yes':
      return 1;
    case 'not active':
    case 'disabled':
    case 'no':
      return 0;
    default:
      return undefined;
  }
}

/** Text that carries a value (not "N/A", "[N/A]", "None", a deprecation notice...), else undefined. */
export function meaningful(text: string | undefined): string | undefined {
  const t = text?.trim();
  if (!t) return undefined;
  if (/^\[?(n\/a|none|unknown( error)?|not supported|insufficient permissions|gpu access blocked by the operating system)\]?$/i.test(t)) return undefined;
  if (/deprecated/i.test(t)) return undefined;
  return t;
}

class Fields {
  readonly values: Record<string, FieldValue> = {};
  set(name: string, value: number | undefined): void {
    if (value !== undefined && Number.isFinite(value)) this.values[name] = value;
  }
  get empty(): boolean {
    return Object.keys(this.values).length === 0;
  }
}

export interface ConvertOptions {
  timestamp: bigint;
  /** Per-process GPU memory (`nvidia_smi_process`). */
  processes: boolean;
  /** MIG device metrics (`nvidia_smi_mig`). */
  migDevices: boolean;
}

/** The GPUs of a document, for callers that want them (e.g. a summary). */
export function gpusOf(root: XmlElement): XmlElement[] {
  return childrenNamed(root, 'gpu');
}

/** Converts a parsed `nvidia-smi -q -x` document into metric events. */
export function toMetrics(root: XmlElement, opts: ConvertOptions): MetricEvent[] {
  if (root.name !== 'nvidia_smi_log') throw new Error(`not nvidia-smi XML: the root element is <${root.name}>, expected <nvidia_smi_log>`);
  const driver = meaningful(textAt(root, 'driver_version'));
  const cuda = meaningful(textAt(root, 'cuda_version'));
  const out: MetricEvent[] = [];
  const metric = (name: string, fields: Fields, tags: Record<string, string>, type: MetricEvent['type'] = 'gauge') => {
    if (!fields.empty) out.push({ kind: 'metric', name, tags: { ...tags }, fields: fields.values, timestamp: opts.timestamp, type });
  };

  gpusOf(root).forEach((gpu, index) => {
    const tags: Record<string, string> = { index: String(index) };
    const uuid = meaningful(textAt(gpu, 'uuid'));
    const name = meaningful(textAt(gpu, 'product_name'));
    const busId = meaningful(textAt(gpu, 'pci', 'pci_bus_id')) ?? meaningful(gpu.attributes.id);
    if (uuid) tags.uuid = uuid;
    if (name) tags.name = name;
    if (busId) tags.pci_bus_id = busId;
    if (driver) tags.driver_version = driver;

    const g = new Fields();
    gauges(gpu, g);
    metric('nvidia_smi', g, tags);

    const c = new Fields();
    counters(gpu, c);
    metric('nvidia_smi', c, tags, 'counter');

    // An info series (value 1) whose tags carry what does not change per sample.
    const info = new Fields();
    info.set('info', 1);
    const infoTags: Record<string, string> = { ...tags };
    const extra: Array<[string, string | undefined]> = [
      ['cuda_version', cuda],
      ['vbios_version', meaningful(textAt(gpu, 'vbios_version'))],
      ['architecture', meaningful(textAt(gpu, 'product_architecture'))],
      ['brand', meaningful(textAt(gpu, 'product_brand'))],
      ['compute_mode', meaningful(textAt(gpu, 'compute_mode'))],
      ['persistence_mode', meaningful(textAt(gpu, 'persistence_mode'))],
      ['mig_mode', meaningful(textAt(gpu, 'mig_mode', 'current_mig'))],
      ['virtualization_mode', meaningful(textAt(gpu, 'gpu_virtualization_mode', 'virtualization_mode'))],
    ];
    for (const [k, v] of extra) if (v) infoTags[k] = v;
    metric('nvidia_smi', info, infoTags);

    if (opts.processes) {
      for (const p of childrenNamed(child(gpu, 'processes'), 'process_info')) {
        const f = new Fields();
        f.set('used_memory_bytes', bytes(textAt(p, 'used_memory')));
        const ptags: Record<string, string> = { ...tags };
        const pid = meaningful(textAt(p, 'pid'));
        if (pid) ptags.pid = pid;
        const pname = meaningful(textAt(p, 'process_name'));
        if (pname) ptags.process_name = pname;
        const ptype = meaningful(textAt(p, 'type'));
        if (ptype) ptags.type = ptype;
        const gi = plain(textAt(p, 'gpu_instance_id'));
        const ci = plain(textAt(p, 'compute_instance_id'));
        if (gi !== undefined) ptags.gpu_instance_id = String(gi);
        if (ci !== undefined) ptags.compute_instance_id = String(ci);
        metric('nvidia_smi_process', f, ptags);
      }
    }

    if (opts.migDevices) {
      for (const mig of childrenNamed(child(gpu, 'mig_devices'), 'mig_device')) {
        const mtags: Record<string, string> = { ...tags };
        const idx = plain(textAt(mig, 'index'));
        const gi = plain(textAt(mig, 'gpu_instance_id'));
        const ci = plain(textAt(mig, 'compute_instance_id'));
        const migUuid = meaningful(textAt(mig, 'uuid'));
        if (idx !== undefined) mtags.mig_index = String(idx);
        if (gi !== undefined) mtags.gpu_instance_id = String(gi);
        if (ci !== undefined) mtags.compute_instance_id = String(ci);
        if (migUuid) mtags.mig_uuid = migUuid;
        const f = new Fields();
        memory(mig, f);
        const shared = child(mig, 'device_attributes', 'shared');
        for (const key of ['multiprocessor_count', 'copy_engine_count', 'encoder_count', 'decoder_count', 'ofa_count', 'jpg_count']) {
          f.set(key, plain(textAt(shared, key)));
        }
        metric('nvidia_smi_mig', f, mtags);
        const mc = new Fields();
        const volatile = child(mig, 'ecc_error_count', 'volatile_count');
        for (const e of volatile?.children ?? []) mc.set(`ecc_errors_volatile_${snake(e.name)}_total`, plain(e.text));
        metric('nvidia_smi_mig', mc, mtags, 'counter');
      }
    }
  });
  return out;
}

function snake(name: string): string {
  return name.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '').toLowerCase();
}

function memory(el: XmlElement, f: Fields): void {
  for (const key of ['total', 'used', 'free', 'reserved']) f.set(`memory_${key}_bytes`, bytes(textAt(el, 'fb_memory_usage', key)));
  for (const key of ['total', 'used', 'free']) f.set(`bar1_memory_${key}_bytes`, bytes(textAt(el, 'bar1_memory_usage', key)));
}

function gauges(gpu: XmlElement, f: Fields): void {
  const util = child(gpu, 'utilization');
  for (const key of ['gpu', 'memory', 'encoder', 'decoder', 'jpeg', 'ofa']) f.set(`utilization_${key}_percent`, plain(textAt(util, `${key}_util`)));

  memory(gpu, f);

  const temp = child(gpu, 'temperature');
  f.set('temperature_gpu_celsius', plain(textAt(temp, 'gpu_temp')));
  f.set('temperature_memory_celsius', plain(textAt(temp, 'memory_temp')));
  f.set('temperature_shutdown_threshold_celsius', plain(textAt(temp, 'gpu_temp_max_threshold')));
  f.set('temperature_slowdown_threshold_celsius', plain(textAt(temp, 'gpu_temp_slow_threshold')));
  f.set('temperature_max_operating_celsius', plain(textAt(temp, 'gpu_temp_max_gpu_threshold')));
  f.set('temperature_target_celsius', plain(textAt(temp, 'gpu_target_temperature')));

  // 570+: gpu_power_readings with average/instant; 550: gpu_power_readings/power_draw; older: power_readings.
  const power = child(gpu, 'gpu_power_readings') ?? child(gpu, 'power_readings');
  const average = watts(textAt(power, 'average_power_draw'));
  const instant = watts(textAt(power, 'instant_power_draw'));
  const legacy = watts(textAt(power, 'power_draw'));
  // What `--query-gpu=power.draw` reports: on drivers that have both, the 1 s average.
  f.set('power_draw_watts', legacy ?? average ?? instant);
  f.set('power_draw_average_watts', average);
  f.set('power_draw_instant_watts', instant);
  f.set('power_limit_watts', watts(textAt(power, 'current_power_limit')) ?? watts(textAt(power, 'power_limit')));
  f.set('power_limit_enforced_watts', watts(textAt(power, 'enforced_power_limit')) ?? watts(textAt(power, 'current_power_limit')));
  f.set('power_limit_requested_watts', watts(textAt(power, 'requested_power_limit')));
  f.set('power_limit_default_watts', watts(textAt(power, 'default_power_limit')));
  f.set('power_limit_min_watts', watts(textAt(power, 'min_power_limit')));
  f.set('power_limit_max_watts', watts(textAt(power, 'max_power_limit')));
  f.set('memory_power_draw_average_watts', watts(textAt(gpu, 'gpu_memory_power_readings', 'average_power_draw')));

  const clocks: Array<[string, string]> = [['graphics', 'graphics_clock'], ['sm', 'sm_clock'], ['memory', 'mem_clock'], ['video', 'video_clock']];
  for (const [name, tag] of clocks) {
    f.set(`clocks_${name}_hertz`, hertz(textAt(gpu, 'clocks', tag)));
    f.set(`clocks_max_${name}_hertz`, hertz(textAt(gpu, 'max_clocks', tag)));
  }
  f.set('clocks_applications_graphics_hertz', hertz(textAt(gpu, 'applications_clocks', 'graphics_clock')));
  f.set('clocks_applications_memory_hertz', hertz(textAt(gpu, 'applications_clocks', 'mem_clock')));

  f.set('fan_speed_percent', plain(textAt(gpu, 'fan_speed')));
  const pstate = /^P(\d+)$/.exec(textAt(gpu, 'performance_state') ?? '');
  if (pstate) f.set('pstate', Number(pstate[1]));

  // Clock event reasons (535+) or clock throttle reasons (older), as 0/1.
  const reasons = child(gpu, 'clocks_event_reasons') ?? child(gpu, 'clocks_throttle_reasons');
  for (const r of reasons?.children ?? []) {
    const key = r.name.replace(/^clocks_(?:event|throttle)_reasons?_/, '');
    f.set(`clocks_event_reason_${snake(key)}`, flag(r.text));
  }

  const link = child(gpu, 'pci', 'pci_gpu_link_info');
  f.set('pcie_link_gen_current', plain(textAt(link, 'pcie_gen', 'current_link_gen')));
  f.set('pcie_link_gen_max', plain(textAt(link, 'pcie_gen', 'max_link_gen')));
  f.set('pcie_link_width_current', plain(textAt(link, 'link_widths', 'current_link_width')));
  f.set('pcie_link_width_max', plain(textAt(link, 'link_widths', 'max_link_width')));
  f.set('pcie_tx_bytes_per_second', bytes(textAt(gpu, 'pci', 'tx_util')?.replace(/\/s$/, '')));
  f.set('pcie_rx_bytes_per_second', bytes(textAt(gpu, 'pci', 'rx_util')?.replace(/\/s$/, '')));

  f.set('encoder_sessions', plain(textAt(gpu, 'encoder_stats', 'session_count')));
  f.set('encoder_average_fps', plain(textAt(gpu, 'encoder_stats', 'average_fps')));
  f.set('encoder_average_latency_seconds', seconds(textAt(gpu, 'encoder_stats', 'average_latency')));

  f.set('mig_enabled', flag(textAt(gpu, 'mig_mode', 'current_mig')));
  f.set('ecc_enabled', flag(textAt(gpu, 'ecc_mode', 'current_ecc')));

  const remapped = child(gpu, 'remapped_rows');
  f.set('remapped_rows_correctable', plain(textAt(remapped, 'remapped_row_corr')));
  f.set('remapped_rows_uncorrectable', plain(textAt(remapped, 'remapped_row_unc')));
  f.set('remapped_rows_pending', flag(textAt(remapped, 'remapped_row_pending')));
  f.set('remapped_rows_failure', flag(textAt(remapped, 'remapped_row_failure')));
  const retired = child(gpu, 'retired_pages');
  f.set('retired_pages_single_bit', plain(textAt(retired, 'multiple_single_bit_retirement', 'retired_count')));
  f.set('retired_pages_double_bit', plain(textAt(retired, 'double_bit_retirement', 'retired_count')));
  f.set('retired_pages_pending', flag(textAt(retired, 'pending_retirement')));
}

function counters(gpu: XmlElement, f: Fields): void {
  const ecc = child(gpu, 'ecc_errors');
  for (const scope of ['volatile', 'aggregate']) {
    const el = child(ecc, scope);
    if (!el) continue;
    let correctable: number | undefined;
    let uncorrectable: number | undefined;
    const add = (sum: number | undefined, v: number | undefined) => (v === undefined ? sum : (sum ?? 0) + v);
    const singleBit = child(el, 'single_bit');
    const doubleBit = child(el, 'double_bit');
    if (singleBit || doubleBit) {
      // DTD v10 and older drivers: per memory location, under single_bit (corrected) and double_bit (uncorrected).
      for (const [group, kind] of [[singleBit, 'correctable'], [doubleBit, 'uncorrectable']] as const) {
        for (const loc of group?.children ?? []) {
          const v = plain(loc.text);
          if (loc.name === 'total') {
            if (kind === 'correctable') correctable = v;
            else uncorrectable = v;
          } else f.set(`ecc_errors_${scope}_${snake(loc.name)}_${kind}_total`, v);
        }
      }
    } else {
      // v11+: sram_correctable, sram_uncorrectable (v13: _parity and _secded), dram_correctable, dram_uncorrectable.
      for (const e of el.children) {
        const m = /^(sram|dram)_(correctable|uncorrectable)(?:_(\w+))?$/.exec(e.name);
        if (!m) continue;
        const v = plain(e.text);
        f.set(`ecc_errors_${scope}_${snake(e.name)}_total`, v);
        if (m[2] === 'correctable') correctable = add(correctable, v);
        else uncorrectable = add(uncorrectable, v);
      }
    }
    f.set(`ecc_errors_${scope}_correctable_total`, correctable);
    f.set(`ecc_errors_${scope}_uncorrectable_total`, uncorrectable);
  }

  // Time spent in each clock event reason since the driver loaded (535+), microseconds → seconds.
  const counted = child(gpu, 'clocks_event_reasons_counters') ?? child(gpu, 'clocks_throttle_reasons_counters');
  for (const r of counted?.children ?? []) {
    const key = r.name.replace(/^clocks_(?:event|throttle)_reasons?_counters_/, '');
    f.set(`clocks_event_${snake(key)}_seconds_total`, seconds(r.text));
  }

  f.set('pcie_replay_total', plain(textAt(gpu, 'pci', 'replay_counter')));
  f.set('pcie_replay_rollover_total', plain(textAt(gpu, 'pci', 'replay_rollover_counter')));
}
