/**
 * Turns an overlayfs upper directory into a layer tarball, the reverse of applyLayer: how a
 * container's changes become an image layer (commit). Whiteout devices become `.wh.NAME` entries and
 * opaque directories get a `.wh..wh..opq` entry; the same tree always gives the same bytes.
 */

import createDebug from 'debug';
import { createHash } from 'node:crypto';
import { closeSync, constants, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Stats } from 'node:fs';
import type { Writable } from 'node:stream';
import { CorralError } from '../sys/errors.ts';
import { devMajor, devMinor, lgetxattr, llistxattr } from '../sys/fs-ops.ts';
import type { LayerDigest } from './layer-apply.ts';
import { isOverlayXattr, OPAQUE_MARKER, opaqueXattr, WHITEOUT_PREFIX } from './tar-paths.ts';

const debug = createDebug('corral:image');

/** How the upper directory was written: rootless overlay marks opaque directories with user.*. */
export interface DiffLayerOptions {
  rootless: boolean;
}

/**
 * Writes the changes in `upper` to `out` as a plain tar (not ending `out`) and returns its DiffID
 * and size. The upper directory must be quiescent (its container stopped or frozen): symlinks are
 * never followed at the last component, but a running container could swap a parent under the walk.
 */
export async function diffLayer(upper: string, out: Writable, options: DiffLayerOptions): Promise<LayerDigest> {
  const sink = new TarSink(out);
  const walker = new UpperWalker(upper, sink, options);
  await walker.walk('');
  await sink.end();
  return { diffId: `sha256:${sink.hash.digest('hex')}`, size: sink.size };
}

// ---- walking the upper directory -----------------------------------------------------------------

/** xattrs that describe the host rather than the content: overlay's own and the SELinux label. */
function keepXattr(name: string): boolean {
  return !isOverlayXattr(name) && name !== 'security.selinux';
}

/** Marks of overlay features whose changes live partly outside the upper directory. */
const INCOMPLETE_UPPER = /^(trusted|user)\.overlay\.(metacopy|redirect)$/;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const MARKER = { mode: 0o600, uid: 0, gid: 0, mtime: 0 }; // whiteouts carry no metadata worth keeping

/** Emits the entries of an upper directory in sorted order, depth first. */
class UpperWalker {
  readonly #upper: string;
  readonly #sink: TarSink;
  readonly #opaque: string;
  /** The first name each multiply-linked inode was archived under. */
  readonly #links = new Map<string, string>();

  constructor(upper: string, sink: TarSink, options: DiffLayerOptions) {
    this.#upper = upper;
    this.#sink = sink;
    this.#opaque = opaqueXattr(options.rootless);
  }

  async walk(dir: string): Promise<void> {
    const names = readdirSync(this.#path(dir), { encoding: 'buffer' }).sort(Buffer.compare);
    for (const raw of names) {
      const name = decodeName(raw, this.#path(dir));
      const rel = join(dir, name);
      const path = this.#path(rel);
      const stat = lstatSync(path);
      if (stat.isCharacterDevice() && stat.rdev === 0) {
        await this.#sink.entry({ name: join(dir, WHITEOUT_PREFIX + name), type: '0', ...MARKER });
      } else if (stat.isDirectory()) {
        await this.#sink.entry({ name: `${rel}/`, type: '5', ...this.#common(path, stat) });
        if (lgetxattr(path, this.#opaque)?.toString() === 'y') await this.#sink.entry({ name: `${rel}/${OPAQUE_MARKER}`, type: '0', ...MARKER });
        await this.walk(rel);
      } else if (stat.isSocket()) {
        debug('skipping the socket %s', path);
      } else {
        await this.#nonDirectory(rel, path, stat);
      }
    }
  }

  async #nonDirectory(rel: string, path: string, stat: Stats): Promise<void> {
    if (stat.nlink > 1) {
      const inode = `${stat.dev}:${stat.ino}`;
      const first = this.#links.get(inode);
      if (first !== undefined) {
        await this.#sink.entry({ name: rel, type: '1', linkname: first, ...this.#common(path, stat, false) });
        return;
      }
      this.#links.set(inode, rel);
    }
    const common = this.#common(path, stat);
    if (stat.isFile()) {
      await this.#sink.entry({ name: rel, type: '0', size: stat.size, ...common });
      await this.#content(path, stat.size);
    } else if (stat.isSymbolicLink()) {
      await this.#sink.entry({ name: rel, type: '2', linkname: decodeName(readlinkSync(path, { encoding: 'buffer' }), path), ...common });
    } else if (stat.isFIFO()) {
      await this.#sink.entry({ name: rel, type: '6', ...common });
    } else {
      const type = stat.isCharacterDevice() ? '3' : '4';
      await this.#sink.entry({ name: rel, type, devmajor: devMajor(stat.rdev), devminor: devMinor(stat.rdev), ...common });
    }
  }

  /** Metadata every real entry carries: mode, numeric owner, whole-second mtime and (except on
   * hard links, which share their target's) xattrs. */
  #common(path: string, stat: Stats, withXattrs = true): Pick<TarEntry, 'mode' | 'uid' | 'gid' | 'mtime' | 'xattrs'> {
    const names = withXattrs ? llistxattr(path) : [];
    const incomplete = names.find((name) => INCOMPLETE_UPPER.test(name));
    if (incomplete !== undefined) {
      throw new CorralError(`${path} has ${incomplete}: the overlay was mounted with metacopy or redirect_dir, so the upper directory alone does not hold the changes (mount with metacopy=off,redirect_dir=off)`, {
        code: 'ERR_UNSUPPORTED_OVERLAY',
        path,
        step: 'diff layer',
      });
    }
    const xattrs: Array<[string, Buffer]> = [];
    for (const name of names.filter(keepXattr).sort()) {
      const value = lgetxattr(path, name);
      if (value !== null) xattrs.push([name, value]);
    }
    return { mode: stat.mode & 0o7777, uid: stat.uid, gid: stat.gid, mtime: Math.floor(stat.mtimeMs / 1000), xattrs };
  }

  /** Copies exactly `size` bytes of a file (never through a symlink), then the block padding. */
  async #content(path: string, size: number): Promise<void> {
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      for (let left = size; left > 0;) {
        const chunk = Buffer.allocUnsafe(Math.min(left, 1024 * 1024));
        const n = readSync(fd, chunk, 0, chunk.length, size - left);
        if (n === 0) throw new CorralError(`${path} shrank while it was being archived`, { code: 'ERR_LAYER_CHANGED', path, step: 'diff layer' });
        await this.#sink.push(chunk.subarray(0, n));
        left -= n;
      }
    } finally {
      closeSync(fd);
    }
    await this.#sink.push(Buffer.alloc(padding(size)));
  }

  #path(rel: string): string {
    return rel === '' ? this.#upper : `${this.#upper}/${rel}`;
  }
}

function decodeName(raw: Buffer, where: string): string {
  try {
    return utf8.decode(raw);
  } catch {
    throw new CorralError(`${where} holds a name that is not valid UTF-8 (${raw.toString('latin1')}); layers carry UTF-8 names only`, {
      code: 'ERR_UNSUPPORTED_FILE_NAME',
      path: where,
      step: 'diff layer',
    });
  }
}

function join(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

// ---- writing the tar -----------------------------------------------------------------------------

/** One archive member as the writer encodes it (ustar, with pax records for what ustar cannot hold). */
interface TarEntry {
  name: string;
  /** The ustar typeflag. */
  type: '0' | '1' | '2' | '3' | '4' | '5' | '6';
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Array<[string, Buffer]>;
}

const BLOCK = 512;
const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;
const FLUSH_AT = 256 * 1024;

/** Batches the archive's small writes, honours backpressure and digests every byte. */
class TarSink {
  readonly hash = createHash('sha256');
  size = 0;
  readonly #out: Writable;
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  constructor(out: Writable) {
    this.#out = out;
  }

  async entry(entry: TarEntry): Promise<void> {
    for (const block of encodeEntry(entry)) await this.push(block);
  }

  async push(data: Buffer): Promise<void> {
    if (data.length === 0) return;
    this.hash.update(data);
    this.size += data.length;
    this.#pending.push(data);
    this.#pendingBytes += data.length;
    if (this.#pendingBytes >= FLUSH_AT) await this.#flush();
  }

  /** Writes the end-of-archive marker (two zero blocks) and everything still pending. */
  async end(): Promise<void> {
    await this.push(Buffer.alloc(2 * BLOCK));
    await this.#flush();
  }

  async #flush(): Promise<void> {
    const data = Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    const out = this.#out;
    if (out.destroyed || out.writableEnded) throw new CorralError('the layer tar destination closed before the tar was complete', { code: 'ERR_STREAM_DESTROYED', step: 'diff layer' });
    if (out.write(data)) return;
    await new Promise<void>((resolve, reject) => {
      const settle = (error?: Error): void => {
        out.off('drain', onDrain).off('error', settle).off('close', onClose);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onDrain = (): void => settle();
      const onClose = (): void => settle(new CorralError('the layer tar destination closed before the tar was complete', { code: 'ERR_STREAM_DESTROYED', step: 'diff layer' }));
      out.on('drain', onDrain).on('error', settle).on('close', onClose);
    });
  }
}

/** The header blocks of an entry: a pax extended header first when ustar cannot hold a field. */
function encodeEntry(entry: TarEntry): Buffer[] {
  const size = entry.size ?? 0;
  const name = Buffer.from(entry.name);
  const linkname = Buffer.from(entry.linkname ?? '');
  const split = splitName(name);
  const pax: Array<[string, Buffer]> = [];
  if (split === null) pax.push(['path', name]);
  if (linkname.length > 100 || !isAscii(linkname)) pax.push(['linkpath', linkname]);
  if (size > MAX_OCTAL_11) pax.push(['size', Buffer.from(String(size))]);
  if (entry.uid > MAX_OCTAL_7) pax.push(['uid', Buffer.from(String(entry.uid))]);
  if (entry.gid > MAX_OCTAL_7) pax.push(['gid', Buffer.from(String(entry.gid))]);
  if (entry.mtime < 0 || entry.mtime > MAX_OCTAL_11) pax.push(['mtime', Buffer.from(String(entry.mtime))]);
  for (const [key, value] of entry.xattrs ?? []) pax.push([`SCHILY.xattr.${key}`, value]);

  const header = Buffer.alloc(BLOCK);
  const [prefix, base] = split ?? [Buffer.alloc(0), name.subarray(0, 100)];
  base.copy(header, 0);
  writeOctal(header, 100, 8, entry.mode);
  writeOctal(header, 108, 8, entry.uid > MAX_OCTAL_7 ? 0 : entry.uid);
  writeOctal(header, 116, 8, entry.gid > MAX_OCTAL_7 ? 0 : entry.gid);
  writeOctal(header, 124, 12, size > MAX_OCTAL_11 ? 0 : size);
  writeOctal(header, 136, 12, entry.mtime < 0 || entry.mtime > MAX_OCTAL_11 ? 0 : entry.mtime);
  header.write(entry.type, 156, 'latin1');
  linkname.subarray(0, 100).copy(header, 157);
  header.write('ustar\x0000', 257, 'latin1');
  writeOctal(header, 329, 8, entry.devmajor ?? 0);
  writeOctal(header, 337, 8, entry.devminor ?? 0);
  prefix.copy(header, 345);
  writeChecksum(header);
  if (pax.length === 0) return [header];
  return [...paxHeader(pax, entry), header];
}

/** A pax extended header ('x') holding `records`, named after the entry it describes. */
function paxHeader(records: Array<[string, Buffer]>, entry: TarEntry): Buffer[] {
  const data = Buffer.concat(records.map(([key, value]) => paxRecord(key, value)));
  const base = entry.name.replace(/\/$/, '').split('/').pop()!;
  const header = Buffer.alloc(BLOCK);
  Buffer.from(`PaxHeaders/${base}`).subarray(0, 100).copy(header, 0);
  writeOctal(header, 100, 8, 0o644);
  writeOctal(header, 108, 8, 0);
  writeOctal(header, 116, 8, 0);
  writeOctal(header, 124, 12, data.length);
  writeOctal(header, 136, 12, Math.min(Math.max(entry.mtime, 0), MAX_OCTAL_11));
  header.write('x', 156, 'latin1');
  header.write('ustar\x0000', 257, 'latin1');
  writeChecksum(header);
  return [header, data, Buffer.alloc(padding(data.length))];
}

/** "<length> <key>=<value>\n", where length counts its own digits too. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let length = body.length + String(body.length).length;
  if (String(length).length !== String(body.length).length) length = body.length + String(length).length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

/** Splits a name into ustar's prefix (155 bytes) and name (100 bytes) at a '/'; null when it does
 * not fit or is not ASCII (then pax carries it). */
function splitName(name: Buffer): [Buffer, Buffer] | null {
  if (!isAscii(name)) return null;
  if (name.length <= 100) return [Buffer.alloc(0), name];
  for (let at = name.indexOf(0x2f, Math.max(name.length - 101, 1)); at !== -1 && at <= 155; at = name.indexOf(0x2f, at + 1)) {
    if (at < name.length - 1) return [name.subarray(0, at), name.subarray(at + 1)];
  }
  return null;
}

function isAscii(bytes: Buffer): boolean {
  return bytes.every((b) => b < 0x80);
}

function writeOctal(header: Buffer, offset: number, length: number, value: number): void {
  header.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'latin1');
}

function writeChecksum(header: Buffer): void {
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}
