import createDebug from 'debug';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { CorralError } from '../sys/errors.ts';
import { UseMarkers } from '../fs/use-markers.ts';
import { runtimeDir } from '../fs/runtime-root.ts';
import { BlobStore } from './blob-store.ts';
import { chainIds } from './digest.ts';
import { ImageDbFile, type ImageDb, type ImageRecord } from './image-db.ts';
import { LayerStore } from './layer-store.ts';
import { normalizeRef } from './refs.ts';
import { MEDIA_TYPE, type ImageConfig, type ImageManifest } from './oci.ts';
import { PassThrough } from 'node:stream';
import { createGzip } from 'node:zlib';
import { diffLayer } from './layer-diff.ts';
import type { CommitRequest } from '../container/image-provider.ts';
import { openImageSource, writeImage, type ImageFormat } from './formats/io.ts';

const debug = createDebug('corral:image');

/** Progress of a long import or export. */
export interface ImageProgress {
  phase: 'blobs' | 'layers' | 'done';
  layersDone: number;
  layersTotal: number;
  bytes: number;
}

/** Options of import(). */
export interface ImportOptions {
  /** Detected when not given. */
  format?: ImageFormat;
  /** Names the imported image (the source must hold exactly one). */
  tag?: string;
  onProgress?: (progress: ImageProgress) => void;
}

/** One layer of an image, as inspect() shows it. */
export interface LayerInfo {
  digest: string;
  mediaType: string;
  /** Size of the blob as stored (compressed or not). */
  size: number;
  diffId: string;
  chainId: string;
  unpackedBytes: number;
  /** Other images (by manifest digest) that share this layer. */
  sharedWith: string[];
}

/** What inspect() tells about an image. */
export interface ImageInfo {
  tags: string[];
  manifestDigest: string;
  configDigest: string;
  createdAt: string;
  manifest: ImageManifest;
  config: ImageConfig;
  layers: LayerInfo[];
}

/** What list() tells about each image. */
export interface ImageSummary {
  tags: string[];
  manifestDigest: string;
  layers: number;
  unpackedBytes: number;
  createdAt: string;
}

/** What diskUsage() reports: unpacked layer bytes, each layer counted once. */
export interface DiskUsage {
  totalBytes: number;
  /** Bytes of layers used by more than one image. */
  sharedBytes: number;
  /** Per image (by its first tag, or digest): bytes of layers only it uses. */
  uniqueBytes: Record<string, number>;
  /** Bytes of the stored blobs (compressed layers, configs, manifests). */
  blobBytes: number;
}

/** An image ready to run: its config and its layer directories. */
export interface RunnableImage {
  manifestDigest: string;
  config: ImageConfig;
  /** The directory the layer names below are relative to. */
  layersDir: string;
  /** Layer directories relative to layersDir, top layer first (overlayfs lowerdir order). */
  lowerNames: string[];
  /** The same, absolute. */
  lowerDirs: string[];
}

/** The image store of a runtime, under <root>/images: a content-addressed blob store, unpacked
 * layers shared by ChainID, and images.json (images and tags). */
export class ImageStore {
  readonly #dir: string;
  readonly blobs: BlobStore;
  readonly layers: LayerStore;
  readonly #db: ImageDbFile;
  readonly #rootless: boolean;
  /** Configs by digest: content-addressed, so never stale. */
  readonly #configs = new Map<string, ImageConfig>();

  constructor(root: string, rootless: boolean) {
    this.#rootless = rootless;
    this.#dir = runtimeDir(root, 'images');
    this.blobs = new BlobStore(join(this.#dir, 'blobs'));
    this.layers = new LayerStore(join(this.#dir, 'layers'), rootless);
    this.#db = new ImageDbFile(this.#dir);
  }

  /** Imports the images of an OCI layout, OCI archive or docker archive; nothing is visible until
   * every blob is verified and every layer unpacked. Returns the imported images. */
  async import(source: string, options: ImportOptions = {}): Promise<ImageInfo[]> {
    const src = await openImageSource(source, options.format);
    const importId = this.#markImport();
    try {
      const images = await src.images();
      if (options.tag !== undefined && images.length !== 1) {
        throw new CorralError(`${source} holds ${images.length} images; tag names only one`, { code: 'ERR_INVALID_ARG_VALUE', path: source });
      }
      const tagged: [string | undefined, ImageRecord][] = [];
      const layersTotal = images.reduce((n, i) => n + i.manifest.layers.length, 0);
      const progress: ImageProgress = { phase: 'blobs', layersDone: 0, layersTotal, bytes: 0 };
      for (const image of images) {
        const diffIds = image.config.rootfs.diff_ids;
        if (diffIds.length !== image.manifest.layers.length) {
          throw new CorralError(`image ${image.manifestDigest} has ${image.manifest.layers.length} layers but ${diffIds.length} diff_ids`, { code: 'ERR_INVALID_IMAGE', path: source });
        }
        await this.blobs.put(await src.openBlob(image.manifestDigest), { digest: image.manifestDigest, size: image.manifestSize });
        await this.blobs.put(await src.openBlob(image.configDigest), { digest: image.configDigest, size: image.manifest.config.size });
        const chains = chainIds(diffIds);
        for (const [i, layer] of image.manifest.layers.entries()) {
          progress.phase = 'blobs';
          const stored = await this.blobs.put(await src.openBlob(layer.digest), { digest: layer.digest, size: layer.size });
          progress.bytes += stored.size;
          options.onProgress?.({ ...progress });
          progress.phase = 'layers';
          await this.layers.ensure(chains[i]!, diffIds[i]!, async () => this.blobs.createReadStream(layer.digest), chains.slice(0, i).reverse());
          progress.layersDone += 1;
          options.onProgress?.({ ...progress });
        }
        const ref = options.tag ?? image.ref;
        tagged.push([ref === undefined ? undefined : normalizeRef(ref), {
          manifestDigest: image.manifestDigest,
          configDigest: image.configDigest,
          chainIds: chains,
          createdAt: new Date().toISOString(),
        }]);
      }
      await this.#db.update((db) => {
        for (const [ref, record] of tagged) {
          db.images[record.manifestDigest] ??= record;
          if (ref) db.tags[ref] = record.manifestDigest;
        }
      });
      options.onProgress?.({ ...progress, phase: 'done' });
      return Promise.all(tagged.map(([, r]) => this.inspect(r.manifestDigest)));
    } finally {
      this.#imports().remove(importId);
      await src.close();
    }
  }

  /** Writes an image as an OCI layout, OCI archive or docker archive. */
  async export(ref: string, dest: string, options: { format: ImageFormat }): Promise<void> {
    const db = this.#db.read();
    const [digest] = this.#find(db, ref);
    const tag = ref.startsWith('sha256:') ? tagsOf(db, digest)[0] : normalizeRef(ref);
    await writeImage(options.format, dest, [{ ...(tag ? { ref: tag } : {}), manifestDigest: digest }], this.blobs);
  }

  /** Every image with its tags. */
  list(): ImageSummary[] {
    const db = this.#db.read();
    return Object.values(db.images).map((r) => ({
      tags: tagsOf(db, r.manifestDigest),
      manifestDigest: r.manifestDigest,
      layers: r.chainIds.length,
      unpackedBytes: r.chainIds.reduce((n, c) => n + this.layers.size(c), 0),
      createdAt: r.createdAt,
    }));
  }

  /** Manifest, config and layers (with sizes and sharing) of an image by tag or digest. */
  async inspect(ref: string): Promise<ImageInfo> {
    const db = this.#db.read();
    const [digest, record] = this.#find(db, ref);
    const manifest = await this.blobs.readJson<ImageManifest>(digest);
    const config = await this.blobs.readJson<ImageConfig>(record.configDigest);
    const layers = manifest.layers.map((l, i): LayerInfo => {
      const chainId = record.chainIds[i]!;
      return {
        digest: l.digest,
        mediaType: l.mediaType,
        size: l.size,
        diffId: config.rootfs.diff_ids[i]!,
        chainId,
        unpackedBytes: this.layers.size(chainId),
        sharedWith: Object.values(db.images).filter((o) => o.manifestDigest !== digest && o.chainIds.includes(chainId)).map((o) => o.manifestDigest),
      };
    });
    return { tags: tagsOf(db, digest), manifestDigest: digest, configDigest: record.configDigest, createdAt: record.createdAt, manifest, config, layers };
  }

  /** Gives an image another name. */
  async tag(ref: string, newRef: string): Promise<void> {
    const target = normalizeRef(newRef);
    await this.#db.update((db) => {
      const [digest] = this.#find(db, ref);
      db.tags[target] = digest;
    });
  }

  /** Removes a tag (or, by digest, the image and its tags); the image goes with its last tag.
   * Refused while a container uses it, unless forced. Data is reclaimed by gc(). */
  async remove(ref: string, options: { force?: boolean } = {}): Promise<void> {
    await this.#db.update((db) => {
      const [digest] = this.#find(db, ref);
      const byDigest = ref.startsWith('sha256:');
      const remaining = tagsOf(db, digest).filter((t) => !byDigest && t !== normalizeRef(ref));
      if (remaining.length === 0) {
        const users = this.usersOf(digest);
        if (users.length > 0 && !options.force) {
          throw new CorralError(`image ${ref} is used by container ${users.join(', ')}`, { code: 'ERR_IMAGE_IN_USE', path: ref });
        }
        delete db.images[digest];
      }
      for (const t of tagsOf(db, digest)) if (byDigest || t === normalizeRef(ref)) delete db.tags[t];
    });
  }

  /** Deletes blobs and layers no image needs, and the debris of interrupted imports. While another
   * import runs only the debris goes (its blobs are not referenced yet). */
  async gc(): Promise<{ blobs: number; layers: number; debris: number }> {
    return this.#db.update((db) => {
      const debris = this.layers.sweepTemp();
      void this.blobs.sweepTemp(0);
      if (this.#imports().holders().length > 0) return { blobs: 0, layers: 0, debris };
      const blobs = new Set<string>();
      const chains = new Set<string>();
      for (const r of Object.values(db.images)) {
        blobs.add(r.manifestDigest);
        blobs.add(r.configDigest);
        r.chainIds.forEach((c) => chains.add(c));
      }
      // Layer blobs are named in the manifests.
      let removedBlobs = 0;
      const layerBlobs = this.#layerBlobs(db);
      for (const digest of this.blobs.list()) {
        if (blobs.has(digest) || layerBlobs.has(digest)) continue;
        rmSync(this.blobs.path(digest), { force: true });
        removedBlobs += 1;
      }
      let removedLayers = 0;
      for (const chain of this.layers.list()) {
        if (chains.has(chain)) continue;
        this.layers.remove(chain);
        removedLayers += 1;
      }
      debug('gc removed %d blobs, %d layers, %d debris', removedBlobs, removedLayers, debris);
      return { blobs: removedBlobs, layers: removedLayers, debris };
    });
  }

  /** A new image: the base image's layers plus one layer holding what changed in upper (an
   * overlayfs upper directory; deletions become whiteouts), tagged ref. */
  async commit(request: CommitRequest): Promise<{ manifestDigest: string }> {
    if (request.baseManifestDigest === null) {
      throw new CorralError('commit needs a container that runs an image (a plain rootfs is no image to build on)', { code: 'ERR_COMMIT_UNSUPPORTED' });
    }
    const ref = normalizeRef(request.ref);
    const db = this.#db.read();
    const [baseDigest, base] = this.#find(db, request.baseManifestDigest);
    const baseManifest = await this.blobs.readJson<ImageManifest>(baseDigest);
    const baseConfig = await this.blobs.readJson<ImageConfig>(base.configDigest);
    const importId = this.#markImport();
    try {
      // upper → tar → gzip → the blob store, hashing the tar (DiffID) on the way.
      const tar = new PassThrough();
      const gzip = createGzip();
      const stored = this.blobs.put(tar.pipe(gzip));
      const diff = await diffLayer(request.upper, tar, { rootless: this.#rootless });
      tar.end();
      const blob = await stored;
      const diffIds = [...baseConfig.rootfs.diff_ids, diff.diffId];
      const chains = chainIds(diffIds);
      const now = new Date().toISOString();
      const config: ImageConfig = {
        ...baseConfig,
        created: now,
        config: { ...baseConfig.config, ...request.changes },
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: [...(baseConfig.history ?? []), { created: now, created_by: 'corral commit', ...(request.message ? { comment: request.message } : {}) }],
      };
      const configBytes = Buffer.from(JSON.stringify(config));
      const configBlob = await this.blobs.put(configBytes);
      const manifest: ImageManifest = {
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.manifest,
        config: { mediaType: MEDIA_TYPE.config, digest: configBlob.digest, size: configBlob.size },
        layers: [...baseManifest.layers, { mediaType: MEDIA_TYPE.layerGzip, digest: blob.digest, size: blob.size }],
      };
      const manifestBlob = await this.blobs.put(Buffer.from(JSON.stringify(manifest)));
      await this.layers.ensure(chains.at(-1)!, diff.diffId, async () => this.blobs.createReadStream(blob.digest), chains.slice(0, -1).reverse());
      await this.#db.update((d) => {
        d.images[manifestBlob.digest] = { manifestDigest: manifestBlob.digest, configDigest: configBlob.digest, chainIds: chains, createdAt: now };
        d.tags[ref] = manifestBlob.digest;
      });
      return { manifestDigest: manifestBlob.digest };
    } finally {
      this.#imports().remove(importId);
    }
  }

  /** Unpacked bytes, each layer counted once however many images share it. */
  diskUsage(): DiskUsage {
    const db = this.#db.read();
    const users = new Map<string, Set<string>>();
    for (const r of Object.values(db.images)) for (const c of r.chainIds) (users.get(c) ?? users.set(c, new Set()).get(c)!).add(r.manifestDigest);
    let totalBytes = 0;
    let sharedBytes = 0;
    const uniqueBytes: Record<string, number> = {};
    for (const r of Object.values(db.images)) uniqueBytes[tagsOf(db, r.manifestDigest)[0] ?? r.manifestDigest] = 0;
    for (const [chain, images] of users) {
      const size = this.layers.size(chain);
      totalBytes += size;
      if (images.size > 1) sharedBytes += size;
      else {
        const only = [...images][0]!;
        uniqueBytes[tagsOf(db, only)[0] ?? only]! += size;
      }
    }
    const blobBytes = this.blobs.list().reduce((n, d) => n + this.#blobSize(d), 0);
    return { totalBytes, sharedBytes, uniqueBytes, blobBytes };
  }

  /** An image by tag or digest, ready to run. */
  resolve(ref: string): RunnableImage {
    const db = this.#db.read();
    const [digest, record] = this.#find(db, ref);
    const top = [...record.chainIds].reverse();
    return {
      manifestDigest: digest,
      config: this.#config(record.configDigest),
      layersDir: this.layers.dir,
      lowerNames: top.map((c) => `${this.layers.name(c)}/fs`),
      lowerDirs: top.map((c) => this.layers.contents(c)),
    };
  }

  /** Marks the image as used by a container (remove() refuses it meanwhile) until release(). */
  markUsed(manifestDigest: string, containerId: string, owner?: string): void {
    this.#users(manifestDigest).add(containerId, owner);
  }

  /** The container no longer uses the image. */
  release(manifestDigest: string, containerId: string, owner?: string): void {
    this.#users(manifestDigest).remove(containerId, owner);
  }

  /** Containers (of live processes) using an image. */
  usersOf(manifestDigest: string): string[] {
    return this.#users(manifestDigest).holders();
  }

  #users(manifestDigest: string): UseMarkers {
    return new UseMarkers(join(this.#dir, 'in-use', manifestDigest.replace(':', '-')), `image ${manifestDigest}`, { makeDir: true });
  }

  #config(digest: string): ImageConfig {
    let config = this.#configs.get(digest);
    if (!config) this.#configs.set(digest, (config = this.blobs.readJsonSync<ImageConfig>(digest)));
    return config;
  }

  #find(db: ImageDb, ref: string): [string, ImageRecord] {
    const digest = ref.startsWith('sha256:') ? ref : db.tags[normalizeRef(ref)];
    const record = digest === undefined ? undefined : db.images[digest];
    if (!digest || !record) throw new CorralError(`no image ${ref}`, { code: 'ERR_IMAGE_NOT_FOUND', path: ref });
    return [digest, record];
  }

  #layerBlobs(db: ImageDb): Set<string> {
    const out = new Set<string>();
    for (const r of Object.values(db.images)) {
      try {
        for (const l of this.blobs.readJsonSync<ImageManifest>(r.manifestDigest).layers) out.add(l.digest);
      } catch {
        // a missing manifest blob: its layers stay until the record goes
      }
    }
    return out;
  }

  #blobSize(digest: string): number {
    try {
      return this.blobs.sizeSync(digest);
    } catch {
      return 0;
    }
  }

  /** Imports and commits in progress: gc keeps unreferenced blobs while one runs. */
  #imports(): UseMarkers {
    return new UseMarkers(join(this.#dir, 'importing'), 'the image store', { makeDir: true });
  }

  /** Marks an import or commit as running; the returned id ends it with #imports().remove(). */
  #markImport(): string {
    const id = randomBytes(4).toString('hex');
    this.#imports().add(id);
    return id;
  }
}

function tagsOf(db: ImageDb, digest: string): string[] {
  return Object.entries(db.tags).filter(([, d]) => d === digest).map(([t]) => t).sort();
}
