/** Pulling an image: the manifest (an index resolved to one platform), then the config and the
 * missing layers, up to three at a time, each verified while it streams into the blob store; the
 * image becomes visible only once everything is verified and unpacked. */

import { Readable } from 'node:stream';
import type { DigestAndSize } from '../image/digest.ts';
import type { Platform } from '../image/formats/platform.ts';
import type { ImageSource, SourceImage } from '../image/formats/source.ts';
import type { ImageInfo, ImageProgress } from '../image/image-store.ts';
import type { ImageConfig, ImageManifest } from '../image/oci.ts';
import { CorralError } from '../sys/errors.ts';
import { downloadBlob } from './blob-download.ts';
import type { RegistryClient } from './client.ts';
import { connect, type RegistryOptions } from './connect.ts';
import { resolveImage } from './manifests.ts';
import { inParallel } from './parallel.ts';
import { parsePlatform } from './platform-spec.ts';
import { formatReference, parseReference } from './reference.ts';
import { RegistryError } from './registry-error.ts';

/** What a pull needs of the image store. */
export interface PullStore {
  hasBlob(digest: string): boolean;
  /** Stores a blob, verified against `expected` while it is written. */
  putBlob(source: Readable | Buffer, expected: { digest: string; size: number }): Promise<DigestAndSize>;
  /** Registers the images of a source (blobs already stored are not read again), as import does. */
  importFrom(source: ImageSource, options: { tag?: string; onProgress?: (p: ImageProgress) => void }): Promise<ImageInfo[]>;
}

/** Progress of a pull: bytes downloaded, then layers unpacked. */
export interface PullProgress {
  phase: 'download' | 'unpack' | 'done';
  /** The layer this event is about, when it is about one. */
  digest?: string;
  /** Bytes downloaded so far, and what the missing layers add up to. */
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
  /** Layers downloaded at once (default 3, as Docker). */
  concurrency?: number;
}

/** Pulls `ref` into the store and returns the stored image, tagged with the normalized reference
 * (untagged when pulled by digest only). A failed pull registers nothing and stores nothing
 * unverified; verified blobs stay for the next attempt to reuse (gc removes them otherwise). */
export async function pull(store: PullStore, ref: string, options: PullOptions = {}): Promise<ImageInfo> {
  const reference = parseReference(ref);
  // One failed layer stops the others.
  const failed = new AbortController();
  const client = await connect(reference, options, options.signal ? AbortSignal.any([options.signal, failed.signal]) : failed.signal);
  const source = registrySource(client, store, reference.digest ?? reference.tag!, options, () => failed.abort());
  const tag = reference.tag === undefined ? undefined : formatReference({ registry: reference.registry, repository: reference.repository, tag: reference.tag });
  const onProgress = options.onProgress;
  const [image] = await store.importFrom(source, {
    ...(tag === undefined ? {} : { tag }),
    ...(onProgress ? { onProgress: (p: ImageProgress) => p.phase === 'layers' && onProgress({ phase: 'unpack', bytes: source.bytes, totalBytes: source.totalBytes, layersDone: p.layersDone, layersTotal: p.layersTotal }) } : {}),
  });
  onProgress?.({ phase: 'done', bytes: source.bytes, totalBytes: source.totalBytes, layersDone: image!.layers.length, layersTotal: image!.layers.length });
  return image!;
}

/** The registry as an ImageSource: images() resolves the manifest and downloads what the store
 * lacks (so it runs under the store's import guard), openBlob() streams any blob. */
function registrySource(client: RegistryClient, store: PullStore, reference: string, options: PullOptions, onFailure: () => void): ImageSource & { bytes: number; totalBytes: number } {
  const platform = options.platform === undefined ? undefined : parsePlatform(options.platform);
  const state = {
    bytes: 0,
    totalBytes: 0,
    async images(): Promise<SourceImage[]> {
      const { image } = await resolveImage(client, reference, platform);
      const manifest = image.document as ImageManifest;
      await store.putBlob(image.bytes, image.descriptor);
      const configResponse = await downloadJson(client, manifest.config.digest, manifest.config.size);
      await store.putBlob(configResponse, manifest.config);
      const config = JSON.parse(configResponse.toString('utf8')) as ImageConfig;
      const missing = [...new Map(manifest.layers.filter((l) => !store.hasBlob(l.digest)).map((l) => [l.digest, l])).values()];
      state.totalBytes = missing.reduce((n, l) => n + l.size, 0);
      let layersDone = manifest.layers.length - missing.length;
      const report = (digest: string): void => options.onProgress?.({ phase: 'download', digest, bytes: state.bytes, totalBytes: state.totalBytes, layersDone, layersTotal: manifest.layers.length });
      await inParallel(missing, options.concurrency ?? 3, async (layer) => {
        const stream = downloadBlob(client, layer, (n) => {
          state.bytes += n;
          report(layer.digest);
        });
        try {
          await store.putBlob(stream, layer);
        } catch (error) {
          throw layerError(client, layer.digest, error);
        }
        layersDone += 1;
        report(layer.digest);
      }, onFailure);
      return [{ manifest, config, configDigest: manifest.config.digest, manifestDigest: image.descriptor.digest, manifestSize: image.descriptor.size }];
    },
    async openBlob(digest: string): Promise<Readable> {
      return downloadBlob(client, { mediaType: 'application/octet-stream', digest, size: -1 });
    },
    async close(): Promise<void> {},
  };
  return state;
}

/** A small blob (a config) in memory; its digest is checked when it is stored. */
async function downloadJson(client: RegistryClient, digest: string, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of downloadBlob(client, { mediaType: 'application/json', digest, size }) as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > size) break;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A store refusal (digest or size) named with the registry, repository and blob. */
function layerError(client: RegistryClient, digest: string, error: unknown): unknown {
  if (!(error instanceof CorralError) || error instanceof RegistryError || error.code !== 'ERR_DIGEST_MISMATCH') return error;
  const operation = `pull blob ${digest}`;
  return new RegistryError(`${operation} ${client.registry}/${client.repository}: refused, the data is not what the manifest says (${error.message})`, 'ERR_DIGEST_MISMATCH', client.context(operation), { cause: error });
}
