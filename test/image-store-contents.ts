// What an image store holds on disk, read from its directories (the store keeps its parts private).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The unpacked layers (directory names) of the store under root. */
export function storedLayers(root: string): string[] {
  const dir = join(root, 'images/layers');
  return existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith('.')).sort() : [];
}

/** The blobs (hex digests) of the store under root. */
export function storedBlobs(root: string): string[] {
  const dir = join(root, 'images/blobs/sha256');
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

/** The staging files of the blob store under root (a write in progress, or a leak). */
export function blobStaging(root: string): string[] {
  const dir = join(root, 'images/blobs/.tmp');
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

/** The directory of an unpacked layer (its overlay lowerdir) in the store under root. */
export function layerContents(root: string, chainId: string): string {
  return join(root, 'images/layers', chainId.replace(/^sha256:/, '').slice(0, 12), 'fs');
}
