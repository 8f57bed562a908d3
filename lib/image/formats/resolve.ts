/** Following a descriptor through (possibly nested) image indexes down to one image manifest. */

import { CorralError } from '../../sys/errors.ts';
import type { Descriptor, ImageIndex, ImageManifest } from '../oci.ts';
import { hostPlatform, selectManifest, type Platform } from './platform.ts';

const MAX_DEPTH = 8;

/** Tells an index from a manifest by its shape (media types are optional in both, and Docker's differ). */
export function documentKind(document: unknown): 'index' | 'manifest' {
  const doc = document as Partial<ImageIndex & ImageManifest> | null;
  if (doc !== null && typeof doc === 'object' && doc.schemaVersion === 2) {
    if (Array.isArray(doc.manifests)) return 'index';
    if (typeof doc.config?.digest === 'string' && Array.isArray(doc.layers)) return 'manifest';
  }
  throw new CorralError('not an OCI image index or manifest (schemaVersion 2 with manifests, or config and layers)', {
    code: 'ERR_INVALID_IMAGE',
  });
}

/** The image manifest a descriptor leads to, choosing `platform` in every index on the way. */
export async function resolveManifest(
  descriptor: Descriptor,
  fetchJson: (descriptor: Descriptor) => Promise<unknown>,
  platform: Platform = hostPlatform(),
): Promise<{ descriptor: Descriptor; manifest: ImageManifest }> {
  let current = descriptor;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const document = await fetchJson(current);
    if (documentKind(document) === 'manifest') return { descriptor: current, manifest: document as ImageManifest };
    current = selectManifest(document as ImageIndex, platform);
  }
  throw new CorralError(`image indexes nested deeper than ${MAX_DEPTH} levels under ${descriptor.digest}`, {
    code: 'ERR_INVALID_IMAGE',
  });
}
