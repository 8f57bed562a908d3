/** Reading an OCI image layout, whether it is a directory or a tar of one. */

import type { Readable } from 'node:stream';
import { CorralError } from '../../sys/errors.ts';
import { parseDigest, sha256Digest } from '../digest.ts';
import { REF_NAME, type Descriptor, type ImageConfig, type ImageIndex } from '../oci.ts';
import { resolveManifest } from './resolve.ts';
import type { ImageSource, SourceImage } from './source.ts';

/** The files of a layout ('oci-layout', 'index.json', 'blobs/sha256/<hex>'), wherever they are kept. */
export interface LayoutFiles {
  /** Where the layout is, for messages. */
  readonly where: string;
  /** Whether the file exists. */
  has(name: string): Promise<boolean>;
  read(name: string): Promise<Buffer>;
  open(name: string): Promise<Readable>;
  close(): Promise<void>;
}

/**
 * An ImageSource over a layout's files, once its oci-layout file is checked: one image per entry of
 * index.json, nested indexes resolved to this machine's platform.
 */
export async function layoutSource(files: LayoutFiles): Promise<ImageSource> {
  const invalid = (why: string): CorralError =>
    new CorralError(`${files.where}: ${why}`, { code: 'ERR_INVALID_IMAGE', path: files.where });

  const readFile = async (name: string): Promise<Buffer> => {
    if (!(await files.has(name))) throw invalid(`missing ${name}`);
    return files.read(name);
  };

  const parseJson = (data: Buffer, name: string): unknown => {
    try {
      return JSON.parse(data.toString('utf8'));
    } catch (error) {
      throw invalid(`${name} is not valid JSON (${(error as Error).message})`);
    }
  };

  const fetchJson = async (descriptor: Descriptor): Promise<unknown> => {
    const data = await readFile(blobName(descriptor.digest));
    const digest = sha256Digest(data);
    if (digest !== descriptor.digest || data.length !== descriptor.size) {
      throw new CorralError(
        `${files.where}: blob ${descriptor.digest} (${descriptor.size} bytes) holds ${digest} (${data.length} bytes)`,
        { code: 'ERR_DIGEST_MISMATCH', path: files.where },
      );
    }
    return parseJson(data, descriptor.digest);
  };

  const layout = parseJson(await readFile('oci-layout'), 'oci-layout') as { imageLayoutVersion?: unknown } | null;
  const version = layout?.imageLayoutVersion;
  if (typeof version !== 'string' || !version.startsWith('1.')) {
    throw invalid(`unsupported imageLayoutVersion ${JSON.stringify(version)}`);
  }

  return {
    async images(): Promise<SourceImage[]> {
      const index = parseJson(await readFile('index.json'), 'index.json') as ImageIndex;
      if (!Array.isArray(index.manifests)) throw invalid('index.json has no manifests list');
      const images: SourceImage[] = [];
      for (const entry of index.manifests) {
        const { descriptor, manifest } = await resolveManifest(entry, fetchJson);
        const config = (await fetchJson(manifest.config)) as ImageConfig;
        const ref = entry.annotations?.[REF_NAME];
        images.push({
          ...(ref === undefined ? {} : { ref }),
          manifest,
          config,
          configDigest: manifest.config.digest,
          manifestDigest: descriptor.digest,
          manifestSize: descriptor.size,
        });
      }
      return images;
    },

    async openBlob(digest: string): Promise<Readable> {
      const name = blobName(digest);
      if (!(await files.has(name))) throw invalid(`missing blob ${digest}`);
      return files.open(name);
    },

    close: () => files.close(),
  };
}

function blobName(digest: string): string {
  return `blobs/sha256/${parseDigest(digest).hex}`;
}
