/** zstd decompression for layers: Node's own (node:zlib has zstd from 22.15) where the running Node
 * has it, else fzstd, a small pure-JS decoder (no native build, nothing downloaded at install). */

import { Transform, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { Decompress } from 'fzstd';

type ZstdFactory = () => Transform;

/** A transform from zstd frames to their bytes. */
export function createZstdDecompress(): Transform {
  const native = (zlib as unknown as { createZstdDecompress?: ZstdFactory }).createZstdDecompress;
  return native ? native() : new FzstdTransform();
}

/** True when this Node can also compress zstd (push with compression 'zstd'). */
export function zstdCompressAvailable(): boolean {
  return typeof (zlib as unknown as { createZstdCompress?: unknown }).createZstdCompress === 'function';
}

/** fzstd's streaming decoder as a Node transform. */
class FzstdTransform extends Transform {
  readonly #decoder = new Decompress((chunk) => {
    this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  });

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.#decoder.push(chunk);
      done();
    } catch (e) {
      done(corrupt(e));
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.#decoder.push(new Uint8Array(0), true);
      done();
    } catch (e) {
      done(corrupt(e));
    }
  }
}

/** fzstd's errors carry no code; they become zlib-like ones the caller already maps. */
function corrupt(e: unknown): Error {
  return Object.assign(new Error(`zstd: ${(e as Error).message}`), { code: 'Z_DATA_ERROR' });
}
