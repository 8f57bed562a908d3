/** An image as a container runs it: its config, its layer directories (top first) and defaults. */

import type { ResolvedImage } from '../container/image-provider.ts';
import { findImage } from './image-index.ts';
import type { ImageConfig } from './oci.ts';
import { imageDefaults } from './run-config.ts';
import type { StoreParts } from './store-parts.ts';

/** Resolves an image by tag or digest for running: its defaults are read through its own layers. */
export async function runnableImage(parts: StoreParts, ref: string): Promise<ResolvedImage> {
  const [digest, record] = findImage(parts.index.read(), ref);
  const top = [...record.chainIds].reverse();
  return {
    manifestDigest: digest,
    defaults: await imageDefaults(await config(parts, record.configDigest), top.map((c) => parts.layers.contents(c))),
    layersDir: parts.layers.dir,
    lowerNames: top.map((c) => `${parts.layers.name(c)}/fs`),
  };
}

async function config(parts: StoreParts, digest: string): Promise<ImageConfig> {
  let found = parts.configs.get(digest);
  if (!found) parts.configs.set(digest, (found = await parts.blobs.readJson<ImageConfig>(digest)));
  return found;
}
