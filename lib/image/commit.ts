/** Committing a container: what changed in its overlay upper directory becomes one gzip layer on
 * top of its image (deletions as whiteouts), composed into a new tagged image. */

import { CorralError } from '../sys/errors.ts';
import { isSingleIdMap } from '../sys/id-map.ts';
import { diffInNamespace } from './layer/diff-in-namespace.ts';
import type { CommitRequest } from '../container/image-provider.ts';
import { composeImage, storeLayer } from './compose.ts';
import { diffLayer } from './layer/diff.ts';
import type { StoreParts, StoreWrite } from './store-parts.ts';

/** A new image: the base image's layers plus one layer holding what changed in `request.upper`. */
export async function commitUpper(parts: StoreParts, write: StoreWrite, request: CommitRequest): Promise<{ manifestDigest: string }> {
  if (request.baseManifestDigest === null) {
    throw new CorralError('commit needs a container that runs an image (a plain rootfs is no image to build on)', { code: 'ERR_COMMIT_UNSUPPORTED' });
  }
  const { blob, diff } = await storeLayer(parts, write, (tar) =>
    // With subordinate ids the container's other users may own what the caller cannot read: the
    // diff runs in a user namespace with the container's map, where stat gives the owners inside.
    request.idMap && !isSingleIdMap(request.idMap)
      ? diffInNamespace(request.upper, tar, request.idMap, request.sourceDateEpoch)
      : diffLayer(request.upper, tar, { rootless: parts.rootless, idMap: request.idMap, clampMtime: request.sourceDateEpoch }));
  return composeImage(parts, write, {
    base: request.baseManifestDigest,
    layer: { blob, diffId: diff.diffId },
    ...(request.changes === undefined ? {} : { changes: request.changes }),
    history: { created_by: request.createdBy ?? 'corral commit', ...(request.message ? { comment: request.message } : {}) },
    ...(request.ref === undefined ? {} : { ref: request.ref }),
    ...(request.sourceDateEpoch === undefined ? {} : { created: request.sourceDateEpoch }),
  });
}
