import { Runtime as ContainerRuntime, type RuntimeConfig } from '../container/runtime.ts';
import type { ImageProvider } from '../container/image-provider.ts';
import { ImageStore } from './image-store.ts';
import { containerImages } from './container-images.ts';

/** The runtime users get: containers (lib/container) plus the image store, so specs can name an
 * image and containers can be committed. */
export class Runtime extends ContainerRuntime {
  /** Images: import, export, list, inspect, tag, remove, gc, diskUsage. */
  readonly images: ImageStore;
  readonly #provider: ImageProvider;

  constructor(config: RuntimeConfig = {}) {
    super(config);
    this.images = new ImageStore(this.root, { rootless: process.getuid!() !== 0 });
    this.#provider = containerImages(this.images);
  }

  protected override imageProvider(): ImageProvider {
    return this.#provider;
  }
}
