/** Blobs into a registry: HEAD first, a cross-repository mount where one can serve, else an
 * upload, monolithic when small, else chunked with PATCH following each Location. */

import type { Readable } from 'node:stream';
import type { Descriptor } from '../image/oci.ts';
import type { RegistryClient } from './client.ts';
import { protocolError, RegistryError } from './registry-error.ts';
import { retryableStatus, retryDelay, sleep } from './retry.ts';

/** Blobs up to this size go up in one PUT; larger ones in PATCH chunks of this size. */
export const DEFAULT_CHUNK_SIZE = 32 << 20;

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

/** Uploads a blob to `start` (from startUpload), reading it from `open()`; `onBytes` hears of what
 * went up. A chunk whose fate is unknown (its answer was lost) is settled by asking the registry
 * how much it holds; where it cannot say (distribution invalidates the old Location), the upload
 * starts over, a bounded number of times. */
export async function uploadBlob(client: RegistryClient, start: URL, descriptor: Descriptor, open: () => Readable, options: { chunkSize?: number; onBytes?: (n: number) => void } = {}): Promise<void> {
  let url = start;
  for (let round = 1; ; round++) {
    try {
      await uploadOnce(client, url, descriptor, open(), options);
      return;
    } catch (error) {
      if (!(error instanceof UploadLost) || round >= client.retry.attempts) throw error instanceof UploadLost ? error.cause : error;
      url = (await startUpload(client, descriptor.digest))!;
    }
  }
}

/** An upload the registry can no longer continue: start it again. */
class UploadLost extends Error {}

async function uploadOnce(client: RegistryClient, start: URL, descriptor: Descriptor, source: Readable, options: { chunkSize?: number; onBytes?: (n: number) => void }): Promise<void> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const operation = `push blob ${descriptor.digest}`;
  let url = start;
  let offset = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const finish = async (body: Buffer | undefined): Promise<void> => {
    const put = new URL(url);
    put.searchParams.set('digest', descriptor.digest);
    const response = await client.request(put, {
      operation,
      method: 'PUT',
      access: 'push',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(body?.length ?? 0) },
      ...(body ? { body } : {}),
      ok: [201],
    });
    await response.body?.cancel();
    const stored = response.headers.get('docker-content-digest');
    if (stored && stored !== descriptor.digest) throw protocolError(`the registry stored the blob as ${stored}`, client.context(operation), 'ERR_DIGEST_MISMATCH');
  };
  const patch = async (chunk: Buffer): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await client.request(url, {
          operation,
          method: 'PATCH',
          access: 'push',
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}`, 'content-length': String(chunk.length) },
          body: chunk,
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
        if (has.bytes === offset + chunk.length) break;
        if (has.bytes !== offset) throw new UploadLost(`the registry has ${has.bytes} bytes of ${descriptor.digest}, not ${offset}`, { cause: error });
      }
    }
    offset += chunk.length;
    options.onBytes?.(chunk.length);
  };
  for await (const data of source as AsyncIterable<Buffer>) {
    pending.push(data);
    pendingBytes += data.length;
    while (pendingBytes >= chunkSize && (offset > 0 || pendingBytes > chunkSize)) {
      const all = Buffer.concat(pending);
      await patch(all.subarray(0, chunkSize));
      pending = [all.subarray(chunkSize)];
      pendingBytes = pending[0]!.length;
    }
  }
  const rest = Buffer.concat(pending);
  if (offset === 0) {
    // Small enough for one request: the monolithic PUT.
    await finish(rest);
    options.onBytes?.(rest.length);
    return;
  }
  if (rest.length > 0) await patch(rest);
  await finish(undefined);
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
