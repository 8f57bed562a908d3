/** ADD of a local tar archive (plain, gzip, zstd, xz or bzip2; told by its content, as Docker does,
 * not by its name): its entries written into the step's layer under the destination directory. Every entry
 * stays under it: a name climbing out ('../x'), one reached through a symlink or file of the
 * archive, a whiteout name ('.wh.x', which the layer would turn into a deletion) or a device node is
 * refused (test/security/build-add-archive-escape.test.ts). */

import { closeSync, constants, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { posix } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Decompress } from 'fzstd';
import { liftedDefences } from '../spawn/lifted-defences.ts';
import { uncompressed } from '../image/layer/decompress.ts';
import { decompressHead, decompressWith, programFor, ProgramError } from './archive-programs.ts';
import { BLOCK, decodeHeader } from '../image/tar/header.ts';
import { TarReader } from '../image/tar/reader.ts';
import { ChunkSource } from '../image/tar/sources.ts';
import type { TarWriter } from '../image/tar/writer.ts';

/** An archive ADD cannot extract: the caller names the file, line and instruction. */
export class ArchiveError extends Error {}

const HEAD_BYTES = 64 * 1024;
const GZIP = Buffer.from([0x1f, 0x8b]);
const ZSTD = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
/** Whether a host file is a tar archive, plain or compressed (its first header is read). */
export function isTarArchive(path: string, name: string): boolean {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  let tar: Buffer;
  try {
    const buffer = Buffer.alloc(HEAD_BYTES);
    const head = buffer.subarray(0, readSync(fd, buffer, 0, HEAD_BYTES, 0));
    const program = programFor(head);
    if (program) tar = decompressHead(program, fd);
    else if (head.subarray(0, 2).equals(GZIP)) tar = gunzipSync(head, { finishFlush: 2 /* Z_SYNC_FLUSH: a head, not the whole stream */ });
    else if (head.subarray(0, 4).equals(ZSTD)) tar = zstdHead(head);
    else tar = head;
  } catch (e) {
    if (e instanceof ProgramError) throw new ArchiveError(`${name}: ${e.message}`);
    return false; // compressed, but not as it claims: a plain file
  } finally {
    closeSync(fd);
  }
  if (tar.length < BLOCK) return false;
  try {
    decodeHeader(tar.subarray(0, BLOCK), (_entry, problem) => new ArchiveError(problem));
    return true;
  } catch {
    return false;
  }
}

function zstdHead(head: Buffer): Buffer {
  const parts: Uint8Array[] = [];
  new Decompress((chunk) => parts.push(chunk)).push(head);
  return Buffer.concat(parts);
}

/** Writes the archive's entries under `dest` (relative, '' for the root) to the layer. `existing`
 * tells the directories the image or the layer has already (a relative path); `now` dates the
 * parents it adds. */
export async function writeArchive(path: string, name: string, dest: string, tar: TarWriter, existing: (rel: string) => boolean, now: number): Promise<void> {
  const fail = (entry: string, problem: string): ArchiveError => new ArchiveError(`${name}: ${entry === '' ? '' : `${JSON.stringify(entry)}: `}${problem}`);
  const file = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  const { buffer: head } = await file.read(Buffer.alloc(8), 0, 8, 0);
  const program = programFor(head);
  const bytes = program ? decompressWith(program, file.createReadStream()) : uncompressed(file.createReadStream());
  const reader = new TarReader(new ChunkSource(bytes), { invalid: fail, allowMissingEnd: true });
  const kinds = new Map<string, 'directory' | 'other'>();
  const parent = async (rel: string, entry: string): Promise<void> => {
    if (rel === '') return;
    const kind = kinds.get(rel);
    if (kind === 'other') throw fail(entry, `its parent ${rel} is not a directory in the archive (nothing is extracted through a link or a file)`);
    if (kind === 'directory') return;
    await parent(dirOf(rel), entry);
    kinds.set(rel, 'directory');
    const at = join(dest, rel);
    if (!existing(at)) await tar.add({ name: `${at}/`, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: now });
  };
  try {
    for (let e = await reader.next(); e !== null; e = await reader.next()) {
      const rel = inside(e.name);
      if (rel === null) throw fail(e.name, 'it climbs out of the destination');
      if (rel === '') {
        // the archive's own root gives the destination its metadata (as buildah and Docker do), not /
        if (e.type === 'directory' && dest !== '') await tar.add({ ...e, name: `${dest}/` });
        continue;
      }
      if (posix.basename(rel).startsWith('.wh.') && !liftedDefences.archiveWhiteouts) throw fail(e.name, 'a whiteout name (.wh.) cannot be extracted into a layer');
      if (e.type === 'char' || e.type === 'block') throw fail(e.name, 'device nodes are not extracted');
      await parent(dirOf(rel), e.name);
      if (kinds.get(rel) === 'directory' && e.type !== 'directory') throw fail(e.name, 'it replaces a directory of the archive');
      let linkname = e.linkname;
      if (e.type === 'link') {
        const target = inside(e.linkname);
        if (target === null || target === '' || kinds.get(target) !== 'other') throw fail(e.name, `its hard link target ${JSON.stringify(e.linkname)} is no earlier file of the archive`);
        linkname = join(dest, target);
      }
      kinds.set(rel, e.type === 'directory' ? 'directory' : 'other');
      const at = join(dest, rel);
      await tar.add({ ...e, name: e.type === 'directory' ? `${at}/` : at, linkname }, e.type === 'file' ? reader.body() : undefined);
    }
    await reader.drain(); // to the end, so a program's verdict on the whole stream is heard
  } catch (e) {
    if (e instanceof ProgramError) throw fail('', e.message);
    throw e;
  } finally {
    await reader.close();
    await file.close().catch(() => {}); // closed already with its stream
  }
}

/** A name inside the destination ('' for its root), or null when it climbs out. */
function inside(name: string): string | null {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) return null;
      out.pop();
    } else out.push(part);
  }
  return out.join('/');
}

function dirOf(rel: string): string {
  const d = posix.dirname(rel);
  return d === '.' ? '' : d;
}

function join(dest: string, rel: string): string {
  return dest === '' ? rel : `${dest}/${rel}`;
}
