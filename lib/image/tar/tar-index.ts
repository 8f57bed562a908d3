/**
 * Random access to the files of an uncompressed tar: one pass over the headers (the data is skipped,
 * not read) records where each file's data lies, then any file can be read or streamed in place,
 * without extracting the archive.
 */

import { open, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { CorralError, fromNodeError } from '../../sys/errors.ts';
import { TarReader } from './reader.ts';
import { FileSource } from './sources.ts';

const MAX_LINK_HOPS = 16;

interface Extent {
  offset: number;
  size: number;
}

/** An opened tar archive whose regular files (and links to them) can be read by name. */
export class TarIndex {
  readonly path: string;
  readonly #file: FileHandle;
  readonly #files: Map<string, Extent>;

  private constructor(path: string, file: FileHandle, files: Map<string, Extent>) {
    this.path = path;
    this.#file = file;
    this.#files = files;
  }

  /** Scans the archive's headers; fails with ERR_INVALID_ARCHIVE when the file is not a (whole) tar. */
  static async open(path: string): Promise<TarIndex> {
    let file: FileHandle;
    try {
      file = await open(path, 'r');
    } catch (e) {
      throw fromNodeError(e, 'open the archive', path);
    }
    try {
      return new TarIndex(path, file, await scan(path, file));
    } catch (error) {
      await file.close();
      throw error;
    }
  }

  /** Whether a file (or a link resolving to one) of that name is in the archive; './a' and '/a' are 'a'. */
  has(name: string): boolean {
    return this.#files.has(normalize(name));
  }

  /** The file's size in bytes. */
  size(name: string): number {
    return this.#extent(name).size;
  }

  /** The first `length` bytes of a file (fewer if it is shorter), e.g. to sniff compression. */
  async head(name: string, length: number): Promise<Buffer> {
    const { offset, size } = this.#extent(name);
    const buffer = Buffer.alloc(Math.min(length, size));
    await this.#file.read(buffer, 0, buffer.length, offset);
    return buffer;
  }

  /** A whole file in memory. */
  async read(name: string): Promise<Buffer> {
    return this.head(name, this.size(name));
  }

  /** A stream of a file's content, read in place from the archive. */
  createReadStream(name: string): Readable {
    const { offset, size } = this.#extent(name);
    if (size === 0) return Readable.from([]);
    return this.#file.createReadStream({ start: offset, end: offset + size - 1, autoClose: false });
  }

  /** Closes the archive; streams still open fail. */
  async close(): Promise<void> {
    await this.#file.close();
  }

  #extent(name: string): Extent {
    const extent = this.#files.get(normalize(name));
    if (extent === undefined) {
      throw new CorralError(`${this.path}: no file ${JSON.stringify(name)} in the archive`, {
        code: 'ERR_INVALID_ARCHIVE',
        path: this.path,
      });
    }
    return extent;
  }
}

async function scan(path: string, file: FileHandle): Promise<Map<string, Extent>> {
  const invalid = (entry: string, why: string): CorralError =>
    new CorralError(`${path} is not a valid tar archive: ${entry === '' ? '' : `${JSON.stringify(entry)}: `}${why}`, { code: 'ERR_INVALID_ARCHIVE', path });
  const tar = new TarReader(new FileSource(file, (await file.stat()).size), { invalid, allowMissingEnd: true });
  const files = new Map<string, Extent>();
  const links = new Map<string, string>();
  for (let entry = await tar.next(); entry !== null; entry = await tar.next()) {
    const name = normalize(entry.name);
    if (entry.type === 'file') files.set(name, { offset: tar.dataOffset, size: entry.size });
    else if (entry.type === 'link') links.set(name, normalize(entry.linkname));
    else if (entry.type === 'symlink') {
      links.set(name, normalize(entry.linkname.startsWith('/') ? entry.linkname : posix.join(posix.dirname(name), entry.linkname)));
    }
  }
  for (const [name, target] of links) {
    const extent = resolveLink(target, files, links);
    if (extent !== undefined) files.set(name, extent);
  }
  return files;
}

function resolveLink(target: string, files: Map<string, Extent>, links: Map<string, string>): Extent | undefined {
  let current = target;
  for (let hop = 0; hop < MAX_LINK_HOPS; hop++) {
    const extent = files.get(current);
    if (extent !== undefined) return extent;
    const next = links.get(current);
    if (next === undefined) return undefined;
    current = next;
  }
  return undefined;
}

/** Archive member names as lookup keys: no leading './' or '/', no trailing '/', no '..' escaping. */
function normalize(name: string): string {
  const clean = posix.normalize(`/${name}`).slice(1);
  return clean.endsWith('/') ? clean.slice(0, -1) : clean;
}
