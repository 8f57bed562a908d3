/**
 * Unpacks a layer tarball into a directory of its own in overlayfs form (whiteouts as char devices
 * 0/0, opaque directories as an xattr), ready to be an overlay lowerdir, and digests it on the way.
 * Hostile archives are refused before they can write anywhere but that directory.
 */

import createDebug from 'debug';
import {
  chmodSync, closeSync, constants, copyFileSync, fchmodSync, fchownSync, futimesSync, linkSync, lchownSync, lstatSync,
  lutimesSync, mkdirSync, openSync, readlinkSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeSync, type Stats,
} from 'node:fs';
import type { Readable } from 'node:stream';
import { CorralError, fromNodeError } from '../../sys/errors.ts';
import { lgetxattr, llistxattr, lsetxattr, makedev, mknod, NODE_TYPE } from '../../sys/fs-ops.ts';
import { TarReader, type TarEntry } from '../tar/reader.ts';
import { ChunkSource } from '../tar/sources.ts';
import { Tally, uncompressed } from './decompress.ts';
import { entryComponents, entryMarker, invalidLayer, isOverlayXattr, opaqueXattr } from './entry-names.ts';
import { findInLayers, isWhiteout } from './overlay-view.ts';
import { isSingleIdMap, toHost, toInside, type IdMap } from '../../sys/id-map.ts';
import type { OwnerToShift } from '../../fs/shift-owners.ts';

const debug = createDebug('corral:image');

/** How to write a layer: rootless skips what needs root (owners, devices, non-user xattrs). */
export interface ApplyLayerOptions {
  rootless: boolean;
  /** The directories of the layers below, top first: hard links may point at their files. */
  lowerDirs?: string[];
  /** Refuse the layer (ERR_LAYER_TOO_LARGE) once its tar passes this many bytes. */
  maxBytes?: number;
  /** Rootless with subordinate ids: the user namespace map the image's owners are checked against
   * and listed for shiftOwners (an owner 100 inside becomes the host id the map gives 100), so
   * containers with that map see the image's owners. Without it (or with the single mapping)
   * rootless keeps no owner. */
  idMap?: IdMap | null;
}

/** An applied layer: its digest, and (rootless with a range) the owners shiftOwners is to give,
 * once the caller is done reading the directory (it may not read what it gave away). */
export interface AppliedLayer extends LayerDigest {
  ownersToShift: OwnerToShift[];
}

/** What a layer tarball digests to: config `rootfs.diff_ids` lists the diffId. */
export interface LayerDigest {
  /** sha256:<hex> of the uncompressed tar stream. */
  diffId: string;
  /** Bytes of the uncompressed tar stream. */
  size: number;
}

/**
 * Applies a layer tarball (gzip or plain) to `dir`, a fresh empty directory that becomes this
 * layer's overlay lowerdir. On failure the caller removes `dir`: nothing outside it is touched.
 */
export async function applyLayer(source: Readable, dir: string, options: ApplyLayerOptions): Promise<AppliedLayer> {
  const tally = new Tally(options.maxBytes ?? Infinity);
  const tar = new TarReader(new ChunkSource(tally.count(uncompressed(source))), { invalid: invalidLayer });
  let ownersToShift: OwnerToShift[];
  try {
    const layer = new LayerWriter(dir, options);
    for (let entry = await tar.next(); entry !== null; entry = await tar.next()) {
      try {
        await layer.write(entry, tar.body());
      } catch (e) {
        throw entryFailure(entry.name, e);
      }
    }
    ownersToShift = layer.finish();
    await tar.drain();
  } finally {
    await tar.close();
  }
  return { diffId: `sha256:${tally.hash.digest('hex')}`, size: tally.size, ownersToShift };
}

/** Ownership, mode and mtime of a directory, applied once its contents are in. */
interface DirMeta {
  mode: number;
  owner?: { uid: number; gid: number };
  mtime?: number;
}

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY, COPYFILE_EXCL } = constants;

/** Writes entries into a layer directory, never through a symlink and never outside it. */
class LayerWriter {
  readonly #dir: string;
  readonly #rootless: boolean;
  readonly #lowers: string[];
  /** Directories of this layer known to be real directories, by relative path ('' is the root). */
  readonly #dirs = new Set<string>(['']);
  readonly #dirMeta = new Map<string, DirMeta>();
  /** Files of lower layers copied up for hard links, so further links share the copy. */
  readonly #copies = new Map<string, { rel: string; ino: number }>();
  /** Rootless with a range: the map owners are shifted through, and the owners to give. */
  readonly #idMap: IdMap | null;
  readonly #owners: OwnerToShift[] = [];

  constructor(dir: string, options: ApplyLayerOptions) {
    this.#dir = dir;
    this.#rootless = options.rootless;
    this.#lowers = options.lowerDirs ?? [];
    this.#idMap = options.rootless && options.idMap && !isSingleIdMap(options.idMap) ? options.idMap : null;
  }

  /** Rootless with a range, notes an owner other than root for shiftOwners (after the whole layer
   * is written, since the caller can no longer write into what it gave away). */
  #shift(rel: string, uid: number, gid: number, mode: number | null): void {
    if (!this.#idMap || (uid === 0 && gid === 0)) return;
    const unmapped = toHost(this.#idMap.uids, uid) === null ? `uid ${uid}` : toHost(this.#idMap.gids, gid) === null ? `gid ${gid}` : null;
    if (unmapped) {
      throw new CorralError(`${rel} is owned by ${unmapped}, which your subordinate range does not cover (it maps ids 0..${this.#idMap.uids.reduce((n, r) => Math.max(n, r.inside + r.count), 0) - 1}); ask for a larger range in /etc/subuid and /etc/subgid`, {
        code: 'ERR_ROOTLESS_IDS', path: rel, step: 'unpack a layer',
      });
    }
    this.#owners.push({ rel, uid, gid, mode });
  }

  async write(entry: TarEntry, body: AsyncIterable<Buffer>): Promise<void> {
    const parts = entryComponents(entry.name);
    if (parts.length === 0) {
      if (entry.type !== 'directory') throw invalidLayer(entry.name, `the layer root must be a directory, not a ${entry.type}`);
      this.#dirMeta.set('', this.#meta(entry));
      this.#setXattrs(entry, '');
      return;
    }
    const base = parts.pop()!;
    const parent = this.#parentDir(parts, entry.name);
    const marker = entryMarker(entry.name, base);
    if (marker.kind === 'meta') {
      debug('skipping aufs metadata %s', entry.name);
      return;
    }
    if (marker.kind === 'opaque') {
      this.#setOpaque(parent);
      return;
    }
    if (marker.kind === 'whiteout') {
      this.#whiteout(join(parent, marker.name));
      return;
    }
    const rel = join(parent, base);
    switch (entry.type) {
      case 'file':
        return this.#file(entry, rel, body);
      case 'directory':
        return this.#directory(entry, rel);
      case 'symlink':
        return this.#symlink(entry, rel);
      case 'link':
        return this.#hardLink(entry, rel);
      case 'char':
      case 'block':
      case 'fifo':
        return this.#node(entry, rel);
    }
  }

  /** Gives every directory its final mode, owner and mtime, deepest first, so a read-only
   * directory could still be filled and no later write moves a parent's mtime. */
  finish(): OwnerToShift[] {
    const depth = (rel: string): number => (rel === '' ? 0 : rel.split('/').length);
    const rels = [...this.#dirMeta.keys()].sort((a, b) => depth(b) - depth(a));
    for (const rel of rels) {
      const meta = this.#dirMeta.get(rel)!;
      const fd = openSync(this.#abs(rel), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      try {
        if (meta.owner !== undefined && !this.#rootless) fchownSync(fd, meta.owner.uid, meta.owner.gid);
        fchmodSync(fd, meta.mode);
        if (meta.mtime !== undefined) futimesSync(fd, meta.mtime, meta.mtime);
      } finally {
        closeSync(fd);
      }
      if (meta.owner !== undefined) this.#shift(rel, meta.owner.uid, meta.owner.gid, meta.mode);
    }
    return this.#owners;
  }

  async #file(entry: TarEntry, rel: string, body: AsyncIterable<Buffer>): Promise<void> {
    const fd = this.#create(rel, (path) => openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600));
    try {
      for await (const chunk of body) {
        for (let done = 0; done < chunk.length;) done += writeSync(fd, chunk, done);
      }
      if (!this.#rootless) fchownSync(fd, entry.uid, entry.gid);
      this.#shift(rel, entry.uid, entry.gid, entry.mode);
      this.#setXattrs(entry, rel);
      fchmodSync(fd, entry.mode);
      futimesSync(fd, entry.mtime, entry.mtime);
    } finally {
      closeSync(fd);
    }
  }

  #directory(entry: TarEntry, rel: string): void {
    const path = this.#abs(rel);
    try {
      mkdirSync(path, 0o700);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const existing = lstatSync(path);
      if (isWhiteout(existing)) {
        // The layer deletes what lies below and brings a directory of its own: an opaque one.
        unlinkSync(path);
        mkdirSync(path, 0o700);
        this.#setOpaque(rel);
      } else if (!existing.isDirectory()) {
        this.#remove(rel);
        mkdirSync(path, 0o700);
      }
    }
    this.#dirs.add(rel);
    this.#dirMeta.set(rel, this.#meta(entry));
    this.#setXattrs(entry, rel);
  }

  #symlink(entry: TarEntry, rel: string): void {
    const path = this.#create(rel, (p) => {
      symlinkSync(entry.linkname, p);
      return p;
    });
    if (!this.#rootless) lchownSync(path, entry.uid, entry.gid);
    this.#shift(rel, entry.uid, entry.gid, null);
    this.#setXattrs(entry, rel);
    lutimesSync(path, entry.mtime, entry.mtime);
  }

  #node(entry: TarEntry, rel: string): void {
    if (this.#rootless && entry.type !== 'fifo') {
      debug('rootless: skipping %s device %s (%d:%d)', entry.type, entry.name, entry.devmajor, entry.devminor);
      return;
    }
    const kind = entry.type === 'fifo' ? NODE_TYPE.S_IFIFO : entry.type === 'char' ? NODE_TYPE.S_IFCHR : NODE_TYPE.S_IFBLK;
    const path = this.#create(rel, (p) => {
      mknod(p, kind | 0o600, makedev(entry.devmajor, entry.devminor));
      return p;
    });
    this.#finishNode(path, entry.uid, entry.gid, entry.mode, entry.mtime);
    this.#shift(rel, entry.uid, entry.gid, entry.mode);
    this.#setXattrs(entry, rel);
  }

  /** A hard link: to an earlier entry of this layer, or else to a copy of a lower layer's file. */
  #hardLink(entry: TarEntry, rel: string): void {
    const target = entryComponents(entry.linkname, 'its hard link target');
    if (target.length === 0) throw invalidLayer(entry.name, 'a hard link to the layer root');
    const found = findInLayers([this.#dir, ...this.#lowers], target);
    if (found === null) {
      throw invalidLayer(entry.name, `its hard link target ${entry.linkname} is neither in this layer nor in the layers below`);
    }
    if (found.stat.isDirectory()) throw invalidLayer(entry.name, `a hard link to the directory ${entry.linkname}`);
    if (found.layer === 0) {
      this.#create(rel, (p) => linkSync(found.path, p));
      return;
    }
    const copy = this.#copies.get(found.path);
    if (copy !== undefined && lstatSync(this.#abs(copy.rel), { throwIfNoEntry: false })?.ino === copy.ino) {
      this.#create(rel, (p) => linkSync(this.#abs(copy.rel), p));
      return;
    }
    if (this.#copyUp(found.path, found.stat, rel)) this.#copies.set(found.path, { rel, ino: lstatSync(this.#abs(rel)).ino });
  }

  /** Copies a lower layer's file, symlink or node with its metadata; false when rootless cannot. */
  #copyUp(source: string, stat: Stats, rel: string): boolean {
    if (stat.isSymbolicLink()) {
      const path = this.#create(rel, (p) => {
        symlinkSync(readlinkSync(source), p);
        return p;
      });
      if (!this.#rootless) lchownSync(path, stat.uid, stat.gid);
      this.#shiftCopy(rel, stat, null);
      this.#copyXattrs(source, path);
      lutimesSync(path, stat.mtime, stat.mtime);
      return true;
    }
    if (this.#rootless && (stat.isCharacterDevice() || stat.isBlockDevice())) {
      debug('rootless: skipping a hard link to the device %s', source);
      return false;
    }
    const path = this.#create(rel, (p) => {
      if (stat.isFile()) copyFileSync(source, p, COPYFILE_EXCL);
      else mknod(p, (stat.mode & ~0o7777) | 0o600, BigInt(stat.rdev));
      return p;
    });
    this.#finishNode(path, stat.uid, stat.gid, stat.mode & 0o7777, stat.mtime);
    this.#shiftCopy(rel, stat, stat.mode & 0o7777);
    this.#copyXattrs(source, path);
    return true;
  }

  /** A copy of a lower layer's file keeps its owner. */
  #shiftCopy(rel: string, stat: Stats, mode: number | null): void {
    const { uid, gid } = this.#lowerOwner(stat);
    this.#shift(rel, uid, gid, mode);
  }

  /** The owner of a lower layer's entry as the image says it: rootless with a range it is on disk
   * a host id of the map, the id inside is what the layer means (a host id taken as is would be
   * shifted a second time, 0 becoming the caller's host uid inside). */
  #lowerOwner(stat: Stats): { uid: number; gid: number } {
    if (!this.#idMap) return { uid: stat.uid, gid: stat.gid };
    return { uid: toInside(this.#idMap.uids, stat.uid) ?? 0, gid: toInside(this.#idMap.gids, stat.gid) ?? 0 };
  }

  /** Owner, mode and mtime of a non-directory, non-symlink; owner first, as chown clears setuid. */
  #finishNode(path: string, uid: number, gid: number, mode: number, mtime: number | Date): void {
    if (!this.#rootless) lchownSync(path, uid, gid);
    chmodSync(path, mode);
    utimesSync(path, mtime, mtime);
  }

  /** `.wh.NAME`: hides NAME of the layers below. What this layer has by that name stays (the
   * whiteout only deletes below), but a directory of its own then no longer merges with theirs. */
  #whiteout(rel: string): void {
    const existing = lstatSync(this.#abs(rel), { throwIfNoEntry: false });
    if (existing === undefined) mknod(this.#abs(rel), NODE_TYPE.S_IFCHR, 0n);
    else if (existing.isDirectory()) this.#setOpaque(rel);
  }

  #setOpaque(rel: string): void {
    lsetxattr(this.#abs(rel), opaqueXattr(this.#rootless), Buffer.from('y'));
  }

  /** Makes sure every parent of an entry is a real directory of this layer, creating missing ones;
   * a symlink or file in the way is refused rather than followed (as securejoin does). */
  #parentDir(parts: string[], entry: string): string {
    let rel = '';
    for (let i = 0; i < parts.length; i++) {
      rel = join(rel, parts[i]!);
      if (this.#dirs.has(rel)) continue;
      const path = this.#abs(rel);
      const existing = lstatSync(path, { throwIfNoEntry: false });
      if (existing === undefined) {
        mkdirSync(path, 0o700);
        this.#dirMeta.set(rel, this.#inheritedMeta(parts.slice(0, i + 1)));
      } else if (isWhiteout(existing)) {
        unlinkSync(path);
        mkdirSync(path, 0o700);
        this.#setOpaque(rel);
        this.#dirMeta.set(rel, { mode: 0o755 });
      } else if (existing.isSymbolicLink()) {
        throw invalidLayer(entry, `its parent ${rel} is a symlink (planted by an earlier entry); refusing to write through it`);
      } else if (!existing.isDirectory()) {
        throw invalidLayer(entry, `its parent ${rel} is not a directory`);
      }
      this.#dirs.add(rel);
    }
    return rel;
  }

  /** A directory the tar implies without an entry of its own looks like the one below, if any. */
  #inheritedMeta(parts: string[]): DirMeta {
    const found = findInLayers(this.#lowers, parts);
    if (found === null || !found.stat.isDirectory()) return { mode: 0o755 };
    const { mode, mtime } = found.stat;
    return { mode: mode & 0o7777, owner: this.#lowerOwner(found.stat), mtime: mtime.getTime() / 1000 };
  }

  /** Runs `make` on the entry's path, first removing whatever an earlier entry left there. */
  #create<T>(rel: string, make: (path: string) => T): T {
    const path = this.#abs(rel);
    try {
      return make(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    this.#remove(rel);
    return make(path);
  }

  /** Removes an earlier entry that a later one replaces, and forgets what it knew below it. */
  #remove(rel: string): void {
    const path = this.#abs(rel);
    if (!lstatSync(path).isDirectory()) {
      unlinkSync(path);
      return;
    }
    rmSync(path, { recursive: true, force: true });
    const inside = (key: string): boolean => key === rel || key.startsWith(`${rel}/`);
    for (const key of this.#dirs) if (inside(key)) this.#dirs.delete(key);
    for (const key of this.#dirMeta.keys()) if (inside(key)) this.#dirMeta.delete(key);
  }

  #meta(entry: TarEntry): DirMeta {
    return { mode: entry.mode, owner: { uid: entry.uid, gid: entry.gid }, mtime: entry.mtime };
  }

  #setXattrs(entry: TarEntry, rel: string): void {
    for (const [name, value] of entry.xattrs) this.#setXattr(this.#abs(rel), name, value);
  }

  #copyXattrs(source: string, path: string): void {
    for (const name of llistxattr(source)) {
      const value = lgetxattr(source, name);
      if (value !== null) this.#setXattr(path, name, value);
    }
  }

  /** Sets one xattr from the layer, leaving out overlay's own and, rootless, all but user.*. */
  #setXattr(path: string, name: string, value: Buffer): void {
    if (isOverlayXattr(name) || (this.#rootless && !name.startsWith('user.'))) {
      debug('skipping xattr %s of %s', name, path);
      return;
    }
    try {
      lsetxattr(path, name, value);
    } catch (e) {
      if (!(e instanceof CorralError) || e.code !== 'EOPNOTSUPP') throw e;
      const namespace = name.split('.')[0];
      throw new CorralError(`${this.#dir} is on a file system without ${namespace}.* extended attributes, which the layer sets (${name} on ${path}): EOPNOTSUPP`, {
        code: 'EOPNOTSUPP', errno: e.errno!, syscall: 'lsetxattr', path, step: 'apply layer', cause: e,
      });
    }
  }

  #abs(rel: string): string {
    return rel === '' ? this.#dir : `${this.#dir}/${rel}`;
  }
}

function join(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}

/** A failure while writing an entry: a Node error becomes a CorralError naming the entry (through
 * the one conversion, fromNodeError); a CorralError passes as it is. */
function entryFailure(entry: string, e: unknown): unknown {
  if (e instanceof CorralError && e.step !== undefined) return e;
  const syscall = (e as { syscall?: unknown }).syscall;
  return fromNodeError(e, `layer entry ${JSON.stringify(entry)}${typeof syscall === 'string' ? ` (${syscall})` : ''}`);
}
