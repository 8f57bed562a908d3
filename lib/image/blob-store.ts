/** The content-addressed blob store: every manifest, config and layer, stored once under its digest. */

import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync, type ReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CorralError } from '../sys/errors.ts';
import { DigestStream, parseDigest, sha256Digest, type DigestAndSize } from './digest.ts';

const HEX64 = /^[a-f0-9]{64}$/;

/** What a caller knows about a blob before it arrives (from a descriptor), checked by `put`. */
export interface ExpectedBlob {
  digest?: string;
  size?: number;
}

/**
 * Blobs live in `dir/sha256/<hex>`; writers stage them in `dir/.tmp/` and rename them into place
 * once their digest is verified, so a blob is either complete or absent.
 */
export class BlobStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Whether the blob is stored (complete: partial blobs never have their final name). */
  has(digest: string): boolean {
    return existsSync(this.path(digest));
  }

  /** Where the blob is (or would be) stored; validates the digest so it cannot escape the store. */
  path(digest: string): string {
    return join(this.dir, 'sha256', parseDigest(digest).hex);
  }

  /**
   * Stores a blob, hashing it while it is written, and returns its digest and size. Refuses it with
   * ERR_DIGEST_MISMATCH when it is not what `expected` says; concurrent puts of one blob all succeed.
   */
  async put(source: Readable | Buffer, expected: ExpectedBlob = {}): Promise<DigestAndSize> {
    if (expected.digest !== undefined) parseDigest(expected.digest);
    const tmpDir = join(this.dir, '.tmp');
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}`);
    try {
      const digester = new DigestStream(expected.size === undefined ? {} : { maxSize: expected.size });
      const input = Buffer.isBuffer(source) ? Readable.from([source]) : source;
      // Opened before streaming, so a failure cannot race the stream's own open and leave a file
      // behind; closed here, whatever happens, so a failed write leaks no fd (issue 10 item 13).
      const file = await open(tmp, 'wx', 0o644);
      try {
        // flush: fsync before close, so the blob is on disk before its name is.
        await pipeline(input, digester, file.createWriteStream({ flush: true }));
      } catch (error) {
        if ((error as CorralError).code === 'ERR_DIGEST_MISMATCH') throw mismatch(expected, `more than ${expected.size} bytes`);
        throw error;
      } finally {
        await file.close(); // the stream's own close, if it is under way, or ours
      }
      const actual = digester.result();
      if (
        (expected.digest !== undefined && expected.digest !== actual.digest) ||
        (expected.size !== undefined && expected.size !== actual.size)
      ) {
        throw mismatch(expected, `${actual.digest} (${actual.size} bytes)`);
      }
      const target = this.path(actual.digest);
      await mkdir(join(this.dir, 'sha256'), { recursive: true });
      await rename(tmp, target);
      await syncDir(join(this.dir, 'sha256'));
      return actual;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** The whole blob in memory, verified against its digest: for manifests, configs and indexes. */
  async read(digest: string): Promise<Buffer> {
    try {
      return this.#verified(digest, await readFile(this.path(digest)));
    } catch (error) {
      throw isMissing(error) ? notFound(digest, error) : error;
    }
  }

  /** A verified JSON blob, parsed. */
  async readJson<T>(digest: string): Promise<T> {
    return JSON.parse((await this.read(digest)).toString('utf8')) as T;
  }

  /** readJson() for synchronous callers (resolving an image to run it). */
  readJsonSync<T>(digest: string): T {
    try {
      return JSON.parse(this.#verified(digest, readFileSync(this.path(digest))).toString('utf8')) as T;
    } catch (error) {
      throw isMissing(error) ? notFound(digest, error) : error;
    }
  }

  /** The blob's size in bytes, e.g. for a descriptor or a tar header. */
  async size(digest: string): Promise<number> {
    try {
      return (await stat(this.path(digest))).size;
    } catch (error) {
      throw isMissing(error) ? notFound(digest, error) : error;
    }
  }

  /** size() for synchronous callers (disk usage reports). */
  sizeSync(digest: string): number {
    try {
      return statSync(this.path(digest)).size;
    } catch (error) {
      throw isMissing(error) ? notFound(digest, error) : error;
    }
  }

  /** A stream of the blob, or of the bytes start..end (inclusive) of it, for layers too large to
   * hold in memory (not re-verified); `highWaterMark` is its read size. */
  createReadStream(digest: string, options?: { start?: number; end?: number; highWaterMark?: number }): ReadStream {
    if (!this.has(digest)) throw notFound(digest);
    return createReadStream(this.path(digest), options);
  }

  /** Deletes a blob (gc decides which); removing an absent blob is not an error. */
  async remove(digest: string): Promise<void> {
    await rm(this.path(digest), { force: true });
  }

  /** Every stored digest, for gc. */
  list(): string[] {
    let names: string[];
    try {
      names = readdirSync(join(this.dir, 'sha256'));
    } catch (error) {
      if (isMissing(error)) return [];
      throw error;
    }
    return names.filter((name) => HEX64.test(name)).map((hex) => `sha256:${hex}`);
  }

  /** Removes staging files older than `olderThanMs`: the debris of writers that crashed. Returns how many. */
  async sweepTemp(olderThanMs: number): Promise<number> {
    const tmpDir = join(this.dir, '.tmp');
    let names: string[];
    try {
      names = await readdir(tmpDir);
    } catch (error) {
      if (isMissing(error)) return 0;
      throw error;
    }
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for (const name of names) {
      const file = join(tmpDir, name);
      const info = await stat(file).catch(() => undefined);
      if (info === undefined || info.mtimeMs >= cutoff) continue;
      await rm(file, { force: true, recursive: true });
      removed++;
    }
    return removed;
  }

  #verified(digest: string, data: Buffer): Buffer {
    const actual = sha256Digest(data);
    if (actual !== digest) {
      throw new CorralError(`stored blob ${digest} is corrupt: its content hashes to ${actual}`, {
        code: 'ERR_DIGEST_MISMATCH',
        path: this.path(digest),
      });
    }
    return data;
  }
}

function mismatch(expected: ExpectedBlob, got: string): CorralError {
  return new CorralError(
    `blob mismatch: expected ${expected.digest ?? 'any digest'} (${expected.size ?? 'any'} bytes), got ${got}`,
    { code: 'ERR_DIGEST_MISMATCH', step: 'put blob' },
  );
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

function notFound(digest: string, cause?: unknown): CorralError {
  return new CorralError(`blob ${digest} is not in the store`, {
    code: 'ERR_BLOB_NOT_FOUND',
    ...(cause === undefined ? {} : { cause }),
  });
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
