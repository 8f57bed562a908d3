/** Disk usage of the store: unpacked layers (each counted once however many images share it) and blobs. */

import { tagsOf } from './image-index.ts';
import type { StoreParts } from './store-parts.ts';

/** What diskUsage() reports: unpacked layer bytes, each layer counted once. */
export interface DiskUsage {
  totalBytes: number;
  /** Bytes of layers used by more than one image. */
  sharedBytes: number;
  /** Per image (by its first tag, or digest): bytes of layers only it uses. */
  uniqueBytes: Record<string, number>;
  /** Bytes of the stored blobs (compressed layers, configs, manifests). */
  blobBytes: number;
}

/** Unpacked bytes, each layer counted once however many images share it, and the blobs' bytes. */
export function diskUsage(parts: StoreParts): DiskUsage {
  const db = parts.index.read();
  const users = new Map<string, Set<string>>();
  for (const r of Object.values(db.images)) for (const c of r.chainIds) (users.get(c) ?? users.set(c, new Set()).get(c)!).add(r.manifestDigest);
  let totalBytes = 0;
  let sharedBytes = 0;
  const uniqueBytes: Record<string, number> = {};
  const name = (digest: string): string => tagsOf(db, digest)[0] ?? digest;
  for (const r of Object.values(db.images)) uniqueBytes[name(r.manifestDigest)] = 0;
  for (const [chain, images] of users) {
    const size = parts.layers.size(chain);
    totalBytes += size;
    if (images.size > 1) sharedBytes += size;
    else uniqueBytes[name([...images][0]!)]! += size;
  }
  const blobBytes = parts.blobs.list().reduce((n, d) => n + blobSize(parts, d), 0);
  return { totalBytes, sharedBytes, uniqueBytes, blobBytes };
}

function blobSize(parts: StoreParts, digest: string): number {
  try {
    return parts.blobs.sizeSync(digest);
  } catch {
    return 0; // removed by a concurrent gc
  }
}
