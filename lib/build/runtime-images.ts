import type { Container } from '../container/container.ts';
import type { CreateSpec } from '../container/detached-spec.ts';
import type { ImageProvider } from '../container/image-provider.ts';
import type { IdMap } from '../sys/id-map.ts';
import { ImageStore } from '../image/image-store.ts';
import { containerImages } from '../image/container-images.ts';
import { registryImages, type RegistryImages } from '../registry/registry-images.ts';
import type { RegistriesConfig } from '../registry/registry-config.ts';
import { buildImage, type BuildOptions } from './builder.ts';
import { pruneCacheMounts } from './mount-sources.ts';

/** The image operations a runtime offers (the store's internals stay inside). */
export type Images = Pick<ImageStore, 'import' | 'export' | 'list' | 'inspect' | 'tag' | 'remove' | 'gc' | 'prune' | 'diskUsage'> & RegistryImages & {
  /** Builds an image from a Dockerfile (its RUN steps in containers of this runtime, a FROM image
   * not in the store pulled); resolves with its manifest digest. A failed build leaves the store as
   * it was (but for pulled base images). */
  build(options: BuildOptions): Promise<{ manifestDigest: string }>;
};

/** What the image side gives a runtime: its public images, and images as its containers use them. */
export interface RuntimeImages {
  images: Images;
  provider: ImageProvider;
}

/** The image side of a Runtime (store, registries, builds: about 120 modules) assembled in one
 * module, so the Runtime loads it on first use and a command that only lists, inspects or stops
 * containers never does (lib/runtime.ts). */
export function runtimeImages(options: { root: string; rootless: boolean; idMap: IdMap; registries: RegistriesConfig | undefined; create: (spec: CreateSpec) => Promise<Container> }): RuntimeImages {
  const { root, rootless } = options;
  const store = new ImageStore(root, { rootless, idMap: rootless ? options.idMap : null });
  const registry = registryImages(store, options.registries);
  // A build is an image operation that runs containers: the one part that needs both.
  const prune = store.prune.bind(store);
  const images = Object.assign(store, registry, {
    /** With buildCache, the RUN --mount=type=cache directories go too (those no build uses). */
    prune: async (pruneOptions: { buildCache?: boolean } = {}) => {
      const result = await prune(pruneOptions);
      if (pruneOptions.buildCache) pruneCacheMounts(root);
      return result;
    },
    build: (buildOptions: BuildOptions) => buildImage({ root, rootless, images: store, create: options.create, pull: (ref) => registry.pull(ref) }, buildOptions),
  });
  return { images, provider: containerImages(store, (ref) => registry.pull(ref)) };
}
