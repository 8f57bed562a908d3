/**
 * Turns an overlayfs upper directory into a layer tarball, the reverse of applyLayer: how a
 * container's changes become an image layer (commit). Whiteout devices become `.wh.NAME` entries and
 * opaque directories get a `.wh..wh..opq` entry; the same tree always gives the same bytes.
 */

import createDebug from 'debug';
import { constants, fstatSync, lstatSync, readlinkSync, readSync, type Stats } from 'node:fs';
import type { Writable } from 'node:stream';
import { CorralError, errorCode } from '../../sys/errors.ts';
import { AT_FDCWD, cName, devMajor, devMinor, lgetxattr, llistxattr, OPEN_AT, openAt, readDirFd } from '../../sys/fs-ops.ts';
import { close } from '../../sys/libc.ts';
import { toInside, type IdMap } from '../../sys/id-map.ts';
import { TarWriter, type EntryToWrite } from '../tar/writer.ts';
import type { LayerDigest } from './apply.ts';
import { isOverlayXattr, OPAQUE_MARKER, opaqueXattr, WHITEOUT_PREFIX } from './entry-names.ts';
import { isWhiteout } from './overlay-view.ts';
import { ETC_FILE_PATHS } from '../../container/etc-files.ts';

const debug = createDebug('corral:image');

/** How the upper directory was written: rootless overlay marks opaque directories with user.*. */
export interface DiffLayerOptions {
  rootless: boolean;
  /** The user namespace map the upper was written through: host owners become the owners inside
   * (what root inside owns is 0/0 in the layer, whatever the caller's host uid). null: as they are. */
  idMap?: IdMap | null;
  /** Called with each directory (relative to the upper) just before the walk opens it: the seam a
   * test uses to swap the directory for a symlink at the worst moment. */
  onDirectory?: (rel: string) => void | Promise<void>;
  /** No entry dated later than this (seconds; SOURCE_DATE_EPOCH). */
  clampMtime?: number | undefined;
}

/**
 * Writes the changes in `upper` to `out` as a plain tar (not ending `out`) and returns its DiffID
 * and size. The walk is fd-relative and follows no symlink at any step, so a running container
 * that swaps a directory for a symlink mid-walk cannot make it read outside the upper directory
 * (issue 10 item 6, the commit race); what it changes under the walk fails with ERR_LAYER_CHANGED.
 */
export async function diffLayer(upper: string, out: Writable, options: DiffLayerOptions): Promise<LayerDigest> {
  const tar = new TarWriter(out, { digest: true, clampMtime: options.clampMtime });
  const root = openAt(AT_FDCWD, cName(upper), OPEN_AT.O_RDONLY | OPEN_AT.O_DIRECTORY);
  try {
    await new UpperWalker(tar, options).walk(root, '');
  } finally {
    close(root);
  }
  await tar.end();
  return tar.digest();
}

/** xattrs that describe the host rather than the content: overlay's own and the SELinux label. */
function keepXattr(name: string): boolean {
  return !isOverlayXattr(name) && name !== 'security.selinux';
}

/** Marks of overlay features whose changes live partly outside the upper directory. */
const INCOMPLETE_UPPER = /^(trusted|user)\.overlay\.(metacopy|redirect)$/;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const MARKER = { type: 'file', mode: 0o600, uid: 0, gid: 0, mtime: 0 } as const; // whiteouts carry no metadata worth keeping
const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = OPEN_AT;
const OVERFLOW_ID = 65534; // /proc/sys/kernel/overflowuid and overflowgid

/** Empty files that are only the mount points of a container's own /etc files (made in its layer
 * when the image lacks them): kept out of a commit, as Docker's init layer keeps them. */
const OWN_FILE_MOUNT_POINTS = new Set(ETC_FILE_PATHS.map((p) => p.slice(1)));

/** Emits the entries of an upper directory in sorted order, depth first. Every name is opened in
 * the directory fd it belongs to (openat), and its metadata read through `/proc/self/fd/<fd>/<name>`
 * (the kernel jumps to that very directory, the last component is never followed): never through
 * a path from the upper. */
class UpperWalker {
  readonly #tar: TarWriter;
  readonly #opaque: string;
  readonly #onDirectory: DiffLayerOptions['onDirectory'];
  readonly #idMap: IdMap | null;
  /** The first name each multiply-linked inode was archived under. */
  readonly #links = new Map<string, string>();
  /** Directory entries not written yet: the open directories (outermost first) under which nothing
   * has been written so far. They are written, in order, before the first entry below them. */
  readonly #pending: EntryToWrite[] = [];

  constructor(tar: TarWriter, options: DiffLayerOptions) {
    this.#tar = tar;
    this.#opaque = opaqueXattr(options.rootless);
    this.#onDirectory = options.onDirectory;
    this.#idMap = options.idMap ?? null;
  }

  /** A host owner as the container saw it; one its namespace does not map is the overflow id
   * 65534, as the kernel shows it inside. */
  #owner(stat: Stats): { uid: number; gid: number } {
    if (!this.#idMap) return { uid: stat.uid, gid: stat.gid };
    return { uid: toInside(this.#idMap.uids, stat.uid) ?? OVERFLOW_ID, gid: toInside(this.#idMap.gids, stat.gid) ?? OVERFLOW_ID };
  }

  /** Writes the entries below the directory open at dirFd; true when all it held were own-file
   * mount points (or directories holding only those), so the directory itself is left out too. */
  async walk(dirFd: number, dir: string): Promise<boolean> {
    const names = readDirFd(dirFd).map((e) => e.name.subarray(0, -1)).sort(Buffer.compare);
    let onlyMountPoints = names.length > 0;
    for (const raw of names) {
      const name = utf8Name(raw, dir);
      const rel = join(dir, name);
      const at = `${fdPath(dirFd)}/${name}`;
      const stat = lstatSync(at);
      if (OWN_FILE_MOUNT_POINTS.has(rel) && stat.isFile() && stat.size === 0) continue;
      if (!stat.isDirectory()) onlyMountPoints = false;
      if (isWhiteout(stat)) {
        await this.#add({ name: join(dir, WHITEOUT_PREFIX + name), ...MARKER });
      } else if (stat.isDirectory()) {
        await this.#onDirectory?.(rel);
        const fd = openChecked(dirFd, raw, rel, stat, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        try {
          // A directory in the upper only because the own /etc files' mount points were made in it
          // (the container did not touch /etc) is left out with them: an untouched container commits
          // an empty layer, as Docker's init layer keeps etc/ out of the container's.
          const entry: EntryToWrite = { name: `${rel}/`, type: 'directory', ...this.#common(at, rel, stat) };
          this.#pending.push(entry);
          if (lgetxattr(at, this.#opaque)?.toString() === 'y') await this.#add({ name: `${rel}/${OPAQUE_MARKER}`, ...MARKER });
          const leftOut = await this.walk(fd, rel);
          if (this.#pending.at(-1) === entry) {
            this.#pending.pop();
            if (leftOut) continue;
            await this.#add(entry);
          }
          onlyMountPoints = false;
        } finally {
          close(fd);
        }
      } else if (stat.isSocket()) {
        debug('skipping the socket %s', rel);
      } else {
        await this.#nonDirectory(dirFd, raw, at, rel, stat);
      }
    }
    return onlyMountPoints;
  }

  /** Writes an entry, after the directories above it that are still pending. */
  async #add(entry: EntryToWrite, body?: AsyncIterable<Buffer>): Promise<void> {
    for (const dir of this.#pending.splice(0)) await this.#tar.add(dir);
    await this.#tar.add(entry, body);
  }

  /** A non-directory: `raw` its name in the directory open at dirFd, `at` its /proc path. */
  async #nonDirectory(dirFd: number, raw: Buffer, at: string, rel: string, stat: Stats): Promise<void> {
    if (stat.nlink > 1) {
      const inode = `${stat.dev}:${stat.ino}`;
      const first = this.#links.get(inode);
      if (first !== undefined) {
        await this.#add({ name: rel, type: 'link', linkname: first, ...this.#common(at, rel, stat, false) });
        return;
      }
      this.#links.set(inode, rel);
    }
    const common = this.#common(at, rel, stat);
    if (stat.isFile()) {
      const fd = openChecked(dirFd, raw, rel, stat, O_RDONLY | O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        await this.#add({ name: rel, type: 'file', size: stat.size, ...common }, content(fd, rel, stat.size));
      } finally {
        close(fd);
      }
    } else if (stat.isSymbolicLink()) {
      await this.#add({ name: rel, type: 'symlink', linkname: utf8Name(readlinkSync(at, { encoding: 'buffer' }), rel), ...common });
    } else if (stat.isFIFO()) {
      await this.#add({ name: rel, type: 'fifo', ...common });
    } else {
      const type = stat.isCharacterDevice() ? 'char' : 'block';
      await this.#add({ name: rel, type, devmajor: devMajor(stat.rdev), devminor: devMinor(stat.rdev), ...common });
    }
  }

  /** Metadata every real entry carries: mode, numeric owner, whole-second mtime and (except on
   * hard links, which share their target's) xattrs. */
  #common(at: string, rel: string, stat: Stats, withXattrs = true): Pick<EntryToWrite, 'mode' | 'uid' | 'gid' | 'mtime' | 'xattrs'> {
    const names = withXattrs ? llistxattr(at) : [];
    const incomplete = names.find((name) => INCOMPLETE_UPPER.test(name));
    if (incomplete !== undefined) {
      throw new CorralError(`${rel} has ${incomplete}: the overlay was mounted with metacopy or redirect_dir, so the upper directory alone does not hold the changes (mount with metacopy=off,redirect_dir=off)`, {
        code: 'ERR_UNSUPPORTED_OVERLAY',
        path: rel,
        step: 'diff layer',
      });
    }
    const xattrs = new Map<string, Buffer>();
    for (const name of names.filter(keepXattr).sort()) {
      const value = lgetxattr(at, name);
      if (value !== null) xattrs.set(name, value);
    }
    return { mode: stat.mode & 0o7777, ...this.#owner(stat), mtime: Math.floor(stat.mtimeMs / 1000), xattrs };
  }
}

/** Exactly `size` bytes of an open file, read in chunks as the tar takes them. */
async function* content(fd: number, rel: string, size: number): AsyncGenerator<Buffer> {
  for (let left = size; left > 0;) {
    const chunk = Buffer.allocUnsafe(Math.min(left, 1024 * 1024));
    const n = readSync(fd, chunk, 0, chunk.length, size - left);
    if (n === 0) throw changed(rel, 'shrank while it was being archived');
    left -= n;
    yield chunk.subarray(0, n);
  }
}

/** Opens name in dirFd without following a symlink; what is no longer what the walk saw (swapped
 * for a symlink or another inode) is ERR_LAYER_CHANGED. */
function openChecked(dirFd: number, name: Buffer, rel: string, seen: Stats, flags: number): number {
  // test/security/commit-symlink-swap.test.ts: O_NOFOLLOW, relative to the parent's fd, inode checked.
  let fd: number;
  try {
    fd = openAt(dirFd, cName(name), flags);
  } catch (e) {
    const code = errorCode(e);
    if (code === 'ELOOP' || code === 'ENOTDIR' || code === 'ENOENT' || code === 'ENXIO') throw changed(rel, `was replaced while it was being archived (${code})`);
    throw e;
  }
  const now = fstatSync(fd);
  if (now.ino !== seen.ino || now.dev !== seen.dev) {
    close(fd);
    throw changed(rel, 'was replaced while it was being archived');
  }
  return fd;
}

function changed(rel: string, what: string): CorralError {
  return new CorralError(`${rel} ${what}`, { code: 'ERR_LAYER_CHANGED', path: rel, step: 'diff layer' });
}

function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

function utf8Name(raw: Buffer, where: string): string {
  try {
    return utf8.decode(raw);
  } catch {
    throw new CorralError(`${where || '/'} holds a name that is not valid UTF-8 (${raw.toString('latin1')}); layers carry UTF-8 names only`, {
      code: 'ERR_UNSUPPORTED_FILE_NAME',
      path: where,
      step: 'diff layer',
    });
  }
}

function join(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}
