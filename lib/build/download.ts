/** ADD of an http(s) URL: the file downloaded by the builder (not by a step), to a scratch file
 * whose content keys the step, checked against --checksum when given; named after the URL's last
 * path segment, dated by Last-Modified, never unpacked (as Docker does). */

import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { join, posix } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** A download ADD cannot use: the caller names the file, line and instruction. */
export class DownloadError extends Error {}

/** A downloaded file, as CopyPlan.inline takes it. */
export interface Downloaded {
  name: string;
  download: string;
  size: number;
  mtime: number;
}

/** Whether an ADD source is a URL (any scheme: those other than http(s) are refused by download). */
export function isUrl(source: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(source);
}

/** Downloads `url` into `dir` (as file `index`). `checksum` is 'sha256:<hex>'; `now` dates a file
 * its server gives no Last-Modified. */
export async function download(url: string, dir: string, index: number, checksum: string | null, now: number, signal?: AbortSignal): Promise<Downloaded> {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new DownloadError(`${url}: ADD downloads http and https URLs only`);
  if (parsed.pathname.endsWith('.git')) throw new DownloadError(`${url}: ADD of a git repository is not supported (clone it into the context and COPY it)`);
  if (checksum !== null && !/^sha256:[0-9a-f]{64}$/.test(checksum)) throw new DownloadError(`--checksum=${checksum}: expected sha256:<64 hex digits>`);
  let response: Response;
  try {
    response = await fetch(url, { redirect: 'follow', ...(signal ? { signal } : {}) });
  } catch (e) {
    if (signal?.aborted) throw e;
    const cause = (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message;
    throw new DownloadError(`${url}: the download failed: ${cause}`);
  }
  if (!response.ok || response.body === null) {
    await response.body?.cancel();
    throw new DownloadError(`${url}: the server answered ${response.status} ${response.statusText}`);
  }
  const path = join(dir, `download-${index}`);
  const hash = createHash('sha256');
  let size = 0;
  const tally = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), tally, createWriteStream(path, { mode: 0o600, flags: 'wx' }), ...(signal ? [{ signal }] : []));
  const digest = `sha256:${hash.digest('hex')}`;
  if (checksum !== null && digest !== checksum) throw new DownloadError(`${url}: the download's digest is ${digest}, not the --checksum ${checksum}`);
  const modified = Date.parse(response.headers.get('last-modified') ?? '');
  return { name: fileName(parsed), download: path, size, mtime: Number.isNaN(modified) ? now : Math.floor(modified / 1000) };
}

/** The URL's last path segment, decoded ('' when it has none: then the destination must name the file). */
function fileName(url: URL): string {
  const last = posix.basename(url.pathname);
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}
