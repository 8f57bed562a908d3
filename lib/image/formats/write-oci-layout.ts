/** Saving stored images as an OCI image layout directory (what skopeo's and umoci's `oci:` read). */

import { randomBytes } from 'node:crypto';
import { access, copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BlobStore } from '../blob-store.ts';
import { parseDigest } from '../digest.ts';
import { OCI_LAYOUT_FILE, planLayout, type ImageToWrite } from './layout-plan.ts';

/**
 * Writes `images` into the layout `dir` (created if needed): copies the blobs they need, then
 * `oci-layout` and `index.json`, which lists exactly these images. Blobs already in `dir` are kept.
 */
export async function writeOciLayout(dir: string, images: ImageToWrite[], blobs: BlobStore): Promise<void> {
  const plan = await planLayout(images, blobs);
  const blobDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  for (const digest of plan.blobs) {
    const target = join(blobDir, parseDigest(digest).hex);
    if (await access(target).then(() => true, () => false)) continue;
    await atomically(target, (tmp) => copyFile(blobs.path(digest), tmp));
  }
  await atomically(join(dir, 'oci-layout'), (tmp) => writeFile(tmp, OCI_LAYOUT_FILE));
  await atomically(join(dir, 'index.json'), (tmp) => writeFile(tmp, JSON.stringify(plan.index)));
}

/** Creates `path` through a temporary sibling, so readers never see it half written. */
async function atomically(path: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await write(tmp);
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
}
