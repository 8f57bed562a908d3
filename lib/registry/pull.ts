/** Pulling an image: the manifest (an index resolved to one platform), then the config and the
 * missing layers, up to three at a time, each verified while it streams into the blob store; the
 * image becomes visible only once everything is verified and unpacked. */

import { Readable } from 'node:stream';
import { sha256Digest } from '../image/digest.ts';
import { CorralError } from '../sys/errors.ts';
import type { Platform } from '../image/formats/platform.ts';
import type { ImageSource, SourceImage } from '../image/formats/source.ts';
import { guard, storeParts, writing, type ImageInfo, type ImageProgress, type ImageStore } from '../image/image-store.ts';
import { importSource } from '../image/import.ts';
import type { ImageConfig, ImageManifest } from '../image/oci.ts';
import { downloadBlob } from './blob-download.ts';
import type { RegistryClient } from './client.ts';
import { connectAll, type RegistryOptions } from './connect.ts';
import { resolveImage } from './manifests.ts';
import { parsePlatform } from './platform-spec.ts';
import { formatReference, parseReference, type Reference } from '../image/reference.ts';
import { RegistryError } from './registry-error.ts';

/** Progress of a pull: bytes downloaded, then layers unpacked. */
export interface PullProgress {
  phase: 'download' | 'unpack' | 'done';
  /** The layer this event is about, when it is about one. */
  digest?: string;
  /** Bytes downloaded so far (layers already stored are not downloaded), and what all layers add up to. */
  bytes: number;
  totalBytes: number;
  layersDone: number;
  layersTotal: number;
}

/** Options of pull(). */
export interface PullOptions extends RegistryOptions {
  /** 'linux/arm64/v8' or an OCI platform; default this machine's. */
  platform?: string | Platform;
  onProgress?: (progress: PullProgress) => void;
}

/** Pulls `ref` into the store and returns the stored image, tagged with the normalized reference
 * (untagged when pulled by digest only). Nothing is visible until every blob is verified and every
 * layer unpacked; a failed pull leaves the store as it was (a killed one leaves verified blobs, which
 * the next pull reuses unless gc took them). */
export async function pull(store: ImageStore, ref: string, options: PullOptions = {}): Promise<ImageInfo> {
  const reference = parseReference(ref);
  const clients = await connectAll(reference, options);
  for (let i = 0; ; i++) {
    try {
      return await pullFrom(store, clients[i]!, ref, reference, options);
    } catch (error) {
      // A mirror that fails hands over to the next, and the last to the registry itself.
      if (i === clients.length - 1 || !(error instanceof RegistryError)) throw error;
    }
  }
}

/** pull() from one registry or mirror. */
async function pullFrom(store: ImageStore, base: RegistryClient, ref: string, reference: Reference, options: PullOptions): Promise<ImageInfo> {
  // One failed download stops the others.
  const failed = new AbortController();
  const client = base.withSignal(options.signal ? AbortSignal.any([options.signal, failed.signal]) : failed.signal);
  const source = registrySource(client, reference.digest ?? reference.tag!, options, () => failed.abort());
  const tag = reference.tag === undefined ? undefined : formatReference({ registry: reference.registry, repository: reference.repository, tag: reference.tag });
  const onProgress = options.onProgress;
  const parts = storeParts(store);
  const [digest] = await guard('pull an image', ref, () => writing(parts, (write) => importSource(parts, write, source, `${reference.registry}/${reference.repository}`, {
    ...(tag === undefined ? {} : { tag }),
    onProgress: (p: ImageProgress) => {
      if (p.phase === 'layers') onProgress?.({ phase: 'unpack', bytes: source.bytes, totalBytes: source.totalBytes, layersDone: p.layersDone, layersTotal: p.layersTotal });
      // Thrown into the import, which then takes out what it stored: an abort after the last
      // download still leaves the store as it was.
      if (options.signal?.aborted) throw new CorralError(`pull ${ref}: aborted`, { code: 'ABORT_ERR', cause: options.signal.reason });
    },
  }))).catch((error: unknown) => {
    throw refusal(client, error);
  });
  const image = await store.inspect(digest!);
  onProgress?.({ phase: 'done', bytes: source.bytes, totalBytes: source.totalBytes, layersDone: image.layers.length, layersTotal: image.layers.length });
  return image;
}

/** The registry as an ImageSource: images() resolves the manifest (an index to one platform) and
 * fetches the config; openBlob() serves those from memory and streams layers from the registry. */
function registrySource(client: RegistryClient, reference: string, options: PullOptions, onFailure: () => void): ImageSource & { bytes: number; totalBytes: number } {
  const platform = options.platform === undefined ? undefined : parsePlatform(options.platform);
  const inMemory = new Map<string, Buffer>();
  let layersDone = 0;
  let layersTotal = 0;
  const state = {
    bytes: 0,
    totalBytes: 0,
    async images(): Promise<SourceImage[]> {
      const { image } = await resolveImage(client, reference, platform);
      const manifest = image.document as ImageManifest;
      const configBytes = await downloadSmall(client, manifest.config.digest, manifest.config.size);
      inMemory.set(image.descriptor.digest, image.bytes);
      inMemory.set(manifest.config.digest, configBytes);
      layersTotal = manifest.layers.length;
      state.totalBytes = manifest.layers.reduce((n, l) => n + l.size, 0);
      const config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
      return [{ manifest, config, configDigest: manifest.config.digest, manifestDigest: image.descriptor.digest, manifestSize: image.descriptor.size }];
    },
    async openBlob(digest: string): Promise<Readable> {
      const held = inMemory.get(digest);
      if (held) return Readable.from([held]);
      const stream = downloadBlob(client, { mediaType: 'application/octet-stream', digest, size: -1 }, (n) => {
        state.bytes += n;
        options.onProgress?.({ phase: 'download', digest, bytes: state.bytes, totalBytes: state.totalBytes, layersDone, layersTotal });
      });
      stream.once('error', onFailure);
      stream.once('end', () => {
        layersDone += 1;
      });
      return stream;
    },
    async close(): Promise<void> {},
  };
  return state;
}

/** A small blob (a config) in memory, checked against its digest. */
async function downloadSmall(client: RegistryClient, digest: string, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of downloadBlob(client, { mediaType: 'application/json', digest, size }) as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > size) break;
    chunks.push(chunk);
  }
  const data = Buffer.concat(chunks);
  if (total !== size || sha256Digest(data) !== digest) {
    const operation = `pull blob ${digest}`;
    throw new RegistryError(`${operation} ${client.registry}/${client.repository}: refused, the config is not what the manifest says`, 'ERR_DIGEST_MISMATCH', client.context(operation));
  }
  return data;
}

/** The store's refusal of a blob (digest or size), named with the registry and repository it came from. */
function refusal(client: RegistryClient, error: unknown): unknown {
  if (!(error instanceof CorralError) || error instanceof RegistryError || error.code !== 'ERR_DIGEST_MISMATCH') return error;
  const operation = 'pull blob';
  return new RegistryError(`${operation} ${client.registry}/${client.repository}: refused, the data is not what the manifest says (${error.message})`, 'ERR_DIGEST_MISMATCH', client.context(operation), { cause: error });
}
