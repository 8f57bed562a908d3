/** The parts an image store is made of, which its operations (import, export, compose, gc, …) share. */

import type { BlobStore } from './blob-store.ts';
import type { ImageIndex } from './image-index.ts';
import type { LayerStore } from './layer-store.ts';
import type { Leases } from './leases.ts';
import type { ImageConfig } from './oci.ts';

/** One image store's content (blobs), unpacked layers, index and leases. */
export interface StoreParts {
  blobs: BlobStore;
  layers: LayerStore;
  index: ImageIndex;
  leases: Leases;
  rootless: boolean;
  /** Configs by digest: content-addressed, so never stale. */
  configs: Map<string, ImageConfig>;
}

/** What one import or commit has stored so far, so a failure can take it back out (gc.ts discard). */
export interface StoreWrite {
  /** Its lease: gc keeps unindexed content while it runs. */
  id: string;
  blobs: string[];
  chains: string[];
}
