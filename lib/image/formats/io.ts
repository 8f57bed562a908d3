/** Opening and writing images by format name, for callers that take the format from a user. */

import type { BlobStore } from '../blob-store.ts';
import { detectFormat, type ImageFormat } from './detect.ts';
import { openDockerArchive } from './docker-archive.ts';
import type { ImageToWrite } from './layout-plan.ts';
import { openOciArchive } from './oci-archive.ts';
import { openOciLayout } from './oci-layout.ts';
import type { ImageSource } from './source.ts';
import { writeDockerArchive } from './write-docker-archive.ts';
import { writeOciArchive } from './write-oci-archive.ts';
import { writeOciLayout } from './write-oci-layout.ts';

export type { ImageFormat } from './detect.ts';

/** Opens `path` with the reader of `format`, detecting the format when it is not given. */
export async function openImageSource(path: string, format?: ImageFormat): Promise<ImageSource> {
  switch (format ?? (await detectFormat(path))) {
    case 'oci-layout':
      return openOciLayout(path);
    case 'oci-archive':
      return openOciArchive(path);
    case 'docker-archive':
      return openDockerArchive(path);
  }
}

/** Writes stored images to `dest` in `format`. */
export function writeImage(format: ImageFormat, dest: string, images: ImageToWrite[], blobs: BlobStore): Promise<void> {
  switch (format) {
    case 'oci-layout':
      return writeOciLayout(dest, images, blobs);
    case 'oci-archive':
      return writeOciArchive(dest, images, blobs);
    case 'docker-archive':
      return writeDockerArchive(dest, images, blobs);
  }
}
