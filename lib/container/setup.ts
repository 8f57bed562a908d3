import { CLONE, PR } from '../sys/constants.ts';
import { OP, type PlanOp } from '../spawn/plan.ts';
import { rootfsOps, type PlannedMount } from '../fs/rootfs.ts';
import type { ContainerLayer } from '../fs/container-layers.ts';
import type { ResolvedImage } from './image-provider.ts';
import { lastCapability } from './capabilities.ts';
import { limitOps, seccompOp } from './hardening.ts';
import { DEFAULT_PATH, type ResolvedSpec } from './spec.ts';

const SIGKILL = 9;

/** The clone3 namespace flags a spec asks for. With a cgroup of its own the child unshares its
 * cgroup namespace after it is born in that group (an op, see containerSetupOps), so the namespace
 * is rooted at the container's group rather than ours. */
export function cloneFlags(spec: ResolvedSpec, ownCgroup = false): bigint {
  const ns = spec.namespaces;
  let flags = 0n;
  if (ns.user) flags |= CLONE.NEWUSER;
  if (ns.pid) flags |= CLONE.NEWPID;
  if (ns.mount) flags |= CLONE.NEWNS;
  if (ns.uts) flags |= CLONE.NEWUTS;
  if (ns.ipc) flags |= CLONE.NEWIPC;
  if (ns.net) flags |= CLONE.NEWNET;
  if (ns.cgroup && !ownCgroup) flags |= CLONE.NEWCGROUP;
  return flags;
}

/** The ids a user namespace maps: the caller becomes root inside. */
function userNamespaceOps(): PlanOp[] {
  const uid = process.getuid!();
  const gid = process.getgid!();
  return [{
    code: OP.USERNS_MAPS, step: `map uid ${uid} and gid ${gid} to root in the user namespace`,
    syscall: 'write', path: '/proc/self/uid_map', s: [`0 ${uid} 1\n`, `0 ${gid} 1\n`],
  }];
}

/** Switching to the spec's user, after the filesystem is set up. */
export function identityOps(spec: Pick<ResolvedSpec, 'user' | 'namespaces'>): PlanOp[] {
  if (!spec.user) return [];
  const { uid, gid, groups } = spec.user;
  const ops: PlanOp[] = [];
  // In a user namespace without a gid mapping for them, setgroups is denied; an empty list is skipped.
  if (!spec.namespaces.user || groups.length > 0) {
    ops.push({ code: OP.SETGROUPS, step: `set supplementary groups [${groups.join(',')}]`, syscall: 'setgroups', u32Lists: [groups] });
  }
  ops.push({ code: OP.SETRESGID, step: `switch to gid ${gid}`, syscall: 'setresgid', n: [gid] });
  ops.push({ code: OP.SETRESUID, step: `switch to uid ${uid}`, syscall: 'setresuid', n: [uid] });
  return ops;
}

/** Host-side things the setup refers to: the container's own cgroup, its writable layer, and
 * its mounts with volumes resolved to their directories. */
export interface SetupContext {
  ownCgroup: boolean;
  layer: ContainerLayer | null;
  /** The image's layers, when the container runs one. */
  image: ResolvedImage | null;
  mounts: PlannedMount[];
}

/** Every step of the container's first process between clone and the command. */
export function containerSetupOps(spec: ResolvedSpec, context: SetupContext): PlanOp[] {
  const ownCgroup = context.ownCgroup;
  const ops: PlanOp[] = [];
  if (spec.namespaces.user) ops.push(...userNamespaceOps());
  if (spec.namespaces.cgroup && ownCgroup) {
    ops.push({ code: OP.UNSHARE, step: 'enter a cgroup namespace rooted at the container cgroup', syscall: 'unshare', n: [CLONE.NEWCGROUP] });
  }
  ops.push({ code: OP.PRCTL, step: 'die with the parent (PR_SET_PDEATHSIG)', syscall: 'prctl', n: [PR.SET_PDEATHSIG, SIGKILL] });
  ops.push({ code: OP.PRCTL, step: 'make the setup non-dumpable', syscall: 'prctl', n: [PR.SET_DUMPABLE, 0] });
  ops.push({ code: OP.SETSID, step: 'start a new session', syscall: 'setsid' });
  if (spec.namespaces.mount) {
    ops.push(...rootfsOps({
      rootfs: spec.rootfs,
      overlay: context.layer && {
        upper: context.layer.upper,
        work: context.layer.work,
        lowers: context.image ? { base: context.image.layersDir, names: context.image.lowerNames } : null,
      },
      readonlyRootfs: spec.readonlyRootfs,
      rootless: spec.namespaces.user,
      ownProc: spec.namespaces.pid,
      mounts: context.mounts,
      ownSysfs: !spec.namespaces.user || spec.namespaces.net,
      maskedPaths: spec.maskedPaths,
      readonlyPaths: spec.readonlyPaths,
    }));
  }
  if (spec.namespaces.uts) ops.push({ code: OP.SETHOSTNAME, step: `set hostname ${spec.hostname}`, syscall: 'sethostname', s: [spec.hostname] });
  if (spec.namespaces.net) ops.push({ code: OP.LOOPBACK_UP, step: 'bring up lo', syscall: 'ioctl' });
  ops.push(...processOps(spec, true));
  return ops;
}

/** Steps shared by the first process and exec'd ones: working directory, limits, user,
 * capabilities (and the seccomp filter here when there is no no_new_privs; see hardening.ts). */
export function processOps(spec: Pick<ResolvedSpec, 'cwd' | 'user' | 'namespaces' | 'capabilities' | 'hardening'>, firstProcess: boolean): PlanOp[] {
  return [
    { code: OP.CHDIR, step: `change directory to ${spec.cwd}`, syscall: 'chdir', path: spec.cwd, s: [spec.cwd] },
    ...limitOps(spec.hardening, firstProcess),
    ...(spec.hardening.noNewPrivileges ? [] : seccompOp(spec.hardening)),
    { code: OP.CAPBSET_LIMIT, step: 'limit the capability bounding set', syscall: 'prctl', n: [spec.capabilities, lastCapability()] },
    ...identityOps(spec),
    { code: OP.CAPSET, step: 'set capabilities', syscall: 'capset', n: [spec.capabilities] },
  ];
}

/** envp for execve. */
export function envList(env: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

/** The PATH command[0] is looked up in. */
export function searchPath(env: Record<string, string>): string {
  return env.PATH ?? DEFAULT_PATH;
}
