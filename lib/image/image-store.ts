/** The image store of a runtime, under <root>/images, a thin facade in containerd's shape: a
 * content-addressed blob store, unpacked layers shared by ChainID, the image index (names and
 * tags), leases (what is in use), and one file per operation (import, export, compose, commit, gc,
 * usage). Everything it throws is a CorralError. */

import { join } from 'node:path';
import { CorralError, fromNodeError } from '../sys/errors.ts';
import { runtimeDir } from '../fs/runtime-root.ts';
import { BlobStore } from './blob-store.ts';
import { exportImage } from './export.ts';
import type { ImageFormat } from './formats/io.ts';
import { collectGarbage, discard, type GcResult } from './gc.ts';
import { findImage, ImageIndex, tagsOf } from './image-index.ts';
import { importImages, type ImportOptions } from './import.ts';
import { inspectImage, listImages, type ImageInfo, type ImageSummary } from './inspect.ts';
import { LayerStore } from './layer-store.ts';
import { Leases } from './leases.ts';
import { normalizeRef } from './refs.ts';
import type { StoreParts, StoreWrite } from './store-parts.ts';
import { diskUsage, type DiskUsage } from './usage.ts';
import type { IdMap } from '../sys/id-map.ts';

export type { ImageProgress, ImportOptions } from './import.ts';
export type { ImageInfo, ImageSummary, LayerInfo } from './inspect.ts';
export type { DiskUsage } from './usage.ts';
export type { GcResult } from './gc.ts';

/** The default bound on one layer's uncompressed tar: generous, yet a gzip bomb stops there. */
export const DEFAULT_MAX_LAYER_BYTES = 64 * 1024 ** 3;

/** How an image store is set up. */
export interface ImageStoreOptions {
  /** Unpack as an unprivileged user: no owners, no devices, user.* xattrs only. */
  rootless: boolean;
  /** The most bytes one layer may unpack to (its uncompressed tar); past it the import or commit
   * fails with ERR_LAYER_TOO_LARGE and the store stays as it was. Default 64 GiB. */
  maxLayerBytes?: number;
  /** Rootless with subordinate ids: the map image owners are shifted into on unpack. */
  idMap?: IdMap | null;
}

let partsOf: (store: ImageStore) => StoreParts;

/** Images: import, export, list, inspect, tag, remove, gc, diskUsage. */
export class ImageStore {
  readonly #parts: StoreParts;

  static {
    partsOf = (store) => store.#parts;
  }

  constructor(root: string, options: ImageStoreOptions) {
    const dir = runtimeDir(root, 'images');
    this.#parts = {
      blobs: new BlobStore(join(dir, 'blobs')),
      layers: new LayerStore(join(dir, 'layers'), options.rootless, options.maxLayerBytes ?? DEFAULT_MAX_LAYER_BYTES, options.idMap ?? null),
      index: new ImageIndex(dir),
      leases: new Leases(dir),
      rootless: options.rootless,
      configs: new Map(),
    };
  }

  /** Imports the images of an OCI layout, OCI archive or docker archive; nothing is visible until
   * every blob is verified and every layer unpacked, and a failure leaves the store as it was.
   * Returns the imported images. */
  async import(source: string, options: ImportOptions = {}): Promise<ImageInfo[]> {
    const digests = await guard('import an image', source, () => writing(this.#parts, (write) => importImages(this.#parts, write, source, options)));
    return Promise.all(digests.map((d) => this.inspect(d)));
  }

  /** Writes an image as an OCI layout, OCI archive or docker archive. */
  export(ref: string, dest: string, options: { format: ImageFormat }): Promise<void> {
    return guard('export an image', dest, () => exportImage(this.#parts, ref, dest, options.format));
  }

  /** Every image with its tags (the build cache's step images left out). */
  list(): ImageSummary[] {
    return guardSync('list images', () => listImages(this.#parts));
  }

  /** Manifest, config and layers (with sizes and sharing) of an image by tag or digest. */
  inspect(ref: string): Promise<ImageInfo> {
    return guard('inspect an image', ref, () => inspectImage(this.#parts, ref));
  }

  /** Gives an image another name. */
  tag(ref: string, newRef: string): Promise<void> {
    return guard('tag an image', ref, async () => {
      const target = normalizeRef(newRef);
      await this.#parts.index.update((db) => {
        db.tags[target] = findImage(db, ref)[0];
      });
    });
  }

  /** Removes a tag (or, by digest, the image and its tags); the image goes with its last tag.
   * Refused while a container uses it, unless forced. Data is reclaimed by gc(). */
  remove(ref: string, options: { force?: boolean } = {}): Promise<void> {
    return guard('remove an image', ref, () => this.#parts.index.update((db) => {
      const [digest] = findImage(db, ref);
      const byDigest = ref.startsWith('sha256:');
      const named = (t: string): boolean => byDigest || t === normalizeRef(ref);
      if (tagsOf(db, digest).every(named)) {
        const users = this.#parts.leases.imageUsers(digest);
        if (users.length > 0 && !options.force) {
          throw new CorralError(`image ${ref} is used by container ${users.join(', ')}`, { code: 'ERR_IMAGE_IN_USE', path: ref });
        }
        delete db.images[digest];
      }
      for (const t of tagsOf(db, digest)) if (named(t)) delete db.tags[t];
    }));
  }

  /** Deletes blobs and layers no image needs, and the debris of interrupted imports; nothing while
   * an import or commit runs. */
  gc(): Promise<GcResult> {
    return guard('collect image garbage', undefined, () => collectGarbage(this.#parts));
  }

  /** With buildCache, forgets the build cache's step images (untagged, unused), then collects
   * garbage as gc() does. */
  prune(options: { buildCache?: boolean } = {}): Promise<GcResult> {
    return guard('prune images', undefined, async () => {
      if (options.buildCache) {
        await this.#parts.index.update((db) => {
          for (const [digest, record] of Object.entries(db.images)) {
            if (record.buildCache && tagsOf(db, digest).length === 0 && this.#parts.leases.imageUsers(digest).length === 0) delete db.images[digest];
          }
        });
      }
      return collectGarbage(this.#parts);
    });
  }

  /** Unpacked bytes, each layer counted once however many images share it. */
  diskUsage(): DiskUsage {
    return guardSync('measure image disk usage', () => diskUsage(this.#parts));
  }
}

/** The parts of a store, for the container adapter (lib/image/container-images.ts): the operations
 * containers need (resolve, lease, commit) are not on the public surface. */
export function storeParts(store: ImageStore): StoreParts {
  return partsOf(store);
}

/** Runs an import or commit under a write lease; on failure, takes out what it stored. */
export async function writing<T>(parts: StoreParts, run: (write: StoreWrite) => Promise<T>): Promise<T> {
  const write: StoreWrite = { id: parts.leases.beginWrite(), blobs: [], chains: [] };
  try {
    return await run(write);
  } catch (e) {
    await discard(parts, write);
    throw e;
  } finally {
    parts.leases.endWrite(write.id);
  }
}

/** Runs `run`, every error it throws converted to a CorralError naming the step (and path). */
export async function guard<T>(step: string, path: string | undefined, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    throw fromNodeError(e, step, path);
  }
}

function guardSync<T>(step: string, run: () => T): T {
  try {
    return run();
  } catch (e) {
    throw fromNodeError(e, step);
  }
}
