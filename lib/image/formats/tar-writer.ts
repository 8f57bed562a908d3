/** Writing a tar archive entry by entry, atomically: it appears under its name only once complete. */

import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar, { type Header } from 'tar-stream';

/** Entries get fixed owner and time, so the same content always makes the same archive. */
const FIXED = { uid: 0, gid: 0, mtime: new Date(0) };

/** A tar being written to a temporary file next to `path`; `finish()` renames it into place. */
export class TarWriter {
  readonly #path: string;
  readonly #tmp: string;
  readonly #pack = tar.pack();
  readonly #written: Promise<void>;

  private constructor(path: string, tmp: string, file: FileHandle) {
    this.#path = path;
    this.#tmp = tmp;
    // flush: fsync before close, so the archive is on disk before its name is.
    this.#written = pipeline(this.#pack, file.createWriteStream({ flush: true }));
    this.#written.catch(() => {}); // surfaced by finish() or by the entry that failed
  }

  /** Starts writing the archive that will become `path` (the temporary file exists once this resolves). */
  static async create(path: string): Promise<TarWriter> {
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    return new TarWriter(path, tmp, await open(tmp, 'wx', 0o644));
  }

  /** Adds a directory entry. */
  addDirectory(name: string): Promise<void> {
    return this.#entry({ name, type: 'directory', mode: 0o755, ...FIXED });
  }

  /** Adds a file whose content is in memory. */
  addBuffer(name: string, data: Buffer): Promise<void> {
    return this.#entry({ name, type: 'file', mode: 0o644, size: data.length, ...FIXED }, data);
  }

  /** Adds a file of exactly `size` bytes read from `source` through `transforms` (a mismatch fails). */
  async addStream(name: string, size: number, source: Readable, ...transforms: Transform[]): Promise<void> {
    const sink = this.#pack.entry({ name, type: 'file', mode: 0o644, size, ...FIXED });
    // The entry is a streamx Writable: Node's pipeline drives it, though its types do not say so.
    await pipeline([source, ...transforms, sink as unknown as NodeJS.WritableStream]);
  }

  /** Ends the archive, flushes it to disk and gives it its name. */
  async finish(): Promise<void> {
    this.#pack.finalize();
    await this.#written;
    await rename(this.#tmp, this.#path);
  }

  /** Gives up: the partial archive is removed and `path` is left as it was. */
  async abort(): Promise<void> {
    this.#pack.destroy();
    await this.#written.catch(() => {});
    await rm(this.#tmp, { force: true });
  }

  #entry(header: Partial<Header> & { name: string }, data?: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (error?: Error | null): void => (error ? reject(error) : resolve());
      if (data === undefined) this.#pack.entry(header, done);
      else this.#pack.entry(header, data, done);
    });
  }
}
