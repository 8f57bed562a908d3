/** Telling which image format a path holds, so callers can open it with the right reader. */

import { access, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CorralError } from '../../sys/errors.ts';
import { TarIndex } from '../tar/tar-index.ts';

/** The image formats corral reads. */
export type ImageFormat = 'oci-layout' | 'oci-archive' | 'docker-archive';

/**
 * A directory with an oci-layout file is an OCI layout; a tar with oci-layout or index.json is an
 * OCI archive (docker ≥ 25 saves those, with a manifest.json besides); a tar with only manifest.json
 * is a docker-save archive. Anything else fails with ERR_UNKNOWN_IMAGE_FORMAT.
 */
export async function detectFormat(path: string): Promise<ImageFormat> {
  const unknown = (why: string): CorralError =>
    new CorralError(`${path}: not an image (${why})`, { code: 'ERR_UNKNOWN_IMAGE_FORMAT', path });
  const info = await stat(path);
  if (info.isDirectory()) {
    const isLayout = await access(join(path, 'oci-layout')).then(() => true, () => false);
    if (isLayout) return 'oci-layout';
    throw unknown('a directory without an oci-layout file');
  }
  if (!info.isFile()) throw unknown('neither a file nor a directory');
  if (await isGzip(path)) throw unknown('gzip-compressed; decompress it first, e.g. with gunzip');

  let tar: TarIndex;
  try {
    tar = await TarIndex.open(path);
  } catch (error) {
    if ((error as CorralError).code === 'ERR_INVALID_ARCHIVE') throw unknown('not a tar archive');
    throw error;
  }
  try {
    if (tar.has('oci-layout') || tar.has('index.json')) return 'oci-archive';
    if (tar.has('manifest.json')) return 'docker-archive';
    throw unknown('a tar archive without oci-layout, index.json or manifest.json');
  } finally {
    await tar.close();
  }
}

async function isGzip(path: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await file.read(Buffer.alloc(2), 0, 2, 0);
    return bytesRead === 2 && buffer[0] === 0x1f && buffer[1] === 0x8b;
  } finally {
    await file.close();
  }
}
