import { Runtime as ContainerRuntime, type RuntimeConfig } from '../container/runtime.ts';
import type { ImageProvider } from '../container/image-provider.ts';
import { ImageStore } from './image-store.ts';
import { imageDefaults } from './run-config.ts';

/** The runtime users get: containers (lib/container) plus the image store, so specs can name an
 * image and containers can be committed. */
export class Runtime extends ContainerRuntime {
  /** Images: import, export, list, inspect, tag, remove, gc, diskUsage. */
  readonly images: ImageStore;
  readonly #provider: ImageProvider;

  constructor(config: RuntimeConfig = {}) {
    super(config);
    const images = new ImageStore(this.root, process.getuid!() !== 0);
    this.images = images;
    this.#provider = {
      resolve(ref) {
        const image = images.resolve(ref);
        return {
          manifestDigest: image.manifestDigest,
          defaults: imageDefaults(image.config, image.lowerDirs),
          layersDir: image.layersDir,
          lowerNames: image.lowerNames,
        };
      },
      markUsed: (digest, id) => images.markUsed(digest, id),
      release: (digest, id) => images.release(digest, id),
      commit: (request) => images.commit(request),
    };
  }

  protected override imageProvider(): ImageProvider {
    return this.#provider;
  }
}
