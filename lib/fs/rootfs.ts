import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { op, slot, type PlanOp, type Slot } from '../spawn/ops.ts';
import { liftedDefences } from '../spawn/lifted-defences.ts';
import { CorralError } from '../sys/errors.ts';
import {
  AT_RECURSIVE, makedev, MOUNT_ATTR, MS, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE, S_IFCHR,
} from '../sys/constants.ts';
import type { MountFlags, Propagation, TmpfsAtime } from './mounts.ts';
import { overlayOps, type OverlayPlan } from './overlay-mount.ts';

/** A mount as the root filesystem plan takes it: volumes are binds of their directory by now. */
export type PlannedMount =
  | { type: 'bind'; source: string; target: string; readonly: boolean; recursive: boolean; propagation: Propagation; sourceIsDir: boolean } & MountFlags
  | { type: 'tmpfs'; target: string; size: number | null; mode: number; atime?: TmpfsAtime } & MountFlags;

/** A file of the container's own (/etc/hosts and the like): its text, bound over target. */
export interface OwnFile {
  target: string;
  text: string;
}

/** A top-level entry of the host's /: a directory, a file, or a symlink and its target. */
export type HostEntry = { name: string; kind: 'dir' | 'file' } | { name: string; kind: 'link'; target: string };

/** The top-level entries of the host's / (other kinds, such as sockets, are left out) for a
 * container on the host root that needs them: 'system', or a mount target missing on the host;
 * null when a read-only clone of the host's whole tree will do (one clone instead of a bind each). */
export function hostRootEntries(mode: 'full' | 'system', mounts: readonly PlannedMount[]): HostEntry[] | null {
  if (mode === 'full' && mounts.every((m) => existsSync(m.target))) return null;
  mounts.forEach((m, i) => checkHostRootTarget(mode, m.target, mounts.slice(0, i)));
  const entries: HostEntry[] = [];
  for (const e of readdirSync('/', { withFileTypes: true })) {
    if (e.isSymbolicLink()) entries.push({ name: e.name, kind: 'link', target: readlinkSync(`/${e.name}`) });
    else if (e.isDirectory() || e.isFile()) entries.push({ name: e.name, kind: e.isDirectory() ? 'dir' : 'file' });
  }
  return entries;
}

/** A mount target on the host root must be makeable: on the tmpfs the host's entries are bound
 * on, in a fresh directory (/tmp) or on an earlier mount, not inside a host directory, which the
 * container sees read-only (it failed at setup with EROFS; Docker would make it on the host). */
function checkHostRootTarget(mode: 'full' | 'system', target: string, earlier: readonly PlannedMount[]): void {
  if (existsSync(target)) return;
  let parent = dirname(target);
  while (!existsSync(parent)) parent = dirname(parent);
  const top = target.split('/')[1]!;
  const fromHost = parent !== '/' && !FRESH_DIRS.has(top) && (mode === 'full' || SYSTEM_DIRS.test(top));
  const onEarlier = earlier.some((m) => target.startsWith(`${m.target}/`));
  if (!fromHost || onEarlier) return;
  const next = target.indexOf('/', parent.length + 1);
  const missing = next < 0 ? target : target.slice(0, next);
  throw new CorralError(`cannot mount on ${target}: ${missing} does not exist in the host's ${parent}, which a container on the host root sees read-only; make it on the host, or mount on a path whose parent exists (or at the top level, such as /${target.split('/').at(-1)})`, {
    code: 'EROFS', errno: 30, syscall: 'mkdirat', path: target, step: 'check the mount targets on the host root',
  });
}

/** How the container's root filesystem is put together. */
export interface RootfsPlan {
  /** A directory to use as root; null means the host root, read-only, with an empty writable /tmp. */
  rootfs: string | null;
  /** With the host root: 'full', every top-level directory of the host; 'system', only the OS
   * directories (SYSTEM_DIRS) with /etc's secrets masked, and an empty /home and /root. */
  hostRoot: 'full' | 'system';
  /** The host root's top-level entries (hostRootEntries()) to bind on a tmpfs; null: the host's
   * tree is cloned whole, read-only. */
  hostEntries: readonly HostEntry[] | null;
  /** An overlay whose upper layer takes the writes (discarded with the container): in layer's
   * directories, or 'memory', a tmpfs in the child's own mount namespace (gone with it); its lower
   * is the rootfs, or the layers of an image (names relative to base, top first); mounted from fds
   * or paths (overlay-mount.ts). */
  overlay: (Pick<OverlayPlan, 'layer' | 'mount'> & { lowers: { base: string; names: readonly string[] } | null }) | null;
  /** The root mount read-only (its submounts such as /proc, /dev and volumes keep their own flags). */
  readonlyRootfs: boolean;
  /** True inside a user namespace: devices are bind-mounted from the host, overlay uses userxattr. */
  rootless: boolean;
  /** True with a new PID namespace: a fresh /proc is mounted; otherwise the host's is bound. */
  ownProc: boolean;
  /** True when a fresh sysfs can be mounted (a network namespace of our own); otherwise the
   * host's /sys is bound. Either way /sys is read-only. */
  ownSysfs: boolean;
  mounts: readonly PlannedMount[];
  /** Files written to a tmpfs of the container's own and bound over their targets before the
   * mounts (which may cover them); the root itself is never written to. */
  ownFiles: readonly OwnFile[];
  /** Hidden: /dev/null over files, an empty read-only tmpfs over directories. */
  maskedPaths: readonly string[];
  /** Bound read-only onto themselves. */
  readonlyPaths: readonly string[];
  /** Steps once every mount is in place, before the masks, the read-only paths and pivot_root
   * (corral-oci's pause for its createRuntime hooks, as runc's). */
  beforeMasks?: readonly PlanOp[];
  /** Existing files written inside the root then, /proc/sys ones (corral-oci's linux.sysctl). */
  writes?: readonly { path: string; text: string }[];
}

/** The standard devices every container gets: name, major, minor. */
const DEVICES: readonly [string, number, number][] = [
  ['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0],
];

const DEV_LINKS: readonly [string, string][] = [
  ['/proc/self/fd', 'fd'], ['/proc/self/fd/0', 'stdin'], ['/proc/self/fd/1', 'stdout'],
  ['/proc/self/fd/2', 'stderr'], ['pts/ptmx', 'ptmx'],
];

const STAGING_CANDIDATES = ['/tmp', '/mnt', '/run', '/var/tmp'];

/** Slots (fds in the child, bindings/executor.c) the plan uses: fixed ones, then one per bind source. */
const SLOT = {
  root: slot(0), dev: slot(1), scratch: slot(2), sys: slot(3), host: slot(4),
  // the overlay's (overlay-mount.ts): its context, its writable layer, upper, work, and the staging directory
  fsContext: slot(5), layer: slot(6), upper: slot(7), work: slot(8), staging: slot(9),
  // the tmpfs of the container's own files when it has no in-memory writable layer (ownFileOps)
  own: slot(10),
} as const;
const FIRST_SOURCE_SLOT = 11;

/** Top-level host entries a container on the host root never gets from the host: made fresh. */
const FRESH_DIRS = new Set(['proc', 'sys', 'dev', 'tmp']);

/** The host's OS directories, all that hostRoot 'system' shows. */
const SYSTEM_DIRS = /^(usr|bin|sbin|lib|lib32|lib64|libx32|etc)$/;

/** Under /etc, hidden from hostRoot 'system' (password hashes, host keys, sudo rules). */
const ETC_SECRETS = ['/etc/shadow', '/etc/shadow-', '/etc/gshadow', '/etc/gshadow-', '/etc/ssh', '/etc/sudoers', '/etc/sudoers.d', '/etc/ssl/private'];

const PROPAGATION_FLAG: Record<Propagation, number> = {
  private: MS.PRIVATE, rprivate: MS.PRIVATE, slave: MS.SLAVE, rslave: MS.SLAVE, shared: MS.SHARED, rshared: MS.SHARED,
};

/** open_tree flags for a detached copy of a mount tree. */
const CLONE_TREE = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE;

let staging: string | undefined;

/** The host directory the new root is stacked on inside the child's mount namespace (the host
 * never sees that mount); any existing directory will do. */
function stagingDir(): string {
  staging ??= STAGING_CANDIDATES.find((d) => existsSync(d));
  if (!staging) {
    throw new CorralError(`no staging directory for the container root: none of ${STAGING_CANDIDATES.join(', ')} exists`, { code: 'ENOENT', path: STAGING_CANDIDATES[0]!, step: 'find a staging directory' });
  }
  return staging;
}

/** Opens a path inside the new root (RESOLVE_IN_ROOT: symlinks cannot lead out of it) into a slot. */
function openInRoot(path: string, into: Slot, create: 'none' | 'dirs' | 'file', what: string): PlanOp {
  return op.openInRoot({ step: `open ${path} inside the root for ${what}`, path, root: SLOT.root, inRoot: path, into, create });
}

/** mount(2) onto an fd opened inside the root. */
function mountAt(step: string, path: string, at: Slot, source: string | null, fstype: string | null, flags: number, data: string | null = null): PlanOp {
  return op.mountAt({ step, path, slot: at, source, fstype, flags, data });
}

/** Ops that build the root filesystem and pivot into it. Everything mounted lives only in the
 * child's mount namespace; every target inside the root is opened with RESOLVE_IN_ROOT, so a
 * symlink in the rootfs (/data -> /etc, -> ../../..) cannot send a mount or a new node outside.
 * Every mount but /dev (and its devpts) is nodev, so a device node that comes with an image, a bind
 * or a volume, or is made in a writable place, cannot be opened (test/security/device-nodes-nodev.test.ts). */
export function rootfsOps(plan: RootfsPlan): PlanOp[] {
  const root = stagingDir();
  const source = plan.rootfs ?? '/';
  const nodev = liftedDefences.devNodes ? 0 : MS.NODEV;
  const attrNodev = liftedDefences.devNodes ? 0 : MOUNT_ATTR.NODEV;
  const ops: PlanOp[] = [op.umask({ step: 'set umask', mask: 0 })];
  const onHostRoot = plan.rootfs === null && !plan.overlay;
  const skeleton = onHostRoot ? plan.hostEntries : null;

  // Bind sources are cloned first: before the tree is made private (so slave/shared propagation can
  // be had) and before the staging mount covers any of them.
  const binds = plan.mounts.filter((m) => m.type === 'bind');
  binds.forEach((m, i) => {
    const into = slot(FIRST_SOURCE_SLOT + i);
    ops.push(op.openTree({ step: `clone the bind mount source ${m.source}`, path: m.source, source: m.source, flags: m.recursive ? CLONE_TREE : CLONE_TREE & ~AT_RECURSIVE, into }));
    const set = (m.readonly ? MOUNT_ATTR.RDONLY : 0) | (m.nosuid ? MOUNT_ATTR.NOSUID : 0) | (m.noexec ? MOUNT_ATTR.NOEXEC : 0) | attrNodev;
    const named = [m.readonly && 'read-only', m.nosuid && 'nosuid', m.noexec && 'noexec', m.propagation].filter(Boolean).join(', ');
    ops.push(op.mountSetattr({ step: `set ${named} on ${m.source}`, path: m.source, slot: into, set, clear: 0, propagation: PROPAGATION_FLAG[m.propagation] }));
  });
  const hostProc = 'bind the host /proc';
  if (!plan.ownProc) {
    ops.push(op.openTree({ step: hostProc, path: '/proc', source: '/proc', flags: CLONE_TREE, into: SLOT.dev }));
    ops.push(op.mountSetattr({ step: hostProc, path: '/proc', slot: SLOT.dev, set: MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC, clear: 0, propagation: 0 }));
  }
  const hostSys = 'bind the host /sys read-only';
  if (!plan.ownSysfs) {
    ops.push(op.openTree({ step: hostSys, path: '/sys', source: '/sys', flags: CLONE_TREE, into: SLOT.sys }));
    ops.push(op.mountSetattr({ step: hostSys, path: '/sys', slot: SLOT.sys, set: MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV | MOUNT_ATTR.NOEXEC, clear: 0, propagation: MS.PRIVATE }));
  }

  ops.push(op.mount({ step: 'make the mount tree private', path: '/', source: null, target: '/', fstype: null, data: null, flags: MS.REC | MS.PRIVATE }));
  if (plan.overlay) {
    ops.push(...overlayOps({ ...plan.overlay, lowers: plan.overlay.lowers ?? { dir: source }, rootless: plan.rootless, nodev: !liftedDefences.devNodes }, root, {
      context: SLOT.fsContext, layer: SLOT.layer, upper: SLOT.upper, work: SLOT.work, lowers: SLOT.scratch, park: SLOT.staging, mounted: SLOT.root,
    }));
  } else if (skeleton) {
    ops.push(op.mount({ step: `mount tmpfs on ${root} for the host root`, path: root, source: 'tmpfs', target: root, fstype: 'tmpfs', data: 'mode=755', flags: MS.NOSUID | nodev }));
  } else {
    ops.push(op.openTree({ step: `clone the mount tree of ${source}`, path: source, source, flags: CLONE_TREE, into: SLOT.root }));
    const set = (onHostRoot ? MOUNT_ATTR.RDONLY : 0) | attrNodev;
    if (set) ops.push(op.mountSetattr({ step: `make ${source} ${onHostRoot ? 'read-only, ' : ''}nodev`, path: source, slot: SLOT.root, set, clear: 0, propagation: 0 }));
    ops.push(op.moveMount({ step: `attach the root at ${root}`, path: root, slot: SLOT.root, target: root }));
  }
  ops.push(op.openInRoot({ step: 'open the new root', path: root, root: null, inRoot: root, into: SLOT.root, create: 'none' }));
  if (skeleton) ops.push(...hostRootOps(plan.hostRoot, skeleton, root, attrNodev, nodev));

  ops.push(openInRoot('/proc', SLOT.scratch, 'dirs', 'proc'));
  ops.push(plan.ownProc
    ? mountAt('mount proc on /proc', '/proc', SLOT.scratch, 'proc', 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC)
    : op.moveMountAt({ step: hostProc, path: '/proc', from: SLOT.dev, to: SLOT.scratch }));
  ops.push(openInRoot('/sys', SLOT.scratch, 'dirs', 'sysfs'));
  ops.push(plan.ownSysfs
    ? mountAt('mount sysfs on /sys read-only', '/sys', SLOT.scratch, 'sysfs', 'sysfs', MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC)
    : op.moveMountAt({ step: hostSys, path: '/sys', from: SLOT.sys, to: SLOT.scratch }));
  if (plan.ownFiles.length > 0) ops.push(...ownFileOps(plan.ownFiles, root, plan.overlay?.layer === 'memory'));
  ops.push(...devOps(plan.rootless, nodev));
  if (plan.rootfs === null) {
    ops.push(openInRoot('/tmp', SLOT.scratch, 'dirs', 'tmpfs'));
    ops.push(mountAt('mount tmpfs on /tmp', '/tmp', SLOT.scratch, 'tmpfs', 'tmpfs', MS.NOSUID | nodev, 'mode=1777'));
  }
  let bindIndex = 0;
  for (const m of plan.mounts) {
    if (m.type === 'bind') {
      ops.push(openInRoot(m.target, SLOT.scratch, m.sourceIsDir ? 'dirs' : 'file', `the bind mount of ${m.source}`));
      ops.push(op.moveMountAt({ step: `bind ${m.source} on ${m.target}`, path: m.target, from: slot(FIRST_SOURCE_SLOT + bindIndex++), to: SLOT.scratch }));
    } else {
      ops.push(openInRoot(m.target, SLOT.scratch, 'dirs', 'a tmpfs'));
      const data = `mode=${m.mode.toString(8)}${m.size === null ? '' : `,size=${m.size}`}`;
      const flags = MS.NOSUID | nodev | (m.noexec ? MS.NOEXEC : 0) | (m.atime === 'strictatime' ? MS.STRICTATIME : m.atime === 'noatime' ? MS.NOATIME : 0);
      ops.push(mountAt(`mount tmpfs on ${m.target}`, m.target, SLOT.scratch, 'tmpfs', 'tmpfs', flags, data));
    }
  }
  ops.push(...(plan.beforeMasks ?? []));
  for (const w of plan.writes ?? []) ops.push(op.writeInRoot({ step: `write ${w.text} to ${w.path}`, path: w.path, root: SLOT.root, inRoot: w.path, text: w.text }));
  const masked = onHostRoot && plan.hostRoot === 'system' ? [...plan.maskedPaths, ...ETC_SECRETS] : plan.maskedPaths;
  for (const path of masked) ops.push(op.maskPath({ step: `mask ${path}`, path, root: SLOT.root, target: path }));
  for (const path of plan.readonlyPaths) ops.push(op.readonlyPath({ step: `make ${path} read-only`, path, root: SLOT.root, target: path }));
  // The host root's tmpfs, once every mount target on it is made: read-only like the host's.
  if (plan.readonlyRootfs || skeleton) {
    ops.push(op.setattrOne({ step: 'make the root read-only', path: '/', slot: SLOT.root, set: MOUNT_ATTR.RDONLY }));
  }
  ops.push(op.pivotRoot({ step: 'pivot_root into the new root', path: root, newRoot: root }));
  // Nothing the setup held stays open while the container's own paths are resolved (CVE-2024-21626).
  ops.push(op.closeSlots({ step: 'close the setup fds' }));
  ops.push(op.umask({ step: 'set umask', mask: 0o022 }));
  return ops;
}

/** The host root on a tmpfs (so a mount target missing on the host can be made, in memory): each
 * top-level entry of the host's / is a read-only recursive bind of it, a symlink a symlink; /proc,
 * /sys, /dev and /tmp are made fresh, the staging directory is left out (the new root covers it).
 * 'system': only the OS directories, and empty /home and /root. */
function hostRootOps(mode: 'full' | 'system', entries: readonly HostEntry[], staging: string, attrNodev: number, nodev: number): PlanOp[] {
  const ops: PlanOp[] = [];
  const skip = staging.split('/')[1];
  for (const entry of entries) {
    const name = entry.name;
    const path = `/${name}`;
    if (FRESH_DIRS.has(name) || name === skip || (mode === 'system' && !SYSTEM_DIRS.test(name))) continue;
    if (entry.kind === 'link') {
      ops.push(op.symlink({ step: `link ${path} as on the host`, path, target: entry.target, name, dir: SLOT.root }));
      continue;
    }
    const step = `bind the host ${path} read-only`;
    ops.push(op.openTree({ step, path, source: path, flags: CLONE_TREE, into: SLOT.host }));
    ops.push(op.mountSetattr({ step, path, slot: SLOT.host, set: MOUNT_ATTR.RDONLY | attrNodev, clear: 0, propagation: MS.PRIVATE }));
    ops.push(openInRoot(path, SLOT.scratch, entry.kind === 'dir' ? 'dirs' : 'file', 'the host root'));
    ops.push(op.moveMountAt({ step, path, from: SLOT.host, to: SLOT.scratch }));
  }
  if (mode === 'system') {
    for (const [path, mode] of [['/home', '755'], ['/root', '700']] as const) {
      ops.push(openInRoot(path, SLOT.scratch, 'dirs', 'an empty home'));
      ops.push(mountAt(`mount tmpfs on ${path}`, path, SLOT.scratch, 'tmpfs', 'tmpfs', MS.NOSUID | nodev, `mode=${mode}`));
    }
  }
  return ops;
}

/** The container's own files, each bound over its target, which is resolved inside the root: an
 * image's /etc/hosts that links to a host path leads to that path inside the root, never out of it
 * (test/security/etc-files-host-link.test.ts). They are made on a tmpfs nothing inside reaches by
 * path, gone with the mount namespace: the in-memory writable layer's (inMemoryUpper: its tmpfs
 * stays open in SLOT.layer, overlay-mount.ts), or one mounted on the root's /dev and then covered
 * by /dev's own. */
function ownFileOps(files: readonly OwnFile[], staging: string, inMemoryUpper: boolean): PlanOp[] {
  const dir = inMemoryUpper ? SLOT.layer : SLOT.own;
  const ops: PlanOp[] = inMemoryUpper ? [] : [
    openInRoot('/dev', SLOT.scratch, 'dirs', "the container's own files"),
    mountAt("mount a tmpfs for the container's own files on /dev (covered by /dev's)", '/dev', SLOT.scratch, 'tmpfs', 'tmpfs', MS.NOSUID | MS.NODEV | MS.NOEXEC, 'mode=755'),
    openInRoot('/dev', SLOT.own, 'none', "the container's own files"),
  ];
  const onHost = liftedDefences.ownFilesOnHostPaths;
  for (const f of files) {
    ops.push(op.bindOwnFile({
      step: `bind the container's own ${f.target}`, path: f.target, root: onHost ? null : SLOT.root, dir,
      inRoot: onHost ? `${staging}${f.target}` : f.target, text: f.text, name: f.target.slice(f.target.lastIndexOf('/') + 1),
    }));
  }
  return ops;
}

/** A fresh tmpfs on /dev with the standard devices, devpts, /dev/shm and the usual links; every
 * node is made relative to the /dev fd, never through a path that could leave the root. */
function devOps(rootless: boolean, nodev: number): PlanOp[] {
  const inDev = SLOT.dev;
  const ops: PlanOp[] = [
    openInRoot('/dev', SLOT.scratch, 'dirs', 'tmpfs'),
    mountAt('mount tmpfs on /dev', '/dev', SLOT.scratch, 'tmpfs', 'tmpfs', MS.NOSUID | MS.STRICTATIME, 'mode=755,size=65536k'),
    openInRoot('/dev', SLOT.dev, 'none', 'devices'),
  ];
  for (const [name, major, minor] of DEVICES) {
    const path = `/dev/${name}`;
    if (rootless) {
      ops.push(op.createFile({ step: `create ${path}`, path, name, mode: 0o666, dir: inDev }));
      ops.push(openInRoot(path, SLOT.scratch, 'none', 'a device'));
      ops.push(mountAt(`bind ${path}`, path, SLOT.scratch, path, null, MS.BIND));
    } else {
      ops.push(op.mknod({ step: `create ${path}`, path, name, mode: S_IFCHR | 0o666, dev: makedev(major, minor), dir: inDev }));
    }
  }
  ops.push(op.mkdir({ step: 'create /dev/pts', path: '/dev/pts', name: 'pts', mode: 0o755, dir: inDev }));
  ops.push(openInRoot('/dev/pts', SLOT.scratch, 'none', 'devpts'));
  ops.push(mountAt('mount devpts on /dev/pts', '/dev/pts', SLOT.scratch, 'devpts', 'devpts', MS.NOSUID | MS.NOEXEC,
    `newinstance,ptmxmode=0666,mode=0620${rootless ? '' : ',gid=5'}`));
  ops.push(op.mkdir({ step: 'create /dev/shm', path: '/dev/shm', name: 'shm', mode: 0o1777, dir: inDev }));
  ops.push(openInRoot('/dev/shm', SLOT.scratch, 'none', 'tmpfs'));
  ops.push(mountAt('mount tmpfs on /dev/shm', '/dev/shm', SLOT.scratch, 'shm', 'tmpfs', MS.NOSUID | nodev | MS.NOEXEC, 'mode=1777,size=65536k'));
  for (const [target, name] of DEV_LINKS) {
    ops.push(op.symlink({ step: `link /dev/${name}`, path: `/dev/${name}`, target, name, dir: inDev }));
  }
  return ops;
}
