// What an image store holds on disk, read from its directories (the store keeps its parts private).
import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';

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

/** name → "uid:gid mode" (mode in octal) of every entry of a gzipped layer blob, from its tar headers. */
export async function layerHeaders(blob: string): Promise<Map<string, string>> {
  const extract = tar.extract();
  const headers = new Map<string, string>();
  extract.on('entry', (header, stream, next) => {
    headers.set(header.name, `${header.uid}:${header.gid} ${(header.mode ?? 0).toString(8)}`);
    stream.resume();
    stream.on('end', next);
  });
  const done = new Promise<void>((resolve, reject) => { extract.on('finish', resolve); extract.on('error', reject); });
  createReadStream(blob).pipe(createGunzip()).pipe(extract);
  await done;
  return headers;
}

/** The blob of the top layer of an image stored under root. */
export function topLayerBlob(root: string, manifestDigest: string): string {
  const blob = (digest: string) => join(root, 'images/blobs/sha256', digest.replace(/^sha256:/, ''));
  const manifest = JSON.parse(readFileSync(blob(manifestDigest), 'utf8')) as { layers: { digest: string }[] };
  return blob(manifest.layers.at(-1)!.digest);
}
