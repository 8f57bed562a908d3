import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorralError } from '../sys/errors.ts';
import { isStaleTag, processTag } from '../sys/process-tag.ts';

/** What the store knows of one image: its manifest and config, and its layers by ChainID. */
export interface ImageRecord {
  manifestDigest: string;
  configDigest: string;
  /** ChainIDs, bottom layer first. */
  chainIds: string[];
  createdAt: string;
}

/** The store's index: images by manifest digest and the tags that name them. */
export interface ImageDb {
  images: Record<string, ImageRecord>;
  tags: Record<string, string>;
}

const LOCK_WAIT_MS = 30_000;

/** images.json under a lock file, so several processes can import, tag and remove at once: every
 * change is read-modify-write while holding the lock, and written atomically (temp + rename). */
export class ImageDbFile {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** The current index (empty when there is none yet). */
  read(): ImageDb {
    try {
      return JSON.parse(readFileSync(join(this.#dir, 'images.json'), 'utf8')) as ImageDb;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { images: {}, tags: {} };
      throw e;
    }
  }

  /** Applies change to the index under the lock; what change returns is returned. */
  async update<T>(change: (db: ImageDb) => T): Promise<T> {
    await this.#lock();
    try {
      const db = this.read();
      const result = change(db);
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
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
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
