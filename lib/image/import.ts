/** Importing images from an OCI layout, OCI archive or docker archive into the store: nothing is
 * indexed until every blob is verified and every layer unpacked. */

import { CorralError } from '../sys/errors.ts';
import { chainIds } from './digest.ts';
import type { ImageRecord } from './image-index.ts';
import { openImageSource, type ImageFormat } from './formats/io.ts';
import type { SourceImage } from './formats/source.ts';
import { normalizeRef } from './refs.ts';
import type { StoreParts, StoreWrite } from './store-parts.ts';

/** Overlayfs stacks at most this many lower directories (the kernel's OVL_MAX_STACK). */
export const MAX_LAYERS = 500;

/** Progress of a long import or export. */
export interface ImageProgress {
  phase: 'blobs' | 'layers' | 'done';
  layersDone: number;
  layersTotal: number;
  bytes: number;
}

/** Options of import(). */
export interface ImportOptions {
  /** Detected when not given. */
  format?: ImageFormat;
  /** Names the imported image (the source must hold exactly one). */
  tag?: string;
  onProgress?: (progress: ImageProgress) => void;
}

/** Copies the images of `source` into the store and indexes them; returns their manifest digests. */
export async function importImages(parts: StoreParts, write: StoreWrite, source: string, options: ImportOptions): Promise<string[]> {
  const src = await openImageSource(source, options.format);
  try {
    const images = await src.images();
    if (options.tag !== undefined && images.length !== 1) {
      throw new CorralError(`${source} holds ${images.length} images; tag names only one`, { code: 'ERR_INVALID_ARG_VALUE', path: source });
    }
    images.forEach((image) => check(image, source));
    const tagged: [string | undefined, ImageRecord][] = [];
    const layersTotal = images.reduce((n, i) => n + i.manifest.layers.length, 0);
    const progress: ImageProgress = { phase: 'blobs', layersDone: 0, layersTotal, bytes: 0 };
    const put = async (digest: string, size: number): Promise<number> => {
      const stored = await parts.blobs.put(await src.openBlob(digest), { digest, size });
      write.blobs.push(digest);
      return stored.size;
    };
    for (const image of images) {
      const diffIds = image.config.rootfs.diff_ids;
      await put(image.manifestDigest, image.manifestSize);
      await put(image.configDigest, image.manifest.config.size);
      const chains = chainIds(diffIds);
      for (const [i, layer] of image.manifest.layers.entries()) {
        progress.phase = 'blobs';
        progress.bytes += await put(layer.digest, layer.size);
        options.onProgress?.({ ...progress });
        progress.phase = 'layers';
        const open = async () => parts.blobs.createReadStream(layer.digest);
        if (await parts.layers.ensure(chains[i]!, diffIds[i]!, open, chains.slice(0, i).reverse())) write.chains.push(chains[i]!);
        progress.layersDone += 1;
        options.onProgress?.({ ...progress });
      }
      const ref = options.tag ?? image.ref;
      tagged.push([ref === undefined ? undefined : normalizeRef(ref), {
        manifestDigest: image.manifestDigest,
        configDigest: image.configDigest,
        chainIds: chains,
        createdAt: new Date().toISOString(),
      }]);
    }
    await parts.index.update((db) => {
      for (const [ref, record] of tagged) {
        db.images[record.manifestDigest] ??= record;
        if (ref) db.tags[ref] = record.manifestDigest;
      }
    });
    options.onProgress?.({ ...progress, phase: 'done' });
    return tagged.map(([, r]) => r.manifestDigest);
  } finally {
    await src.close();
  }
}

/** Refuses, before anything is copied, an image that could never run: diff_ids that do not match
 * its layers, or more layers than overlayfs can stack (issue 10 item 11: 2,000 were accepted). */
function check(image: SourceImage, source: string): void {
  const layers = image.manifest.layers.length;
  const diffIds = image.config.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.length !== layers) {
    throw new CorralError(`image ${image.manifestDigest} has ${layers} layers but ${diffIds?.length ?? 'no'} diff_ids`, { code: 'ERR_INVALID_IMAGE', path: source });
  }
  if (layers > MAX_LAYERS) { // test/security/image-layer-count.test.ts
    throw new CorralError(`image ${image.manifestDigest} has ${layers} layers; overlayfs stacks at most ${MAX_LAYERS}`, { code: 'ERR_INVALID_IMAGE', path: source });
  }
}
