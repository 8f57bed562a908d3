import { statSync } from 'node:fs';
import { CorralError } from '../sys/errors.ts';
import { parseBytes } from '../sys/units.ts';

/** Per-device io limits (io.max); device is 'MAJOR:MINOR' or the path of a block device. */
export interface IoLimit {
  device: string;
  rbps?: number;
  wbps?: number;
  riops?: number;
  wiops?: number;
}

/** spec.limits: what the container may use. */
export interface Limits {
  /** Bytes, or a string such as '64m' or '1.5g'. */
  memory?: number | string;
  /** Swap the container may use on top of memory (memory.swap.max); 'max' or -1 for no limit. */
  memorySwap?: number | string;
  /** A fraction of CPUs, e.g. 0.5 (written as cpu.max). */
  cpus?: number;
  /** Relative CPU weight, 1-10000 (default 100). */
  cpuWeight?: number;
  /** Most tasks at once (pids.max). */
  pids?: number;
  /** CPUs it may run on, e.g. '0-1' or '0,2'. */
  cpuset?: string;
  io?: IoLimit[];
}

/** Limits as cgroup files: controller → file → value. */
export interface CgroupWrites {
  controllers: Set<string>;
  files: [file: string, value: string][];
}

/** The smallest memory limit accepted: below it a container cannot even start its program. */
export const MIN_MEMORY = 6 * 1024 * 1024;
const CPU_PERIOD = 100_000;
const KNOWN = new Set(['memory', 'memorySwap', 'cpus', 'cpuWeight', 'pids', 'cpuset', 'io']);

function bad(message: string): CorralError {
  return new CorralError(`invalid limits: ${message}`, { code: 'ERR_INVALID_LIMITS' });
}

function positiveInt(value: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > max) throw bad(`${what} must be a whole number from 1 to ${max}, got ${String(value)}`);
  return value as number;
}

function ioDevice(device: string): string {
  if (/^\d+:\d+$/.test(device)) return device;
  let rdev: number;
  try {
    const st = statSync(device);
    if (!st.isBlockDevice()) throw bad(`io device ${device} is not a block device`);
    rdev = st.rdev;
  } catch (e) {
    if (e instanceof CorralError) throw e;
    throw bad(`io device ${device}: ${(e as NodeJS.ErrnoException).code}`);
  }
  return `${Math.floor(rdev / 256) & 0xfff}:${(rdev & 0xff) | ((rdev >> 12) & 0xfff00)}`;
}

/** Checks limits and turns them into cgroup file writes; throws ERR_INVALID_LIMITS. */
export function limitWrites(limits: Limits): CgroupWrites {
  if (typeof limits !== 'object' || limits === null) throw bad('limits must be an object');
  for (const key of Object.keys(limits)) if (!KNOWN.has(key)) throw bad(`unknown limit '${key}'`);
  const controllers = new Set<string>();
  const files: [string, string][] = [];
  if (limits.memory !== undefined) {
    const bytes = parseBytes(limits.memory, 'memory', bad);
    if (bytes < MIN_MEMORY) throw bad(`memory ${bytes} bytes is below the minimum of ${MIN_MEMORY} (6m)`);
    controllers.add('memory');
    files.push(['memory.max', String(bytes)]);
  }
  if (limits.memorySwap !== undefined) {
    const swap = limits.memorySwap === 'max' || limits.memorySwap === -1 ? 'max' : String(parseBytes(limits.memorySwap, 'memorySwap', bad));
    controllers.add('memory');
    files.push(['memory.swap.max', swap]);
  }
  if (limits.cpus !== undefined) {
    if (typeof limits.cpus !== 'number' || !(limits.cpus >= 0.01) || !Number.isFinite(limits.cpus)) throw bad(`cpus must be a number of CPUs of at least 0.01, got ${String(limits.cpus)}`);
    controllers.add('cpu');
    files.push(['cpu.max', `${Math.round(limits.cpus * CPU_PERIOD)} ${CPU_PERIOD}`]);
  }
  if (limits.cpuWeight !== undefined) {
    controllers.add('cpu');
    files.push(['cpu.weight', String(positiveInt(limits.cpuWeight, 'cpuWeight', 10_000))]);
  }
  if (limits.pids !== undefined) {
    controllers.add('pids');
    files.push(['pids.max', String(positiveInt(limits.pids, 'pids'))]);
  }
  if (limits.cpuset !== undefined) {
    if (typeof limits.cpuset !== 'string' || !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(limits.cpuset)) throw bad(`cpuset must look like '0-1' or '0,2', got '${String(limits.cpuset)}'`);
    controllers.add('cpuset');
    files.push(['cpuset.cpus', limits.cpuset]);
  }
  if (limits.io !== undefined) {
    if (!Array.isArray(limits.io)) throw bad('io must be an array of { device, rbps?, wbps?, riops?, wiops? }');
    for (const io of limits.io) {
      const parts = (['rbps', 'wbps', 'riops', 'wiops'] as const)
        .filter((k) => io[k] !== undefined)
        .map((k) => `${k}=${positiveInt(io[k], `io ${k}`)}`);
      if (parts.length === 0) throw bad(`io limit for ${io.device} sets nothing`);
      controllers.add('io');
      files.push(['io.max', `${ioDevice(String(io.device))} ${parts.join(' ')}`]);
    }
  }
  return { controllers, files };
}
