/** The devices a container may use: Docker's default allow-list plus the spec's `devices`. */

import { statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { CorralError } from '../sys/errors.ts';
import { devMajor, devMinor } from '../sys/fs-ops.ts';
import type { DeviceRule } from '../cgroup/device-filter.ts';

/** spec.devices entry: a host device node by path (as docker's --device), or a device class
 * (as OCI's linux.resources.devices); a missing or '*' major/minor matches any; access defaults
 * to 'rwm'. */
export type DeviceSpec =
  | { path: string; access?: string }
  | { type: 'a' | 'b' | 'c'; major?: number | '*'; minor?: number | '*'; access?: string };

const rule = (type: DeviceRule['type'], major: number | null, minor: number | null, access = 'rwm'): DeviceRule => ({ type, major, minor, access });

/** runc's default list, which Docker containers get: mknod of any node (but no read or write),
 * and read/write of null, zero, full, random, urandom, tty, ptmx, the ptys and tun. */
export const DEFAULT_DEVICE_RULES: readonly DeviceRule[] = [
  rule('c', null, null, 'm'), rule('b', null, null, 'm'),
  rule('c', 1, 3), rule('c', 1, 5), rule('c', 1, 7), rule('c', 1, 8), rule('c', 1, 9),
  rule('c', 5, 0), rule('c', 5, 2), rule('c', 136, null), rule('c', 10, 200),
];

// Linux device numbers: 12-bit majors, 20-bit minors.
const MAX_MAJOR = 0xfff;
const MAX_MINOR = 0xfffff;
const KEYS = new Set(['path', 'type', 'major', 'minor', 'access']);

function invalid(message: string, path?: string): CorralError {
  return new CorralError(`invalid container spec: ${message}`, { code: 'ERR_INVALID_SPEC', ...(path ? { path } : {}) });
}

function access(value: unknown, what: string): string {
  if (value === undefined) return 'rwm';
  if (typeof value !== 'string' || !/^(?!.*(.).*\1)[rwm]{1,3}$/.test(value)) throw invalid(`${what}.access must be a combination of r, w and m, got '${String(value)}'`);
  return value;
}

function number(value: unknown, max: number, what: string): number | null {
  if (value === undefined || value === '*') return null;
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > max) throw invalid(`${what} must be an integer from 0 to ${max} or '*', got ${String(value)}`);
  return value as number;
}

function hostDevice(path: unknown, what: string): { type: 'b' | 'c'; major: number; minor: number } {
  if (typeof path !== 'string' || !isAbsolute(path) || path.includes('\0')) throw invalid(`${what}.path must be an absolute path`);
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw invalid(`${what}.path ${path}: ${(e as NodeJS.ErrnoException).code}`, path);
  }
  if (!st.isCharacterDevice() && !st.isBlockDevice()) throw invalid(`${what}.path ${path} is not a device node`, path);
  return { type: st.isBlockDevice() ? 'b' : 'c', major: devMajor(st.rdev), minor: devMinor(st.rdev) };
}

/** The rules of a container's device filter: the defaults, then each of the spec's devices
 * (checked; a path is looked up on the host now). Throws ERR_INVALID_SPEC. */
export function deviceRules(devices: unknown): DeviceRule[] {
  if (devices === undefined) return [...DEFAULT_DEVICE_RULES];
  if (!Array.isArray(devices)) throw invalid('devices must be an array of { path } or { type, major, minor, access }');
  return [...DEFAULT_DEVICE_RULES, ...devices.map((d: unknown, i): DeviceRule => {
    const what = `devices[${i}]`;
    if (typeof d !== 'object' || d === null) throw invalid(`${what} must be an object`);
    for (const key of Object.keys(d)) if (!KEYS.has(key)) throw invalid(`${what}: unknown key '${key}'`);
    const spec = d as Record<string, unknown>;
    if (spec.path !== undefined) {
      if (spec.type !== undefined || spec.major !== undefined || spec.minor !== undefined) throw invalid(`${what}: give either path or type/major/minor`);
      const { type, major, minor } = hostDevice(spec.path, what);
      return rule(type, major, minor, access(spec.access, what));
    }
    if (spec.type !== 'a' && spec.type !== 'b' && spec.type !== 'c') throw invalid(`${what}.type must be 'c', 'b' or 'a', got '${String(spec.type)}'`);
    return rule(spec.type, number(spec.major, MAX_MAJOR, `${what}.major`), number(spec.minor, MAX_MINOR, `${what}.minor`), access(spec.access, what));
  })];
}
