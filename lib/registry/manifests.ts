/** Manifests over the distribution API: fetched with `Accept` for every type corral reads,
 * verified against their digest, indexes resolved to one platform; and put back byte for byte. */

import { sha256Digest } from '../image/digest.ts';
import { resolveManifest } from '../image/formats/resolve.ts';
import type { Platform } from '../image/formats/platform.ts';
import { MEDIA_TYPE, type Descriptor, type ImageManifest } from '../image/oci.ts';
import type { RegistryClient } from './client.ts';
import { protocolError } from './registry-error.ts';

/** What GET /manifests asks for: without Accept, distribution 2.8 turns schema2 into schema1 and
 * answers 404 for an OCI manifest. */
export const MANIFEST_ACCEPT = [MEDIA_TYPE.index, MEDIA_TYPE.manifest, MEDIA_TYPE.dockerManifestList, MEDIA_TYPE.dockerManifest].join(', ');

const SCHEMA1 = /^application\/vnd\.docker\.distribution\.manifest\.v1\+(?:prettyjws|json)$/;
const MAX_MANIFEST = 4 << 20;

/** A manifest or index as the registry holds it: its bytes (kept exactly, so digests survive). */
export interface FetchedManifest {
  descriptor: Descriptor;
  bytes: Buffer;
  document: unknown;
}

/** GETs a manifest by tag or digest and verifies it: by digest it must hash to it, by tag to the
 * Docker-Content-Digest the registry names; schema1 is refused. */
export async function fetchManifest(client: RegistryClient, reference: string): Promise<FetchedManifest> {
  const operation = `pull manifest ${reference}`;
  const response = await client.request(`manifests/${reference}`, { operation, headers: { accept: MANIFEST_ACCEPT } });
  const bytes = Buffer.from(await response.arrayBuffer());
  if (bytes.length > MAX_MANIFEST) throw protocolError(`the manifest is ${bytes.length} bytes, more than ${MAX_MANIFEST}`, client.context(operation));
  const digest = sha256Digest(bytes);
  const expected = reference.startsWith('sha256:') ? reference : response.headers.get('docker-content-digest');
  if (expected && expected !== digest) {
    throw protocolError(`the manifest hashes to ${digest}, not ${expected}`, client.context(operation), 'ERR_DIGEST_MISMATCH');
  }
  let document: { mediaType?: string; schemaVersion?: number };
  try {
    document = JSON.parse(bytes.toString('utf8')) as typeof document;
  } catch {
    throw protocolError('the manifest is not JSON', client.context(operation));
  }
  const mediaType = document.mediaType ?? response.headers.get('content-type')?.split(';')[0]?.trim() ?? MEDIA_TYPE.manifest;
  if (SCHEMA1.test(mediaType) || document.schemaVersion === 1) {
    throw protocolError('it is a Docker schema 1 manifest, which corral does not read (push the image again with a current tool)', client.context(operation), 'ERR_REGISTRY_UNSUPPORTED_MANIFEST');
  }
  return { descriptor: { mediaType, digest, size: bytes.length }, bytes, document };
}

/** The image manifest a reference leads to for `platform`, and every manifest or index fetched on the way. */
export async function resolveImage(client: RegistryClient, reference: string, platform?: Platform): Promise<{ image: FetchedManifest; fetched: FetchedManifest[] }> {
  const fetched: FetchedManifest[] = [await fetchManifest(client, reference)];
  const byDigest = async (descriptor: Descriptor): Promise<unknown> => {
    let found = fetched.find((f) => f.descriptor.digest === descriptor.digest);
    if (!found) fetched.push((found = await fetchManifest(client, descriptor.digest)));
    return found.document;
  };
  const { descriptor, manifest } = await resolveManifest(fetched[0]!.descriptor, byDigest, platform);
  const image = fetched.find((f) => f.descriptor.digest === descriptor.digest)!;
  if (!Array.isArray((manifest as ImageManifest).layers)) throw protocolError('the manifest has no layers', client.context(`pull manifest ${reference}`));
  return { image, fetched };
}

/** PUTs a manifest under a tag (or its digest) exactly as given; checks the digest the registry reports. */
export async function putManifest(client: RegistryClient, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
  const operation = `push manifest ${reference}`;
  const response = await client.request(`manifests/${reference}`, { operation, method: 'PUT', access: 'push', headers: { 'content-type': mediaType }, body: bytes, ok: [201] });
  await response.body?.cancel();
  const digest = sha256Digest(bytes);
  const reported = response.headers.get('docker-content-digest');
  if (reported && reported !== digest) throw protocolError(`the registry stored the manifest as ${reported}, not ${digest}`, client.context(operation), 'ERR_DIGEST_MISMATCH');
  return digest;
}
