/** A blob streamed from the registry, resumed with a Range request where the connection drops;
 * whoever stores it verifies its digest while it flows (BlobStore.put does). */

import { Readable } from 'node:stream';
import type { Descriptor } from '../image/oci.ts';
import type { RegistryClient } from './client.ts';
import { RegistryError } from './registry-error.ts';
import { retryableError, retryDelay, sleep } from './retry.ts';

/** GET /blobs/<digest> as a stream; `onBytes` hears of every chunk. A dropped connection is picked
 * up where it stopped (206) or, when the registry ignores Range (200), by skipping what came already. */
export function downloadBlob(client: RegistryClient, descriptor: Descriptor, onBytes?: (n: number) => void): Readable {
  const operation = `pull blob ${descriptor.digest}`;
  async function* chunks(): AsyncGenerator<Buffer> {
    let offset = 0;
    for (let resumes = 0; ; resumes++) {
      const response = await client.request(`blobs/${descriptor.digest}`, {
        operation,
        headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
        ok: offset > 0 ? [200, 206] : [200],
      });
      let skip = offset > 0 && response.status === 200 ? offset : 0;
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          let buffer = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
          if (skip > 0) {
            const n = Math.min(skip, buffer.length);
            skip -= n;
            buffer = buffer.subarray(n);
            if (buffer.length === 0) continue;
          }
          offset += buffer.length;
          onBytes?.(buffer.length);
          yield buffer;
        }
        return;
      } catch (error) {
        if (client.signal?.aborted || !retryableError(error) || resumes + 1 >= client.retry.attempts) {
          throw new RegistryError(`${operation} ${client.registry}/${client.repository}: the connection dropped after ${offset} of ${descriptor.size} bytes`, 'ERR_REGISTRY_UNAVAILABLE', client.context(operation), { cause: error });
        }
        await sleep(retryDelay(resumes + 1, client.retry), client.signal);
      }
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}
