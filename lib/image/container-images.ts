import type { ImageProvider, ResolvedImage } from '../container/image-provider.ts';
import { CorralError } from '../sys/errors.ts';
import { commitUpper } from './commit.ts';
import { guard, storeParts, writing, type ImageStore } from './image-store.ts';
import { parseReference } from './reference.ts';
import { runnableImage } from './runnable.ts';
import { resolveUser } from './run-config.ts';
import { OverlayView } from './layer/overlay-view.ts';

/** The image store as the container engine sees it: how a spec's `image` becomes layers and
 * defaults (pulled first with `pullImage` as the policy says), which containers hold which image,
 * and how a container's changes become a new image. */
export function containerImages(images: ImageStore, pullImage: (ref: string) => Promise<unknown>): ImageProvider {
  const parts = storeParts(images);
  const local = (ref: string): Promise<ResolvedImage> => guard('resolve an image', ref, () => runnableImage(parts, ref));
  return {
    resolve: async (ref, pull) => {
      if (pull === 'always') await pullImage(ref);
      if (pull !== 'missing') return local(ref);
      try {
        return await local(ref);
      } catch (error) {
        if (!(error instanceof CorralError) || error.code !== 'ERR_IMAGE_NOT_FOUND' || !pullable(ref)) throw error;
        await pullImage(ref).catch((cause: unknown) => {
          throw new CorralError(`no image ${ref} in the store, and pulling it failed: ${(cause as Error).message}`, { code: 'ERR_IMAGE_NOT_FOUND', path: ref, cause });
        });
        return local(ref);
      }
    },
    resolveUser: (user, dirs) => resolveUser(user, new OverlayView(dirs)),
    markUsed: (digest, id, owner) => parts.leases.holdImage(digest, id, owner),
    release: (digest, id, owner) => parts.leases.releaseImage(digest, id, owner),
    commit: (request) => guard('commit a container', request.upper, () => writing(parts, (write) => commitUpper(parts, write, request))),
  };
}

/** True when `ref` names a registry image (not a bare digest or short id). */
function pullable(ref: string): boolean {
  try {
    parseReference(ref);
    return !/^(sha256:)?[0-9a-f]{4,64}$/.test(ref);
  } catch {
    return false;
  }
}
