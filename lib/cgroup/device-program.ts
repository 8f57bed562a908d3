/** Loading and attaching the device filter: each rule set is loaded (verified) once per process
 * and its program attached to every container group that has those rules, as crun does. */

import { close } from '../sys/libc.ts';
import { BPF, bpfProgAttach, bpfProgLoad } from '../sys/bpf.ts';
import { errorCode } from '../sys/errors.ts';
import { deviceFilterInsns, encodeInsns, type DeviceRule } from './device-filter.ts';

/** Loaded programs by rule set; the oldest is closed past MAX_CACHED (groups keep what they have). */
const loaded = new Map<string, number>();
const MAX_CACHED = 32;
let supported: boolean | undefined;

function programFor(rules: readonly DeviceRule[]): number {
  const key = JSON.stringify(rules);
  let fd = loaded.get(key);
  if (fd !== undefined) return fd;
  fd = bpfProgLoad(BPF.PROG_TYPE_CGROUP_DEVICE, encodeInsns(deviceFilterInsns(rules)), 'load the device filter');
  if (loaded.size >= MAX_CACHED) {
    const [oldKey, oldFd] = loaded.entries().next().value!;
    loaded.delete(oldKey);
    close(oldFd);
  }
  loaded.set(key, fd);
  return fd;
}

/** Attaches the device filter for rules to a group (by its directory fd) before any process is
 * born in it; the kernel drops the attachment with the group. */
export function attachDeviceFilter(groupFd: number, path: string, rules: readonly DeviceRule[]): void {
  bpfProgAttach(groupFd, programFor(rules), BPF.CGROUP_DEVICE, BPF.F_ALLOW_MULTI, path, `attach the device filter to ${path}`);
}

/** True when this process may load device filters (root with CAP_BPF or CAP_SYS_ADMIN, a kernel
 * with cgroup BPF); found once by loading the deny-all program. */
export function deviceFiltersSupported(): boolean {
  if (supported !== undefined) return supported;
  try {
    programFor([]);
    supported = true;
  } catch (e) {
    if (!['EPERM', 'EACCES', 'EINVAL', 'ENOSYS'].includes(errorCode(e) ?? '')) throw e;
    supported = false;
  }
  return supported;
}
