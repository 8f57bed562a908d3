import { existsSync } from 'node:fs';
import { OP, type PlanOp } from '../spawn/plan.ts';
import { CorralError } from '../sys/errors.ts';
import {
  AT_RECURSIVE, makedev, MOUNT_ATTR_RDONLY, MS, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE, S_IFCHR,
} from '../sys/constants.ts';

/** How the container's root filesystem is put together. */
export interface RootfsPlan {
  /** A directory to use as root; null means the host root, read-only, with an empty writable /tmp. */
  rootfs: string | null;
  readonly: boolean;
  /** True inside a user namespace: devices are bind-mounted from the host instead of made. */
  rootless: boolean;
  /** True with a new PID namespace: a fresh /proc is mounted; otherwise the host's is bound. */
  ownProc: boolean;
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

function mount(step: string, source: string | null, target: string, fstype: string | null, flags: number, data: string | null = null): PlanOp {
  return { code: OP.MOUNT, step, syscall: 'mount', path: target, s: [source, target, fstype, data], n: [flags] };
}

/** Ops that build the root filesystem and pivot into it: the tree is cloned (open_tree), made
 * read-only if asked, stacked on a staging directory, given /proc, /dev and /tmp, and entered with
 * pivot_root; the old root is detached. */
export function rootfsOps(plan: RootfsPlan): PlanOp[] {
  const root = stagingDir();
  const at = (p: string): string => `${root}${p}`;
  const source = plan.rootfs ?? '/';
  const ops: PlanOp[] = [
    { code: OP.UMASK, step: 'set umask', syscall: 'umask', n: [0] },
    mount('make the mount tree private', null, '/', null, MS.REC | MS.PRIVATE),
    { code: OP.OPEN_TREE, step: `clone the mount tree of ${source}`, syscall: 'open_tree', path: source, s: [source], n: [OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE, 0] },
  ];
  if (plan.readonly) {
    ops.push({ code: OP.MOUNT_SETATTR, step: `make ${source} read-only`, syscall: 'mount_setattr', path: source, n: [0, MOUNT_ATTR_RDONLY, 0, 0] });
  }
  ops.push({ code: OP.MOVE_MOUNT, step: `attach the root at ${root}`, syscall: 'move_mount', path: root, s: [root], n: [0] });

  ops.push(plan.ownProc
    ? mount('mount proc on /proc', 'proc', at('/proc'), 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC)
    : mount('bind the host /proc on /proc', '/proc', at('/proc'), null, MS.BIND | MS.REC));

  ops.push(mount('mount tmpfs on /dev', 'tmpfs', at('/dev'), 'tmpfs', MS.NOSUID | MS.STRICTATIME, 'mode=755,size=65536k'));
  for (const [name, major, minor] of DEVICES) {
    const path = at(`/dev/${name}`);
    if (plan.rootless) {
      ops.push({ code: OP.CREATE_FILE, step: `create /dev/${name}`, syscall: 'open', path, s: [path], n: [0o666] });
      ops.push(mount(`bind /dev/${name}`, `/dev/${name}`, path, null, MS.BIND));
    } else {
      ops.push({ code: OP.MKNOD, step: `create /dev/${name}`, syscall: 'mknod', path, s: [path], n: [S_IFCHR | 0o666, makedev(major, minor)] });
    }
  }
  ops.push({ code: OP.MKDIR, step: 'create /dev/pts', syscall: 'mkdir', path: at('/dev/pts'), s: [at('/dev/pts')], n: [0o755] });
  ops.push(mount('mount devpts on /dev/pts', 'devpts', at('/dev/pts'), 'devpts', MS.NOSUID | MS.NOEXEC,
    `newinstance,ptmxmode=0666,mode=0620${plan.rootless ? '' : ',gid=5'}`));
  ops.push({ code: OP.MKDIR, step: 'create /dev/shm', syscall: 'mkdir', path: at('/dev/shm'), s: [at('/dev/shm')], n: [0o1777] });
  ops.push(mount('mount tmpfs on /dev/shm', 'shm', at('/dev/shm'), 'tmpfs', MS.NOSUID | MS.NODEV | MS.NOEXEC, 'mode=1777,size=65536k'));
  for (const [target, name] of DEV_LINKS) {
    ops.push({ code: OP.SYMLINK, step: `link /dev/${name}`, syscall: 'symlink', path: at(`/dev/${name}`), s: [target, at(`/dev/${name}`)] });
  }
  if (plan.rootfs === null) {
    ops.push(mount('mount tmpfs on /tmp', 'tmpfs', at('/tmp'), 'tmpfs', MS.NOSUID | MS.NODEV, 'mode=1777'));
  }
  ops.push({ code: OP.PIVOT_ROOT, step: 'pivot_root into the new root', syscall: 'pivot_root', path: root, s: [root] });
  ops.push({ code: OP.UMASK, step: 'set umask', syscall: 'umask', n: [0o022] });
  return ops;
}
