/** Exporting a stored image as an OCI layout, OCI archive or docker archive. */

import { findImage, tagsOf } from './image-index.ts';
import { writeImage, type ImageFormat } from './formats/io.ts';
import { normalizeRef } from './refs.ts';
import type { StoreParts } from './store-parts.ts';

/** Writes the image `ref` to `dest`, named by ref (or, by digest, by its first tag). */
export async function exportImage(parts: StoreParts, ref: string, dest: string, format: ImageFormat): Promise<void> {
  const db = parts.index.read();
  const [digest] = findImage(db, ref);
  const tag = ref.startsWith('sha256:') ? tagsOf(db, digest)[0] : normalizeRef(ref);
  await writeImage(format, dest, [{ ...(tag ? { ref: tag } : {}), manifestDigest: digest }], parts.blobs);
}
