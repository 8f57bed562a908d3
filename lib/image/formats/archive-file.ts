/** Writing a tar archive file entry by entry, atomically: it appears under its name only once complete. */

import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { pipeline, type Readable, type Transform } from 'node:stream';
import type { WriteStream } from 'node:fs';
import { fromNodeError } from '../../sys/errors.ts';
import { TarWriter } from '../tar/writer.ts';

/** Entries get fixed owner and time, so the same content always makes the same archive. */
const FIXED = { uid: 0, gid: 0, mtime: 0 };

/** A tar being written to a temporary file next to `path`; `finish()` renames it into place. */
export class ArchiveFile {
  readonly #path: string;
  readonly #tmp: string;
  readonly #file: WriteStream;
  readonly #tar: TarWriter;

  private constructor(path: string, tmp: string, file: FileHandle) {
    this.#path = path;
    this.#tmp = tmp;
    // flush: fsync before close, so the archive is on disk before its name is.
    this.#file = file.createWriteStream({ flush: true });
    this.#file.on('error', () => {}); // surfaced by the write that meets it, or by finish()
    this.#tar = new TarWriter(this.#file);
  }

  /** Starts writing the archive that will become `path` (the temporary file exists once this resolves). */
  static async create(path: string): Promise<ArchiveFile> {
    const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      return new ArchiveFile(path, tmp, await open(tmp, 'wx', 0o644));
    } catch (e) {
      throw fromNodeError(e, 'create the archive', tmp);
    }
  }

  /** Adds a directory entry. */
  addDirectory(name: string): Promise<void> {
    return this.#tar.add({ name, type: 'directory', mode: 0o755, ...FIXED });
  }

  /** Adds a file whose content is in memory. */
  addBuffer(name: string, data: Buffer): Promise<void> {
    return this.#tar.add({ name, type: 'file', mode: 0o644, size: data.length, ...FIXED }, [data]);
  }

  /** Adds a file of exactly `size` bytes read from `source` through `transforms` (a mismatch fails). */
  addStream(name: string, size: number, source: Readable, ...transforms: Transform[]): Promise<void> {
    if (transforms.length > 0) pipeline([source, ...transforms], () => {}); // a failure reaches us through the last one
    const body: Readable = transforms.at(-1) ?? source;
    return this.#tar.add({ name, type: 'file', mode: 0o644, size, ...FIXED }, body);
  }

  /** Ends the archive, flushes it to disk and gives it its name. */
  async finish(): Promise<void> {
    await this.#tar.end();
    this.#file.end();
    await finished(this.#file);
    await rename(this.#tmp, this.#path);
  }

  /** Gives up: the partial archive is removed and `path` is left as it was. */
  async abort(): Promise<void> {
    this.#file.destroy();
    await finished(this.#file).catch(() => {});
    await rm(this.#tmp, { force: true });
  }
}
