/** The one reading interface shared by every image format corral imports. */

import type { Readable } from 'node:stream';
import type { ImageConfig, ImageManifest } from '../oci.ts';

/** An image found in a source: its manifest and config (both verified), and the name it was saved under. */
export interface SourceImage {
  ref?: string;
  manifest: ImageManifest;
  config: ImageConfig;
  configDigest: string;
  manifestDigest: string;
  manifestSize: number;
}

/**
 * An image layout or archive opened for reading. `openBlob` serves every blob the images name
 * (manifest, config, layers) as stored, unverified: whoever copies it verifies it against the
 * descriptor (BlobStore.put does).
 */
export interface ImageSource {
  images(): Promise<SourceImage[]>;
  openBlob(digest: string): Promise<Readable>;
  close(): Promise<void>;
}
