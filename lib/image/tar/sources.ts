/** The byte sources a TarReader reads: a stream of chunks (a layer as it arrives), or a file in place. */

import type { FileHandle } from 'node:fs/promises';
import type { ByteSource } from './reader.ts';

/** Exact-length and as-available reads over a stream of chunks. */
export class ChunkSource implements ByteSource {
  readonly #chunks: AsyncIterator<Buffer>;
  #chunk: Buffer = Buffer.alloc(0);
  #at = 0;
  #offset = 0;

  constructor(chunks: AsyncIterable<Buffer>) {
    this.#chunks = chunks[Symbol.asyncIterator]();
  }

  get offset(): number {
    return this.#offset;
  }

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

  async some(n: number): Promise<Buffer | null> {
    if (this.#at === this.#chunk.length && !(await this.#pull())) return null;
    return this.#take(Math.min(n, this.#chunk.length - this.#at));
  }

  async skip(n: number): Promise<boolean> {
    for (let left = n; left > 0;) {
      const chunk = await this.some(left);
      if (chunk === null) return false;
      left -= chunk.length;
    }
    return true;
  }

  async close(): Promise<void> {
    await this.#chunks.return?.();
  }

  #take(n: number): Buffer {
    const part = this.#chunk.subarray(this.#at, this.#at + n);
    this.#at += n;
    this.#offset += n;
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

/** Positioned reads of an open file: skipping data costs nothing, so an index reads headers only.
 * Closing it is the owner's business (the handle outlives the scan). */
export class FileSource implements ByteSource {
  readonly #file: FileHandle;
  readonly #size: number;
  #offset = 0;

  constructor(file: FileHandle, size: number) {
    this.#file = file;
    this.#size = size;
  }

  get offset(): number {
    return this.#offset;
  }

  async read(n: number): Promise<Buffer | null> {
    if (this.#offset + n > this.#size) return null;
    const buffer = Buffer.alloc(n);
    const { bytesRead } = await this.#file.read(buffer, 0, n, this.#offset);
    if (bytesRead < n) return null;
    this.#offset += n;
    return buffer;
  }

  async some(n: number): Promise<Buffer | null> {
    const length = Math.min(n, this.#size - this.#offset, 1024 * 1024);
    if (length <= 0) return null;
    return this.read(length);
  }

  async skip(n: number): Promise<boolean> {
    if (this.#offset + n > this.#size) return false;
    this.#offset += n;
    return true;
  }

  async close(): Promise<void> {}
}
