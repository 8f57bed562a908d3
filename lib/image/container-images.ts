import type { ImageProvider } from '../container/image-provider.ts';
import type { ImageStore } from './image-store.ts';
import { imageDefaults } from './run-config.ts';

/** The image store as the container engine sees it: how a spec's `image` becomes layers and
 * defaults, and how a container's changes become a new image. */
export function containerImages(images: ImageStore): ImageProvider {
  return {
    async resolve(ref) {
      const image = images.resolve(ref);
      return {
        manifestDigest: image.manifestDigest,
        defaults: imageDefaults(image.config, image.lowerDirs),
        layersDir: image.layersDir,
        lowerNames: image.lowerNames,
      };
    },
    markUsed: (digest, id, owner) => images.markUsed(digest, id, owner),
    release: (digest, id, owner) => images.release(digest, id, owner),
    commit: (request) => images.commit(request),
  };
}
