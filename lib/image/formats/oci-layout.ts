/** Reading an OCI image layout directory (what `skopeo copy … oci:DIR:TAG` and umoci write). */

import { createReadStream } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { layoutSource } from './layout-reader.ts';
import type { ImageSource } from './source.ts';

/** Opens the layout in `dir` (its oci-layout file is checked now, the rest by `images()`). */
export function openOciLayout(dir: string): Promise<ImageSource> {
  return layoutSource({
    where: dir,
    has: (name: string) => access(join(dir, name)).then(() => true, () => false),
    read: (name: string) => readFile(join(dir, name)),
    open: async (name: string): Promise<Readable> => createReadStream(join(dir, name)),
    close: async () => {},
  });
}
