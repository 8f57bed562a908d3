/** Saving stored images as a tar of an OCI image layout (what skopeo's `oci-archive:` reads). */

import type { BlobStore } from '../blob-store.ts';
import { parseDigest } from '../digest.ts';
import { OCI_LAYOUT_FILE, planLayout, type ImageToWrite } from './layout-plan.ts';
import { ArchiveFile } from './archive-file.ts';

/** Writes the archive `tarPath` (replacing it once complete), streaming blobs from the store. */
export async function writeOciArchive(tarPath: string, images: ImageToWrite[], blobs: BlobStore): Promise<void> {
  const plan = await planLayout(images, blobs);
  const tar = await ArchiveFile.create(tarPath);
  try {
    await tar.addBuffer('oci-layout', OCI_LAYOUT_FILE);
    await tar.addBuffer('index.json', Buffer.from(JSON.stringify(plan.index)));
    await tar.addDirectory('blobs');
    await tar.addDirectory('blobs/sha256');
    for (const digest of plan.blobs) {
      const name = `blobs/sha256/${parseDigest(digest).hex}`;
      await tar.addStream(name, await blobs.size(digest), blobs.createReadStream(digest));
    }
    await tar.finish();
  } catch (error) {
    await tar.abort();
    throw error;
  }
}
