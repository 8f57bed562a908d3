/** Blobs into a registry: HEAD first, a cross-repository mount where one can serve, else an
 * upload streamed from the store, monolithic when small, else chunked with PATCH following each
 * Location. */

import type { Readable } from 'node:stream';
import type { Descriptor } from '../image/oci.ts';
import type { RegistryClient } from './client.ts';
import { protocolError, RegistryError } from './registry-error.ts';
import { retryableStatus, retryDelay, sleep } from './retry.ts';

/** Whether the repository already has the blob (HEAD: 200 yes, 404 no). */
export async function blobExists(client: RegistryClient, digest: string): Promise<boolean> {
  const response = await client.request(`blobs/${digest}`, { operation: `check blob ${digest}`, method: 'HEAD', ok: [200, 404], access: 'push' });
  return response.status === 200;
}

/** Starts an upload; with `mountFrom` (another repository of this registry) asks for a mount
 * first. Returns null when mounted, else the Location to upload to. */
export async function startUpload(client: RegistryClient, digest: string, mountFrom?: string): Promise<URL | null> {
  const query = mountFrom === undefined ? '' : `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(mountFrom)}`;
  const operation = mountFrom === undefined ? `push blob ${digest}` : `mount blob ${digest} from ${mountFrom}`;
  const response = await client.request(`blobs/uploads/${query}`, {
    operation,
    method: 'POST',
    access: 'push',
    ok: [201, 202],
    ...(mountFrom === undefined ? {} : { extraScopes: [`repository:${mountFrom}:pull`] }),
  });
  await response.body?.cancel();
  if (response.status === 201) return null;
  return location(client, response, operation);
}

/** Opens a stored blob, or the bytes start..end (inclusive) of it. */
export type OpenBlob = (range?: { start: number; end: number }) => Readable;

/** Uploads a blob to `start` (from startUpload), streaming it from `open()`; `onBytes` hears of
 * what went up. A chunk whose fate is unknown (its answer was lost) is settled by asking the
 * registry how much it holds; where it cannot say (distribution invalidates the old Location), the
 * upload starts over, a bounded number of times. */
export async function uploadBlob(client: RegistryClient, start: URL, descriptor: Descriptor, open: OpenBlob, options: { chunkSize?: number; onBytes?: (n: number) => void } = {}): Promise<void> {
  let url = start;
  for (let round = 1; ; round++) {
    try {
      await uploadOnce(client, url, descriptor, open, options);
      return;
    } catch (error) {
      if (!(error instanceof UploadLost) || round >= client.retry.attempts) throw error instanceof UploadLost ? error.cause : error;
      url = (await startUpload(client, descriptor.digest))!;
    }
  }
}

/** An upload the registry can no longer continue: start it again. */
class UploadLost extends Error {}

/** One upload: a blob up to the chunk size in one PUT, a larger one in PATCHes of the chunk size
 * then an empty PUT; every body streamed from the store, none held in memory. */
async function uploadOnce(client: RegistryClient, start: URL, descriptor: Descriptor, open: OpenBlob, options: { chunkSize?: number; onBytes?: (n: number) => void }): Promise<void> {
  // Without a chunk size every blob goes up in one streamed PUT, as containerd pushes: each PATCH
  // is a request the registry must finish before the next (measured: benchmarks/registry.ts).
  const chunkSize = options.chunkSize ?? Infinity;
  const operation = `push blob ${descriptor.digest}`;
  const size = descriptor.size;
  let url = start;
  const finish = async (body: (() => Readable) | undefined, length: number): Promise<void> => {
    const put = new URL(url);
    put.searchParams.set('digest', descriptor.digest);
    let response: Response;
    try {
      response = await client.request(put, {
        operation,
        method: 'PUT',
        access: 'push',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(length) },
        ...(body ? { body } : {}),
        ok: [201],
      });
    } catch (error) {
      // A PUT whose answer was lost may have stored the blob (the retry then finds the upload
      // gone): the registry says whether it has it.
      if (error instanceof RegistryError && (await blobExists(client, descriptor.digest).catch(() => false))) return;
      throw error;
    }
    await response.body?.cancel();
    const stored = response.headers.get('docker-content-digest');
    if (stored && stored !== descriptor.digest) throw protocolError(`the registry stored the blob as ${stored}`, client.context(operation), 'ERR_DIGEST_MISMATCH');
  };
  const patch = async (offset: number, length: number): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await client.request(url, {
          operation,
          method: 'PATCH',
          access: 'push',
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + length - 1}`, 'content-length': String(length) },
          body: () => open({ start: offset, end: offset + length - 1 }),
          ok: [202],
          once: true,
        });
        await response.body?.cancel();
        url = location(client, response, operation);
        break;
      } catch (error) {
        if (!retryable(error) || attempt >= client.retry.attempts) throw error;
        await sleep(retryDelay(attempt, client.retry), client.signal);
        // The chunk may have arrived before the failure: ask how much the registry has.
        const has = await uploadedBytes(client, url, operation).catch((e: unknown) => {
          throw new UploadLost(`the upload of ${descriptor.digest} was lost`, { cause: e });
        });
        url = has.location;
        if (has.bytes === offset + length) break;
        if (has.bytes !== offset) throw new UploadLost(`the registry has ${has.bytes} bytes of ${descriptor.digest}, not ${offset}`, { cause: error });
      }
    }
    options.onBytes?.(length);
  };
  if (size <= chunkSize) {
    // Small enough for one request: the monolithic PUT.
    await finish(() => open(), size);
    options.onBytes?.(size);
    return;
  }
  for (let offset = 0; offset < size; offset += chunkSize) await patch(offset, Math.min(chunkSize, size - offset));
  await finish(undefined, 0);
}

/** How many bytes an upload holds (GET on it: 204 with Range 0-LAST; distribution says 0-0 for none). */
async function uploadedBytes(client: RegistryClient, url: URL, operation: string): Promise<{ bytes: number; location: URL }> {
  const response = await client.request(url, { operation: `${operation}: check the upload`, access: 'push', ok: [204] });
  await response.body?.cancel();
  const range = /^(?:bytes=)?0-(\d+)$/.exec(response.headers.get('range') ?? '');
  const last = range ? Number(range[1]) : -1;
  return { bytes: last <= 0 ? 0 : last + 1, location: response.headers.get('location') ? location(client, response, operation) : url };
}

/** Whether a failed request is worth sending again (a 5xx, 429 or a dropped connection). */
function retryable(error: unknown): boolean {
  const e = error as RegistryError;
  return e instanceof RegistryError && (e.code === 'ERR_REGISTRY_UNAVAILABLE' || (e.status !== undefined && retryableStatus(e.status)));
}

function location(client: RegistryClient, response: Response, operation: string): URL {
  const value = response.headers.get('location');
  if (!value) throw protocolError(`HTTP ${response.status} without a Location`, client.context(operation));
  return client.url(value);
}
