/**
 * A strict streaming reader of ustar, pax and GNU tar, over any source of bytes. Our own rather than
 * tar-stream's: that one decodes pax values as UTF-8 (mangling binary xattrs such as
 * security.capability) and takes a tar cut off between two entries for a complete one.
 */

import createDebug from 'debug';
import { BLOCK, decodeHeader, decodeName, padding, ZERO_BLOCK, type HeaderFields, type InvalidTar } from './header.ts';
import { decodePax, XATTR_PREFIX } from './pax.ts';

const debug = createDebug('corral:image');

/** One archive member, with the pax and GNU long-name extensions already applied (pax mtimes keep
 * their fraction of a second). */
export interface TarEntry extends Omit<HeaderFields, 'flag'> {
  type: 'file' | 'link' | 'symlink' | 'char' | 'block' | 'directory' | 'fifo';
  xattrs: Map<string, Buffer>;
}

/** Where a reader gets its bytes: a stream of chunks, or a file read in place. */
export interface ByteSource {
  /** Exactly n bytes; null when the source ends first. */
  read(n: number): Promise<Buffer | null>;
  /** Between 1 and n bytes, as many as are at hand; null at the end. */
  some(n: number): Promise<Buffer | null>;
  /** Passes over n bytes; false when the source ends first. */
  skip(n: number): Promise<boolean>;
  /** Bytes consumed so far. */
  readonly offset: number;
  close(): Promise<void>;
}

/** How a reader treats its input. */
export interface TarReaderOptions {
  /** The error for a malformed archive. */
  invalid: InvalidTar;
  /** Whether an archive may end without its two zero blocks (GNU tar accepts that); layers may not. */
  allowMissingEnd?: boolean;
}

const MAX_META_SIZE = 8 * 1024 * 1024;
const TYPES: Record<string, TarEntry['type']> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'link', '2': 'symlink', '3': 'char', '4': 'block', '5': 'directory', '6': 'fifo',
};
const TYPE_NAMES: Record<string, string> = { S: 'GNU sparse file', D: 'GNU dump directory', M: 'GNU multi-volume continuation', V: 'GNU volume label' };

/** Reads an archive entry by entry: next() gives the header, body() (optional) its data. */
export class TarReader {
  readonly #bytes: ByteSource;
  readonly #invalid: InvalidTar;
  readonly #allowMissingEnd: boolean;
  #entry = '';
  #remaining = 0;
  #padding = 0;

  constructor(bytes: ByteSource, options: TarReaderOptions) {
    this.#bytes = bytes;
    this.#invalid = options.invalid;
    this.#allowMissingEnd = options.allowMissingEnd ?? false;
  }

  /** Where the current entry's data starts in the source (valid after next() until body() reads). */
  get dataOffset(): number {
    return this.#bytes.offset;
  }

  /** The next entry (after skipping what is left of the current one); null at the end marker. */
  async next(): Promise<TarEntry | null> {
    if (!(await this.#bytes.skip(this.#remaining + this.#padding))) throw this.#truncated();
    this.#remaining = this.#padding = 0;
    const pax = new Map<string, Buffer>();
    let longName: string | undefined;
    let longLink: string | undefined;
    for (let first = true; ; first = false) {
      const atStart = this.#bytes.offset;
      const block = await this.#bytes.read(BLOCK);
      if (block === null) {
        if (this.#allowMissingEnd && first && atStart > 0 && (await this.#bytes.some(1)) === null) return null;
        throw this.#invalid('', 'the tar has no end-of-archive marker: it is truncated');
      }
      if (block.equals(ZERO_BLOCK)) return null;
      const header = decodeHeader(block, this.#invalid);
      if (header.flag === 'x') decodePax(await this.#meta(header), pax, header.name, this.#invalid);
      else if (header.flag === 'L') longName = this.#cString(await this.#meta(header), header.name);
      else if (header.flag === 'K') longLink = this.#cString(await this.#meta(header), header.name);
      else if (header.flag === 'g') {
        debug('ignoring a pax global header');
        await this.#meta(header);
      } else return this.#start(header, pax, longName, longLink);
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

  /** Reads the rest of the source (the end marker's padding), so all of it is digested. */
  async drain(): Promise<void> {
    while ((await this.#bytes.some(Infinity)) !== null);
  }

  /** Stops reading, which closes the source. */
  async close(): Promise<void> {
    await this.#bytes.close();
  }

  #start(header: HeaderFields, pax: Map<string, Buffer>, longName?: string, longLink?: string): TarEntry {
    const text = (key: string): string | undefined => {
      const value = pax.get(key);
      return value === undefined ? undefined : decodeName(value, header.name, this.#invalid);
    };
    const number = (key: string, fallback: number, pattern = /^\d+$/): number => {
      const value = text(key);
      if (value === undefined) return fallback;
      const parsed = Number(value);
      if (!pattern.test(value) || !(Math.abs(parsed) <= Number.MAX_SAFE_INTEGER)) throw this.#invalid(header.name, `malformed pax ${key} '${value}'`);
      return parsed;
    };
    const name = text('path') ?? longName ?? header.name;
    this.#entry = name;
    const { flag } = header;
    if ([...pax.keys()].some((key) => key.startsWith('GNU.sparse.'))) throw this.#invalid(name, 'sparse files are not supported');
    let type = TYPES[flag];
    if (type === undefined) throw this.#invalid(name, `unsupported entry type '${flag}'${TYPE_NAMES[flag] ? ` (${TYPE_NAMES[flag]})` : ''}`);
    if (type === 'file' && flag !== '7' && name.endsWith('/')) type = 'directory'; // pre-POSIX directories
    const size = number('size', header.size);
    if (type !== 'file' && size !== 0) throw this.#invalid(name, `a ${type} entry with ${size} bytes of data`);
    const xattrs = new Map<string, Buffer>();
    for (const [key, value] of pax) if (key.startsWith(XATTR_PREFIX)) xattrs.set(key.slice(XATTR_PREFIX.length), value);
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
  async #meta(header: HeaderFields): Promise<Buffer> {
    if (header.size > MAX_META_SIZE) throw this.#invalid(header.name, `an extension header of ${header.size} bytes`);
    const data = await this.#bytes.read(header.size + padding(header.size));
    if (data === null) throw this.#invalid(header.name, 'the tar ends inside an extension header: it is truncated');
    return data.subarray(0, header.size);
  }

  #cString(data: Buffer, entry: string): string {
    const end = data.indexOf(0);
    return decodeName(end === -1 ? data : data.subarray(0, end), entry, this.#invalid);
  }

  #truncated(): Error {
    return this.#invalid(this.#entry, 'the tar ends inside this entry: it is truncated');
  }
}
