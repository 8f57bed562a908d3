/** A layer blob's tar bytes: decompressed when it starts with gzip's or zstd's magic, digested and
 * counted on the way, and cut off past a bound so a small blob cannot unpack to a huge tree (a bomb). */

import { createHash, type Hash } from 'node:crypto';
import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { CorralError, type ErrorCode } from '../../sys/errors.ts';
import { createZstdDecompress } from './zstd.ts';

const COMPRESSIONS: Array<{ magic: Buffer; name: string }> = [
  { magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), name: 'xz' },
  { magic: Buffer.from('BZh'), name: 'bzip2' },
];
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** The tar bytes of a layer blob: gunzipped or zstd-decompressed by its magic, else as they are. */
export async function* uncompressed(source: Readable): AsyncGenerator<Buffer> {
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
    throw new CorralError(`the layer is ${unsupported.name}-compressed, which corral cannot decompress (gzip and zstd only, as OCI layers are)`, {
      code: 'ERR_UNSUPPORTED_COMPRESSION',
      step: 'apply layer',
    });
  }
  const all = (async function* () {
    if (head.length > 0) yield head;
    yield* chunks;
  })();
  const zstd = head.subarray(0, 4).equals(ZSTD_MAGIC);
  if (!zstd && !head.subarray(0, 2).equals(GZIP_MAGIC)) {
    yield* all;
    return;
  }
  const gunzip = zstd ? createZstdDecompress() : createGunzip({ chunkSize: 64 * 1024 });
  pipeline(Readable.from(all), gunzip, () => {}); // errors reach us through gunzip
  try {
    yield* gunzip;
  } catch (e) {
    const zlib = e as { code?: string; message?: string };
    if (!zlib.code?.startsWith('Z_') && !zlib.code?.startsWith('ZSTD_')) throw e;
    throw new CorralError(`invalid layer: the ${zstd ? 'zstd' : 'gzip'} stream is truncated or corrupt (${zlib.message})`, {
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

/** Digests and counts the uncompressed bytes as they pass (the layer's DiffID and size), and fails
 * with ERR_LAYER_TOO_LARGE as soon as they exceed `maxBytes`. */
export class Tally {
  readonly hash: Hash = createHash('sha256');
  size = 0;
  readonly #maxBytes: number;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  async *count(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of chunks) {
      this.size += chunk.length;
      // test/security/layer-gzip-bomb.test.ts: stop before the tree grows past the bound, not after.
      if (this.size > this.#maxBytes) {
        throw new CorralError(`the layer unpacks to more than ${this.#maxBytes} bytes (maxLayerBytes)`, { code: 'ERR_LAYER_TOO_LARGE', step: 'apply layer' });
      }
      this.hash.update(chunk);
      yield chunk;
    }
  }
}
