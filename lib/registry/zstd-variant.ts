/** The zstd variant of a stored image, for push with compression 'zstd': each layer that is not
 * zstd already is decompressed and compressed again as zstd, into the blob store under the push's
 * write lease, and an OCI manifest names them. The config (its diff_ids are of the tar bytes) is
 * kept as it is. The caller discards the new blobs once the push is over, so the store stays as it was. */

import { Readable, pipeline, type Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import { uncompressed } from '../image/layer/decompress.ts';
import { MEDIA_TYPE, type Descriptor, type ImageManifest } from '../image/oci.ts';
import type { StoreParts, StoreWrite } from '../image/store-parts.ts';

type ZstdCompressFactory = () => Transform;

/** The manifest bytes of the zstd variant of `manifest`; the blobs it adds are recorded in `write`. */
export async function zstdVariant(parts: StoreParts, write: StoreWrite, manifest: ImageManifest): Promise<Buffer> {
  const createZstdCompress = (zlib as unknown as { createZstdCompress: ZstdCompressFactory }).createZstdCompress;
  const layers: Descriptor[] = [];
  for (const layer of manifest.layers) {
    if (layer.mediaType === MEDIA_TYPE.layerZstd) {
      layers.push(layer);
      continue;
    }
    // The default level (3), as skopeo and containerd use; the output is the same for the same tar.
    const compress = createZstdCompress();
    pipeline(Readable.from(uncompressed(parts.blobs.createReadStream(layer.digest))), compress, () => {}); // errors reach put() through compress
    const stored = await parts.blobs.put(compress);
    if (!write.blobs.includes(stored.digest)) write.blobs.push(stored.digest);
    layers.push({ mediaType: MEDIA_TYPE.layerZstd, digest: stored.digest, size: stored.size, ...(layer.annotations ? { annotations: layer.annotations } : {}) });
  }
  const config = manifest.config.mediaType === MEDIA_TYPE.dockerConfig ? { ...manifest.config, mediaType: MEDIA_TYPE.config } : manifest.config;
  const variant: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.manifest,
    config,
    layers,
    ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
  };
  return Buffer.from(JSON.stringify(variant));
}
