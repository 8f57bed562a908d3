/**
 * Reading a `docker save` archive (also skopeo's docker-archive:) as OCI images, in place, without
 * extracting it: manifest.json's entries become OCI manifests whose blobs are the archive's files.
 */

import { Readable } from 'node:stream';
import { CorralError } from '../../sys/errors.ts';
import { digestStream, parseDigest, sha256Digest } from '../digest.ts';
import { MEDIA_TYPE, type Descriptor, type DockerArchiveEntry, type ImageConfig, type ImageManifest } from '../oci.ts';
import type { ImageSource, SourceImage } from './source.ts';
import { TarIndex } from '../tar/tar-index.ts';

type BlobLocation = { member: string } | { data: Buffer };

/**
 * Opens the archive. Layer digests are those of the files as stored: a compressed layer is hashed
 * (by `images()`, once), an uncompressed one is by definition its DiffID from the config, which
 * copying the blob verifies.
 */
export async function openDockerArchive(tarPath: string): Promise<ImageSource> {
  const tar = await TarIndex.open(tarPath);
  let entries: DockerArchiveEntry[];
  try {
    entries = parseManifestList(tarPath, tar.has('manifest.json') ? await tar.read('manifest.json') : undefined);
  } catch (error) {
    await tar.close();
    throw error;
  }
  const blobs = new Map<string, BlobLocation>();
  const layers = new Map<string, Promise<Descriptor>>();
  let loaded: Promise<SourceImage[]> | undefined;

  const invalid = (why: string): CorralError =>
    new CorralError(`${tarPath}: ${why}`, { code: 'ERR_INVALID_IMAGE', path: tarPath });

  const readMember = async (name: string): Promise<Buffer> => {
    if (!tar.has(name)) throw invalid(`manifest.json names ${JSON.stringify(name)}, which is not in the archive`);
    return tar.read(name);
  };

  const describeLayer = async (name: string, diffId: string): Promise<Descriptor> => {
    if (!tar.has(name)) throw invalid(`manifest.json names ${JSON.stringify(name)}, which is not in the archive`);
    const size = tar.size(name);
    const mediaType = sniffLayer(await tar.head(name, 4));
    const digest = mediaType === MEDIA_TYPE.layer ? diffId : (await digestStream(tar.createReadStream(name))).digest;
    blobs.set(digest, { member: name });
    return { mediaType, digest, size };
  };

  const convert = async (entry: DockerArchiveEntry): Promise<SourceImage[]> => {
    const configData = await readMember(entry.Config);
    const config = parseJson(configData, entry.Config, invalid) as ImageConfig;
    const diffIds = config.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.length !== entry.Layers.length) {
      throw invalid(`${entry.Config} lists ${diffIds?.length ?? 'no'} diff_ids for ${entry.Layers.length} layers`);
    }
    diffIds.forEach((diffId) => parseDigest(diffId));
    const configDigest = sha256Digest(configData);
    blobs.set(configDigest, { data: configData });

    const layerDescriptors: Descriptor[] = [];
    for (const [i, name] of entry.Layers.entries()) {
      const known = layers.get(name) ?? describeLayer(name, diffIds[i]!);
      layers.set(name, known);
      layerDescriptors.push(await known);
    }
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.manifest,
      config: { mediaType: MEDIA_TYPE.config, digest: configDigest, size: configData.length },
      layers: layerDescriptors,
    };
    const manifestData = Buffer.from(JSON.stringify(manifest));
    const manifestDigest = sha256Digest(manifestData);
    blobs.set(manifestDigest, { data: manifestData });

    const image = { manifest, config, configDigest, manifestDigest, manifestSize: manifestData.length };
    const tags = entry.RepoTags ?? [];
    return tags.length === 0 ? [image] : tags.map((ref) => ({ ref, ...image }));
  };

  const images = (): Promise<SourceImage[]> => {
    loaded ??= (async () => {
      const all: SourceImage[] = [];
      for (const entry of entries) all.push(...(await convert(entry)));
      return all;
    })();
    return loaded;
  };

  return {
    images,

    async openBlob(digest: string): Promise<Readable> {
      parseDigest(digest);
      await images();
      const location = blobs.get(digest);
      if (location === undefined) throw invalid(`no blob ${digest} in the archive`);
      return 'data' in location ? Readable.from([location.data]) : tar.createReadStream(location.member);
    },

    close: () => tar.close(),
  };
}

function parseManifestList(tarPath: string, data: Buffer | undefined): DockerArchiveEntry[] {
  const invalid = (why: string): CorralError =>
    new CorralError(`${tarPath}: ${why}`, { code: 'ERR_INVALID_IMAGE', path: tarPath });
  if (data === undefined) throw invalid('no manifest.json: not a docker-save archive');
  const list = parseJson(data, 'manifest.json', invalid);
  const isStrings = (value: unknown): value is string[] =>
    Array.isArray(value) && value.every((item) => typeof item === 'string');
  const valid =
    Array.isArray(list) &&
    list.every(
      (entry: Partial<DockerArchiveEntry> | null) =>
        typeof entry?.Config === 'string' &&
        isStrings(entry.Layers) &&
        (entry.RepoTags === undefined || entry.RepoTags === null || isStrings(entry.RepoTags)),
    );
  if (!valid) throw invalid('manifest.json is not a list of {Config, RepoTags, Layers}');
  return list as DockerArchiveEntry[];
}

function parseJson(data: Buffer, name: string, invalid: (why: string) => CorralError): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch (error) {
    throw invalid(`${name} is not valid JSON (${(error as Error).message})`);
  }
}

/** Newer docker saves gzip layers, older ones plain tar; the first bytes tell which. */
function sniffLayer(head: Buffer): string {
  if (head[0] === 0x1f && head[1] === 0x8b) return MEDIA_TYPE.layerGzip;
  if (head.length === 4 && head.readUInt32LE(0) === 0xfd2fb528) return MEDIA_TYPE.layerZstd;
  return MEDIA_TYPE.layer;
}
