/**
 * Random access to the files of an uncompressed tar: one pass over the headers records where each
 * file's data lies, then any file can be read or streamed in place, without extracting the archive.
 */

import { open, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { CorralError } from '../../sys/errors.ts';

const BLOCK = 512;
const MAX_LINK_HOPS = 16;

interface Extent {
  offset: number;
  size: number;
}

interface RawEntry {
  name: string;
  type: string;
  linkname: string;
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
    const file = await open(path, 'r');
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
  const { size: fileSize } = await file.stat();
  const invalid = (why: string): CorralError =>
    new CorralError(`${path} is not a valid tar archive: ${why}`, { code: 'ERR_INVALID_ARCHIVE', path });
  const files = new Map<string, Extent>();
  const links = new Map<string, string>();
  const header = Buffer.alloc(BLOCK);
  let position = 0;
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;

  for (;;) {
    if (position + BLOCK > fileSize) {
      if (position === fileSize && position > 0) break; // no end-of-archive blocks: tolerated, like GNU tar
      throw invalid('truncated header');
    }
    await file.read(header, 0, BLOCK, position);
    if (header.every((byte) => byte === 0)) break;
    if (!checksumOk(header)) throw invalid(`bad header checksum at offset ${position}`);
    const raw = parseHeader(header);
    const isMeta = raw.type === 'x' || raw.type === 'L' || raw.type === 'K';
    const dataStart = position + BLOCK;
    const size = isMeta || pax.size === undefined ? raw.size : Number(pax.size);
    if (!Number.isSafeInteger(size) || size < 0 || dataStart + size > fileSize) throw invalid(`truncated entry at offset ${position}`);
    position = dataStart + Math.ceil(size / BLOCK) * BLOCK;

    if (isMeta) {
      const data = Buffer.alloc(size);
      await file.read(data, 0, size, dataStart);
      if (raw.type === 'x') pax = parsePax(data);
      else if (raw.type === 'L') longName = cString(data);
      else longLink = cString(data);
      continue;
    }
    const name = normalize(pax.path ?? longName ?? raw.name);
    const linkname = pax.linkpath ?? longLink ?? raw.linkname;
    pax = {};
    longName = undefined;
    longLink = undefined;
    if (raw.type === '0' || raw.type === '\0' || raw.type === '7') files.set(name, { offset: dataStart, size });
    else if (raw.type === '1') links.set(name, normalize(linkname));
    else if (raw.type === '2') {
      links.set(name, normalize(linkname.startsWith('/') ? linkname : posix.join(posix.dirname(name), linkname)));
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

function parseHeader(header: Buffer): RawEntry {
  let name = cString(header.subarray(0, 100));
  const isUstar = header.toString('latin1', 257, 262) === 'ustar';
  const prefix = isUstar ? cString(header.subarray(345, 500)) : '';
  if (prefix !== '') name = `${prefix}/${name}`;
  return {
    name,
    type: String.fromCharCode(header[156]!),
    linkname: cString(header.subarray(157, 257)),
    size: parseNumber(header.subarray(124, 136)),
  };
}

function parseNumber(field: Buffer): number {
  if ((field[0]! & 0x80) !== 0) {
    // GNU base-256: big-endian two's complement with the top bit as the marker.
    let value = field[0]! & 0x7f;
    for (const byte of field.subarray(1)) value = value * 256 + byte;
    return value;
  }
  const text = cString(field).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function checksumOk(header: Buffer): boolean {
  const stored = parseNumber(header.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return sum === stored;
}

function parsePax(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let position = 0;
  while (position < data.length) {
    const space = data.indexOf(0x20, position);
    if (space === -1) break;
    const length = parseInt(data.toString('latin1', position, space), 10);
    if (!(length > 0)) break;
    const record = data.toString('utf8', space + 1, position + length - 1);
    const equals = record.indexOf('=');
    if (equals > 0) records[record.slice(0, equals)] = record.slice(equals + 1);
    position += length;
  }
  return records;
}

function cString(data: Buffer): string {
  const end = data.indexOf(0);
  return data.toString('utf8', 0, end === -1 ? data.length : end);
}
