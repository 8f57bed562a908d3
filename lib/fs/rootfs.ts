import { existsSync } from 'node:fs';
import { OP, type PlanOp } from '../spawn/plan.ts';
import { CorralError } from '../sys/errors.ts';
import {
  AT_RECURSIVE, makedev, MOUNT_ATTR_RDONLY, MS, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE, S_IFCHR,
} from '../sys/constants.ts';
import type { Propagation } from './mounts.ts';

/** A mount as the root filesystem plan takes it: volumes are binds of their directory by now. */
export type PlannedMount =
  | { type: 'bind'; source: string; target: string; readonly: boolean; recursive: boolean; propagation: Propagation; sourceIsDir: boolean }
  | { type: 'tmpfs'; target: string; size: number | null; mode: number };

/** How the container's root filesystem is put together. */
export interface RootfsPlan {
  /** A directory to use as root; null means the host root, read-only, with an empty writable /tmp. */
  rootfs: string | null;
  /** An overlay whose upper layer takes the writes (discarded with the container); its lower is
   * the rootfs, or the layers of an image (names relative to base, top first). */
  overlay: { upper: string; work: string; lowers: { base: string; names: string[] } | null } | null;
  /** The root mount read-only (its submounts such as /proc, /dev and volumes keep their own flags). */
  readonlyRootfs: boolean;
  /** True inside a user namespace: devices are bind-mounted from the host, overlay uses userxattr. */
  rootless: boolean;
  /** True with a new PID namespace: a fresh /proc is mounted; otherwise the host's is bound. */
  ownProc: boolean;
  /** True when a fresh sysfs can be mounted (root, or a network namespace of our own); otherwise
   * the host's /sys is bound. Either way /sys is read-only. */
  ownSysfs: boolean;
  mounts: readonly PlannedMount[];
  /** Hidden: /dev/null over files, an empty read-only tmpfs over directories. */
  maskedPaths: readonly string[];
  /** Bound read-only onto themselves. */
  readonlyPaths: readonly string[];
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
const SLOT = { root: 0, dev: 1, scratch: 2, sys: 3, firstSource: 4 } as const;

const PROPAGATION_FLAG: Record<Propagation, number> = {
  private: MS.PRIVATE, rprivate: MS.PRIVATE, slave: MS.SLAVE, rslave: MS.SLAVE, shared: MS.SHARED, rshared: MS.SHARED,
};

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

/** Characters overlayfs cannot take in a lowerdir/upperdir option. */
const OVERLAY_UNSAFE = /[,:\\]/;

/** Opens a path inside the new root (RESOLVE_IN_ROOT: symlinks cannot lead out of it) into a slot. */
function openInRoot(path: string, slot: number, create: 0 | 1 | 2, what: string): PlanOp {
  return { code: OP.OPEN_IN_ROOT, step: `open ${path} inside the root for ${what}`, syscall: 'openat2', path, s: [path], n: [SLOT.root + 1, slot, create] };
}

/** mount(2) onto an fd opened inside the root. */
function mountAt(step: string, path: string, slot: number, source: string | null, fstype: string | null, flags: number, data: string | null = null): PlanOp {
  return { code: OP.MOUNT_AT, step, syscall: 'mount', path, s: [source, null, fstype, data], n: [flags, slot] };
}

/** Ops that build the root filesystem and pivot into it. Everything mounted lives only in the
 * child's mount namespace; every target inside the root is opened with RESOLVE_IN_ROOT, so a
 * symlink in the rootfs (/data -> /etc, -> ../../..) cannot send a mount or a new node outside. */
export function rootfsOps(plan: RootfsPlan): PlanOp[] {
  const root = stagingDir();
  const source = plan.rootfs ?? '/';
  const ops: PlanOp[] = [{ code: OP.UMASK, step: 'set umask', syscall: 'umask', n: [0] }];

  // Bind sources are cloned first: before the tree is made private (so slave/shared propagation can
  // be had) and before the staging mount covers any of them.
  const binds = plan.mounts.filter((m) => m.type === 'bind');
  binds.forEach((m, i) => {
    const slot = SLOT.firstSource + i;
    ops.push({ code: OP.OPEN_TREE, step: `clone the bind mount source ${m.source}`, syscall: 'open_tree', path: m.source, s: [m.source], n: [OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (m.recursive ? AT_RECURSIVE : 0), slot] });
    ops.push({ code: OP.MOUNT_SETATTR, step: `set ${m.readonly ? 'read-only, ' : ''}${m.propagation} on ${m.source}`, syscall: 'mount_setattr', path: m.source, n: [slot, m.readonly ? MOUNT_ATTR_RDONLY : 0, 0, PROPAGATION_FLAG[m.propagation]] });
  });
  const hostProc = 'bind the host /proc';
  if (!plan.ownProc) ops.push({ code: OP.OPEN_TREE, step: hostProc, syscall: 'open_tree', path: '/proc', s: ['/proc'], n: [OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE, SLOT.dev] });
  const hostSys = 'bind the host /sys read-only';
  if (!plan.ownSysfs) {
    ops.push({ code: OP.OPEN_TREE, step: hostSys, syscall: 'open_tree', path: '/sys', s: ['/sys'], n: [OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE, SLOT.sys] });
    ops.push({ code: OP.MOUNT_SETATTR, step: hostSys, syscall: 'mount_setattr', path: '/sys', n: [SLOT.sys, MOUNT_ATTR_RDONLY, 0, MS.PRIVATE] });
  }

  ops.push({ code: OP.MOUNT, step: 'make the mount tree private', syscall: 'mount', path: '/', s: [null, '/', null, null], n: [MS.REC | MS.PRIVATE] });
  if (plan.overlay) {
    const lowers = plan.overlay.lowers;
    const paths = [plan.overlay.upper, plan.overlay.work, ...(lowers ? [lowers.base] : [source])];
    for (const p of paths) {
      if (OVERLAY_UNSAFE.test(p)) throw new CorralError(`overlay cannot take the path ${p} (it has a comma, colon or backslash); use rootfsWritable: 'direct'`, { code: 'ERR_INVALID_SPEC', path: p });
    }
    // An image's layers are named relative to their directory, which the child enters first: the
    // option string must fit in a page, and 200 absolute layer paths would not. 'volatile': the
    // upper layer is thrown away with the container, so overlayfs need not sync it at unmount;
    // no redirect_dir or metacopy (userxattr, rootless, has neither), so the upper directory alone
    // holds every change (for commit).
    if (lowers) ops.push({ code: OP.CHDIR, step: `enter the layer store ${lowers.base}`, syscall: 'chdir', path: lowers.base, s: [lowers.base] });
    const lowerdir = lowers ? (lowers.names.length ? lowers.names.join(':') : null) : source;
    if (lowerdir === null) throw new CorralError('an image without layers cannot be run', { code: 'ERR_INVALID_IMAGE' });
    const data = `lowerdir=${lowerdir},upperdir=${plan.overlay.upper},workdir=${plan.overlay.work},volatile${plan.rootless ? ',userxattr' : ',redirect_dir=off,metacopy=off'}`;
    if (data.length >= 4096) throw new CorralError(`the overlay options take ${data.length} bytes, more than the page the kernel accepts`, { code: 'E2BIG', path: lowers?.base ?? source });
    ops.push({ code: OP.MOUNT, step: `mount an overlay over ${lowers ? `${lowers.names.length} image layers` : source}`, syscall: 'mount', path: lowers?.base ?? source, s: ['overlay', root, 'overlay', data], n: [0] });
  } else {
    ops.push({ code: OP.OPEN_TREE, step: `clone the mount tree of ${source}`, syscall: 'open_tree', path: source, s: [source], n: [OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE, SLOT.root] });
    if (plan.rootfs === null) {
      ops.push({ code: OP.MOUNT_SETATTR, step: `make ${source} read-only`, syscall: 'mount_setattr', path: source, n: [SLOT.root, MOUNT_ATTR_RDONLY, 0, 0] });
    }
    ops.push({ code: OP.MOVE_MOUNT, step: `attach the root at ${root}`, syscall: 'move_mount', path: root, s: [root], n: [SLOT.root] });
  }
  ops.push({ code: OP.OPEN_IN_ROOT, step: 'open the new root', syscall: 'openat', path: root, s: [root], n: [0, SLOT.root, 0] });

  if (plan.ownProc) {
    ops.push(openInRoot('/proc', SLOT.scratch, 1, 'proc'));
    ops.push(mountAt('mount proc on /proc', '/proc', SLOT.scratch, 'proc', 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC));
  } else {
    ops.push(openInRoot('/proc', SLOT.scratch, 1, 'proc'));
    ops.push({ code: OP.MOVE_MOUNT_AT, step: hostProc, syscall: 'move_mount', path: '/proc', n: [SLOT.dev, SLOT.scratch] });
  }
  ops.push(openInRoot('/sys', SLOT.scratch, 1, 'sysfs'));
  ops.push(plan.ownSysfs
    ? mountAt('mount sysfs on /sys read-only', '/sys', SLOT.scratch, 'sysfs', 'sysfs', MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC)
    : { code: OP.MOVE_MOUNT_AT, step: hostSys, syscall: 'move_mount', path: '/sys', n: [SLOT.sys, SLOT.scratch] });
  ops.push(...devOps(plan.rootless));
  if (plan.rootfs === null) {
    ops.push(openInRoot('/tmp', SLOT.scratch, 1, 'tmpfs'));
    ops.push(mountAt('mount tmpfs on /tmp', '/tmp', SLOT.scratch, 'tmpfs', 'tmpfs', MS.NOSUID | MS.NODEV, 'mode=1777'));
  }
  let bindIndex = 0;
  for (const m of plan.mounts) {
    if (m.type === 'bind') {
      ops.push(openInRoot(m.target, SLOT.scratch, m.sourceIsDir ? 1 : 2, `the bind mount of ${m.source}`));
      ops.push({ code: OP.MOVE_MOUNT_AT, step: `bind ${m.source} on ${m.target}`, syscall: 'move_mount', path: m.target, n: [SLOT.firstSource + bindIndex++, SLOT.scratch] });
    } else {
      ops.push(openInRoot(m.target, SLOT.scratch, 1, 'a tmpfs'));
      const data = `mode=${m.mode.toString(8)}${m.size === null ? '' : `,size=${m.size}`}`;
      ops.push(mountAt(`mount tmpfs on ${m.target}`, m.target, SLOT.scratch, 'tmpfs', 'tmpfs', MS.NOSUID | MS.NODEV, data));
    }
  }
  for (const path of plan.maskedPaths) {
    ops.push({ code: OP.MASK_PATH, step: `mask ${path}`, syscall: 'mount', path, s: [path], n: [SLOT.root + 1] });
  }
  for (const path of plan.readonlyPaths) {
    ops.push({ code: OP.READONLY_PATH, step: `make ${path} read-only`, syscall: 'mount_setattr', path, s: [path], n: [SLOT.root + 1] });
  }
  if (plan.readonlyRootfs && plan.rootfs !== null) {
    ops.push({ code: OP.SETATTR_ONE, step: 'make the root read-only', syscall: 'mount_setattr', path: '/', n: [SLOT.root, MOUNT_ATTR_RDONLY] });
  }
  ops.push({ code: OP.PIVOT_ROOT, step: 'pivot_root into the new root', syscall: 'pivot_root', path: root, s: [root] });
  ops.push({ code: OP.UMASK, step: 'set umask', syscall: 'umask', n: [0o022] });
  return ops;
}

/** A fresh tmpfs on /dev with the standard devices, devpts, /dev/shm and the usual links; every
 * node is made relative to the /dev fd, never through a path that could leave the root. */
function devOps(rootless: boolean): PlanOp[] {
  const inDev = SLOT.dev + 1;
  const ops: PlanOp[] = [
    openInRoot('/dev', SLOT.scratch, 1, 'tmpfs'),
    mountAt('mount tmpfs on /dev', '/dev', SLOT.scratch, 'tmpfs', 'tmpfs', MS.NOSUID | MS.STRICTATIME, 'mode=755,size=65536k'),
    openInRoot('/dev', SLOT.dev, 0, 'devices'),
  ];
  for (const [name, major, minor] of DEVICES) {
    const path = `/dev/${name}`;
    if (rootless) {
      ops.push({ code: OP.CREATE_FILE, step: `create ${path}`, syscall: 'openat', path, s: [name], n: [0o666, 0, 0, inDev] });
      ops.push(openInRoot(path, SLOT.scratch, 0, 'a device'));
      ops.push(mountAt(`bind ${path}`, path, SLOT.scratch, path, null, MS.BIND));
    } else {
      ops.push({ code: OP.MKNOD, step: `create ${path}`, syscall: 'mknodat', path, s: [name], n: [S_IFCHR | 0o666, makedev(major, minor), 0, inDev] });
    }
  }
  ops.push({ code: OP.MKDIR, step: 'create /dev/pts', syscall: 'mkdirat', path: '/dev/pts', s: ['pts'], n: [0o755, 0, 0, inDev] });
  ops.push(openInRoot('/dev/pts', SLOT.scratch, 0, 'devpts'));
  ops.push(mountAt('mount devpts on /dev/pts', '/dev/pts', SLOT.scratch, 'devpts', 'devpts', MS.NOSUID | MS.NOEXEC,
    `newinstance,ptmxmode=0666,mode=0620${rootless ? '' : ',gid=5'}`));
  ops.push({ code: OP.MKDIR, step: 'create /dev/shm', syscall: 'mkdirat', path: '/dev/shm', s: ['shm'], n: [0o1777, 0, 0, inDev] });
  ops.push(openInRoot('/dev/shm', SLOT.scratch, 0, 'tmpfs'));
  ops.push(mountAt('mount tmpfs on /dev/shm', '/dev/shm', SLOT.scratch, 'shm', 'tmpfs', MS.NOSUID | MS.NODEV | MS.NOEXEC, 'mode=1777,size=65536k'));
  for (const [target, name] of DEV_LINKS) {
    ops.push({ code: OP.SYMLINK, step: `link /dev/${name}`, syscall: 'symlinkat', path: `/dev/${name}`, s: [target, name], n: [0, 0, 0, inDev] });
  }
  return ops;
}
