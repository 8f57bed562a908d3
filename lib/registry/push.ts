/** Pushing a stored image: every blob checked with HEAD first and skipped when the repository has
 * it, mounted from the source repository when pushing within one registry, else uploaded; then the
 * manifest, byte for byte as stored, so its digest stays the same; with compression 'zstd', the
 * zstd variant of it (zstd-variant.ts). */

import { CorralError } from '../sys/errors.ts';
import { zstdCompressAvailable } from '../image/layer/zstd.ts';
import { storeParts, type ImageStore } from '../image/image-store.ts';
import { discard } from '../image/gc.ts';
import { sha256Digest } from '../image/digest.ts';
import { MEDIA_TYPE, type Descriptor, type ImageManifest } from '../image/oci.ts';
import type { StoreParts, StoreWrite } from '../image/store-parts.ts';
import { zstdVariant } from './zstd-variant.ts';
import { blobExists, startUpload, uploadBlob } from './blob-upload.ts';
import { connect, type RegistryOptions } from './connect.ts';
import { putManifest } from './manifests.ts';
import { inParallel } from './parallel.ts';
import { parseReference, type Reference } from '../image/reference.ts';

/** Progress of a push, in bytes of the blobs that had to go up. */
export interface PushProgress {
  phase: 'upload' | 'done';
  digest?: string;
  bytes: number;
  totalBytes: number;
  /** Blobs (layers and config) the registry had already or got by mount. */
  skipped: number;
}

/** Options of push(). */
export interface PushOptions extends RegistryOptions {
  onProgress?: (progress: PushProgress) => void;
  /** Blobs larger than this go up in PATCH chunks of this size (for a registry or proxy that
   * limits request bodies); by default every blob goes up in one streamed PUT, as containerd. */
  chunkSize?: number;
  /** Blobs checked and uploaded at once (default 5, Docker's max-concurrent-uploads). */
  concurrency?: number;
  /** Layer compression; 'zstd' needs a Node whose zlib compresses zstd (22.15 or 23.8 on). */
  compression?: 'gzip' | 'zstd';
}

/** What a push did. */
export interface PushResult {
  /** The reference pushed to, and the manifest digest it names. */
  ref: string;
  manifestDigest: string;
  uploaded: string[];
  mounted: string[];
  existing: string[];
}

/** Blobs pushed at once unless told otherwise: Docker's max-concurrent-uploads (skopeo: 6). */
const UPLOADS = 5;

/** Uploads read the store 1 MiB at a time: fetch's per-chunk cost makes 64 KiB reads cost more
 * CPU (measured: benchmarks/registry.ts). */
const READ_SIZE = 1 << 20;

/** Pushes the stored image `ref` to `destRef` (default `ref` itself). */
export async function push(store: ImageStore, ref: string, destRef: string = ref, options: PushOptions = {}): Promise<PushResult> {
  checkCompression(options.compression);
  const image = await store.inspect(ref);
  const parts = storeParts(store);
  if (options.compression !== 'zstd') return pushManifest(parts, await parts.blobs.read(image.manifestDigest), ref, destRef, options);
  // The recompressed layers are stored under a write lease while they go up, and taken out after.
  const write: StoreWrite = { id: parts.leases.beginWrite(), blobs: [], chains: [] };
  try {
    return await pushManifest(parts, await zstdVariant(parts, write, image.manifest), ref, destRef, options);
  } finally {
    await discard(parts, write);
    parts.leases.endWrite(write.id);
  }
}

/** Pushes the manifest `manifestBytes` (of blobs in the store) and its blobs. */
async function pushManifest(parts: StoreParts, manifestBytes: Buffer, ref: string, destRef: string, options: PushOptions): Promise<PushResult> {
  const manifest = JSON.parse(manifestBytes.toString()) as ImageManifest;
  const dest = parseReference(destRef);
  const source = mountSource(ref, dest);
  const client = await connect(dest, options);
  const blobStore = parts.blobs;
  const manifestDigest = sha256Digest(manifestBytes);
  const blobs: Descriptor[] = [...new Map([...manifest.layers, manifest.config].map((d) => [d.digest, d])).values()];
  const result: PushResult = { ref: destRef, manifestDigest, uploaded: [], mounted: [], existing: [] };
  const progress: PushProgress = { phase: 'upload', bytes: 0, totalBytes: 0, skipped: 0 };
  const missing: Descriptor[] = [];
  await inParallel(blobs, options.concurrency ?? UPLOADS, async (blob) => {
    if (await blobExists(client, blob.digest)) {
      result.existing.push(blob.digest);
      progress.skipped += 1;
    } else missing.push(blob);
  });
  progress.totalBytes = missing.reduce((n, b) => n + b.size, 0);
  await inParallel(missing, options.concurrency ?? UPLOADS, async (blob) => {
    const location = await startUpload(client, blob.digest, source);
    if (location === null) {
      result.mounted.push(blob.digest);
      progress.skipped += 1;
      progress.totalBytes -= blob.size;
      options.onProgress?.({ ...progress, digest: blob.digest });
      return;
    }
    await uploadBlob(client, location, blob, (range) => blobStore.createReadStream(blob.digest, { ...range, highWaterMark: READ_SIZE }), {
      ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }),
      onBytes: (n) => {
        progress.bytes += n;
        options.onProgress?.({ ...progress, digest: blob.digest });
      },
    });
    result.uploaded.push(blob.digest);
  });
  const mediaType = manifest.mediaType ?? MEDIA_TYPE.manifest;
  await putManifest(client, dest.tag ?? manifestDigest, manifestBytes, mediaType);
  options.onProgress?.({ ...progress, phase: 'done' });
  return result;
}

/** The repository to mount blobs from: the source's own, when the image is named on the registry it goes to. */
function mountSource(ref: string, dest: Reference): string | undefined {
  let source: Reference;
  try {
    source = parseReference(ref);
  } catch {
    return undefined; // a digest or a short id: no repository to mount from
  }
  return source.registry === dest.registry && source.repository !== dest.repository ? source.repository : undefined;
}

/** Refuses a compression this push cannot produce. */
function checkCompression(compression: string | undefined): void {
  if (compression === undefined || compression === 'gzip') return;
  if (compression !== 'zstd') throw new CorralError(`compression must be 'gzip' or 'zstd', got '${compression}'`, { code: 'ERR_INVALID_ARG_VALUE' });
  if (zstdCompressAvailable()) return;
  throw new CorralError(`push with compression 'zstd': Node ${process.versions.node} has no zstd compression in node:zlib (Node 22.15 or 23.8 and later has)`, { code: 'ERR_UNSUPPORTED_COMPRESSION' });
}
