import { readFileSync } from 'node:fs';
import { CorralError } from '../sys/errors.ts';

/** Linux capability numbers by name (without the CAP_ prefix). */
const CAPABILITIES: Readonly<Record<string, number>> = {
  CHOWN: 0, DAC_OVERRIDE: 1, DAC_READ_SEARCH: 2, FOWNER: 3, FSETID: 4, KILL: 5, SETGID: 6, SETUID: 7,
  SETPCAP: 8, LINUX_IMMUTABLE: 9, NET_BIND_SERVICE: 10, NET_BROADCAST: 11, NET_ADMIN: 12, NET_RAW: 13,
  IPC_LOCK: 14, IPC_OWNER: 15, SYS_MODULE: 16, SYS_RAWIO: 17, SYS_CHROOT: 18, SYS_PTRACE: 19,
  SYS_PACCT: 20, SYS_ADMIN: 21, SYS_BOOT: 22, SYS_NICE: 23, SYS_RESOURCE: 24, SYS_TIME: 25,
  SYS_TTY_CONFIG: 26, MKNOD: 27, LEASE: 28, AUDIT_WRITE: 29, AUDIT_CONTROL: 30, SETFCAP: 31,
  MAC_OVERRIDE: 32, MAC_ADMIN: 33, SYSLOG: 34, WAKE_ALARM: 35, BLOCK_SUSPEND: 36, AUDIT_READ: 37,
  PERFMON: 38, BPF: 39, CHECKPOINT_RESTORE: 40,
};

/** The set Docker gives a container, so defaults match what users know. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP',
  'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
];

/** spec.capabilities: 'all', or changes to the default set. */
export type CapabilitySpec = 'all' | { add?: string[]; drop?: string[] };

let lastCap: number | undefined;

/** The highest capability this kernel knows. */
export function lastCapability(): number {
  lastCap ??= Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'));
  return lastCap;
}

function capNumber(name: unknown): number {
  if (typeof name !== 'string') throw new CorralError('capability names must be strings', { code: 'ERR_INVALID_SPEC' });
  const n = CAPABILITIES[name.toUpperCase().replace(/^CAP_/, '')];
  if (n === undefined) throw new CorralError(`invalid container spec: unknown capability '${name}'`, { code: 'ERR_INVALID_SPEC' });
  return n;
}

/** The capability mask (bit n = capability n) a spec asks for, changes applied to defaults. */
export function capabilityMask(spec: CapabilitySpec | undefined, defaults: readonly string[] = DEFAULT_CAPABILITIES): bigint {
  const all = (1n << BigInt(lastCapability() + 1)) - 1n;
  if (spec === 'all') return all;
  if (spec !== undefined && (typeof spec !== 'object' || spec === null)) {
    throw new CorralError("invalid container spec: capabilities must be 'all' or { add?, drop? }", { code: 'ERR_INVALID_SPEC' });
  }
  let mask = 0n;
  for (const name of defaults) mask |= 1n << BigInt(capNumber(name));
  // Drops first, then adds, as docker does: { drop: ['ALL'], add: ['KILL'] } keeps only KILL.
  for (const name of spec?.drop ?? []) mask &= name === 'ALL' ? 0n : ~(1n << BigInt(capNumber(name)));
  for (const name of spec?.add ?? []) mask |= name === 'ALL' ? all : 1n << BigInt(capNumber(name));
  return mask & all;
}

/** The names of the capabilities in a mask ('SYS_ADMIN', …), as the seccomp profile asks. */
export function capabilityNames(mask: bigint): Set<string> {
  return new Set(Object.entries(CAPABILITIES).filter(([, n]) => (mask >> BigInt(n)) & 1n).map(([name]) => name));
}
