/**
 * Unpacks a layer tarball into a directory of its own in overlayfs form (whiteouts as char devices
 * 0/0, opaque directories as an xattr), ready to be an overlay lowerdir, and digests it on the way.
 * Hostile archives are refused before they can write anywhere but that directory.
 */

import createDebug from 'debug';
import { createHash, type Hash } from 'node:crypto';
import {
  chmodSync, closeSync, constants, copyFileSync, fchmodSync, fchownSync, futimesSync, linkSync, lchownSync, lstatSync,
  lutimesSync, mkdirSync, openSync, readlinkSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeSync, type Stats,
} from 'node:fs';
import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { CorralError, syscallError, type ErrorCode } from '../sys/errors.ts';
import { lgetxattr, llistxattr, lsetxattr, makedev, mknod, NODE_TYPE } from '../sys/fs-ops.ts';
import { entryComponents, entryMarker, invalidLayer, isOverlayXattr, opaqueXattr } from './tar-paths.ts';

const debug = createDebug('corral:image');

/** How to write a layer: rootless skips what needs root (owners, devices, non-user xattrs). */
export interface ApplyLayerOptions {
  rootless: boolean;
  /** The directories of the layers below, top first: hard links may point at their files. */
  lowerDirs?: string[];
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
export async function applyLayer(source: Readable, dir: string, options: ApplyLayerOptions): Promise<LayerDigest> {
  const tally = new Tally();
  const tar = new TarReader(tally.count(uncompressed(source)));
  try {
    const layer = new LayerWriter(dir, options);
    for (let entry = await tar.next(); entry !== null; entry = await tar.next()) {
      try {
        await layer.write(entry, tar.body());
      } catch (e) {
        throw entryFailure(entry.name, e);
      }
    }
    layer.finish();
    await tar.drain();
  } finally {
    await tar.close();
  }
  return { diffId: `sha256:${tally.hash.digest('hex')}`, size: tally.size };
}

// ---- decompression -------------------------------------------------------------------------------

const COMPRESSIONS: Array<{ magic: Buffer; name: string }> = [
  { magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), name: 'zstd' },
  { magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), name: 'xz' },
  { magic: Buffer.from('BZh'), name: 'bzip2' },
];
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

/** The tar bytes of a layer blob: gunzipped when it starts with gzip's magic, else as they are. */
async function* uncompressed(source: Readable): AsyncGenerator<Buffer> {
  const chunks = read(source);
  let head = Buffer.alloc(0);
  while (head.length < 6) {
    const next = await chunks.next();
    if (next.done) break;
    head = Buffer.concat([head, next.value]);
  }
  const unsupported = COMPRESSIONS.find((c) => head.subarray(0, c.magic.length).equals(c.magic));
  if (unsupported !== undefined) {
    await chunks.return(undefined);
    throw new CorralError(`the layer is ${unsupported.name}-compressed, which corral cannot decompress (Node's zlib has gzip only)`, {
      code: 'ERR_UNSUPPORTED_COMPRESSION',
      step: 'apply layer',
    });
  }
  const all = (async function* () {
    if (head.length > 0) yield head;
    yield* chunks;
  })();
  if (!head.subarray(0, 2).equals(GZIP_MAGIC)) {
    yield* all;
    return;
  }
  const gunzip = createGunzip({ chunkSize: 64 * 1024 });
  pipeline(Readable.from(all), gunzip, () => {}); // errors reach us through gunzip
  try {
    yield* gunzip;
  } catch (e) {
    const zlib = e as { code?: string; message?: string };
    if (!zlib.code?.startsWith('Z_')) throw e;
    throw new CorralError(`invalid layer: the gzip stream is truncated or corrupt (${zlib.message})`, {
      code: 'ERR_INVALID_LAYER',
      step: 'apply layer',
      cause: e,
    });
  } finally {
    gunzip.destroy();
  }
}

/** The chunks of the source; its own failures say so, lest they pass for the entry being written. */
async function* read(source: Readable): AsyncGenerator<Buffer> {
  try {
    yield* source;
  } catch (e) {
    const err = e as { code?: unknown; message?: unknown };
    throw new CorralError(`cannot read the layer: ${String(err.message)}`, {
      code: typeof err.code === 'string' ? (err.code as ErrorCode) : 'ERR_LAYER_READ',
      step: 'read the layer',
      cause: e,
    });
  }
}

/** Digests and counts the uncompressed bytes as they pass: the layer's diffId and size. */
class Tally {
  readonly hash: Hash = createHash('sha256');
  size = 0;

  async *count(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of chunks) {
      this.hash.update(chunk);
      this.size += chunk.length;
      yield chunk;
    }
  }
}

// ---- tar reading ---------------------------------------------------------------------------------

/** One archive member, with the pax and GNU long-name extensions already applied. */
interface TarEntry {
  name: string;
  type: 'file' | 'link' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch; pax mtimes keep their fraction. */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer>;
}

const BLOCK = 512;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
const MAX_META_SIZE = 8 * 1024 * 1024;
const TYPES: Record<string, TarEntry['type']> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'link', '2': 'symlink', '3': 'char', '4': 'block', '5': 'directory', '6': 'fifo',
};
const TYPE_NAMES: Record<string, string> = { S: 'GNU sparse file', D: 'GNU dump directory', M: 'GNU multi-volume continuation', V: 'GNU volume label' };
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A strict streaming reader of ustar, pax and GNU tar. Our own rather than tar-stream's: that one
 * decodes pax values as UTF-8 (mangling binary xattrs such as security.capability) and takes a tar
 * cut off between two entries for a complete one.
 */
class TarReader {
  readonly #bytes: ByteReader;
  #entry = '';
  #remaining = 0;
  #padding = 0;

  constructor(chunks: AsyncIterable<Buffer>) {
    this.#bytes = new ByteReader(chunks);
  }

  /** The next entry (after skipping what is left of the current one); null at the end marker. */
  async next(): Promise<TarEntry | null> {
    await this.#skip(this.#remaining + this.#padding);
    this.#remaining = this.#padding = 0;
    const pax = new Map<string, Buffer>();
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const block = await this.#bytes.read(BLOCK);
      if (block === null) throw invalidLayer('', 'the tar has no end-of-archive marker: it is truncated');
      if (block.equals(ZERO_BLOCK)) return null;
      const header = decodeHeader(block);
      const flag = String.fromCharCode(block[156]!);
      if (flag === 'x') parsePax(await this.#meta(header), pax, header.name);
      else if (flag === 'L') longName = cString(await this.#meta(header), header.name);
      else if (flag === 'K') longLink = cString(await this.#meta(header), header.name);
      else if (flag === 'g') {
        debug('ignoring a pax global header');
        await this.#meta(header);
      } else return this.#start(header, flag, pax, longName, longLink);
    }
  }

  /** The data of the current entry, as it arrives. */
  async *body(): AsyncGenerator<Buffer> {
    while (this.#remaining > 0) {
      const chunk = await this.#bytes.some(this.#remaining);
      if (chunk === null) throw this.#truncated();
      this.#remaining -= chunk.length;
      yield chunk;
    }
  }

  /** Reads the rest of the stream (the end marker's padding), so all of it is digested. */
  async drain(): Promise<void> {
    while ((await this.#bytes.some(Infinity)) !== null);
  }

  /** Stops reading, which destroys the source. */
  async close(): Promise<void> {
    await this.#bytes.close();
  }

  #start(header: RawHeader, flag: string, pax: Map<string, Buffer>, longName?: string, longLink?: string): TarEntry {
    const text = (key: string): string | undefined => {
      const value = pax.get(key);
      return value === undefined ? undefined : decodeName(value, header.name);
    };
    const number = (key: string, fallback: number, pattern = /^\d+$/): number => {
      const value = text(key);
      if (value === undefined) return fallback;
      const parsed = Number(value);
      if (!pattern.test(value) || !(Math.abs(parsed) <= Number.MAX_SAFE_INTEGER)) throw invalidLayer(header.name, `malformed pax ${key} '${value}'`);
      return parsed;
    };
    const name = text('path') ?? longName ?? header.name;
    this.#entry = name;
    if ([...pax.keys()].some((key) => key.startsWith('GNU.sparse.'))) throw invalidLayer(name, 'sparse files are not supported');
    let type = TYPES[flag];
    if (type === undefined) throw invalidLayer(name, `unsupported entry type '${flag}'${TYPE_NAMES[flag] ? ` (${TYPE_NAMES[flag]})` : ''}`);
    if (type === 'file' && flag !== '7' && name.endsWith('/')) type = 'directory'; // pre-POSIX directories
    const size = number('size', header.size);
    if (type !== 'file' && size !== 0) throw invalidLayer(name, `a ${type} entry with ${size} bytes of data`);
    const xattrs = new Map<string, Buffer>();
    for (const [key, value] of pax) if (key.startsWith('SCHILY.xattr.')) xattrs.set(key.slice('SCHILY.xattr.'.length), value);
    this.#remaining = size;
    this.#padding = padding(size);
    return {
      name,
      type,
      mode: header.mode,
      uid: number('uid', header.uid),
      gid: number('gid', header.gid),
      size,
      mtime: number('mtime', header.mtime, /^-?\d+(\.\d+)?$/),
      linkname: text('linkpath') ?? longLink ?? header.linkname,
      devmajor: header.devmajor,
      devminor: header.devminor,
      xattrs,
    };
  }

  /** The data of a pax or GNU long-name header. */
  async #meta(header: RawHeader): Promise<Buffer> {
    if (header.size > MAX_META_SIZE) throw invalidLayer(header.name, `an extension header of ${header.size} bytes`);
    const data = await this.#bytes.read(header.size + padding(header.size));
    if (data === null) throw invalidLayer(header.name, 'the tar ends inside an extension header: it is truncated');
    return data.subarray(0, header.size);
  }

  async #skip(n: number): Promise<void> {
    for (let left = n; left > 0;) {
      const chunk = await this.#bytes.some(left);
      if (chunk === null) throw this.#truncated();
      left -= chunk.length;
    }
  }

  #truncated(): CorralError {
    return invalidLayer(this.#entry, 'the tar ends inside this entry: it is truncated');
  }
}

/** The fields of a 512-byte header block that corral uses. */
interface RawHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
}

function decodeHeader(block: Buffer): RawHeader {
  if (!checksumMatches(block)) throw invalidLayer('', 'a header checksum does not match: this is not a tar, or it is corrupt');
  const ustar = block.toString('latin1', 257, 263) === 'ustar\0';
  let name = decodeName(field(block, 0, 100), '');
  if (ustar && block[345] !== 0) name = `${decodeName(field(block, 345, 155), name)}/${name}`;
  const num = (offset: number, length: number, what: string): number => octal(block, offset, length, what, name);
  return {
    name,
    mode: num(100, 8, 'mode') & 0o7777,
    uid: num(108, 8, 'uid'),
    gid: num(116, 8, 'gid'),
    size: num(124, 12, 'size'),
    mtime: num(136, 12, 'mtime'),
    linkname: decodeName(field(block, 157, 100), name),
    devmajor: num(329, 8, 'devmajor'),
    devminor: num(337, 8, 'devminor'),
  };
}

/** Whether the checksum field matches the block: the sum of its bytes with the field itself read
 * as spaces, unsigned as POSIX says or signed as some old tars computed it. */
function checksumMatches(block: Buffer): boolean {
  let stored = 0;
  for (let i = 148; i < 156; i++) {
    const byte = block[i]!;
    if (byte >= 0x30 && byte <= 0x37) stored = stored * 8 + byte - 0x30;
    else if (stored > 0 || (byte !== 0x20 && byte !== 0)) break;
  }
  let unsigned = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) unsigned += block[i]!;
  if (stored === unsigned) return true;
  let signed = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) signed += (block[i]! << 24) >> 24;
  return stored === signed;
}

/** A numeric header field: octal text, or GNU base-256 when the top bit of its first byte is set. */
function octal(block: Buffer, offset: number, length: number, what: string, entry: string): number {
  if (block[offset]! & 0x80) {
    let value = BigInt(block[offset]! & 0x7f);
    for (let i = 1; i < length; i++) value = (value << 8n) | BigInt(block[offset + i]!);
    if (block[offset] === 0xff) value -= 1n << BigInt(8 * length - 1);
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) throw invalidLayer(entry, `the ${what} field is out of range`);
    return Number(value);
  }
  let i = offset;
  const end = offset + length;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  let value = 0;
  for (; i < end && block[i] !== 0x20 && block[i] !== 0; i++) {
    const digit = block[i]! - 0x30;
    if (digit < 0 || digit > 7) throw invalidLayer(entry, `the ${what} field is not a number`);
    value = value * 8 + digit;
  }
  return value;
}

function field(block: Buffer, offset: number, length: number): Buffer {
  const bytes = block.subarray(offset, offset + length);
  const end = bytes.indexOf(0);
  return end === -1 ? bytes : bytes.subarray(0, end);
}

function cString(data: Buffer, entry: string): string {
  const end = data.indexOf(0);
  return decodeName(end === -1 ? data : data.subarray(0, end), entry);
}

function decodeName(bytes: Buffer, entry: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw invalidLayer(entry || bytes.toString('latin1'), 'a name is not valid UTF-8');
  }
}

/** Adds pax records ("<length> <key>=<value>\n") to `into`; values stay bytes (xattrs are binary). */
function parsePax(data: Buffer, into: Map<string, Buffer>, entry: string): void {
  for (let at = 0; at < data.length;) {
    const space = data.indexOf(0x20, at);
    const length = space === -1 ? NaN : Number(data.toString('latin1', at, space));
    const end = at + length;
    if (!Number.isInteger(length) || space === at || end > data.length || end <= space + 2 || data[end - 1] !== 0x0a) {
      throw invalidLayer(entry, 'a malformed pax header');
    }
    const record = data.subarray(space + 1, end - 1);
    const eq = record.indexOf(0x3d);
    if (eq <= 0) throw invalidLayer(entry, 'a malformed pax header');
    into.set(decodeName(record.subarray(0, eq), entry), record.subarray(eq + 1));
    at = end;
  }
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Exact-length and as-available reads over a stream of chunks. */
class ByteReader {
  readonly #chunks: AsyncIterator<Buffer>;
  #chunk: Buffer = Buffer.alloc(0);
  #at = 0;

  constructor(chunks: AsyncIterable<Buffer>) {
    this.#chunks = chunks[Symbol.asyncIterator]();
  }

  /** Exactly n bytes; null when the stream ends first. */
  async read(n: number): Promise<Buffer | null> {
    if (this.#chunk.length - this.#at >= n) return this.#take(n);
    const parts: Buffer[] = [];
    for (let have = 0; have < n;) {
      if (this.#at === this.#chunk.length && !(await this.#pull())) return null;
      const part = this.#take(Math.min(n - have, this.#chunk.length - this.#at));
      parts.push(part);
      have += part.length;
    }
    return Buffer.concat(parts, n);
  }

  /** Between 1 and n bytes, as many as are at hand; null at the end of the stream. */
  async some(n: number): Promise<Buffer | null> {
    if (this.#at === this.#chunk.length && !(await this.#pull())) return null;
    return this.#take(Math.min(n, this.#chunk.length - this.#at));
  }

  async close(): Promise<void> {
    await this.#chunks.return?.();
  }

  #take(n: number): Buffer {
    const part = this.#chunk.subarray(this.#at, this.#at + n);
    this.#at += n;
    return part;
  }

  async #pull(): Promise<boolean> {
    for (;;) {
      const next = await this.#chunks.next();
      if (next.done) return false;
      if (next.value.length === 0) continue;
      this.#chunk = next.value;
      this.#at = 0;
      return true;
    }
  }
}

// ---- writing entries -----------------------------------------------------------------------------

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

  constructor(dir: string, options: ApplyLayerOptions) {
    this.#dir = dir;
    this.#rootless = options.rootless;
    this.#lowers = options.lowerDirs ?? [];
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
  finish(): void {
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
    }
  }

  async #file(entry: TarEntry, rel: string, body: AsyncIterable<Buffer>): Promise<void> {
    const fd = this.#create(rel, (path) => openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600));
    try {
      for await (const chunk of body) {
        for (let done = 0; done < chunk.length;) done += writeSync(fd, chunk, done);
      }
      if (!this.#rootless) fchownSync(fd, entry.uid, entry.gid);
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
    this.#setXattrs(entry, rel);
  }

  /** A hard link: to an earlier entry of this layer, or else to a copy of a lower layer's file. */
  #hardLink(entry: TarEntry, rel: string): void {
    const target = entryComponents(entry.linkname, 'its hard link target');
    if (target.length === 0) throw invalidLayer(entry.name, 'a hard link to the layer root');
    const here = lookup(this.#dir, target);
    if (here !== 'absent' && here !== 'hidden') {
      if (here.stat.isDirectory()) throw invalidLayer(entry.name, `a hard link to the directory ${entry.linkname}`);
      this.#create(rel, (p) => linkSync(here.path, p));
      return;
    }
    const below = here === 'hidden' ? undefined : this.#lowers.map((l) => lookup(l, target)).find((r) => r !== 'absent');
    if (below === undefined || below === 'hidden') {
      throw invalidLayer(entry.name, `its hard link target ${entry.linkname} is neither in this layer nor in the layers below`);
    }
    if (below.stat.isDirectory()) throw invalidLayer(entry.name, `a hard link to the directory ${entry.linkname}`);
    const copy = this.#copies.get(below.path);
    if (copy !== undefined && lstatSync(this.#abs(copy.rel), { throwIfNoEntry: false })?.ino === copy.ino) {
      this.#create(rel, (p) => linkSync(this.#abs(copy.rel), p));
      return;
    }
    if (this.#copyUp(below.path, below.stat, rel)) this.#copies.set(below.path, { rel, ino: lstatSync(this.#abs(rel)).ino });
  }

  /** Copies a lower layer's file, symlink or node with its metadata; false when rootless cannot. */
  #copyUp(source: string, stat: Stats, rel: string): boolean {
    if (stat.isSymbolicLink()) {
      const path = this.#create(rel, (p) => {
        symlinkSync(readlinkSync(source), p);
        return p;
      });
      if (!this.#rootless) lchownSync(path, stat.uid, stat.gid);
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
    this.#copyXattrs(source, path);
    return true;
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
    for (const lower of this.#lowers) {
      const found = lookup(lower, parts);
      if (found === 'hidden') break;
      if (found === 'absent') continue;
      if (!found.stat.isDirectory()) break;
      const { mode, uid, gid, mtime } = found.stat;
      return { mode: mode & 0o7777, owner: { uid, gid }, mtime: mtime.getTime() / 1000 };
    }
    return { mode: 0o755 };
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

/** A path of a layer directory as the stack below sees it, looked up without following symlinks:
 * 'hidden' when the layer hides it (whiteout, a non-directory or opaque directory on the way),
 * 'absent' when the layers further down may still have it. */
function lookup(layer: string, parts: string[]): { path: string; stat: Stats } | 'absent' | 'hidden' {
  let path = layer;
  let opaque = false;
  for (let i = 0; i < parts.length; i++) {
    path = `${path}/${parts[i]}`;
    const stat = lstatSync(path, { throwIfNoEntry: false });
    if (stat === undefined) return opaque ? 'hidden' : 'absent';
    if (isWhiteout(stat)) return 'hidden';
    if (i === parts.length - 1) return { path, stat };
    if (!stat.isDirectory()) return 'hidden';
    opaque ||= lgetxattr(path, 'trusted.overlay.opaque')?.toString() === 'y' || lgetxattr(path, 'user.overlay.opaque')?.toString() === 'y';
  }
  return 'hidden';
}

function isWhiteout(stat: Stats): boolean {
  return stat.isCharacterDevice() && stat.rdev === 0;
}

function join(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}

/** A failed system call while writing an entry, as a CorralError naming the entry. */
function entryFailure(entry: string, e: unknown): unknown {
  if (e instanceof CorralError && e.step !== undefined) return e;
  const err = e as { code?: unknown; errno?: unknown; syscall?: unknown; path?: unknown };
  if (typeof err.errno !== 'number' || typeof err.syscall !== 'string') return e;
  const path = typeof err.path === 'string' ? err.path : undefined;
  return syscallError(err.syscall, Math.abs(err.errno), { ...(path === undefined ? {} : { path }), step: `layer entry ${JSON.stringify(entry)} (${err.syscall})` });
}
