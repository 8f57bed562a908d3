import { readFileSync } from 'node:fs';
import { CorralError } from '../../sys/errors.ts';
import { parseBytes } from '../../sys/units.ts';
import { limitWrites } from '../../cgroup/limits.ts';
import { ociLimits } from '../../container/oci-config.ts';
import type { OciStore } from '../../container/oci-container.ts';
import { ociFlags } from './flags.ts';

function bad(message: string): CorralError {
  return new CorralError(message, { code: 'ERR_INVALID_ARG_VALUE' });
}

/** linux.resources from --resources FILE (- for stdin, as containerd's shim sends them). */
function resourcesFile(path: string): Record<string, any> {
  try {
    const resources = JSON.parse(readFileSync(path === '-' ? 0 : path, 'utf8'));
    if (typeof resources !== 'object' || resources === null) throw new Error('not a JSON object');
    return resources;
  } catch (e) {
    throw new CorralError(`cannot read the resources ${path === '-' ? 'from stdin' : path}: ${(e as Error).message}`, { code: 'ERR_INVALID_SPEC', path });
  }
}

/** runc's update flags as linux.resources. */
function resourcesFlags(values: Record<string, unknown>): Record<string, any> {
  const int = (flag: string): number | undefined => {
    const v = values[flag];
    if (v === undefined) return undefined;
    if (!/^-?\d+$/.test(String(v))) throw bad(`--${flag} must be a whole number, got "${String(v)}"`);
    return Number(v);
  };
  const bytes = (flag: string): number | undefined => {
    const v = values[flag];
    if (v === undefined) return undefined;
    return String(v) === '-1' ? -1 : parseBytes(String(v), `--${flag}`, bad);
  };
  const memory = { limit: bytes('memory'), swap: bytes('memory-swap') };
  const cpu = { quota: int('cpu-quota'), period: int('cpu-period'), shares: int('cpu-shares'), cpus: values['cpuset-cpus'] };
  const pids = { limit: int('pids-limit') };
  const set = (o: Record<string, unknown>): Record<string, unknown> | undefined => {
    const kept = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
    return Object.keys(kept).length > 0 ? kept : undefined;
  };
  return Object.fromEntries(Object.entries({ memory: set(memory), cpu: set(cpu), pids: set(pids) }).filter(([, v]) => v !== undefined));
}

/** `update [--resources FILE|-] [--memory M] [--memory-swap M] [--pids-limit N] [--cpu-quota N]
 * [--cpu-period N] [--cpu-shares N] [--cpuset-cpus L] ID`: new limits for a running container. */
export function updateCommand(store: OciStore, args: string[]): number {
  const { values, id } = ociFlags(args, {
    resources: { type: 'string', short: 'r' }, memory: { type: 'string', short: 'm' }, 'memory-swap': { type: 'string' },
    'pids-limit': { type: 'string' }, 'cpu-quota': { type: 'string' }, 'cpu-period': { type: 'string' },
    'cpu-shares': { type: 'string' }, 'cpuset-cpus': { type: 'string' },
  });
  const resources = values.resources === undefined ? resourcesFlags(values) : resourcesFile(String(values.resources));
  if (Array.isArray(resources.devices) && resources.devices.length > 0) throw bad('linux.resources.devices cannot be changed on a running container');
  delete resources.devices;
  store.update(id, limitWrites(ociLimits(resources) ?? {}));
  return 0;
}
