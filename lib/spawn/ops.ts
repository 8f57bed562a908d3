/** The setup plan's operations, one builder per op of bindings/plan.h: named fields in, the op's
 * code and its n/s words out (the layout plan.h documents), plus the words that name it in an error. */

/** Op codes, as in bindings/plan.h (test/unit/plan.test.ts checks that they agree). */
export const OP = {
  USERNS_MAPS: 1,
  PRCTL: 2,
  SETSID: 3,
  MOUNT: 4,
  OPEN_TREE: 5,
  MOUNT_SETATTR: 6,
  MOVE_MOUNT: 7,
  MKDIR: 8,
  MKNOD: 9,
  CREATE_FILE: 10,
  SYMLINK: 11,
  PIVOT_ROOT: 12,
  SETHOSTNAME: 13,
  LOOPBACK_UP: 14,
  CHDIR: 15,
  SETGROUPS: 16,
  SETRESGID: 17,
  SETRESUID: 18,
  DUP2: 19,
  CLOSE_FDS: 20,
  RESOLVE_COMMAND: 21,
  WAIT_START: 22,
  SETNS: 23,
  FORK_INTO_PARENT: 24,
  EXEC: 25,
  UMASK: 26,
  CLOEXEC_FROM: 27,
  CAPBSET_LIMIT: 28,
  CAPSET: 29,
  UNSHARE: 30,
  OPEN_IN_ROOT: 31,
  MOUNT_AT: 32,
  MOVE_MOUNT_AT: 33,
  SETATTR_ONE: 34,
  SECCOMP: 35,
  SETRLIMIT: 36,
  WRITE_FILE: 37,
  MASK_PATH: 38,
  READONLY_PATH: 39,
  CHDIR_IN_ROOT: 40,
  CHECK_CWD: 41,
  CLOSE_SLOTS: 42,
  REEXEC: 43,
  CONSOLE: 44,
  INIT: 45,
  AWAIT_MAPS: 46,
  CHOWN_IN_ROOT: 47,
  BIND_OWN_FILE: 48,
  FSOPEN: 49,
  FSCONFIG: 50,
  OVERLAY_LOWERS: 51,
  FSMOUNT: 52,
  EXIT: 53,
  WRITE_IN_ROOT: 70,
} as const;

/** The name of an op code. */
export type OpName = keyof typeof OP;

/** How many fds the executor can hold across steps (SLOT_COUNT in bindings/executor.c). */
export const SLOT_COUNT = 64;

declare const slotBrand: unique symbol;
/** An index into the executor's table of held fds: not an fd, so the two cannot be mixed up. */
export type Slot = number & { readonly [slotBrand]: true };

/** A slot number, checked against the executor's table. */
export function slot(index: number): Slot {
  if (!Number.isInteger(index) || index < 0 || index >= SLOT_COUNT) throw new RangeError(`slot ${index} is outside the executor's ${SLOT_COUNT} slots`);
  return index as Slot;
}

/** The words of one op as plan.h lays them out, before strings and lists get their offsets. */
export interface OpWords {
  n?: readonly (number | bigint)[];
  s?: readonly (string | null)[];
  /** String lists (argv, envp) in place of s[i]; the executor needs pointer scratch at n[i]. */
  lists?: readonly (readonly string[] | undefined)[];
  /** u32 lists (fds to keep, groups) in place of s[i]. */
  u32Lists?: readonly (readonly number[] | undefined)[];
  /** Raw bytes (a BPF program), 8-byte aligned: offset in s[0], length in n[0]. */
  blob?: Buffer;
}

/** One planned operation: what it is (name and named fields, for reading plans), how it is encoded,
 * and the words that name it in an error. */
export interface PlanOp {
  name: OpName;
  code: number;
  fields: Readonly<Record<string, unknown>>;
  words: OpWords;
  /** What this step does, e.g. "mount proc on /proc". */
  step: string;
  /** The system call that can fail, reported in errors. */
  syscall: string;
  /** The path the step works on, reported in errors. */
  path?: string;
}

/** What every builder takes besides the op's own fields. */
interface Describe {
  step: string;
  path?: string;
}

/** A "dir" field: a slot, or null for the current directory (encoded as slot + 1, 0 for none). */
const dirWord = (dir: Slot | null): number => (dir === null ? 0 : dir + 1);

function define<F extends object>(name: OpName, syscall: string | ((f: F) => string), words: (f: F) => OpWords) {
  return (f: F & Describe): PlanOp => {
    const { step, path, ...fields } = f;
    return {
      name, code: OP[name], fields, words: words(f), step,
      syscall: typeof syscall === 'string' ? syscall : syscall(f),
      ...(path === undefined ? {} : { path }),
    };
  };
}

/** How OPEN_IN_ROOT creates what is missing. */
const CREATE = { none: 0, dirs: 1, file: 2 } as const;

/** fsconfig(2) commands: a flag, a string value, an fd (a slot's), or creating the superblock. */
const FSCONFIG = { flag: 0, string: 1, fd: 5, create: 6 } as const;

/** One builder per op of bindings/plan.h. */
export const op = {
  /** Writes the single-line uid and gid maps of a fresh user namespace (setgroups denied). */
  usernsMaps: define<{ uidMap: string; gidMap: string }>('USERNS_MAPS', 'write', (f) => ({ s: [f.uidMap, f.gidMap] })),
  prctl: define<{ option: number; arg: number }>('PRCTL', 'prctl', (f) => ({ n: [f.option, f.arg] })),
  setsid: define<object>('SETSID', 'setsid', () => ({})),
  mount: define<{ source: string | null; target: string; fstype: string | null; data: string | null; flags: number }>(
    'MOUNT', 'mount', (f) => ({ s: [f.source, f.target, f.fstype, f.data], n: [f.flags] })),
  /** open_tree(2) of a host path into a slot. */
  openTree: define<{ source: string; flags: number; into: Slot }>('OPEN_TREE', 'open_tree', (f) => ({ s: [f.source], n: [f.flags, f.into] })),
  /** mount_setattr(2) on a slot's mount and its submounts. */
  mountSetattr: define<{ slot: Slot; set: number; clear: number; propagation: number }>(
    'MOUNT_SETATTR', 'mount_setattr', (f) => ({ n: [f.slot, f.set, f.clear, f.propagation] })),
  moveMount: define<{ slot: Slot; target: string }>('MOVE_MOUNT', 'move_mount', (f) => ({ s: [f.target], n: [f.slot] })),
  /** mkdirat(2) in a slot's directory; EEXIST is fine. */
  mkdir: define<{ name: string; mode: number; dir: Slot | null }>('MKDIR', 'mkdirat', (f) => ({ s: [f.name], n: [f.mode, 0, 0, dirWord(f.dir)] })),
  mknod: define<{ name: string; mode: number; dev: number; dir: Slot | null }>('MKNOD', 'mknodat', (f) => ({ s: [f.name], n: [f.mode, f.dev, 0, dirWord(f.dir)] })),
  createFile: define<{ name: string; mode: number; dir: Slot | null }>('CREATE_FILE', 'openat', (f) => ({ s: [f.name], n: [f.mode, 0, 0, dirWord(f.dir)] })),
  symlink: define<{ target: string; name: string; dir: Slot | null }>('SYMLINK', 'symlinkat', (f) => ({ s: [f.target, f.name], n: [0, 0, 0, dirWord(f.dir)] })),
  pivotRoot: define<{ newRoot: string }>('PIVOT_ROOT', 'pivot_root', (f) => ({ s: [f.newRoot] })),
  sethostname: define<{ name: string }>('SETHOSTNAME', 'sethostname', (f) => ({ s: [f.name] })),
  loopbackUp: define<object>('LOOPBACK_UP', 'ioctl', () => ({})),
  /** chdir(2) on a host path, before the root is entered (the layer store). */
  chdir: define<{ dir: string }>('CHDIR', 'chdir', (f) => ({ s: [f.dir] })),
  setgroups: define<{ gids: readonly number[] }>('SETGROUPS', 'setgroups', (f) => ({ u32Lists: [f.gids] })),
  setresgid: define<{ gid: number }>('SETRESGID', 'setresgid', (f) => ({ n: [f.gid] })),
  setresuid: define<{ uid: number }>('SETRESUID', 'setresuid', (f) => ({ n: [f.uid] })),
  /** dup3(from, to); from == to clears close-on-exec. */
  dup2: define<{ from: number; to: number }>('DUP2', 'dup3', (f) => ({ n: [f.from, f.to] })),
  /** Closes every fd but those kept. */
  closeFds: define<{ keep: readonly number[] }>('CLOSE_FDS', 'close_range', (f) => ({ u32Lists: [[...new Set(f.keep)].sort((a, b) => a - b)] })),
  resolveCommand: define<{ name: string; searchPath: string }>('RESOLVE_COMMAND', 'execve', (f) => ({ s: [f.name, f.searchPath] })),
  /** Reports ready, then blocks until the parent writes a byte to the start pipe. */
  waitStart: define<{ fd: number }>('WAIT_START', 'read', (f) => ({ n: [f.fd] })),
  setns: define<{ fd: number; nstype: bigint }>('SETNS', 'setns', (f) => ({ n: [f.fd, f.nstype] })),
  /** Forks a sibling (CLONE_PARENT), born in cgroupFd's group when >= 0, that goes on with the plan;
   * shareMemory: it shares the forking process's memory until it execs (CLONE_VM|CLONE_VFORK),
   * which waits for that (before the exec of the executor image, so only one process execs it). */
  forkIntoParent: define<{ cgroupFd: number; shareMemory?: boolean }>('FORK_INTO_PARENT', 'clone3', (f) => ({ n: [f.cgroupFd, f.shareMemory ? 1 : 0] })),
  exec: define<{ argv: readonly string[]; envp: readonly string[] }>('EXEC', 'execve', (f) => ({ lists: [f.argv, f.envp] })),
  umask: define<{ mask: number }>('UMASK', 'umask', (f) => ({ n: [f.mask] })),
  cloexecFrom: define<{ fd: number }>('CLOEXEC_FROM', 'close_range', (f) => ({ n: [f.fd] })),
  capbsetLimit: define<{ keep: bigint; lastCap: number }>('CAPBSET_LIMIT', 'prctl', (f) => ({ n: [f.keep, f.lastCap] })),
  capset: define<{ keep: bigint }>('CAPSET', 'capset', (f) => ({ n: [f.keep] })),
  unshare: define<{ flags: bigint }>('UNSHARE', 'unshare', (f) => ({ n: [f.flags] })),
  /** Opens a path inside a root (RESOLVE_IN_ROOT; root null: a plain open) into a slot, creating
   * missing directories, or missing directories and the file. */
  openInRoot: define<{ root: Slot | null; inRoot: string; into: Slot; create: keyof typeof CREATE }>(
    'OPEN_IN_ROOT', (f) => (f.root === null ? 'openat' : 'openat2'), (f) => ({ s: [f.inRoot], n: [dirWord(f.root), f.into, CREATE[f.create]] })),
  /** mount(2) onto a slot's fd. */
  mountAt: define<{ source: string | null; slot: Slot; fstype: string | null; data: string | null; flags: number }>(
    'MOUNT_AT', 'mount', (f) => ({ s: [f.source, null, f.fstype, f.data], n: [f.flags, f.slot] })),
  moveMountAt: define<{ from: Slot; to: Slot }>('MOVE_MOUNT_AT', 'move_mount', (f) => ({ n: [f.from, f.to] })),
  /** mount_setattr(2) on one mount, not its submounts. */
  setattrOne: define<{ slot: Slot; set: number }>('SETATTR_ONE', 'mount_setattr', (f) => ({ n: [f.slot, f.set] })),
  seccomp: define<{ program: Buffer }>('SECCOMP', 'seccomp', (f) => ({ blob: f.program })),
  setrlimit: define<{ resource: number; soft: bigint; hard: bigint }>('SETRLIMIT', 'prlimit64', (f) => ({ n: [f.resource, f.soft, f.hard] })),
  writeFile: define<{ file: string; text: string }>('WRITE_FILE', 'write', (f) => ({ s: [f.file, f.text] })),
  /** Writes text to an existing file resolved inside a root (a sysctl under its /proc/sys). */
  writeInRoot: define<{ root: Slot | null; inRoot: string; text: string }>('WRITE_IN_ROOT', 'openat2', (f) => ({ s: [f.inRoot, f.text], n: [dirWord(f.root)] })),
  maskPath: define<{ root: Slot | null; target: string }>('MASK_PATH', 'mount', (f) => ({ s: [f.target], n: [dirWord(f.root)] })),
  readonlyPath: define<{ root: Slot | null; target: string }>('READONLY_PATH', 'mount_setattr', (f) => ({ s: [f.target], n: [dirWord(f.root)] })),
  /** The working directory, resolved inside the process root (no magic links), entered with fchdir. */
  chdirInRoot: define<{ dir: string }>('CHDIR_IN_ROOT', 'chdir', (f) => ({ s: [f.dir] })),
  /** Fails unless the working directory is reachable from the process root (getcwd). */
  checkCwd: define<object>('CHECK_CWD', 'getcwd', () => ({})),
  /** Closes every fd the slots hold. */
  closeSlots: define<object>('CLOSE_SLOTS', 'close', () => ({})),
  /** Execs the sealed executor image (fd exe), which goes on with the next op; keep: the fds the
   * rest of the plan uses, kept open across that exec. */
  reexec: define<{ exe: number; keep: readonly number[] }>('REEXEC', 'execveat', (f) => ({ n: [f.exe], u32Lists: [[...new Set(f.keep)].sort((a, b) => a - b)] })),
  /** A pty from the process root's /dev/pts/ptmx: master sent on socket (SCM_RIGHTS), slave the
   * controlling terminal and fds 0-2; rows and cols 0 leave the size as it is. */
  console: define<{ socket: number; rows: number; cols: number }>('CONSOLE', 'ioctl', (f) => ({ n: [f.socket, f.rows, f.cols] })),
  /** Forks: the executor stays as an init that forwards signals and reaps; the child goes on. */
  init: define<object>('INIT', 'clone3', () => ({})),
  /** Blocks until the parent wrote the user namespace's maps (newuidmap) and a byte to the pipe. */
  awaitMaps: define<{ fd: number }>('AWAIT_MAPS', 'read', (f) => ({ n: [f.fd] })),
  /** Gives a file inside a root dir (no symlink followed) an owner, and its mode again when given
   * (chown clears set-id bits). */
  /** fsopen(2): a filesystem context in a slot, configured with fsconfig, mounted with fsmount. */
  fsopen: define<{ fstype: string; into: Slot }>('FSOPEN', 'fsopen', (f) => ({ s: [f.fstype], n: [f.into] })),
  /** fsconfig(2) on a slot's filesystem context: a flag or string option, an fd (a slot's) as an
   * option's value, or 'create' to make the superblock. */
  fsconfig: define<{ context: Slot; command: keyof typeof FSCONFIG; key: string | null; value: string | null; fd: Slot | null }>(
    'FSCONFIG', 'fsconfig', (f) => ({ s: [f.key, f.value], n: [f.context, FSCONFIG[f.command], f.fd ?? 0] })),
  /** An overlay context's lower layers (names in dir, top first), each a detached clone given by fd,
   * then its superblock created and the clones attached on park's directory. */
  overlayLowers: define<{ context: Slot; dir: Slot | null; names: readonly string[]; park: Slot }>(
    'OVERLAY_LOWERS', 'fsconfig', (f) => ({ lists: [undefined, f.names], n: [f.context, 0, f.park, dirWord(f.dir)] })),
  /** fsmount(2): the detached mount of a slot's created filesystem context, with MOUNT_ATTR_* flags. */
  fsmount: define<{ context: Slot; attrs: number; into: Slot }>('FSMOUNT', 'fsmount', (f) => ({ n: [f.context, f.attrs, f.into] })),
  /** Reports ready and ends the process with a status: the last step of a probe, which runs no command. */
  exit: define<{ status: number }>('EXIT', 'exit_group', (f) => ({ n: [f.status] })),
  chownInRoot: define<{ root: Slot; inRoot: string; uid: number; gid: number; mode: number | null }>(
    'CHOWN_IN_ROOT', 'fchownat', (f) => ({ s: [f.inRoot], n: [f.mode === null ? 0 : f.mode + 1, f.uid, f.gid, dirWord(f.root)] })),
  /** Writes text to a new file (name) in dir, a tmpfs of the container's own, and binds it over
   * inRoot, resolved inside root (null: a host path), made when missing: /etc/hosts and the like. */
  bindOwnFile: define<{ root: Slot | null; dir: Slot; inRoot: string; text: string; name: string }>(
    'BIND_OWN_FILE', 'move_mount', (f) => ({ s: [f.inRoot, f.text, f.name], n: [dirWord(f.root), dirWord(f.dir)] })),
};
