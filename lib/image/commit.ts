/** Committing a container: what changed in its overlay upper directory becomes one gzip layer on
 * top of its image (deletions as whiteouts), composed into a new tagged image. */

import { PassThrough, pipeline } from 'node:stream';
import { createGzip } from 'node:zlib';
import { CorralError } from '../sys/errors.ts';
import { isSingleIdMap, type IdMap } from '../sys/id-map.ts';
import { diffInNamespace } from './layer/diff-in-namespace.ts';
import type { CommitRequest } from '../container/image-provider.ts';
import { composeImage } from './compose.ts';
import { diffLayer } from './layer/diff.ts';
import type { LayerDigest } from './layer/apply.ts';
import { MEDIA_TYPE, type Descriptor } from './oci.ts';
import type { StoreParts, StoreWrite } from './store-parts.ts';

/** A new image: the base image's layers plus one layer holding what changed in `request.upper`. */
export async function commitUpper(parts: StoreParts, write: StoreWrite, request: CommitRequest): Promise<{ manifestDigest: string }> {
  if (request.baseManifestDigest === null) {
    throw new CorralError('commit needs a container that runs an image (a plain rootfs is no image to build on)', { code: 'ERR_COMMIT_UNSUPPORTED' });
  }
  const { blob, diff } = await storeDiff(parts, write, request.upper, request.idMap);
  return composeImage(parts, write, {
    base: request.baseManifestDigest,
    layer: { blob, diffId: diff.diffId },
    ...(request.changes === undefined ? {} : { changes: request.changes }),
    history: { created_by: 'corral commit', ...(request.message ? { comment: request.message } : {}) },
    ref: request.ref,
  });
}

/** upper → tar → gzip → the blob store, hashing the tar (the DiffID) on the way. A failed diff
 * fails the whole pipeline, so the blob writer closes its file and removes its staging copy
 * (issue 10 item 13: it used to wait forever on a tar that never ended, holding both). */
async function storeDiff(parts: StoreParts, write: StoreWrite, upper: string, idMap: IdMap | null): Promise<{ blob: Descriptor; diff: LayerDigest }> {
  const tar = new PassThrough();
  const gzip = createGzip();
  pipeline(tar, gzip, () => {}); // a failure reaches put() through gzip
  const stored = parts.blobs.put(gzip);
  stored.catch(() => {}); // awaited below: an early failure must not count as unhandled meanwhile
  let diff: LayerDigest;
  try {
    // With subordinate ids the container's other users may own what the caller cannot read: the
    // diff runs in a user namespace with the container's map, where stat gives the owners inside.
    diff = idMap && !isSingleIdMap(idMap) ? await diffInNamespace(upper, tar, idMap) : await diffLayer(upper, tar, { rootless: parts.rootless, idMap });
    tar.end();
  } catch (e) {
    tar.destroy(e as Error);
    await stored.catch(() => {});
    throw e;
  }
  const { digest, size } = await stored;
  write.blobs.push(digest);
  return { blob: { mediaType: MEDIA_TYPE.layerGzip, digest, size }, diff };
}
