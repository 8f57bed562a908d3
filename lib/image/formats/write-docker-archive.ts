/** Saving stored images as a `docker save` archive, which `docker load` and skopeo's `docker-archive:` read. */

import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { CorralError } from '../../sys/errors.ts';
import type { BlobStore } from '../blob-store.ts';
import { digestStream, parseDigest } from '../digest.ts';
import { MEDIA_TYPE, type Descriptor, type DockerArchiveEntry, type ImageConfig } from '../oci.ts';
import { storedManifestSize, type ImageToWrite } from './layout-plan.ts';
import { resolveManifest } from './resolve.ts';
import { ArchiveFile } from './archive-file.ts';

const PLAIN_LAYERS: ReadonlySet<string> = new Set([MEDIA_TYPE.layer, MEDIA_TYPE.dockerLayer]);
const GZIP_LAYERS: ReadonlySet<string> = new Set([MEDIA_TYPE.layerGzip, MEDIA_TYPE.dockerLayerGzip]);

type ArchiveEntry = DockerArchiveEntry & { RepoTags: string[] };

interface LayerToWrite {
  descriptor: Descriptor;
  diffId: string;
}

/**
 * Writes the archive `tarPath` (replacing it once complete): manifest.json, each config as
 * `<hex>.json` and each layer uncompressed as `<diffid hex>/layer.tar`. Gzip layers are gunzipped
 * on the way and must hash to the config's diff_ids; indexes are resolved to this machine's platform.
 */
export async function writeDockerArchive(tarPath: string, images: ImageToWrite[], blobs: BlobStore): Promise<void> {
  const entries = new Map<string, ArchiveEntry>();
  const configs = new Set<string>();
  const layers = new Map<string, LayerToWrite>();

  for (const image of images) {
    const { manifest } = await resolveManifest(
      { mediaType: MEDIA_TYPE.manifest, digest: image.manifestDigest, size: await storedManifestSize(image, blobs) },
      (descriptor) => blobs.readJson(descriptor.digest),
    );
    const configHex = parseDigest(manifest.config.digest).hex;
    const config = await blobs.readJson<ImageConfig>(manifest.config.digest);
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== manifest.layers.length) {
      throw new CorralError(
        `image ${image.manifestDigest}: config lists ${diffIds.length} diff_ids for ${manifest.layers.length} layers`,
        { code: 'ERR_INVALID_IMAGE', step: 'write docker archive' },
      );
    }
    manifest.layers.forEach((descriptor, i) => layers.set(diffIds[i]!, { descriptor, diffId: diffIds[i]! }));
    configs.add(manifest.config.digest);

    const entry: ArchiveEntry = entries.get(configHex) ?? {
      Config: `${configHex}.json`,
      RepoTags: [],
      Layers: diffIds.map((diffId) => `${parseDigest(diffId).hex}/layer.tar`),
    };
    if (image.ref !== undefined) entry.RepoTags.push(dockerTag(image.ref));
    entries.set(configHex, entry);
  }

  const tar = await ArchiveFile.create(tarPath);
  try {
    await tar.addBuffer('manifest.json', Buffer.from(JSON.stringify([...entries.values()])));
    for (const digest of configs) await tar.addBuffer(`${parseDigest(digest).hex}.json`, await blobs.read(digest));
    for (const layer of layers.values()) await writeLayer(tar, layer, blobs);
    await tar.finish();
  } catch (error) {
    await tar.abort();
    throw error;
  }
}

/** Docker keys images by their config, so one config's refs share an entry; RepoTags need a tag. */
function dockerTag(ref: string): string {
  return /:[^/]*$/.test(ref) ? ref : `${ref}:latest`;
}

async function writeLayer(tar: ArchiveFile, { descriptor, diffId }: LayerToWrite, blobs: BlobStore): Promise<void> {
  const dir = parseDigest(diffId).hex;
  const mismatch = (actual: string): CorralError =>
    new CorralError(`layer ${descriptor.digest} unpacks to ${actual}, but the config says ${diffId}`, {
      code: 'ERR_DIGEST_MISMATCH',
      step: 'write docker archive',
    });
  if (PLAIN_LAYERS.has(descriptor.mediaType)) {
    if (descriptor.digest !== diffId) throw mismatch(descriptor.digest);
    await tar.addDirectory(dir);
    await tar.addStream(`${dir}/layer.tar`, await blobs.size(descriptor.digest), blobs.createReadStream(descriptor.digest));
  } else if (GZIP_LAYERS.has(descriptor.mediaType)) {
    // The tar header needs the uncompressed size first: one pass to hash and measure, one to copy.
    const plain = await pipeline(blobs.createReadStream(descriptor.digest), createGunzip(), digestStream);
    if (plain.digest !== diffId) throw mismatch(plain.digest);
    await tar.addDirectory(dir);
    await tar.addStream(`${dir}/layer.tar`, plain.size, blobs.createReadStream(descriptor.digest), createGunzip());
  } else {
    throw new CorralError(`layer ${descriptor.digest} has media type ${descriptor.mediaType}, which docker archives cannot hold`, {
      code: 'ERR_UNSUPPORTED_MEDIA_TYPE',
      step: 'write docker archive',
    });
  }
}
