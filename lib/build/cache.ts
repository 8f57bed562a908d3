/** The build cache: a step's key (its parent image, its instruction after substitution and, for
 * COPY, the digest of its inputs' content and metadata, never mtime) → the image the step made.
 * Kept in <root>/build/cache.json; an entry whose image is gone is a miss. */

import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runtimeDir } from '../fs/runtime-root.ts';

/** A step's cache key. */
export function cacheKey(parent: string | null, step: string, inputs: string[] = []): string {
  return createHash('sha256').update(JSON.stringify([parent, step, inputs])).digest('hex');
}

/** Step keys → manifest digests, read at the start of a build and merged back at its success. */
export class BuildCache {
  readonly #file: string;
  readonly #entries: Record<string, string>;
  readonly #added: Record<string, string> = {};

  constructor(root: string) {
    this.#file = join(runtimeDir(root, 'build'), 'cache.json');
    this.#entries = this.#read();
  }

  /** The image a step made before, if any. */
  get(key: string): string | undefined {
    return this.#added[key] ?? this.#entries[key];
  }

  /** Records a step's image (kept once save() runs). */
  set(key: string, digest: string): void {
    this.#added[key] = digest;
  }

  /** Merges this build's entries into the file (written whole, then renamed into place). */
  save(): void {
    const merged = { ...this.#read(), ...this.#added };
    const temp = `${this.#file}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(merged), { mode: 0o600 });
    renameSync(temp, this.#file);
  }

  #read(): Record<string, string> {
    try {
      return JSON.parse(readFileSync(this.#file, 'utf8')) as Record<string, string>;
    } catch {
      return {};
    }
  }
}
