/** The file system calls Node's fs lacks: device nodes, extended attributes, and the fd-relative
 * calls (openat, unlinkat, statx, getdents64) that walk trees deeper than PATH_MAX. */

import koffi from 'koffi';
import { syscallError } from './errors.ts';
import { libc } from './libc.ts';


const c = {
  mknod: libc.func('int mknod(const char *path, uint32_t mode, uint64_t dev)'),
  lsetxattr: libc.func('int lsetxattr(const char *path, const char *name, const uint8_t *value, size_t size, int flags)'),
  lgetxattr: libc.func('long lgetxattr(const char *path, const char *name, _Out_ uint8_t *value, size_t size)'),
  llistxattr: libc.func('long llistxattr(const char *path, _Out_ uint8_t *list, size_t size)'),
  openat: libc.func('int openat(int dirfd, const uint8_t *name, int flags, uint mode)'),
  unlinkat: libc.func('int unlinkat(int dirfd, const uint8_t *name, int flags)'),
  statx: libc.func('int statx(int dirfd, const uint8_t *name, int flags, uint mask, _Out_ uint8_t *buf)'),
  getdents64: libc.func('long getdents64(int fd, _Out_ uint8_t *buf, size_t size)'),
  lseek: libc.func('int64_t lseek(int fd, int64_t offset, int whence)'),
  chmod: libc.func('int chmod(const char *path, uint mode)'),
};

const ENODATA = 61;
const ERANGE = 34;
const EOPNOTSUPP = 95;

/** File type bits for mknod's mode. */
export const NODE_TYPE = { S_IFIFO: 0o010000, S_IFCHR: 0o020000, S_IFBLK: 0o060000 } as const;

/** A device number as glibc's makedev builds it, for mknod. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** The major number of a device number (fs.Stats.rdev), as glibc's major(). */
export function devMajor(dev: number | bigint): number {
  const d = BigInt(dev);
  return Number(((d >> 32n) & 0xfffff000n) | ((d >> 8n) & 0xfffn));
}

/** The minor number of a device number (fs.Stats.rdev), as glibc's minor(). */
export function devMinor(dev: number | bigint): number {
  const d = BigInt(dev);
  return Number(((d >> 12n) & 0xffffff00n) | (d & 0xffn));
}

/** Creates a device node or fifo (mode carries the S_IF* type); Node can make neither. Also makes
 * overlay whiteouts (a char device 0/0), which the kernel lets unprivileged users create since 5.8. */
export function mknod(path: string, mode: number, dev: bigint): void {
  if (c.mknod(path, mode, dev) < 0) throw syscallError('mknod', koffi.errno(), { path });
}

/** Sets an extended attribute on a path without following a final symlink. */
export function lsetxattr(path: string, name: string, value: Buffer): void {
  if (c.lsetxattr(path, name, value, value.length, 0) < 0) throw syscallError('lsetxattr', koffi.errno(), { path });
}

/** An extended attribute of a path (not following a final symlink); null when it is not set. */
export function lgetxattr(path: string, name: string): Buffer | null {
  for (;;) {
    const size = Number(c.lgetxattr(path, name, null, 0));
    if (size < 0) return xattrMissing(koffi.errno(), 'lgetxattr', path);
    const value = Buffer.alloc(size);
    const got = Number(c.lgetxattr(path, name, value, size));
    if (got >= 0) return value.subarray(0, got);
    const errno = koffi.errno();
    if (errno !== ERANGE) return xattrMissing(errno, 'lgetxattr', path);
  }
}

/** The names of a path's extended attributes (not following a final symlink); none on a file
 * system without extended attributes. Unprivileged callers do not see trusted.* names. */
export function llistxattr(path: string): string[] {
  for (;;) {
    const size = Number(c.llistxattr(path, null, 0));
    if (size < 0) return xattrList(koffi.errno(), path);
    if (size === 0) return [];
    const list = Buffer.alloc(size);
    const got = Number(c.llistxattr(path, list, size));
    if (got >= 0) return list.toString('utf8', 0, got).split('\0').filter((name) => name !== '');
    const errno = koffi.errno();
    if (errno !== ERANGE) return xattrList(errno, path);
  }
}

function xattrMissing(errno: number, syscall: string, path: string): null {
  if (errno === ENODATA || errno === EOPNOTSUPP) return null;
  throw syscallError(syscall, errno, { path });
}

function xattrList(errno: number, path: string): string[] {
  if (errno === EOPNOTSUPP) return [];
  throw syscallError('llistxattr', errno, { path });
}

/** The dirfd that makes the *at calls take a path as open() does. */
export const AT_FDCWD = -100;

/** Flags for openAt (O_PATH opens without any permission on the target). */
export const OPEN_AT = { O_RDONLY: 0, O_DIRECTORY: 0o200000, O_NOFOLLOW: 0o400000, O_CLOEXEC: 0o2000000, O_PATH: 0o10000000 } as const;

const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
const AT_EMPTY_PATH = 0x1000;
const STATX_TYPE_MODE_UID_INO_SIZE = 0x1 | 0x2 | 0x8 | 0x100 | 0x200;
const STATX_SIZE_BYTES = 256;
/** getdents64's buffer, shared: readDirFd is synchronous and copies out what it keeps. */
const direntBuffer = Buffer.alloc(64 * 1024);
const EMPTY = Buffer.from([0]);

/** A file name as the *at calls take it: bytes ending in NUL (names need not be UTF-8). */
export function cName(name: string | Buffer): Buffer {
  const bytes = typeof name === 'string' ? Buffer.from(name) : name;
  return bytes.at(-1) === 0 ? bytes : Buffer.concat([bytes, EMPTY]);
}

function displayName(name: Buffer): string {
  return name.toString('utf8', 0, name.at(-1) === 0 ? name.length - 1 : name.length);
}

/** Opens name relative to dirFd (AT_FDCWD: as open does) as a raw close-on-exec fd. */
export function openAt(dirFd: number, name: Buffer, flags: number): number {
  const fd = c.openat(dirFd, name, flags | OPEN_AT.O_CLOEXEC, 0);
  if (fd < 0) throw syscallError('openat', koffi.errno(), { path: displayName(name) });
  return fd;
}

/** Removes a non-directory (or, with dir, an empty directory) name in dirFd; never follows links. */
export function unlinkAt(dirFd: number, name: Buffer, dir: boolean): void {
  if (c.unlinkat(dirFd, name, dir ? AT_REMOVEDIR : 0) < 0) throw syscallError(dir ? 'rmdir' : 'unlinkat', koffi.errno(), { path: displayName(name) });
}

/** What statAt tells: enough to walk a tree and add up its bytes. */
export interface StatAt {
  /** S_IF* type bits and permissions. */
  mode: number;
  uid: number;
  size: number;
  /** Identity of the inode (st_dev, st_ino), to check a directory is the one met before. */
  dev: number;
  ino: bigint;
}

/** lstat of name in dirFd (the fd itself when name is empty), by statx: the same layout on every
 * architecture, and a final symlink is never followed. */
export function statAt(dirFd: number, name: Buffer = EMPTY): StatAt {
  const buf = Buffer.alloc(STATX_SIZE_BYTES);
  const flags = AT_SYMLINK_NOFOLLOW | (name.length <= 1 ? AT_EMPTY_PATH : 0);
  if (c.statx(dirFd, name, flags, STATX_TYPE_MODE_UID_INO_SIZE, buf) < 0) throw syscallError('statx', koffi.errno(), { path: displayName(name) });
  return {
    uid: buf.readUInt32LE(20),
    mode: buf.readUInt16LE(28),
    ino: buf.readBigUInt64LE(32),
    size: Number(buf.readBigUInt64LE(40)),
    dev: buf.readUInt32LE(136) * 2 ** 20 + buf.readUInt32LE(140),
  };
}

/** d_type of a directory entry: what it is, or unknown (the file system does not say: statAt). */
export const DIRENT_TYPE = { DT_UNKNOWN: 0, DT_DIR: 4, DT_LNK: 10 } as const;

/** One entry of a directory: its name (NUL-terminated bytes, for the *at calls) and d_type. */
export interface DirEntry {
  name: Buffer;
  type: number;
}

/** Every entry of the directory open at fd except . and .., read from its start. */
export function readDirFd(fd: number): DirEntry[] {
  if (Number(c.lseek(fd, 0, 0)) < 0) throw syscallError('lseek', koffi.errno());
  const entries: DirEntry[] = [];
  const buf = direntBuffer;
  for (;;) {
    const n = Number(c.getdents64(fd, buf, buf.length));
    if (n < 0) throw syscallError('getdents64', koffi.errno());
    if (n === 0) return entries;
    // struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, char name[] (NUL-terminated)
    for (let at = 0; at < n; at += buf.readUInt16LE(at + 16)) {
      const start = at + 19;
      const end = buf.indexOf(0, start);
      const isDot = (end === start + 1 && buf[start] === 0x2e) || (end === start + 2 && buf[start] === 0x2e && buf[start + 1] === 0x2e);
      if (!isDot) entries.push({ name: Buffer.from(buf.subarray(start, end + 1)), type: buf[at + 18]! });
    }
  }
}

/** Sets the mode of the file open at fd, an O_PATH fd too (through its /proc/self/fd link, which
 * names the inode itself: what fchmod cannot do for O_PATH). */
export function fchmod(fd: number, mode: number): void {
  if (c.chmod(`/proc/self/fd/${fd}`, mode) < 0) throw syscallError('fchmod', koffi.errno());
}
