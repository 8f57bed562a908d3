/** Composing an image: a base image (or none) plus, optionally, one layer already in the blob store
 * and some config changes become a new config and manifest, indexed under a tag. Shared by commit
 * and, later, the builder. */

import { PassThrough, pipeline, type Writable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { chainIds } from './digest.ts';
import { hostPlatform } from './formats/platform.ts';
import { findImage } from './image-index.ts';
import type { LayerDigest } from './layer/apply.ts';
import { MEDIA_TYPE, type Descriptor, type ImageConfig, type ImageManifest } from './oci.ts';
import { normalizeRef } from './refs.ts';
import type { StoreParts, StoreWrite } from './store-parts.ts';

/** What a new image is made of. */
export interface Composition {
  /** The image to build on (by tag or digest), or null to start from nothing. */
  base: string | null;
  /** A layer to append: its blob (already stored) and its DiffID. */
  layer?: { blob: Descriptor; diffId: string };
  /** Fields of the config's `config` to set. */
  changes?: Partial<NonNullable<ImageConfig['config']>>;
  /** The history entry of this step; null for none (a change that no instruction made: a build
   * stage leaving out its base image's ONBUILD triggers). */
  history: { created_by: string; comment?: string } | null;
  /** The tag to give it. */
  ref?: string;
  /** When it was made (seconds since the epoch; SOURCE_DATE_EPOCH), default now. */
  created?: number;
}

/** A layer tar written by `produce` (a container's upper for commit, the files of a COPY for the
 * builder) → gzip → the blob store, hashing the tar (the DiffID) on the way. A failed producer
 * fails the whole pipeline, so the blob writer closes its file and removes its staging copy
 * (issue 10 item 13: it used to wait forever on a tar that never ended, holding both). */
export async function storeLayer(parts: StoreParts, write: StoreWrite, produce: (tar: Writable) => Promise<LayerDigest>): Promise<{ blob: Descriptor; diff: LayerDigest }> {
  const tar = new PassThrough();
  const gzip = createGzip();
  pipeline(tar, gzip, () => {}); // a failure reaches put() through gzip
  const stored = parts.blobs.put(gzip);
  stored.catch(() => {}); // awaited below: an early failure must not count as unhandled meanwhile
  let diff: LayerDigest;
  try {
    diff = await produce(tar);
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

/** Writes the new config and manifest, unpacks the new layer and indexes the image (tagged), all
 * recorded in `write` so a failure can be taken back; returns the manifest's digest. */
export async function composeImage(parts: StoreParts, write: StoreWrite, composition: Composition): Promise<{ manifestDigest: string }> {
  const ref = composition.ref === undefined ? undefined : normalizeRef(composition.ref);
  const base = composition.base === null ? null : findImage(parts.index.read(), composition.base)[1];
  const baseManifest = base === null ? null : await parts.blobs.readJson<ImageManifest>(base.manifestDigest);
  const baseConfig: ImageConfig = base === null
    ? { architecture: hostPlatform().architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }
    : await parts.blobs.readJson<ImageConfig>(base.configDigest);
  const { layer } = composition;
  const diffIds = [...baseConfig.rootfs.diff_ids, ...(layer === undefined ? [] : [layer.diffId])];
  const chains = chainIds(diffIds);
  const now = (composition.created === undefined ? new Date() : new Date(composition.created * 1000)).toISOString();
  const config: ImageConfig = {
    ...baseConfig,
    created: now,
    config: { ...baseConfig.config, ...composition.changes },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: [...(baseConfig.history ?? []), ...(composition.history === null ? [] : [{ created: now, ...composition.history, ...(layer === undefined ? { empty_layer: true } : {}) }])],
  };
  const configBlob = await parts.blobs.put(Buffer.from(JSON.stringify(config)));
  write.blobs.push(configBlob.digest);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.manifest,
    config: { mediaType: MEDIA_TYPE.config, digest: configBlob.digest, size: configBlob.size },
    layers: [...(baseManifest?.layers ?? []), ...(layer === undefined ? [] : [layer.blob])],
  };
  const manifestBlob = await parts.blobs.put(Buffer.from(JSON.stringify(manifest)));
  write.blobs.push(manifestBlob.digest);
  if (layer !== undefined) {
    const chain = chains.at(-1)!;
    if (await parts.layers.ensure(chain, layer.diffId, async () => parts.blobs.createReadStream(layer.blob.digest), chains.slice(0, -1).reverse())) write.chains.push(chain);
  }
  await parts.index.update((db) => {
    db.images[manifestBlob.digest] = { manifestDigest: manifestBlob.digest, configDigest: configBlob.digest, chainIds: chains, createdAt: now };
    if (ref !== undefined) db.tags[ref] = manifestBlob.digest;
  });
  return { manifestDigest: manifestBlob.digest };
}
