import { CorralError } from '../sys/errors.ts';
import { PR } from '../sys/constants.ts';
import { op, type PlanOp } from '../spawn/ops.ts';
import { seccompProgramFor } from '../seccomp/compile.ts';
import type { SeccompProfile } from '../seccomp/profile.ts';
import { capabilityNames } from './capabilities.ts';

/** spec.seccomp: Docker's intent by default, none, or a profile in Docker's/OCI's JSON format. */
export type SeccompSpec = 'default' | 'unconfined' | SeccompProfile;

/** spec.rlimits: [soft, hard] or one value for both; -1 or 'unlimited' for no limit. */
export type RlimitSpec = Record<string, number | 'unlimited' | [number | 'unlimited', number | 'unlimited']>;

/** The hardening of a container's processes, checked. */
export interface Hardening {
  noNewPrivileges: boolean;
  /** The compiled BPF program, or null for unconfined. */
  seccomp: Buffer | null;
  rlimits: [resource: number, soft: bigint, hard: bigint, name: string][];
  oomScoreAdj: number | null;
}

const RLIMITS: Record<string, number> = {
  cpu: 0, fsize: 1, data: 2, stack: 3, core: 4, rss: 5, nproc: 6, nofile: 7, memlock: 8, as: 9,
  locks: 10, sigpending: 11, msgqueue: 12, nice: 13, rtprio: 14, rttime: 15,
};
const INFINITY = 0xffff_ffff_ffff_ffffn;

/** Paths Docker masks: their contents tell about or act on the host. */
export const DEFAULT_MASKED_PATHS = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/proc/sysrq-trigger', '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

/** Paths Docker makes read-only. */
export const DEFAULT_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys'];

function bad(message: string): CorralError {
  return new CorralError(`invalid container spec: ${message}`, { code: 'ERR_INVALID_SPEC' });
}

function limitValue(v: unknown, what: string): bigint {
  if (v === 'unlimited' || v === -1) return INFINITY;
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw bad(`${what} must be a non-negative integer, -1 or 'unlimited'`);
  return BigInt(v as number);
}

const defaultPrograms = new Map<bigint, Buffer>();
const profilePrograms = new WeakMap<object, Map<bigint, Buffer | null>>();

/** The BPF program for a spec, compiled once per profile and capability set. */
function seccompProgram(seccomp: SeccompSpec, capabilities: bigint): Buffer | null {
  if (seccomp === 'unconfined') return null;
  if (seccomp === 'default') {
    let program = defaultPrograms.get(capabilities);
    if (!program) {
      program = seccompProgramFor('default', capabilityNames(capabilities))!;
      defaultPrograms.set(capabilities, program);
    }
    return program;
  }
  if (typeof seccomp !== 'object' || seccomp === null) throw bad("seccomp must be 'default', 'unconfined' or a profile object");
  let byCaps = profilePrograms.get(seccomp);
  if (!byCaps) profilePrograms.set(seccomp, (byCaps = new Map()));
  if (!byCaps.has(capabilities)) byCaps.set(capabilities, seccompProgramFor(seccomp, capabilityNames(capabilities)));
  return byCaps.get(capabilities)!;
}

/** Checks the hardening fields of a spec and compiles its seccomp profile (the default one on first use). */
export function resolveHardening(spec: { noNewPrivileges?: boolean; seccomp?: SeccompSpec; rlimits?: RlimitSpec; oomScoreAdj?: number }, capabilities: bigint): Hardening {
  if (spec.noNewPrivileges !== undefined && typeof spec.noNewPrivileges !== 'boolean') throw bad('noNewPrivileges must be a boolean');
  const rlimits: Hardening['rlimits'] = [];
  for (const [name, value] of Object.entries(spec.rlimits ?? {})) {
    const resource = RLIMITS[name.toLowerCase().replace(/^rlimit_/, '')];
    if (resource === undefined) throw bad(`unknown rlimit '${name}' (one of ${Object.keys(RLIMITS).join(', ')})`);
    const [soft, hard] = Array.isArray(value) ? value : [value, value];
    const s = limitValue(soft, `rlimits.${name}`);
    const h = limitValue(hard, `rlimits.${name}`);
    if (s > h) throw bad(`rlimits.${name}: soft limit above the hard one`);
    rlimits.push([resource, s, h, name]);
  }
  const oom = spec.oomScoreAdj;
  if (oom !== undefined && (!Number.isInteger(oom) || oom < -1000 || oom > 1000)) throw bad('oomScoreAdj must be an integer from -1000 to 1000');
  const common = { noNewPrivileges: spec.noNewPrivileges ?? true, rlimits, oomScoreAdj: oom ?? null };
  const seccomp = spec.seccomp ?? 'default';
  // Docker's default profile cannot be invalid: it is compiled when a plan first needs it, so a
  // handle list() or get() restores from a state file (which runs nothing) never compiles it.
  if (seccomp === 'default') return { ...common, get seccomp() { return seccompProgram('default', capabilities); } };
  return { ...common, seccomp: seccompProgram(seccomp, capabilities) };
}

/** Steps while still privileged: resource limits, and for the first process the OOM score (its
 * /proc/self file belongs to the process only while it is dumpable, so the setup is dumpable for
 * that one write; exec'd processes keep the score they are forked with). */
export function limitOps(h: Hardening, firstProcess: boolean): PlanOp[] {
  const ops: PlanOp[] = [];
  if (h.oomScoreAdj !== null && firstProcess) {
    ops.push(op.prctl({ step: 'make the setup dumpable for oom_score_adj', option: PR.SET_DUMPABLE, arg: 1 }));
    ops.push(op.writeFile({ step: `set oom_score_adj to ${h.oomScoreAdj}`, path: '/proc/self/oom_score_adj', file: '/proc/self/oom_score_adj', text: String(h.oomScoreAdj) }));
    ops.push(op.prctl({ step: 'make the setup non-dumpable', option: PR.SET_DUMPABLE, arg: 0 }));
  }
  for (const [resource, soft, hard, name] of h.rlimits) {
    ops.push(op.setrlimit({ step: `set rlimit ${name}`, resource, soft, hard }));
  }
  return ops;
}

/** The seccomp load: the last step before exec with no_new_privs; without it, it has to come
 * while CAP_SYS_ADMIN is still held, so before the capabilities are dropped. */
export function seccompOp(h: Hardening): PlanOp[] {
  return h.seccomp ? [op.seccomp({ step: 'load the seccomp filter', program: h.seccomp })] : [];
}

/** The very last steps before exec: no_new_privs, then the seccomp filter. */
export function lastStepOps(h: Hardening): PlanOp[] {
  if (!h.noNewPrivileges) return [];
  return [op.prctl({ step: 'set no_new_privs', option: PR.SET_NO_NEW_PRIVS, arg: 1 }), ...seccompOp(h)];
}
