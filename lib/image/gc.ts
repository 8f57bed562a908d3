/** Garbage collection: blobs and layers no image needs, the debris of interrupted writes, and what a
 * failed import or commit stored before it failed. */

import createDebug from 'debug';
import type { ImageDb } from './image-index.ts';
import type { ImageManifest } from './oci.ts';
import type { StoreParts, StoreWrite } from './store-parts.ts';

const debug = createDebug('corral:image');

/** What gc() removed. */
export interface GcResult {
  blobs: number;
  layers: number;
  debris: number;
}

/** Deletes blobs and layers no image needs, and the debris of interrupted imports. Nothing goes
 * while an import or commit runs (its content is not indexed yet, its staging files are in use). */
export async function collectGarbage(parts: StoreParts): Promise<GcResult> {
  return parts.index.update(async (db) => {
    if (parts.leases.writesRunning() > 0) return { blobs: 0, layers: 0, debris: 0 };
    const debris = parts.layers.sweepTemp() + (await parts.blobs.sweepTemp(0));
    const { blobs, chains } = referenced(parts, db);
    const unusedBlobs = parts.blobs.list().filter((d) => !blobs.has(d));
    const unusedLayers = parts.layers.list().filter((c) => !chains.has(c));
    for (const digest of unusedBlobs) await parts.blobs.remove(digest);
    for (const chain of unusedLayers) await parts.layers.remove(chain);
    debug('gc removed %d blobs, %d layers, %d debris', unusedBlobs.length, unusedLayers.length, debris);
    return { blobs: unusedBlobs.length, layers: unusedLayers.length, debris };
  });
}

/** Takes out what a failed write stored that no image references, so the store is as it was; when
 * another write runs it might share that content, and gc() takes it later instead. */
export async function discard(parts: StoreParts, write: StoreWrite): Promise<void> {
  await parts.index.update(async (db) => {
    if (parts.leases.writesRunning(write.id) > 0) return;
    const { blobs, chains } = referenced(parts, db);
    for (const digest of write.blobs) if (!blobs.has(digest)) await parts.blobs.remove(digest);
    for (const chain of write.chains) if (!chains.has(chain)) await parts.layers.remove(chain);
  });
}

/** The blobs (manifests, configs, layers) and layers (ChainIDs) the indexed images need. */
function referenced(parts: StoreParts, db: ImageDb): { blobs: Set<string>; chains: Set<string> } {
  const blobs = new Set<string>();
  const chains = new Set<string>();
  for (const r of Object.values(db.images)) {
    blobs.add(r.manifestDigest);
    blobs.add(r.configDigest);
    r.chainIds.forEach((c) => chains.add(c));
    try {
      for (const l of parts.blobs.readJsonSync<ImageManifest>(r.manifestDigest).layers) blobs.add(l.digest);
    } catch {
      // a missing manifest blob: its layers stay until the record goes
    }
  }
  return { blobs, chains };
}
