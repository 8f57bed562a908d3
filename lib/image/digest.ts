/** Content digests: the sha256 names every blob, layer and image is known by. */

import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { CorralError } from '../sys/errors.ts';

const DIGEST = /^sha256:([a-f0-9]{64})$/;

/** A digest split into its parts, once it is known to be well formed. */
export interface ParsedDigest {
  algorithm: 'sha256';
  hex: string;
}

/** A digest and the byte count it covers: the part of a Descriptor that content determines. */
export interface DigestAndSize {
  digest: string;
  size: number;
}

/** Validates a digest before it becomes part of a path or a comparison; only sha256 is supported. */
export function parseDigest(digest: string): ParsedDigest {
  const match = typeof digest === 'string' ? DIGEST.exec(digest) : null;
  if (match === null) {
    throw new CorralError(`invalid digest ${JSON.stringify(digest)}: expected sha256:<64 lowercase hex>`, {
      code: 'ERR_INVALID_DIGEST',
    });
  }
  return { algorithm: 'sha256', hex: match[1]! };
}

/** The digest of bytes held in memory (manifests, configs, index files). */
export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * A passthrough that hashes and counts what flows through it, for digesting a stream on its way
 * elsewhere. With `maxSize` it fails as soon as more bytes arrive, so an endless source cannot fill
 * the disk before the size check.
 */
export class DigestStream extends Transform {
  readonly #hash: Hash = createHash('sha256');
  readonly #maxSize: number;
  #size = 0;
  #digest: string | undefined;

  constructor(options: { maxSize?: number } = {}) {
    super();
    this.#maxSize = options.maxSize ?? Infinity;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#size += chunk.length;
    if (this.#size > this.#maxSize) {
      callback(new CorralError(`content is longer than the expected ${this.#maxSize} bytes`, { code: 'ERR_DIGEST_MISMATCH' }));
      return;
    }
    this.#hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#digest = `sha256:${this.#hash.digest('hex')}`;
    callback();
  }

  /** The digest and size of everything that passed; only valid once the stream has ended. */
  result(): DigestAndSize {
    if (this.#digest === undefined) throw new Error('DigestStream.result() called before the stream ended');
    return { digest: this.#digest, size: this.#size };
  }
}

/** Reads a stream to its end and returns its digest and size, e.g. to name a blob before storing it. */
export async function digestStream(source: AsyncIterable<Buffer>): Promise<DigestAndSize> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of source) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/** The ChainIDs of a layer stack, bottom first: the keys under which unpacked layers are shared. */
export function chainIds(diffIds: string[]): string[] {
  const chain: string[] = [];
  for (const diffId of diffIds) {
    parseDigest(diffId);
    const parent = chain.at(-1);
    chain.push(parent === undefined ? diffId : sha256Digest(`${parent} ${diffId}`));
  }
  return chain;
}
