// inputs.nvidia_smi: runs `nvidia-smi -q -x` every interval and turns its XML
// into metrics per GPU (utilization, memory, temperature, power, clocks, clock
// event reasons, ECC, PCIe), per process (GPU memory) and per MIG device.
//
// A host without nvidia-smi (CI machines, laptops) gets one clear message and
// the behaviour chosen by `on_missing`: fail at start, disable the input, or
// keep looking quietly every interval. A hung nvidia-smi (a wedged driver) is
// killed, with its whole process group, after `timeout`.

import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { nowNs } from '../../../core/events.ts';
import { errorMessage } from '../../../core/log.ts';
import type { PluginContext, PluginDefinition, PullInput } from '../../../core/plugin.ts';
import { parseDuration } from '../../../core/units.ts';
import { toMetrics } from './parse.ts';
import { parseXml } from './xml.ts';

export interface NvidiaSmiConfig {
  bin_path: string;
  timeout: string;
  on_missing: 'fail' | 'disable' | 'retry';
  processes: boolean;
  mig_devices: boolean;
}

/** Upper bound on what one run may print; 8 GPUs with every section take well under 1 MiB. */
const MAX_OUTPUT_BYTES = 32 * 1024 * 1024;

/** The executable `bin` names: a path (absolute or relative, must be executable) or a name looked up in PATH. */
export function locate(bin: string, envPath = process.env.PATH ?? ''): string | undefined {
  const usable = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (bin.includes('/') || bin.includes(path.sep)) return usable(bin) ? path.resolve(bin) : undefined;
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, bin);
    if (usable(candidate)) return candidate;
  }
  return undefined;
}

class MissingBinary extends Error {
  override name = 'MissingBinary';
}

/**
 * Runs `file args`, resolving with its stdout when it exits 0. After
 * `timeoutMs` (or when `signal` aborts) the process and everything it started
 * are killed. nvidia-smi prints its own errors on stdout, so a failure's
 * message includes the start of both streams.
 */
export function runCommand(file: string, args: string[], timeoutMs: number, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err: Error | undefined, out?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(out!);
    };
    // Its own process group, so a shell wrapper and its children die together.
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: process.env });
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(() => {
      killGroup();
      done(new Error(`${path.basename(file)} did not answer within ${timeoutMs} ms (killed); the driver may be hung`));
    }, timeoutMs);
    const onAbort = () => {
      killGroup();
      done(new Error('stopped'));
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });

    const out: Buffer[] = [];
    let outBytes = 0;
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > MAX_OUTPUT_BYTES) {
        killGroup();
        done(new Error(`${path.basename(file)} printed more than ${MAX_OUTPUT_BYTES} bytes; stopped reading`));
        return;
      }
      out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (err.length < 4096) err += chunk.toString('utf8');
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'EACCES') done(new MissingBinary(`${file}: ${e.code === 'ENOENT' ? 'not found' : 'not executable'}`));
      else done(e);
    });
    child.on('close', (code, sig) => {
      const stdout = Buffer.concat(out).toString('utf8');
      if (code === 0) return done(undefined, stdout);
      const said = `${err.trim()} ${stdout.trim()}`.trim().split('\n')[0]!.slice(0, 300);
      done(new Error(`${path.basename(file)} ${sig ? `was killed by ${sig}` : `exited with code ${code}`}${said ? `: ${said}` : ''}`));
    });
  });
}

export function createNvidiaSmi(config: NvidiaSmiConfig, ctx: PluginContext): PullInput {
  const timeoutMs = parseDuration(config.timeout);
  let bin: string | undefined;
  let disabled = false;
  let stopped = false;
  const running = new AbortController();
  const notFound = () =>
    `nvidia-smi not found (bin_path: "${config.bin_path}"${config.bin_path.includes('/') ? '' : ', looked up in PATH'}); ` +
    'install the NVIDIA driver utilities or set bin_path';

  /** Handles a missing binary by `on_missing`; after start, `fail` behaves like `retry` (the agent never crashes). */
  const missing = (atStart: boolean) => {
    bin = undefined;
    if (config.on_missing === 'fail' && atStart) throw new Error(`${notFound()}, or set on_missing: disable | retry`);
    if (config.on_missing === 'disable') {
      disabled = true;
      ctx.log.once('missing', 'warn', `${notFound()}; this input is disabled until the agent restarts (on_missing: disable)`);
    } else {
      ctx.log.once('missing', 'warn', `${notFound()}; looking for it again every interval, quietly (on_missing: ${config.on_missing})`);
    }
  };

  return {
    async start() {
      bin = locate(config.bin_path);
      if (!bin) missing(true);
    },
    async gather(acc) {
      if (disabled || stopped) return;
      if (!bin) {
        bin = locate(config.bin_path);
        if (!bin) return;
        ctx.log.clear('missing');
        ctx.log.info(`found nvidia-smi at ${bin}`);
      }
      let xml: string;
      try {
        xml = await runCommand(bin, ['-q', '-x'], timeoutMs, running.signal);
      } catch (err) {
        if (err instanceof MissingBinary) return missing(false);
        if (stopped) return;
        // Removed while it was starting (a driver upgrade; a script's shell opens it by name after exec): missing, not a failure.
        if (!existsSync(bin)) return missing(false);
        throw err;
      }
      const timestamp = nowNs();
      let root;
      try {
        root = parseXml(xml);
      } catch (err) {
        throw new Error(`cannot parse the output of ${bin} -q -x: ${errorMessage(err)}`);
      }
      acc.emitMany(toMetrics(root, { timestamp, processes: config.processes, migDevices: config.mig_devices }));
    },
    async stop() {
      stopped = true;
      running.abort();
    },
  };
}

export const nvidiaSmi: PluginDefinition<NvidiaSmiConfig> = {
  kind: 'input',
  type: 'nvidia_smi',
  description: 'NVIDIA GPU metrics from `nvidia-smi -q -x`: utilization, memory, temperature, power, clocks, clock event reasons, ECC, PCIe, processes and MIG devices.',
  schema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      bin_path: {
        type: 'string',
        minLength: 1,
        default: 'nvidia-smi',
        description: 'The nvidia-smi executable: a path, or a name looked up in PATH.',
      },
      timeout: {
        type: 'string',
        format: 'duration',
        default: '5s',
        description: 'How long one run may take; after it nvidia-smi is killed and the gather counts as failed (a hung driver).',
      },
      on_missing: {
        enum: ['fail', 'disable', 'retry'],
        default: 'disable',
        description:
          'When nvidia-smi is not there: `fail` stops the agent at start-up with the reason; `disable` logs one warning and turns this input off; `retry` logs one warning and looks again every interval without logging more.',
      },
      processes: {
        type: 'boolean',
        default: true,
        description: 'Report GPU memory per process (`nvidia_smi_process`, tagged with pid and process name).',
      },
      mig_devices: {
        type: 'boolean',
        default: true,
        description: 'Report MIG devices of GPUs in MIG mode (`nvidia_smi_mig`).',
      },
    },
  },
  create: (config, ctx) => createNvidiaSmi(config, ctx),
};

export default nvidiaSmi;
