/** Reading a tar of an OCI image layout (`skopeo copy … oci-archive:FILE:TAG`), in place, without extracting it. */

import { layoutSource } from './layout-reader.ts';
import type { ImageSource } from './source.ts';
import { TarIndex } from '../tar/tar-index.ts';

/** Opens the archive and indexes its members; `close()` releases the file. */
export async function openOciArchive(tarPath: string): Promise<ImageSource> {
  const tar = await TarIndex.open(tarPath);
  try {
    return await layoutSource({
      where: tarPath,
      has: async (name: string) => tar.has(name),
      read: (name: string) => tar.read(name),
      open: async (name: string) => tar.createReadStream(name),
      close: () => tar.close(),
    });
  } catch (error) {
    await tar.close();
    throw error;
  }
}
