/** Linux constants the setup plans use (x86_64 values, from the kernel's uapi headers). */

/** clone3 flags. */
export const CLONE = {
  VM: 0x100n,
  VFORK: 0x4000n,
  NEWNS: 0x20000n,
  NEWCGROUP: 0x2000000n,
  NEWUTS: 0x4000000n,
  NEWIPC: 0x8000000n,
  NEWUSER: 0x10000000n,
  NEWPID: 0x20000000n,
  NEWNET: 0x40000000n,
} as const;

/** mount(2) flags. */
export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  NOATIME: 0x400,
  BIND: 0x1000,
  REC: 0x4000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
  SHARED: 0x100000,
  STRICTATIME: 0x1000000,
} as const;

/** open_tree(2) and mount_setattr(2) values. */
export const OPEN_TREE_CLONE = 1;
export const OPEN_TREE_CLOEXEC = 0o2000000;
export const AT_RECURSIVE = 0x8000;
/** mount_setattr(2) attributes. */
export const MOUNT_ATTR = { RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8 } as const;

/** prctl(2) options. */
export const PR = {
  SET_PDEATHSIG: 1,
  SET_DUMPABLE: 4,
  SET_NO_NEW_PRIVS: 38,
} as const;

/** File type bits for mknod. */
export const S_IFCHR = 0o020000;

/** makedev for the small major/minor numbers of the standard devices. */
export function makedev(major: number, minor: number): number {
  return ((major & 0xfff) << 8) | (minor & 0xff);
}
