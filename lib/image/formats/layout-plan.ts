/** What an OCI layout holding some stored images consists of: its index.json and the blobs it needs. */

import { CorralError } from '../../sys/errors.ts';
import type { BlobStore } from '../blob-store.ts';
import { MEDIA_TYPE, REF_NAME, type Descriptor, type ImageIndex, type ImageManifest } from '../oci.ts';
import { documentKind } from './resolve.ts';

/** An image to write out: a manifest (or index) in the blob store, and the name to save it under. */
export interface ImageToWrite {
  ref?: string;
  manifestDigest: string;
  /** Checked against the stored blob when given. */
  manifestSize?: number;
}

/** The layout's `oci-layout` file. */
export const OCI_LAYOUT_FILE = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));

/** index.json, and every blob the images reach (manifests, nested indexes, configs, layers), each once. */
export interface LayoutPlan {
  index: ImageIndex;
  blobs: string[];
}

/** Plans a layout of `images`; fails with ERR_BLOB_NOT_FOUND if the store lacks a blob they need. */
export async function planLayout(images: ImageToWrite[], store: BlobStore): Promise<LayoutPlan> {
  const blobs = new Set<string>();
  const manifests: Descriptor[] = [];
  const refs = new Set<string>();

  const need = (digest: string): void => {
    if (!store.has(digest)) {
      throw new CorralError(`blob ${digest} is not in the store`, { code: 'ERR_BLOB_NOT_FOUND', step: 'write image' });
    }
    blobs.add(digest);
  };

  const walk = async (digest: string): Promise<string> => {
    const document = await store.readJson<ImageIndex | ImageManifest>(digest);
    blobs.add(digest);
    const kind = documentKind(document);
    if (kind === 'manifest') {
      const manifest = document as ImageManifest;
      need(manifest.config.digest);
      manifest.layers.forEach((layer) => need(layer.digest));
    } else {
      for (const child of (document as ImageIndex).manifests) await walk(child.digest);
    }
    return document.mediaType ?? (kind === 'index' ? MEDIA_TYPE.index : MEDIA_TYPE.manifest);
  };

  for (const image of images) {
    if (image.ref !== undefined) {
      if (refs.has(image.ref)) {
        throw new CorralError(`two images to write are both named ${image.ref}`, { code: 'ERR_INVALID_ARG_VALUE' });
      }
      refs.add(image.ref);
    }
    const mediaType = await walk(image.manifestDigest);
    manifests.push({
      mediaType,
      digest: image.manifestDigest,
      size: await storedManifestSize(image, store),
      ...(image.ref === undefined ? {} : { annotations: { [REF_NAME]: image.ref } }),
    });
  }
  return { index: { schemaVersion: 2, manifests }, blobs: [...blobs] };
}

/** The size of an image's stored manifest, checked against the one the caller gave. */
export async function storedManifestSize(image: ImageToWrite, store: BlobStore): Promise<number> {
  const size = await store.size(image.manifestDigest);
  if (image.manifestSize !== undefined && image.manifestSize !== size) {
    throw new CorralError(`manifest ${image.manifestDigest} is ${size} bytes, not ${image.manifestSize}`, {
      code: 'ERR_DIGEST_MISMATCH',
      step: 'write image',
    });
  }
  return size;
}
