import type { ImageProvider } from '../container/image-provider.ts';
import { commitUpper } from './commit.ts';
import { guard, storeParts, writing, type ImageStore } from './image-store.ts';
import { runnableImage } from './runnable.ts';
import { resolveUser } from './run-config.ts';
import { OverlayView } from './layer/overlay-view.ts';

/** The image store as the container engine sees it: how a spec's `image` becomes layers and
 * defaults, which containers hold which image, and how a container's changes become a new image. */
export function containerImages(images: ImageStore): ImageProvider {
  const parts = storeParts(images);
  return {
    resolve: (ref) => guard('resolve an image', ref, () => runnableImage(parts, ref)),
    resolveUser: (user, dirs) => resolveUser(user, new OverlayView(dirs)),
    markUsed: (digest, id, owner) => parts.leases.holdImage(digest, id, owner),
    release: (digest, id, owner) => parts.leases.releaseImage(digest, id, owner),
    commit: (request) => guard('commit a container', request.upper, () => writing(parts, (write) => commitUpper(parts, write, request))),
  };
}
