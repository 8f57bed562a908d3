import { CLONE, PR } from '../sys/constants.ts';
import { op, type PlanOp } from '../spawn/ops.ts';
import { liftedDefences } from '../spawn/lifted-defences.ts';
import { rootfsOps, type HostEntry, type OwnFile, type PlannedMount } from '../fs/rootfs.ts';
import type { WritableLayer } from '../fs/container-layers.ts';
import type { OverlayMount } from '../fs/overlay-mount.ts';
import { overlayMount } from '../fs/overlay-probe.ts';
import type { ResolvedImage } from './image-provider.ts';
import { lastCapability } from './capabilities.ts';
import { limitOps, seccompOp } from './hardening.ts';
import { DEFAULT_PATH, type ResolvedSpec } from './spec.ts';
import { isSingleIdMap, type IdMap } from '../sys/id-map.ts';

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

/** The single mapping, written by the child itself (the caller becomes root inside); a map with
 * subordinate ranges is the parent's to write (LaunchSpec.idMap). */
function userNamespaceOps(map: IdMap): PlanOp[] {
  if (!isSingleIdMap(map)) return [];
  const uid = map.uids[0]!.outside;
  const gid = map.gids[0]!.outside;
  return [op.usernsMaps({
    step: `map uid ${uid} and gid ${gid} to root in the user namespace`, path: '/proc/self/uid_map',
    uidMap: `0 ${uid} 1\n`, gidMap: `0 ${gid} 1\n`,
  })];
}

/** Switching to the spec's user, after the filesystem is set up. */
export function identityOps(spec: Pick<ResolvedSpec, 'user' | 'idMap'>): PlanOp[] {
  if (!spec.user) return [];
  const { uid, gid, groups } = spec.user;
  const ops: PlanOp[] = [];
  // With the single mapping setgroups is denied; an empty list is skipped.
  if (!spec.idMap || !isSingleIdMap(spec.idMap) || groups.length > 0) {
    ops.push(op.setgroups({ step: `set supplementary groups [${groups.join(',')}]`, gids: groups }));
  }
  ops.push(op.setresgid({ step: `switch to gid ${gid}`, gid }));
  ops.push(op.setresuid({ step: `switch to uid ${uid}`, uid }));
  return ops;
}

/** Host-side things the setup refers to: the container's own cgroup, its writable layer, and
 * its mounts with volumes resolved to their directories. */
export interface SetupContext {
  ownCgroup: boolean;
  layer: WritableLayer | null;
  /** The image's layers, when the container runs one. */
  image: ResolvedImage | null;
  mounts: PlannedMount[];
  /** The host root's top-level entries to bind, for a container on it that needs them (else null). */
  hostEntries: readonly HostEntry[] | null;
  /** Its own /etc files (etc-files.ts), bound over the root's. */
  ownFiles: readonly OwnFile[];
  /** rootfsOps' steps before the masks and its writes in the root (corral-oci's hooks, sysctl);
   * with a mount namespace only. */
  beforeMasks?: readonly PlanOp[];
  writes?: readonly { path: string; text: string }[];
  /** How the overlay is mounted; by default the way the kernel takes (probed once, overlay-probe.ts). */
  overlayMount?: OverlayMount;
}

/** Every step of the container's first process between clone and the command. */
export function containerSetupOps(spec: ResolvedSpec, context: SetupContext): PlanOp[] {
  const ownCgroup = context.ownCgroup;
  const ops: PlanOp[] = [];
  if (spec.idMap) ops.push(...userNamespaceOps(spec.idMap));
  if (spec.namespaces.cgroup && ownCgroup) {
    ops.push(op.unshare({ step: 'enter a cgroup namespace rooted at the container cgroup', flags: CLONE.NEWCGROUP }));
  }
  ops.push(dieWithParentOp());
  ops.push(op.prctl({ step: 'make the setup non-dumpable', option: PR.SET_DUMPABLE, arg: 0 }));
  ops.push(...newSessionOps());
  if (spec.namespaces.mount) {
    ops.push(...rootfsOps({
      rootfs: spec.rootfs,
      hostRoot: spec.hostRoot,
      hostEntries: context.hostEntries,
      overlay: context.layer && {
        layer: context.layer.kind === 'memory' ? 'memory' : { dir: context.layer.dir, upper: context.layer.upper, work: context.layer.work },
        lowers: context.image ? { base: context.image.layersDir, names: context.image.lowerNames } : null,
        mount: context.overlayMount ?? overlayMount(),
      },
      readonlyRootfs: spec.readonlyRootfs,
      rootless: spec.namespaces.user,
      ownProc: spec.namespaces.pid,
      mounts: context.mounts,
      ownFiles: context.ownFiles,
      // Only a network namespace of our own gets a fresh sysfs: the host's sysfs superblock is
      // mounted read-write, so a read-only one for the same namespace is refused with EBUSY.
      ownSysfs: spec.namespaces.net,
      maskedPaths: spec.maskedPaths,
      readonlyPaths: spec.readonlyPaths,
      ...(context.beforeMasks ? { beforeMasks: context.beforeMasks } : {}),
      ...(context.writes ? { writes: context.writes } : {}),
    }));
  }
  if (spec.namespaces.uts) ops.push(op.sethostname({ step: `set hostname ${spec.hostname}`, name: spec.hostname }));
  if (spec.namespaces.net) ops.push(op.loopbackUp({ step: 'bring up lo' }));
  ops.push(...processOps(spec, true));
  return ops;
}

/** setsid: a container process leads a session of its own, with no controlling terminal, so
 * TIOCSTI cannot reach the host's (test/security/tiocsti.test.ts, tiocsti-tty.test.ts). */
function newSessionOps(): PlanOp[] {
  return liftedDefences.hostSession ? [] : [op.setsid({ step: 'start a new session' })];
}

/** A plan without PR_SET_PDEATHSIG, for processes that outlive the command that made them
 * (corral-oci's: their parent is whoever ran it, containerd's shim as subreaper, not us). */
export function withoutParentDeath(ops: PlanOp[]): PlanOp[] {
  return ops.filter((o) => !(o.name === 'PRCTL' && o.fields.option === PR.SET_PDEATHSIG));
}

/** PR_SET_PDEATHSIG: a container process dies with the host process that made it. */
function dieWithParentOp(): PlanOp {
  return op.prctl({ step: 'die with the parent (PR_SET_PDEATHSIG)', option: PR.SET_PDEATHSIG, arg: SIGKILL });
}

/** Entering the working directory: resolved inside the container's root without following magic
 * links (a cwd that is a link to /proc/self/fd/N must not reach a host directory), then checked
 * to be reachable from that root (CVE-2024-21626, test/security/cve-2024-21626-exec-cwd.test.ts). */
function cwdOps(cwd: string): PlanOp[] {
  const step = `change directory to ${cwd}`;
  const enter = liftedDefences.plainChdir ? op.chdir({ step, path: cwd, dir: cwd }) : op.chdirInRoot({ step, path: cwd, dir: cwd });
  if (liftedDefences.noCwdCheck) return [enter];
  return [enter, op.checkCwd({ step: `check that the working directory ${cwd} is inside the root`, path: cwd })];
}

/** Steps shared by the first process and exec'd ones: working directory, limits, user,
 * capabilities (and the seccomp filter here when there is no no_new_privs; see hardening.ts). */
export function processOps(spec: Pick<ResolvedSpec, 'cwd' | 'user' | 'idMap' | 'namespaces' | 'capabilities' | 'hardening'>, firstProcess: boolean): PlanOp[] {
  return [
    ...cwdOps(spec.cwd),
    ...limitOps(spec.hardening, firstProcess),
    ...(spec.hardening.noNewPrivileges ? [] : seccompOp(spec.hardening)),
    op.capbsetLimit({ step: 'limit the capability bounding set', keep: spec.capabilities, lastCap: lastCapability() }),
    ...identityOps(spec),
    op.capset({ step: 'set capabilities', keep: spec.capabilities }),
  ];
}

/** The exec helper's steps before it joins the container's namespaces (CVE-2019-5736: nothing
 * inside may open the joining process's /proc/PID/exe before it execs). */
export function joiningOps(): PlanOp[] {
  return [op.prctl({ step: 'make the joining process non-dumpable', option: PR.SET_DUMPABLE, arg: 0 })];
}

/** Every step of a process exec'd into a running container, once it is forked inside. */
export function joinedProcessOps(spec: Pick<ResolvedSpec, 'cwd' | 'user' | 'idMap' | 'namespaces' | 'capabilities' | 'hardening'>): PlanOp[] {
  return [dieWithParentOp(), ...newSessionOps(), ...processOps(spec, false)];
}

/** The steps right after the command is resolved (before a created container waits for start): the
 * executor's fork that leaves it behind as init (spec.init), then the terminal, which the command
 * gets and the init does not (its master sent on consoleFd, spec.tty). */
export function commandStartOps(spec: Pick<ResolvedSpec, 'init' | 'tty'>, consoleFd: number | null): PlanOp[] {
  const ops: PlanOp[] = [];
  if (spec.init) ops.push(op.init({ step: 'stay behind as the init' }));
  if (spec.tty && consoleFd !== null) {
    const size = spec.tty.size;
    ops.push(op.console({ step: 'open a terminal on /dev/pts/ptmx', path: '/dev/pts/ptmx', socket: consoleFd, rows: size?.rows ?? 0, cols: size?.cols ?? 0 }));
  }
  return ops;
}

/** envp for execve. */
export function envList(env: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

/** The PATH command[0] is looked up in. */
export function searchPath(env: Record<string, string>): string {
  return env.PATH ?? DEFAULT_PATH;
}
