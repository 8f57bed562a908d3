import { basename, dirname } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import { CorralError } from '../sys/errors.ts';
import { AT_FDCWD, DIRENT_TYPE, OPEN_AT, cName, fchmod, openAt, readDirFd, statAt } from '../sys/fs-ops.ts';
import { close as closeFd } from '../sys/libc.ts';

/** What a walk does with what it finds. */
export interface TreeVisitor {
  /** What the walk does, for its errors ('remove'). */
  step: string;
  /** Directories their owner cannot list, enter or write are made u+rwx first (for removal:
   * overlayfs leaves work/work as d---------, and a layer may hold 000 directories). */
  openUp: boolean;
  /** A non-directory (a symlink is one: never followed) in the directory open at dirFd. */
  entry(dirFd: number, name: Buffer): void;
  /** A directory whose whole contents were visited, by its parent's fd and its name. */
  leave?(parentFd: number, name: Buffer): void;
}

/** A directory on the way down: its name in its parent, its identity, its subdirectories to visit. */
interface Level {
  name: Buffer;
  dev: number;
  ino: bigint;
  pending: Buffer[];
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const DIRS_PER_TURN = 64;

/** Visits every entry under path (path itself when it is no directory; nothing when it is
 * missing), depth first, without recursion and without ever resolving a path longer than one name:
 * one fd is held at a time, and the way back up is '..', checked against the inode met on the way
 * down (deep trees, issue 10 item 10: test/security/deep-tree-debris.test.ts). Synchronous. */
export function walkTree(path: string, visitor: TreeVisitor): void {
  for (const _ of steps(path, visitor));
}

/** walkTree, letting the event loop run between every few directories. */
export async function walkTreeAsync(path: string, visitor: TreeVisitor): Promise<void> {
  let dirs = 0;
  for (const _ of steps(path, visitor)) if (++dirs % DIRS_PER_TURN === 0) await setImmediate();
}

/** The walk, one directory per step. */
function* steps(path: string, visitor: TreeVisitor): Generator<void, void, void> {
  const levels: Level[] = [];
  let base = -1;
  let fd = -1;
  try {
    try {
      base = openAt(AT_FDCWD, cName(dirname(path)), OPEN_AT.O_RDONLY | OPEN_AT.O_DIRECTORY);
      const top = cName(basename(path));
      if (isDir(statAt(base, top).mode)) fd = enter(base, top, levels, visitor);
      else visitor.entry(base, top);
    } catch (e) {
      if ((e as CorralError).code === 'ENOENT' && levels.length === 0) return;
      throw e;
    }
    while (levels.length > 0) {
      const level = levels.at(-1)!;
      const next = level.pending.pop();
      if (next !== undefined) {
        const child = enter(fd, next, levels, visitor);
        closeFd(fd);
        fd = child;
        yield;
        continue;
      }
      levels.pop();
      const parent = levels.length === 0 ? base : up(fd, levels.at(-1)!);
      closeFd(fd);
      fd = parent === base ? -1 : parent;
      visitor.leave?.(parent, level.name);
    }
  } catch (e) {
    throw located(e, visitor.step, path, levels);
  } finally {
    if (fd >= 0) closeFd(fd);
    if (base >= 0) closeFd(base);
  }
}

function isDir(mode: number): boolean {
  return (mode & S_IFMT) === S_IFDIR;
}

/** Opens a directory (never through a symlink), visits its non-directories and pushes its level. */
function enter(parentFd: number, name: Buffer, levels: Level[], visitor: TreeVisitor): number {
  const fd = openDir(parentFd, name, visitor.openUp);
  try {
    const st = statAt(fd);
    if (visitor.openUp && (st.mode & 0o700) !== 0o700) fchmod(fd, (st.mode & 0o7777) | 0o700);
    const level: Level = { name, dev: st.dev, ino: st.ino, pending: [] };
    levels.push(level);
    for (const e of readDirFd(fd)) {
      const dir = e.type === DIRENT_TYPE.DT_DIR || (e.type === DIRENT_TYPE.DT_UNKNOWN && isDir(statAt(fd, e.name).mode));
      if (dir) level.pending.push(e.name);
      else visitor.entry(fd, e.name);
    }
    return fd;
  } catch (e) {
    closeFd(fd);
    throw e;
  }
}

const DIR_FLAGS = OPEN_AT.O_RDONLY | OPEN_AT.O_DIRECTORY | OPEN_AT.O_NOFOLLOW;

/** Opens a directory for reading; with openUp, one its owner may not read is made 0700 first
 * (through an O_PATH fd, which needs no permission on it). */
function openDir(parentFd: number, name: Buffer, openUp: boolean): number {
  try {
    return openAt(parentFd, name, DIR_FLAGS);
  } catch (e) {
    if (!openUp || (e as CorralError).code !== 'EACCES') throw e;
  }
  const path = openAt(parentFd, name, OPEN_AT.O_PATH | OPEN_AT.O_DIRECTORY | OPEN_AT.O_NOFOLLOW);
  try {
    fchmod(path, 0o700);
  } finally {
    closeFd(path);
  }
  return openAt(parentFd, name, DIR_FLAGS);
}

/** The parent of the directory open at fd, refused unless it is the directory the walk came down
 * through (the tree was moved meanwhile: going on could reach outside it). */
function up(fd: number, parent: Level): number {
  const dotdot = openAt(fd, cName('..'), OPEN_AT.O_RDONLY | OPEN_AT.O_DIRECTORY);
  const st = statAt(dotdot);
  if (st.dev === parent.dev && st.ino === parent.ino) return dotdot;
  closeFd(dotdot);
  throw new CorralError('a directory was moved out of the tree while it was walked', { code: 'ERR_TREE_CHANGED' });
}

/** The error of a failed walk, naming the full path where it failed. */
function located(e: unknown, step: string, path: string, levels: Level[]): CorralError {
  const inner = e as CorralError;
  const where = [path, ...levels.slice(1).map((l) => l.name.toString('utf8', 0, l.name.length - 1))].join('/');
  const at = levels.length === 0 || inner.path === undefined || inner.path === '' ? where : `${where}/${inner.path}`;
  return new CorralError(`${step} ${at}: ${inner.code ?? inner.message}`, {
    code: inner.code ?? 'ERR_SETUP_FAILED',
    ...(inner.errno !== undefined ? { errno: inner.errno } : {}),
    ...(inner.syscall !== undefined ? { syscall: inner.syscall } : {}),
    path: at,
    step,
    cause: e,
  });
}
