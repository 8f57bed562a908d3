/** A streaming tar writer: ustar headers, pax records for what ustar cannot hold (long or non-ASCII
 * names, large numbers, xattrs), exact-size data; the same entries always give the same bytes. */

import { createHash, type Hash } from 'node:crypto';
import type { Writable } from 'node:stream';
import { CorralError } from '../../sys/errors.ts';
import { BLOCK, encodeHeader, padding } from './header.ts';
import { encodePax, XATTR_PREFIX } from './pax.ts';
import type { TarEntry } from './reader.ts';

/** An entry to write: what a reader returns, with the fields a type does not use optional. */
export type EntryToWrite = Pick<TarEntry, 'name' | 'type' | 'mode' | 'uid' | 'gid' | 'mtime'> &
  Partial<Pick<TarEntry, 'size' | 'linkname' | 'devmajor' | 'devminor' | 'xattrs'>>;

const FLAGS: Record<TarEntry['type'], string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', directory: '5', fifo: '6' };
const FLUSH_AT = 256 * 1024;

/** Writes entries to `out` (never ending it), batching small writes and honouring backpressure;
 * with `digest`, hashes every byte (a layer's DiffID); with `clampMtime` (seconds), no entry is
 * dated later than it (SOURCE_DATE_EPOCH: the same tree gives the same layer whenever it is made). */
export class TarWriter {
  readonly #out: Writable;
  readonly #hash: Hash | null;
  #size = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  readonly #clampMtime: number;

  constructor(out: Writable, options: { digest?: boolean; clampMtime?: number | undefined } = {}) {
    this.#out = out;
    this.#hash = options.digest ? createHash('sha256') : null;
    this.#clampMtime = options.clampMtime ?? Infinity;
  }

  /** Writes an entry; a file's body must hold exactly `size` bytes. */
  async add(entry: EntryToWrite, body?: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<void> {
    const size = entry.size ?? 0;
    const mtime = Math.min(entry.mtime, this.#clampMtime);
    const { block, pax } = encodeHeader({
      name: entry.name, flag: FLAGS[entry.type], mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime,
      size, linkname: entry.linkname ?? '', devmajor: entry.devmajor ?? 0, devminor: entry.devminor ?? 0,
    });
    for (const [key, value] of entry.xattrs ?? []) pax.push([`${XATTR_PREFIX}${key}`, value]);
    if (pax.length > 0) for (const part of encodePax(pax, entry.name, mtime)) await this.#push(part);
    await this.#push(block);
    let written = 0;
    for await (const chunk of body ?? []) {
      written += chunk.length;
      if (written > size) break;
      await this.#push(chunk);
    }
    if (written !== size) {
      throw new CorralError(`tar entry ${JSON.stringify(entry.name)}: its data is ${written > size ? 'longer' : `${written} bytes`}, not the ${size} bytes its header says`, {
        code: 'ERR_INVALID_ARCHIVE',
        path: entry.name,
        step: 'write tar',
      });
    }
    await this.#push(Buffer.alloc(padding(size)));
  }

  /** Writes the end-of-archive marker (two zero blocks) and everything still pending. */
  async end(): Promise<void> {
    await this.#push(Buffer.alloc(2 * BLOCK));
    await this.#flush();
  }

  /** The sha256 and length of everything written (with `digest`). */
  digest(): { diffId: string; size: number } {
    if (this.#hash === null) throw new Error('TarWriter.digest() without the digest option');
    return { diffId: `sha256:${this.#hash.digest('hex')}`, size: this.#size };
  }

  async #push(data: Buffer): Promise<void> {
    if (data.length === 0) return;
    this.#hash?.update(data);
    this.#size += data.length;
    this.#pending.push(data);
    this.#pendingBytes += data.length;
    if (this.#pendingBytes >= FLUSH_AT) await this.#flush();
  }

  async #flush(): Promise<void> {
    const data = Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    const out = this.#out;
    const closed = (): CorralError => new CorralError('the tar destination closed before the tar was complete', { code: 'ERR_STREAM_DESTROYED', step: 'write tar' });
    if (out.destroyed || out.writableEnded) throw closed();
    if (out.write(data)) return;
    await new Promise<void>((resolve, reject) => {
      const settle = (error?: Error): void => {
        out.off('drain', onDrain).off('error', settle).off('close', onClose);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onDrain = (): void => settle();
      const onClose = (): void => settle(closed());
      out.on('drain', onDrain).on('error', settle).on('close', onClose);
    });
  }
}
