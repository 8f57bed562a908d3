/** What the store tells about its images: the list, and one image in detail. */

import { findImage, tagsOf } from './image-index.ts';
import type { ImageConfig, ImageManifest } from './oci.ts';
import type { StoreParts } from './store-parts.ts';

/** One layer of an image, as inspect() shows it. */
export interface LayerInfo {
  digest: string;
  mediaType: string;
  /** Size of the blob as stored (compressed or not). */
  size: number;
  diffId: string;
  chainId: string;
  unpackedBytes: number;
  /** Other images (by manifest digest) that share this layer. */
  sharedWith: string[];
}

/** What inspect() tells about an image. */
export interface ImageInfo {
  tags: string[];
  manifestDigest: string;
  configDigest: string;
  createdAt: string;
  manifest: ImageManifest;
  config: ImageConfig;
  layers: LayerInfo[];
}

/** What list() tells about each image. */
export interface ImageSummary {
  tags: string[];
  manifestDigest: string;
  layers: number;
  unpackedBytes: number;
  createdAt: string;
}

/** Every image with its tags (a build's step images, the build cache, left out). */
export function listImages(parts: StoreParts): ImageSummary[] {
  const db = parts.index.read();
  return Object.values(db.images).filter((r) => !r.buildCache || tagsOf(db, r.manifestDigest).length > 0).map((r) => ({
    tags: tagsOf(db, r.manifestDigest),
    manifestDigest: r.manifestDigest,
    layers: r.chainIds.length,
    unpackedBytes: r.chainIds.reduce((n, c) => n + parts.layers.size(c), 0),
    createdAt: r.createdAt,
  }));
}

/** Manifest, config and layers (with sizes and sharing) of an image by tag or digest. */
export async function inspectImage(parts: StoreParts, ref: string): Promise<ImageInfo> {
  const db = parts.index.read();
  const [digest, record] = findImage(db, ref);
  const manifest = await parts.blobs.readJson<ImageManifest>(digest);
  const config = await parts.blobs.readJson<ImageConfig>(record.configDigest);
  const layers = manifest.layers.map((l, i): LayerInfo => {
    const chainId = record.chainIds[i]!;
    return {
      digest: l.digest,
      mediaType: l.mediaType,
      size: l.size,
      diffId: config.rootfs.diff_ids[i]!,
      chainId,
      unpackedBytes: parts.layers.size(chainId),
      sharedWith: Object.values(db.images).filter((o) => o.manifestDigest !== digest && o.chainIds.includes(chainId)).map((o) => o.manifestDigest),
    };
  });
  return { tags: tagsOf(db, digest), manifestDigest: digest, configDigest: record.configDigest, createdAt: record.createdAt, manifest, config, layers };
}
