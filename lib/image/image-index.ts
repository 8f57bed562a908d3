/** The image index: images by manifest digest and the names (tags) that point at them, in
 * images.json under a lock file so several processes can import, tag and remove at once. */

import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorralError, errorCode } from '../sys/errors.ts';
import { isStaleTag, processTag } from '../sys/process-tag.ts';
import { normalizeRef, pinnedDigest } from './refs.ts';

/** What the store knows of one image: its manifest and config, and its layers by ChainID. */
export interface ImageRecord {
  manifestDigest: string;
  configDigest: string;
  /** ChainIDs, bottom layer first. */
  chainIds: string[];
  createdAt: string;
  /** A build step's image, kept as the build cache: not listed, dropped by prune({ buildCache }). */
  buildCache?: boolean;
}

/** The store's index: images by manifest digest and the tags that name them. */
export interface ImageDb {
  images: Record<string, ImageRecord>;
  tags: Record<string, string>;
}

const LOCK_WAIT_MS = 30_000;

/** images.json: every change is read-modify-write while holding the lock, and written atomically
 * (temp + rename). */
export class ImageIndex {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** The current index (empty when there is none yet). */
  read(): ImageDb {
    try {
      return JSON.parse(readFileSync(join(this.#dir, 'images.json'), 'utf8')) as ImageDb;
    } catch (e) {
      if (errorCode(e) === 'ENOENT') return { images: {}, tags: {} };
      throw e;
    }
  }

  /** Applies change to the index under the lock (held until a promise it returns settles); what
   * change returns is returned. */
  async update<T>(change: (db: ImageDb) => T | Promise<T>): Promise<T> {
    await this.#lock();
    try {
      const db = this.read();
      const result = await change(db);
      const tmp = join(this.#dir, `.images.json.${process.pid}`);
      writeFileSync(tmp, JSON.stringify(db, null, 1));
      renameSync(tmp, join(this.#dir, 'images.json'));
      return result;
    } finally {
      rmSync(join(this.#dir, 'images.lock'), { force: true });
    }
  }

  async #lock(): Promise<void> {
    mkdirSync(this.#dir, { recursive: true });
    const path = join(this.#dir, 'images.lock');
    const end = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        const fd = openSync(path, 'wx');
        writeFileSync(fd, processTag());
        closeSync(fd);
        return;
      } catch (e) {
        if (errorCode(e) !== 'EEXIST') throw e;
      }
      let owner = '';
      try {
        owner = readFileSync(path, 'utf8');
      } catch {
        continue;
      }
      if (owner && isStaleTag(owner)) {
        rmSync(path, { force: true });
        continue;
      }
      if (Date.now() > end) throw new CorralError(`the image store ${this.#dir} stayed locked by ${owner}`, { code: 'ETIMEDOUT', path });
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

/** The image a tag, a digest ('sha256:…', 'name@sha256:…') or a short id (a unique prefix of at
 * least 4 hex digits of its manifest digest, as Docker's image ids) names, or ERR_IMAGE_NOT_FOUND. */
export function findImage(db: ImageDb, ref: string): [string, ImageRecord] {
  const digest = pinnedDigest(ref) ?? (ref.startsWith('sha256:') ? undefined : db.tags[normalizeRef(ref)]) ?? shortId(db, ref);
  const record = digest === undefined ? undefined : db.images[digest];
  if (!digest || !record) throw new CorralError(`no image ${ref}`, { code: 'ERR_IMAGE_NOT_FOUND', path: ref });
  return [digest, record];
}

/** The one image whose digest starts with the hex prefix (with or without 'sha256:'), if exactly one. */
function shortId(db: ImageDb, ref: string): string | undefined {
  const hex = ref.startsWith('sha256:') ? ref.slice(7) : ref;
  if (!/^[a-f0-9]{4,64}$/.test(hex)) return undefined;
  const matches = Object.keys(db.images).filter((d) => d.startsWith(`sha256:${hex}`));
  if (matches.length > 1) throw new CorralError(`image id ${ref} is ambiguous: ${matches.length} images start with it`, { code: 'ERR_INVALID_REF', path: ref });
  return matches[0];
}

/** The tags naming an image, sorted. */
export function tagsOf(db: ImageDb, digest: string): string[] {
  return Object.entries(db.tags).filter(([, d]) => d === digest).map(([t]) => t).sort();
}
