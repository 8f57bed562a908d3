/** The file system calls Node's fs lacks: device nodes and extended attributes. */

import koffi from 'koffi';
import { syscallError } from './errors.ts';

const libc = koffi.load('libc.so.6');

const c = {
  mknod: libc.func('int mknod(const char *path, uint32_t mode, uint64_t dev)'),
  lsetxattr: libc.func('int lsetxattr(const char *path, const char *name, const uint8_t *value, size_t size, int flags)'),
  lgetxattr: libc.func('long lgetxattr(const char *path, const char *name, _Out_ uint8_t *value, size_t size)'),
  llistxattr: libc.func('long llistxattr(const char *path, _Out_ uint8_t *list, size_t size)'),
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
