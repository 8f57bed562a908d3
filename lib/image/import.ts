/** Importing images from an OCI layout, OCI archive or docker archive into the store: nothing is
 * indexed until every blob is verified and every layer unpacked. */

import { CorralError } from '../sys/errors.ts';
import { chainIds } from './digest.ts';
import type { ImageRecord } from './image-index.ts';
import { openImageSource, type ImageFormat } from './formats/io.ts';
import type { ImageSource, SourceImage } from './formats/source.ts';
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
    return await importSource(parts, write, src, source, options);
  } finally {
    await src.close();
  }
}

/** Blobs copied at once (Docker pulls three layers at a time). */
const PARALLEL_BLOBS = 3;

/** importImages() from an opened source (a layout, an archive, a registry; `where` names it in
 * errors). Blobs already stored are not copied again; up to three layer blobs are copied at once
 * and each layer is unpacked as soon as its blob and its parent are in. */
export async function importSource(parts: StoreParts, write: StoreWrite, src: ImageSource, where: string, options: Omit<ImportOptions, 'format'>): Promise<string[]> {
  const images = await src.images();
  if (options.tag !== undefined && images.length !== 1) {
    throw new CorralError(`${where} holds ${images.length} images; tag names only one`, { code: 'ERR_INVALID_ARG_VALUE', path: where });
  }
  images.forEach((image) => check(image, where));
  const tagged: [string | undefined, ImageRecord][] = [];
  const layersTotal = images.reduce((n, i) => n + i.manifest.layers.length, 0);
  const progress: ImageProgress = { phase: 'blobs', layersDone: 0, layersTotal, bytes: 0 };
  const copying = new Map<string, Promise<number>>();
  const slots = new Slots(PARALLEL_BLOBS);
  const put = (digest: string, size: number): Promise<number> => {
    let copy = copying.get(digest);
    if (copy === undefined) {
      copy = slots.run(async () => {
        if (!parts.blobs.has(digest)) await parts.blobs.put(await src.openBlob(digest), { digest, size });
        write.blobs.push(digest);
        return size;
      });
      copying.set(digest, copy);
    }
    return copy;
  };
  try {
    for (const image of images) {
      const diffIds = image.config.rootfs.diff_ids;
      await put(image.manifestDigest, image.manifestSize);
      await put(image.configDigest, image.manifest.config.size);
      const chains = chainIds(diffIds);
      const blobs = image.manifest.layers.map((layer) => put(layer.digest, layer.size));
      blobs.forEach((b) => b.catch(() => undefined)); // awaited below, in order
      for (const [i, layer] of image.manifest.layers.entries()) {
        progress.phase = 'blobs';
        progress.bytes += await blobs[i]!;
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
  } catch (error) {
    // No copy may land after the caller takes out what this import stored.
    slots.close();
    await Promise.allSettled(copying.values());
    throw error;
  }
  await parts.index.update((db) => {
    for (const [ref, record] of tagged) {
      db.images[record.manifestDigest] ??= record;
      if (ref) db.tags[ref] = record.manifestDigest;
    }
  });
  options.onProgress?.({ ...progress, phase: 'done' });
  return tagged.map(([, r]) => r.manifestDigest);
}

/** At most `size` tasks at once, in the order they came; a finished task hands its slot to the
 * next. close() refuses the tasks not yet started. */
class Slots {
  readonly #size: number;
  readonly #waiting: ((granted: boolean) => void)[] = [];
  #running = 0;

  constructor(size: number) {
    this.#size = size;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running < this.#size) this.#running += 1;
    else if (!(await new Promise<boolean>((resolve) => this.#waiting.push(resolve)))) {
      throw new CorralError('the import stopped before this blob was copied', { code: 'ABORT_ERR' });
    }
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next) next(true);
      else this.#running -= 1;
    }
  }

  close(): void {
    for (const refuse of this.#waiting.splice(0)) refuse(false);
  }
}

/** Refuses, before anything is copied, an image that could never run: diff_ids that do not match
 * its layers, or more layers than overlayfs can stack (issue 10 item 11: 2,000 were accepted). */
function check(image: SourceImage, where: string): void {
  const layers = image.manifest.layers.length;
  const diffIds = image.config.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.length !== layers) {
    throw new CorralError(`image ${image.manifestDigest} has ${layers} layers but ${diffIds?.length ?? 'no'} diff_ids`, { code: 'ERR_INVALID_IMAGE', path: where });
  }
  if (layers > MAX_LAYERS) { // test/security/image-layer-count.test.ts
    throw new CorralError(`image ${image.manifestDigest} has ${layers} layers; overlayfs stacks at most ${MAX_LAYERS}`, { code: 'ERR_INVALID_IMAGE', path: where });
  }
}
